//! Server settings every service reads, and the helper each service uses to read its own.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `CG_HOST` | `127.0.0.1` | address to listen on (`0.0.0.0` in containers) |
//! | `CG_PORT` | per service (8000–8005) | port to listen on; `0` picks a free one |
//! | `CG_ADMIN_PORT` | `CG_PORT` + 1000 (9000–9005); a free one when `CG_PORT=0` | internal listener serving `/metrics` and the detailed `/health` (backend targets, probe errors); keep it unreachable from outside (NetworkPolicy, no published port) |
//! | `CG_INTERNAL_TOKEN` | — (required, ≥ 16 chars) | shared secret on every gateway→guard call (`X-Internal-Token`) |
//! | `CG_MAX_BODY_BYTES` | 10485760 | largest request body accepted (413 beyond) |
//! | `CG_WORKERS` | number of CPUs | HTTP worker threads |
//! | `CG_SHUTDOWN_TIMEOUT_SECS` | 30 | grace period for in-flight requests on SIGTERM |
//! | `CG_LOG_FORMAT` | `json` | `json` or `text` |
//! | `RUST_LOG` | `info` | log filter |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | — | export traces over OTLP/HTTP when set |

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;

const DEFAULT_HOST: &str = "127.0.0.1";
const DEFAULT_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
const DEFAULT_SHUTDOWN_TIMEOUT_SECS: u64 = 30;
/// The admin listener's port is the public one plus this, unless `CG_ADMIN_PORT` says otherwise.
pub const ADMIN_PORT_OFFSET: u16 = 1000;
const MIN_INTERNAL_TOKEN_LEN: usize = 16;

/// A missing or malformed setting; the message names the variable. Start-up exits with
/// [`EXIT_CONFIG`](crate::server::EXIT_CONFIG) on it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    /// Wrap a message into an `anyhow::Error` that start-up classifies as a configuration error.
    pub fn err(message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(Self(message.into()))
    }
}

/// Read a configuration struct from the environment; the error names the variable at fault.
pub fn from_env<T: DeserializeOwned>() -> anyhow::Result<T> {
    envy::from_env::<T>().map_err(|e| describe(e, ""))
}

/// Read a configuration struct from variables sharing `prefix` (e.g. `TOKENGUARD_`).
pub fn from_env_prefixed<T: DeserializeOwned>(prefix: &str) -> anyhow::Result<T> {
    envy::prefixed(prefix)
        .from_env::<T>()
        .map_err(|e| describe(e, prefix))
}

fn describe(err: envy::Error, prefix: &str) -> anyhow::Error {
    match err {
        envy::Error::MissingValue(field) => {
            ConfigError::err(format!("{prefix}{} is required", field.to_uppercase()))
        }
        envy::Error::Custom(msg) => ConfigError::err(msg),
    }
}

/// How a service listens and protects itself.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ServerConfig {
    #[serde(default)]
    pub cg_host: Option<String>,
    #[serde(default)]
    pub cg_port: Option<u16>,
    #[serde(default)]
    pub cg_admin_port: Option<u16>,
    #[serde(default)]
    pub cg_internal_token: Option<SecretString>,
    #[serde(default)]
    pub cg_max_body_bytes: Option<usize>,
    #[serde(default)]
    pub cg_workers: Option<usize>,
    #[serde(default)]
    pub cg_shutdown_timeout_secs: Option<u64>,
    #[serde(default)]
    pub cg_log_format: Option<LogFormat>,
}

/// `CG_LOG_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Json,
    Text,
}

impl ServerConfig {
    /// Read from the environment and validate.
    pub fn from_env() -> anyhow::Result<Self> {
        let config: Self = from_env()?;
        config.validate()?;
        Ok(config)
    }

    /// Check what can be checked before binding.
    pub fn validate(&self) -> anyhow::Result<()> {
        let fail = |msg: String| Err(ConfigError::err(msg));
        match &self.cg_internal_token {
            None => {
                return fail(format!(
                    "CG_INTERNAL_TOKEN is required: the shared secret the gateway sends to every guard \
                 (at least {MIN_INTERNAL_TOKEN_LEN} characters)"
                ));
            }
            Some(t) if t.expose_secret().len() < MIN_INTERNAL_TOKEN_LEN => {
                return fail(format!(
                    "CG_INTERNAL_TOKEN must be at least {MIN_INTERNAL_TOKEN_LEN} characters"
                ));
            }
            Some(_) => {}
        }
        if self.cg_max_body_bytes == Some(0) {
            return fail("CG_MAX_BODY_BYTES must be positive".into());
        }
        if self.cg_workers == Some(0) {
            return fail("CG_WORKERS must be positive".into());
        }
        Ok(())
    }

    /// Listen address.
    pub fn host(&self) -> &str {
        self.cg_host.as_deref().unwrap_or(DEFAULT_HOST)
    }

    /// Listen port, or the service's default.
    pub fn port(&self, default: u16) -> u16 {
        self.cg_port.unwrap_or(default)
    }

    /// Port of the admin listener (`/metrics`, detailed `/health`): `CG_ADMIN_PORT`, else the
    /// public port plus [`ADMIN_PORT_OFFSET`], or a free one (`0`) when the public port is `0`.
    pub fn admin_port(&self, default: u16) -> Result<u16, ConfigError> {
        let public = self.port(default);
        let admin = match self.cg_admin_port {
            Some(port) => port,
            None if public == 0 => 0,
            None => public.checked_add(ADMIN_PORT_OFFSET).ok_or_else(|| {
                ConfigError(format!(
                    "CG_PORT {public} leaves no room for the admin port (CG_PORT + {ADMIN_PORT_OFFSET}); set CG_ADMIN_PORT"
                ))
            })?,
        };
        if admin != 0 && admin == public {
            return Err(ConfigError(format!(
                "CG_ADMIN_PORT must differ from CG_PORT (both {public})"
            )));
        }
        Ok(admin)
    }

    /// Largest request body.
    pub fn max_body_bytes(&self) -> usize {
        self.cg_max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES)
    }

    /// Grace period on shutdown.
    pub fn shutdown_timeout_secs(&self) -> u64 {
        self.cg_shutdown_timeout_secs
            .unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT_SECS)
    }

    /// The internal token (validated to exist).
    pub fn internal_token(&self) -> SecretString {
        self.cg_internal_token
            .clone()
            .unwrap_or_else(|| SecretString::from(String::new()))
    }

    /// Log format.
    pub fn log_format(&self) -> LogFormat {
        self.cg_log_format.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(port: Option<u16>, admin: Option<u16>) -> ServerConfig {
        ServerConfig {
            cg_port: port,
            cg_admin_port: admin,
            ..ServerConfig::default()
        }
    }

    #[test]
    fn the_admin_port_follows_the_public_one() {
        assert_eq!(config(None, None).admin_port(8003).ok(), Some(9003));
        assert_eq!(config(Some(7000), None).admin_port(8003).ok(), Some(8000));
        assert_eq!(config(Some(0), None).admin_port(8003).ok(), Some(0));
        assert_eq!(config(Some(0), Some(0)).admin_port(8003).ok(), Some(0));
        assert_eq!(config(None, Some(9100)).admin_port(8000).ok(), Some(9100));
    }

    #[test]
    fn an_admin_port_that_cannot_work_is_refused() {
        let err = config(Some(65000), None).admin_port(8000).unwrap_err();
        assert!(err.0.contains("CG_ADMIN_PORT"), "{err}");
        let err = config(Some(8000), Some(8000)).admin_port(8000).unwrap_err();
        assert!(err.0.contains("differ"), "{err}");
    }
}
