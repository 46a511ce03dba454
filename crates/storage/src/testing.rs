//! Isolated backends for tests (feature `testing`): each test gets its own database, key prefix
//! or bucket, so tests run in parallel and never clean up by hand.
//!
//! Real servers are used when configured, the embedded backends always:
//!
//! | variable | meaning |
//! |---|---|
//! | `CG_TEST_DATABASE_URL` | PostgreSQL URL of a role allowed to create databases (e.g. `postgres://postgres@127.0.0.1:5432/postgres`) |
//! | `CG_TEST_REDIS_URL` | Redis URL (e.g. `redis://127.0.0.1:6379/0`) |
//! | `CG_TEST_S3_ENDPOINT` | S3-compatible endpoint (e.g. moto at `http://127.0.0.1:5055`); `CG_TEST_S3_ACCESS_KEY`, `CG_TEST_S3_SECRET_KEY` (default `test`) |
//! | `CG_TEST_REQUIRE_BACKENDS=1` | a missing server fails the test instead of leaving only the embedded backend (CI sets this) |
//!
//! PostgreSQL test databases are cloned from a migrated template (named after a fingerprint of the
//! migrations) and dropped when the test ends.

#![expect(clippy::expect_used, reason = "test support fails loudly")]

mod s3s;
pub use s3s::{S3S_ACCESS_KEY, S3S_SECRET_KEY, S3sServer};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use secrecy::SecretString;
use tempfile::TempDir;

use crate::blob::BlobStore;
use crate::cache::Cache;
use crate::config::{BlobTarget, CacheTarget, DatabaseTarget, PoolSettings, RedisTarget, S3Target};
use crate::db::Db;

const TEMPLATE_LOCK_KEY: i64 = 0x6367_7465_6d70_6c74;

/// Whether CI demands every real backend.
pub fn backends_required() -> bool {
    std::env::var("CG_TEST_REQUIRE_BACKENDS").is_ok_and(|v| v == "1" || v == "true")
}

fn configured(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Some(v),
        _ => {
            assert!(
                !backends_required(),
                "{var} is not set but CG_TEST_REQUIRE_BACKENDS=1: the real backend is required"
            );
            None
        }
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::now_v7().simple())
}

fn pool_settings() -> PoolSettings {
    PoolSettings {
        max_size: 4,
        min_idle: None,
        connect_timeout: std::time::Duration::from_secs(5),
        acquire_timeout: std::time::Duration::from_secs(10),
    }
}

/// A migrated database that disappears with the value.
#[derive(Debug)]
pub struct TestDb {
    pub db: Db,
    /// `postgres` or `sqlite`.
    pub backend: &'static str,
    /// The URL a separate process (a service under test) can use.
    pub url: String,
    guard: Guard,
}

#[derive(Debug)]
enum Guard {
    Sqlite(#[expect(dead_code, reason = "held so the folder outlives the test")] TempDir),
    Postgres { admin_url: String, name: String },
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Guard::Postgres { admin_url, name } = &self.guard {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs inside the test's runtime; a separate thread gets a runtime of its own.
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    if let Ok(mut admin) = AsyncPgConnection::establish(&admin_url).await {
                        let _ = admin
                            .batch_execute(&format!(
                                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                            ))
                            .await;
                    }
                });
            })
            .join();
        }
    }
}

impl TestDb {
    /// A fresh SQLite file in a temporary folder, migrated.
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("test.db");
        let target = DatabaseTarget::Sqlite {
            path: path.clone(),
            source: "test",
            pool: pool_settings(),
        };
        let db = Db::connect(&target).await.expect("open sqlite");
        db.run_migrations().await.expect("migrate sqlite");
        Self {
            db,
            backend: "sqlite",
            url: format!("sqlite://{}", path.display()),
            guard: Guard::Sqlite(dir),
        }
    }

    /// A fresh PostgreSQL database cloned from the migrated template, when
    /// `CG_TEST_DATABASE_URL` is set.
    pub async fn postgres() -> Option<Self> {
        let admin_url = configured("CG_TEST_DATABASE_URL")?;
        let name = unique("cg_test_");
        clone_template(&admin_url, &name).await;
        let url = with_database(&admin_url, &name);
        let target = pg_target(&url);
        let db = Db::connect(&target).await.expect("connect test database");
        Some(Self {
            db,
            backend: "postgres",
            url,
            guard: Guard::Postgres { admin_url, name },
        })
    }

    /// An empty PostgreSQL database (no migrations), when `CG_TEST_DATABASE_URL` is set.
    pub async fn postgres_unmigrated() -> Option<Self> {
        let admin_url = configured("CG_TEST_DATABASE_URL")?;
        let name = unique("cg_test_");
        let mut admin = AsyncPgConnection::establish(&admin_url)
            .await
            .expect("connect CG_TEST_DATABASE_URL");
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create test database");
        let url = with_database(&admin_url, &name);
        let db = Db::connect(&pg_target(&url))
            .await
            .expect("connect test database");
        Some(Self {
            db,
            backend: "postgres",
            url,
            guard: Guard::Postgres { admin_url, name },
        })
    }

    /// SQLite always, PostgreSQL when configured: run the same test body on each.
    pub async fn all() -> Vec<Self> {
        let mut dbs = vec![Self::sqlite().await];
        dbs.extend(Self::postgres().await);
        dbs
    }
}

