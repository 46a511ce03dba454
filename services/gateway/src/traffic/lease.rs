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
//! is taken in the background when an eighth of the current one is left ([`Taken::refill`]), so
//! a busy client's requests do not wait for the refill.

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

/// A unit (or several) handed out from a lease.
#[derive(Debug, PartialEq)]
pub struct Taken<M> {
    pub meta: M,
    /// Units left in the lease after this take.
    pub left: u64,
    /// This take left an eighth of a lease of eight units or more: time to take the next lease in
    /// the background, so that no request waits for it (true once per lease).
    pub refill: bool,
}

/// The leases by key, and the unused units of leases replaced or ended early, waiting for
/// [`Leases::collect`].
#[derive(Debug)]
struct Book<K, M> {
    leases: HashMap<K, Lease<M>>,
    unused: Vec<Unused<K, M>>,
}

/// The leases of one replica, by key, each with what the caller needs to hand a unit out or give
/// the rest back (`M`). Units a lease did not hand out are only ever given back through
/// [`Leases::collect`], whether it ran out of time, was replaced or was ended.
#[derive(Debug)]
pub struct Leases<K, M> {
    book: Mutex<Book<K, M>>,
    lifetime: Duration,
    max_units: u64,
}

impl<K: Eq + Hash + Clone, M: Clone> Leases<K, M> {
    pub fn new(lifetime: Duration, max_units: u64) -> Self {
        Self {
            book: Mutex::new(Book {
                leases: HashMap::new(),
                unused: Vec::new(),
            }),
            lifetime,
            max_units: max_units.max(1),
        }
    }

    /// Take `n` units from `key`'s lease while it lasts.
    pub fn take(&self, key: &K, n: u64) -> Option<Taken<M>> {
        let mut book = self.book.lock().ok()?;
        let lease = book.leases.get_mut(key)?;
        if lease.left < n || lease.filled.elapsed() >= self.lifetime {
            return None;
        }
        let refill_at = lease.size / 8;
        let refill = lease.size >= 8 && lease.left > refill_at && lease.left - n <= refill_at;
        lease.left -= n;
        lease.used += n;
        Some(Taken {
            meta: lease.meta.clone(),
            left: lease.left,
            refill,
        })
    }

    /// How many units to ask for next for `key`: what it used of its last lease, scaled to one
    /// lifetime, between `min` and the maximum (`min` for a key without a lease).
    pub fn want(&self, key: &K, min: u64) -> u64 {
        let Ok(book) = self.book.lock() else {
            return min;
        };
        let Some(lease) = book.leases.get(key) else {
            return min;
        };
        let elapsed = lease.filled.elapsed().max(Duration::from_millis(1));
        let rate = lease.used as f64 / elapsed.as_secs_f64();
        let want = (rate * self.lifetime.as_secs_f64()).ceil() as u64;
        want.clamp(min, self.max_units.max(min))
    }

    /// The metadata of `key`'s last lease, live or not.
    pub fn last(&self, key: &K) -> Option<M> {
        self.book
            .lock()
            .ok()?
            .leases
            .get(key)
            .map(|l| l.meta.clone())
    }

    /// Keep a lease of `granted` units for `key`, `taken` of them handed out at once. The unused
    /// units of a lease it replaces (filled concurrently, or run out of time and not collected
    /// yet) wait for [`Leases::collect`].
    pub fn fill(&self, key: K, granted: u64, taken: u64, meta: M) {
        let lease = Lease {
            left: granted.saturating_sub(taken),
            used: taken.min(granted),
            size: granted,
            filled: Instant::now(),
            meta,
        };
        let Ok(mut book) = self.book.lock() else {
            return;
        };
        if let Some(old) = book.leases.insert(key.clone(), lease)
            && old.left > 0
        {
            book.unused.push(Unused {
                key,
                units: old.left,
                meta: old.meta,
            });
        }
    }

    /// End `key`'s lease now; its unused units wait for [`Leases::collect`].
    pub fn end(&self, key: &K) {
        let Ok(mut book) = self.book.lock() else {
            return;
        };
        let book = &mut *book;
        if let Some(lease) = book.leases.get_mut(key)
            && lease.left > 0
        {
            book.unused.push(Unused {
                key: key.clone(),
                units: std::mem::take(&mut lease.left),
                meta: lease.meta.clone(),
            });
        }
    }

