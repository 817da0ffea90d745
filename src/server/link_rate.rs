//! The rate limits of the routes that need no key, so that no key's rate applies:
//! - share-link reads (`/v1/shared/…` and the follower's page `/t/…`), per client address
//!   ([`LinkRate`], `--link-rate`): whoever holds a link could otherwise read a long route
//!   as fast as the server answers;
//! - trackers' reports (`/v1/ingest/…`), per device ([`DeviceRate`], `--device-rate`): a
//!   device token is a credential like a key, and is limited like one; and OwnTracks'
//!   friends answer, computed at most once a period per device ([`KeyedRate::once_per`]).
//!
//! Each key gets a token bucket (`governor`, keyed) of so many requests a second with a
//! burst of twice that. The buckets are forgotten once full again (`retain_recent`),
//! whenever more than [`TIDY_AT`] keys are held, so many keys cost memory only while they
//! are busy.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Keys held before the full buckets are forgotten.
const TIDY_AT: usize = 10_000;

/// Requests per key, a token bucket each.
pub struct KeyedRate<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    /// When it was made, and the second since then of the last tidy.
    started: Instant,
    tidied_at: AtomicU64,
    /// Requests a second.
    pub per_second: NonZeroU32,
}

/// Share-link reads per client address.
pub type LinkRate = KeyedRate<IpAddr>;
/// Trackers' reports per device id.
pub type DeviceRate = KeyedRate<String>;

impl<K: Hash + Eq + Clone> std::fmt::Debug for KeyedRate<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedRate")
            .field("per_second", &self.per_second)
            .finish_non_exhaustive()
    }
}

impl<K: Hash + Eq + Clone> KeyedRate<K> {
    /// Forgets the full buckets, at most once a second: it locks every shard of the map in
    /// turn, and doing it on every request past [`TIDY_AT`] keys (10,000 devices reporting
    /// within the friends' period, say) would make every caller wait on every shard.
    fn tidy(&self) {
        let now = self.started.elapsed().as_secs() + 1;
        let last = self.tidied_at.load(Ordering::Relaxed);
        if now > last
            && self
                .tidied_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.limiter.retain_recent();
        }
    }

    /// `per_second` requests a second per key, bursts of twice that.
    pub fn new(per_second: NonZeroU32) -> Self {
        let burst = per_second.saturating_mul(NonZeroU32::new(2).expect("two"));
        Self {
            limiter: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
            started: Instant::now(),
            tidied_at: AtomicU64::new(0),
            per_second,
        }
    }

    /// One request per `period` per key, no burst: for work a key may ask for now and then
    /// (OwnTracks' friends answer).
    pub fn once_per(period: Duration) -> Self {
        let quota = Quota::with_period(period).expect("a period longer than zero");
        Self {
            limiter: RateLimiter::keyed(quota),
            started: Instant::now(),
            tidied_at: AtomicU64::new(0),
            per_second: NonZeroU32::MIN,
        }
    }

    /// Takes a token for `key`; `Err(wait)` if its bucket is empty.
    pub fn take(&self, key: K) -> Result<(), Duration> {
        if self.limiter.len() > TIDY_AT {
            self.tidy();
        }
        // The limiter's own clock: making a clock calibrates it (cpuid), which cost a third
        // of the server's time when most requests were refused (OwnTracks' friends answer,
        // profiled), and would make refusing a flood dearer than serving it.
        self.limiter.check_key(&key).map_err(|not_until| {
            not_until.wait_time_from(governor::clock::Clock::now(self.limiter.clock()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_own_bucket() {
        let rate = LinkRate::new(NonZeroU32::new(5).expect("five"));
        let a: IpAddr = "192.0.2.1".parse().expect("an address");
        let b: IpAddr = "192.0.2.2".parse().expect("an address");
        for _ in 0..10 {
            assert!(rate.take(a).is_ok(), "a burst of twice the rate");
        }
        assert!(rate.take(a).is_err(), "then refused");
        assert!(rate.take(b).is_ok(), "another address is not");
    }
}
