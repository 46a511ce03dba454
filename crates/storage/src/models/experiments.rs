//! A/B testing: `ab_experiments` (an organisation's experiments), `ab_assignments` (which variant
//! a user was put in), `ab_results` (each reported result) and `ab_metric_totals` (running count,
//! sum and sum of squares per variant and metric, kept with each result in one transaction).

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double};
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};

use crate::db::Conn;
use crate::error::Result;
use crate::schema::{ab_assignments, ab_experiments, ab_metric_totals, ab_results};
use crate::sql_types::{Id, Timestamp};

/// The statuses the schema allows.
pub const STATUSES: [&str; 5] = ["draft", "running", "paused", "completed", "cancelled"];

/// An experiment.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = ab_experiments)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct Experiment {
    pub id: Id,
    pub organization_id: Id,
    pub name: String,
    pub description: String,
    pub status: String,
    pub variants: serde_json::Value,
    pub primary_metric: serde_json::Value,
    pub secondary_metrics: serde_json::Value,
    pub audience: serde_json::Value,
    pub confidence_level: f64,
    pub created_by: Option<Id>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
}

/// The editable part of an experiment (`None` leaves a field alone).
#[derive(Debug, Clone, Default, PartialEq, AsChangeset)]
#[diesel(table_name = ab_experiments)]
pub struct ExperimentChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub status: Option<String>,
    pub variants: Option<serde_json::Value>,
    pub primary_metric: Option<serde_json::Value>,
    pub secondary_metrics: Option<serde_json::Value>,
    pub audience: Option<serde_json::Value>,
    pub confidence_level: Option<f64>,
    pub updated_at: Option<Timestamp>,
    pub started_at: Option<Option<Timestamp>>,
    pub ended_at: Option<Option<Timestamp>>,
}

impl Experiment {
    pub async fn insert(&self, conn: &mut Conn<'_>) -> Result<()> {
        crate::with_conn!(conn, |c| {
            diesel::insert_into(ab_experiments::table)
                .values(self)
                .execute(c)
                .await
        })?;
        Ok(())
    }

    /// One organisation's experiments (of one status when given), newest first, a page at a
    /// time, with the total matching.
    pub async fn list(
        conn: &mut Conn<'_>,
        organization_id: Id,
        status: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<Self>, i64)> {
        macro_rules! filtered {
            () => {{
                let mut query = ab_experiments::table
                    .filter(ab_experiments::organization_id.eq(organization_id))
                    .into_boxed();
                if let Some(status) = status {
                    query = query.filter(ab_experiments::status.eq(status.to_owned()));
                }
                query
            }};
        }
        let rows = crate::with_conn!(conn, |c| {
            filtered!()
                .order((ab_experiments::created_at.desc(), ab_experiments::id.asc()))
                .limit(limit)
                .offset(offset)
                .select(Self::as_select())
                .load(c)
                .await
        })?;
        let total = crate::with_conn!(conn, |c| filtered!().count().get_result::<i64>(c).await)?;
        Ok((rows, total))
    }

    /// The organisation's running experiments, oldest first (the order the gateway applies their
    /// overrides in).
    pub async fn running(conn: &mut Conn<'_>, organization_id: Id) -> Result<Vec<Self>> {
        Ok(crate::with_conn!(conn, |c| {
            ab_experiments::table
                .filter(ab_experiments::organization_id.eq(organization_id))
                .filter(ab_experiments::status.eq("running"))
                .order((ab_experiments::started_at.asc(), ab_experiments::id.asc()))
                .select(Self::as_select())
                .load(c)
                .await
        })?)
    }

    /// One experiment of one organisation.
    pub async fn find(conn: &mut Conn<'_>, organization_id: Id, id: Id) -> Result<Option<Self>> {
        Ok(crate::with_conn!(conn, |c| {
            ab_experiments::table
                .filter(ab_experiments::organization_id.eq(organization_id))
                .filter(ab_experiments::id.eq(id))
                .select(Self::as_select())
                .first(c)
                .await
                .optional()
        })?)
    }

