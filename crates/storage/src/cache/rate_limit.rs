//! Sliding-window rate limiting over several windows at once, with constant memory per key: each
//! window keeps two counters (this bucket and the previous one) and estimates the count over the
//! last full window as `previous × (unelapsed share of the bucket) + current`.
//!
//! Both cache backends run the same check-then-increment atomically (a Lua script in Redis, a
//! striped lock in process); the arithmetic that turns counters into a decision lives here once.
//!
//! A check may ask for more than one unit at once (a lease that a gateway replica then hands out
//! locally, see the gateway's `traffic::lease`): it is granted as many as fit, but never more than
//! [`LEASE_SHARE`]th of what is left in the tightest window, and only one while fewer than
//! [`LEASE_MIN_ROOM`] are left, so that a lease never holds a large share of a limit other
//! replicas need, and a small limit, or one close to being spent, is counted one request at a
//! time. Asking for one unit is the plain check.

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

/// A lease of several units takes at most this share (1/16) of what is left in a window.
pub const LEASE_SHARE: u64 = 16;
/// Below this many units left in a window, only one is granted at a time.
pub const LEASE_MIN_ROOM: u64 = 256;

/// The outcome of one rate-limit check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateDecision {
    /// At least one unit was granted.
    pub allowed: bool,
    /// Units granted and counted (0 when refused; at most the units asked for).
    pub granted: u64,
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
    /// The wall-clock millisecond the windows were read at (what `Cache::rate_limit_release`
    /// needs to find the buckets the units were counted in).
    pub at_ms: u64,
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

/// How many of `want` units to grant given the counters read before the increment (`counts` as
/// for [`decide`]): 0 if one unit does not fit in every window, else `want` capped at
/// [`LEASE_SHARE`]th of the room left in each window, or at one where that room is below
/// [`LEASE_MIN_ROOM`]. The Lua script in `redis.rs` computes the same.
pub(crate) fn grant(windows: &[RateWindow], want: u64, counts: &[u64], now_ms: u64) -> u64 {
    let mut granted = want;
    for (i, w) in windows.iter().enumerate() {
        let room = (w.limit as f64 - estimate(w, counts[2 * i], counts[2 * i + 1], now_ms)).floor();
        if room < 1.0 {
            return 0;
        }
        let cap = if room < LEASE_MIN_ROOM as f64 {
            1
        } else {
            (room / LEASE_SHARE as f64).floor() as u64
        };
        granted = granted.min(cap);
    }
    granted
}

fn estimate(w: &RateWindow, current: u64, previous: u64, now_ms: u64) -> f64 {
    let wms = w.window_ms() as f64;
    let elapsed = elapsed_in_bucket(w, now_ms) as f64;
    previous as f64 * (wms - elapsed) / wms + current as f64
}

/// Turn the counters read before the increment (`counts[2i]` current, `counts[2i+1]` previous)
/// and the units granted into a decision (when refused, about one more unit).
pub(crate) fn decide(
    windows: &[RateWindow],
    granted: u64,
    counts: &[u64],
    now_ms: u64,
) -> RateDecision {
    let allowed = granted > 0;
    let cost = granted.max(1);
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
        granted,
        limit: w.limit,
        remaining,
        reset_after: Duration::from_millis(w.window_ms() - elapsed_in_bucket(&w, now_ms)),
        retry_after: retry_after_ms.map(Duration::from_millis),
        window_index: index,
        at_ms: now_ms,
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
        let d = decide(&w, 1, &[9, 0], 30_000);
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
        // Previous 10, current 2, at 15 s: 9.5 used; one more fits once the previous bucket
        // weighs 0.7 or less, i.e. at 18 s into the bucket → wait 3 s.
        let d = decide(&w, 0, &[2, 10], 15_000);
        assert!(!d.allowed);
        assert_eq!(d.granted, 0);
        assert_eq!(d.retry_after, Some(Duration::from_secs(3)));
        // Current bucket already full: wait for the next bucket plus the decay of this one.
        let d = decide(&w, 0, &[10, 0], 30_000);
        assert_eq!(d.retry_after, Some(Duration::from_millis(30_000 + 6_000)));
    }

    #[test]
    fn tightest_window_reports() {
        let w = [
            RateWindow::new(100, MIN),
            RateWindow::new(5, Duration::from_secs(10)),
        ];
        let d = decide(&w, 1, &[10, 0, 3, 0], 0);
        assert_eq!((d.window_index, d.limit, d.remaining), (1, 5, 1));
    }

    #[test]
    fn leases_take_a_sixteenth_of_the_room_at_most() {
        let w = [
            RateWindow::new(10_000, MIN),
            RateWindow::new(1_000, Duration::from_secs(10)),
        ];
        // Room 10,000 and 1,000: at most 1,000/16 = 62 of the 64 asked for.
        assert_eq!(grant(&w, 64, &[0, 0, 0, 0], 0), 62);
        assert_eq!(grant(&w, 3, &[0, 0, 0, 0], 0), 3);
        // Room 300 in the burst window: 18; room 255: one at a time.
        assert_eq!(grant(&w, 64, &[0, 0, 700, 0], 0), 18);
        assert_eq!(grant(&w, 64, &[0, 0, 745, 0], 0), 1);
        // No room in one window: nothing, whatever the others say.
        assert_eq!(grant(&w, 64, &[0, 0, 1000, 0], 0), 0);
        // A small limit is never leased.
        assert_eq!(grant(&[RateWindow::new(200, MIN)], 64, &[0, 0], 0), 1);
        // A granted lease counts every unit in the decision.
        let d = decide(&w, 62, &[0, 0, 0, 0], 0);
        assert_eq!((d.allowed, d.granted, d.remaining), (true, 62, 938));
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
