//! Leases: units of a shared limit (requests under a rate limit, guard calls under a budget)
//! taken from their counter in Redis several at a time and handed out by this replica, so that a
//! busy client costs one Redis round trip per lease instead of one per request.
//!
//! Every unit is counted in Redis before this replica hands it out, so a limit shared by many
//! replicas is never exceeded. What a lease costs is precision the other way: units one replica
//! holds are not available to another until they are used or given back. Hence leases are small
//! and short: sized to what the client used in the last [`LIFETIME`] (one unit for a slow client,
//! at most [`MAX_UNITS`]), never more than a sixteenth of what is left of the limit and only
//! while 256 units or more are left (Redis caps that, so a small limit, or one nearly spent, is
//! counted one request at a time), and given back after [`LIFETIME`] when unused. The next lease
//! is taken in the background when an eighth of the current one is left
//! ([`Leases::refill_due`]), so a busy client's requests do not wait for the refill.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a lease's units may be handed out before what is left goes back.
pub const LIFETIME: Duration = Duration::from_millis(250);
/// The most units one lease asks for.
pub const MAX_UNITS: u64 = 64;
/// A client not seen for this long is forgotten (its next lease starts at one unit).
const FORGET_AFTER: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Lease<M> {
    /// Units not handed out yet.
    left: u64,
    /// Units handed out since the lease was filled.
    used: u64,
    /// Units the lease was filled with.
    size: u64,
    filled: Instant,
    meta: M,
}

/// Units a lease held and never handed out, to give back to the shared counter.
#[derive(Debug, PartialEq)]
pub struct Unused<K, M> {
    pub key: K,
    pub units: u64,
    pub meta: M,
}

/// The leases of one replica, by key, each with what the caller needs to hand a unit out or give
/// the rest back (`M`).
#[derive(Debug)]
pub struct Leases<K, M> {
    leases: Mutex<HashMap<K, Lease<M>>>,
    lifetime: Duration,
    max_units: u64,
}

impl<K: Eq + Hash + Clone, M: Clone> Leases<K, M> {
    pub fn new(lifetime: Duration, max_units: u64) -> Self {
        Self {
            leases: Mutex::new(HashMap::new()),
            lifetime,
            max_units: max_units.max(1),
        }
    }

    /// Take `n` units from `key`'s lease while it lasts: its metadata and the units left after.
    pub fn take(&self, key: &K, n: u64) -> Option<(M, u64)> {
        let mut leases = self.leases.lock().ok()?;
        let lease = leases.get_mut(key)?;
        if lease.left < n || lease.filled.elapsed() >= self.lifetime {
            return None;
        }
        lease.left -= n;
        lease.used += n;
        Some((lease.meta.clone(), lease.left))
    }

    /// Whether a take that left `left` units in `key`'s lease should start filling the next one
    /// in the background, so that no request waits for it: once per lease, when an eighth of a
    /// lease of eight units or more is left.
    pub fn refill_due(&self, key: &K, left: u64) -> bool {
        let Ok(leases) = self.leases.lock() else {
            return false;
        };
        leases
            .get(key)
            .is_some_and(|l| l.size >= 8 && left == l.size / 8)
    }

    /// How many units to ask for next for `key`: what it used of its last lease, scaled to one
    /// lifetime, between `min` and the maximum (`min` for a key without a lease).
    pub fn want(&self, key: &K, min: u64) -> u64 {
        let Ok(leases) = self.leases.lock() else {
            return min;
        };
        let Some(lease) = leases.get(key) else {
            return min;
        };
        let elapsed = lease.filled.elapsed().max(Duration::from_millis(1));
        let rate = lease.used as f64 / elapsed.as_secs_f64();
        let want = (rate * self.lifetime.as_secs_f64()).ceil() as u64;
        want.clamp(min, self.max_units.max(min))
    }

    /// The metadata of `key`'s last lease, live or not.
    pub fn last(&self, key: &K) -> Option<M> {
        self.leases.lock().ok()?.get(key).map(|l| l.meta.clone())
    }

    /// Keep a lease of `granted` units for `key`, `taken` of them handed out at once. A lease it
    /// replaces (two filled at once, or one run out of time and not collected yet) comes back
    /// with its unused units.
    pub fn fill(&self, key: K, granted: u64, taken: u64, meta: M) -> Option<Unused<K, M>> {
        let lease = Lease {
            left: granted.saturating_sub(taken),
            used: taken.min(granted),
            size: granted,
            filled: Instant::now(),
            meta,
        };
        let mut leases = self.leases.lock().ok()?;
        let old = leases.insert(key.clone(), lease)?;
        // Live or run out of time but not collected yet: its units go back either way.
        (old.left > 0).then_some(Unused {
            key,
            units: old.left,
            meta: old.meta,
        })
    }

