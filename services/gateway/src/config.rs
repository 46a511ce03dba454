//! Configuration of the gateway, read once in `main`: the server settings every service shares
//! ([`ServerConfig`], `CG_*`), the storage settings ([`StorageConfig`]) and its own:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `JWT_SECRET` | — (required, ≥ 32 chars) | HMAC key of access tokens; the same on every replica |
//! | `ACCESS_TOKEN_TTL` | 900 | access-token lifetime, seconds (refresh sessions: `SESSION_TTL`) |
//! | `SESSION_MAX_LIFETIME` | 2592000 (30 days) | longest a login's session family lives, seconds, however often it is refreshed |
//! | `LOGIN_ATTEMPTS_PER_ACCOUNT` | 10 | login attempts per account per 15 minutes |
//! | `LOGIN_ATTEMPTS_PER_IP` | 50 | login attempts per client address per 15 minutes |
//! | `REGISTRATIONS_PER_IP_PER_HOUR` | 10 | registrations per client address per hour |
//! | `ORGANIZATIONS_PER_USER_PER_HOUR` | 5 | organisations a user (and an address) may create per hour |
//! | `MAX_ORGANIZATIONS_PER_USER` | 20 | organisations a user may belong to when creating one more |
//! | `INVITATION_TTL_HOURS` | 72 | how long an invitation can be accepted |
//! | `DEFAULT_TIER` | `free` | subscription tier of every new organisation (an active tier's name; start-up refuses an unknown one); `codeguardians up` sets `enterprise`, which includes every guard |
//! | `CG_TRUST_PROXY_HEADERS` | false | the gateway runs behind a proxy that appends to `X-Forwarded-For`: take the client address from that header (the right-most hop not in `CG_TRUSTED_PROXIES`) |
//! | `CG_TRUSTED_PROXIES` | — | comma-separated addresses or CIDR ranges of further proxies in front of that one (their hops are skipped) |
//! | `TOKENGUARD_URL` … `HEALTHGUARD_URL` | `http://127.0.0.1:8001` … `:8005` | where each guard listens |
//! | `CIRCUIT_BREAKER_FAILURES` | 5 | consecutive failures that open a guard's circuit |
//! | `CIRCUIT_BREAKER_COOLDOWN_SECS` | 60 | how long an open circuit waits before one probe call |
//! | `GUARD_HEALTH_CACHE_SECS` | 30 | how long a guard's health answer is reused |
//! | `GATEWAY_BUDGET_RESERVE_USD_MICROS` | 10000 | reserved per guard call against the monthly budget, settled to TokenGuard's cost afterwards |
//! | `ORG_PROFILE_CACHE_SECS` | 30 | how long a replica keeps an organisation's tier, limits and settings (0: read every request) |
//! | `EXPERIMENT_CACHE_SECS` | 30 | how long a replica keeps an organisation's running A/B experiments (0: read every request naming a user); a change made through any replica is announced and applied at once |
//! | `GATEWAY_RATE_LIMIT_FAIL_MODE` | `local` | while Redis is away: `local` (each replica limits alone), `open` (no limit) or `closed` (503) |
//! | `GATEWAY_RATE_BURST_SHARE` | 0.5 | share of the minute limit allowed in any 10 seconds |
//! | `MAX_FILE_SIZE` | 104857600 (100 MiB) | largest upload, bytes; larger ones get 413 as soon as the limit is passed |
//! | `ALLOWED_FILE_TYPES` | txt,md,csv,tsv,json,jsonl,xml,html,yaml,log,pdf,png,jpg,gif,webp,zip,gz,docx,xlsx,pptx | extensions and/or MIME types accepted, checked against the content's magic bytes (`*`: anything) |
//! | `UPLOAD_EXPIRY_MINUTES` | 60 | validity of presigned upload and download URLs, and the most a request may ask for |
//! | `FILE_SCAN_MAX_BYTES` | 1048576 (1 MiB) | largest file `/api/v1/guards/process` reads for `payload.file_id` |
//! | `FILE_COMPRESSION` | true | store text files zstd-compressed (transparent on download) |
//! | `FILE_FALLBACK_DIR` | `$CG_DATA_DIR/uploads-pending` | where uploads wait while S3 is unreachable; with several replicas, a volume they all mount |
//! | `FILE_SYNC_INTERVAL_SECS` | 15 | how often waiting uploads are pushed to S3 |

use std::time::Duration;