    /// Several experiments of one organisation (the ones of `ids` it has).
    pub async fn find_many(
        conn: &mut Conn<'_>,
        organization_id: Id,
        ids: &[Id],
    ) -> Result<Vec<Self>> {
        Ok(crate::with_conn!(conn, |c| {
            ab_experiments::table
                .filter(ab_experiments::organization_id.eq(organization_id))
                .filter(ab_experiments::id.eq_any(ids.to_vec()))
                .select(Self::as_select())
                .load(c)
                .await
        })?)
    }

    /// Apply `changes` if the experiment still has status `expected_status` (so two concurrent
    /// changes cannot both act on the same state). `None` when it does not.
    pub async fn update_if_status(
        conn: &mut Conn<'_>,
        organization_id: Id,
        id: Id,
        expected_status: &str,
        changes: &ExperimentChanges,
    ) -> Result<Option<Self>> {
        let updated = crate::with_conn!(conn, |c| {
            diesel::update(
                ab_experiments::table
                    .filter(ab_experiments::organization_id.eq(organization_id))
                    .filter(ab_experiments::id.eq(id))
                    .filter(ab_experiments::status.eq(expected_status)),
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

    /// Delete (with its assignments, results and totals) if it has status `expected_status`;
    /// returns whether it did.
    pub async fn delete_if_status(
        conn: &mut Conn<'_>,
        organization_id: Id,
        id: Id,
        expected_status: &str,
    ) -> Result<bool> {
        let deleted = crate::with_conn!(conn, |c| {
            diesel::delete(
                ab_experiments::table
                    .filter(ab_experiments::organization_id.eq(organization_id))
                    .filter(ab_experiments::id.eq(id))
                    .filter(ab_experiments::status.eq(expected_status)),
            )
            .execute(c)
            .await
        })?;
        Ok(deleted > 0)
    }
}

/// A user's variant in an experiment.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = ab_assignments)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct Assignment {
    pub experiment_id: Id,
    pub user_id: String,
    pub organization_id: Id,
    pub variant_name: String,
    pub assigned_at: Timestamp,
}

impl Assignment {
    /// Record it unless the user already has one in this experiment; returns the stored one.
    pub async fn insert_or_get(&self, conn: &mut Conn<'_>) -> Result<Self> {
        crate::with_conn!(conn, |c| {
            diesel::insert_into(ab_assignments::table)
                .values(self)
                .on_conflict_do_nothing()
                .execute(c)
                .await
        })?;
        Ok(crate::with_conn!(conn, |c| {
            ab_assignments::table
                .find((self.experiment_id, self.user_id.clone()))
                .select(Self::as_select())
                .first(c)
                .await
        })?)
    }

    /// A user's assignments in one organisation's experiments, oldest first.
    pub async fn for_user(
        conn: &mut Conn<'_>,
        organization_id: Id,
        user_id: &str,
    ) -> Result<Vec<Self>> {
        Ok(crate::with_conn!(conn, |c| {
            ab_assignments::table
                .filter(ab_assignments::organization_id.eq(organization_id))
                .filter(ab_assignments::user_id.eq(user_id))
                .order(ab_assignments::assigned_at.asc())
                .select(Self::as_select())
                .load(c)
                .await
        })?)
    }

    /// Users assigned per variant of an experiment.
    pub async fn counts(conn: &mut Conn<'_>, experiment_id: Id) -> Result<Vec<(String, i64)>> {
        Ok(crate::with_conn!(conn, |c| {
            ab_assignments::table
                .filter(ab_assignments::experiment_id.eq(experiment_id))
                .group_by(ab_assignments::variant_name)
                .select((ab_assignments::variant_name, diesel::dsl::count_star()))
                .load(c)
                .await
        })?)
    }
}

/// One reported result.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = ab_results)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct ExperimentResult {
    pub id: Id,
    pub experiment_id: Id,
    pub organization_id: Id,
    pub variant_name: String,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub metrics: serde_json::Value,
    pub recorded_at: Timestamp,
}

/// Running totals of one metric of one variant.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = ab_metric_totals)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct MetricTotal {
    pub experiment_id: Id,
    pub variant_name: String,
    pub metric: String,
    pub n: i64,
    pub total: f64,
    pub total_sq: f64,
}

/// `ab_metric_totals.c + excluded.c` (valid on PostgreSQL and SQLite).
fn added<T: diesel::sql_types::SingleValue>(column: &str) -> diesel::expression::SqlLiteral<T> {
    sql::<T>(&format!("ab_metric_totals.{column} + excluded.{column}"))
}

/// What [`ExperimentResult::record`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Stored, and added to the totals.
    New,
    /// The experiment already holds this result (same id, same content): a retry.
    Duplicate,
    /// The experiment already holds a different result under this id.
    IdTaken,
    /// The experiment is not in one of the accepted statuses (or no longer exists).
    NotAccepting,
}

