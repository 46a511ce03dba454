//! Login attempts are limited per client address and per account (sliding 15-minute windows in
//! the shared cache, so the limit holds across replicas).

use std::time::Duration;

use cg_storage::Cache;
use cg_storage::cache::RateWindow;

use crate::domain::Email;
use crate::error::{GatewayError, Result};

const WINDOW: Duration = Duration::from_secs(15 * 60);

/// Count one login attempt; refuse it when either budget is spent. If the cache is unreachable the
/// attempt is allowed (and logged): locking everyone out is worse than a brief gap in throttling.
pub async fn count_login_attempt(
    cache: &Cache,
    ip: &str,
    email: &Email,
    per_ip: u64,
    per_account: u64,
) -> Result<()> {
    let checks = [
        (format!("login:ip:{ip}"), per_ip),
        (format!("login:account:{email}"), per_account),
    ];
    for (key, limit) in checks {
        match cache
            .rate_limit(&key, &[RateWindow::new(limit, WINDOW)], 1)
            .await
        {
            Ok(d) if !d.allowed => {
                let retry = d.retry_after.unwrap_or(WINDOW).as_secs().max(1);
                return Err(GatewayError::TooManyAttempts {
                    retry_after_secs: retry,
                });
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "login throttling unavailable"),
        }
    }
    Ok(())
}
