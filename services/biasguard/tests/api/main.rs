//! biasguard API tests: one binary, one module per concern.

#![expect(clippy::expect_used, clippy::unwrap_used, reason = "tests fail loudly")]

mod outage;
mod process;
