//! `biasguard_audit_logs`: one row per BiasGuard analysis (append-only, monthly partitions on
//! PostgreSQL).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::Conn;
use crate::error::Result;
use crate::schema::biasguard_audit_logs;
use crate::sql_types::{Id, Timestamp};

/// An audit row.
#[derive(
    Debug, Clone, PartialEq, Queryable, Selectable, Insertable, serde::Serialize, serde::Deserialize,
)]
#[diesel(table_name = biasguard_audit_logs)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct AuditLog {
    pub id: Id,
    pub created_at: Timestamp,
    pub organization_id: Option<Id>,
    pub request_id: Option<String>,
    pub operation: String,
    pub decision: String,
    pub bias_score: f64,
    pub bias_level: String,
    pub bias_types: serde_json::Value,
    pub policy_ids: serde_json::Value,
    pub violations: serde_json::Value,
    pub warnings: serde_json::Value,
    pub fairness_metrics: serde_json::Value,
    pub request_context: serde_json::Value,
    pub analyzed_text: Option<String>,
    pub processing_time_ms: f64,
}

/// Audit rows are written whole; the insert type is the row itself.
pub type NewAuditLog = AuditLog;

impl AuditLog {
    /// Insert, ignoring a row whose id is already stored: replaying an outbox twice is harmless.
    /// Returns whether the row was new.
    pub async fn insert_or_ignore(&self, conn: &mut Conn<'_>) -> Result<bool> {
        let inserted = crate::with_conn!(conn, |c| {
            diesel::insert_into(biasguard_audit_logs::table)
                .values(self)
                .on_conflict_do_nothing()
                .execute(c)
                .await
        })?;
        Ok(inserted == 1)
    }

    /// Newest first, for one organisation.
    pub async fn list_for_org(
        conn: &mut Conn<'_>,
        organization_id: Id,
        limit: i64,
    ) -> Result<Vec<Self>> {
        Ok(crate::with_conn!(conn, |c| {
            biasguard_audit_logs::table
                .filter(biasguard_audit_logs::organization_id.eq(organization_id))
                .order(biasguard_audit_logs::created_at.desc())
                .limit(limit)
                .select(Self::as_select())
                .load(c)
                .await
        })?)
    }
}
