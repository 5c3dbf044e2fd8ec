//! Rate limits: a token bucket per key (a device for syncs, a client address for enrolment), so
//! one device's flood of tiny syncs, or one address's stream of enrolment attempts, cannot take
//! the server's time from everyone else. Each request takes a token; a key holds at most `burst`
//! tokens and earns `per_second` back. Kept in memory: a restart forgets them, which costs at most
//! one burst per key.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use outpost_core::DeviceId;

use crate::error::{Error, Result};

/// Buckets kept before idle ones (refilled to full, so indistinguishable from new) are dropped.
const MAX_KEYS: usize = 10_000;

/// How many requests a key may make at once, and how fast its allowance comes back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub burst: u32,
    pub per_second: f64,
}

impl Rate {
    /// Reads `"<burst>/<per second>"` (`"60/2"`, `"10/0.1"`), or `"off"` for no limit.
    pub fn parse(text: &str) -> Result<Option<Self>, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let bad = || format!("{text:?} is not <burst>/<per second> (such as 60/2) or off");
        let (burst, per_second) = text.split_once('/').ok_or_else(bad)?;
        let burst: u32 = burst.trim().parse().map_err(|_| bad())?;
        let per_second: f64 = per_second.trim().parse().map_err(|_| bad())?;
        if burst == 0 || !(per_second.is_finite() && per_second > 0.0) {
            return Err(format!("{text:?}: the burst and the rate must both be above zero"));
        }
        Ok(Some(Self { burst, per_second }))
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // "60 at once, then 2 a second"; "20 at once, then one every 6 s".
        let short = |n: f64| {
            let text = format!("{n:.1}");
            text.strip_suffix(".0").map(str::to_string).unwrap_or(text)
        };
        if self.per_second >= 1.0 {
            write!(f, "{} at once, then {} a second", self.burst, short(self.per_second))
        } else {
            write!(
                f,
                "{} at once, then one every {} s",
                self.burst,
                short(1.0 / self.per_second)
            )
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A token bucket per key, or no limit at all.
#[derive(Debug)]
pub struct Limiter<K> {
    /// What is counted, for the refusal: "syncs from this device".
    what: &'static str,
    rate: Option<Rate>,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Eq + Hash + Clone> Limiter<K> {
    pub fn new(what: &'static str, rate: Option<Rate>) -> Self {
        Self {
            what,
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn rate(&self) -> Option<Rate> {
        self.rate
    }

    /// Takes a token for `key` now, or refuses with `Error::RateLimited`.
    pub fn check(&self, key: &K) -> Result<()> {
        self.check_at(key, Instant::now())
    }

    /// Takes a token for `key` at `now`, or refuses naming the limit and how long to wait.
    pub fn check_at(&self, key: &K, now: Instant) -> Result<()> {
        let Some(rate) = self.rate else {
            return Ok(());
        };
        let mut buckets = self
            .buckets
            .lock()
            .map_err(|_| Error::Internal("the rate limiter's lock was poisoned".into()))?;
        let burst = f64::from(rate.burst);
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(key) {
            buckets.retain(|_, b| refill(b, now, rate) < burst);
            if buckets.len() >= MAX_KEYS {
                // Every key is mid-burst (a spray of addresses): starting over costs each key at
                // most one burst, where refusing new keys would lock out everyone new.
                buckets.clear();
            }
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket { tokens: burst, at: now });
        let tokens = refill(bucket, now, rate);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            return Ok(());
        }
        *bucket = Bucket { tokens, at: now };
        Err(Error::RateLimited {
            what: self.what.to_string(),
            rate,
            retry_after: Duration::from_secs_f64((1.0 - tokens) / rate.per_second),
        })
    }
}

/// The tokens `bucket` holds at `now`, never more than the burst.
fn refill(bucket: &Bucket, now: Instant, rate: Rate) -> f64 {
    let earned = now.saturating_duration_since(bucket.at).as_secs_f64() * rate.per_second;
    (bucket.tokens + earned).min(f64::from(rate.burst))
}

/// Every limit the server applies.
#[derive(Debug)]
pub struct RateLimits {
    /// Sync requests per device, counted right after the device authenticates.
    pub sync: Limiter<DeviceId>,
    /// Enrolment attempts per client address (as `access::client_addr` finds it).
    pub enrol: Limiter<String>,
}

impl RateLimits {
    /// A device syncs every few minutes, a few rounds each time: a burst of 60 and 2 a second
    /// leave an honest device, even one catching up page by page, well clear of the limit.
    pub const SYNC: Rate = Rate {
        burst: 60,
        per_second: 2.0,
    };
    /// Enrolment is rare; an office enrolling a box of phones from one address gets 20 at once,
    /// then one every 6 seconds.
    pub const ENROL: Rate = Rate {
        burst: 20,
        per_second: 1.0 / 6.0,
    };

    pub fn new(sync: Option<Rate>, enrol: Option<Rate>) -> Self {
        Self {
            sync: Limiter::new("syncs from this device", sync),
            enrol: Limiter::new("enrolment attempts from this address", enrol),
        }
    }

    /// No limits (a benchmark that drives one device as fast as it can).
    pub fn off() -> Self {
        Self::new(None, None)
    }

    /// The defaults, overridden by `OUTPOST_SYNC_RATE` and `OUTPOST_ENROL_RATE` (each
    /// `<burst>/<per second>`, or `off`).
    pub fn from_env() -> Result<Self, String> {
        let read = |name: &str, default: Rate| match std::env::var(name) {
            Ok(value) => Rate::parse(&value).map_err(|e| format!("{name}: {e}")),
            Err(_) => Ok(Some(default)),
        };
        Ok(Self::new(
            read("OUTPOST_SYNC_RATE", Self::SYNC)?,
            read("OUTPOST_ENROL_RATE", Self::ENROL)?,
        ))
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::new(Some(Self::SYNC), Some(Self::ENROL))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: Rate = Rate {
        burst: 3,
        per_second: 2.0,
    };

    fn limited(result: Result<()>) -> Duration {
        match result {
            Err(Error::RateLimited { retry_after, .. }) => retry_after,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_burst_is_allowed_then_the_rate_and_each_key_has_its_own() {
        let limiter = Limiter::new("syncs", Some(RATE));
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.check_at(&"a", t0).unwrap();
        }
        let wait = limited(limiter.check_at(&"a", t0));
        assert_eq!(wait, Duration::from_millis(500));
        // Another key is untouched by the first one's flood.
        limiter.check_at(&"b", t0).unwrap();
        // Half a second earns one token back, and only one.
        let t1 = t0 + Duration::from_millis(500);
        limiter.check_at(&"a", t1).unwrap();
        assert!(limited(limiter.check_at(&"a", t1)) > Duration::ZERO);
        // A long pause refills to the burst, never beyond.
        let t2 = t1 + Duration::from_secs(3600);
        for _ in 0..3 {
            limiter.check_at(&"a", t2).unwrap();
        }
        limited(limiter.check_at(&"a", t2));
    }

    #[test]
    fn a_refused_request_takes_no_token() {
        let limiter = Limiter::new("syncs", Some(RATE));
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.check_at(&"a", t0).unwrap();
        }
        // Hammering while refused does not push the next allowed request further away.
        for _ in 0..100 {
            limited(limiter.check_at(&"a", t0 + Duration::from_millis(100)));
        }
        limiter.check_at(&"a", t0 + Duration::from_millis(600)).unwrap();
    }

    #[test]
    fn the_refusal_names_the_limit() {
        let limiter = Limiter::new("syncs from this device", Some(RATE));
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.check_at(&"a", t0).unwrap();
        }
        let message = limiter.check_at(&"a", t0).unwrap_err().to_string();
        assert!(
            message.contains("too many syncs from this device") && message.contains("3 at once, then 2 a second"),
            "{message}"
        );
        let slow = Rate {
            burst: 20,
            per_second: 1.0 / 6.0,
        };
        assert_eq!(slow.to_string(), "20 at once, then one every 6 s");
    }

    #[test]
    fn idle_keys_are_forgotten_and_the_map_stays_bounded() {
        let limiter = Limiter::new("enrolments", Some(RATE));
        let t0 = Instant::now();
        for i in 0..MAX_KEYS {
            limiter.check_at(&i, t0).unwrap();
        }
        // Later every bucket has refilled: a new key makes room by dropping them.
        limiter.check_at(&MAX_KEYS, t0 + Duration::from_secs(10)).unwrap();
        assert_eq!(limiter.buckets.lock().unwrap().len(), 1);
        // A spray of keys all mid-burst is bounded too.
        for i in 0..(2 * MAX_KEYS) {
            limiter
                .check_at(&(i + 1_000_000), t0 + Duration::from_secs(20))
                .unwrap();
        }
        assert!(limiter.buckets.lock().unwrap().len() <= MAX_KEYS);
    }

    #[test]
    fn rates_parse_or_are_refused_by_name() {
        assert_eq!(Rate::parse("60/2"), Ok(Some(RateLimits::SYNC)));
        assert_eq!(
            Rate::parse(" 10 / 0.5 "),
            Ok(Some(Rate {
                burst: 10,
                per_second: 0.5
            }))
        );
        assert_eq!(Rate::parse("OFF"), Ok(None));
        for bad in ["60", "x/2", "60/y", "0/2", "60/0", "60/-1", "60/inf", "60/NaN"] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
        assert!(Limiter::new("anything", None).check(&1).is_ok());
    }
}
