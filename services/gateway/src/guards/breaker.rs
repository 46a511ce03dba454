//! A circuit breaker per guard and replica: closed → open after `threshold` consecutive failures →
//! half-open after `cooldown`, when one probe call decides between closed and open again. While
//! open, calls fail at once instead of waiting on a guard that is down.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// The breaker's state, as `/health` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    failures: u32,
    opened_at: Option<Instant>,
    probe_in_flight: bool,
}

/// One guard's breaker.
#[derive(Debug)]
pub struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    inner: Mutex<Inner>,
}

/// Permission to make one call; report how it went.
#[derive(Debug)]
pub struct Permit {
    probe: bool,
}

impl CircuitBreaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                failures: 0,
                opened_at: None,
                probe_in_flight: false,
            }),
        }
    }

    /// May a call go out? `None` while open (or while a half-open probe is already out).
    pub fn try_acquire(&self) -> Option<Permit> {
        let mut inner = self.inner.lock().ok()?;
        match inner.state {
            BreakerState::Closed => Some(Permit { probe: false }),
            BreakerState::Open => {
                let cooled = inner
                    .opened_at
                    .is_some_and(|t| t.elapsed() >= self.cooldown);
                if cooled {
                    inner.state = BreakerState::HalfOpen;
                    inner.probe_in_flight = true;
                    Some(Permit { probe: true })
                } else {
                    None
                }
            }
            BreakerState::HalfOpen if !inner.probe_in_flight => {
                inner.probe_in_flight = true;
                Some(Permit { probe: true })
            }
            BreakerState::HalfOpen => None,
        }
    }

    /// The call answered.
    pub fn success(&self, permit: Permit) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.failures = 0;
            if permit.probe || inner.state != BreakerState::Closed {
                inner.state = BreakerState::Closed;
                inner.opened_at = None;
                inner.probe_in_flight = false;
            }
        }
    }

    /// The call failed (unreachable, timed out, or a server error).
    pub fn failure(&self, permit: Permit) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.failures = inner.failures.saturating_add(1);
            if permit.probe || inner.failures >= self.threshold {
                inner.state = BreakerState::Open;
                inner.opened_at = Some(Instant::now());
                inner.probe_in_flight = false;
            }
        }
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        self.inner
            .lock()
            .map(|i| {
                if i.state == BreakerState::Open
                    && i.opened_at.is_some_and(|t| t.elapsed() >= self.cooldown)
                {
                    BreakerState::HalfOpen
                } else {
                    i.state
                }
            })
            .unwrap_or(BreakerState::Open)
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.inner.lock().map(|i| i.failures).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_recovers_through_one_probe() {
        let b = CircuitBreaker::new(3, Duration::from_millis(50));
        for _ in 0..2 {
            let p = b.try_acquire().unwrap();
            b.failure(p);
        }
        assert_eq!(b.state(), BreakerState::Closed);
        let p = b.try_acquire().unwrap();
        b.failure(p);
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.try_acquire().is_none(), "open breaker let a call through");

        std::thread::sleep(Duration::from_millis(60));
        let probe = b.try_acquire().expect("half-open probe");
        assert!(b.try_acquire().is_none(), "two probes at once");
        b.failure(probe);
        assert_eq!(b.state(), BreakerState::Open, "failed probe reopens");

        std::thread::sleep(Duration::from_millis(60));
        let probe = b.try_acquire().unwrap();
        b.success(probe);
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.try_acquire().is_some());
    }

    #[test]
    fn a_success_resets_the_count() {
        let b = CircuitBreaker::new(2, Duration::from_secs(60));
        let p = b.try_acquire().unwrap();
        b.failure(p);
        let p = b.try_acquire().unwrap();
        b.success(p);
        let p = b.try_acquire().unwrap();
        b.failure(p);
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
