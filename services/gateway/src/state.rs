//! What every gateway handler shares.

use std::sync::Arc;

use cg_storage::{Cache, Db, Storage};

use crate::auth::api_keys::ApiKeys;
use crate::auth::memberships::Memberships;
use crate::auth::revocations::Revocations;
use crate::auth::sessions::SessionStore;
use crate::auth::tokens::TokenIssuer;
use crate::config::{Config, GatewaySettings};
use crate::experiments::Experiments;
use crate::files::Files;
use crate::guards::GuardRegistry;
use crate::orgs::OrgProfiles;
use crate::traffic::{Budgets, DynamicConfig, RateLimiter, UsageMeter, WorkerCaches};

/// Application state (one per process, shared by every worker).
#[derive(Debug)]
pub struct AppState {
    pub db: Db,
    pub cache: Cache,
    pub storage: Storage,
    pub tokens: TokenIssuer,
    pub sessions: SessionStore,
    /// Ended sessions whose access tokens have not expired yet.
    pub revocations: Arc<Revocations>,
    pub api_keys: Arc<ApiKeys>,
    pub memberships: Arc<Memberships>,
    pub guards: Arc<GuardRegistry>,
    pub org_profiles: OrgProfiles,
    pub rate_limiter: RateLimiter,
    pub usage: Arc<UsageMeter>,
    pub budgets: Arc<Budgets>,
    pub config: Arc<DynamicConfig>,
    pub experiments: Arc<Experiments>,
    pub files: Arc<Files>,
    pub settings: GatewaySettings,
}

impl AppState {
    pub fn new(storage: &Storage, config: &Config) -> anyhow::Result<Self> {
        let db = storage.db()?.clone();
        let cache = storage.cache()?.clone();
        let settings = config.gateway.clone();
        // The same Redis as the shared connection, opened again by each worker thread.
        let workers = WorkerCaches::new(
            config
                .storage
                .resolve(cg_storage::Needs {
                    database: false,
                    cache: true,
                    blobs: false,
                })
                .ok()
                .and_then(|r| r.cache),
        );
        let dynamic = Arc::new(DynamicConfig::new(cache.clone()));
        let files = Arc::new(Files::new(
            db.clone(),
            storage.blobs()?.clone(),
            settings.file_fallback_dir(&config.storage),
            settings.jwt_secret(),
            settings.file_limits()?,
        ));
        let revocations = Arc::new(Revocations::new(cache.clone(), settings.access_token_ttl()));
        Ok(Self {
            tokens: TokenIssuer::new(settings.jwt_secret(), settings.access_token_ttl())?,
            sessions: SessionStore::new(
                config.storage.session_storage_type(),
                cache.clone(),
                db.clone(),
                config.storage.session_ttl(),
                settings.session_max_lifetime(),
                revocations.clone(),
            ),
            revocations,
            api_keys: Arc::new(ApiKeys::new(cache.clone(), db.clone())),
            memberships: Arc::new(Memberships::new(db.clone(), cache.clone())),
            guards: Arc::new(GuardRegistry::new(
                &settings,
                &config.server.internal_token(),
            )?),
            org_profiles: OrgProfiles::new(
                db.clone(),
                settings.org_profile_cache(),
                dynamic.clone(),
            ),
            rate_limiter: RateLimiter::new(
                cache.clone(),
                settings.gateway_rate_limit_fail_mode.unwrap_or_default(),
                settings.gateway_rate_burst_share.unwrap_or(0.5),
            )
            .with_worker_connections(workers.clone()),
            usage: Arc::new(UsageMeter::new(cache.clone(), db.clone())),
            experiments: Arc::new(Experiments::new(
                db.clone(),
                cache.clone(),
                settings.experiment_cache(),
            )),
            config: dynamic,
            files,
            budgets: Arc::new(
                Budgets::new(
                    cache.clone(),
                    settings.gateway_rate_limit_fail_mode.unwrap_or_default(),
                    settings.gateway_budget_reserve_usd_micros.unwrap_or(10_000),
                )
                .with_worker_connections(workers),
            ),
            db,
            cache,
            storage: storage.clone(),
            settings,
        })
    }
}
