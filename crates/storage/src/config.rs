//! Storage configuration, read once from the environment with `envy`.
//!
//! Each backend is chosen on its own: centralized when its variables name a real server, embedded
//! otherwise. `CG_STORAGE_MODE=embedded|centralized` forces every backend a service needs one way.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `CG_STORAGE_MODE` | (auto) | `embedded` or `centralized`; forces the mode of every backend |
//! | `CG_DATA_DIR` | `./data` | embedded mode: folder of the SQLite file and of local blobs |
//! | `CG_SQLITE_PATH` | `$CG_DATA_DIR/codeguardians.db` | embedded mode: the SQLite file |
//! | `DATABASE_URL` | — | `postgres://…` (centralized) or `sqlite://path` (embedded); wins over `POSTGRES_*`. SQLAlchemy's driver suffix (`postgresql+psycopg2://`, `+asyncpg`, `sqlite+pysqlite://`) is accepted and dropped, with one log line |
//! | `POSTGRES_HOST` | — | PostgreSQL host; with `POSTGRES_PORT` (5432), `POSTGRES_DB` (codeguardians), `POSTGRES_USER` (postgres), `POSTGRES_PASSWORD` |
//! | `POSTGRES_SSLMODE` | — | `disable`, `prefer`, `require`; also accepted as `sslmode=` in `DATABASE_URL` |
//! | `POSTGRES_SSLROOTCERT` | — | PEM file of extra CA certificates (also `sslrootcert=` in the URL); web PKI roots otherwise |
//! | `DB_POOL_MAX_SIZE` | 10 | connections per replica |
//! | `DB_POOL_MIN_IDLE` | 0 | idle connections kept open |
//! | `DB_CONNECT_TIMEOUT_SECS` | 5 | time allowed to open one connection |
//! | `DB_ACQUIRE_TIMEOUT_SECS` | 5 | time allowed to wait for a pooled connection |
//! | `REDIS_URL` | — | `redis://` or `rediss://` (TLS) URL; wins over `REDIS_HOST` |
//! | `REDIS_HOST` | — | Redis host; with `REDIS_PORT` (6379), `REDIS_DB` (0), `REDIS_USERNAME`, `REDIS_PASSWORD`, `REDIS_TLS` (false) |
//! | `REDIS_CLUSTER_NODES` | — | comma-separated `host:port` or URLs: use Redis Cluster |
//! | `REDIS_CONNECT_TIMEOUT_MS` | 2000 | time allowed to connect to Redis |
//! | `REDIS_RESPONSE_TIMEOUT_MS` | 1000 | time allowed for one Redis command |
//! | `CACHE_KEY_PREFIX` | `cg:` | prefix of every cache key and pub/sub channel |
//! | `CACHE_MEMORY_MAX_BYTES` | 67108864 | embedded cache: memory bound (approximate) |
//! | `S3_ENABLED` | false | store blobs in S3 instead of a local folder |
//! | `S3_BUCKET_NAME` | — | required when `S3_ENABLED` |
//! | `S3_REGION` | `us-east-1` | bucket region |
//! | `S3_ACCESS_KEY_ID`, `S3_SECRET_ACCESS_KEY` | — | credentials; the AWS default chain otherwise |
//! | `S3_ENDPOINT_URL` | — | S3-compatible endpoint (path-style addressing) |
//! | `SESSION_TTL` | 604800 | refresh-session lifetime, seconds |
//! | `SESSION_CLEANUP_INTERVAL` | 3600 | seconds between sweeps of expired database sessions |
//! | `SESSION_STORAGE_TYPE` | `redis` | `redis` or `database` |
//! | `CONTEXTGUARD_USE_REDIS` | true | ContextGuard memory in Redis (else in-process) |
//! | `CONTEXTGUARD_REDIS_URL` | — | ContextGuard's own Redis; the shared one otherwise |
//! | `CONTEXTGUARD_KEY_PREFIX` | `contextguard:` | ContextGuard's key prefix |
//! | `CONTEXTGUARD_DEFAULT_TTL` | 3600 | ContextGuard memory TTL, seconds |
//! | `HEALTHGUARD_DATABASE_URL` | — | HealthGuard's own database; the shared one otherwise |
//!
//! Secrets (`DATABASE_URL`, passwords, keys) are `SecretString`s and never logged.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

use crate::error::{Error, Result};

