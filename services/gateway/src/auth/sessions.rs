//! Refresh sessions: an opaque token per login, rotated on every refresh; presenting a token that
//! was already rotated revokes the whole family (it was stolen and replayed, or leaked). A family
//! lives at most `SESSION_MAX_LIFETIME` from its login, however often it rotates.
//!
//! `SESSION_STORAGE_TYPE=redis` keeps sessions in Redis with a TTL of `SESSION_TTL`; while Redis is
//! unreachable new sessions go to the `sessions` table and refreshes look there, so logins keep
//! working. `database` keeps them in the table only. A background task deletes expired table rows
//! every `SESSION_CLEANUP_INTERVAL`.
//!
//! Ending sessions (logout, password change, deactivation, deletion) ends them wherever they
//! live and announces it through [`Revocations`], so the access tokens they issued stop working
//! on every replica too; when that cannot be done completely the caller gets an error (503) and
//! is told to retry, never a success that ended nothing.

use std::sync::Arc;
use std::time::Duration;

use cg_storage::config::SessionStorageType;
use cg_storage::models::{Rotation, Session};
use cg_storage::sql_types::{Id, Timestamp};
use cg_storage::{Cache, Db};
use serde::{Deserialize, Serialize};

use super::revocations::Revocations;
use super::secrets::{REFRESH_TOKEN_PREFIX, random_token, sha256_hex};
use crate::error::{GatewayError, Result};

/// What is kept per live session in Redis.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    id: Id,
    user_id: Id,
    family_id: Id,
    /// Absent in records written before families had a maximum lifetime: counted from the
    /// next rotation.
    #[serde(default)]
    family_started_at: Option<Timestamp>,
    expires_at: Timestamp,
}

/// A session just created or rotated, with the token to hand to the client (once).
#[derive(Debug, Clone)]
pub struct Issued {
    pub refresh_token: String,
    pub session_id: Id,
    pub user_id: Id,
    pub family_id: Id,
    pub family_started_at: Timestamp,
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
    max_lifetime: Duration,
    revocations: Arc<Revocations>,
}

fn live_key(hash: &str) -> String {
    format!("session:{hash}")
}

fn used_key(hash: &str) -> String {
    format!("session-used:{hash}")
}

fn revoked_family_key(family: Id) -> String {
    format!("session-family-revoked:{family}")
}

/// The latest time (Unix milliseconds) at which every session of a user was ended: families
/// that started then or before are dead.
fn user_cutoff_key(user: Id) -> String {
    format!("session-user-cutoff:{user}")
}

const INVALID: GatewayError = GatewayError::Unauthorized("invalid or expired refresh token");

impl SessionStore {
    pub fn new(
        kind: SessionStorageType,
        cache: Cache,
        db: Db,
        ttl: Duration,
        max_lifetime: Duration,
        revocations: Arc<Revocations>,
    ) -> Self {
        Self {
            cache: (kind == SessionStorageType::Redis).then_some(cache),
            db,
            ttl,
            max_lifetime,
            revocations,
        }
    }

