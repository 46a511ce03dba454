//! A Redis connection per worker thread for the per-request checks (rate limit, budget).
//!
//! The shared connection's driver task lives on the runtime that opened it at start-up, so every
//! command an actix worker sends through it crosses threads twice; profiling the guarded path
//! showed that task switching as its largest cost. Each worker thread therefore opens its own
//! connection on first use (in the background: the shared one serves until it is ready) and keeps
//! it for the life of the thread. Connections are keyed by server and key prefix, so several
//! gateways in one process (tests) never share one.

use std::cell::RefCell;
use std::collections::HashMap;

use cg_storage::Cache;
use cg_storage::config::CacheTarget;

enum Slot {
    Connecting,
    Ready(Box<Cache>),
}

thread_local! {
    static CONNECTIONS: RefCell<HashMap<String, Slot>> = RefCell::new(HashMap::new());
}

/// Where per-thread connections go; `None` for the in-process cache (nothing to gain).
#[derive(Debug, Clone)]
pub struct WorkerCaches {
    target: Option<(String, CacheTarget)>,
}

impl WorkerCaches {
    pub fn new(target: Option<CacheTarget>) -> Self {
        Self {
            target: target.and_then(|t| match &t {
                CacheTarget::Redis(r) => Some((format!("{}|{}", r.display, r.key_prefix), t)),
                CacheTarget::Memory { .. } => None,
            }),
        }
    }

    /// This thread's connection when it is ready; otherwise start opening one and return `None`.
    pub fn get(&self) -> Option<Cache> {
        let (key, target) = self.target.as_ref()?;
        let ready = CONNECTIONS.with(|c| {
            let mut map = c.borrow_mut();
            match map.get(key) {
                Some(Slot::Ready(cache)) => Some(Some(Cache::clone(cache))),
                Some(Slot::Connecting) => Some(None),
                None => {
                    map.insert(key.clone(), Slot::Connecting);
                    None
                }
            }
        });
        match ready {
            Some(found) => found,
            None => {
                // Only on a current-thread runtime (an actix worker) does the connection's driver
                // stay on this thread; elsewhere the shared connection is as good.
                let here = tokio::runtime::Handle::try_current().ok()?;
                if here.runtime_flavor() != tokio::runtime::RuntimeFlavor::CurrentThread {
                    return None;
                }
                let (key, target) = (key.clone(), target.clone());
                tokio::spawn(async move {
                    let slot = match Cache::connect(&target).await {
                        Ok(cache) => Some(Slot::Ready(Box::new(cache))),
                        Err(e) => {
                            tracing::debug!(error = %e, "worker Redis connection not opened");
                            None
                        }
                    };
                    CONNECTIONS.with(|c| {
                        let mut map = c.borrow_mut();
                        match slot {
                            Some(s) => map.insert(key, s),
                            None => map.remove(&key),
                        };
                    });
                });
                None
            }
        }
    }
}
