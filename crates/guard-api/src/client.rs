//! The typed HTTP client the gateway calls a guard with.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{GuardKind, INTERNAL_TOKEN_HEADER, ORGANIZATION_HEADER, REQUEST_ID_HEADER};

/// Idle keep-alive connections kept per guard host.
const POOL_IDLE_PER_HOST: usize = 64;
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a guard call failed, in terms the gateway maps to 502/503/504.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// No answer within the deadline (→ 504).
    #[error("{guard} did not answer within {timeout_ms} ms")]
    Timeout { guard: GuardKind, timeout_ms: u128 },
    /// Could not connect (→ 503).
    #[error("{guard} is unreachable: {message}")]
    Unreachable { guard: GuardKind, message: String },
    /// The guard answered with an error status (→ 502 for 5xx; 4xx are passed on).
    #[error("{guard} answered {status}")]
    Status {
        guard: GuardKind,
        status: u16,
        body: serde_json::Value,
    },
    /// The guard answered something that is not the expected JSON (→ 502).
    #[error("{guard} answered an unreadable body: {message}")]
    Decode { guard: GuardKind, message: String },
}

/// Per-call context carried to the guard.
#[derive(Debug, Clone)]
pub struct CallContext {
    pub request_id: String,
    /// The caller's organisation (`X-Organization-ID`), for the guard's records.
    pub organization_id: Option<String>,
    /// W3C `traceparent` (and `tracestate`) of the caller's span, when tracing is on.
    pub trace_headers: Vec<(String, String)>,
    pub deadline: Duration,
}

/// A pooled client for one guard (cheap to clone).
#[derive(Debug, Clone)]
pub struct GuardClient {
    kind: GuardKind,
    base: url::Url,
    http: reqwest::Client,
    /// Paths already joined to `base` (a guard has a handful): joining parses the URL again,
    /// host name normalisation included, which showed in the gateway's profile.
    joined: std::sync::Arc<std::sync::RwLock<std::collections::HashMap<String, url::Url>>>,
}

impl GuardClient {
    /// A client for `kind` at `base_url`, sending `internal_token` on every call.
    pub fn new(
        kind: GuardKind,
        base_url: &str,
        internal_token: &SecretString,
    ) -> Result<Self, String> {
        let base = url::Url::parse(base_url)
            .map_err(|e| format!("{} ({base_url:?}) is not a URL: {e}", kind.url_variable()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(format!("{} must be an http(s) URL", kind.url_variable()));
        }
        let mut token = HeaderValue::from_str(internal_token.expose_secret())
            .map_err(|_| "CG_INTERNAL_TOKEN holds characters not allowed in a header".to_owned())?;
        token.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(HeaderName::from_static(INTERNAL_TOKEN_HEADER), token);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .pool_max_idle_per_host(POOL_IDLE_PER_HOST)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("building the HTTP client: {e}"))?;
        Ok(Self {
            kind,
            base,
            http,
            joined: std::sync::Arc::default(),
        })
    }

    /// Which guard.
    pub fn kind(&self) -> GuardKind {
        self.kind
    }

    /// The base URL.
    pub fn base_url(&self) -> &url::Url {
        &self.base
    }

    fn url(&self, path: &str) -> Result<url::Url, GuardError> {
        if let Ok(joined) = self.joined.read()
            && let Some(url) = joined.get(path)
        {
            return Ok(url.clone());
        }
        let url = self.base.join(path).map_err(|e| GuardError::Decode {
            guard: self.kind,
            message: format!("bad path {path:?}: {e}"),
        })?;
        if let Ok(mut joined) = self.joined.write()
            && joined.len() < 64
        {
            joined.insert(path.to_owned(), url.clone());
        }
        Ok(url)
    }

    fn with_context(
        &self,
        req: reqwest::RequestBuilder,
        ctx: &CallContext,
    ) -> reqwest::RequestBuilder {
        let mut req = req
            .timeout(ctx.deadline)
            .header(REQUEST_ID_HEADER, &ctx.request_id);
        if let Some(org) = &ctx.organization_id {
            req = req.header(ORGANIZATION_HEADER, org);
        }
        for (name, value) in &ctx.trace_headers {
            req = req.header(name, value);
        }
        req
    }

    /// `GET path`, decoded as JSON.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        ctx: &CallContext,
    ) -> Result<T, GuardError> {
        let req = self.with_context(self.http.get(self.url(path)?), ctx);
        self.send(req, ctx.deadline).await
    }

    /// `POST path` with a JSON body, decoded as JSON.
    pub async fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        ctx: &CallContext,
    ) -> Result<T, GuardError> {
        let req = self.with_context(self.http.post(self.url(path)?).json(body), ctx);
        self.send(req, ctx.deadline).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        deadline: Duration,
    ) -> Result<T, GuardError> {
        let guard = self.kind;
        let response = req
            .send()
            .await
            .map_err(|e| classify(guard, &e, deadline))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| classify(guard, &e, deadline))?;
        if !status.is_success() {
            let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
            return Err(GuardError::Status {
                guard,
                status: status.as_u16(),
                body,
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| GuardError::Decode {
            guard,
            message: e.to_string(),
        })
    }
}

fn classify(guard: GuardKind, err: &reqwest::Error, deadline: Duration) -> GuardError {
    if err.is_timeout() {
        GuardError::Timeout {
            guard,
            timeout_ms: deadline.as_millis(),
        }
    } else {
        GuardError::Unreachable {
            guard,
            message: err.to_string(),
        }
    }
}
