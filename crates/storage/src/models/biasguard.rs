//! `biasguard_policies` (an organisation's rules for BiasGuard's verdicts) and
//! `biasguard_policy_violations` (one row per failed policy per analysis; append-only apart from
//! resolution, monthly partitions on PostgreSQL).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};

use crate::db::Conn;
use crate::error::Result;
use crate::schema::{biasguard_policies, biasguard_policy_violations};
use crate::sql_types::{Id, Timestamp};

/// The enforcement types the schema allows.
pub const ENFORCEMENT_TYPES: [&str; 4] =
    ["fairness_check", "attribute_based", "compliance", "audit"];
/// The violation severities the schema allows, mildest first.
pub const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];

/// A policy.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = biasguard_policies)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct Policy {
    pub id: Id,
    pub organization_id: Id,
    pub name: String,
    pub description: String,
    pub enforcement_type: String,
    pub rules: serde_json::Value,
    pub priority: i32,
    pub is_active: bool,
    pub created_by: Option<Id>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The editable part of a policy.
#[derive(Debug, Clone, PartialEq, AsChangeset)]
#[diesel(table_name = biasguard_policies)]
pub struct PolicyChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub enforcement_type: Option<String>,
    pub rules: Option<serde_json::Value>,
    pub priority: Option<i32>,
    pub is_active: Option<bool>,
    pub updated_at: Timestamp,
}

impl Policy {
    pub async fn insert(&self, conn: &mut Conn<'_>) -> Result<()> {
        crate::with_conn!(conn, |c| {
            diesel::insert_into(biasguard_policies::table)
                .values(self)
                .execute(c)
                .await
        })?;
        Ok(())
    }

    /// One organisation's policies, highest priority (lowest number) first.
    pub async fn list(
        conn: &mut Conn<'_>,
        organization_id: Id,
        active_only: bool,
    ) -> Result<Vec<Self>> {
        Ok(crate::with_conn!(conn, |c| {
            let mut query = biasguard_policies::table
                .filter(biasguard_policies::organization_id.eq(organization_id))
                .order((
                    biasguard_policies::priority.asc(),
                    biasguard_policies::name.asc(),
                ))
                .select(Self::as_select())
                .into_boxed();
            if active_only {
                query = query.filter(biasguard_policies::is_active.eq(true));
            }
            query.load(c).await
        })?)
    }

    /// One policy of one organisation.
    pub async fn find(conn: &mut Conn<'_>, organization_id: Id, id: Id) -> Result<Option<Self>> {
        Ok(crate::with_conn!(conn, |c| {
            biasguard_policies::table
                .filter(biasguard_policies::organization_id.eq(organization_id))
                .filter(biasguard_policies::id.eq(id))
                .select(Self::as_select())
                .first(c)
                .await
                .optional()
        })?)
    }

    /// Apply `changes`; `None` when the organisation has no such policy.
    pub async fn update(
        conn: &mut Conn<'_>,
        organization_id: Id,
        id: Id,
        changes: &PolicyChanges,
    ) -> Result<Option<Self>> {
        let updated = crate::with_conn!(conn, |c| {
            diesel::update(
                biasguard_policies::table
                    .filter(biasguard_policies::organization_id.eq(organization_id))
                    .filter(biasguard_policies::id.eq(id)),
            )
            .set(changes)
            .execute(c)
            .await
        })?;
        if updated == 0 {
            return Ok(None);
        }
        Self::find(conn, organization_id, id).await
    }

    /// Delete; returns whether it existed.
    pub async fn delete(conn: &mut Conn<'_>, organization_id: Id, id: Id) -> Result<bool> {
        let deleted = crate::with_conn!(conn, |c| {
            diesel::delete(
                biasguard_policies::table
                    .filter(biasguard_policies::organization_id.eq(organization_id))
                    .filter(biasguard_policies::id.eq(id)),
            )
            .execute(c)
            .await
        })?;
        Ok(deleted > 0)
    }
}

/// A policy violation.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = biasguard_policy_violations)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct Violation {
    pub id: Id,
    pub created_at: Timestamp,
    pub organization_id: Option<Id>,
    pub policy_id: Option<Id>,
    pub audit_log_id: Option<Id>,
    pub request_id: Option<String>,
    pub violation_type: String,
    pub severity: String,
    pub impact_score: f64,
    pub details: serde_json::Value,
    pub requires_remediation: bool,
    pub resolved: bool,
    pub resolved_at: Option<Timestamp>,
    pub resolved_by: Option<Id>,
    pub resolution_notes: Option<String>,
}

