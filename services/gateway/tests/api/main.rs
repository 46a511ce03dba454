//! gateway API tests: one binary, one module per concern.

#![expect(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests fail loudly; helpers outside #[test] count too"
)]

mod ab_testing;
mod api_keys;
mod auth;
mod biasguard_admin;
mod binaries;
mod files;
mod guards;
mod health;
mod helpers;
mod openapi;
mod organizations;
mod processes;
mod real_guards;
mod security;
mod sessions;
mod startup;
mod tiers;
mod traffic;
