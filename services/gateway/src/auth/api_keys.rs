//! API keys for machine clients: created per organisation with a role, the secret shown once and
//! only its SHA-256 stored. Checking a key never touches PostgreSQL on the hot path: a one-second
//! in-process cache, then Redis (five minutes), then the database. Revoking a key deletes it from
//! Redis and publishes its hash, so every replica drops it at once (and within a second even if the
//! message were lost). `last_used_at` is batched in memory and flushed every 30 seconds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cg_storage::models::{ApiKey, Role};
use cg_storage::sql_types::{Id, Timestamp};
use cg_storage::{Cache, Db};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::scopes::Scope;
use super::secrets::{API_KEY_PREFIX, API_KEY_VISIBLE_CHARS, random_token, sha256_hex};
use crate::announce::{Event, Follower};
use crate::error::{GatewayError, Result};

const LOCAL_TTL: Duration = Duration::from_secs(1);
const LOCAL_MAX_KEYS: u64 = 100_000;
const REDIS_TTL: Duration = Duration::from_secs(300);
/// Unknown keys are remembered briefly so a flood of bad keys does not reach the database.
const NEGATIVE_TTL: Duration = Duration::from_secs(60);
const REVOKED_CHANNEL: &str = "api-keys:revoked";

/// What authenticating a key needs to know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub id: Id,
    pub organization_id: Id,
    pub role: Role,
    /// Absent from entries cached before keys had scopes: such an entry allows nothing and is
    /// read again from the database within `REDIS_TTL`.
    #[serde(default)]
    pub scopes: Vec<Scope>,
    pub expires_at: Option<Timestamp>,
    pub revoked: bool,
}

impl KeyInfo {
    fn of(key: &ApiKey) -> Result<Self> {
        let role = key.role.parse()?;
        Ok(Self {
            id: key.id,
            organization_id: key.organization_id,
            role,
            scopes: scopes_of(key, role),
            expires_at: key.expires_at,
            revoked: key.revoked_at.is_some(),
        })
    }
}

/// A key's scopes as stored; those of keys from before scopes existed when it lists none.
pub fn scopes_of(key: &ApiKey, role: Role) -> Vec<Scope> {
    match serde_json::from_value::<Vec<Scope>>(key.scopes.clone()) {
        Ok(scopes) if !scopes.is_empty() => scopes,
        _ => Scope::legacy_for(role),
    }
}

/// Checks and manages API keys.
pub struct ApiKeys {
    local: moka::sync::Cache<String, Option<Arc<KeyInfo>>>,
    cache: Cache,
    db: Db,
    used: Mutex<HashMap<Id, Timestamp>>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys").finish_non_exhaustive()
    }
}

fn redis_key(hash: &str) -> String {
    format!("api-key:{hash}")
}

/// A key just created: the row and the secret, which is never shown again.
#[derive(Debug)]
pub struct Created {
    pub key: ApiKey,
    pub secret: String,
}

