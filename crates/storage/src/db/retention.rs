//! Retention of the append-only tables: what is older than a cutoff goes. On PostgreSQL every
//! monthly partition that ends at or before the cutoff is dropped whole (instant, nothing to
//! vacuum) and older rows left in the partition that straddles it (or the default partition) are
//! deleted; on SQLite the rows are deleted.

use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use diesel::sql_types::Text;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};

use super::{Conn, Db};
use crate::error::{Error, Result};
use crate::schema::PARTITIONED_TABLES;
use crate::sql_types::Timestamp;

/// What a retention pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    pub partitions: usize,
    pub rows: usize,
}

#[derive(diesel::QueryableByName)]
struct Child {
    #[diesel(sql_type = Text)]
    name: String,
}

/// The first day after the month a partition named `{table}_pYYYYMM` covers.
fn partition_end(table: &str, name: &str) -> Option<chrono::DateTime<Utc>> {
    let suffix = name.strip_prefix(table)?.strip_prefix("_p")?;
    if suffix.len() != 6 {
        return None;
    }
    let year: i32 = suffix.get(..4)?.parse().ok()?;
    let month: u32 = suffix.get(4..)?.parse().ok()?;
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    Some(Utc.from_utc_datetime(&next.and_hms_opt(0, 0, 0)?))
}

/// Remove everything in `table` (one of [`PARTITIONED_TABLES`]) created before `cutoff`.
pub async fn apply_retention(db: &Db, table: &str, cutoff: Timestamp) -> Result<Removed> {
    let Some(table) = PARTITIONED_TABLES.iter().find(|t| **t == table) else {
        return Err(Error::Config(format!(
            "{table} is not an append-only partitioned table"
        )));
    };
    let mut pooled = db.get().await?;
    let mut removed = Removed::default();
    if let Conn::Postgres(conn) = pooled.conn() {
        let children: Vec<Child> = diesel::sql_query(
            "SELECT c.relname::text AS name FROM pg_inherits i \
             JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent \
             WHERE p.relname = $1",
        )
        .bind::<Text, _>(*table)
        .load(conn)
        .await?;
        for child in children {
            if partition_end(table, &child.name).is_some_and(|end| end <= *cutoff) {
                // The name comes from the catalogue and matched `{table}_pYYYYMM`.
                conn.batch_execute(&format!("DROP TABLE IF EXISTS \"{}\"", child.name))
                    .await?;
                removed.partitions += 1;
            }
        }
    }
    let sql = match pooled.conn() {
        Conn::Postgres(_) => format!("DELETE FROM {table} WHERE created_at < $1"),
        Conn::Sqlite(_) => format!("DELETE FROM {table} WHERE created_at < ?"),
    };
    removed.rows = crate::with_conn!(&mut pooled.conn(), |c| {
        diesel::sql_query(&sql)
            .bind::<crate::sql_types::DbTimestamp, _>(cutoff)
            .execute(c)
            .await
    })?;
    if removed.partitions > 0 || removed.rows > 0 {
        tracing::info!(
            table,
            partitions = removed.partitions,
            rows = removed.rows,
            "retention applied"
        );
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_map_to_month_ends() {
        let end = partition_end("t", "t_p202612").unwrap();
        assert_eq!(end.to_rfc3339(), "2027-01-01T00:00:00+00:00");
        assert_eq!(
            partition_end("t", "t_p202602").unwrap().to_rfc3339(),
            "2026-03-01T00:00:00+00:00"
        );
        assert!(partition_end("t", "t_default").is_none());
        assert!(partition_end("t", "t_p2026").is_none());
        assert!(partition_end("t", "other_p202601").is_none());
    }
}
