//! What the guarded path needs to know about an organisation (the guards its tier allows, its
//! verdict thresholds), cached in process for 30 seconds so a request does not read the database.
//! A change of tier or settings reaches every replica within that time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cg_storage::Db;
use cg_storage::models::{Organization, Subscription};
use cg_storage::sql_types::Id;
use serde_json::Value;

use crate::error::Result;
use crate::traffic::DynamicConfig;

const MAX_ORGS: u64 = 100_000;
/// The longest a profile is kept, whatever the configuration says.
const MAX_TTL: Duration = Duration::from_secs(3600);
/// Rate-limit base of an organisation without a subscription in force (it can call no guard).
const NO_TIER_PER_MINUTE: u64 = 10;

/// The cached facts about one organisation.
#[derive(Debug, Clone)]
pub struct OrgProfile {
    /// Guard names the tier allows (`*` for all); empty without a subscription in force.
    pub guards_allowed: Vec<String>,
    pub tier: Option<String>,
    /// The tier's guard calls per minute (rate limits scale from it).
    pub requests_per_minute: u64,
    /// Guard calls allowed per calendar month (0: no quota).
    pub requests_per_month: u64,
    /// The monthly USD budget in micro-dollars (0: none).
    pub monthly_budget_usd_micros: i64,
    pub settings: Value,
    /// The tier's feature flags (`{"ab_testing": true, …}`); null without a subscription.
    pub features: Value,
    /// When it was read from the database.
    pub loaded_at: Instant,
}

impl OrgProfile {
    pub fn allows(&self, guard: &str) -> bool {
        self.guards_allowed.iter().any(|g| g == guard || g == "*")
    }

    /// Whether the tier turns `feature` on.
    pub fn has_feature(&self, feature: &str) -> bool {
        self.features[feature].as_bool() == Some(true)
    }
}

/// The cache.
#[derive(Debug, Clone)]
pub struct OrgProfiles {
    db: Db,
    /// `None`: read every time (a TTL of zero).
    cache: Option<moka::future::Cache<Id, Arc<OrgProfile>>>,
    ttl: Duration,
    /// Dynamic configuration may shorten or lengthen `ttl` (`cache.org_profile_ttl_secs`).
    config: Arc<DynamicConfig>,
}

impl OrgProfiles {
    /// Profiles are kept for `ttl` (`ORG_PROFILE_CACHE_SECS`, 30), or for what dynamic
    /// configuration says (at most an hour); a start-up TTL of zero reads every time.
    pub fn new(db: Db, ttl: Duration, config: Arc<DynamicConfig>) -> Self {
        Self {
            db,
            cache: (!ttl.is_zero()).then(|| {
                moka::future::Cache::builder()
                    .max_capacity(MAX_ORGS)
                    .time_to_live(MAX_TTL)
                    .build()
            }),
            ttl,
            config,
        }
    }

    pub async fn get(&self, org: Id) -> Result<Arc<OrgProfile>> {
        let max_age = self.config.org_profile_ttl().unwrap_or(self.ttl);
        if let Some(cache) = &self.cache
            && let Some(hit) = cache.get(&org).await
            && hit.loaded_at.elapsed() < max_age
        {
            return Ok(hit);
        }
        let mut pooled = self.db.get().await?;
        let conn = &mut pooled.conn();
        let organization = Organization::find(conn, org).await?;
        let current = Subscription::current(conn, org).await?;
        let profile = Arc::new(OrgProfile {
            guards_allowed: current
                .as_ref()
                .and_then(|(_, t)| t.guards_allowed.as_array().cloned())
                .unwrap_or_default()
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            requests_per_minute: current.as_ref().map_or(NO_TIER_PER_MINUTE, |(_, t)| {
                u64::try_from(t.requests_per_minute).unwrap_or(0)
            }),
            requests_per_month: current
                .as_ref()
                .map_or(0, |(_, t)| u64::try_from(t.requests_per_month).unwrap_or(0)),
            monthly_budget_usd_micros: current
                .as_ref()
                .map_or(0, |(_, t)| t.monthly_budget_usd_micros),
            features: current
                .as_ref()
                .map_or(Value::Null, |(_, t)| t.features.clone()),
            tier: current.map(|(_, t)| t.name),
            settings: organization.settings,
            loaded_at: Instant::now(),
        });
        if let Some(cache) = &self.cache {
            cache.insert(org, profile.clone()).await;
        }
        Ok(profile)
    }

    /// Forget every organisation (after a tier they may be on changed through this replica).
    pub fn invalidate_all(&self) {
        if let Some(cache) = &self.cache {
            cache.invalidate_all();
        }
    }

    /// Forget an organisation (after a change made through this replica).
    pub async fn invalidate(&self, org: Id) {
        if let Some(cache) = &self.cache {
            cache.invalidate(&org).await;
        }
    }
}
