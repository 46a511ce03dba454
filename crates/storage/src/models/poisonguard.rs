//! `poisonguard_analysis_results` (one row per analysed sample) and `poisonguard_health_metrics`
//! (HealthGuard's periodic samples of itself). Both append-only, monthly partitions on PostgreSQL,
//! no foreign keys (HealthGuard may keep them in its own database).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};

use crate::db::Conn;
use crate::error::Result;
use crate::schema::{poisonguard_analysis_results, poisonguard_health_metrics};
use crate::sql_types::{Id, Timestamp};

/// One analysed sample.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = poisonguard_analysis_results)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct PoisonResult {
    pub id: Id,
    pub created_at: Timestamp,
    pub organization_id: Option<Id>,
    pub request_id: Option<String>,
    pub batch_id: Id,
    pub sample_id: String,
    pub is_poisoned: bool,
    pub confidence: f64,
    pub label: Option<String>,
    pub reasons: serde_json::Value,
    pub spans: serde_json::Value,
    pub detector_scores: serde_json::Value,
    pub content_sha256: String,
    pub mitigation: Option<String>,
}

/// Insert `rows` into `$table` one by one inside one transaction, ignoring rows already stored.
/// Row by row: SQLite has no multi-row insert with ON CONFLICT in diesel. Explicit begin/commit
/// rather than `Conn::transaction`: rustc cannot prove a future through its async closure `Send`,
/// and background tasks call this.
macro_rules! insert_ignoring_stored {
    ($conn:expr, $table:path, $rows:expr) => {{
        let conn: &mut Conn<'_> = $conn;
        conn.begin().await?;
        let mut inserted = 0;
        for row in $rows {
            let step = crate::with_conn!(conn, |c| {
                diesel::insert_into($table)
                    .values(row)
                    .on_conflict_do_nothing()
                    .execute(c)
                    .await
            });
            match step {
                Ok(n) => inserted += n,
                Err(e) => {
                    // The statement's error is the one worth reporting; a failed rollback means
                    // the connection is gone, which the pool notices.
                    let _ = conn.rollback().await;
                    return Err(e.into());
                }
            }
        }
        conn.commit().await?;
        Ok(inserted)
    }};
}

impl PoisonResult {
    /// Insert a batch's rows, ignoring any already stored (an outbox replay). Returns how many were
    /// new.
    pub async fn insert_all(conn: &mut Conn<'_>, rows: &[Self]) -> Result<usize> {
        if rows.is_empty() {
            return Ok(0);
        }
        insert_ignoring_stored!(conn, poisonguard_analysis_results::table, rows)
    }

    /// Newest first, for one organisation (or those without one), a page at a time.
    pub async fn list(
        conn: &mut Conn<'_>,
        organization_id: Option<Id>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<Self>> {
        Ok(crate::with_conn!(conn, |c| {
            let query = poisonguard_analysis_results::table
                .order(poisonguard_analysis_results::created_at.desc())
                .limit(limit)
                .offset(offset)
                .select(Self::as_select())
                .into_boxed();
            match organization_id {
                Some(org) => {
                    query
                        .filter(poisonguard_analysis_results::organization_id.eq(org))
                        .load(c)
                        .await
                }
                None => {
                    query
                        .filter(poisonguard_analysis_results::organization_id.is_null())
                        .load(c)
                        .await
                }
            }
        })?)
    }

    /// Rows of one batch.
    pub async fn of_batch(conn: &mut Conn<'_>, batch_id: Id) -> Result<Vec<Self>> {
        Ok(crate::with_conn!(conn, |c| {
            poisonguard_analysis_results::table
                .filter(poisonguard_analysis_results::batch_id.eq(batch_id))
                .select(Self::as_select())
                .load(c)
                .await
        })?)
    }

    /// How many rows are stored.
    pub async fn count(conn: &mut Conn<'_>) -> Result<i64> {
        Ok(crate::with_conn!(conn, |c| {
            poisonguard_analysis_results::table
                .count()
                .get_result(c)
                .await
        })?)
    }
}

/// One sample of HealthGuard's own health.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = poisonguard_health_metrics)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct HealthSample {
    pub id: Id,
    pub created_at: Timestamp,
    pub instance: String,
    pub status: String,
    pub memory_bytes: i64,
    pub cpu_percent: f64,
    pub in_flight: i64,
    pub requests_total: i64,
    pub details: serde_json::Value,
}

impl HealthSample {
    /// Insert, ignoring a row already stored.
    pub async fn insert_all(conn: &mut Conn<'_>, rows: &[Self]) -> Result<usize> {
        if rows.is_empty() {
            return Ok(0);
        }
        insert_ignoring_stored!(conn, poisonguard_health_metrics::table, rows)
    }

    /// The newest samples.
    pub async fn recent(conn: &mut Conn<'_>, limit: i64) -> Result<Vec<Self>> {
        Ok(crate::with_conn!(conn, |c| {
            poisonguard_health_metrics::table
                .order(poisonguard_health_metrics::created_at.desc())
                .limit(limit)
                .select(Self::as_select())
                .load(c)
                .await
        })?)
    }
}