    /// End `key`'s lease now: its unused units, if any.
    pub fn end(&self, key: &K) -> Option<Unused<K, M>> {
        let mut leases = self.leases.lock().ok()?;
        let lease = leases.get_mut(key)?;
        let units = std::mem::take(&mut lease.left);
        (units > 0).then(|| Unused {
            key: key.clone(),
            units,
            meta: lease.meta.clone(),
        })
    }

    /// Empty the leases that have run out of time (every lease when `all`) and return their
    /// unused units; forget keys idle for long.
    pub fn collect(&self, all: bool) -> Vec<Unused<K, M>> {
        let Ok(mut leases) = self.leases.lock() else {
            return Vec::new();
        };
        let mut unused = Vec::new();
        leases.retain(|key, lease| {
            let age = lease.filled.elapsed();
            if lease.left > 0 && (all || age >= self.lifetime) {
                unused.push(Unused {
                    key: key.clone(),
                    units: lease.left,
                    meta: lease.meta.clone(),
                });
                lease.left = 0;
            }
            age < FORGET_AFTER
        });
        unused
    }

    /// Leases currently kept (live or remembered for sizing).
    #[cfg(test)]
    fn kept(&self) -> usize {
        self.leases.lock().map(|l| l.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_handed_out_until_the_lease_is_spent() {
        let leases: Leases<&str, u8> = Leases::new(Duration::from_secs(60), 64);
        assert_eq!(leases.take(&"a", 1), None, "no lease yet");
        assert_eq!(leases.want(&"a", 1), 1, "a new client starts at one unit");
        assert_eq!(leases.fill("a", 3, 1, 7), None);
        assert_eq!(leases.take(&"a", 1), Some((7, 1)));
        assert_eq!(leases.take(&"a", 2), None, "only one left");
        assert_eq!(leases.take(&"a", 1), Some((7, 0)));
        assert_eq!(leases.take(&"a", 1), None);
        assert_eq!(leases.take(&"b", 1), None, "leases are per key");
        // A lease of 16 asks for the next one once, with two units left.
        leases.fill("c", 16, 1, 0);
        let due: Vec<u64> = (0..15)
            .filter_map(|_| leases.take(&"c", 1))
            .map(|(_, left)| left)
            .filter(|left| leases.refill_due(&"c", *left))
            .collect();
        assert_eq!(due, vec![2]);
        leases.fill("d", 4, 1, 0);
        assert!(
            !(0..3).any(|left| leases.refill_due(&"d", left)),
            "too small to bother"
        );
    }

    #[test]
    fn a_busy_client_asks_for_more_and_a_slow_one_for_one() {
        let leases: Leases<&str, ()> = Leases::new(Duration::from_millis(250), 64);
        // Three units used within a few microseconds: the rate asks for the maximum.
        leases.fill("busy", 3, 3, ());
        assert_eq!(leases.want(&"busy", 1), 64);
        // One unit in 300 ms: a quarter of a second needs one.
        leases.fill("slow", 1, 1, ());
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(leases.want(&"slow", 1), 1);
        // Never below what one request needs.
        assert_eq!(leases.want(&"slow", 3), 3);
    }

    #[test]
    fn unused_units_come_back_when_the_lease_runs_out_or_is_replaced() {
        let leases: Leases<&str, u8> = Leases::new(Duration::from_millis(50), 64);
        leases.fill("a", 5, 1, 1);
        assert_eq!(
            leases.fill("a", 4, 1, 2),
            Some(Unused {
                key: "a",
                units: 4,
                meta: 1
            }),
            "the replaced lease's four units"
        );
        assert!(leases.collect(false).is_empty(), "still live");
        assert_eq!(
            leases.end(&"a"),
            Some(Unused {
                key: "a",
                units: 3,
                meta: 2
            }),
            "ended at once"
        );
        assert_eq!(leases.end(&"a"), None, "nothing left");
        leases.fill("a", 4, 1, 2);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(leases.take(&"a", 1), None, "run out of time");
        assert_eq!(
            leases.collect(false),
            vec![Unused {
                key: "a",
                units: 3,
                meta: 2
            }]
        );
        assert!(leases.collect(false).is_empty(), "given back once");
        assert_eq!(leases.kept(), 1, "remembered for sizing");
        // Run out of time and replaced before it was collected: still given back.
        leases.fill("c", 5, 1, 4);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(
            leases.fill("c", 2, 1, 5),
            Some(Unused {
                key: "c",
                units: 4,
                meta: 4
            })
        );
        leases.fill("b", 2, 0, 3);
        assert_eq!(
            leases.collect(true).len(),
            2,
            "all, on the way out (b's and c's)"
        );
    }
}
