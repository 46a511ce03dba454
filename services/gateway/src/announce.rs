//! A per-replica cache of values keyed by an id (an organisation's running experiments, a user's
//! memberships) that every replica drops at once when any of them announces a change of that id
//! on a Redis channel; entries also expire after a TTL, which bounds how stale a replica can be if
//! it misses an announcement.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cg_storage::Cache;
use cg_storage::sql_types::Id;
use tokio_util::sync::CancellationToken;

use crate::error::Result;

/// Resubscribe this often while the channel cannot be joined.
const RESUBSCRIBE: Duration = Duration::from_secs(1);

/// The cache.
pub struct AnnouncedCache<V> {
    cache: Cache,
    channel: &'static str,
    /// `None` with a TTL of zero: read every time.
    local: Option<moka::future::Cache<Id, V>>,
    /// Bumped by every invalidation: a read that started before one is not cached (it may hold
    /// what was just invalidated).
    epoch: AtomicU64,
}

impl<V> std::fmt::Debug for AnnouncedCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnnouncedCache")
            .field("channel", &self.channel)
            .field("cached", &self.local.is_some())
            .finish()
    }
}

impl<V: Clone + Send + Sync + 'static> AnnouncedCache<V> {
    pub fn new(cache: Cache, channel: &'static str, ttl: Duration, max_entries: u64) -> Self {
        Self {
            cache,
            channel,
            local: (!ttl.is_zero()).then(|| {
                moka::future::Cache::builder()
                    .max_capacity(max_entries)
                    .time_to_live(ttl)
                    .build()
            }),
            epoch: AtomicU64::new(0),
        }
    }

    /// The cached value of `id`, else what `load` reads (cached unless an invalidation happened
    /// meanwhile).
    pub async fn get_or_load(&self, id: Id, load: impl Future<Output = Result<V>>) -> Result<V> {
        let Some(local) = &self.local else {
            return load.await;
        };
        if let Some(hit) = local.get(&id).await {
            return Ok(hit);
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let value = load.await?;
        if self.epoch.load(Ordering::Acquire) == epoch {
            local.insert(id, value.clone()).await;
        }
        Ok(value)
    }

    async fn forget(&self, id: Id) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(local) = &self.local {
            local.invalidate(&id).await;
        }
    }

    fn forget_all(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(local) = &self.local {
            local.invalidate_all();
        }
    }

    /// `id` changed (call after the change is committed): forget it here and announce it to the
    /// other replicas. A failed announcement is logged; they forget it when it expires.
    pub async fn changed(&self, id: Id) {
        self.forget(id).await;
        if let Err(e) = self.cache.publish(self.channel, &id.to_string()).await {
            tracing::warn!(error = %e, channel = self.channel, %id, "announcing a change failed");
        }
    }

    /// Forget every id another replica announces, until `shutdown`; everything whenever the
    /// subscription is (re)joined (announcements may have been missed while it was away).
    pub async fn follow(self: Arc<Self>, shutdown: CancellationToken) {
        let mut channel = Follower::new(&self.cache, self.channel);
        while let Some(event) = channel.next(&shutdown).await {
            match event {
                Event::Joined => self.forget_all(),
                Event::Message(message) => match message.parse::<Id>() {
                    Ok(id) => self.forget(id).await,
                    Err(_) => {
                        tracing::warn!(%message, channel = self.channel, "unreadable announcement");
                    }
                },
            }
        }
    }
}

/// What following a channel brings.
#[derive(Debug)]
pub enum Event {
    /// The subscription was (re)established: what was published while it was away is lost, so
    /// a follower catches up (drops its cache, rereads a record).
    Joined,
    /// A message published on the channel.
    Message(String),
}

/// Follows one Redis channel, joining it again every second while it is lost.
#[derive(Debug)]
pub struct Follower<'a> {
    cache: &'a Cache,
    channel: &'static str,
    subscription: Option<cg_storage::cache::Subscription>,
}

impl<'a> Follower<'a> {
    pub fn new(cache: &'a Cache, channel: &'static str) -> Self {
        Self {
            cache,
            channel,
            subscription: None,
        }
    }

    /// The next event, or `None` once `shutdown` is cancelled.
    pub async fn next(&mut self, shutdown: &CancellationToken) -> Option<Event> {
        loop {
            if let Some(subscription) = &mut self.subscription {
                let message = tokio::select! {
                    () = shutdown.cancelled() => return None,
                    m = subscription.next() => m,
                };
                if let Some(message) = message {
                    return Some(Event::Message(message));
                }
                self.subscription = None;
            } else {
                let joined = tokio::select! {
                    () = shutdown.cancelled() => return None,
                    s = self.cache.subscribe(self.channel) => s,
                };
                match joined {
                    Ok(subscription) => {
                        self.subscription = Some(subscription);
                        return Some(Event::Joined);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, channel = self.channel, "subscribing failed; retrying");
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return None,
                () = tokio::time::sleep(RESUBSCRIBE) => {}
            }
        }
    }
}