const DEFAULT_DATA_DIR: &str = "./data";
const DEFAULT_SQLITE_FILE: &str = "codeguardians.db";
const DEFAULT_POSTGRES_PORT: u16 = 5432;
const DEFAULT_POSTGRES_DB: &str = "codeguardians";
const DEFAULT_POSTGRES_USER: &str = "postgres";
const DEFAULT_DB_POOL_MAX_SIZE: u32 = 10;
const DEFAULT_DB_CONNECT_TIMEOUT_SECS: u64 = 5;
const DEFAULT_DB_ACQUIRE_TIMEOUT_SECS: u64 = 5;
const DEFAULT_REDIS_PORT: u16 = 6379;
const DEFAULT_REDIS_CONNECT_TIMEOUT_MS: u64 = 2_000;
const DEFAULT_REDIS_RESPONSE_TIMEOUT_MS: u64 = 1_000;
const DEFAULT_CACHE_KEY_PREFIX: &str = "cg:";
const DEFAULT_CACHE_MEMORY_MAX_BYTES: u64 = 64 * 1024 * 1024;
const DEFAULT_S3_REGION: &str = "us-east-1";
const DEFAULT_SESSION_TTL_SECS: u64 = 7 * 24 * 3600;
const DEFAULT_SESSION_CLEANUP_INTERVAL_SECS: u64 = 3600;
const DEFAULT_CONTEXTGUARD_KEY_PREFIX: &str = "contextguard:";
const DEFAULT_CONTEXTGUARD_TTL_SECS: u64 = 3600;

/// Every storage variable, as read from the environment.
#[derive(Debug, Clone, Deserialize)]
pub struct StorageConfig {
    #[serde(default)]
    pub cg_storage_mode: Option<ModeOverride>,
    #[serde(default)]
    pub cg_data_dir: Option<PathBuf>,
    #[serde(default)]
    pub cg_sqlite_path: Option<PathBuf>,

    #[serde(default)]
    pub database_url: Option<SecretString>,
    #[serde(default)]
    pub postgres_host: Option<String>,
    #[serde(default)]
    pub postgres_port: Option<u16>,
    #[serde(default)]
    pub postgres_db: Option<String>,
    #[serde(default)]
    pub postgres_user: Option<String>,
    #[serde(default)]
    pub postgres_password: Option<SecretString>,
    #[serde(default)]
    pub postgres_sslmode: Option<String>,
    #[serde(default)]
    pub postgres_sslrootcert: Option<PathBuf>,
    #[serde(default)]
    pub db_pool_max_size: Option<u32>,
    #[serde(default)]
    pub db_pool_min_idle: Option<u32>,
    #[serde(default)]
    pub db_connect_timeout_secs: Option<u64>,
    #[serde(default)]
    pub db_acquire_timeout_secs: Option<u64>,

    #[serde(default)]
    pub redis_url: Option<SecretString>,
    #[serde(default)]
    pub redis_host: Option<String>,
    #[serde(default)]
    pub redis_port: Option<u16>,
    #[serde(default)]
    pub redis_db: Option<i64>,
    #[serde(default)]
    pub redis_username: Option<String>,
    #[serde(default)]
    pub redis_password: Option<SecretString>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub redis_tls: Option<bool>,
    #[serde(default)]
    pub redis_cluster_nodes: Option<String>,
    #[serde(default)]
    pub redis_connect_timeout_ms: Option<u64>,
    #[serde(default)]
    pub redis_response_timeout_ms: Option<u64>,
    #[serde(default)]
    pub cache_key_prefix: Option<String>,
    #[serde(default)]
    pub cache_memory_max_bytes: Option<u64>,

    #[serde(default, deserialize_with = "lenient_bool")]
    pub s3_enabled: Option<bool>,
    #[serde(default)]
    pub s3_bucket_name: Option<String>,
    #[serde(default)]
    pub s3_region: Option<String>,
    #[serde(default)]
    pub s3_access_key_id: Option<String>,
    #[serde(default)]
    pub s3_secret_access_key: Option<SecretString>,
    #[serde(default)]
    pub s3_endpoint_url: Option<String>,

    #[serde(default)]
    pub session_ttl: Option<u64>,
    #[serde(default)]
    pub session_cleanup_interval: Option<u64>,
    #[serde(default)]
    pub session_storage_type: Option<SessionStorageType>,

    #[serde(default, deserialize_with = "lenient_bool")]
    pub contextguard_use_redis: Option<bool>,
    #[serde(default)]
    pub contextguard_redis_url: Option<SecretString>,
    #[serde(default)]
    pub contextguard_key_prefix: Option<String>,
    #[serde(default)]
    pub contextguard_default_ttl: Option<u64>,

