//! trustguard API tests: one binary, one module per concern.

#![expect(
    clippy::expect_used,
    reason = "tests fail loudly; helpers outside #[test] count too"
)]

mod health;
mod routes;
