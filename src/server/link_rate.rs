//! The rate limit of share-link reads (`/v1/shared/…` and the follower's page `/t/…`):
//! they need no key, so no key's rate applies, and whoever holds a link could otherwise
//! read a long route as fast as the server answers. Each client address gets a token bucket
//! (`governor`, keyed) of `--link-rate` requests a second with a burst of twice that.
//!
//! The buckets are forgotten once full again (`retain_recent`), whenever more than
//! [`TIDY_AT`] addresses are held, so many addresses cost memory only while they are busy.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Addresses held before the full buckets are forgotten.
const TIDY_AT: usize = 10_000;

/// Share-link reads per client address.
pub struct LinkRate {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// Requests a second.
    pub per_second: NonZeroU32,
}

impl std::fmt::Debug for LinkRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkRate")
            .field("per_second", &self.per_second)
            .finish_non_exhaustive()
    }
}

impl LinkRate {
    /// `per_second` requests a second per address, bursts of twice that.
    pub fn new(per_second: NonZeroU32) -> Self {
        let burst = per_second.saturating_mul(NonZeroU32::new(2).expect("two"));
        Self {
            limiter: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
            per_second,
        }
    }

    /// Takes a token for `address`; `Err(wait)` if its bucket is empty.
    pub fn take(&self, address: IpAddr) -> Result<(), Duration> {
        if self.limiter.len() > TIDY_AT {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&address).map_err(|not_until| {
            not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ))
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
