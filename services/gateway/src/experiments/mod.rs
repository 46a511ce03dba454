//! A/B experiments at run time: which variant a user is in, and the running experiments of an
//! organisation the guarded path applies.
//!
//! A user's variant is a pure function of `experiment_id:user_id` hashed (SHA-256) onto [0, 1)
//! against the cumulative traffic split, so every replica computes the same variant without
//! asking anyone; an experiment's variants and audience cannot change once it has started, so the
//! variant never moves. The first time a replica sees a user in an experiment it records the
//! assignment: a row in `ab_assignments` (the first stored wins), then the Redis key
//! `ab:assign:{experiment}:{user}`, so a key in Redis always means the row is stored and other
//! replicas (and `assign-user`) skip the database. Running experiments are cached per
//! organisation, and dropped on every replica at once when one announces a change on
//! [`CHANGED_CHANNEL`].

pub mod design;
pub mod split;
pub mod stats;

use std::sync::Arc;
use std::time::Duration;

use cg_guard_api::GuardKind;
use cg_storage::models::{Assignment, Experiment};
use cg_storage::sql_types::{Id, Timestamp};
use cg_storage::{Cache, Db};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::announce::AnnouncedCache;
use crate::error::Result;
use design::{Design, ThresholdOverride, Variant};
use serde_json::{Map, Value};

/// Published with an organisation id when one of its experiments changes.
pub const CHANGED_CHANNEL: &str = "ab:experiments:changed";
/// How long Redis keeps an assignment (the database keeps it for good).
const ASSIGNMENT_TTL: Duration = Duration::from_secs(90 * 24 * 3600);
/// Assignments this replica knows are recorded (so it does not record them again).
const MAX_RECORDED: u64 = 200_000;
const MAX_ORGS: u64 = 100_000;
/// A user id longer than this is refused by the A/B routes and takes part in no experiment.
pub const MAX_USER_ID_CHARS: usize = 256;
/// Assignments being recorded in the background at once, per replica; past this, requests are
/// still routed by their variant and the recording waits for a later request of that user.
const MAX_RECORDING: usize = 32;

/// A user id the A/B routes and the guarded path accept: 1 to [`MAX_USER_ID_CHARS`] printable
/// characters.
pub fn valid_user_id(user_id: &str) -> bool {
    !user_id.is_empty()
        && user_id.chars().count() <= MAX_USER_ID_CHARS
        && !user_id.chars().any(char::is_control)
}

/// A running experiment, read once and shared by the requests that apply it.
#[derive(Debug, Clone)]
pub struct Live {
    pub id: Id,
    pub name: String,
    pub design: Design,
}

impl Live {
    pub fn from_row(e: &Experiment) -> Result<Self> {
        Ok(Self {
            id: e.id,
            name: e.name.clone(),
            design: Design::from_stored(
                &e.variants,
                &e.primary_metric,
                &e.secondary_metrics,
                &e.audience,
            )?,
        })
    }
}

/// `parts` joined with `:`, hashed onto [0, 1) (the top 53 bits of SHA-256).
pub fn unit_hash(parts: &[&str]) -> f64 {
    let mut hasher = Sha256::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update(b":");
        }
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut top = [0_u8; 8];
    top.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(top) >> 11) as f64 / (1_u64 << 53) as f64
}

/// The variant whose slice of the cumulative split `u` falls in.
pub fn pick(variants: &[Variant], u: f64) -> Option<&Variant> {
    let mut upper = 0.0;
    for v in variants {
        upper += v.traffic_split;
        if u < upper {
            return Some(v);
        }
    }
    // Rounding can leave the sum a hair under 1.
    variants.last()
}

/// The variant `user` is in, or `None` outside the audience. `client_type` `None` (an explicit
/// assignment) passes any client filter.
pub fn assign<'a>(
    experiment: Id,
    design: &'a Design,
    user: &str,
    client_type: Option<&str>,
) -> Option<&'a Variant> {
    let audience = &design.audience;
    if let Some(client) = client_type
        && !audience.client_types.is_empty()
        && !audience.client_types.iter().any(|c| c == client)
    {
        return None;
    }
    let id = experiment.to_string();
    if audience.percentage < 100.0
        && unit_hash(&[&id, user, "audience"]) * 100.0 >= audience.percentage
    {
        return None;
    }
    pick(&design.variants, unit_hash(&[&id, user]))
}

