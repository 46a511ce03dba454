//! Storage integration tests: every test body runs against each backend of its role: SQLite and
//! PostgreSQL, the in-process cache and Redis, a local folder and S3 (see `cg_storage::testing`
//! for how the real servers are configured).

#![expect(
    clippy::unwrap_used,
    reason = "tests fail loudly; helpers outside #[test] count too"
)]

mod biasguard;
mod blobs;
mod cache;
mod copy;
mod database;
mod experiments;
mod files;
mod metrics;
mod retention;
mod usage;
