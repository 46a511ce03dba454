//! HealthGuard's results into PostgreSQL (`codeguardians storage migrate-healthguard-to-postgres`),
//! from either kind of SQLite file:
//!
//! - this project's embedded file: its `poisonguard_analysis_results` and
//!   `poisonguard_health_metrics`, row for row;
//! - a legacy HealthGuard database: `analysis_audit` (with the newest matching `mitigation_audit`
//!   action folded in) and `system_metrics`, mapped column by column as docs/operations.md lists.
//!
//! Either way the target may already hold other results: verification reads back only the rows
//! copied ([`Scope::SourceRows`]). Legacy rows get ids derived from their integer ids (UUIDv8:
//! table number in the first group, legacy id in the last), so a repeated run finds them again.

use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;

use super::{SourceTable, quote};
use crate::db::{Conn, Db};
use crate::error::{Error, Result};

/// The two HealthGuard tables.
pub const TABLES: [&str; 2] = ["poisonguard_analysis_results", "poisonguard_health_metrics"];

#[derive(diesel::QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

/// What to copy out of `source`, recognised by its tables.
pub async fn plan(source: &Db) -> Result<Vec<SourceTable>> {
    let mut pooled = source.get().await?;
    let Conn::Sqlite(c) = &mut pooled.conn() else {
        return Err(Error::Invalid("the source must be an SQLite file".into()));
    };
    let names: Vec<String> =
        diesel::sql_query("SELECT name FROM sqlite_master WHERE type = 'table'")
            .load::<Name>(&mut **c)
            .await?
            .into_iter()
            .map(|n| n.name)
            .collect();
    let has = |t: &str| names.iter().any(|n| n == t);
    if has(TABLES[0]) {
        drop(pooled);
        return Ok(super::source_tables(source)
            .await?
            .into_iter()
            .filter(|t| TABLES.contains(&t.name.as_str()))
            .collect());
    }
    if !has("analysis_audit") {
        return Err(Error::Invalid(
            "neither a CodeGuardians embedded file (poisonguard_analysis_results) nor a legacy \
             HealthGuard database (analysis_audit)"
                .into(),
        ));
    }
    let mut tables = vec![analysis_audit(has("mitigation_audit"))];
    if has("system_metrics") {
        tables.push(system_metrics());
    }
    Ok(tables)
}

/// A legacy time as RFC 3339 in UTC: text without an offset is taken as UTC (what Python's
/// `datetime.utcnow().isoformat()` wrote), numbers as Unix seconds.
fn utc(column: &str) -> String {
    format!(
        "CASE WHEN typeof({column}) IN ('integer', 'real') \
         THEN strftime('%Y-%m-%dT%H:%M:%fZ', {column}, 'unixepoch') \
         WHEN {column} GLOB '*[Zz]' OR {column} GLOB '*[+-][0-9][0-9]:[0-9][0-9]' \
         THEN replace({column}, ' ', 'T') ELSE replace({column}, ' ', 'T') || 'Z' END"
    )
}

/// A stable id for legacy row `id` of table number `table`.
fn derived_id(table: u8, id: &str) -> String {
    format!("printf('{table:08x}-0000-8000-8000-%012x', {id})")
}

fn table(name: &str, from: &str, key: &str, columns: &[(&str, String)]) -> SourceTable {
    SourceTable {
        name: name.to_owned(),
        from: from.to_owned(),
        columns: columns.iter().map(|(c, _)| (*c).to_owned()).collect(),
        select: columns.iter().map(|(_, e)| e.clone()).collect(),
        key: vec![key.to_owned()],
    }
}

fn analysis_audit(with_mitigations: bool) -> SourceTable {
    let mitigation = if with_mitigations {
        "(SELECT m.action FROM mitigation_audit m WHERE m.request_id IS a.request_id \
         AND m.sample_id IS a.sample_id ORDER BY m.id DESC LIMIT 1)"
            .to_owned()
    } else {
        "NULL".to_owned()
    };
    table(
        TABLES[0],
        &format!("{} a", quote("analysis_audit")),
        "a.id",
        &[
            ("id", derived_id(1, "a.id")),
            ("created_at", utc("a.\"timestamp\"")),
            ("organization_id", "NULL".into()),
            ("request_id", "a.request_id".into()),
            (
                "batch_id",
                format!("COALESCE(a.batch_id, {})", derived_id(2, "a.id")),
            ),
            (
                "sample_id",
                "COALESCE(a.sample_id, CAST(a.id AS TEXT))".into(),
            ),
            ("is_poisoned", "a.is_poisoned".into()),
            ("confidence", "a.confidence".into()),
            ("label", "a.detection_type".into()),
            ("reasons", "COALESCE(a.reasons, '[]')".into()),
            ("spans", "'[]'".into()),
            (
                "detector_scores",
                "COALESCE(a.detector_scores, '{}')".into(),
            ),
            ("content_sha256", "COALESCE(a.content_hash, '')".into()),
            ("mitigation", mitigation),
        ],
    )
}

fn system_metrics() -> SourceTable {
    table(
        TABLES[1],
        &format!("{} s", quote("system_metrics")),
        "s.id",
        &[
            ("id", derived_id(3, "s.id")),
            ("created_at", utc("s.\"timestamp\"")),
            ("instance", "'legacy-healthguard'".into()),
            ("status", "COALESCE(s.status, 'unknown')".into()),
            (
                "memory_bytes",
                "CAST(ROUND(COALESCE(s.memory_mb, 0) * 1048576) AS INTEGER)".into(),
            ),
            ("cpu_percent", "COALESCE(s.cpu_percent, 0.0)".into()),
            ("in_flight", "COALESCE(s.active_requests, 0)".into()),
            ("requests_total", "COALESCE(s.total_requests, 0)".into()),
            (
                "details",
                "json_object('legacy_table', 'system_metrics', 'legacy_id', s.id)".into(),
            ),
        ],
    )
}
