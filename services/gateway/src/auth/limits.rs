//! Limits on what costs a password hash or creates accounts, in the shared cache so they hold
//! across replicas:
//!
//! - login attempts per client address, and per account *and* address (sliding 15-minute
//!   windows): someone guessing a password from one address cannot lock the owner out from
//!   another;
//! - a progressive delay per account, whatever the address: after `LOGIN_ATTEMPTS_PER_ACCOUNT`
//!   wrong passwords in 15 minutes each further one makes the account wait twice as long (from
//!   one second up to a minute) before the next check, which slows a guesser spread over many
//!   addresses while keeping the owner's wait short;
//! - registrations per address and organisation creations per address and per user (hourly,
//!   `REGISTRATIONS_PER_IP_PER_HOUR`, `ORGANIZATIONS_PER_USER_PER_HOUR`), and password checks on
//!   `PUT` and `DELETE /users/me` per user (`LOGIN_ATTEMPTS_PER_ACCOUNT` per 15 minutes).
//!
//! If the cache is unreachable the action is allowed (and logged): locking everyone out is worse
//! than a brief gap in throttling.

use std::time::Duration;

use cg_storage::Cache;
use cg_storage::cache::RateWindow;
use cg_storage::sql_types::Id;

use crate::domain::Email;
use crate::error::{GatewayError, Result};

const WINDOW: Duration = Duration::from_secs(15 * 60);
const HOUR: Duration = Duration::from_secs(3600);
/// The longest an account waits between two password checks once the delay started.
const MAX_DELAY: Duration = Duration::from_secs(60);

fn delay_key(email: &Email) -> String {
    format!("login:delay:{email}")
}

fn failures_key(email: &Email) -> String {
    format!("login:failures:{email}")
}

/// Count one action under `key`; refuse it with 429 once `limit` were counted in `window`.
pub async fn count(cache: &Cache, key: &str, limit: u64, window: Duration) -> Result<()> {
    match cache
        .rate_limit(key, &[RateWindow::new(limit, window)], 1)
        .await
    {
        Ok(d) if !d.allowed => {
            let retry = d.retry_after.unwrap_or(window).as_secs().max(1);
            Err(GatewayError::TooManyAttempts {
                retry_after_secs: retry,
            })
        }
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::warn!(error = %e, key, "throttling unavailable");
            Ok(())
        }
    }
}

/// Count one login attempt; refuse it when the address's or the account-and-address budget is
/// spent, or while the account's progressive delay runs.
pub async fn count_login_attempt(
    cache: &Cache,
    ip: &str,
    email: &Email,
    per_ip: u64,
    per_account: u64,
) -> Result<()> {
    count(cache, &format!("login:ip:{ip}"), per_ip, WINDOW).await?;
    count(
        cache,
        &format!("login:account:{email}:{ip}"),
        per_account,
        WINDOW,
    )
    .await?;
    match cache.ttl(&delay_key(email)).await {
        Ok(Some(left)) => Err(GatewayError::TooManyAttempts {
            retry_after_secs: left.as_secs().max(1),
        }),
        Ok(None) => Ok(()),
        Err(e) => {
            tracing::warn!(error = %e, "login delay unavailable");
            Ok(())
        }
    }
}

/// A wrong password for `email`: beyond `free` failures in 15 minutes, start (or double) the
/// account's delay.
pub async fn login_failed(cache: &Cache, email: &Email, free: u64) {
    let delayed = async {
        let failures = cache.incr_by(&failures_key(email), 1, Some(WINDOW)).await?;
        let over = u64::try_from(failures).unwrap_or(0).saturating_sub(free);
        if over > 0 {
            let delay = Duration::from_secs(1u64 << (over - 1).min(6)).min(MAX_DELAY);
            cache.set(&delay_key(email), b"1", Some(delay)).await?;
        }
        Ok::<_, cg_storage::Error>(())
    };
    if let Err(e) = delayed.await {
        tracing::warn!(error = %e, "recording a failed login failed");
    }
}

/// A right password for `email`: its failures are forgotten.
pub async fn login_succeeded(cache: &Cache, email: &Email) {
    if let Err(e) = cache.delete(&failures_key(email)).await {
        tracing::warn!(error = %e, "clearing failed logins failed");
    }
}

/// Count one registration from `ip` (`per_hour` per address).
pub async fn count_registration(cache: &Cache, ip: &str, per_hour: u64) -> Result<()> {
    count(cache, &format!("register:ip:{ip}"), per_hour, HOUR).await
}

/// Count one organisation creation by `user` from `ip` (`per_hour` per user and per address).
pub async fn count_organization(cache: &Cache, user: Id, ip: &str, per_hour: u64) -> Result<()> {
    count(cache, &format!("orgs:user:{user}"), per_hour, HOUR).await?;
    count(cache, &format!("orgs:ip:{ip}"), per_hour, HOUR).await
}

/// Count one password check by `user` on the account routes (`limit` per 15 minutes).
pub async fn count_password_check(cache: &Cache, user: Id, limit: u64) -> Result<()> {
    count(cache, &format!("password-check:user:{user}"), limit, WINDOW).await
}