    #[serde(default)]
    pub healthguard_database_url: Option<SecretString>,
}

/// `CG_STORAGE_MODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModeOverride {
    Embedded,
    Centralized,
}

/// `SESSION_STORAGE_TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStorageType {
    Redis,
    Database,
}

/// Which backends a service uses; only those are resolved, connected and probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    pub database: bool,
    pub cache: bool,
    pub blobs: bool,
}

impl Needs {
    pub const ALL: Self = Self {
        database: true,
        cache: true,
        blobs: true,
    };
}

/// Embedded or centralized, per backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Embedded,
    Centralized,
}

/// Connection-pool settings shared by both database backends.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub max_size: u32,
    pub min_idle: Option<u32>,
    pub connect_timeout: Duration,
    pub acquire_timeout: Duration,
}

/// Where the relational database lives.
#[derive(Debug, Clone)]
pub enum DatabaseTarget {
    Postgres {
        /// Connection string without our own parameters (`sslrootcert`), ready for tokio-postgres.
        url: SecretString,
        /// Extra CA certificates for TLS.
        root_cert: Option<PathBuf>,
        /// Whether to offer TLS at all (`sslmode` other than `disable`).
        tls: bool,
        /// `host:port/db`, safe to log.
        display: String,
        /// The variable the target came from, for error messages.
        source: &'static str,
        pool: PoolSettings,
    },
    Sqlite {
        path: PathBuf,
        source: &'static str,
        pool: PoolSettings,
    },
}

impl DatabaseTarget {
    pub fn mode(&self) -> Mode {
        match self {
            Self::Postgres { .. } => Mode::Centralized,
            Self::Sqlite { .. } => Mode::Embedded,
        }
    }

    /// `host:port/db` or the SQLite path; never a password.
    pub fn display(&self) -> String {
        match self {
            Self::Postgres { display, .. } => display.clone(),
            Self::Sqlite { path, .. } => path.display().to_string(),
        }
    }

    /// The variable this target came from.
    pub fn source(&self) -> &'static str {
        match self {
            Self::Postgres { source, .. } | Self::Sqlite { source, .. } => source,
        }
    }
}

/// Where the cache lives.
#[derive(Debug, Clone)]
pub enum CacheTarget {
    Redis(RedisTarget),
    Memory { max_bytes: u64, key_prefix: String },
}

/// A Redis server or cluster.
#[derive(Debug, Clone)]
pub struct RedisTarget {
    /// One URL for a single server, the seed nodes for a cluster.
    pub urls: Vec<SecretString>,
    pub cluster: bool,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub key_prefix: String,
    /// `host:port/db`, safe to log.
    pub display: String,
    pub source: &'static str,
}

/// Where blobs live.
#[derive(Debug, Clone)]
pub enum BlobTarget {
    S3(S3Target),
    Local { root: PathBuf },
}

/// An S3 bucket (AWS or S3-compatible).
#[derive(Debug, Clone)]
pub struct S3Target {
    pub bucket: String,
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<SecretString>,
    pub endpoint: Option<String>,
}

/// The resolved targets of the backends a service needs.
#[derive(Debug, Clone)]
pub struct ResolvedStorage {
    pub database: Option<DatabaseTarget>,
    pub cache: Option<CacheTarget>,
    pub blobs: Option<BlobTarget>,
}

impl StorageConfig {
    /// Read every storage variable from the environment.
    pub fn from_env() -> Result<Self> {
        envy::from_env::<Self>().map_err(|e| Error::Config(describe_envy_error(&e)))
    }

