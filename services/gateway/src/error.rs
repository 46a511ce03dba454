//! The gateway's errors, mapped to statuses and the shared JSON envelope.

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderName;
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::{HttpResponse, ResponseError};
use cg_service_kit::ApiError;

/// `X-RateLimit-Limit`, `-Remaining`, `-Reset` (seconds until the deciding window's bucket ends).
pub static LIMIT_HEADER: HeaderName = HeaderName::from_static("x-ratelimit-limit");
pub static REMAINING_HEADER: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
pub static RESET_HEADER: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// Everything a gateway handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Input failed validation at the edge (400 `validation_error`... 422 for shape-valid input).
    #[error("{0}")]
    Invalid(String),
    /// No or bad credentials (401). One message for unknown account and wrong password.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Authenticated but not allowed (403).
    #[error("{0}")]
    Forbidden(&'static str),
    /// Missing, or belonging to another organisation (404 either way).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Conflicts with existing state (409).
    #[error("{0}")]
    Conflict(String),
    /// Malformed request (400) with a stable code and details.
    #[error("{message}")]
    BadRequest {
        code: &'static str,
        message: String,
        details: serde_json::Value,
    },
    /// Not allowed, with a stable code and details (403).
    #[error("{message}")]
    ForbiddenWith {
        code: &'static str,
        message: String,
        details: serde_json::Value,
    },
    /// A guard failed, timed out, refused, or is unavailable (502, 503, 504, or its 4xx).
    #[error("{message}")]
    Upstream {
        status: StatusCode,
        code: &'static str,
        message: String,
        details: serde_json::Value,
    },
    /// Too many attempts (429 with `Retry-After`).
    #[error("too many attempts; retry in {retry_after_secs} s")]
    TooManyAttempts { retry_after_secs: u64 },
    /// A rate-limit window is spent (429 `rate_limited` with `Retry-After` and `X-RateLimit-*`).
    #[error("rate limit of {limit} exceeded; retry in {retry_after_secs} s")]
    RateLimited {
        limit: u64,
        reset_secs: u64,
        retry_after_secs: u64,
    },
    /// The organisation's monthly guard calls are spent (429 `quota_exceeded`).
    #[error(
        "the monthly quota of {quota} guard calls is spent ({used} used); it renews in {retry_after_secs} s"
    )]
    QuotaExceeded {
        quota: u64,
        used: i64,
        retry_after_secs: u64,
    },
    /// The organisation's monthly budget is spent (402 `budget_exceeded`).
    #[error("the monthly budget of ${budget_usd:.2} is spent (${spent_usd:.4} spent or reserved)")]
    BudgetExceeded { budget_usd: f64, spent_usd: f64 },
    /// A dependency the request needs is away and there is no safe fallback (503).
    #[error("{0}")]
    Unavailable(&'static str),
    /// Refused with a status of its own (413, 415, 416, 403 on a signed URL …).
    #[error("{message}")]
    Refused {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    /// A backend failed.
    #[error(transparent)]
    Storage(#[from] cg_storage::Error),
    /// Anything else: logged, hidden.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl GatewayError {
    fn api(&self) -> ApiError {
        match self {
            Self::Invalid(msg) => ApiError::unprocessable(msg.clone()),
            Self::Unauthorized(msg) => ApiError::unauthorized(*msg),
            Self::Forbidden(msg) => ApiError::forbidden(*msg),
            Self::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            Self::Conflict(msg) => ApiError::conflict(msg.clone()),
            Self::BadRequest {
                code,
                message,
                details,
            } => ApiError::new(StatusCode::BAD_REQUEST, *code, message.clone())
                .with_details(details.clone()),
            Self::ForbiddenWith {
                code,
                message,
                details,
            } => ApiError::new(StatusCode::FORBIDDEN, *code, message.clone())
                .with_details(details.clone()),
            Self::Upstream {
                status,
                code,
                message,
                details,
            } => ApiError::new(*status, *code, message.clone()).with_details(details.clone()),
            Self::TooManyAttempts { retry_after_secs } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                self.to_string(),
            )
            .with_details(serde_json::json!({"retry_after": retry_after_secs}))
            .with_header(
                RETRY_AFTER,
                HeaderValue::from_str(&retry_after_secs.to_string())
                    .unwrap_or(HeaderValue::from_static("1")),
            ),
            Self::RateLimited {
                limit,
                reset_secs,
                retry_after_secs,
            } => {
                let header = |v: &u64| {
                    HeaderValue::from_str(&v.to_string()).unwrap_or(HeaderValue::from_static("1"))
                };
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    self.to_string(),
                )
                .with_details(serde_json::json!({
                    "limit": limit,
                    "retry_after": retry_after_secs,
                }))
                .with_header(RETRY_AFTER, header(retry_after_secs))
                .with_header(LIMIT_HEADER.clone(), header(limit))
                .with_header(REMAINING_HEADER.clone(), HeaderValue::from_static("0"))
                .with_header(RESET_HEADER.clone(), header(reset_secs))
            }
            Self::QuotaExceeded {
                quota,
                used,
                retry_after_secs,
            } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "quota_exceeded",
                self.to_string(),
            )
            .with_details(serde_json::json!({
                "quota": quota,
                "used": used,
                "retry_after": retry_after_secs,
            }))
            .with_header(
                RETRY_AFTER,
                HeaderValue::from_str(&retry_after_secs.to_string())
                    .unwrap_or(HeaderValue::from_static("1")),
            ),
            Self::BudgetExceeded {
                budget_usd,
                spent_usd,
            } => ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                "budget_exceeded",
                self.to_string(),
            )
            .with_details(serde_json::json!({"budget_usd": budget_usd, "spent_usd": spent_usd})),
            Self::Unavailable(msg) => ApiError::unavailable(*msg),
            Self::Refused {
                status,
                code,
                message,
            } => ApiError::new(*status, *code, message.clone()),
            Self::Storage(e) => ApiError::from_storage(e),
            Self::Internal(e) => ApiError::internal(anyhow::anyhow!("{e:#}")),
        }
    }
}

impl ResponseError for GatewayError {
    fn status_code(&self) -> StatusCode {
        self.api().status_code()
    }

    fn error_response(&self) -> HttpResponse {
        self.api().error_response()
    }
}

/// Result alias of handlers.
pub type Result<T, E = GatewayError> = std::result::Result<T, E>;