impl ExperimentResult {
    /// Store the result and add `values` (metric name → number) to the running totals, in one
    /// transaction, provided the experiment has one of `statuses`. The experiment row is locked
    /// (a no-op update) before anything is written, so a concurrent stop either comes first (and
    /// the result is refused) or waits for the result to be counted.
    pub async fn record(
        &self,
        conn: &mut Conn<'_>,
        values: &[(String, f64)],
        statuses: &[&str],
    ) -> Result<Recorded> {
        let statuses: Vec<String> = statuses.iter().map(|s| (*s).to_owned()).collect();
        conn.transaction(async |tx: &mut Conn<'_>| {
            let open = crate::with_conn!(tx, |c| {
                diesel::update(
                    ab_experiments::table
                        .filter(ab_experiments::id.eq(self.experiment_id))
                        .filter(ab_experiments::status.eq_any(statuses.clone())),
                )
                .set(ab_experiments::status.eq(ab_experiments::status))
                .execute(c)
                .await
            })?;
            if open == 0 {
                return Ok(Recorded::NotAccepting);
            }
            let inserted = crate::with_conn!(tx, |c| {
                diesel::insert_into(ab_results::table)
                    .values(self)
                    .on_conflict_do_nothing()
                    .execute(c)
                    .await
            })?;
            if inserted == 0 {
                let stored: Self = crate::with_conn!(tx, |c| {
                    ab_results::table
                        .find((self.experiment_id, self.id))
                        .select(Self::as_select())
                        .first(c)
                        .await
                })?;
                let same = stored.variant_name == self.variant_name
                    && stored.user_id == self.user_id
                    && stored.session_id == self.session_id
                    && stored.metrics == self.metrics;
                return Ok(if same {
                    Recorded::Duplicate
                } else {
                    Recorded::IdTaken
                });
            }
            for (metric, value) in values {
                let row = MetricTotal {
                    experiment_id: self.experiment_id,
                    variant_name: self.variant_name.clone(),
                    metric: metric.clone(),
                    n: 1,
                    total: *value,
                    total_sq: value * value,
                };
                crate::with_conn!(tx, |c| {
                    diesel::insert_into(ab_metric_totals::table)
                        .values(&row)
                        .on_conflict((
                            ab_metric_totals::experiment_id,
                            ab_metric_totals::variant_name,
                            ab_metric_totals::metric,
                        ))
                        .do_update()
                        .set((
                            ab_metric_totals::n.eq(added::<BigInt>("n")),
                            ab_metric_totals::total.eq(added::<Double>("total")),
                            ab_metric_totals::total_sq.eq(added::<Double>("total_sq")),
                        ))
                        .execute(c)
                        .await
                })?;
            }
            Ok(Recorded::New)
        })
        .await
    }

    /// Results of an experiment per variant.
    pub async fn counts(conn: &mut Conn<'_>, experiment_id: Id) -> Result<Vec<(String, i64)>> {
        Ok(crate::with_conn!(conn, |c| {
            ab_results::table
                .filter(ab_results::experiment_id.eq(experiment_id))
                .group_by(ab_results::variant_name)
                .select((ab_results::variant_name, diesel::dsl::count_star()))
                .load(c)
                .await
        })?)
    }
}

impl MetricTotal {
    /// Every total of an experiment.
    pub async fn list(conn: &mut Conn<'_>, experiment_id: Id) -> Result<Vec<Self>> {
        Ok(crate::with_conn!(conn, |c| {
            ab_metric_totals::table
                .filter(ab_metric_totals::experiment_id.eq(experiment_id))
                .order((
                    ab_metric_totals::variant_name.asc(),
                    ab_metric_totals::metric.asc(),
                ))
                .select(Self::as_select())
                .load(c)
                .await
        })?)
    }
}
