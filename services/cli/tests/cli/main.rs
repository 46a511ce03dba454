//! The `codeguardians` command end to end: `up` brings all six services to ready on embedded
//! storage and stops them on Ctrl-C; `migrate` applies and checks migrations; `org set-tier`
//! moves an organisation to another tier; `probe` is the container health check.

#![expect(
    clippy::expect_used,
    reason = "tests fail loudly; helpers outside #[test] count too"
)]

mod migrate;
mod org;
mod probe;
mod storage;
mod up;
