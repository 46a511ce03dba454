//! A durable local outbox: append-only records (analysis results, audit rows, metrics) that could
//! not reach the database are kept in a local SQLite file and replayed once it answers again. The
//! records carry their UUIDv7 ids and are inserted with insert-or-ignore, so a replay that is
//! interrupted and repeated stores nothing twice.

use std::future::Future;
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
struct Backlog {
    #[diesel(sql_type = BigInt)]
    n: i64,
    /// Seconds the oldest record has waited (0 when none does).
    #[diesel(sql_type = diesel::sql_types::Double)]
    oldest_age: f64,
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

    /// Records waiting; also refreshes the depth and oldest-age gauges, since a backlog that
    /// stops shrinking (the database away for long) shows in its age, not its size.
    pub async fn depth(&self) -> Result<i64> {
        let mut pooled = self.db.get().await?;
        let row: Backlog = crate::with_conn!(&mut pooled.conn(), |c| {
            diesel::sql_query(
                "SELECT count(*) AS n, COALESCE((julianday('now') - julianday(min(created_at))) \
                 * 86400.0, 0.0) AS oldest_age FROM outbox",
            )
            .get_result(c)
            .await
        })?;
        metrics::gauge!("cg_outbox_depth").set(row.n as f64);
        metrics::gauge!("cg_outbox_oldest_age_seconds").set(row.oldest_age.max(0.0));
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

    /// Deliver every record, oldest first, with `deliver`, removing each once delivered, until
    /// one fails (the database is still away: the rest wait for the next call) or none are left.
    /// A record `deliver` reports as [`Error::Corrupt`] is dropped with a log line instead, so one
    /// bad record never holds up those behind it. Returns how many were delivered.
    pub async fn drain<F, Fut>(&self, mut deliver: F) -> Result<usize>
    where
        F: FnMut(Entry) -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        const BATCH: i64 = 200;
        let mut delivered = 0;
        loop {
            let entries = self.pending(BATCH).await?;
            if entries.is_empty() {
                break;
            }
            for entry in entries {
                let (id, kind) = (entry.id.clone(), entry.kind.clone());
                match deliver(entry).await {
                    Ok(()) => delivered += 1,
                    Err(Error::Corrupt(why)) => {
                        tracing::error!(
                            id,
                            kind,
                            why,
                            "dropping an outbox record that cannot be read"
                        );
                        metrics::counter!("cg_outbox_dropped_total").increment(1);
                    }
                    Err(e) => return Err(e),
                }
                self.remove(&id).await?;
            }
        }
        if delivered > 0 {
            tracing::info!(outbox.delivered = delivered, "outbox records replayed");
        }
        Ok(delivered)
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

    #[tokio::test(flavor = "multi_thread")]
    async fn drain_delivers_in_order_and_a_bad_record_does_not_block_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(&dir.path().join("outbox.db")).await.unwrap();
        for payload in [
            serde_json::json!(1),
            serde_json::json!("bad"),
            serde_json::json!(3),
        ] {
            outbox.push("n", &payload).await.unwrap();
        }
        // The database is away: nothing is removed.
        let away = outbox
            .drain(|_| async { Err(Error::unavailable("postgres", "down")) })
            .await;
        assert!(away.is_err());
        assert_eq!(outbox.depth().await.unwrap(), 3);
        let mut seen = Vec::new();
        let n = outbox
            .drain(|e| {
                let parsed: std::result::Result<u32, _> = serde_json::from_str(&e.payload);
                if let Ok(v) = parsed {
                    seen.push(v);
                }
                async move {
                    parsed
                        .map(|_| ())
                        .map_err(|e| Error::Corrupt(e.to_string()))
                }
            })
            .await
            .unwrap();
        assert_eq!((n, seen), (2, vec![1, 3]));
        assert_eq!(outbox.depth().await.unwrap(), 0);
    }
}
