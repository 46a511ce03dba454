//! The JSON error envelope of the public contract, and [`ApiError`], the error every handler
//! returns:
//!
//! ```json
//! {"error": {"code": "rate_limited", "message": "…", "request_id": "…", "details": {…}}}
//! ```
//!
//! Server errors (5xx) hide their cause from the client and log it once, here at the boundary.

use std::borrow::Cow;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};

use crate::observe::current_request_id;

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong, for machines (`code`) and people (`message`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    pub request_id: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// An error on its way to the client: a status, a stable code, a message and optional details.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: Cow<'static, str>,
    message: String,
    details: serde_json::Value,
    headers: Vec<(header::HeaderName, HeaderValue)>,
    /// Logged for 5xx, never sent.
    cause: Option<anyhow::Error>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.code,
            self.status.as_u16(),
            self.message
        )
    }
}

impl ApiError {
    /// Any status, code and message.
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            details: serde_json::Value::Object(serde_json::Map::new()),
            headers: Vec::new(),
            cause: None,
        }
    }

    /// 400 `bad_request` (or a more specific code via [`ApiError::new`]).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409 `conflict`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 413 `payload_too_large`.
    pub fn payload_too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }

    /// 422 `validation_error`.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
            message,
        )
    }

    /// 503 `service_unavailable`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            message,
        )
    }

    /// 500 `internal_error`: the cause is logged, the client sees a generic message.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal error; the request id identifies it in the logs",
        );
        e.cause = Some(cause.into());
        e
    }

    /// Attach structured details (shown to the client).
    #[must_use]
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }

    /// Attach a response header (e.g. `Retry-After`).
    #[must_use]
    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The stable code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The envelope this error renders to.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message.clone(),
                request_id: current_request_id(),
                details: self.details.clone(),
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        if self.status.is_server_error() {
            match &self.cause {
                Some(cause) => {
                    tracing::error!(error.code = %self.code, error.cause = ?cause, "request failed")
                }
                None => {
                    tracing::warn!(error.code = %self.code, error.message = %self.message, "request failed")
                }
            }
        }
        let mut response = HttpResponse::build(self.status);
        for (name, value) in &self.headers {
            response.insert_header((name.clone(), value.clone()));
        }
        response.json(self.body())
    }
}

impl ApiError {
    /// Storage failures a handler did not handle itself: missing → 404, conflict → 409, bad
    /// argument → 400, backend down → 503, anything else → 500. The cause is logged for 5xx.
    pub fn from_storage(err: &cg_storage::Error) -> Self {
        use cg_storage::Error as S;
        let mut e = match err {
            S::NotFound => return Self::not_found("not found"),
            S::Conflict(_) => return Self::conflict("conflicts with an existing resource"),
            S::Invalid(msg) => return Self::bad_request(msg.clone()),
            S::Unavailable { backend, .. } => {
                Self::unavailable(format!("{backend} is unavailable; retry later"))
            }
            _ => Self::internal(anyhow::anyhow!("storage")),
        };
        e.cause = Some(anyhow::anyhow!("{err}"));
        e
    }
}

impl From<cg_storage::Error> for ApiError {
    fn from(err: cg_storage::Error) -> Self {
        Self::from_storage(&err)
    }
}

/// Map actix's own extractor failures (bad JSON, wrong content type, body too large, bad path or
/// query) to the envelope.
pub fn json_error(err: actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError as J;
    match err {
        J::OverflowKnownLength { length, limit } => ApiError::payload_too_large(format!(
            "body of {length} bytes exceeds the limit of {limit} bytes"
        )),
        J::Overflow { limit } => {
            ApiError::payload_too_large(format!("body exceeds the limit of {limit} bytes"))
        }
        J::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected Content-Type: application/json",
        ),
        J::Deserialize(e) if e.is_data() => ApiError::unprocessable(e.to_string()),
        J::Deserialize(e) => ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.to_string()),
        other => ApiError::bad_request(other.to_string()),
    }
}

/// Query-string failures → 400.
pub fn query_error(err: actix_web::error::QueryPayloadError) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", err.to_string())
}

/// Path-segment failures → 400.
pub fn path_error(err: actix_web::error::PathError) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    /// The envelope is a public contract: pin its exact shape.
    #[actix_web::test]
    async fn envelope_shape_is_pinned() {
        let err = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "slow down")
            .with_details(serde_json::json!({"retry_after": 3}))
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("3"));
        let resp = err.error_response();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers().get(header::RETRY_AFTER).unwrap(), "3");
        assert_eq!(
            resp.headers().get(header::CONTENT_TYPE).unwrap(),
            "application/json"
        );
        let body: serde_json::Value =
            serde_json::from_slice(&to_bytes(resp.into_body()).await.unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": {
                "code": "rate_limited",
                "message": "slow down",
                "request_id": "unknown",
                "details": {"retry_after": 3}
            }})
        );
    }

    #[actix_web::test]
    async fn internal_errors_hide_their_cause() {
        let resp = ApiError::internal(anyhow::anyhow!("password=hunter2 leaked")).error_response();
        let body = to_bytes(resp.into_body()).await.unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("internal_error"));
    }

    #[test]
    fn storage_errors_map_to_statuses() {
        let cases = [
            (cg_storage::Error::NotFound, 404),
            (cg_storage::Error::Conflict("dup".into()), 409),
            (cg_storage::Error::unavailable("redis", "down"), 503),
            (cg_storage::Error::Corrupt("x".into()), 500),
        ];
        for (err, status) in cases {
            assert_eq!(ApiError::from(err).status_code().as_u16(), status);
        }
    }
}