impl ApiKeys {
    pub fn new(cache: Cache, db: Db) -> Self {
        Self {
            local: moka::sync::Cache::builder()
                .max_capacity(LOCAL_MAX_KEYS)
                .time_to_live(LOCAL_TTL)
                .build(),
            cache,
            db,
            used: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a credential looks like one of our keys (rather than an access token).
    pub fn is_api_key(credential: &str) -> bool {
        credential.starts_with(API_KEY_PREFIX)
    }

    /// The key's organisation and role, if it is valid.
    pub async fn authenticate(&self, secret: &str) -> Result<KeyInfo> {
        let hash = sha256_hex(secret);
        let info = match self.local.get(&hash) {
            Some(hit) => hit,
            None => {
                let found = self.lookup(&hash).await?.map(Arc::new);
                self.local.insert(hash, found.clone());
                found
            }
        };
        let info = info.ok_or(GatewayError::Unauthorized("invalid API key"))?;
        let now = Timestamp::now();
        if info.revoked || info.expires_at.is_some_and(|t| t <= now) {
            return Err(GatewayError::Unauthorized("API key revoked or expired"));
        }
        if let Ok(mut used) = self.used.lock() {
            used.insert(info.id, now);
        }
        Ok((*info).clone())
    }

    async fn lookup(&self, hash: &str) -> Result<Option<KeyInfo>> {
        match self.cache.get(&redis_key(hash)).await {
            Ok(Some(raw)) => {
                if let Ok(cached) = serde_json::from_slice::<Option<KeyInfo>>(&raw) {
                    return Ok(cached);
                }
            }
            Ok(None) => {}
            Err(e) if e.is_unavailable() => {
                tracing::warn!(error = %e, "Redis unavailable: API key read from the database");
                return self.load(hash).await;
            }
            Err(e) => return Err(e.into()),
        }
        let found = self.load(hash).await?;
        self.fill(hash, &found).await;
        Ok(found)
    }

    /// Put what the database said about `hash` into Redis, unless something is there already:
    /// a revocation made while this replica was reading writes its own entry, and that entry
    /// must win over this (possibly older) one.
    async fn fill(&self, hash: &str, found: &Option<KeyInfo>) {
        let ttl = if found.is_some() {
            REDIS_TTL
        } else {
            NEGATIVE_TTL
        };
        if let Ok(value) = serde_json::to_vec(found)
            && let Err(e) = self.cache.set_nx(&redis_key(hash), &value, Some(ttl)).await
        {
            tracing::warn!(error = %e, "caching an API key failed");
        }
    }

    async fn load(&self, hash: &str) -> Result<Option<KeyInfo>> {
        let mut pooled = self.db.get().await?;
        ApiKey::find_by_hash(&mut pooled.conn(), hash)
            .await?
            .as_ref()
            .map(KeyInfo::of)
            .transpose()
    }

    /// Create a key for `organization_id` with `role` and `scopes`.
    pub async fn create(
        &self,
        organization_id: Id,
        created_by: Option<Id>,
        name: &str,
        role: Role,
        scopes: &[Scope],
        expires_at: Option<Timestamp>,
    ) -> Result<Created> {
        let secret = random_token(API_KEY_PREFIX);
        let key = ApiKey {
            id: Id::new(),
            organization_id,
            created_by,
            name: name.to_owned(),
            prefix: secret.chars().take(API_KEY_VISIBLE_CHARS).collect(),
            key_hash: sha256_hex(&secret),
            role: role.as_str().to_owned(),
            scopes: serde_json::to_value(scopes).map_err(anyhow::Error::from)?,
            last_used_at: None,
            expires_at,
            revoked_at: None,
            created_at: Timestamp::now(),
        };
        let mut pooled = self.db.get().await?;
        key.insert(&mut pooled.conn()).await?;
        Ok(Created { key, secret })
    }

    /// Revoke a key of `organization_id`; it stops working on every replica.
    pub async fn revoke(&self, organization_id: Id, id: Id) -> Result<ApiKey> {
        let key = {
            let mut pooled = self.db.get().await?;
            ApiKey::revoke(&mut pooled.conn(), organization_id, id, Timestamp::now())
                .await
                .map_err(|e| match e {
                    cg_storage::Error::NotFound => GatewayError::NotFound("API key"),
                    other => other.into(),
                })?
        };
        self.local.invalidate(&key.key_hash);
        // The database says revoked; Redis says so too, overwriting whatever is there, and a
        // replica filling its entry from an older read cannot overwrite this one (see `fill`).
        // If Redis is down its entry expires within REDIS_TTL and other replicas' entries within
        // LOCAL_TTL.
        let revoked = KeyInfo::of(&key)?;
        if let Ok(value) = serde_json::to_vec(&Some(revoked))
            && let Err(e) = self
                .cache
                .set(&redis_key(&key.key_hash), &value, Some(REDIS_TTL))
                .await
        {
            tracing::warn!(error = %e, "marking a revoked API key in Redis failed");
        }
        if let Err(e) = self.cache.publish(REVOKED_CHANNEL, &key.key_hash).await {
            tracing::warn!(error = %e, "announcing a revoked API key failed");
        }
        Ok(key)
    }

    /// Drop revoked keys announced by other replicas, until `shutdown`.
    pub async fn follow_revocations(self: Arc<Self>, shutdown: CancellationToken) {
        let mut channel = Follower::new(&self.cache, REVOKED_CHANNEL);
        while let Some(event) = channel.next(&shutdown).await {
            // Nothing to catch up on joining: entries live a second.
            if let Event::Message(hash) = event {
                self.local.invalidate(&hash);
            }
        }
    }

    /// Write `last_used_at` of the keys used since the last flush, every `interval` and once more
    /// at shutdown.
    pub async fn flush_last_used_every(
        self: Arc<Self>,
        interval: Duration,
        shutdown: CancellationToken,
    ) {
        loop {
            let stop = tokio::select! {
                () = shutdown.cancelled() => true,
                () = tokio::time::sleep(interval) => false,
            };
            self.flush_last_used().await;
            if stop {
                return;
            }
        }
    }

    /// Write the pending `last_used_at` times now.
    pub async fn flush_last_used(&self) {
        let batch: Vec<(Id, Timestamp)> = match self.used.lock() {
            Ok(mut used) => used.drain().collect(),
            Err(_) => return,
        };
        if batch.is_empty() {
            return;
        }
        let result = async {
            let mut pooled = self.db.get().await?;
            for (id, at) in &batch {
                ApiKey::touch(&mut pooled.conn(), *id, *at).await?;
            }
            Ok::<_, cg_storage::Error>(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, keys = batch.len(), "recording API key use failed; kept for the next flush");
            if let Ok(mut used) = self.used.lock() {
                for (id, at) in batch {
                    used.entry(id).or_insert(at);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cg_storage::models::NewUser;
    use cg_storage::testing::TestStorage;

    /// Replica two read the key from the database just before replica one revoked it, and
    /// writes what it read into Redis just after: the revocation still holds on every replica.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_revocation_wins_over_a_concurrent_cache_fill() {
        let test = TestStorage::embedded();
        let needs = cg_storage::Needs {
            database: true,
            cache: true,
            blobs: false,
        };
        let storage = cg_service_kit::startup::open_storage("gateway", &test.config, needs)
            .await
            .unwrap();
        let (db, cache) = (
            storage.db().unwrap().clone(),
            storage.cache().unwrap().clone(),
        );
        let org = {
            let mut pooled = db.get().await.unwrap();
            let conn = &mut pooled.conn();
            let user = NewUser::new("race@example.com", "x", "Race")
                .insert(conn)
                .await
                .unwrap();
            let name = crate::domain::OrgName::parse("Race").unwrap();
            crate::tenancy::create_organization(conn, &name, user.id, "free")
                .await
                .unwrap()
                .id
        };
        let one = ApiKeys::new(cache.clone(), db.clone());
        let two = ApiKeys::new(cache.clone(), db.clone());
        let created = one
            .create(org, None, "k", Role::Member, &[Scope::Process], None)
            .await
            .unwrap();
        let hash = sha256_hex(&created.secret);

        let stale = two.load(&hash).await.unwrap();
        assert!(stale.as_ref().is_some_and(|k| !k.revoked));
        one.revoke(org, created.key.id).await.unwrap();
        two.fill(&hash, &stale).await;

        let three = ApiKeys::new(cache, db);
        assert!(
            three.authenticate(&created.secret).await.is_err(),
            "a fill from before the revocation brought the key back"
        );
    }
}
