//! Access tokens that stopped working before they expire: those of an ended session family
//! (logout, refresh-token reuse) and every token of a user whose sessions were all ended
//! (password change, deactivation, deletion).
//!
//! Checking a token reads only this replica's memory. The replica that ends a session records
//! the fact in Redis (a hash read by replicas that join or rejoin the channel, so a replica that
//! was not listening catches up) and announces it on a channel, so every replica refuses the
//! token within a moment. An entry is kept as long as an access token can live
//! (`ACCESS_TOKEN_TTL`): after that every token it could stop has expired anyway.

use std::sync::Arc;
use std::time::Duration;

use cg_storage::Cache;
use cg_storage::sql_types::Id;
use tokio_util::sync::CancellationToken;

use super::tokens::AccessClaims;
use crate::announce::{Event, Follower};
use crate::error::{GatewayError, Result};

const CHANNEL: &str = "auth:sessions:ended";
/// Field: the announcement; value: when it stops mattering (Unix milliseconds).
const RECORD_KEY: &str = "auth:sessions:ended";
const MAX_ENTRIES: u64 = 1_000_000;
/// Tokens are accepted this long after `exp` (the issuer's leeway).
const LEEWAY: Duration = Duration::from_secs(5);

/// One fact about ended sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// Every token of this session family.
    Family(Id),
    /// Every token of this user from a login at or before this time (Unix milliseconds).
    User(Id, i64),
}

impl Ended {
    fn message(self) -> String {
        match self {
            Self::Family(id) => format!("family:{id}"),
            Self::User(id, cutoff) => format!("user:{id}:{cutoff}"),
        }
    }

    fn parse(message: &str) -> Option<Self> {
        let mut parts = message.split(':');
        let ended = match (parts.next()?, parts.next()?.parse().ok()?, parts.next()) {
            ("family", id, None) => Self::Family(id),
            ("user", id, Some(cutoff)) => Self::User(id, cutoff.parse().ok()?),
            _ => return None,
        };
        parts.next().is_none().then_some(ended)
    }
}

/// This replica's view of ended sessions.
pub struct Revocations {
    cache: Cache,
    families: moka::sync::Cache<Id, ()>,
    users: moka::sync::Cache<Id, i64>,
    keep: Duration,
}

impl std::fmt::Debug for Revocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocations")
            .field("keep", &self.keep)
            .finish_non_exhaustive()
    }
}

const ENDED: GatewayError = GatewayError::Unauthorized("session ended; log in again");

impl Revocations {
    /// Remember ended sessions as long as a token of `access_token_ttl` can be accepted.
    pub fn new(cache: Cache, access_token_ttl: Duration) -> Self {
        let keep = access_token_ttl + LEEWAY;
        Self {
            cache,
            families: moka::sync::Cache::builder()
                .max_capacity(MAX_ENTRIES)
                .time_to_live(keep)
                .build(),
            users: moka::sync::Cache::builder()
                .max_capacity(MAX_ENTRIES)
                .time_to_live(keep)
                .build(),
            keep,
        }
    }

    /// Refuse an access token whose session was ended.
    pub fn check(&self, claims: &AccessClaims) -> Result<()> {
        if self.families.contains_key(&claims.fam) {
            return Err(ENDED);
        }
        if self
            .users
            .get(&claims.sub)
            .is_some_and(|cutoff| claims.fst <= cutoff)
        {
            return Err(ENDED);
        }
        Ok(())
    }

    /// Every token of `family` stops working on every replica. Fails (503) when the other
    /// replicas cannot be told.
    pub async fn family_ended(&self, family: Id) -> Result<()> {
        self.announce(Ended::Family(family)).await
    }

    /// Every token of `user` from a login at or before `cutoff_ms` stops working on every
    /// replica. Fails (503) when the other replicas cannot be told.
    pub async fn user_ended(&self, user: Id, cutoff_ms: i64) -> Result<()> {
        self.announce(Ended::User(user, cutoff_ms)).await
    }

    async fn announce(&self, ended: Ended) -> Result<()> {
        self.apply(ended);
        let message = ended.message();
        let until = chrono::Utc::now().timestamp_millis()
            + i64::try_from(self.keep.as_millis()).unwrap_or(i64::MAX / 2);
        self.cache
            .hset(RECORD_KEY, &message, until.to_string().as_bytes())
            .await?;
        self.cache.publish(CHANNEL, &message).await?;
        Ok(())
    }

    fn apply(&self, ended: Ended) {
        match ended {
            Ended::Family(id) => self.families.insert(id, ()),
            Ended::User(id, cutoff) => {
                // The latest cutoff wins, whatever order announcements arrive in.
                let _ = self.users.entry(id).and_compute_with(|old| {
                    match old.map(|e| e.into_value()) {
                        Some(old) if old >= cutoff => moka::ops::compute::Op::Nop,
                        _ => moka::ops::compute::Op::Put(cutoff),
                    }
                });
            }
        }
    }

    /// Read what was recorded while this replica was not listening; drop what no longer
    /// matters.
    async fn catch_up(&self) {
        let recorded = match self.cache.hgetall(RECORD_KEY).await {
            Ok(recorded) => recorded,
            Err(e) => {
                tracing::warn!(error = %e, "reading ended sessions failed");
                return;
            }
        };
        let now = chrono::Utc::now().timestamp_millis();
        for (message, until) in recorded {
            let until: i64 = std::str::from_utf8(&until)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            match Ended::parse(&message) {
                Some(ended) if until > now => self.apply(ended),
                _ => {
                    let _ = self.cache.hdel(RECORD_KEY, &message).await;
                }
            }
        }
    }

    /// Apply what other replicas announce, until `shutdown`.
    pub async fn follow(self: Arc<Self>, shutdown: CancellationToken) {
        let mut channel = Follower::new(&self.cache, CHANNEL);
        while let Some(event) = channel.next(&shutdown).await {
            match event {
                Event::Joined => self.catch_up().await,
                Event::Message(message) => match Ended::parse(&message) {
                    Some(ended) => self.apply(ended),
                    None => tracing::warn!(%message, "unreadable ended-session announcement"),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_round_trip() {
        let id = Id::new();
        for ended in [Ended::Family(id), Ended::User(id, 1_700_000_000_123)] {
            assert_eq!(Ended::parse(&ended.message()), Some(ended));
        }
        assert_eq!(Ended::parse("family:nope"), None);
        assert_eq!(Ended::parse(&format!("user:{id}")), None);
        assert_eq!(Ended::parse(&format!("family:{id}:1")), None);
    }
}
