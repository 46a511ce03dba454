//! The typed HTTP client the gateway calls a guard with.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
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

thread_local! {
    /// Each current-thread runtime's own pools, by client id (see [`GuardClient::http`]).
    static THREAD_CLIENTS: RefCell<HashMap<u64, reqwest::Client>> = RefCell::new(HashMap::new());
}

static NEXT_CLIENT_ID: AtomicU64 = AtomicU64::new(0);

/// A pooled client for one guard (cheap to clone; clones share pools).
#[derive(Debug, Clone)]
pub struct GuardClient {
    kind: GuardKind,
    base: url::Url,
    /// The pool used off current-thread runtimes (and if a thread's own cannot be built).
    http: reqwest::Client,
    /// What every call sends (the internal token), for building a thread's own pool.
    headers: HeaderMap,
    id: u64,
    /// Paths already joined to `base` (a guard has a handful): joining parses the URL again,
    /// host name normalisation included, which showed in the gateway's profile.
    joined: std::sync::Arc<std::sync::RwLock<HashMap<String, url::Url>>>,
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
        let http = pool(&headers).map_err(|e| format!("building the HTTP client: {e}"))?;
        Ok(Self {
            kind,
            base,
            http,
            headers,
            id: NEXT_CLIENT_ID.fetch_add(1, Ordering::Relaxed),
            joined: std::sync::Arc::default(),
        })
    }

    /// The pool to call through. A keep-alive connection is driven by a task on the runtime that
    /// opened it, so a pool shared by the gateway's worker threads (each a current-thread
    /// runtime) has every call cross threads twice, to that task and back; profiling showed the
    /// task switching as the largest cost of the guarded path. Each such thread therefore gets
    /// its own pool; other runtimes share one.
    fn http(&self) -> reqwest::Client {
        let own_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread);
        if !own_thread {
            return self.http.clone();
        }
        THREAD_CLIENTS.with(|clients| {
            clients
                .borrow_mut()
                .entry(self.id)
                .or_insert_with(|| pool(&self.headers).unwrap_or_else(|_| self.http.clone()))
                .clone()
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
        let req = self.with_context(self.http().get(self.url(path)?), ctx);
        self.send(req, ctx.deadline).await
    }

    /// `POST path` with a JSON body, decoded as JSON.
    pub async fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        ctx: &CallContext,
    ) -> Result<T, GuardError> {
        let req = self.with_context(self.http().post(self.url(path)?).json(body), ctx);
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

/// A keep-alive pool sending `headers` on every call.
fn pool(headers: &HeaderMap) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .default_headers(headers.clone())
        .pool_max_idle_per_host(POOL_IDLE_PER_HOST)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .build()
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
