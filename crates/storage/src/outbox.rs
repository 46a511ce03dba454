//! A durable local outbox: append-only records (analysis results, audit rows, metrics) that could
//! not reach the database are kept in a local SQLite file and replayed once it answers again. The
//! records carry their UUIDv7 ids and are inserted with insert-or-ignore, so a replay that is
//! interrupted and repeated stores nothing twice.

use std::path::Path;

use diesel::sql_types::{BigInt, Text};
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};

use crate::config::{DatabaseTarget, PoolSettings};
use crate::db::{Conn, Db};
use crate::error::{Error, Result};
use crate::sql_types::Id;

/// One pending record.
#[derive(Debug, Clone, PartialEq, diesel::QueryableByName)]
pub struct Entry {
    #[diesel(sql_type = Text)]
    pub id: String,
    /// What the payload is (the replayer dispatches on it).
    #[diesel(sql_type = Text)]
    pub kind: String,
    /// JSON.
    #[diesel(sql_type = Text)]
    pub payload: String,
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The outbox (cheap to clone).
#[derive(Debug, Clone)]
pub struct Outbox {
    db: Db,
}

impl Outbox {
    /// Open (and create if needed) the outbox file at `path`.
    pub async fn open(path: &Path) -> Result<Self> {
        let target = DatabaseTarget::Sqlite {
            path: path.to_path_buf(),
            source: "CG_DATA_DIR",
            pool: PoolSettings {
                max_size: 2,
                min_idle: None,
                connect_timeout: std::time::Duration::from_secs(5),
                acquire_timeout: std::time::Duration::from_secs(5),
            },
        };
        let db = Db::connect(&target).await?;
        let mut pooled = db.get().await?;
        if let Conn::Sqlite(c) = pooled.conn() {
            c.batch_execute(
                "CREATE TABLE IF NOT EXISTS outbox (
                    id TEXT PRIMARY KEY NOT NULL,
                    kind TEXT NOT NULL,
                    payload TEXT NOT NULL,
                    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
                )",
            )
            .await?;
        }
        drop(pooled);
        Ok(Self { db })
    }

    /// Keep a record for later.
    pub async fn push(&self, kind: &str, payload: &serde_json::Value) -> Result<()> {
        let body = serde_json::to_string(payload).map_err(|e| Error::Corrupt(e.to_string()))?;
        let mut pooled = self.db.get().await?;
        crate::with_conn!(&mut pooled.conn(), |c| {
            diesel::sql_query("INSERT INTO outbox (id, kind, payload) VALUES (?, ?, ?)")
                .bind::<Text, _>(Id::new().to_string())
                .bind::<Text, _>(kind)
                .bind::<Text, _>(body)
                .execute(c)
                .await
        })?;
        metrics::gauge!("cg_outbox_depth").increment(1.0);
        Ok(())
    }

    /// Records waiting.
    pub async fn depth(&self) -> Result<i64> {
        let mut pooled = self.db.get().await?;
        let row: Count = crate::with_conn!(&mut pooled.conn(), |c| {
            diesel::sql_query("SELECT count(*) AS n FROM outbox")
                .get_result(c)
                .await
        })?;
        metrics::gauge!("cg_outbox_depth").set(row.n as f64);
        Ok(row.n)
    }

    /// The oldest records, up to `limit`, oldest first. A replayer delivers each and then
    /// [`Outbox::remove`]s it, stopping at the first failure (the database is still away).
    pub async fn pending(&self, limit: i64) -> Result<Vec<Entry>> {
        let mut pooled = self.db.get().await?;
        let entries = crate::with_conn!(&mut pooled.conn(), |c| {
            diesel::sql_query("SELECT id, kind, payload FROM outbox ORDER BY id LIMIT ?")
                .bind::<BigInt, _>(limit)
                .load(c)
                .await
        })?;
        Ok(entries)
    }

    /// Forget a delivered record.
    pub async fn remove(&self, id: &str) -> Result<()> {
        let mut pooled = self.db.get().await?;
        crate::with_conn!(&mut pooled.conn(), |c| {
            diesel::sql_query("DELETE FROM outbox WHERE id = ?")
                .bind::<Text, _>(id)
                .execute(c)
                .await
        })?;
        metrics::gauge!("cg_outbox_depth").decrement(1.0);
        metrics::counter!("cg_outbox_replayed_total").increment(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn keeps_records_in_order_across_reopening_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.db");
        let outbox = Outbox::open(&path).await.unwrap();
        for i in 0..3 {
            outbox
                .push("rows", &serde_json::json!({"n": i}))
                .await
                .unwrap();
        }
        drop(outbox);
        let outbox = Outbox::open(&path).await.unwrap();
        assert_eq!(outbox.depth().await.unwrap(), 3);
        let pending = outbox.pending(2).await.unwrap();
        assert_eq!(pending.len(), 2);
        assert_eq!(pending[0].payload, r#"{"n":0}"#);
        assert_eq!(pending[1].payload, r#"{"n":1}"#);
        outbox.remove(&pending[0].id).await.unwrap();
        let rest = outbox.pending(10).await.unwrap();
        assert_eq!(
            rest.iter().map(|e| e.payload.as_str()).collect::<Vec<_>>(),
            [r#"{"n":1}"#, r#"{"n":2}"#]
        );
        assert!(rest.iter().all(|e| e.kind == "rows"));
    }
}
