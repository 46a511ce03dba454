//! cg-service-kit: what every CodeGuardians binary shares, so each service's `main.rs` stays a
//! few lines: configuration loading, telemetry (JSON logs, optional OTLP traces), the health and
//! metrics routes, the JSON error envelope of the public contract, request ids, the internal-token
//! check guards use, body limits and graceful shutdown.

pub mod app;
pub mod config;
pub mod error;
pub mod health;
pub mod internal_auth;
pub mod metrics;
pub mod observe;
pub mod server;
pub mod startup;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

/// Every service allocates through mimalloc: per-thread free lists instead of glibc's arenas,
/// measurably cheaper for the many small, short-lived allocations of a request (see
/// docs/benchmarks.md) and without glibc's per-thread arenas holding on to memory.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub use app::{Application, ServiceSpec};
pub use config::ServerConfig;
pub use error::{ApiError, ErrorBody};
pub use health::{HealthReport, OutboxReadiness, Readiness, StorageReadiness};
pub use server::{Kit, ServiceServer};
