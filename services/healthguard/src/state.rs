//! What healthguard's handlers share: the database, the outbox that stands in for it, and the
//! figures its health samples report.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use cg_storage::models::{HealthSample, PoisonResult};
use cg_storage::sql_types::{Id, Timestamp};
use cg_storage::{Db, Outbox};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const RESULTS: &str = "poison_results";
const METRICS: &str = "health_metrics";

/// Per-process state.
#[derive(Debug)]
pub struct HealthState {
    pub db: Db,
    pub outbox: Outbox,
    pub max_samples: usize,
    pub instance: String,
    pub in_flight: AtomicI64,
    pub requests: AtomicI64,
    pub started: Instant,
}

/// Where records went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stored {
    Database,
    Outbox,
    Failed,
}

impl HealthState {
    /// Store rows; when the database does not take them, keep them in the outbox for replay.
    pub async fn persist_results(&self, rows: &[PoisonResult]) -> Stored {
        let direct = async {
            let mut pooled = self.db.get().await?;
            PoisonResult::insert_all(&mut pooled.conn(), rows).await
        };
        match direct.await {
            Ok(_) => Stored::Database,
            Err(e) => self.keep(RESULTS, &json!(rows), &e).await,
        }
    }

    async fn persist_sample(&self, sample: &HealthSample) -> Stored {
        let direct = async {
            let mut pooled = self.db.get().await?;
            HealthSample::insert_all(&mut pooled.conn(), std::slice::from_ref(sample)).await
        };
        match direct.await {
            Ok(_) => Stored::Database,
            Err(e) => self.keep(METRICS, &json!([sample]), &e).await,
        }
    }

    async fn keep(
        &self,
        kind: &str,
        payload: &serde_json::Value,
        cause: &cg_storage::Error,
    ) -> Stored {
        tracing::warn!(error = %cause, "database unavailable: records kept in the outbox");
        match self.outbox.push(kind, payload).await {
            Ok(()) => Stored::Outbox,
            Err(e) => {
                tracing::error!(error = %e, "the outbox refused records too; they are lost");
                metrics::counter!("cg_healthguard_records_lost_total").increment(1);
                Stored::Failed
            }
        }
    }

    /// Replay the outbox into the database every `every` until `shutdown`.
    pub async fn replay_every(
        self: std::sync::Arc<Self>,
        every: Duration,
        shutdown: CancellationToken,
    ) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            if let Err(e) = self.replay_once().await {
                tracing::debug!(error = %e, "outbox replay paused");
            }
        }
    }

    /// Deliver the outbox's records until one fails or it is empty (see [`Outbox::drain`]).
    /// Returns how many were delivered.
    pub async fn replay_once(&self) -> cg_storage::Result<usize> {
        self.outbox
            .drain(|entry| async move { self.deliver(&entry).await })
            .await
    }

    async fn deliver(&self, entry: &cg_storage::outbox::Entry) -> cg_storage::Result<()> {
        let bad = |e: serde_json::Error| cg_storage::Error::Corrupt(e.to_string());
        let mut pooled = self.db.get().await?;
        let conn = &mut pooled.conn();
        match entry.kind.as_str() {
            RESULTS => {
                let rows: Vec<PoisonResult> = serde_json::from_str(&entry.payload).map_err(bad)?;
                PoisonResult::insert_all(conn, &rows).await?;
            }
            METRICS => {
                let rows: Vec<HealthSample> = serde_json::from_str(&entry.payload).map_err(bad)?;
                HealthSample::insert_all(conn, &rows).await?;
            }
            other => tracing::warn!(kind = other, "dropping an outbox record of unknown kind"),
        }
        Ok(())
    }

    /// Record this process's health every `every` until `shutdown`.
    pub async fn sample_every(
        self: std::sync::Arc<Self>,
        every: Duration,
        shutdown: CancellationToken,
    ) {
        let mut last_cpu = cpu_seconds();
        let mut last_at = Instant::now();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            let cpu = cpu_seconds();
            let elapsed = last_at.elapsed().as_secs_f64().max(1e-9);
            let cpu_percent = ((cpu - last_cpu) / elapsed * 100.0).max(0.0);
            (last_cpu, last_at) = (cpu, Instant::now());
            let depth = self.outbox.depth().await.unwrap_or(-1);
            let sample = HealthSample {
                id: Id::new(),
                created_at: Timestamp::now(),
                instance: self.instance.clone(),
                status: if depth > 0 { "degraded" } else { "healthy" }.into(),
                memory_bytes: resident_bytes(),
                cpu_percent,
                in_flight: self.in_flight.load(Ordering::Relaxed),
                requests_total: self.requests.load(Ordering::Relaxed),
                details: json!({"outbox_depth": depth, "uptime_seconds": self.started.elapsed().as_secs()}),
            };
            self.persist_sample(&sample).await;
        }
    }
}

/// Resident memory from `/proc/self/statm` (0 where it does not exist).
pub fn resident_bytes() -> i64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<i64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

/// User plus system CPU time from `/proc/self/stat`, seconds (clock ticks of 1/100 s).
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces) start after ')'.
            let rest = s.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(0.0)
}
