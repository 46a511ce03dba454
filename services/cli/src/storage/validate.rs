//! `codeguardians storage validate-storage`: round trips on every backend the storage variables
//! name, as the services would use them, and (centralized mode) a check that no service is left on
//! local storage. Prints an N/M table (or `--json`); exits 1 when any check fails. Writes only
//! short-lived probe keys and objects, and a user with a session inside a transaction that is
//! rolled back.

use std::future::Future;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use cg_storage::blob::Method;
use cg_storage::config::{Mode, SessionStorageType};
use cg_storage::db::pending_migrations;
use cg_storage::models::{NewUser, Session};
use cg_storage::sql_types::{Id, Timestamp};
use cg_storage::{BlobStore, Cache, Db, Needs, Storage, StorageConfig};
use serde::Serialize;

/// How long a probe may take before it counts as failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

const EVERYTHING: Needs = Needs {
    database: true,
    cache: true,
    blobs: true,
};

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Print the results as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// One check's outcome.
#[derive(Debug, Serialize)]
struct Check {
    name: String,
    /// What served the role (`postgres`, `redis`, `s3`, …).
    backend: String,
    passed: bool,
    detail: String,
    duration_ms: f64,
}

#[derive(Debug, Serialize)]
struct Summary {
    passed: usize,
    total: usize,
    checks: Vec<Check>,
}

pub async fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let config = StorageConfig::from_env()?;
    let mut checks = Vec::new();
    let storage = match config.resolve(EVERYTHING) {
        Ok(resolved) => match Storage::connect(&resolved).await {
            Ok(storage) => Some(storage),
            Err(e) => {
                checks.push(failed("connect to every backend", "-", &e));
                None
            }
        },
        Err(e) => {
            checks.push(failed("storage variables", "-", &e));
            None
        }
    };
    if let Some(storage) = &storage {
        if let Some(db) = &storage.db {
            checks.push(probe("database: migrations applied", db.backend(), migrations(db)).await);
            checks.push(
                probe(
                    "database: user and session round trip",
                    db.backend(),
                    session(db),
                )
                .await,
            );
        }
        if let Some(cache) = &storage.cache {
            checks.push(
                probe(
                    "cache: set/get/TTL/delete",
                    cache.backend(),
                    key_round_trip(cache),
                )
                .await,
            );
            checks.push(probe("cache: publish/subscribe", cache.backend(), pub_sub(cache)).await);
        }
        if let Some(blobs) = &storage.blobs {
            checks.push(
                probe(
                    "blobs: put/head/list/presign/delete",
                    blobs.backend(),
                    objects(blobs),
                )
                .await,
            );
        }
        let contextguard = contextguard_cache(&config).await;
        match contextguard {
            Ok(cache) => checks.push(
                probe(
                    "contextguard: memory item",
                    cache.backend(),
                    key_round_trip(&cache),
                )
                .await,
            ),
            Err(e) => checks.push(failed("contextguard: memory item", "redis", &e)),
        }
        checks.push(centralized(&config, storage).await);
    }
    let passed = checks.iter().filter(|c| c.passed).count();
    let summary = Summary {
        passed,
        total: checks.len(),
        checks,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        for c in &summary.checks {
            println!(
                "{:<4} {:<42} {:<9} {:>8.1} ms  {}",
                if c.passed { "ok" } else { "FAIL" },
                c.name,
                c.backend,
                c.duration_ms,
                c.detail
            );
        }
        println!("{}/{} checks passed", summary.passed, summary.total);
    }
    Ok(if summary.passed == summary.total {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn failed(name: &str, backend: &str, err: &dyn std::fmt::Display) -> Check {
    Check {
        name: name.to_owned(),
        backend: backend.to_owned(),
        passed: false,
        detail: err.to_string(),
        duration_ms: 0.0,
    }
}

async fn probe(
    name: &str,
    backend: &str,
    check: impl Future<Output = anyhow::Result<String>>,
) -> Check {
    let started = Instant::now();
    let outcome = tokio::time::timeout(PROBE_TIMEOUT, check).await;
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (passed, detail) = match outcome {
        Ok(Ok(detail)) => (true, detail),
        Ok(Err(e)) => (false, format!("{e:#}")),
        Err(_) => (
            false,
            format!("no answer within {} s", PROBE_TIMEOUT.as_secs()),
        ),
    };
    Check {
        name: name.to_owned(),
        backend: backend.to_owned(),
        passed,
        detail,
        duration_ms,
    }
}

async fn migrations(db: &Db) -> anyhow::Result<String> {
    let pending = pending_migrations(db).await?;
    anyhow::ensure!(
        pending.is_empty(),
        "pending: {} (run `codeguardians migrate`)",
        pending.join(", ")
    );
    Ok(db.display())
}

/// A user and a session written, read back and rolled back: proves the tables, the write
/// permission and the session queries the gateway uses.
async fn session(db: &Db) -> anyhow::Result<String> {
    let mut pooled = db.get().await?;
    let conn = &mut pooled.conn();
    let outcome = conn
        .transaction(async |conn| -> anyhow::Result<()> {
            let probe = Id::new();
            let user = NewUser::new(
                &format!("validate-{probe}@invalid"),
                "-",
                "validate-storage",
            )
            .insert(conn)
            .await?;
            let now = Timestamp::now();
            let hash = format!("validate-{probe}");
            Session {
                id: probe,
                user_id: user.id,
                family_id: probe,
                family_started_at: now,
                refresh_token_hash: hash.clone(),
                user_agent: None,
                ip_address: None,
                expires_at: Timestamp::from(*now + chrono::Duration::minutes(1)),
                revoked_at: None,
                replaced_by: None,
                created_at: now,
                last_used_at: None,
            }
            .insert(conn)
            .await?;
            let found = Session::find_by_hash(conn, &hash).await?;
            anyhow::ensure!(
                found.is_some_and(|s| s.user_id == user.id),
                "the session written was not read back"
            );
            Err(anyhow::anyhow!(RolledBack))
        })
        .await;
    match outcome {
        Err(e) if e.is::<RolledBack>() => Ok("written, read back, rolled back".to_owned()),
        Err(e) => Err(e),
        Ok(()) => Ok(String::new()),
    }
}

/// The error that rolls the probe transaction back on purpose.
#[derive(Debug)]
struct RolledBack;

impl std::fmt::Display for RolledBack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("rolled back")
    }
}

