//! The outermost middleware: request id, tracing span (joined to the caller's W3C trace),
//! request metrics by route and status, one access-log line, and errors from inner layers turned
//! into the JSON envelope while the request id is still known.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// `X-Request-ID`.
pub static REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");
const MAX_REQUEST_ID_LEN: usize = 128;

/// What identifies the request being served, for error bodies and outgoing calls.
#[derive(Debug, Clone)]
struct RequestContext {
    request_id: String,
    /// The caller's trace id, or a fresh one: every request belongs to a trace.
    trace_id: String,
}

tokio::task_local! {
    static REQUEST: RequestContext;
}

/// The id of the request being served on this task, or `unknown` outside one.
pub fn current_request_id() -> String {
    REQUEST
        .try_with(|r| r.request_id.clone())
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Headers that carry the current trace to a downstream call: the OpenTelemetry context when
/// tracing is exported, else a W3C `traceparent` continuing the request's trace id with a new span
/// id.
pub fn outgoing_trace_headers() -> Vec<(String, String)> {
    let mut headers = HashMap::new();
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut headers));
    if headers.contains_key("traceparent") {
        return headers.into_iter().collect();
    }
    let Ok(trace_id) = REQUEST.try_with(|r| r.trace_id.clone()) else {
        return Vec::new();
    };
    let span_id: [u8; 8] = rand::random();
    vec![(
        "traceparent".to_owned(),
        format!("00-{trace_id}-{}-01", hex::encode(span_id)),
    )]
}

/// The service name, stored as app data so the middleware can label metrics.
#[derive(Debug, Clone, Copy)]
pub struct ServiceName(pub &'static str);

/// A caller-supplied id is kept when it is short and plain; anything else gets a fresh UUIDv7.
fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= MAX_REQUEST_ID_LEN
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned)
}

/// Trace id of a valid `traceparent` header (`00-<32 hex>-<16 hex>-<2 hex>`), for log lines.
fn trace_id(req: &ServiceRequest) -> Option<String> {
    let value = req.headers().get("traceparent")?.to_str().ok()?;
    let mut parts = value.split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(version, 2) && hex(trace, 32) && hex(span, 16) && hex(flags, 2) && trace != "0".repeat(32))
        .then(|| trace.to_ascii_lowercase())
}

struct HeaderExtractor<'a>(&'a actix_web::http::header::HeaderMap);

impl opentelemetry::propagation::Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

fn quiet_route(route: &str) -> bool {
    route.starts_with("/health") || route == "/metrics"
}

/// The middleware function (install with `actix_web::middleware::from_fn`).
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = request_id(&req);
    let method = req.method().clone();
    let service = req.app_data::<ServiceName>().map_or("unknown", |s| s.0);
    let span = tracing::info_span!(
        "http.request",
        request_id = %id,
        http.method = %method,
        http.route = tracing::field::Empty,
        http.status_code = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    let trace = trace_id(&req).unwrap_or_else(|| hex::encode(rand::random::<[u8; 16]>()));
    span.record("trace_id", trace.as_str());
    let context = RequestContext {
        request_id: id.clone(),
        trace_id: trace,
    };
    let parent = opentelemetry::global::get_text_map_propagator(|p| {
        p.extract(&HeaderExtractor(req.headers()))
    });
    let _ = span.set_parent(parent);

    let outcome = REQUEST
        .scope(context.clone(), next.call(req).instrument(span.clone()))
        .await;
    let header = HeaderValue::from_str(&id).ok();
    let (result, status, route) = match outcome {
        Ok(mut resp) => {
            if let Some(value) = header {
                resp.headers_mut().insert(REQUEST_ID_HEADER.clone(), value);
            }
            let route = resp
                .request()
                .match_pattern()
                .unwrap_or_else(|| "unmatched".to_owned());
            let status = resp.status().as_u16();
            (Ok(resp), status, route)
        }
        // Handlers render their own errors; an inner middleware's error is rendered here, while
        // the request id is still in scope, and passed on already rendered.
        Err(err) => {
            let mut rendered = REQUEST.sync_scope(context, || err.error_response());
            if let Some(value) = header {
                rendered
                    .headers_mut()
                    .insert(REQUEST_ID_HEADER.clone(), value);
            }
            let status = rendered.status().as_u16();
            let err = actix_web::error::InternalError::from_response(err.to_string(), rendered);
            (Err(err.into()), status, "unmatched".to_owned())
        }
    };
    record(service, &method, &route, status, started.elapsed(), &span);
    result
}

/// The request counter and duration histogram of one service, method, status and route.
type RequestMetrics = (metrics::Counter, metrics::Histogram);
/// Those of one service, method and status, by route.
type ByRoute = HashMap<String, RequestMetrics>;

thread_local! {
    /// Handles already registered, so a request does not build and hash four labels twice.
    static REQUEST_METRICS: RefCell<HashMap<(&'static str, Method, u16), ByRoute>> =
        RefCell::new(HashMap::new());
}

fn request_metrics(
    service: &'static str,
    method: &Method,
    route: &str,
    status: u16,
) -> RequestMetrics {
    let register = || {
        let labels = [
            ("service", service.to_owned()),
            ("method", method.to_string()),
            ("route", route.to_owned()),
            ("status", status.to_string()),
        ];
        (
            metrics::counter!("http_requests_total", &labels),
            metrics::histogram!("http_request_duration_seconds", &labels),
        )
    };
    REQUEST_METRICS.with(|cache| {
        let mut cache = cache.borrow_mut();
        let routes = cache.entry((service, method.clone(), status)).or_default();
        if let Some(found) = routes.get(route) {
            return found.clone();
        }
        let made = register();
        // Routes are patterns (or "unmatched"), so this stays small; the bound is a safeguard.
        if routes.len() < 1024 {
            routes.insert(route.to_owned(), made.clone());
        }
        made
    })
}

fn record(
    service: &'static str,
    method: &Method,
    route: &str,
    status: u16,
    elapsed: std::time::Duration,
    span: &tracing::Span,
) {
    let (requests, duration) = request_metrics(service, method, route, status);
    requests.increment(1);
    duration.record(elapsed.as_secs_f64());

    span.record("http.route", route);
    span.record("http.status_code", status);
    let duration_ms = elapsed.as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if status >= 500 {
            tracing::error!(http.status_code = status, duration_ms, "request served");
        } else if quiet_route(route) {
            tracing::debug!(http.status_code = status, duration_ms, "request served");
        } else {
            tracing::info!(http.status_code = status, duration_ms, "request served");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn request_ids_are_kept_only_when_plain() {
        let keep = TestRequest::default()
            .insert_header(("x-request-id", "abc-123_x.y"))
            .to_srv_request();
        assert_eq!(request_id(&keep), "abc-123_x.y");
        let evil = TestRequest::default()
            .insert_header(("x-request-id", "a b\"<script>"))
            .to_srv_request();
        assert_ne!(request_id(&evil), "a b\"<script>");
        assert_eq!(request_id(&evil).len(), 36);
    }

    #[test]
    fn trace_ids_come_from_valid_traceparents() {
        let ok = TestRequest::default()
            .insert_header((
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ))
            .to_srv_request();
        assert_eq!(
            trace_id(&ok).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        let bad = TestRequest::default()
            .insert_header(("traceparent", "00-xyz-00f067aa0ba902b7-01"))
            .to_srv_request();
        assert_eq!(trace_id(&bad), None);
    }
}