fn with_database(url: &str, name: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("CG_TEST_DATABASE_URL is a URL");
    parsed.set_path(name);
    parsed.to_string()
}

fn pg_target(url: &str) -> DatabaseTarget {
    DatabaseTarget::Postgres {
        url: SecretString::from(url.to_owned()),
        root_cert: None,
        tls: false,
        display: "test".into(),
        source: "CG_TEST_DATABASE_URL",
        pool: pool_settings(),
    }
}

/// Create database `database` from the migrated template of this migration set, building the
/// template first when it is missing. All under one advisory lock, across processes: a test run
/// of another migration set (another branch on a shared server) drops templates it considers
/// stale while holding the same lock, so the template cannot vanish between check and clone.
async fn clone_template(admin_url: &str, database: &str) {
    let name = format!("cg_template_{}", env!("CG_MIGRATIONS_FINGERPRINT"));
    let mut admin = AsyncPgConnection::establish(admin_url)
        .await
        .expect("connect CG_TEST_DATABASE_URL");
    admin
        .batch_execute(&format!("SELECT pg_advisory_lock({TEMPLATE_LOCK_KEY})"))
        .await
        .expect("template lock");
    let exists: i64 = diesel::sql_query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
        .bind::<diesel::sql_types::Text, _>(&name)
        .get_result::<Count>(&mut admin)
        .await
        .expect("look up template")
        .n;
    if exists == 0 {
        let building = format!("{name}_building");
        // One statement per call: PostgreSQL runs a multi-statement string as one transaction,
        // which DROP/CREATE DATABASE refuse.
        admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"
            ))
            .await
            .expect("drop stale template");
        admin
            .batch_execute(&format!("CREATE DATABASE \"{building}\""))
            .await
            .expect("create template");
        {
            let db = Db::connect(&pg_target(&with_database(admin_url, &building)))
                .await
                .expect("connect template");
            db.run_migrations().await.expect("migrate template");
        }
        // The migration pool is dropped, but its sessions may linger a moment: end them and
        // retry until the rename (which needs the database idle) goes through.
        let mut renamed = false;
        for _ in 0..50 {
            let _ = admin
                .batch_execute(&format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = '{building}' AND pid <> pg_backend_pid()"
                ))
                .await;
            if admin
                .batch_execute(&format!(
                    "ALTER DATABASE \"{building}\" RENAME TO \"{name}\""
                ))
                .await
                .is_ok()
            {
                renamed = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(renamed, "could not publish template {name}");
        // Templates of older migration sets are dead weight on a long-lived server.
        let stale: Vec<Name> = diesel::sql_query(
            "SELECT datname AS name FROM pg_database WHERE datname LIKE 'cg\\_template\\_%' AND datname <> $1",
        )
        .bind::<diesel::sql_types::Text, _>(&name)
        .load(&mut admin)
        .await
        .unwrap_or_default();
        for old in stale {
            let _ = admin
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                    old.name
                ))
                .await;
        }
    }
    let cloned = admin
        .batch_execute(&format!(
            "CREATE DATABASE \"{database}\" TEMPLATE \"{name}\""
        ))
        .await;
    admin
        .batch_execute(&format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK_KEY})"))
        .await
        .expect("template unlock");
    cloned.expect("create test database");
}

