//! The `codeguardians` command end to end: `up` brings all six services to ready on embedded
//! storage and stops them on Ctrl-C; `migrate` applies and checks migrations.

#![expect(
    clippy::expect_used,
    reason = "tests fail loudly; helpers outside #[test] count too"
)]

mod migrate;
mod up;
