//! `/health`, `/health/live` and `/health/ready`.
//!
//! Liveness says the process answers. Readiness says it can do its job: every required dependency
//! answers, or a fallback serves in its place (reported as `degraded`, not `unhealthy`).
//!
//! The public listener shows the shared spec's shape (`status, service, version, timestamp,
//! dependencies, circuit_breakers`) with one status word per dependency: no backend addresses,
//! no probe errors. The admin listener (`CG_ADMIN_PORT`) shows everything: backend, target,
//! latency and error of each probe, and the service's own figures (outbox depth, rate limiter,
//! usage backlog).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use cg_storage::{Outbox, Storage};
use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::server::Kit;

/// What a readiness check found.
#[derive(Debug, Clone, Default)]
pub struct HealthReport {
    /// Per dependency (`postgres`, `redis`, `s3`, …): status, backend, latency, error.
    pub dependencies: Map<String, Value>,
    /// Whether the service can serve requests.
    pub ready: bool,
    /// Serving, but something is not as configured (a fallback is active).
    pub degraded: bool,
    /// Further top-level fields of `/health` (e.g. `circuit_breakers` on the gateway).
    pub extra: Map<String, Value>,
}

/// How a service reports its health.
pub trait Readiness: Send + Sync + 'static {
    /// Probe dependencies.
    fn check(&self) -> BoxFuture<'_, HealthReport>;

    /// Refresh gauges that are read rather than tracked (pool sizes); called on each scrape.
    fn refresh_metrics(&self) {}
}

/// Readiness from the storage backends a service uses: ready when every one answers.
#[derive(Debug, Clone)]
pub struct StorageReadiness {
    pub storage: Storage,
}

impl Readiness for StorageReadiness {
    fn check(&self) -> BoxFuture<'_, HealthReport> {
        Box::pin(async move {
            let health = self.storage.health().await;
            let ready = health.all_ok();
            let dependencies = match serde_json::to_value(&health) {
                Ok(Value::Object(map)) => map,
                _ => Map::new(),
            };
            HealthReport {
                dependencies,
                ready,
                degraded: false,
                extra: Map::new(),
            }
        })
    }

    fn refresh_metrics(&self) {
        self.storage.record_pool_metrics();
    }
}

/// Readiness of a service whose records fall back to a local [`Outbox`] while the database is
/// away: still ready (degraded) when the outbox works, degraded while it holds records, and its
/// depth in the report.
#[derive(Debug, Clone)]
pub struct OutboxReadiness {
    pub storage: StorageReadiness,
    pub outbox: Outbox,
}

impl Readiness for OutboxReadiness {
    fn check(&self) -> BoxFuture<'_, HealthReport> {
        Box::pin(async move {
            let mut report = self.storage.check().await;
            let depth = self.outbox.depth().await;
            if !report.ready && depth.is_ok() {
                report.ready = true;
                report.degraded = true;
            }
            if depth.as_ref().is_ok_and(|d| *d > 0) {
                report.degraded = true;
            }
            report
                .extra
                .insert("outbox_depth".into(), serde_json::json!(depth.ok()));
            report
        })
    }

    fn refresh_metrics(&self) {
        self.storage.refresh_metrics();
    }
}

/// Top-level fields of the report the public `/health` shows (the shared spec's shape).
const PUBLIC_FIELDS: [&str; 1] = ["circuit_breakers"];

/// Each dependency's status word only (`{"postgres": {"status": "ok"}}`).
fn public_dependencies(dependencies: &Map<String, Value>) -> Map<String, Value> {
    dependencies
        .iter()
        .map(|(name, probe)| {
            (
                name.clone(),
                serde_json::json!({"status": probe["status"].as_str().unwrap_or("unknown")}),
            )
        })
        .collect()
}

#[derive(Serialize)]
struct PublicHealthBody<'a> {
    status: &'static str,
    service: &'a str,
    version: &'a str,
    timestamp: String,
    dependencies: Map<String, Value>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Serialize)]
struct HealthBody<'a> {
    status: &'static str,
    service: &'a str,
    version: &'a str,
    timestamp: String,
    uptime_seconds: u64,
    dependencies: &'a Map<String, Value>,
    #[serde(flatten)]
    extra: &'a Map<String, Value>,
}

fn overall(report: &HealthReport) -> (&'static str, StatusCode) {
    match (report.ready, report.degraded) {
        (false, _) => ("unhealthy", StatusCode::SERVICE_UNAVAILABLE),
        (true, true) => ("degraded", StatusCode::OK),
        (true, false) => ("healthy", StatusCode::OK),
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `GET /health` (public): the overall status and one status word per dependency.
pub async fn health(kit: web::Data<Kit>) -> HttpResponse {
    let report = kit.readiness.check().await;
    let (status, code) = overall(&report);
    HttpResponse::build(code).json(PublicHealthBody {
        status,
        service: kit.service,
        version: kit.version,
        timestamp: now(),
        dependencies: public_dependencies(&report.dependencies),
        extra: PUBLIC_FIELDS
            .iter()
            .filter_map(|&k| Some((k.to_owned(), report.extra.get(k)?.clone())))
            .collect(),
    })
}

/// `GET /health` (admin listener): everything known about this replica's health.
pub async fn health_detail(kit: web::Data<Kit>) -> HttpResponse {
    let report = kit.readiness.check().await;
    let (status, code) = overall(&report);
    HttpResponse::build(code).json(HealthBody {
        status,
        service: kit.service,
        version: kit.version,
        timestamp: now(),
        uptime_seconds: kit.started.elapsed().as_secs(),
        dependencies: &report.dependencies,
        extra: &report.extra,
    })
}

/// `GET /health/live`: the process answers.
pub async fn live(kit: web::Data<Kit>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "status": "alive",
        "service": kit.service,
        "version": kit.version,
    }))
}

/// `GET /health/ready`: 503 when a required dependency is down and nothing serves in its place.
pub async fn ready(kit: web::Data<Kit>) -> HttpResponse {
    let report = kit.readiness.check().await;
    let code = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    HttpResponse::build(code).json(serde_json::json!({
        "status": if report.ready { "ready" } else { "not_ready" },
        "service": kit.service,
        "degraded": report.degraded,
        "dependencies": public_dependencies(&report.dependencies),
    }))
}

/// The public listener's health routes (the probes Kubernetes and load balancers use).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health))
        .route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready));
}

/// The admin listener's routes: `/metrics`, the detailed `/health`, and liveness.
pub fn admin_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health_detail))
        .route("/health/live", web::get().to(live))
        .route("/metrics", web::get().to(crate::metrics::render));
}