    /// Read from explicit pairs instead of the process environment (tests, CLI).
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Self>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let pairs = pairs.into_iter().map(|(k, v)| (k.into(), v.into()));
        envy::from_iter::<_, Self>(pairs).map_err(|e| Error::Config(describe_envy_error(&e)))
    }

    /// HealthGuard keeps its results in `HEALTHGUARD_DATABASE_URL` when that is set.
    pub fn for_healthguard(mut self) -> Self {
        if let Some(url) = self.healthguard_database_url.take() {
            self.database_url = Some(url);
        }
        self
    }

    /// ContextGuard's memory: its own Redis, prefix, or the in-process store.
    pub fn for_contextguard(mut self) -> Self {
        if self.contextguard_use_redis == Some(false) {
            self.cg_storage_mode = Some(ModeOverride::Embedded);
        }
        if let Some(url) = self.contextguard_redis_url.take() {
            self.redis_url = Some(url);
            self.redis_cluster_nodes = None;
        }
        self.cache_key_prefix = Some(
            self.contextguard_key_prefix
                .clone()
                .unwrap_or_else(|| DEFAULT_CONTEXTGUARD_KEY_PREFIX.to_owned()),
        );
        self
    }

    /// ContextGuard's default memory TTL.
    pub fn contextguard_default_ttl(&self) -> Duration {
        Duration::from_secs(
            self.contextguard_default_ttl
                .unwrap_or(DEFAULT_CONTEXTGUARD_TTL_SECS),
        )
    }

    /// Refresh-session lifetime.
    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_ttl.unwrap_or(DEFAULT_SESSION_TTL_SECS))
    }

    /// Interval between sweeps of expired database sessions.
    pub fn session_cleanup_interval(&self) -> Duration {
        Duration::from_secs(
            self.session_cleanup_interval
                .unwrap_or(DEFAULT_SESSION_CLEANUP_INTERVAL_SECS),
        )
    }

    /// Where refresh sessions are kept first.
    pub fn session_storage_type(&self) -> SessionStorageType {
        self.session_storage_type
            .unwrap_or(SessionStorageType::Redis)
    }

    /// The embedded data folder.
    pub fn data_dir(&self) -> PathBuf {
        self.cg_data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
    }

    /// Decide where each needed backend lives. Errors name the variable at fault.
    pub fn resolve(&self, needs: Needs) -> Result<ResolvedStorage> {
        Ok(ResolvedStorage {
            database: needs
                .database
                .then(|| self.resolve_database())
                .transpose()?,
            cache: needs.cache.then(|| self.resolve_cache()).transpose()?,
            blobs: needs.blobs.then(|| self.resolve_blobs()).transpose()?,
        })
    }

    fn pool_settings(&self) -> PoolSettings {
        PoolSettings {
            max_size: self
                .db_pool_max_size
                .unwrap_or(DEFAULT_DB_POOL_MAX_SIZE)
                .max(1),
            min_idle: self.db_pool_min_idle,
            connect_timeout: Duration::from_secs(
                self.db_connect_timeout_secs
                    .unwrap_or(DEFAULT_DB_CONNECT_TIMEOUT_SECS),
            ),
            acquire_timeout: Duration::from_secs(
                self.db_acquire_timeout_secs
                    .unwrap_or(DEFAULT_DB_ACQUIRE_TIMEOUT_SECS),
            ),
        }
    }

    fn sqlite_target(&self, path: Option<PathBuf>, source: &'static str) -> DatabaseTarget {
        let path = path
            .or_else(|| self.cg_sqlite_path.clone())
            .unwrap_or_else(|| self.data_dir().join(DEFAULT_SQLITE_FILE));
        DatabaseTarget::Sqlite {
            path,
            source,
            pool: self.pool_settings(),
        }
    }

    fn resolve_database(&self) -> Result<DatabaseTarget> {
        let forced = self.cg_storage_mode;
        if forced == Some(ModeOverride::Embedded) {
            return Ok(self.sqlite_target(None, "CG_SQLITE_PATH"));
        }
        let target = if let Some(url) = &self.database_url {
            let raw = without_driver(url.expose_secret().trim());
            let raw = raw.as_str();
            if let Some(path) = sqlite_path(raw) {
                self.sqlite_target(Some(path), "DATABASE_URL")
            } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
                postgres_target(
                    raw,
                    "DATABASE_URL",
                    self.postgres_sslmode.as_deref(),
                    self.postgres_sslrootcert.clone(),
                    self.pool_settings(),
                )?
            } else {
                return Err(Error::Config(
                    "DATABASE_URL must start with postgres://, postgresql:// or sqlite://".into(),
                ));
            }
        } else if let Some(host) = &self.postgres_host {
            let mut url = url::Url::parse("postgres://localhost")
                .map_err(|e| Error::Config(format!("POSTGRES_HOST: {e}")))?;
            url.set_host(Some(host)).map_err(|e| {
                Error::Config(format!("POSTGRES_HOST {host:?} is not a host name: {e}"))
            })?;
            let _ = url.set_port(Some(self.postgres_port.unwrap_or(DEFAULT_POSTGRES_PORT)));
            let _ = url.set_username(
                self.postgres_user
                    .as_deref()
                    .unwrap_or(DEFAULT_POSTGRES_USER),
            );
            if let Some(password) = &self.postgres_password {
                let _ = url.set_password(Some(password.expose_secret()));
            }
            url.set_path(self.postgres_db.as_deref().unwrap_or(DEFAULT_POSTGRES_DB));
            postgres_target(
                url.as_str(),
                "POSTGRES_HOST",
                self.postgres_sslmode.as_deref(),
                self.postgres_sslrootcert.clone(),
                self.pool_settings(),
            )?
        } else {
            self.sqlite_target(None, "CG_SQLITE_PATH")
        };
        if forced == Some(ModeOverride::Centralized) && target.mode() != Mode::Centralized {
            return Err(Error::Config(
                "CG_STORAGE_MODE=centralized needs DATABASE_URL=postgres://… or POSTGRES_HOST"
                    .into(),
            ));
        }
        Ok(target)
    }

    fn key_prefix(&self) -> String {
        self.cache_key_prefix
            .clone()
            .unwrap_or_else(|| DEFAULT_CACHE_KEY_PREFIX.to_owned())
    }

    fn resolve_cache(&self) -> Result<CacheTarget> {
        let forced = self.cg_storage_mode;
        let memory = CacheTarget::Memory {
            max_bytes: self
                .cache_memory_max_bytes
                .unwrap_or(DEFAULT_CACHE_MEMORY_MAX_BYTES),
            key_prefix: self.key_prefix(),
        };
        if forced == Some(ModeOverride::Embedded) {
            return Ok(memory);
        }
        let connect_timeout = Duration::from_millis(
            self.redis_connect_timeout_ms
                .unwrap_or(DEFAULT_REDIS_CONNECT_TIMEOUT_MS),
        );
        let response_timeout = Duration::from_millis(
            self.redis_response_timeout_ms
                .unwrap_or(DEFAULT_REDIS_RESPONSE_TIMEOUT_MS),
        );
        let target = |urls: Vec<SecretString>, cluster, display, source| {
            CacheTarget::Redis(RedisTarget {
                urls,
                cluster,
                connect_timeout,
                response_timeout,
                key_prefix: self.key_prefix(),
                display,
                source,
            })
        };
        if let Some(nodes) = self
            .redis_cluster_nodes
            .as_deref()
            .filter(|n| !n.trim().is_empty())
        {
            let mut urls = Vec::new();
            for node in nodes.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                let url = if node.contains("://") {
                    node.to_owned()
                } else {
                    let scheme = if self.redis_tls.unwrap_or(false) {
                        "rediss"
                    } else {
                        "redis"
                    };
                    format!("{scheme}://{node}")
                };
                urls.push(self.redis_url_with_auth(&url, "REDIS_CLUSTER_NODES", false)?);
            }
            return Ok(target(urls, true, nodes.to_owned(), "REDIS_CLUSTER_NODES"));
        }
        if let Some(url) = &self.redis_url {
            let raw = url.expose_secret().trim().to_owned();
            let parsed = self.redis_url_with_auth(&raw, "REDIS_URL", false)?;
            return Ok(target(
                vec![parsed],
                false,
                redis_display(&raw),
                "REDIS_URL",
            ));
        }
        if let Some(host) = &self.redis_host {
            let scheme = if self.redis_tls.unwrap_or(false) {
                "rediss"
            } else {
                "redis"
            };
            let raw = format!(
                "{scheme}://{host}:{}/{}",
                self.redis_port.unwrap_or(DEFAULT_REDIS_PORT),
                self.redis_db.unwrap_or(0)
            );
            let parsed = self.redis_url_with_auth(&raw, "REDIS_HOST", true)?;
            return Ok(target(
                vec![parsed],
                false,
                redis_display(&raw),
                "REDIS_HOST",
            ));
        }
        if forced == Some(ModeOverride::Centralized) {
            return Err(Error::Config(
                "CG_STORAGE_MODE=centralized needs REDIS_URL, REDIS_HOST or REDIS_CLUSTER_NODES"
                    .into(),
            ));
        }
        Ok(memory)
    }

    /// Validate a Redis URL and add `REDIS_USERNAME`/`REDIS_PASSWORD` when it carries none.
    fn redis_url_with_auth(
        &self,
        raw: &str,
        source: &str,
        apply_auth: bool,
    ) -> Result<SecretString> {
        let mut url = url::Url::parse(raw)
            .map_err(|e| Error::Config(format!("{source} is not a valid Redis URL: {e}")))?;
        if !matches!(url.scheme(), "redis" | "rediss") {
            return Err(Error::Config(format!(
                "{source} must use redis:// or rediss://"
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Error::Config(format!("{source} names no host")));
        }
        if apply_auth || url.password().is_none() {
            if let Some(user) = &self.redis_username {
                let _ = url.set_username(user);
            }
            // An empty REDIS_PASSWORD (as the original `.env` leaves it) means none.
            if let Some(password) = self
                .redis_password
                .as_ref()
                .filter(|p| !p.expose_secret().is_empty())
            {
                let _ = url.set_password(Some(password.expose_secret()));
            }
        }
        Ok(SecretString::from(url.to_string()))
    }

    fn resolve_blobs(&self) -> Result<BlobTarget> {
        let local = BlobTarget::Local {
            root: self.data_dir().join("blobs"),
        };
        if self.cg_storage_mode == Some(ModeOverride::Embedded) {
            return Ok(local);
        }
        if self.s3_enabled != Some(true) {
            if self.cg_storage_mode == Some(ModeOverride::Centralized) {
                return Err(Error::Config(
                    "CG_STORAGE_MODE=centralized needs S3_ENABLED=true and S3_BUCKET_NAME".into(),
                ));
            }
            return Ok(local);
        }
        let bucket = self
            .s3_bucket_name
            .clone()
            .filter(|b| !b.trim().is_empty())
            .ok_or_else(|| {
                Error::Config("S3_BUCKET_NAME is required when S3_ENABLED=true".into())
            })?;
        if let Some(endpoint) = &self.s3_endpoint_url {
            let parsed = url::Url::parse(endpoint)
                .map_err(|e| Error::Config(format!("S3_ENDPOINT_URL is not a valid URL: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(Error::Config(
                    "S3_ENDPOINT_URL must use http:// or https://".into(),
                ));
            }
        }
        if self.s3_access_key_id.is_some() != self.s3_secret_access_key.is_some() {
            return Err(Error::Config(
                "S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set together".into(),
            ));
        }
        Ok(BlobTarget::S3(S3Target {
            bucket,
            region: self
                .s3_region
                .clone()
                .unwrap_or_else(|| DEFAULT_S3_REGION.to_owned()),
            access_key_id: self.s3_access_key_id.clone(),
            secret_access_key: self.s3_secret_access_key.clone(),
            endpoint: self.s3_endpoint_url.clone(),
        }))
    }
}

/// Drop a SQLAlchemy driver suffix from the scheme (`postgresql+psycopg2://` →
/// `postgresql://`), as the original deployment's `DATABASE_URL` carried one; the native driver
/// connects either way. Logged once per resolution (never the URL itself).
fn without_driver(raw: &str) -> String {
    if let Some((scheme, rest)) = raw.split_once("://")
        && let Some((base, driver)) = scheme.split_once('+')
        && matches!(base, "postgres" | "postgresql" | "sqlite")
    {
        tracing::info!(
            scheme = base,
            driver,
            "DATABASE_URL names a Python driver; connecting with the native one"
        );
        return format!("{base}://{rest}");
    }
    raw.to_owned()
}

fn sqlite_path(raw: &str) -> Option<PathBuf> {
    raw.strip_prefix("sqlite://")
        .or_else(|| raw.strip_prefix("sqlite:"))
        .map(PathBuf::from)
}

/// Parse a PostgreSQL URL, pull out the TLS parameters tokio-postgres does not know, and keep a
/// loggable `host:port/db`.
fn postgres_target(
    raw: &str,
    source: &'static str,
    sslmode_env: Option<&str>,
    root_cert_env: Option<PathBuf>,
    pool: PoolSettings,
) -> Result<DatabaseTarget> {
    let mut url = url::Url::parse(raw)
        .map_err(|e| Error::Config(format!("{source} is not a valid PostgreSQL URL: {e}")))?;
    let host = url.host_str().unwrap_or("").to_owned();
    if host.is_empty() {
        return Err(Error::Config(format!("{source} names no host")));
    }
    let mut sslmode = sslmode_env.map(str::to_owned);
    let mut root_cert = root_cert_env;
    let mut kept = Vec::new();
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "sslmode" => sslmode = Some(v.into_owned()),
            "sslrootcert" => root_cert = Some(PathBuf::from(v.as_ref())),
            _ => kept.push((k.into_owned(), v.into_owned())),
        }
    }
    let sslmode = sslmode.unwrap_or_else(|| "disable".to_owned());
    if !matches!(sslmode.as_str(), "disable" | "prefer" | "require") {
        return Err(Error::Config(format!(
            "sslmode {sslmode:?} ({source} or POSTGRES_SSLMODE) must be disable, prefer or require \
             (require always verifies the server certificate)"
        )));
    }
    kept.push(("sslmode".to_owned(), sslmode.clone()));
    url.query_pairs_mut().clear().extend_pairs(kept);
    let display = format!(
        "{host}:{}{}",
        url.port().unwrap_or(DEFAULT_POSTGRES_PORT),
        url.path()
    );
    Ok(DatabaseTarget::Postgres {
        url: SecretString::from(url.to_string()),
        root_cert,
        tls: sslmode != "disable",
        display,
        source,
        pool,
    })
}

