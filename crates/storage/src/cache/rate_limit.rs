//! Sliding-window rate limiting over several windows at once, with constant memory per key: each
//! window keeps two counters (this bucket and the previous one) and estimates the count over the
//! last full window as `previous × (unelapsed share of the bucket) + current`.
//!
//! Both cache backends run the same check-then-increment atomically (a Lua script in Redis, a
//! striped lock in process); the arithmetic that turns counters into a decision lives here once.

use std::time::Duration;

/// One window: at most `limit` units of cost per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateWindow {
    pub limit: u64,
    pub window: Duration,
}

impl RateWindow {
    pub fn new(limit: u64, window: Duration) -> Self {
        Self { limit, window }
    }

    pub(crate) fn window_ms(&self) -> u64 {
        u64::try_from(self.window.as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }
}

/// The outcome of one rate-limit check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateDecision {
    pub allowed: bool,
    /// Limit of the window closest to its limit (what `X-RateLimit-Limit` reports).
    pub limit: u64,
    /// Units left in that window after this request.
    pub remaining: u64,
    /// Time until that window's current bucket ends (`X-RateLimit-Reset`).
    pub reset_after: Duration,
    /// When refused: how long until the same request would be admitted (`Retry-After`).
    pub retry_after: Option<Duration>,
    /// Index (into the windows passed) of the window that decided.
    pub window_index: usize,
}

/// Counter keys for `key`: per window, the current and the previous bucket. The `{…}` hash tag
/// keeps every key of one client in one Redis Cluster slot, so the script may touch them all.
pub(crate) fn bucket_keys(
    prefix: &str,
    key: &str,
    windows: &[RateWindow],
    now_ms: u64,
) -> Vec<String> {
    let mut keys = Vec::with_capacity(windows.len() * 2);
    for w in windows {
        let wms = w.window_ms();
        let bucket = now_ms / wms;
        keys.push(format!("{prefix}rl:{{{key}}}:{wms}:{bucket}"));
        keys.push(format!(
            "{prefix}rl:{{{key}}}:{wms}:{}",
            bucket.saturating_sub(1)
        ));
    }
    keys
}

/// Milliseconds elapsed in the current bucket of `w`.
pub(crate) fn elapsed_in_bucket(w: &RateWindow, now_ms: u64) -> u64 {
    now_ms % w.window_ms()
}

/// Whether a request of `cost` fits in window `w` given its two counters (before increment).
pub(crate) fn fits(w: &RateWindow, cost: u64, current: u64, previous: u64, now_ms: u64) -> bool {
    estimate(w, current, previous, now_ms) + cost as f64 <= w.limit as f64
}

fn estimate(w: &RateWindow, current: u64, previous: u64, now_ms: u64) -> f64 {
    let wms = w.window_ms() as f64;
    let elapsed = elapsed_in_bucket(w, now_ms) as f64;
    previous as f64 * (wms - elapsed) / wms + current as f64
}

/// Turn the counters read before the increment (`counts[2i]` current, `counts[2i+1]` previous)
/// into a decision.
pub(crate) fn decide(
    windows: &[RateWindow],
    cost: u64,
    counts: &[u64],
    allowed: bool,
    now_ms: u64,
) -> RateDecision {
    let mut best: Option<(usize, u64)> = None;
    let mut retry_after_ms: Option<u64> = None;
    for (i, w) in windows.iter().enumerate() {
        let (cur, prev) = (counts[2 * i], counts[2 * i + 1]);
        let after = if allowed { cur + cost } else { cur };
        let est = estimate(w, after, prev, now_ms);
        let remaining = (w.limit as f64 - est).floor().max(0.0) as u64;
        if best.is_none_or(|(_, r)| remaining < r) {
            best = Some((i, remaining));
        }
        if !allowed && !fits(w, cost, cur, prev, now_ms) {
            let wait = wait_ms(w, cost, cur, prev, now_ms);
            retry_after_ms = Some(retry_after_ms.map_or(wait, |r| r.max(wait)));
        }
    }
    let (index, remaining) = best.unwrap_or((0, 0));
    let w = windows
        .get(index)
        .copied()
        .unwrap_or(RateWindow::new(0, Duration::from_secs(1)));
    RateDecision {
        allowed,
        limit: w.limit,
        remaining,
        reset_after: Duration::from_millis(w.window_ms() - elapsed_in_bucket(&w, now_ms)),
        retry_after: retry_after_ms.map(Duration::from_millis),
        window_index: index,
    }
}

