//! `trustguard_audit_logs`: one row per TrustGuard validation (append-only, monthly partitions on
//! PostgreSQL).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::Conn;
use crate::error::Result;
use crate::schema::trustguard_audit_logs;
use crate::sql_types::{Id, Timestamp};

/// An audit row.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = trustguard_audit_logs)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct TrustAudit {
    pub id: Id,
    pub created_at: Timestamp,
    pub organization_id: Option<Id>,
    pub request_id: Option<String>,
    pub validation_type: String,
    pub task: Option<String>,
    pub overall_score: f64,
    pub trust_score: f64,
    pub risk_level: String,
    pub pattern_detections: serde_json::Value,
    pub evidence_counts: serde_json::Value,
    pub content_sha256: String,
    pub content_chars: i64,
    pub analyzed_text: Option<String>,
    pub cached: bool,
    pub processing_time_ms: f64,
}

impl TrustAudit {
    /// Insert, ignoring a row whose id is already stored (replays are harmless).
    pub async fn insert_or_ignore(&self, conn: &mut Conn<'_>) -> Result<bool> {
        let n = crate::with_conn!(conn, |c| {
            diesel::insert_into(trustguard_audit_logs::table)
                .values(self)
                .on_conflict_do_nothing()
                .execute(c)
                .await
        })?;
        Ok(n == 1)
    }

    /// Rows of one request id (tests, support).
    pub async fn for_request(conn: &mut Conn<'_>, request_id: &str) -> Result<Vec<Self>> {
        Ok(crate::with_conn!(conn, |c| {
            trustguard_audit_logs::table
                .filter(trustguard_audit_logs::request_id.eq(request_id))
                .order(trustguard_audit_logs::created_at.asc())
                .select(Self::as_select())
                .load(c)
                .await
        })?)
    }
}