#[derive(diesel::QueryableByName)]
struct Name {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// The in-process cache under a unique prefix.
pub fn memory_cache() -> Cache {
    Cache::Memory(crate::cache::MemoryCache::new(
        16 * 1024 * 1024,
        &unique("test:"),
    ))
}

/// Redis under a unique prefix, when `CG_TEST_REDIS_URL` is set.
pub async fn redis_cache() -> Option<Cache> {
    let url = configured("CG_TEST_REDIS_URL")?;
    let target = CacheTarget::Redis(RedisTarget {
        urls: vec![SecretString::from(url)],
        cluster: false,
        connect_timeout: std::time::Duration::from_secs(2),
        response_timeout: std::time::Duration::from_secs(2),
        key_prefix: format!("{}:", unique("cgtest:")),
        display: "test".into(),
        source: "CG_TEST_REDIS_URL",
    });
    Some(
        Cache::connect(&target)
            .await
            .expect("connect CG_TEST_REDIS_URL"),
    )
}

/// In-process always, Redis when configured.
pub async fn all_caches() -> Vec<Cache> {
    let mut caches = vec![memory_cache()];
    caches.extend(redis_cache().await);
    caches
}

/// A blob store with what keeps it alive.
#[derive(Debug)]
pub struct TestBlobs {
    pub store: BlobStore,
    _dir: Option<TempDir>,
}

impl TestBlobs {
    /// A fresh local folder.
    pub fn local() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = BlobStore::open(&BlobTarget::Local {
            root: dir.path().join("blobs"),
        })
        .expect("open local blobs");
        Self {
            store,
            _dir: Some(dir),
        }
    }

    /// A fresh bucket on the S3-compatible server at `CG_TEST_S3_ENDPOINT`, when set.
    pub async fn s3() -> Option<Self> {
        let target = s3_test_target(&create_test_bucket().await?);
        let store = BlobStore::open(&BlobTarget::S3(target)).expect("open S3 bucket");
        Some(Self { store, _dir: None })
    }

    /// The local folder always, S3 when configured.
    pub async fn all() -> Vec<Self> {
        let mut stores = vec![Self::local()];
        stores.extend(Self::s3().await);
        stores
    }
}

/// Create an empty bucket on the test S3 server; returns its name.
pub async fn create_test_bucket() -> Option<String> {
    let endpoint = configured("CG_TEST_S3_ENDPOINT")?;
    let bucket = unique("cg-test-");
    // moto accepts unsigned bucket creation; a signing server needs the bucket made beforehand.
    let status = put_bucket(&endpoint, &bucket).await;
    assert!(
        status < 300,
        "creating bucket {bucket} at {endpoint}: HTTP {status}"
    );
    Some(bucket)
}

async fn put_bucket(endpoint: &str, bucket: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = url::Url::parse(endpoint).expect("CG_TEST_S3_ENDPOINT is a URL");
    let host = url
        .host_str()
        .expect("CG_TEST_S3_ENDPOINT has a host")
        .to_owned();
    let port = url.port_or_known_default().unwrap_or(80);
    let mut stream = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .expect("connect CG_TEST_S3_ENDPOINT");
    let request = format!(
        "PUT /{bucket} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send PUT bucket");
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .expect("read PUT bucket");
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(599)
}

/// The S3 target of a test bucket.
pub fn s3_test_target(bucket: &str) -> S3Target {
    S3Target {
        bucket: bucket.to_owned(),
        region: "us-east-1".into(),
        access_key_id: Some(
            std::env::var("CG_TEST_S3_ACCESS_KEY").unwrap_or_else(|_| "test".into()),
        ),
        secret_access_key: Some(SecretString::from(
            std::env::var("CG_TEST_S3_SECRET_KEY").unwrap_or_else(|_| "test".into()),
        )),
        endpoint: std::env::var("CG_TEST_S3_ENDPOINT").ok(),
    }
}

/// A complete storage configuration for a service under test, and what keeps it alive.
#[derive(Debug)]
pub struct TestStorage {
    pub config: crate::StorageConfig,
    /// `embedded` or `centralized`.
    pub label: &'static str,
    pub db: Option<TestDb>,
    _dir: TempDir,
}

