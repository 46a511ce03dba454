//! Calling the guards: one pooled client and one circuit breaker per guard, deadlines, a single
//! retry where it is safe, payload mapping, verdicts, and cached health.

pub mod breaker;
pub mod mapping;
pub mod verdict;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cg_guard_api::{CallContext, GuardClient, GuardError, GuardKind};
use secrecy::SecretString;
use serde::Serialize;
use serde_json::Value;

use self::breaker::{BreakerState, CircuitBreaker};
use crate::config::GatewaySettings;

const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause before the one retry of a call that never reached the guard.
const RETRY_JITTER_MS: std::ops::Range<u64> = 20..120;

/// Why a guard call did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum CallFailure {
    /// The breaker is open: the guard failed repeatedly and is not being called.
    #[error("{0} is unavailable (circuit open after repeated failures)")]
    CircuitOpen(GuardKind),
    #[error(transparent)]
    Guard(#[from] GuardError),
}

/// A guard's health as the discovery routes report it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GuardHealth {
    pub service_name: String,
    /// healthy, degraded, unhealthy or unknown.
    pub status: String,
    /// RFC 3339.
    pub last_check: String,
    /// Seconds the health call took.
    pub response_time: Option<f64>,
    pub error_message: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: Value,
}

/// One guard: its client and breaker.
#[derive(Debug)]
pub struct Guard {
    pub kind: GuardKind,
    pub client: GuardClient,
    pub breaker: CircuitBreaker,
}

/// Every guard, and what is known of their health.
#[derive(Debug)]
pub struct GuardRegistry {
    guards: Vec<Guard>,
    health: Mutex<HashMap<GuardKind, (Instant, GuardHealth)>>,
    health_ttl: Duration,
}