impl std::error::Error for RolledBack {}

async fn key_round_trip(cache: &Cache) -> anyhow::Result<String> {
    let key = format!("validate-storage:{}", Id::new());
    let value = Id::new().to_string();
    cache
        .set(&key, value.as_bytes(), Some(Duration::from_secs(60)))
        .await?;
    let read = cache.get_string(&key).await?;
    let ttl = cache.ttl(&key).await?;
    cache.delete(&key).await?;
    anyhow::ensure!(
        read.as_deref() == Some(value.as_str()),
        "read back {read:?}"
    );
    anyhow::ensure!(
        ttl.is_some_and(|t| t > Duration::ZERO && t <= Duration::from_secs(60)),
        "TTL read back as {ttl:?}"
    );
    anyhow::ensure!(cache.get(&key).await?.is_none(), "still there after delete");
    Ok(format!("prefix {:?}", cache.prefix()))
}

async fn pub_sub(cache: &Cache) -> anyhow::Result<String> {
    let channel = format!("validate-storage:{}", Id::new());
    let mut subscription = cache.subscribe(&channel).await?;
    let message = Id::new().to_string();
    let receivers = cache.publish(&channel, &message).await?;
    let received = subscription.next().await;
    anyhow::ensure!(
        received.as_deref() == Some(message.as_str()),
        "received {received:?}"
    );
    Ok(format!("{receivers} subscriber(s) reached"))
}

async fn objects(blobs: &BlobStore) -> anyhow::Result<String> {
    let prefix = format!("validate-storage/{}", Id::new());
    let key = format!("{prefix}/probe.txt");
    let body = bytes::Bytes::from(Id::new().to_string());
    blobs.put(&key, body.clone()).await?;
    let checked = async {
        let meta = blobs.head(&key).await?;
        anyhow::ensure!(
            meta.size == body.len() as u64,
            "head says {} bytes",
            meta.size
        );
        let listed = blobs.list(&prefix).await?;
        anyhow::ensure!(
            listed.iter().any(|m| m.key == key),
            "not listed under {prefix}"
        );
        let presigned = if blobs.backend() == "s3" {
            let url = blobs
                .presign(Method::GET, &key, Duration::from_secs(60))
                .await?;
            let fetched = reqwest::get(url).await?.error_for_status()?.bytes().await?;
            anyhow::ensure!(fetched == body, "the presigned URL served other bytes");
            "presigned GET served the object"
        } else {
            "no presigned URLs on a local folder"
        };
        Ok(format!("{}; {presigned}", blobs.display()))
    }
    .await;
    blobs.delete(&key).await?;
    checked
}

async fn contextguard_cache(config: &StorageConfig) -> anyhow::Result<Cache> {
    let resolved = config.clone().for_contextguard().resolve(Needs {
        database: false,
        cache: true,
        blobs: false,
    })?;
    let target = resolved
        .cache
        .ok_or_else(|| anyhow::anyhow!("no cache resolved for ContextGuard"))?;
    Ok(Cache::connect(&target).await?)
}

/// In centralized mode every role of every service must be on a shared backend: one replica on
/// local storage would serve its own island of data.
async fn centralized(config: &StorageConfig, storage: &Storage) -> Check {
    let centralized = storage
        .db
        .as_ref()
        .is_some_and(|db| db.mode() == Mode::Centralized);
    let mut local = Vec::new();
    if centralized {
        if storage
            .cache
            .as_ref()
            .is_some_and(|c| c.mode() != Mode::Centralized)
        {
            local.push("cache (REDIS_HOST)".to_owned());
        }
        if storage
            .blobs
            .as_ref()
            .is_some_and(|b| b.mode() != Mode::Centralized)
        {
            local.push("uploads (S3_ENABLED)".to_owned());
        }
        if config.session_storage_type() != SessionStorageType::Redis {
            local.push("sessions (SESSION_STORAGE_TYPE)".to_owned());
        }
        match contextguard_cache(config).await {
            Ok(c) if c.mode() == Mode::Centralized => {}
            _ => local.push("ContextGuard memory (CONTEXTGUARD_USE_REDIS)".to_owned()),
        }
        let healthguard = config.clone().for_healthguard().resolve(Needs {
            database: true,
            cache: false,
            blobs: false,
        });
        if !healthguard
            .ok()
            .and_then(|r| r.database)
            .is_some_and(|d| d.mode() == Mode::Centralized)
        {
            local.push("HealthGuard results (HEALTHGUARD_DATABASE_URL)".to_owned());
        }
    }
    Check {
        name: "centralized: no service on local storage".to_owned(),
        backend: if centralized { "all" } else { "embedded" }.to_owned(),
        passed: local.is_empty(),
        detail: if !centralized {
            "embedded mode: local storage is expected".to_owned()
        } else if local.is_empty() {
            "every role is on a shared backend".to_owned()
        } else {
            format!("left on local storage: {}", local.join(", "))
        },
        duration_ms: 0.0,
    }
}
