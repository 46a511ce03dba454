//! What biasguard's handlers share: the database, the cache (for policy-change announcements),
//! the outbox that stands in for the database while it is away, and each organisation's policies
//! and settings, cached for a short time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cg_guard_api::biasguard::POLICIES_CHANNEL;
use cg_storage::db::apply_retention;
use cg_storage::models::{AuditLog, Organization, Policy, Violation};
use cg_storage::sql_types::{Id, Timestamp};
use cg_storage::{Cache, Db, Outbox};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;

const RECORDS: &str = "biasguard_records";
/// The tables retention applies to.
const RETAINED: [&str; 2] = ["biasguard_audit_logs", "biasguard_policy_violations"];

/// An organisation's policies and the settings BiasGuard reads.
#[derive(Debug, Clone, Default)]
pub struct OrgPolicies {
    pub policies: Vec<Policy>,
    /// `settings.biasguard.store_text`: keep the analysed text in the audit log.
    pub store_text: bool,
}

/// Per-process state.
#[derive(Debug)]
pub struct BiasState {
    pub db: Db,
    pub cache: Cache,
    pub outbox: Outbox,
    pub settings: Settings,
    policies: Mutex<HashMap<Id, (Instant, Arc<OrgPolicies>)>>,
}

/// Where the records of an analysis went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stored {
    Database,
    Outbox,
    Failed,
}

/// One analysis's records, stored together.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Records {
    pub audit: AuditLog,
    pub violations: Vec<Violation>,
}

impl BiasState {
    pub fn new(db: Db, cache: Cache, outbox: Outbox, settings: Settings) -> Self {
        Self {
            db,
            cache,
            outbox,
            settings,
            policies: Mutex::new(HashMap::new()),
        }
    }

    /// The organisation's policies and settings: cached for the TTL; a stale copy serves while
    /// the database is away. `Err` only when there is neither.
    pub async fn org_policies(&self, org: Id) -> cg_storage::Result<(Arc<OrgPolicies>, bool)> {
        let cached = self.policies.lock().ok().and_then(|m| m.get(&org).cloned());
        if let Some((at, p)) = &cached
            && at.elapsed() < self.settings.policy_ttl()
        {
            return Ok((p.clone(), false));
        }
        match self.load(org).await {
            Ok(fresh) => {
                let fresh = Arc::new(fresh);
                if let Ok(mut m) = self.policies.lock() {
                    m.insert(org, (Instant::now(), fresh.clone()));
                }
                Ok((fresh, false))
            }
            Err(e) => match cached {
                Some((_, stale)) => {
                    tracing::warn!(error = %e, org.id = %org, "policies served from a stale cache");
                    Ok((stale, true))
                }
                None => Err(e),
            },
        }
    }

    async fn load(&self, org: Id) -> cg_storage::Result<OrgPolicies> {
        let mut pooled = self.db.get().await?;
        let conn = &mut pooled.conn();
        let policies = Policy::list(conn, org, false).await?;
        let store_text = match Organization::find(conn, org).await {
            Ok(o) => o.settings["biasguard"]["store_text"].as_bool() == Some(true),
            Err(cg_storage::Error::NotFound) => false,
            Err(e) => return Err(e),
        };
        Ok(OrgPolicies {
            policies,
            store_text,
        })
    }

    /// Drop an organisation's cached policies (a change was announced).
    pub fn forget(&self, org: Id) {
        if let Ok(mut m) = self.policies.lock() {
            m.remove(&org);
        }
    }

    /// Listen for policy-change announcements until `shutdown`, subscribing again after a lost
    /// connection.
    pub async fn follow_policy_changes(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            let mut sub = tokio::select! {
                () = shutdown.cancelled() => return,
                sub = self.cache.subscribe(POLICIES_CHANNEL) => match sub {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::debug!(error = %e, "policy announcements unavailable; retrying");
                        tokio::select! {
                            () = shutdown.cancelled() => return,
                            () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        }
                    }
                },
            };
            loop {
                let message = tokio::select! {
                    () = shutdown.cancelled() => return,
                    m = sub.next() => m,
                };
                let Some(message) = message else { break };
                match message.parse::<Id>() {
                    Ok(org) => self.forget(org),
                    Err(_) => tracing::warn!(message, "ignoring a malformed policy announcement"),
                }
            }
            // The subscription ended: every cached copy may have missed an announcement.
            if let Ok(mut m) = self.policies.lock() {
                m.clear();
            }
        }
    }

    /// Store an analysis's records; when the database does not take them, keep them in the
    /// outbox for replay.
    pub async fn persist(&self, records: &Records) -> Stored {
        match self.insert(records).await {
            Ok(()) => Stored::Database,
            Err(e) => {
                tracing::warn!(error = %e, "database unavailable: records kept in the outbox");
                match self.outbox.push(RECORDS, &serde_json::json!(records)).await {
                    Ok(()) => Stored::Outbox,
                    Err(e) => {
                        tracing::error!(error = %e, "the outbox refused records too");
                        metrics::counter!("cg_biasguard_records_refused_total").increment(1);
                        Stored::Failed
                    }
                }
            }
        }
    }

    /// Idempotent: a replayed record that is already stored is skipped.
    async fn insert(&self, records: &Records) -> cg_storage::Result<()> {
        let mut pooled = self.db.get().await?;
        let conn = &mut pooled.conn();
        records.audit.insert_or_ignore(conn).await?;
        for v in &records.violations {
            v.insert_or_ignore(conn).await?;
        }
        Ok(())
    }

    /// Replay the outbox into the database every `every` until `shutdown`.
    pub async fn replay_every(self: Arc<Self>, every: Duration, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            if let Err(e) = self.replay_once().await {
                tracing::debug!(error = %e, "outbox replay paused");
            }
        }
    }

    /// Deliver the outbox's records until one fails or it is empty (see [`Outbox::drain`]).
    /// Returns how many were delivered.
    pub async fn replay_once(&self) -> cg_storage::Result<usize> {
        self.outbox
            .drain(|entry| async move {
                if entry.kind != RECORDS {
                    tracing::warn!(
                        kind = entry.kind,
                        "dropping an outbox record of unknown kind"
                    );
                    return Ok(());
                }
                let records: Records = serde_json::from_str(&entry.payload)
                    .map_err(|e| cg_storage::Error::Corrupt(e.to_string()))?;
                self.insert(&records).await
            })
            .await
    }

    /// Apply retention every `every` until `shutdown` (first pass at start-up).
    pub async fn retain_every(self: Arc<Self>, every: Duration, shutdown: CancellationToken) {
        let Some(keep) = self.settings.retention() else {
            return;
        };
        loop {
            let cutoff = Timestamp::from(chrono::Utc::now() - keep);
            for table in RETAINED {
                if let Err(e) = apply_retention(&self.db, table, cutoff).await {
                    tracing::warn!(error = %e, table, "retention failed; will retry");
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }
}
