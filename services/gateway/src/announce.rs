//! Following an announcement channel: the loop the caches that every replica keeps (running
//! experiments, memberships) use to drop an entry when any replica announces a change.

use std::time::Duration;

use cg_storage::Cache;
use cg_storage::sql_types::Id;
use tokio_util::sync::CancellationToken;

/// Resubscribe this often while the channel cannot be joined.
const RESUBSCRIBE: Duration = Duration::from_secs(1);

/// Call `forget` with the id of every message on `channel`, and `lost` whenever the subscription
/// ends (messages may have been missed), until `shutdown`.
pub async fn follow_ids<F: Future<Output = ()>>(
    cache: &Cache,
    channel: &str,
    shutdown: &CancellationToken,
    mut forget: impl FnMut(Id) -> F,
    mut lost: impl FnMut(),
) {
    loop {
        let sub = tokio::select! {
            () = shutdown.cancelled() => return,
            s = cache.subscribe(channel) => s,
        };
        if let Ok(mut sub) = sub {
            loop {
                let message = tokio::select! {
                    () = shutdown.cancelled() => return,
                    m = sub.next() => m,
                };
                let Some(message) = message else { break };
                match message.parse::<Id>() {
                    Ok(id) => forget(id).await,
                    Err(_) => tracing::warn!(%message, channel, "unreadable announcement"),
                }
            }
            lost();
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(RESUBSCRIBE) => {}
        }
    }
}
