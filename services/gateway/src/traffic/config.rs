//! Dynamic configuration shared by every replica: one versioned JSON document in Redis
//! (`config:current`), changed by platform administrators through `/api/v1/config/*`. A change is
//! published on `config:changed`; every replica fetches and applies it at once (and polls every
//! few seconds in case it missed a message). A replica keeps its last good copy while Redis is
//! away. Every change is kept as `config:change:{version}` with who made it and the previous value.
//!
//! Sections applied today: `rate_limits` (`burst_share`, and per tier `requests_per_minute`
//! overriding the tier's), `feature_flags` (names → booleans, for clients and services to
//! read) and `cache` (`org_profile_ttl_secs`: how long a replica trusts its copy of an
//! organisation's tier and settings).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use cg_storage::Cache;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::error::{GatewayError, Result};

pub const CHANGED_CHANNEL: &str = "config:changed";
const CURRENT: &str = "config:current";
const VERSION: &str = "config:version";
const LOCK: &str = "config:lock";
const POLL: Duration = Duration::from_secs(5);

/// The editable sections.
pub const SECTIONS: [&str; 3] = ["rate_limits", "feature_flags", "cache"];

/// The document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigDoc {
    pub version: i64,
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub updated_by: Option<String>,
    #[serde(default)]
    pub rate_limits: Value,
    #[serde(default)]
    pub feature_flags: Value,
    #[serde(default)]
    pub cache: Value,
}

impl ConfigDoc {
    fn section(&self, name: &str) -> &Value {
        match name {
            "rate_limits" => &self.rate_limits,
            "feature_flags" => &self.feature_flags,
            _ => &self.cache,
        }
    }

    fn section_mut(&mut self, name: &str) -> &mut Value {
        match name {
            "rate_limits" => &mut self.rate_limits,
            "feature_flags" => &mut self.feature_flags,
            _ => &mut self.cache,
        }
    }
}

/// Check a section's new value; the error says what is wrong.
pub fn validate(section: &str, value: &Value) -> std::result::Result<(), String> {
    let Some(map) = value.as_object() else {
        return Err(format!("{section} must be a JSON object"));
    };
    match section {
        "rate_limits" => {
            for (k, v) in map {
                match k.as_str() {
                    "burst_share" => {
                        if !v.as_f64().is_some_and(|f| f > 0.0 && f <= 1.0) {
                            return Err("rate_limits.burst_share must be in (0, 1]".into());
                        }
                    }
                    "tiers" => {
                        let Some(tiers) = v.as_object() else {
                            return Err("rate_limits.tiers must map tier names to objects".into());
                        };
                        for (tier, limits) in tiers {
                            let ok = limits.as_object().is_some_and(|l| {
                                l.iter().all(|(lk, lv)| {
                                    lk == "requests_per_minute"
                                        && lv.as_u64().is_some_and(|n| (1..=1_000_000).contains(&n))
                                })
                            });
                            if !ok {
                                return Err(format!(
                                    "rate_limits.tiers.{tier} may only set requests_per_minute (1 to 1000000)"
                                ));
                            }
                        }
                    }
                    other => {
                        return Err(format!(
                            "rate_limits.{other} is not a setting (burst_share, tiers)"
                        ));
                    }
                }
            }
        }
        "feature_flags" => {
            if let Some((k, _)) = map.iter().find(|(_, v)| !v.is_boolean()) {
                return Err(format!("feature_flags.{k} must be true or false"));
            }
        }
        "cache" => {
            for (k, v) in map {
                if k != "org_profile_ttl_secs"
                    || !v.as_f64().is_some_and(|f| (0.0..=3600.0).contains(&f))
                {
                    return Err(format!(
                        "cache.{k}: the only setting is org_profile_ttl_secs (0 to 3600)"
                    ));
                }
            }
        }
        other => return Err(format!("{other} is not a configuration section")),
    }
    Ok(())
}

/// What this replica applies.
#[derive(Debug)]
pub struct DynamicConfig {
    cache: Cache,
    current: RwLock<Arc<ConfigDoc>>,
    status: RwLock<(Option<Instant>, Option<String>)>,
}

impl DynamicConfig {
    pub fn new(cache: Cache) -> Self {
        Self {
            cache,
            current: RwLock::new(Arc::new(ConfigDoc::default())),
            status: RwLock::new((None, None)),
        }
    }

    /// The configuration in force here.
    pub fn get(&self) -> Arc<ConfigDoc> {
        self.current.read().map(|c| c.clone()).unwrap_or_default()
    }

    /// The per-minute limit for `tier`: the configured override, else the tier's own.
    pub fn requests_per_minute(&self, tier: Option<&str>, own: u64) -> u64 {
        let doc = self.get();
        tier.and_then(|t| doc.rate_limits["tiers"][t]["requests_per_minute"].as_u64())
            .unwrap_or(own)
    }

