//! cg-guard-api: what the gateway and the guards agree on: each guard's name, default address and
//! port, the headers of an internal call, and the typed HTTP client the gateway uses (pooled
//! keep-alive connections, a deadline per call, the internal token, the request id and the W3C
//! trace context on every call). Each guard's request and response types join this crate with
//! the guard.

pub mod biasguard;
mod client;
mod kind;
pub mod tokenguard;

pub use client::{CallContext, GuardClient, GuardError};
pub use kind::{GuardKind, UnknownGuard};

/// Header carrying the shared secret on every gateway→guard call.
pub const INTERNAL_TOKEN_HEADER: &str = "x-internal-token";
/// Header carrying the request id across services.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Header carrying the caller's organisation from the gateway to a guard.
pub const ORGANIZATION_HEADER: &str = "x-organization-id";