    /// When a session stored `now` in a family that started at `family_started_at` expires:
    /// `SESSION_TTL` from now, but never after the family's maximum lifetime. `None` when the
    /// family is already past it.
    fn expiry(&self, now: Timestamp, family_started_at: Timestamp) -> Option<Timestamp> {
        let days = |d: Duration, fallback| {
            chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(fallback))
        };
        let end = *family_started_at + days(self.max_lifetime, 30);
        let expires = (*now + days(self.ttl, 7)).min(end);
        (expires > *now).then(|| Timestamp::from(expires))
    }

    /// Start a new session family (a login).
    pub async fn create(&self, user_id: Id, client: &ClientInfo) -> Result<Issued> {
        self.store(user_id, Id::new(), Timestamp::now(), client)
            .await
    }

    async fn store(
        &self,
        user_id: Id,
        family_id: Id,
        family_started_at: Timestamp,
        client: &ClientInfo,
    ) -> Result<Issued> {
        let now = Timestamp::now();
        let token = random_token(REFRESH_TOKEN_PREFIX);
        let hash = sha256_hex(&token);
        let record = Record {
            id: Id::new(),
            user_id,
            family_id,
            family_started_at: Some(family_started_at),
            expires_at: self.expiry(now, family_started_at).ok_or(INVALID)?,
        };
        if let Some(cache) = &self.cache {
            let value = serde_json::to_vec(&record).map_err(anyhow::Error::from)?;
            let ttl = (*record.expires_at - *now).to_std().unwrap_or(self.ttl);
            match cache.set(&live_key(&hash), &value, Some(ttl)).await {
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
            family_started_at: record.family_started_at.unwrap_or(now),
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
        let started = record.family_started_at.unwrap_or_else(Timestamp::now);
        if record.expires_at <= Timestamp::now()
            || cache
                .get(&revoked_family_key(record.family_id))
                .await?
                .is_some()
            || self.ended_for_user(cache, record.user_id, started).await?
        {
            return Err(INVALID);
        }
        self.store(record.user_id, record.family_id, started, client)
            .await
            .map(Some)
    }

    /// Whether every session of `user` was ended after a family that started at `started`.
    async fn ended_for_user(&self, cache: &Cache, user: Id, started: Timestamp) -> Result<bool> {
        let cutoff = cache.get_string(&user_cutoff_key(user)).await?;
        Ok(cutoff
            .and_then(|c| c.parse::<i64>().ok())
            .is_some_and(|cutoff| started.timestamp_millis() <= cutoff))
    }

    async fn revoke_family(&self, cache: &Cache, family: Id) -> Result<()> {
        cache
            .set(&revoked_family_key(family), b"1", Some(self.max_lifetime))
            .await?;
        let mut pooled = self.db.get().await?;
        Session::revoke_family(&mut pooled.conn(), family, Timestamp::now()).await?;
        self.revocations.family_ended(family).await
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
            family_started_at: Some(old.family_started_at),
            expires_at: self.expiry(now, old.family_started_at).ok_or(INVALID)?,
        };
        let next = self.row(&record, sha256_hex(&token), client, now);
        match Session::rotate(conn, hash, &next, now).await? {
            Rotation::Rotated => Ok(issued(token, &record)),
            Rotation::Reused => {
                if let Some(cache) = &self.cache {
                    let _ = cache
                        .set(
                            &revoked_family_key(old.family_id),
                            b"1",
                            Some(self.max_lifetime),
                        )
                        .await;
                }
                // The token is refused either way; other replicas learn of the family when
                // the announcement can be made (or its access tokens expire).
                if let Err(e) = self.revocations.family_ended(old.family_id).await {
                    tracing::warn!(error = %e, "announcing a revoked session family failed");
                }
                tracing::warn!(session.family = %old.family_id, "refresh token reused: family revoked");
                Err(INVALID)
            }
            Rotation::Unknown => Err(INVALID),
        }
    }

    /// The family of the session holding `token`, live or already rotated; `None` if no session
    /// ever held it.
    pub async fn family_of(&self, token: &str) -> Result<Option<Id>> {
        let hash = sha256_hex(token);
        if let Some(cache) = &self.cache {
            if let Some(raw) = cache.get(&live_key(&hash)).await? {
                let record: Record = serde_json::from_slice(&raw).map_err(anyhow::Error::from)?;
                return Ok(Some(record.family_id));
            }
            if let Some(family) = cache.get_string(&used_key(&hash)).await? {
                return Ok(Some(family.parse().map_err(anyhow::Error::from)?));
            }
        }
        let mut pooled = self.db.get().await?;
        Ok(Session::find_by_hash(&mut pooled.conn(), &hash)
            .await?
            .map(|row| row.family_id))
    }

    /// End a whole session family (logout): its refresh tokens and the access tokens they
    /// issued stop working everywhere. Fails unless all of that was done.
    pub async fn end_family(&self, family: Id) -> Result<()> {
        if let Some(cache) = &self.cache {
            cache
                .set(&revoked_family_key(family), b"1", Some(self.max_lifetime))
                .await?;
        }
        let mut pooled = self.db.get().await?;
        Session::revoke_family(&mut pooled.conn(), family, Timestamp::now()).await?;
        self.revocations.family_ended(family).await
    }

    /// End every session of `user` (password change, deactivation, deletion), before the change
    /// that calls for it is committed: if this fails, nothing was changed.
    pub async fn end_all_of(&self, user: Id) -> Result<()> {
        let now = Timestamp::now();
        let cutoff = now.timestamp_millis();
        if let Some(cache) = &self.cache {
            cache
                .set(
                    &user_cutoff_key(user),
                    cutoff.to_string().as_bytes(),
                    Some(self.max_lifetime),
                )
                .await?;
        }
        let mut pooled = self.db.get().await?;
        Session::revoke_user(&mut pooled.conn(), user, now).await?;
        self.revocations.user_ended(user, cutoff).await
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
                family_started_at: Some(row.family_started_at),
                expires_at: row.expires_at,
            };
            let value = serde_json::to_vec(&record).map_err(anyhow::Error::from)?;
            cache.set(&live_key(hash), &value, Some(remaining)).await?;
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
        family_id: record.family_id,
        family_started_at: record.family_started_at.unwrap_or_else(Timestamp::now),
        expires_at: record.expires_at,
    }
}