use cg_guard_api::GuardKind;
use cg_service_kit::ServerConfig;
use cg_service_kit::config::{ConfigError, from_env};
use cg_storage::StorageConfig;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

const DEFAULT_ACCESS_TOKEN_TTL_SECS: u64 = 900;
const DEFAULT_SESSION_MAX_LIFETIME_SECS: u64 = 30 * 24 * 3600;
const DEFAULT_LOGIN_ATTEMPTS_PER_ACCOUNT: u64 = 10;
const DEFAULT_LOGIN_ATTEMPTS_PER_IP: u64 = 50;
const DEFAULT_REGISTRATIONS_PER_IP_PER_HOUR: u64 = 10;
const DEFAULT_ORGANIZATIONS_PER_USER_PER_HOUR: u64 = 5;
const DEFAULT_MAX_ORGANIZATIONS_PER_USER: u64 = 20;
const DEFAULT_INVITATION_TTL_HOURS: u64 = 72;
const MIN_JWT_SECRET_LEN: usize = 32;
const DEFAULT_DEFAULT_TIER: &str = "free";
const DEFAULT_MAX_FILE_SIZE: u64 = 100 * 1024 * 1024;
const DEFAULT_UPLOAD_EXPIRY_MINUTES: u64 = 60;
/// S3 refuses presigned URLs valid for longer than seven days.
const MAX_UPLOAD_EXPIRY_MINUTES: u64 = 7 * 24 * 60;
const DEFAULT_FILE_SCAN_MAX_BYTES: u64 = 1024 * 1024;
const DEFAULT_FILE_SYNC_INTERVAL_SECS: f64 = 15.0;

/// Everything the gateway reads from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub gateway: GatewaySettings,
}

/// The gateway's own variables, as read.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GatewaySettings {
    #[serde(default)]
    pub jwt_secret: Option<SecretString>,
    #[serde(default)]
    pub access_token_ttl: Option<u64>,
    #[serde(default)]
    pub session_max_lifetime: Option<u64>,
    #[serde(default)]
    pub login_attempts_per_account: Option<u64>,
    #[serde(default)]
    pub login_attempts_per_ip: Option<u64>,
    #[serde(default)]
    pub registrations_per_ip_per_hour: Option<u64>,
    #[serde(default)]
    pub organizations_per_user_per_hour: Option<u64>,
    #[serde(default)]
    pub max_organizations_per_user: Option<u64>,
    #[serde(default)]
    pub invitation_ttl_hours: Option<u64>,
    #[serde(default)]
    pub default_tier: Option<String>,
    #[serde(default)]
    pub cg_trust_proxy_headers: Option<bool>,
    #[serde(default)]
    pub cg_trusted_proxies: Option<String>,
    #[serde(default)]
    pub circuit_breaker_failures: Option<u32>,
    #[serde(default)]
    pub circuit_breaker_cooldown_secs: Option<f64>,
    #[serde(default)]
    pub guard_health_cache_secs: Option<f64>,
    #[serde(default)]
    pub tokenguard_url: Option<String>,
    #[serde(default)]
    pub trustguard_url: Option<String>,
    #[serde(default)]
    pub contextguard_url: Option<String>,
    #[serde(default)]
    pub biasguard_url: Option<String>,
    #[serde(default)]
    pub healthguard_url: Option<String>,
    #[serde(default)]
    pub gateway_rate_limit_fail_mode: Option<crate::traffic::FailMode>,
    #[serde(default)]
    pub gateway_rate_burst_share: Option<f64>,
    #[serde(default)]
    pub org_profile_cache_secs: Option<f64>,
    #[serde(default)]
    pub gateway_budget_reserve_usd_micros: Option<i64>,
    #[serde(default)]
    pub experiment_cache_secs: Option<f64>,
    #[serde(default)]
    pub max_file_size: Option<u64>,
    #[serde(default)]
    pub allowed_file_types: Option<String>,
    #[serde(default)]
    pub upload_expiry_minutes: Option<u64>,
    #[serde(default)]
    pub file_scan_max_bytes: Option<u64>,
    #[serde(default)]
    pub file_compression: Option<bool>,
    #[serde(default)]
    pub file_fallback_dir: Option<std::path::PathBuf>,
    #[serde(default)]
    pub file_sync_interval_secs: Option<f64>,
}

