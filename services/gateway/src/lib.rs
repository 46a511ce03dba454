//! The gateway: the public door of CodeGuardians. It authenticates callers (passwords, access
//! tokens, refresh sessions, API keys), keeps organisations, members, invitations and
//! subscriptions, and (with later issues) enforces limits and routes text to the guards.
//!
//! It uses PostgreSQL (or SQLite), Redis (or in-process) and S3 (or a local folder); see
//! [`config`] for its settings and [`startup`] for how it is assembled.

pub mod announce;
pub mod api_doc;
pub mod auth;
pub mod client;
pub mod config;
pub mod domain;
pub mod error;
pub mod experiments;
pub mod files;
pub mod guards;
pub mod orgs;
pub mod routes;
pub mod startup;
pub mod state;
pub mod tenancy;
pub mod traffic;

/// The service name in logs, metrics and `/health`.
pub const SERVICE: &str = "gateway";
/// The port it listens on unless `CG_PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 8000;
