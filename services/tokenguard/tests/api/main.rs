//! tokenguard API tests: one binary, one module per concern.

#![expect(
    clippy::expect_used,
    reason = "tests fail loudly; helpers outside #[test] count too"
)]

mod exactness;
mod health;
mod readiness;
mod routes;
