//! `usage_records`: request, token, cost and latency totals per organisation, period (hour or
//! day), endpoint and guard. Gateway replicas count in Redis and write the running totals here;
//! a write never lowers a stored figure (totals of a period only grow), so replicas may write the
//! same period in any order and any number of times.

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};

use crate::db::Conn;
use crate::error::Result;
use crate::schema::usage_records;
use crate::sql_types::{Id, Timestamp};

/// One row.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = usage_records)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct UsageRecord {
    pub id: Id,
    pub organization_id: Id,
    /// `hour` or `day`.
    pub granularity: String,
    pub period_start: Timestamp,
    pub endpoint: String,
    /// Empty for the request as a whole.
    pub guard: String,
    pub requests: i64,
    pub errors: i64,
    pub tokens_input: i64,
    pub tokens_output: i64,
    pub cost_usd_micros: i64,
    pub latency_ms_total: i64,
    pub latency_ms_max: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// `CASE WHEN excluded.c > usage_records.c THEN excluded.c ELSE usage_records.c END`: the larger
/// of the stored and the offered figure (valid on PostgreSQL and SQLite).
fn larger(column: &str) -> diesel::expression::SqlLiteral<BigInt> {
    sql::<BigInt>(&format!(
        "CASE WHEN excluded.{column} > usage_records.{column} THEN excluded.{column} ELSE usage_records.{column} END"
    ))
}

impl UsageRecord {
    /// Insert, or raise the stored figures of the same (organisation, granularity, period,
    /// endpoint, guard) to these where these are larger.
    pub async fn upsert_max(&self, conn: &mut Conn<'_>) -> Result<()> {
        crate::with_conn!(conn, |c| {
            diesel::insert_into(usage_records::table)
                .values(self)
                .on_conflict((
                    usage_records::organization_id,
                    usage_records::granularity,
                    usage_records::period_start,
                    usage_records::endpoint,
                    usage_records::guard,
                ))
                .do_update()
                .set((
                    usage_records::requests.eq(larger("requests")),
                    usage_records::errors.eq(larger("errors")),
                    usage_records::tokens_input.eq(larger("tokens_input")),
                    usage_records::tokens_output.eq(larger("tokens_output")),
                    usage_records::cost_usd_micros.eq(larger("cost_usd_micros")),
                    usage_records::latency_ms_total.eq(larger("latency_ms_total")),
                    usage_records::latency_ms_max.eq(larger("latency_ms_max")),
                    usage_records::updated_at.eq(self.updated_at),
                ))
                .execute(c)
                .await
        })?;
        Ok(())
    }

    /// One organisation's rows of one granularity with `from <= period_start < to`, oldest
    /// first.
    pub async fn list(
        conn: &mut Conn<'_>,
        organization_id: Id,
        granularity: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Self>> {
        Ok(crate::with_conn!(conn, |c| {
            usage_records::table
                .filter(usage_records::organization_id.eq(organization_id))
                .filter(usage_records::granularity.eq(granularity.to_owned()))
                .filter(usage_records::period_start.ge(from))
                .filter(usage_records::period_start.lt(to))
                .order((
                    usage_records::period_start.asc(),
                    usage_records::endpoint.asc(),
                    usage_records::guard.asc(),
                ))
                .select(Self::as_select())
                .load(c)
                .await
        })?)
    }
}