impl TestStorage {
    /// SQLite, in-process cache and a local folder, all under a fresh temporary folder.
    pub fn embedded() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = crate::StorageConfig::from_pairs([
            ("CG_STORAGE_MODE".to_owned(), "embedded".to_owned()),
            ("CG_DATA_DIR".to_owned(), dir.path().display().to_string()),
        ])
        .expect("embedded config");
        Self {
            config,
            label: "embedded",
            db: None,
            _dir: dir,
        }
    }

    /// PostgreSQL (a fresh migrated database), Redis (a fresh key prefix) and S3 (a fresh bucket),
    /// when all three are configured.
    pub async fn centralized() -> Option<Self> {
        let db = TestDb::postgres().await?;
        let redis = configured("CG_TEST_REDIS_URL")?;
        let bucket = create_test_bucket().await?;
        let s3 = s3_test_target(&bucket);
        let dir = tempfile::tempdir().expect("temp dir");
        let mut pairs = vec![
            ("CG_STORAGE_MODE", "centralized".to_owned()),
            ("CG_DATA_DIR", dir.path().display().to_string()),
            ("DATABASE_URL", db.url.clone()),
            ("DB_POOL_MAX_SIZE", "4".to_owned()),
            ("REDIS_URL", redis),
            ("CACHE_KEY_PREFIX", format!("{}:", unique("cgtest:"))),
            // ContextGuard's memory has a prefix of its own.
            (
                "CONTEXTGUARD_KEY_PREFIX",
                format!("{}:", unique("cgtest-context:")),
            ),
            ("S3_ENABLED", "true".to_owned()),
            ("S3_BUCKET_NAME", bucket),
            ("S3_REGION", s3.region.clone()),
            (
                "S3_ACCESS_KEY_ID",
                s3.access_key_id.clone().unwrap_or_default(),
            ),
            (
                "S3_SECRET_ACCESS_KEY",
                secrecy::ExposeSecret::expose_secret(
                    &s3.secret_access_key.clone().unwrap_or_default(),
                )
                .to_owned(),
            ),
        ];
        if let Some(endpoint) = s3.endpoint {
            pairs.push(("S3_ENDPOINT_URL", endpoint));
        }
        let config = crate::StorageConfig::from_pairs(pairs).expect("centralized config");
        Some(Self {
            config,
            label: "centralized",
            db: Some(db),
            _dir: dir,
        })
    }

    /// Embedded always, centralized when configured.
    pub async fn all() -> Vec<Self> {
        let mut all = vec![Self::embedded()];
        all.extend(Self::centralized().await);
        all
    }
}

/// A three-node Redis Cluster owned by one test: `redis-server` processes on free ports in a
/// temporary folder, stopped when the value is dropped.
#[derive(Debug)]
pub struct RedisCluster {
    pub nodes: Vec<String>,
    children: Vec<std::process::Child>,
    _dir: TempDir,
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn redis_installed() -> bool {
    let installed = std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        installed || !backends_required(),
        "redis-server is not installed but CG_TEST_REQUIRE_BACKENDS=1"
    );
    installed
}

/// Start one `redis-server` on a free port, keeping nothing on disk beyond `dir`.
fn spawn_redis(dir: &std::path::Path, cluster: bool) -> (std::process::Child, String) {
    spawn_redis_on(dir, cluster, free_port())
}

fn spawn_redis_on(
    dir: &std::path::Path,
    cluster: bool,
    port: u16,
) -> (std::process::Child, String) {
    std::fs::create_dir_all(dir).expect("node dir");
    let mut cmd = std::process::Command::new("redis-server");
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .stdout(std::process::Stdio::null());
    if cluster {
        cmd.args([
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
        ]);
    }
    (
        cmd.spawn().expect("start redis-server"),
        format!("127.0.0.1:{port}"),
    )
}

async fn wait_for_redis(node: &str, command: &str, expect: &str) {
    let (host, port) = node.split_once(':').expect("host:port");
    for _ in 0..100 {
        let out = std::process::Command::new("redis-cli")
            .args(["-h", host, "-p", port])
            .args(command.split(' '))
            .output();
        if out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(expect)) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{node} never answered {command} with {expect}");
}

/// One `redis-server` owned by a test, which the test may stop to see what happens.
#[derive(Debug)]
pub struct RedisServer {
    /// `redis://127.0.0.1:port/0`
    pub url: String,
    child: Option<std::process::Child>,
    _dir: TempDir,
}

