//! Which organisations a user belongs to, with which role: what every request with an access
//! token needs, cached per replica so such a request does not read the database.
//!
//! A change of membership (an organisation created, an invitation accepted, a role changed, a
//! member removed, an account deleted) is announced on [`CHANGED_CHANNEL`], so every replica
//! drops the user's entry at once; entries also expire after [`TTL`].

use std::sync::Arc;
use std::time::Duration;

use cg_storage::models::{Member, Role};
use cg_storage::sql_types::Id;
use cg_storage::{Cache, Db};
use tokio_util::sync::CancellationToken;

use crate::announce::AnnouncedCache;
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
    cached: Arc<AnnouncedCache<UserOrganizations>>,
}

impl Memberships {
    pub fn new(db: Db, cache: Cache) -> Self {
        Self {
            db,
            cached: Arc::new(AnnouncedCache::new(cache, CHANGED_CHANNEL, TTL, MAX_USERS)),
        }
    }

    /// The user's active organisations and roles.
    pub async fn of(&self, user: Id) -> Result<UserOrganizations> {
        self.cached
            .get_or_load(user, async {
                let mut pooled = self.db.get().await?;
                let rows = Member::organizations_of(&mut pooled.conn(), user).await?;
                Ok(rows
                    .into_iter()
                    .map(|(m, _)| Ok((m.organization_id, m.role()?)))
                    .collect::<Result<Vec<_>>>()?
                    .into())
            })
            .await
    }

    /// `user`'s memberships changed (after the change is committed).
    pub async fn changed(&self, user: Id) {
        self.cached.changed(user).await;
    }

    /// Forget users whenever a replica announces a change, until `shutdown`.
    pub async fn follow(&self, shutdown: CancellationToken) {
        self.cached.clone().follow(shutdown).await;
    }
}
