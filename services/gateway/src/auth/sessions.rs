//! Refresh sessions: an opaque token per login, rotated on every refresh; presenting a token that
//! was already rotated revokes the whole family (it was stolen and replayed, or leaked).
//!
//! `SESSION_STORAGE_TYPE=redis` keeps sessions in Redis with a TTL of `SESSION_TTL`; while Redis is
//! unreachable new sessions go to the `sessions` table and refreshes look there, so logins keep
//! working. `database` keeps them in the table only. A background task deletes expired table rows
//! every `SESSION_CLEANUP_INTERVAL`.

use std::time::Duration;

use cg_storage::config::SessionStorageType;
use cg_storage::models::{Rotation, Session};
use cg_storage::sql_types::{Id, Timestamp};
use cg_storage::{Cache, Db};
use serde::{Deserialize, Serialize};

use super::secrets::{REFRESH_TOKEN_PREFIX, random_token, sha256_hex};
use crate::error::{GatewayError, Result};

/// What is kept per live session in Redis.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    id: Id,
    user_id: Id,
    family_id: Id,
    expires_at: Timestamp,
}

/// A session just created or rotated, with the token to hand to the client (once).
#[derive(Debug, Clone)]
pub struct Issued {
    pub refresh_token: String,
    pub session_id: Id,
    pub user_id: Id,
    pub expires_at: Timestamp,
}

/// Request details recorded with a session.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub user_agent: Option<String>,
    pub ip_address: Option<String>,
}

/// Where sessions live.
#[derive(Debug, Clone)]
pub struct SessionStore {
    cache: Option<Cache>,
    db: Db,
    ttl: Duration,
}

fn live_key(hash: &str) -> String {
    format!("session:{hash}")
}

fn used_key(hash: &str) -> String {
    format!("session-used:{hash}")
}

/// Session id → token hash, so a session can be ended knowing only its id (logout with an access
/// token).
fn index_key(session: Id) -> String {
    format!("session-index:{session}")
}

fn revoked_family_key(family: Id) -> String {
    format!("session-family-revoked:{family}")
}

const INVALID: GatewayError = GatewayError::Unauthorized("invalid or expired refresh token");

impl SessionStore {
    pub fn new(kind: SessionStorageType, cache: Cache, db: Db, ttl: Duration) -> Self {
        Self {
            cache: (kind == SessionStorageType::Redis).then_some(cache),
            db,
            ttl,
        }
    }