/// Which violations to list.
#[derive(Debug, Clone, Default)]
pub struct ViolationFilter {
    pub resolved: Option<bool>,
    pub severity: Option<String>,
    pub policy_id: Option<Id>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl Violation {
    /// Insert, ignoring a row whose id is already stored (an outbox replay). Returns whether the
    /// row was new.
    pub async fn insert_or_ignore(&self, conn: &mut Conn<'_>) -> Result<bool> {
        let inserted = crate::with_conn!(conn, |c| {
            diesel::insert_into(biasguard_policy_violations::table)
                .values(self)
                .on_conflict_do_nothing()
                .execute(c)
                .await
        })?;
        Ok(inserted == 1)
    }

    /// One organisation's violations matching `filter`, newest first, a page at a time, with the
    /// total matching.
    pub async fn list(
        conn: &mut Conn<'_>,
        organization_id: Id,
        filter: &ViolationFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<Self>, i64)> {
        macro_rules! filtered {
            () => {{
                let mut query = biasguard_policy_violations::table
                    .filter(biasguard_policy_violations::organization_id.eq(organization_id))
                    .into_boxed();
                if let Some(resolved) = filter.resolved {
                    query = query.filter(biasguard_policy_violations::resolved.eq(resolved));
                }
                if let Some(severity) = &filter.severity {
                    query =
                        query.filter(biasguard_policy_violations::severity.eq(severity.clone()));
                }
                if let Some(policy) = filter.policy_id {
                    query = query.filter(biasguard_policy_violations::policy_id.eq(policy));
                }
                if let Some(since) = filter.since {
                    query = query.filter(biasguard_policy_violations::created_at.ge(since));
                }
                if let Some(until) = filter.until {
                    query = query.filter(biasguard_policy_violations::created_at.lt(until));
                }
                query
            }};
        }
        let rows = crate::with_conn!(conn, |c| {
            filtered!()
                .order(biasguard_policy_violations::created_at.desc())
                .limit(limit)
                .offset(offset)
                .select(Self::as_select())
                .load(c)
                .await
        })?;
        let total: i64 = crate::with_conn!(conn, |c| filtered!().count().get_result(c).await)?;
        Ok((rows, total))
    }

    /// One violation of one organisation.
    pub async fn find(conn: &mut Conn<'_>, organization_id: Id, id: Id) -> Result<Option<Self>> {
        Ok(crate::with_conn!(conn, |c| {
            biasguard_policy_violations::table
                .filter(biasguard_policy_violations::organization_id.eq(organization_id))
                .filter(biasguard_policy_violations::id.eq(id))
                .select(Self::as_select())
                .first(c)
                .await
                .optional()
        })?)
    }

    /// Mark resolved with notes, once: only an unresolved row changes, so of two concurrent
    /// resolutions exactly one wins.
    pub async fn resolve(
        conn: &mut Conn<'_>,
        organization_id: Id,
        id: Id,
        by: Id,
        notes: &str,
    ) -> Result<Resolution> {
        let now = Timestamp::now();
        let updated = crate::with_conn!(conn, |c| {
            diesel::update(
                biasguard_policy_violations::table
                    .filter(biasguard_policy_violations::organization_id.eq(organization_id))
                    .filter(biasguard_policy_violations::id.eq(id))
                    .filter(biasguard_policy_violations::resolved.eq(false)),
            )
            .set((
                biasguard_policy_violations::resolved.eq(true),
                biasguard_policy_violations::resolved_at.eq(Some(now)),
                biasguard_policy_violations::resolved_by.eq(Some(by)),
                biasguard_policy_violations::resolution_notes.eq(Some(notes.to_owned())),
            ))
            .execute(c)
            .await
        })?;
        Ok(match Self::find(conn, organization_id, id).await? {
            None => Resolution::NotFound,
            Some(v) if updated == 0 => Resolution::AlreadyResolved(v),
            Some(v) => Resolution::Resolved(v),
        })
    }
}

/// What [`Violation::resolve`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    Resolved(Violation),
    AlreadyResolved(Violation),
    NotFound,
}