/// How long until a request of `cost` fits in `w`, assuming no other traffic meanwhile.
fn wait_ms(w: &RateWindow, cost: u64, cur: u64, prev: u64, now_ms: u64) -> u64 {
    let wms = w.window_ms() as f64;
    let left_in_bucket = wms - elapsed_in_bucket(w, now_ms) as f64;
    let (limit, cost, cur, prev) = (w.limit as f64, cost as f64, cur as f64, prev as f64);
    if cost > limit {
        // Never fits; report the whole window so clients back off.
        return w.window_ms();
    }
    let wait = if cur + cost <= limit && prev > 0.0 {
        // Within this bucket, as the previous bucket's weight decays.
        left_in_bucket - (limit - cur - cost) * wms / prev
    } else {
        // In the next bucket, where this bucket becomes the decaying one.
        let into_next = if cur > 0.0 {
            wms * (1.0 - (limit - cost) / cur)
        } else {
            0.0
        };
        left_in_bucket + into_next.max(0.0)
    };
    wait.ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn admits_up_to_the_limit() {
        let w = [RateWindow::new(10, MIN)];
        // 30 s into the bucket, nothing before: 9 used, one more fits.
        assert!(fits(&w[0], 1, 9, 0, 30_000));
        assert!(!fits(&w[0], 1, 10, 0, 30_000));
        let d = decide(&w, 1, &[9, 0], true, 30_000);
        assert_eq!((d.limit, d.remaining), (10, 0));
        assert_eq!(d.reset_after, Duration::from_secs(30));
    }

    #[test]
    fn previous_bucket_weighs_by_the_unelapsed_share() {
        let w = RateWindow::new(10, MIN);
        // Previous bucket full (10), a quarter into this one: estimate 7.5, two more fit, three do not.
        assert!(fits(&w, 2, 0, 10, 15_000));
        assert!(!fits(&w, 3, 0, 10, 15_000));
    }

    #[test]
    fn retry_after_is_when_the_request_would_fit() {
        let w = [RateWindow::new(10, MIN)];
        // Previous 10, current 0, at 15 s: 7.5 used; a cost of 5 fits once prev weight ≤ 0.5,
        // i.e. at 30 s into the bucket → wait 15 s.
        let d = decide(&w, 5, &[0, 10], false, 15_000);
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Some(Duration::from_secs(15)));
        // Current bucket already full: wait for the next bucket plus the decay of this one.
        let d = decide(&w, 1, &[10, 0], false, 30_000);
        assert_eq!(d.retry_after, Some(Duration::from_millis(30_000 + 6_000)));
    }

    #[test]
    fn tightest_window_reports() {
        let w = [
            RateWindow::new(100, MIN),
            RateWindow::new(5, Duration::from_secs(10)),
        ];
        let d = decide(&w, 1, &[10, 0, 3, 0], true, 0);
        assert_eq!((d.window_index, d.limit, d.remaining), (1, 5, 1));
    }

    #[test]
    fn keys_share_a_hash_tag() {
        let w = [RateWindow::new(1, MIN)];
        let k = bucket_keys("cg:", "key:abc", &w, 125_000);
        assert_eq!(
            k,
            vec!["cg:rl:{key:abc}:60000:2", "cg:rl:{key:abc}:60000:1"]
        );
    }
}