    /// `cache.org_profile_ttl_secs`, when set.
    pub fn org_profile_ttl(&self) -> Option<Duration> {
        self.get().cache["org_profile_ttl_secs"]
            .as_f64()
            .filter(|s| s.is_finite() && (0.0..=3600.0).contains(s))
            .map(Duration::from_secs_f64)
    }

    pub fn burst_share(&self) -> Option<f64> {
        self.get().rate_limits["burst_share"].as_f64()
    }

    /// Fetch the shared document and apply it when it is newer; keeps the last good copy on
    /// failure.
    pub async fn reload(&self) -> Result<i64> {
        let fetched = self.cache.get_string(CURRENT).await;
        let result = match fetched {
            Ok(Some(raw)) => serde_json::from_str::<ConfigDoc>(&raw)
                .map_err(|e| GatewayError::Internal(anyhow::anyhow!("config:current: {e}"))),
            Ok(None) => Ok(ConfigDoc::default()),
            Err(e) => Err(GatewayError::Storage(e)),
        };
        let mut status = self
            .status
            .write()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        match result {
            Ok(doc) => {
                let version = doc.version;
                if let Ok(mut cur) = self.current.write()
                    && doc.version >= cur.version
                {
                    *cur = Arc::new(doc);
                }
                *status = (Some(Instant::now()), None);
                Ok(version)
            }
            Err(e) => {
                status.1 = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// Change one section (a platform administrator); returns the new document.
    pub async fn change(&self, section: &str, value: Value, by: &str) -> Result<ConfigDoc> {
        self.apply(&[(section.to_owned(), value)], by).await
    }

    /// Replace several sections at once, as one new version (`codeguardians storage
    /// migrate-config-to-redis`). Every section is validated before anything is written; the
    /// change record's `section` is `import`, its `previous` and `value` objects by section.
    pub async fn import(&self, sections: &[(String, Value)], by: &str) -> Result<ConfigDoc> {
        if sections.is_empty() {
            return Err(GatewayError::Invalid(format!(
                "no configuration section to import (sections: {})",
                SECTIONS.join(", ")
            )));
        }
        self.apply(sections, by).await
    }

    async fn apply(&self, sections: &[(String, Value)], by: &str) -> Result<ConfigDoc> {
        for (section, value) in sections {
            validate(section, value).map_err(GatewayError::Invalid)?;
        }
        // One writer at a time across replicas; the lock expires if its holder dies.
        let token = format!("{by}:{}", cg_storage::sql_types::Id::new());
        let mut acquired = false;
        for _ in 0..50 {
            if self
                .cache
                .set_nx(LOCK, token.as_bytes(), Some(Duration::from_secs(5)))
                .await?
            {
                acquired = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if !acquired {
            return Err(GatewayError::Conflict(
                "another configuration change is in progress".into(),
            ));
        }
        let outcome = self.change_locked(sections, by).await;
        // Release only our own lock (it may have expired and been taken by another writer).
        if self.cache.get_string(LOCK).await.ok().flatten().as_deref() == Some(token.as_str()) {
            let _ = self.cache.delete(LOCK).await;
        }
        outcome
    }

    async fn change_locked(&self, sections: &[(String, Value)], by: &str) -> Result<ConfigDoc> {
        // An unreadable document is an error, not a reason to start over: that would silently
        // reset every other section.
        let mut doc: ConfigDoc = match self.cache.get_string(CURRENT).await? {
            Some(raw) => serde_json::from_str(&raw)
                .map_err(|e| GatewayError::Internal(anyhow::anyhow!("config:current: {e}")))?,
            None => ConfigDoc::default(),
        };
        let version = self
            .cache
            .incr_by(VERSION, 1, None)
            .await?
            .max(doc.version + 1);
        let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let (mut previous, mut values) = (serde_json::Map::new(), serde_json::Map::new());
        for (section, value) in sections {
            previous.insert(section.clone(), doc.section(section).clone());
            values.insert(section.clone(), value.clone());
            *doc.section_mut(section) = value.clone();
        }
        doc.version = version;
        doc.updated_at = Some(at.clone());
        doc.updated_by = Some(by.to_owned());
        let (section, previous, value) = match sections {
            [(section, value)] => (
                section.as_str(),
                previous.remove(section).unwrap_or(Value::Null),
                value.clone(),
            ),
            _ => ("import", Value::Object(previous), Value::Object(values)),
        };
        let change = json!({
            "version": version, "section": section, "previous": previous, "value": value,
            "changed_by": by, "at": at,
        });
        self.cache
            .set(
                &format!("config:change:{version}"),
                change.to_string().as_bytes(),
                None,
            )
            .await?;
        let raw = serde_json::to_string(&doc).map_err(|e| anyhow::anyhow!(e))?;
        self.cache.set(CURRENT, raw.as_bytes(), None).await?;
        if let Ok(mut cur) = self.current.write() {
            *cur = Arc::new(doc.clone());
        }
        if let Err(e) = self
            .cache
            .publish(CHANGED_CHANNEL, &version.to_string())
            .await
        {
            tracing::warn!(error = %e, "configuration change not announced; replicas poll for it");
        }
        tracing::info!(version, section, by, "configuration changed");
        Ok(doc)
    }

    /// The most recent changes, newest first (at most `limit`).
    pub async fn history(&self, limit: i64) -> Result<Vec<Value>> {
        let latest = self.get().version;
        let mut out = Vec::new();
        let mut v = latest;
        while v > 0 && i64::try_from(out.len()).unwrap_or(i64::MAX) < limit {
            if let Some(raw) = self.cache.get_string(&format!("config:change:{v}")).await?
                && let Ok(change) = serde_json::from_str::<Value>(&raw)
            {
                out.push(change);
            }
            v -= 1;
        }
        Ok(out)
    }

    /// `{version, applied_seconds_ago, last_error}`.
    pub fn status(&self) -> Value {
        let (applied, error) = self
            .status
            .read()
            .map(|s| s.clone())
            .unwrap_or((None, None));
        json!({
            "version": self.get().version,
            "applied_seconds_ago": applied.map(|a| a.elapsed().as_secs_f64()),
            "last_error": error,
            "source": if error.is_some() { "last good copy" } else { "redis" },
        })
    }

    /// Apply announced changes at once, and poll, until `shutdown`.
    pub async fn follow(self: Arc<Self>, shutdown: CancellationToken) {
        let _ = self.reload().await;
        loop {
            let sub = tokio::select! {
                () = shutdown.cancelled() => return,
                s = self.cache.subscribe(CHANGED_CHANNEL) => s,
            };
            let Ok(mut sub) = sub else {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(POLL) => {}
                }
                let _ = self.reload().await;
                continue;
            };
            loop {
                let next = tokio::select! {
                    () = shutdown.cancelled() => return,
                    m = sub.next() => Some(m),
                    () = tokio::time::sleep(POLL) => None,
                };
                match next {
                    Some(Some(_)) | None => {
                        let _ = self.reload().await;
                    }
                    Some(None) => break,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_validated() {
        assert!(
            validate(
                "rate_limits",
                &json!({"burst_share": 0.5, "tiers": {"free": {"requests_per_minute": 5}}})
            )
            .is_ok()
        );
        assert!(validate("rate_limits", &json!({"burst_share": 2})).is_err());
        assert!(
            validate(
                "rate_limits",
                &json!({"tiers": {"free": {"requests_per_day": 5}}})
            )
            .is_err()
        );
        assert!(validate("feature_flags", &json!({"beta": true})).is_ok());
        assert!(validate("feature_flags", &json!({"beta": "yes"})).is_err());
        assert!(validate("cache", &json!({"org_profile_ttl_secs": 10})).is_ok());
        assert!(validate("cache", &json!({"ttl": 10})).is_err());
        assert!(validate("prices", &json!({})).is_err());
        assert!(validate("feature_flags", &json!([true])).is_err());
    }

    #[tokio::test]
    async fn a_change_is_versioned_with_its_previous_value_and_applied() {
        let cache = Cache::Memory(cg_storage::cache::MemoryCache::new(1 << 20, "t:"));
        let a = DynamicConfig::new(cache.clone());
        let b = DynamicConfig::new(cache);
        a.change("feature_flags", json!({"beta": true}), "admin-1")
            .await
            .unwrap();
        let doc = a
            .change(
                "rate_limits",
                json!({"tiers": {"free": {"requests_per_minute": 7}}}),
                "admin-2",
            )
            .await
            .unwrap();
        assert_eq!(doc.version, 2);
        assert_eq!(
            b.requests_per_minute(Some("free"), 60),
            60,
            "not yet reloaded"
        );
        assert_eq!(b.reload().await.unwrap(), 2);
        assert_eq!(b.requests_per_minute(Some("free"), 60), 7);
        assert_eq!(b.requests_per_minute(Some("pro"), 600), 600);
        let history = b.history(10).await.unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[0]["changed_by"], "admin-2");
        assert_eq!(history[0]["previous"], Value::Null);
        assert!(a.change("cache", json!({"ttl": 1}), "x").await.is_err());
        assert_eq!(b.org_profile_ttl(), None);
        a.change("cache", json!({"org_profile_ttl_secs": 10}), "admin-1")
            .await
            .unwrap();
        b.reload().await.unwrap();
        assert_eq!(b.org_profile_ttl(), Some(Duration::from_secs(10)));
    }
}