fn redis_display(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(u) => format!(
            "{}:{}{}",
            u.host_str().unwrap_or("?"),
            u.port().unwrap_or(DEFAULT_REDIS_PORT),
            u.path()
        ),
        Err(_) => "(invalid)".to_owned(),
    }
}

/// envy's messages already name the variable for parse errors; missing ones need a hint.
fn describe_envy_error(err: &envy::Error) -> String {
    match err {
        envy::Error::MissingValue(field) => format!("{} is required", field.to_uppercase()),
        envy::Error::Custom(msg) => msg.clone(),
    }
}

/// Accept `true/false`, `1/0`, `yes/no`, `on/off` for boolean variables.
fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<bool>, D::Error> {
    let raw: Option<String> = Option::deserialize(d)?;
    match raw
        .as_deref()
        .map(str::trim)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("") => Ok(None),
        Some("1" | "true" | "yes" | "on") => Ok(Some(true)),
        Some("0" | "false" | "no" | "off") => Ok(Some(false)),
        Some(other) => Err(serde::de::Error::custom(format!(
            "{other:?} is not a boolean (use true or false)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<StorageConfig> {
        StorageConfig::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn nothing_set_means_everything_embedded() {
        let r = cfg(&[]).unwrap().resolve(Needs::ALL).unwrap();
        assert!(matches!(r.database, Some(DatabaseTarget::Sqlite { .. })));
        assert!(matches!(r.cache, Some(CacheTarget::Memory { .. })));
        assert!(matches!(r.blobs, Some(BlobTarget::Local { .. })));
    }

    #[test]
    fn malformed_port_names_the_variable() {
        let err = cfg(&[("REDIS_PORT", "abc")]).unwrap_err().to_string();
        assert!(err.contains("REDIS_PORT"), "{err}");
    }

    #[test]
    fn postgres_from_parts_keeps_password_out_of_display() {
        let r = cfg(&[
            ("POSTGRES_HOST", "db.internal"),
            ("POSTGRES_PASSWORD", "s3cr3t"),
            ("POSTGRES_DB", "cg"),
        ])
        .unwrap()
        .resolve(Needs::ALL)
        .unwrap();
        let db = r.database.unwrap();
        assert_eq!(db.display(), "db.internal:5432/cg");
        assert_eq!(db.source(), "POSTGRES_HOST");
        let DatabaseTarget::Postgres { url, tls, .. } = db else {
            panic!("not postgres")
        };
        assert!(url.expose_secret().contains("s3cr3t"));
        assert!(!tls);
    }

    #[test]
    fn sslmode_is_read_from_url_and_root_cert_stripped() {
        let r = cfg(&[(
            "DATABASE_URL",
            "postgres://u@h/db?sslmode=require&sslrootcert=/etc/ca.pem&application_name=x",
        )])
        .unwrap()
        .resolve(Needs::ALL)
        .unwrap();
        let Some(DatabaseTarget::Postgres {
            url,
            tls,
            root_cert,
            ..
        }) = r.database
        else {
            panic!("not postgres")
        };
        assert!(tls);
        assert_eq!(root_cert, Some(PathBuf::from("/etc/ca.pem")));
        assert!(!url.expose_secret().contains("sslrootcert"));
        assert!(url.expose_secret().contains("application_name=x"));
    }

    #[test]
    fn bad_sslmode_and_scheme_are_refused() {
        let e = cfg(&[("DATABASE_URL", "postgres://h/db?sslmode=allow")])
            .unwrap()
            .resolve(Needs::ALL)
            .unwrap_err();
        assert!(e.to_string().contains("sslmode"));
        let e = cfg(&[("DATABASE_URL", "mysql://h/db")])
            .unwrap()
            .resolve(Needs::ALL)
            .unwrap_err();
        assert!(e.to_string().contains("DATABASE_URL"));
    }

    #[test]
    fn sqlalchemy_driver_suffixes_are_dropped() {
        for scheme in [
            "postgresql+psycopg2",
            "postgresql+asyncpg",
            "postgres+psycopg",
        ] {
            let r = cfg(&[(
                "DATABASE_URL",
                &format!("{scheme}://user:pass@db.internal:5433/seed?sslmode=require"),
            )])
            .unwrap()
            .resolve(Needs::ALL)
            .unwrap();
            let Some(DatabaseTarget::Postgres {
                url, display, tls, ..
            }) = r.database
            else {
                panic!("{scheme}: not postgres")
            };
            assert_eq!(display, "db.internal:5433/seed", "{scheme}");
            assert!(tls, "{scheme}");
            let url = url.expose_secret();
            assert!(!url.contains('+'), "{scheme}: {url}");
            assert!(url.contains("user:pass@db.internal:5433/seed"), "{url}");
        }
        let r = cfg(&[("HEALTHGUARD_DATABASE_URL", "postgresql+psycopg2://h/health")])
            .unwrap()
            .for_healthguard()
            .resolve(Needs::ALL)
            .unwrap();
        assert_eq!(r.database.unwrap().display(), "h:5432/health");
        let r = cfg(&[("DATABASE_URL", "sqlite+pysqlite:///tmp/seed.db")])
            .unwrap()
            .resolve(Needs::ALL)
            .unwrap();
        assert_eq!(r.database.unwrap().display(), "/tmp/seed.db");
        let e = cfg(&[("DATABASE_URL", "mysql+pymysql://h/db")])
            .unwrap()
            .resolve(Needs::ALL)
            .unwrap_err();
        assert!(e.to_string().contains("DATABASE_URL"), "{e}");
    }

    #[test]
    fn forced_modes() {
        let c = cfg(&[("CG_STORAGE_MODE", "centralized")]).unwrap();
        let e = c.resolve(Needs::ALL).unwrap_err().to_string();
        assert!(e.contains("DATABASE_URL"), "{e}");
        let c = cfg(&[("CG_STORAGE_MODE", "embedded"), ("REDIS_HOST", "r")]).unwrap();
        assert!(matches!(
            c.resolve(Needs::ALL).unwrap().cache,
            Some(CacheTarget::Memory { .. })
        ));
        let c = cfg(&[("CG_STORAGE_MODE", "sideways")]);
        assert!(c.is_err());
    }

    #[test]
    fn redis_host_with_password_and_tls() {
        let r = cfg(&[
            ("REDIS_HOST", "cache"),
            ("REDIS_PASSWORD", "p@ss/word"),
            ("REDIS_DB", "3"),
            ("REDIS_TLS", "1"),
        ])
        .unwrap()
        .resolve(Needs::ALL)
        .unwrap();
        let Some(CacheTarget::Redis(t)) = r.cache else {
            panic!("not redis")
        };
        let url = t.urls[0].expose_secret().to_owned();
        assert!(url.starts_with("rediss://"), "{url}");
        assert!(url.ends_with("@cache:6379/3"), "{url}");
        assert_eq!(t.display, "cache:6379/3");
    }

    #[test]
    fn s3_needs_a_bucket() {
        let e = cfg(&[("S3_ENABLED", "true")])
            .unwrap()
            .resolve(Needs::ALL)
            .unwrap_err();
        assert!(e.to_string().contains("S3_BUCKET_NAME"));
        let e = cfg(&[("S3_ENABLED", "maybe")]).unwrap_err();
        assert!(e.to_string().contains("boolean"), "{e}");
    }

    #[test]
    fn service_overrides() {
        let c = cfg(&[
            ("DATABASE_URL", "postgres://h/main"),
            ("HEALTHGUARD_DATABASE_URL", "postgres://h/health"),
            ("CONTEXTGUARD_USE_REDIS", "false"),
            ("REDIS_HOST", "r"),
        ])
        .unwrap();
        let hg = c.clone().for_healthguard().resolve(Needs::ALL).unwrap();
        assert_eq!(hg.database.unwrap().display(), "h:5432/health");
        let cg = c.for_contextguard().resolve(Needs::ALL).unwrap();
        let Some(CacheTarget::Memory { key_prefix, .. }) = cg.cache else {
            panic!("redis")
        };
        assert_eq!(key_prefix, "contextguard:");
    }
}
