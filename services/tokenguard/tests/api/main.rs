//! tokenguard API tests: one binary, one module per concern.

mod health;
mod readiness;