    fn expiry(&self, now: Timestamp) -> Timestamp {
        let ttl = chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::days(7));
        Timestamp::from(*now + ttl)
    }

    /// Start a new session family (a login).
    pub async fn create(&self, user_id: Id, client: &ClientInfo) -> Result<Issued> {
        self.store(user_id, Id::new(), client).await
    }

    async fn store(&self, user_id: Id, family_id: Id, client: &ClientInfo) -> Result<Issued> {
        let now = Timestamp::now();
        let token = random_token(REFRESH_TOKEN_PREFIX);
        let hash = sha256_hex(&token);
        let record = Record {
            id: Id::new(),
            user_id,
            family_id,
            expires_at: self.expiry(now),
        };
        if let Some(cache) = &self.cache {
            let value = serde_json::to_vec(&record).map_err(anyhow::Error::from)?;
            let stored = async {
                cache.set(&live_key(&hash), &value, Some(self.ttl)).await?;
                cache
                    .set(&index_key(record.id), hash.as_bytes(), Some(self.ttl))
                    .await
            };
            match stored.await {
                Ok(()) => return Ok(issued(token, &record)),
                Err(e) if e.is_unavailable() => {
                    tracing::warn!(error = %e, "Redis unavailable: session kept in the database");
                }
                Err(e) => return Err(e.into()),
            }
        }
        let row = self.row(&record, hash, client, now);
        let mut pooled = self.db.get().await?;
        row.insert(&mut pooled.conn()).await?;
        Ok(issued(token, &record))
    }

    fn row(&self, record: &Record, hash: String, client: &ClientInfo, now: Timestamp) -> Session {
        Session {
            id: record.id,
            user_id: record.user_id,
            family_id: record.family_id,
            refresh_token_hash: hash,
            user_agent: client.user_agent.clone(),
            ip_address: client.ip_address.clone(),
            expires_at: record.expires_at,
            revoked_at: None,
            replaced_by: None,
            created_at: now,
            last_used_at: None,
        }
    }

    /// Exchange a refresh token for a new one of the same family.
    pub async fn rotate(&self, token: &str, client: &ClientInfo) -> Result<Issued> {
        let hash = sha256_hex(token);
        if let Some(cache) = &self.cache {
            match self.rotate_in_cache(cache, &hash, client).await {
                Ok(Some(issued)) => return Ok(issued),
                Ok(None) => {} // not in Redis: maybe made while Redis was down
                Err(GatewayError::Storage(e)) if e.is_unavailable() => {
                    tracing::warn!(error = %e, "Redis unavailable: refreshing from the database");
                }
                Err(e) => return Err(e),
            }
        }
        self.rotate_in_db(&hash, client).await
    }

    async fn rotate_in_cache(
        &self,
        cache: &Cache,
        hash: &str,
        client: &ClientInfo,
    ) -> Result<Option<Issued>> {
        // GETDEL: of two concurrent refreshes with one token, exactly one gets the record.
        let Some(raw) = cache.take(&live_key(hash)).await? else {
            if let Some(family) = cache.get_string(&used_key(hash)).await? {
                let family: Id = family.parse().map_err(anyhow::Error::from)?;
                self.revoke_family(cache, family).await?;
                tracing::warn!(session.family = %family, "refresh token reused: family revoked");
                return Err(INVALID);
            }
            return Ok(None);
        };
        let record: Record = serde_json::from_slice(&raw).map_err(anyhow::Error::from)?;
        cache
            .set(
                &used_key(hash),
                record.family_id.to_string().as_bytes(),
                Some(self.ttl),
            )
            .await?;
        if record.expires_at <= Timestamp::now()
            || cache
                .get(&revoked_family_key(record.family_id))
                .await?
                .is_some()
        {
            return Err(INVALID);
        }
        self.store(record.user_id, record.family_id, client)
            .await
            .map(Some)
    }

    async fn revoke_family(&self, cache: &Cache, family: Id) -> Result<()> {
        cache
            .set(&revoked_family_key(family), b"1", Some(self.ttl))
            .await?;
        let mut pooled = self.db.get().await?;
        Session::revoke_family(&mut pooled.conn(), family, Timestamp::now()).await?;
        Ok(())
    }

    async fn rotate_in_db(&self, hash: &str, client: &ClientInfo) -> Result<Issued> {
        let now = Timestamp::now();
        let mut pooled = self.db.get().await?;
        let conn = &mut pooled.conn();
        let Some(old) = Session::find_by_hash(conn, hash).await? else {
            return Err(INVALID);
        };
        let token = random_token(REFRESH_TOKEN_PREFIX);
        let record = Record {
            id: Id::new(),
            user_id: old.user_id,
            family_id: old.family_id,
            expires_at: self.expiry(now),
        };
        let next = self.row(&record, sha256_hex(&token), client, now);
        match Session::rotate(conn, hash, &next, now).await? {
            Rotation::Rotated => Ok(issued(token, &record)),
            Rotation::Reused => {
                if let Some(cache) = &self.cache {
                    let _ = cache
                        .set(&revoked_family_key(old.family_id), b"1", Some(self.ttl))
                        .await;
                }
                tracing::warn!(session.family = %old.family_id, "refresh token reused: family revoked");
                Err(INVALID)
            }
            Rotation::Unknown => Err(INVALID),
        }
    }

    /// End the session holding `token` (logout). Unknown tokens are ignored: logging out twice is
    /// not an error.
    pub async fn revoke(&self, token: &str) -> Result<()> {
        self.revoke_hash(&sha256_hex(token)).await
    }

    /// End a session known by id (logout with only an access token).
    pub async fn revoke_id(&self, session_id: Id) -> Result<()> {
        if let Some(cache) = &self.cache {
            match cache.get_string(&index_key(session_id)).await {
                Ok(Some(hash)) => return self.revoke_hash(&hash).await,
                Ok(None) => {}
                Err(e) if e.is_unavailable() => {}
                Err(e) => return Err(e.into()),
            }
        }
        let mut pooled = self.db.get().await?;
        let conn = &mut pooled.conn();
        if let Some(row) = Session::find(conn, session_id).await? {
            Session::revoke_family(conn, row.family_id, Timestamp::now()).await?;
        }
        Ok(())
    }

    async fn revoke_hash(&self, hash: &str) -> Result<()> {
        let hash = hash.to_owned();
        if let Some(cache) = &self.cache {
            match cache.take(&live_key(&hash)).await {
                Ok(Some(raw)) => {
                    if let Ok(record) = serde_json::from_slice::<Record>(&raw) {
                        cache
                            .set(&revoked_family_key(record.family_id), b"1", Some(self.ttl))
                            .await?;
                    }
                    return Ok(());
                }
                Ok(None) => {}
                Err(e) if e.is_unavailable() => {}
                Err(e) => return Err(e.into()),
            }
        }
        let mut pooled = self.db.get().await?;
        let conn = &mut pooled.conn();
        if let Some(row) = Session::find_by_hash(conn, &hash).await? {
            Session::revoke_family(conn, row.family_id, Timestamp::now()).await?;
        }
        Ok(())
    }

    /// Give a live database session to Redis with the lifetime it has left, then delete its row,
    /// so the token has one home (`codeguardians storage migrate-sessions-to-redis`). Rows of
    /// rotated or revoked sessions are left alone: they are what detects an old token's reuse. A
    /// token already used through Redis is not brought back. Safe to repeat.
    pub async fn move_to_cache(&self, row: &Session, now: Timestamp) -> Result<()> {
        let Some(cache) = &self.cache else {
            return Err(
                anyhow::anyhow!("sessions are not kept in Redis (SESSION_STORAGE_TYPE)").into(),
            );
        };
        let remaining = (*row.expires_at - *now)
            .to_std()
            .map_err(|_| anyhow::anyhow!("session {} has expired", row.id))?;
        let hash = &row.refresh_token_hash;
        if cache.get(&used_key(hash)).await?.is_none() {
            let record = Record {
                id: row.id,
                user_id: row.user_id,
                family_id: row.family_id,
                expires_at: row.expires_at,
            };
            let value = serde_json::to_vec(&record).map_err(anyhow::Error::from)?;
            cache.set(&live_key(hash), &value, Some(remaining)).await?;
            cache
                .set(&index_key(row.id), hash.as_bytes(), Some(remaining))
                .await?;
        }
        let mut pooled = self.db.get().await?;
        Session::delete(&mut pooled.conn(), row.id).await?;
        Ok(())
    }

    /// Delete expired database sessions every `interval` until `shutdown`.
    pub async fn clean_up_every(
        self,
        interval: Duration,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let deleted = async {
                let mut pooled = self.db.get().await?;
                Session::delete_expired(&mut pooled.conn(), Timestamp::now()).await
            }
            .await;
            match deleted {
                Ok(0) => {}
                Ok(n) => tracing::info!(sessions.deleted = n, "expired sessions removed"),
                Err(e) => {
                    tracing::warn!(error = %e, "session clean-up failed; retrying next interval")
                }
            }
        }
    }
}

fn issued(refresh_token: String, record: &Record) -> Issued {
    Issued {
        refresh_token,
        session_id: record.id,
        user_id: record.user_id,
        expires_at: record.expires_at,
    }
}
