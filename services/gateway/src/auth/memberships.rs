//! Which organisations a user belongs to, with which role: what every request with an access
//! token needs, cached per replica so such a request does not read the database.
//!
//! A change of membership (an organisation created, an invitation accepted, a role changed, a
//! member removed, an account deleted) drops the user's entry on the replica that made it and
//! announces the user on [`CHANGED_CHANNEL`] so every other replica drops it too; entries also
//! expire after [`TTL`], which bounds how stale a replica can be if it missed the announcement.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cg_storage::models::{Member, Role};
use cg_storage::sql_types::Id;
use cg_storage::{Cache, Db};
use tokio_util::sync::CancellationToken;

use crate::error::Result;

/// Announced with a user id when that user's memberships change.
pub const CHANGED_CHANNEL: &str = "auth:memberships:changed";
/// The longest a replica trusts its copy.
pub const TTL: Duration = Duration::from_secs(5);
const MAX_USERS: u64 = 100_000;

/// (organisation, role) pairs, oldest membership first (the default organisation).
pub type UserOrganizations = Arc<[(Id, Role)]>;

/// The cache.
#[derive(Debug)]
pub struct Memberships {
    db: Db,
    cache: Cache,
    local: moka::future::Cache<Id, UserOrganizations>,
    /// Bumped by every invalidation: a read that started before one is not cached.
    epoch: AtomicU64,
}

impl Memberships {
    pub fn new(db: Db, cache: Cache) -> Self {
        Self {
            db,
            cache,
            local: moka::future::Cache::builder()
                .max_capacity(MAX_USERS)
                .time_to_live(TTL)
                .build(),
            epoch: AtomicU64::new(0),
        }
    }

    /// The user's active organisations and roles.
    pub async fn of(&self, user: Id) -> Result<UserOrganizations> {
        if let Some(hit) = self.local.get(&user).await {
            return Ok(hit);
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let mut pooled = self.db.get().await?;
        let rows = Member::organizations_of(&mut pooled.conn(), user).await?;
        let found: UserOrganizations = rows
            .into_iter()
            .map(|(m, _)| Ok((m.organization_id, m.role()?)))
            .collect::<Result<Vec<_>>>()?
            .into();
        if self.epoch.load(Ordering::Acquire) == epoch {
            self.local.insert(user, found.clone()).await;
        }
        Ok(found)
    }

    async fn forget(&self, user: Id) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.local.invalidate(&user).await;
    }

    /// `user`'s memberships changed: forget them here and tell the other replicas (a failed
    /// announcement is logged; they forget within [`TTL`]).
    pub async fn changed(&self, user: Id) {
        self.forget(user).await;
        if let Err(e) = self.cache.publish(CHANGED_CHANNEL, &user.to_string()).await {
            tracing::warn!(error = %e, user.id = %user, "announcing a membership change failed");
        }
    }

    /// Forget users whenever a replica announces a change, until `shutdown`.
    pub async fn follow(self: Arc<Self>, shutdown: CancellationToken) {
        crate::announce::follow_ids(
            &self.cache,
            CHANGED_CHANNEL,
            &shutdown,
            |user| {
                let this = self.clone();
                async move { this.forget(user).await }
            },
            || {
                self.epoch.fetch_add(1, Ordering::AcqRel);
                self.local.invalidate_all();
            },
        )
        .await;
    }
}