impl RedisServer {
    /// Start it, or `None` when `redis-server` is not installed (a failure when backends are
    /// required).
    pub async fn start() -> Option<Self> {
        if !redis_installed() {
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let (child, node) = spawn_redis(dir.path(), false);
        wait_for_redis(&node, "PING", "PONG").await;
        Some(Self {
            url: format!("redis://{node}/0"),
            child: Some(child),
            _dir: dir,
        })
    }

    /// Start it again after [`RedisServer::stop`], on the same port, empty (nothing is
    /// persisted), and wait until it answers.
    pub async fn resume(&mut self) {
        self.stop();
        let port: u16 = self
            .url
            .rsplit(':')
            .next()
            .and_then(|p| p.split('/').next())
            .and_then(|p| p.parse().ok())
            .expect("port of the test Redis");
        let (child, node) = spawn_redis_on(self._dir.path(), false, port);
        wait_for_redis(&node, "PING", "PONG").await;
        self.child = Some(child);
    }

    /// Kill the server (as a crash would).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl RedisCluster {
    /// Start the cluster, or `None` when `redis-server` is not installed (a failure when backends
    /// are required).
    pub async fn start() -> Option<Self> {
        if !redis_installed() {
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let mut children = Vec::new();
        let mut nodes = Vec::new();
        for i in 0..3 {
            let (child, node) = spawn_redis(&dir.path().join(format!("node{i}")), true);
            children.push(child);
            nodes.push(node);
        }
        let cluster = Self {
            nodes,
            children,
            _dir: dir,
        };
        for node in &cluster.nodes {
            wait_for_redis(node, "PING", "PONG").await;
        }
        let created = std::process::Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&cluster.nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            created.status.success(),
            "{}",
            String::from_utf8_lossy(&created.stdout)
        );
        for node in &cluster.nodes {
            wait_for_redis(node, "CLUSTER INFO", "cluster_state:ok").await;
        }
        Some(cluster)
    }

    /// A cache on this cluster under a unique prefix.
    pub async fn cache(&self) -> Cache {
        let target = CacheTarget::Redis(RedisTarget {
            urls: self
                .nodes
                .iter()
                .map(|n| SecretString::from(format!("redis://{n}")))
                .collect(),
            cluster: true,
            connect_timeout: std::time::Duration::from_secs(2),
            response_timeout: std::time::Duration::from_secs(2),
            key_prefix: format!("{}:", unique("cgtest:")),
            display: "test cluster".into(),
            source: "test",
        });
        Cache::connect(&target)
            .await
            .expect("connect the test cluster")
    }
}

/// One PostgreSQL server owned by a test (its own `initdb` cluster on a free port in a temporary
/// folder), which the test may stop and start again to see what happens. Run as the `postgres`
/// user when the tests run as root (PostgreSQL refuses root). Migrated on start.
#[derive(Debug)]
pub struct PostgresServer {
    /// `postgres://postgres@127.0.0.1:port/postgres`
    pub url: String,
    bin: std::path::PathBuf,
    port: u16,
    running: bool,
    dir: TempDir,
}

fn postgres_bin_dir() -> Option<std::path::PathBuf> {
    let mut found: Vec<std::path::PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .collect();
    found.sort();
    let bin = found.pop().or_else(|| {
        let out = std::process::Command::new("pg_config")
            .arg("--bindir")
            .output()
            .ok()?;
        let bin = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        bin.join("initdb").is_file().then_some(bin)
    });
    assert!(
        bin.is_some() || !backends_required(),
        "PostgreSQL's initdb/pg_ctl are not installed but CG_TEST_REQUIRE_BACKENDS=1"
    );
    bin
}

fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl PostgresServer {
    /// Create, start and migrate it, or `None` when PostgreSQL is not installed (a failure when
    /// backends are required).
    pub async fn start() -> Option<Self> {
        let bin = postgres_bin_dir()?;
        let dir = tempfile::tempdir().expect("temp dir");
        if running_as_root() {
            let chowned = std::process::Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(chowned.success(), "chown the PostgreSQL test folder");
        }
        let port = free_port();
        let mut server = Self {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            bin,
            port,
            running: false,
            dir,
        };
        let data = server.dir.path().join("data");
        let mut initdb = server.command("initdb");
        initdb.arg("-D").arg(&data).args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        ]);
        let out = initdb.output().expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        server.resume().await;
        let db = Db::connect(&pg_target(&server.url)).await.expect("connect");
        db.run_migrations().await.expect("migrate");
        Some(server)
    }

    fn command(&self, tool: &str) -> std::process::Command {
        let path = self.bin.join(tool);
        if running_as_root() {
            let mut cmd = std::process::Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(path);
            cmd
        } else {
            std::process::Command::new(path)
        }
    }

    /// Start it again after [`PostgresServer::stop`] (same data, same port) and wait until it
    /// accepts connections.
    pub async fn resume(&mut self) {
        let data = self.dir.path().join("data");
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-w", "-o", &options, "start"])
            .output()
            .expect("run pg_ctl start");
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.running = true;
        for _ in 0..100 {
            if AsyncPgConnection::establish(&self.url).await.is_ok() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the PostgreSQL test server did not accept connections");
    }

    /// Stop it at once, as a crash would (`pg_ctl stop -m immediate`).
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        self.running = false;
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop();
    }
}
