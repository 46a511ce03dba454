//! The Prometheus recorder (one per process) and the `/metrics` route.
//!
//! Every crate records through the `metrics` facade; this renders what was recorded as
//! Prometheus text. Gauges that are cheaper to read than to track (pool sizes) are refreshed by
//! the service's [`Readiness::refresh_metrics`](crate::health::Readiness::refresh_metrics) on each
//! scrape.

use std::sync::OnceLock;

use actix_web::{HttpResponse, web};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::server::Kit;

/// Latency buckets (seconds): fine-grained below 10 ms where the guarded path lives.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Install the recorder on first use; later calls (several apps in one test process) share it.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new();
            let builder = match builder
                .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), LATENCY_BUCKETS)
            {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "default latency buckets kept");
                    PrometheusBuilder::new()
                }
            };
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
            }
            handle
        })
        .clone()
}

/// `GET /metrics`: Prometheus text.
pub async fn render(kit: web::Data<Kit>) -> HttpResponse {
    kit.readiness.refresh_metrics();
    let handle = handle();
    handle.run_upkeep();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(handle.render())
}
