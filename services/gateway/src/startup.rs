//! Assembling the gateway: storage, shared state, background tasks, routes.

use std::time::Duration;

use std::sync::Arc;

use actix_web::web;
use cg_service_kit::config::ConfigError;
use cg_service_kit::health::HealthReport;
use cg_service_kit::{Application, Readiness, ServiceSpec, StorageReadiness};
use cg_storage::config::Needs;
use cg_storage::models::SubscriptionTier;
use futures::future::BoxFuture;

use crate::config::Config;
use crate::guards::GuardRegistry;
use crate::state::AppState;
use crate::traffic::{FailMode, lease};
use crate::{DEFAULT_PORT, SERVICE, routes};

/// What the gateway is at start-up.
pub const SPEC: ServiceSpec = ServiceSpec {
    name: SERVICE,
    version: env!("CARGO_PKG_VERSION"),
    default_port: DEFAULT_PORT,
    needs: Needs::ALL,
};

/// How often budget refunds are applied.
const BUDGET_REFUNDS: Duration = Duration::from_millis(200);

/// How often usage tallies go to Redis and the database.
const USAGE_FLUSH: Duration = Duration::from_secs(1);

/// How often API-key `last_used_at` times are written.
const LAST_USED_FLUSH: Duration = Duration::from_secs(30);

/// Connect storage, start the background tasks and bind the listeners (`CG_PORT=0` picks free
/// ports); refuse to start when `DEFAULT_TIER` names no active tier.
pub async fn build(config: Config) -> anyhow::Result<Application> {
    let cleanup_every = config.storage.session_cleanup_interval();
    let default_tier = config.gateway.default_tier().to_owned();
    let app = Application::build(&SPEC, &config.server, &config.storage, |storage, kit| {
        let state = web::Data::new(AppState::new(storage, &config)?);
        kit.readiness = Arc::new(GatewayReadiness {
            storage: StorageReadiness {
                storage: storage.clone(),
            },
            guards: state.guards.clone(),
            state: state.clone(),
        });
        let shutdown = kit.shutdown.clone();
        tokio::spawn(
            state
                .sessions
                .clone()
                .clean_up_every(cleanup_every, shutdown.clone()),
        );
        tokio::spawn(state.api_keys.clone().follow_revocations(shutdown.clone()));
        tokio::spawn(state.revocations.clone().follow(shutdown.clone()));
        {
            let state = state.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move { state.memberships.follow(shutdown).await });
        }
        tokio::spawn(state.config.clone().follow(shutdown.clone()));
        tokio::spawn(
            state
                .files
                .clone()
                .sync_every(config.gateway.file_sync_interval(), shutdown.clone()),
        );
        {
            let state = state.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move { state.experiments.follow(shutdown).await });
        }
        // What these hold (refunds, leased units, usage tallies, last-used times) is handed over
        // once more on the way out, and the server waits for it.
        kit.spawn_finishing(
            state
                .budgets
                .clone()
                .refund_every(BUDGET_REFUNDS, shutdown.clone()),
        );
        {
            let state = state.clone();
            let shutdown = shutdown.clone();
            kit.spawn_finishing(async move {
                state
                    .rate_limiter
                    .release_every(lease::LIFETIME, shutdown)
                    .await;
            });
        }
        kit.spawn_finishing(
            state
                .usage
                .clone()
                .flush_every(USAGE_FLUSH, shutdown.clone()),
        );
        kit.spawn_finishing(
            state
                .api_keys
                .clone()
                .flush_last_used_every(LAST_USED_FLUSH, shutdown),
        );
        Ok(move |cfg: &mut web::ServiceConfig| {
            cfg.app_data(state.clone());
            routes::configure(cfg);
        })
    })
    .await?;
    check_default_tier(app.storage(), &default_tier).await?;
    Ok(app)
}

/// `DEFAULT_TIER` must name an active tier, or every registration would fail.
async fn check_default_tier(storage: &cg_storage::Storage, name: &str) -> anyhow::Result<()> {
    let db = storage.db()?;
    let mut pooled = db.get().await?;
    let conn = &mut pooled.conn();
    match SubscriptionTier::find_by_name(conn, name).await {
        Ok(tier) if tier.is_active => Ok(()),
        Ok(_) => Err(ConfigError::err(format!(
            "DEFAULT_TIER {name:?} is not active; activate it or name another"
        ))),
        Err(cg_storage::Error::NotFound) => {
            let known = SubscriptionTier::list_active(conn).await?;
            Err(ConfigError::err(format!(
                "DEFAULT_TIER {name:?} names no tier; active tiers: {}",
                known
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// Storage readiness plus the guards' circuit breakers in `/health` (a guard being down does not
/// make the gateway unready: it answers 503 for that guard only).
struct GatewayReadiness {
    storage: StorageReadiness,
    guards: Arc<GuardRegistry>,
    state: web::Data<AppState>,
}

impl Readiness for GatewayReadiness {
    fn check(&self) -> BoxFuture<'_, HealthReport> {
        Box::pin(async move {
            let mut report = self.storage.check().await;
            // Redis away while rate limits fall back (local or open), or S3 away while uploads
            // go to local disk: serving, degraded.
            let limiter = &self.state.rate_limiter;
            let failing: Vec<&String> = report
                .dependencies
                .iter()
                .filter(|(_, v)| v["status"] != "ok")
                .map(|(k, _)| k)
                .collect();
            let has_fallback = |k: &str| match k {
                "redis" => limiter.fail_mode() != FailMode::Closed,
                "s3" => self.state.files.has_fallback(),
                _ => false,
            };
            if !report.ready && failing.iter().all(|k| has_fallback(k)) {
                report.ready = true;
                report.degraded = true;
            }
            report.extra.insert(
                "rate_limiter".into(),
                serde_json::json!({
                    "fail_mode": format!("{:?}", limiter.fail_mode()).to_lowercase(),
                    "using": if failing.iter().any(|k| k.as_str() == "redis") || limiter.is_degraded() {
                        match limiter.fail_mode() {
                            FailMode::Local => "local",
                            FailMode::Open => "none (fail open)",
                            FailMode::Closed => "none (fail closed)",
                        }
                    } else {
                        "redis"
                    },
                }),
            );
            report
                .extra
                .insert("config".into(), self.state.config.status());
            report.extra.insert(
                "files".into(),
                serde_json::json!({
                    "local_fallback": self.state.files.has_fallback(),
                    "waiting_for_s3": self.state.files.waiting().await,
                }),
            );
            report.extra.insert(
                "usage_backlog".into(),
                serde_json::json!(self.state.usage.backlog()),
            );
            report.extra.insert(
                "circuit_breakers".into(),
                serde_json::Value::Object(self.guards.breaker_states()),
            );
            report
        })
    }

    fn refresh_metrics(&self) {
        self.storage.refresh_metrics();
    }
}