    /// The unused units of leases replaced or ended, and of those that have run out of time
    /// (of every lease when `all`), each returned once; keys idle for long are forgotten.
    pub fn collect(&self, all: bool) -> Vec<Unused<K, M>> {
        let Ok(mut book) = self.book.lock() else {
            return Vec::new();
        };
        let book = &mut *book;
        let mut unused = std::mem::take(&mut book.unused);
        book.leases.retain(|key, lease| {
            let age = lease.filled.elapsed();
            if lease.left > 0 && (all || age >= self.lifetime) {
                unused.push(Unused {
                    key: key.clone(),
                    units: std::mem::take(&mut lease.left),
                    meta: lease.meta.clone(),
                });
            }
            age < FORGET_AFTER
        });
        unused
    }

    /// Leases currently kept (live or remembered for sizing).
    #[cfg(test)]
    fn kept(&self) -> usize {
        self.book.lock().map(|b| b.leases.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken(meta: u8, left: u64, refill: bool) -> Option<Taken<u8>> {
        Some(Taken { meta, left, refill })
    }

    #[test]
    fn units_are_handed_out_until_the_lease_is_spent() {
        let leases: Leases<&str, u8> = Leases::new(Duration::from_secs(60), 64);
        assert_eq!(leases.take(&"a", 1), None, "no lease yet");
        assert_eq!(leases.want(&"a", 1), 1, "a new client starts at one unit");
        leases.fill("a", 3, 1, 7);
        assert_eq!(leases.take(&"a", 1), taken(7, 1, false));
        assert_eq!(leases.take(&"a", 2), None, "only one left");
        assert_eq!(leases.take(&"a", 1), taken(7, 0, false));
        assert_eq!(leases.take(&"a", 1), None);
        assert_eq!(leases.take(&"b", 1), None, "leases are per key");
    }

    #[test]
    fn the_take_that_leaves_an_eighth_asks_for_the_next_lease_once() {
        let leases: Leases<&str, u8> = Leases::new(Duration::from_secs(60), 64);
        leases.fill("c", 16, 1, 0);
        let due: Vec<u64> = (0..15)
            .filter_map(|_| leases.take(&"c", 1))
            .filter(|t| t.refill)
            .map(|t| t.left)
            .collect();
        assert_eq!(due, vec![2]);
        // Taking several at once crosses the mark as well.
        leases.fill("e", 16, 0, 0);
        assert!(!leases.take(&"e", 13).is_some_and(|t| t.refill));
        assert!(
            leases
                .take(&"e", 2)
                .is_some_and(|t| t.refill && t.left == 1)
        );
        // A small lease is not worth it.
        leases.fill("d", 4, 0, 0);
        assert!((0..4).all(|_| leases.take(&"d", 1).is_some_and(|t| !t.refill)));
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
    fn unused_units_come_back_once_whether_run_out_replaced_or_ended() {
        let leases: Leases<&str, u8> = Leases::new(Duration::from_millis(50), 64);
        let unused = |key, units, meta| Unused { key, units, meta };
        // Replaced while live.
        leases.fill("a", 5, 1, 1);
        leases.fill("a", 4, 1, 2);
        assert_eq!(leases.collect(false), vec![unused("a", 4, 1)]);
        assert!(
            leases.collect(false).is_empty(),
            "given back once; the new one is live"
        );
        // Ended early.
        leases.end(&"a");
        assert_eq!(leases.take(&"a", 1), None, "ended");
        assert_eq!(leases.collect(false), vec![unused("a", 3, 2)]);
        // Run out of time.
        leases.fill("a", 4, 1, 3);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(leases.take(&"a", 1), None, "run out of time");
        assert_eq!(leases.collect(false), vec![unused("a", 3, 3)]);
        assert!(leases.collect(false).is_empty(), "given back once");
        assert_eq!(leases.kept(), 1, "remembered for sizing");
        // Run out of time and replaced before it was collected: still given back.
        leases.fill("c", 5, 1, 4);
        std::thread::sleep(Duration::from_millis(60));
        leases.fill("c", 2, 1, 5);
        assert_eq!(leases.collect(false), vec![unused("c", 4, 4)]);
        // Everything on the way out.
        leases.fill("b", 2, 0, 6);
        let mut all = leases.collect(true);
        all.sort_by_key(|u| u.key);
        assert_eq!(all, vec![unused("b", 2, 6), unused("c", 1, 5)]);
    }
}