impl Config {
    /// Read and validate; the error names the variable at fault.
    pub fn from_env() -> anyhow::Result<Self> {
        let config = Self {
            server: ServerConfig::from_env()?,
            storage: StorageConfig::from_env()?,
            gateway: from_env()?,
        };
        config.gateway.validate()?;
        Ok(config)
    }
}

impl GatewaySettings {
    /// Check what can be checked before start-up.
    pub fn validate(&self) -> anyhow::Result<()> {
        match &self.jwt_secret {
            None => {
                return Err(ConfigError::err(format!(
                    "JWT_SECRET is required: the key that signs access tokens, the same on every \
                     gateway replica (at least {MIN_JWT_SECRET_LEN} characters)"
                )));
            }
            Some(s) if s.expose_secret().len() < MIN_JWT_SECRET_LEN => {
                return Err(ConfigError::err(format!(
                    "JWT_SECRET must be at least {MIN_JWT_SECRET_LEN} characters"
                )));
            }
            Some(_) => {}
        }
        if self.access_token_ttl == Some(0) {
            return Err(ConfigError::err("ACCESS_TOKEN_TTL must be positive"));
        }
        if self.max_file_size == Some(0) {
            return Err(ConfigError::err("MAX_FILE_SIZE must be positive"));
        }
        if self
            .upload_expiry_minutes
            .is_some_and(|m| m == 0 || m > MAX_UPLOAD_EXPIRY_MINUTES)
        {
            return Err(ConfigError::err(format!(
                "UPLOAD_EXPIRY_MINUTES must be 1 to {MAX_UPLOAD_EXPIRY_MINUTES}"
            )));
        }
        self.file_limits()?;
        self.parse_trusted_proxies()?;
        if self.session_max_lifetime == Some(0) {
            return Err(ConfigError::err("SESSION_MAX_LIFETIME must be positive"));
        }
        for kind in GuardKind::ALL {
            let url = self.guard_url(kind);
            let parsed = url::Url::parse(&url)
                .map_err(|e| ConfigError::err(format!("{} ({url:?}): {e}", kind.url_variable())))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(ConfigError::err(format!(
                    "{} must be an http(s) URL",
                    kind.url_variable()
                )));
            }
        }
        Ok(())
    }

    /// The access-token signing key.
    pub fn jwt_secret(&self) -> &[u8] {
        self.jwt_secret
            .as_ref()
            .map_or(&[][..], |s| s.expose_secret().as_bytes())
    }

    pub fn access_token_ttl(&self) -> Duration {
        Duration::from_secs(
            self.access_token_ttl
                .unwrap_or(DEFAULT_ACCESS_TOKEN_TTL_SECS),
        )
    }

    pub fn session_max_lifetime(&self) -> Duration {
        Duration::from_secs(
            self.session_max_lifetime
                .unwrap_or(DEFAULT_SESSION_MAX_LIFETIME_SECS),
        )
    }

    pub fn registrations_per_ip_per_hour(&self) -> u64 {
        self.registrations_per_ip_per_hour
            .unwrap_or(DEFAULT_REGISTRATIONS_PER_IP_PER_HOUR)
    }

    pub fn organizations_per_user_per_hour(&self) -> u64 {
        self.organizations_per_user_per_hour
            .unwrap_or(DEFAULT_ORGANIZATIONS_PER_USER_PER_HOUR)
    }

    pub fn max_organizations_per_user(&self) -> u64 {
        self.max_organizations_per_user
            .unwrap_or(DEFAULT_MAX_ORGANIZATIONS_PER_USER)
    }

    pub fn login_attempts_per_account(&self) -> u64 {
        self.login_attempts_per_account
            .unwrap_or(DEFAULT_LOGIN_ATTEMPTS_PER_ACCOUNT)
    }

    pub fn login_attempts_per_ip(&self) -> u64 {
        self.login_attempts_per_ip
            .unwrap_or(DEFAULT_LOGIN_ATTEMPTS_PER_IP)
    }

    pub fn invitation_ttl(&self) -> Duration {
        Duration::from_secs(
            3600 * self
                .invitation_ttl_hours
                .unwrap_or(DEFAULT_INVITATION_TTL_HOURS),
        )
    }

    /// The tier new organisations start on (`DEFAULT_TIER`).
    pub fn default_tier(&self) -> &str {
        self.default_tier
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .unwrap_or(DEFAULT_DEFAULT_TIER)
    }

    fn parse_trusted_proxies(&self) -> anyhow::Result<Vec<ipnet::IpNet>> {
        self.cg_trusted_proxies
            .iter()
            .flat_map(|list| list.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<ipnet::IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        ConfigError::err(format!(
                            "CG_TRUSTED_PROXIES: {s:?} is not an address or CIDR range"
                        ))
                    })
            })
            .collect()
    }

    /// `CG_TRUSTED_PROXIES`, checked at start-up.
    pub fn trusted_proxies(&self) -> Vec<ipnet::IpNet> {
        self.parse_trusted_proxies().unwrap_or_default()
    }

    pub fn trust_proxy_headers(&self) -> bool {
        self.cg_trust_proxy_headers.unwrap_or(false)
    }

    pub fn circuit_breaker_failures(&self) -> u32 {
        self.circuit_breaker_failures.unwrap_or(5).max(1)
    }

    pub fn circuit_breaker_cooldown(&self) -> Duration {
        Duration::from_secs_f64(
            self.circuit_breaker_cooldown_secs
                .filter(|s| s.is_finite() && *s >= 0.0)
                .unwrap_or(60.0),
        )
    }

    /// How long an organisation's running experiments are cached per replica.
    pub fn experiment_cache(&self) -> Duration {
        Duration::from_secs_f64(
            self.experiment_cache_secs
                .filter(|s| s.is_finite() && *s >= 0.0)
                .unwrap_or(30.0)
                .min(3600.0),
        )
    }

    /// How long an organisation's tier, limits and settings are cached per replica.
    pub fn org_profile_cache(&self) -> Duration {
        Duration::from_secs_f64(
            self.org_profile_cache_secs
                .filter(|s| s.is_finite() && *s >= 0.0)
                .unwrap_or(30.0),
        )
    }

    pub fn guard_health_cache(&self) -> Duration {
        Duration::from_secs_f64(
            self.guard_health_cache_secs
                .filter(|s| s.is_finite() && *s >= 0.0)
                .unwrap_or(30.0),
        )
    }

    /// File limits (`MAX_FILE_SIZE`, `ALLOWED_FILE_TYPES`, `UPLOAD_EXPIRY_MINUTES`,
    /// `FILE_SCAN_MAX_BYTES`, `FILE_COMPRESSION`).
    pub fn file_limits(&self) -> anyhow::Result<crate::files::FileLimits> {
        let allowed = crate::files::kind::AllowedTypes::parse(
            self.allowed_file_types
                .as_deref()
                .unwrap_or(crate::files::kind::DEFAULT_ALLOWED_TYPES),
        )
        .map_err(ConfigError::err)?;
        Ok(crate::files::FileLimits {
            max_size: self.max_file_size.unwrap_or(DEFAULT_MAX_FILE_SIZE).max(1),
            allowed,
            url_expiry: Duration::from_secs(
                60 * self
                    .upload_expiry_minutes
                    .unwrap_or(DEFAULT_UPLOAD_EXPIRY_MINUTES)
                    .clamp(1, MAX_UPLOAD_EXPIRY_MINUTES),
            ),
            scan_max_bytes: self
                .file_scan_max_bytes
                .unwrap_or(DEFAULT_FILE_SCAN_MAX_BYTES),
            compress: self.file_compression.unwrap_or(true),
        })
    }

    /// Where uploads wait while S3 is unreachable.
    pub fn file_fallback_dir(&self, storage: &StorageConfig) -> std::path::PathBuf {
        self.file_fallback_dir
            .clone()
            .unwrap_or_else(|| storage.data_dir().join("uploads-pending"))
    }

    /// How often waiting uploads are pushed to S3.
    pub fn file_sync_interval(&self) -> Duration {
        Duration::from_secs_f64(
            self.file_sync_interval_secs
                .filter(|s| s.is_finite() && *s > 0.0)
                .unwrap_or(DEFAULT_FILE_SYNC_INTERVAL_SECS),
        )
    }

    /// Base URL of a guard.
    pub fn guard_url(&self, kind: GuardKind) -> String {
        let set = match kind {
            GuardKind::TokenGuard => &self.tokenguard_url,
            GuardKind::TrustGuard => &self.trustguard_url,
            GuardKind::ContextGuard => &self.contextguard_url,
            GuardKind::BiasGuard => &self.biasguard_url,
            GuardKind::HealthGuard => &self.healthguard_url,
        };
        set.clone()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| kind.default_url())
    }
}