/// How the running experiments route one user's request: the variants the user is in and the
/// overrides they add up to (where two experiments set the same thing, the older one wins).
#[derive(Debug, Default)]
pub struct Routing {
    /// (experiment, variant name) pairs.
    pub variants: Vec<(Arc<Live>, String)>,
    pub services: Option<Vec<GuardKind>>,
    pub thresholds: ThresholdOverride,
    /// Guard name → fields set on the request sent to it.
    pub guard_options: Map<String, Value>,
}

impl Routing {
    /// The routing of `user`'s request from `client_type` under `running` (oldest first).
    pub fn for_user(running: &[Arc<Live>], user: &str, client_type: &str) -> Self {
        let mut routing = Self::default();
        for live in running {
            let Some(variant) = assign(live.id, &live.design, user, Some(client_type)) else {
                continue;
            };
            let o = &variant.overrides;
            if routing.services.is_none()
                && let Some(services) = &o.services
            {
                routing.services = Some(
                    GuardKind::ALL
                        .into_iter()
                        .filter(|k| services.iter().any(|s| s == k.name()))
                        .collect(),
                );
            }
            if let Some(t) = o.thresholds {
                routing.thresholds.flag = routing.thresholds.flag.or(t.flag);
                routing.thresholds.block = routing.thresholds.block.or(t.block);
            }
            for (guard, fields) in o.guard_options.iter().flatten() {
                let into = routing
                    .guard_options
                    .entry(guard.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let (Value::Object(into), Value::Object(fields)) = (into, fields) {
                    for (k, v) in fields {
                        into.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
            }
            routing.variants.push((live.clone(), variant.name.clone()));
        }
        routing
    }

    /// Set the variant's fields on the request for `kind`.
    pub fn apply_options(&self, kind: GuardKind, request: &mut Value) {
        if let (Some(Value::Object(fields)), Value::Object(request)) =
            (self.guard_options.get(kind.name()), request)
        {
            for (k, v) in fields {
                request.insert(k.clone(), v.clone());
            }
        }
    }

    /// What the response's metadata says about the experiments (`None` outside any).
    pub fn describe(&self) -> Option<Value> {
        (!self.variants.is_empty()).then(|| {
            Value::Array(
                self.variants
                    .iter()
                    .map(|(live, variant)| {
                        serde_json::json!({
                            "experiment_id": live.id,
                            "experiment": live.name,
                            "variant": variant,
                        })
                    })
                    .collect(),
            )
        })
    }
}

fn assignment_key(experiment: Id, user: &str) -> String {
    format!("ab:assign:{experiment}:{user}")
}

/// The gateway's view of experiments.
#[derive(Debug)]
pub struct Experiments {
    db: Db,
    cache: Cache,
    running: Arc<AnnouncedCache<Arc<[Arc<Live>]>>>,
    recorded: moka::sync::Cache<(Id, String), ()>,
    recording: Arc<tokio::sync::Semaphore>,
}

impl Experiments {
    /// Running experiments are cached for `ttl` (`EXPERIMENT_CACHE_SECS`; zero reads every
    /// time).
    pub fn new(db: Db, cache: Cache, ttl: Duration) -> Self {
        Self {
            db,
            running: Arc::new(AnnouncedCache::new(
                cache.clone(),
                CHANGED_CHANNEL,
                ttl,
                MAX_ORGS,
            )),
            cache,
            recorded: moka::sync::Cache::builder()
                .max_capacity(MAX_RECORDED)
                .time_to_live(Duration::from_secs(3600))
                .build(),
            recording: Arc::new(tokio::sync::Semaphore::new(MAX_RECORDING)),
        }
    }

    /// The organisation's running experiments, oldest first.
    pub async fn running(&self, org: Id) -> Result<Arc<[Arc<Live>]>> {
        self.running
            .get_or_load(org, async {
                let mut pooled = self.db.get().await?;
                let rows = Experiment::running(&mut pooled.conn(), org).await?;
                Ok(rows
                    .iter()
                    .map(|e| Live::from_row(e).map(Arc::new))
                    .collect::<Result<Vec<_>>>()?
                    .into())
            })
            .await
    }

    /// An experiment of `org` changed (after the change is committed): every replica forgets
    /// the organisation's running experiments.
    pub async fn changed(&self, org: Id) {
        self.running.changed(org).await;
    }

    /// Drop an organisation's cached experiments whenever a replica announces a change, until
    /// `shutdown`.
    pub async fn follow(&self, shutdown: CancellationToken) {
        self.running.clone().follow(shutdown).await;
    }

    /// The variant `user` is in (`None` outside the audience), recorded: from Redis when an
    /// earlier assignment is there, else hashed and stored in the database (the first stored
    /// assignment wins) and in Redis.
    pub async fn assignment(
        &self,
        org: Id,
        live: &Live,
        user: &str,
        client_type: Option<&str>,
    ) -> Result<Option<String>> {
        let Some(variant) = assign(live.id, &live.design, user, client_type) else {
            return Ok(None);
        };
        self.record(org, live.id, user, &variant.name)
            .await
            .map(Some)
    }

    /// The recorded variant of `user`: Redis's copy when there is one, else the row (the first
    /// stored wins, so `variant` only if none was) written and then cached, so a key in Redis
    /// always stands for a stored row.
    async fn record(&self, org: Id, experiment: Id, user: &str, variant: &str) -> Result<String> {
        let key = assignment_key(experiment, user);
        match self.cache.get_string(&key).await {
            Ok(Some(cached)) => return Ok(cached),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "reading a cached assignment failed"),
        }
        let stored = self.store(org, experiment, user, variant).await?;
        if let Err(e) = self
            .cache
            .set(&key, stored.as_bytes(), Some(ASSIGNMENT_TTL))
            .await
        {
            tracing::warn!(error = %e, "caching an assignment failed");
        }
        Ok(stored)
    }

    async fn store(&self, org: Id, experiment: Id, user: &str, variant: &str) -> Result<String> {
        let mut pooled = self.db.get().await?;
        let stored = Assignment {
            experiment_id: experiment,
            user_id: user.to_owned(),
            organization_id: org,
            variant_name: variant.to_owned(),
            assigned_at: Timestamp::now(),
        }
        .insert_or_get(&mut pooled.conn())
        .await?;
        self.recorded.insert((experiment, user.to_owned()), ());
        Ok(stored.variant_name)
    }

    /// A guarded request put `user` in `variant`: record the assignment in the background unless
    /// this replica already knows it is recorded or Redis says another did. The row is written
    /// before the Redis key, so the key never stands for a row that is missing. At most
    /// [`MAX_RECORDING`] recordings run at once; a failed or skipped one is retried by the user's
    /// next request.
    pub fn note_exposure(self: &Arc<Self>, org: Id, experiment: Id, user: &str, variant: &str) {
        let seen = (experiment, user.to_owned());
        if self.recorded.contains_key(&seen) {
            return;
        }
        let Ok(permit) = self.recording.clone().try_acquire_owned() else {
            return;
        };
        self.recorded.insert(seen.clone(), ());
        let (this, user, variant) = (self.clone(), user.to_owned(), variant.to_owned());
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = this.record(org, experiment, &user, &variant).await {
                tracing::warn!(error = %e, experiment.id = %experiment, "recording an assignment failed");
                this.recorded.invalidate(&seen);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use design::{Audience, Metric, MetricKind, Overrides};

    fn design(splits: &[f64], audience: Audience) -> Design {
        Design {
            variants: splits
                .iter()
                .enumerate()
                .map(|(i, s)| Variant {
                    name: format!("v{i}"),
                    traffic_split: *s,
                    description: String::new(),
                    overrides: Overrides::default(),
                })
                .collect(),
            primary_metric: Metric {
                name: "m".into(),
                kind: MetricKind::Mean,
            },
            secondary_metrics: Vec::new(),
            audience,
        }
    }

    #[test]
    fn the_hash_is_sha256_of_experiment_colon_user() {
        // Python: int.from_bytes(hashlib.sha256(b"e:u").digest()[:8], "big") >> 11) / 2**53
        assert_eq!(unit_hash(&["e", "u"]), 0.709_918_293_855_113_6);
        assert_eq!(unit_hash(&["e:u"]), unit_hash(&["e", "u"]));
    }

    #[test]
    fn assignment_is_stable_and_follows_the_split() {
        let d = design(&[0.2, 0.3, 0.5], Audience::default());
        let exp = Id::new();
        let mut counts = [0_usize; 3];
        for i in 0..20_000 {
            let user = format!("user-{i}");
            let v = assign(exp, &d, &user, Some("api")).unwrap();
            assert_eq!(v, assign(exp, &d, &user, Some("web")).unwrap());
            counts[v.name[1..].parse::<usize>().unwrap()] += 1;
        }
        // Within 1.5 percentage points of the split over 20,000 users.
        for (count, share) in counts.iter().zip([0.2, 0.3, 0.5]) {
            let seen = *count as f64 / 20_000.0;
            assert!((seen - share).abs() < 0.015, "{counts:?}");
        }
    }

    #[test]
    fn audience_limits_who_takes_part() {
        let d = design(
            &[0.5, 0.5],
            Audience {
                percentage: 25.0,
                client_types: vec!["vscode".into()],
            },
        );
        let exp = Id::new();
        assert!(assign(exp, &d, "someone", Some("web")).is_none());
        let inside = (0..8_000)
            .filter(|i| assign(exp, &d, &format!("u{i}"), Some("vscode")).is_some())
            .count();
        assert!((1_700..2_300).contains(&inside), "{inside} of 8000");
        // An explicit assignment (no client) passes the client filter, not the percentage.
        let explicit = (0..8_000)
            .filter(|i| assign(exp, &d, &format!("u{i}"), None).is_some())
            .count();
        assert_eq!(explicit, inside);
    }

    #[test]
    fn the_older_experiment_wins_where_two_set_the_same_thing() {
        let with = |services: &[&str], flag: f64, option: i64| {
            let mut d = design(&[1.0 - 1e-9, 1e-9], Audience::default());
            d.variants[0].overrides = Overrides {
                services: Some(services.iter().map(|s| (*s).to_owned()).collect()),
                thresholds: Some(ThresholdOverride {
                    flag: Some(flag),
                    block: None,
                }),
                guard_options: Some(
                    serde_json::json!({"trustguard": {"threshold": option, "mode": option}})
                        .as_object()
                        .unwrap()
                        .clone(),
                ),
            };
            Arc::new(Live {
                id: Id::new(),
                name: format!("e{option}"),
                design: d,
            })
        };
        let older = with(&["biasguard", "tokenguard"], 0.3, 1);
        let mut newer = with(&["trustguard"], 0.4, 2);
        if let Some(o) = &mut Arc::make_mut(&mut newer).design.variants[0]
            .overrides
            .guard_options
        {
            o["trustguard"] = serde_json::json!({"extra": true, "threshold": 2});
        }
        let r = Routing::for_user(&[older, newer], "someone", "api");
        assert_eq!(r.variants.len(), 2);
        assert_eq!(
            r.services,
            Some(vec![GuardKind::TokenGuard, GuardKind::BiasGuard])
        );
        assert_eq!(r.thresholds.flag, Some(0.3));
        let mut request = serde_json::json!({"content": "x", "threshold": 9});
        r.apply_options(GuardKind::TrustGuard, &mut request);
        assert_eq!(
            request,
            serde_json::json!({"content": "x", "threshold": 1, "mode": 1, "extra": true})
        );
        let described = r.describe().unwrap();
        assert_eq!(described[0]["variant"], "v0");
        assert!(
            Routing::for_user(&[], "someone", "api")
                .describe()
                .is_none()
        );
    }

    #[test]
    fn pick_covers_the_whole_unit_interval() {
        let d = design(&[0.5, 0.5], Audience::default());
        assert_eq!(pick(&d.variants, 0.0).unwrap().name, "v0");
        assert_eq!(pick(&d.variants, 0.5).unwrap().name, "v1");
        assert_eq!(pick(&d.variants, 0.999_999_999).unwrap().name, "v1");
    }
}
