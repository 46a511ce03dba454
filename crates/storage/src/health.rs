//! Health probes of every backend a service uses, and pool figures for `/metrics`.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;

use crate::Storage;
use crate::config::Mode;
use crate::error::Result;

/// How long one probe may take before the backend counts as down.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// `ok` or `error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeStatus {
    Ok,
    Error,
}

/// The outcome of probing one backend.
#[derive(Debug, Clone, Serialize)]
pub struct BackendHealth {
    /// `ok` or `error`.
    pub status: ProbeStatus,
    /// What actually serves this role: `postgres`/`sqlite`, `redis`/`memory`, `s3`/`local`.
    pub backend: &'static str,
    pub mode: Mode,
    /// Where it points, without secrets.
    pub target: String,
    pub latency_ms: Option<f64>,
    pub error: Option<String>,
}

/// Health of the backends a service uses, keyed as the public `/health` contract names them
/// (`postgres`, `redis`, `s3`) whichever implementation serves the role.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StorageHealth {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgres: Option<BackendHealth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<BackendHealth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3: Option<BackendHealth>,
}

impl StorageHealth {
    /// Whether every probed backend answered.
    pub fn all_ok(&self) -> bool {
        [&self.postgres, &self.redis, &self.s3]
            .into_iter()
            .flatten()
            .all(|b| b.status == ProbeStatus::Ok)
    }
}

async fn probe<F>(backend: &'static str, mode: Mode, target: String, f: F) -> BackendHealth
where
    F: Future<Output = Result<Duration>>,
{
    let outcome = tokio::time::timeout(PROBE_TIMEOUT, f).await;
    let (status, latency_ms, error) = match outcome {
        Ok(Ok(d)) => (
            ProbeStatus::Ok,
            Some((d.as_secs_f64() * 1e6).round() / 1e3),
            None,
        ),
        Ok(Err(e)) => (ProbeStatus::Error, None, Some(e.to_string())),
        Err(_) => (
            ProbeStatus::Error,
            None,
            Some(format!("no answer within {} ms", PROBE_TIMEOUT.as_millis())),
        ),
    };
    metrics::gauge!("cg_backend_up", "backend" => backend).set(if status == ProbeStatus::Ok {
        1.0
    } else {
        0.0
    });
    BackendHealth {
        status,
        backend,
        mode,
        target,
        latency_ms,
        error,
    }
}

impl Storage {
    /// Probe every configured backend concurrently.
    pub async fn health(&self) -> StorageHealth {
        let db = async {
            match &self.db {
                Some(db) => Some(probe(db.backend(), db.mode(), db.display(), db.ping()).await),
                None => None,
            }
        };
        let cache = async {
            match &self.cache {
                Some(c) => {
                    Some(probe(c.backend(), c.mode(), c.prefix().to_owned(), c.ping()).await)
                }
                None => None,
            }
        };
        let blobs = async {
            match &self.blobs {
                Some(b) => {
                    Some(probe(b.backend(), b.mode(), b.display().to_owned(), b.ping()).await)
                }
                None => None,
            }
        };
        let (postgres, redis, s3) = tokio::join!(db, cache, blobs);
        StorageHealth {
            postgres,
            redis,
            s3,
        }
    }

    /// Publish pool gauges; called when `/metrics` is scraped.
    pub fn record_pool_metrics(&self) {
        if let Some(db) = &self.db {
            let s = db.pool_stats();
            let backend = db.backend();
            metrics::gauge!("cg_db_pool_connections", "backend" => backend, "state" => "idle")
                .set(f64::from(s.idle));
            metrics::gauge!("cg_db_pool_connections", "backend" => backend, "state" => "in_use")
                .set(f64::from(s.size.saturating_sub(s.idle)));
            metrics::gauge!("cg_db_pool_max_connections", "backend" => backend)
                .set(f64::from(s.max_size));
            metrics::counter!("cg_db_pool_waits_total", "backend" => backend)
                .absolute(s.gets_waited);
            metrics::counter!("cg_db_pool_timeouts_total", "backend" => backend)
                .absolute(s.gets_timed_out);
        }
        if let Some(crate::cache::Cache::Memory(m)) = &self.cache {
            metrics::gauge!("cg_cache_memory_entries").set(m.entry_count() as f64);
        }
    }
}
