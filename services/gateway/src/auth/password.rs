//! Password hashing with argon2id (the crate's defaults: 19 MiB, 2 passes), run off the request
//! threads. Verifying an unknown account still hashes once, so timing does not tell whether an
//! email is registered.

use std::sync::LazyLock;

use anyhow::Context;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};

use crate::domain::Password;

/// A hash of a random password, verified against when the account does not exist.
static DUMMY_HASH: LazyLock<Option<String>> = LazyLock::new(|| {
    let random: [u8; 16] = rand::random();
    Argon2::default()
        .hash_password(&random)
        .ok()
        .map(|h| h.to_string())
});

/// Hash a new password (PHC string).
pub async fn hash(password: &Password) -> anyhow::Result<String> {
    let pw = password.expose().to_owned();
    actix_web::web::block(move || {
        Argon2::default()
            .hash_password(pw.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
    })
    .await
    .context("password hashing task")?
}

/// Whether `password` matches `hash`; with no hash (unknown account) a dummy is checked so the
/// answer takes as long, and is always false.
pub async fn verify(password: &str, hash: Option<String>) -> anyhow::Result<bool> {
    let pw = password.to_owned();
    actix_web::web::block(move || {
        let (hash, real) = match hash {
            Some(h) => (h, true),
            None => (DUMMY_HASH.clone().unwrap_or_default(), false),
        };
        let matches = Argon2::default()
            .verify_password(pw.as_bytes(), hash.as_str())
            .is_ok();
        real && matches
    })
    .await
    .context("password verification task")
}