impl GuardRegistry {
    /// Clients, breakers and health cache as the settings say.
    pub fn new(settings: &GatewaySettings, internal_token: &SecretString) -> anyhow::Result<Self> {
        let (threshold, cooldown) = (
            settings.circuit_breaker_failures(),
            settings.circuit_breaker_cooldown(),
        );
        let guards = GuardKind::ALL
            .into_iter()
            .map(|kind| {
                let client = GuardClient::new(kind, &settings.guard_url(kind), internal_token)
                    .map_err(|e| anyhow::anyhow!(e))?;
                Ok(Guard {
                    kind,
                    client,
                    breaker: CircuitBreaker::new(threshold, cooldown),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            guards,
            health: Mutex::new(HashMap::new()),
            health_ttl: settings.guard_health_cache(),
        })
    }

    /// Every guard, in port order.
    pub fn all(&self) -> &[Guard] {
        &self.guards
    }

    fn guard(&self, kind: GuardKind) -> &Guard {
        // `new` builds one entry per kind, in `GuardKind::ALL` order.
        let index = GuardKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        &self.guards[index]
    }

    /// Send `body` to `kind`'s analysis endpoint within `ctx.deadline`. A call that never reached
    /// the guard (connection refused or reset before sending) is retried once after a short random
    /// pause when time allows; a call that reached it is never repeated, because guards record
    /// what they analyse.
    pub async fn call(
        &self,
        kind: GuardKind,
        body: &Value,
        ctx: &CallContext,
    ) -> Result<Value, CallFailure> {
        let guard = self.guard(kind);
        let permit = guard
            .breaker
            .try_acquire()
            .ok_or(CallFailure::CircuitOpen(kind))?;
        let started = Instant::now();
        let path = mapping::path(kind);
        let mut result = guard.client.post_json::<_, Value>(path, body, ctx).await;
        if let Err(GuardError::Unreachable { .. }) = &result {
            let pause = Duration::from_millis(rand::random_range(RETRY_JITTER_MS));
            if started.elapsed() + pause < ctx.deadline / 2 {
                tokio::time::sleep(pause).await;
                let mut retry_ctx = ctx.clone();
                retry_ctx.deadline = ctx.deadline.saturating_sub(started.elapsed());
                result = guard.client.post_json(path, body, &retry_ctx).await;
            }
        }
        let outcome = match &result {
            Ok(_) => "ok",
            Err(GuardError::Status { status, .. }) if *status < 500 => "rejected",
            Err(GuardError::Timeout { .. }) => "timeout",
            Err(GuardError::Unreachable { .. }) => "unreachable",
            Err(_) => "error",
        };
        match outcome {
            // A 4xx answer means the guard is up and refused the input.
            "ok" | "rejected" => guard.breaker.success(permit),
            _ => guard.breaker.failure(permit),
        }
        metrics::counter!("cg_guard_calls_total", "guard" => kind.name(), "outcome" => outcome)
            .increment(1);
        metrics::histogram!("cg_guard_call_duration_seconds", "guard" => kind.name())
            .record(started.elapsed().as_secs_f64());
        metrics::gauge!("cg_guard_circuit_open", "guard" => kind.name()).set(
            if guard.breaker.state() == BreakerState::Closed {
                0.0
            } else {
                1.0
            },
        );
        Ok(result?)
    }

    /// Each guard's breaker state.
    pub fn breaker_states(&self) -> serde_json::Map<String, Value> {
        self.guards
            .iter()
            .map(|g| {
                (
                    g.kind.name().to_owned(),
                    serde_json::json!({"state": g.breaker.state(), "consecutive_failures": g.breaker.failures()}),
                )
            })
            .collect()
    }

    /// A guard's health, from cache when checked within the TTL.
    pub async fn health(&self, kind: GuardKind, request_id: &str) -> GuardHealth {
        if let Ok(cache) = self.health.lock()
            && let Some((at, h)) = cache.get(&kind)
            && at.elapsed() < self.health_ttl
        {
            return h.clone();
        }
        let health = self.check(kind, request_id).await;
        if let Ok(mut cache) = self.health.lock() {
            cache.insert(kind, (Instant::now(), health.clone()));
        }
        health
    }

    async fn check(&self, kind: GuardKind, request_id: &str) -> GuardHealth {
        let guard = self.guard(kind);
        let ctx = CallContext {
            request_id: request_id.to_owned(),
            organization_id: None,
            trace_headers: Vec::new(),
            deadline: HEALTH_TIMEOUT,
        };
        let started = Instant::now();
        let answer = guard.client.get_json::<Value>("/health", &ctx).await;
        let elapsed = started.elapsed().as_secs_f64();
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let (status, error, metadata) = match answer {
            Ok(body) => {
                let status = match body["status"].as_str() {
                    Some("healthy") => "healthy",
                    Some("degraded") => "degraded",
                    Some("unhealthy") => "unhealthy",
                    _ => "unknown",
                };
                (
                    status,
                    None,
                    serde_json::json!({"version": body["version"], "dependencies": body["dependencies"]}),
                )
            }
            Err(GuardError::Status {
                status: 503, body, ..
            }) => (
                "unhealthy",
                Some("answered 503".to_owned()),
                serde_json::json!({"dependencies": body["dependencies"]}),
            ),
            Err(e) => {
                // Callers see what kind of failure; where the guard lives and what the transport
                // said stay in the log.
                tracing::warn!(guard = kind.name(), error = %e, "guard health check failed");
                let what = match e {
                    GuardError::Timeout { .. } => "did not answer in time",
                    GuardError::Unreachable { .. } => "unreachable",
                    GuardError::Status { .. } => "answered an error",
                    GuardError::Decode { .. } => "answered an unreadable body",
                };
                (
                    "unhealthy",
                    Some(what.to_owned()),
                    Value::Object(serde_json::Map::new()),
                )
            }
        };
        GuardHealth {
            service_name: kind.name().to_owned(),
            status: status.to_owned(),
            last_check: now,
            response_time: Some((elapsed * 1e6).round() / 1e6),
            error_message: error,
            metadata,
        }
    }
}
