//! How long to wait: a limit on each network step, so a stalled server costs a bounded time,
//! and a backoff between attempts, so a failing link or a busy server is not hammered.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use crate::error::{Error, Result};

/// When a network step (connect, send, the next chunk of a body) must have finished.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The caller's deadline for the whole operation.
    pub deadline: Option<Instant>,
    /// How long one step may go without progress.
    pub io_timeout: Duration,
}

impl Limits {
    pub fn deadline_passed(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Runs one step. At the caller's deadline it fails with `DeadlineReached`; a step that only
    /// stalled fails with `Network`, which a sync retries.
    pub async fn step<T>(&self, what: &str, step: impl Future<Output = Result<T>>) -> Result<T> {
        let stall = Instant::now() + self.io_timeout;
        let until = self.deadline.map_or(stall, |d| d.min(stall));
        match tokio::time::timeout_at(until, step).await {
            Ok(result) => result,
            Err(_) if self.deadline_passed() => Err(Error::DeadlineReached),
            Err(_) => Err(Error::Network(format!(
                "{what}: no progress from the server in {:?}",
                self.io_timeout
            ))),
        }
    }
}

/// Exponential backoff with full jitter: the wait before attempt `n + 1` is uniform in
/// `[0, min(max, base * 2^(n-1))]`, which spreads out devices that lost signal together.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The longest wait after `failures` consecutive failures (at least one).
    pub fn ceiling(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.base.saturating_mul(1 << doublings).min(self.max)
    }

    pub fn delay(&self, failures: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling(failures).as_nanos().min(u64::MAX as u128) as u64;
        Duration::from_nanos(rng.random_range(0..=ceiling))
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    const BACKOFF: Backoff = Backoff {
        base: Duration::from_millis(200),
        max: Duration::from_secs(30),
    };

    #[test]
    fn the_ceiling_doubles_from_the_base_up_to_the_cap() {
        assert_eq!(BACKOFF.ceiling(0), Duration::from_millis(200));
        assert_eq!(BACKOFF.ceiling(1), Duration::from_millis(200));
        assert_eq!(BACKOFF.ceiling(2), Duration::from_millis(400));
        assert_eq!(BACKOFF.ceiling(3), Duration::from_millis(800));
        assert_eq!(BACKOFF.ceiling(8), Duration::from_millis(25_600));
        assert_eq!(BACKOFF.ceiling(9), Duration::from_secs(30));
        assert_eq!(BACKOFF.ceiling(u32::MAX), Duration::from_secs(30));
        let huge = Backoff {
            base: Duration::MAX,
            max: Duration::MAX,
        };
        assert_eq!(huge.ceiling(40), Duration::MAX);
    }

    #[test]
    fn delays_stay_within_the_ceiling_and_are_spread_out() {
        let mut rng = StdRng::seed_from_u64(7);
        for failures in 1..=12 {
            let ceiling = BACKOFF.ceiling(failures);
            let delays: Vec<Duration> = (0..500).map(|_| BACKOFF.delay(failures, &mut rng)).collect();
            assert!(delays.iter().all(|d| *d <= ceiling), "attempt {failures}");
            // Full jitter: both short and long waits occur, not just waits near the ceiling.
            assert!(delays.iter().any(|d| *d < ceiling / 4), "attempt {failures}");
            assert!(delays.iter().any(|d| *d > ceiling * 3 / 4), "attempt {failures}");
        }
    }

    #[test]
    fn a_zero_base_never_waits() {
        let none = Backoff {
            base: Duration::ZERO,
            max: Duration::from_secs(1),
        };
        assert_eq!(none.delay(5, &mut StdRng::seed_from_u64(1)), Duration::ZERO);
    }

    #[tokio::test]
    async fn a_stalled_step_is_a_network_error_and_the_deadline_is_its_own() {
        let pending = || std::future::pending::<Result<()>>();
        let limits = Limits {
            deadline: None,
            io_timeout: Duration::from_millis(20),
        };
        assert!(matches!(limits.step("connect", pending()).await, Err(Error::Network(m)) if m.contains("connect")));

        let limits = Limits {
            deadline: Some(Instant::now() + Duration::from_millis(20)),
            io_timeout: Duration::from_secs(60),
        };
        assert!(matches!(
            limits.step("send", pending()).await,
            Err(Error::DeadlineReached)
        ));
        assert!(limits.deadline_passed());
    }
}
