//! The one place wsconn waits: bounded polling and bounded retries on a dense schedule.
//!
//! AWS's waits are short and their end cannot be predicted (IAM propagation typically
//! 2–8 s, a new table 5–20 s, a new function 1–5 s). Every poll past the moment the
//! resource is ready adds straight to the deploy's wall time, so the schedule starts at
//! 100 ms and grows by half each time, capped at 0.25 s for the first 10 s, 1 s up to
//! 30 s and 2 s after that: at most a quarter of a second of overshoot on the common
//! waits, and few calls on the rare long ones. cdkd polls IAM propagation the same way
//! (0.25 s first, capped at 2 s). A retry that uploads a package each time is spaced by
//! the package's size ([`upload_spacing`]).

use crate::error::{Error, Result};
use std::future::Future;
use std::time::{Duration, Instant};

const FIRST_DELAY: Duration = Duration::from_millis(100);

/// The delay after `prev`, when `elapsed` has passed since the wait began.
pub fn next_delay(prev: Duration, elapsed: Duration) -> Duration {
    let cap = if elapsed < Duration::from_secs(10) {
        Duration::from_millis(250)
    } else if elapsed < Duration::from_secs(30) {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(2)
    };
    (prev.mul_f64(1.5)).min(cap)
}

/// A running schedule: each `sleep` waits the next delay, or returns false when the
/// deadline would be passed.
pub struct Schedule {
    start: Instant,
    limit: Duration,
    delay: Duration,
    /// No delay is shorter than this (a retry that uploads a large package).
    floor: Duration,
}

impl Schedule {
    pub fn new(limit: Duration) -> Schedule {
        Schedule::spaced(limit, Duration::ZERO)
    }
    /// A schedule whose delays are never shorter than `floor`.
    pub fn spaced(limit: Duration, floor: Duration) -> Schedule {
        Schedule {
            start: Instant::now(),
            limit,
            delay: FIRST_DELAY.max(floor),
            floor,
        }
    }
    pub async fn sleep(&mut self) -> bool {
        if self.start.elapsed() + self.delay > self.limit {
            return false;
        }
        tokio::time::sleep(self.delay).await;
        self.delay = next_delay(self.delay, self.start.elapsed()).max(self.floor);
        true
    }
}

/// The least spacing of retries that send `bytes` each time (CreateFunction re-sends its
/// package): 0.1 s per MB, at most 2 s, so a large package is not uploaded four times a
/// second while IAM propagates.
pub fn upload_spacing(bytes: usize) -> Duration {
    Duration::from_millis((bytes / (1024 * 1024)) as u64 * 100).min(Duration::from_secs(2))
}

/// Polls `check` until it returns `Some`, or fails with [`Error::Timeout`] after `limit`.
pub async fn until<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let mut schedule = Schedule::new(limit);
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if !schedule.sleep().await {
            return Err(Error::Timeout {
                what: what.to_string(),
                secs: limit.as_secs(),
            });
        }
    }
}

/// Runs `op` again while it fails with an error `retryable` accepts, for at most `limit`.
/// The last error is returned when time runs out, so the user sees AWS's own words.
pub async fn retrying<T, F, Fut>(limit: Duration, retryable: fn(&Error) -> bool, op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    retrying_spaced(limit, Duration::ZERO, retryable, op).await
}

/// [`retrying`], with no delay shorter than `floor` (see [`upload_spacing`]).
pub async fn retrying_spaced<T, F, Fut>(
    limit: Duration,
    floor: Duration,
    retryable: fn(&Error) -> bool,
    mut op: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut schedule = Schedule::spaced(limit, floor);
    loop {
        match op().await {
            Err(e) if retryable(&e) => {
                if !schedule.sleep().await {
                    return Err(e);
                }
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_dense_first_and_capped() {
        let mut d = FIRST_DELAY;
        let mut total = Duration::ZERO;
        let mut first_second = 0;
        while total < Duration::from_secs(9) {
            total += d;
            if total <= Duration::from_secs(1) {
                first_second += 1;
            }
            d = next_delay(d, total);
            assert!(d <= Duration::from_millis(250), "{d:?} at {total:?}");
        }
        assert!(
            first_second >= 4,
            "{first_second} polls in the first second"
        );
        assert_eq!(
            next_delay(Duration::from_secs(1), Duration::from_secs(20)),
            Duration::from_secs(1)
        );
        assert_eq!(
            next_delay(Duration::from_secs(2), Duration::from_secs(60)),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn large_uploads_are_spaced_and_small_ones_are_not() {
        assert_eq!(upload_spacing(4 * 1024), Duration::ZERO);
        assert_eq!(upload_spacing(5 * 1024 * 1024), Duration::from_millis(500));
        assert_eq!(upload_spacing(50 * 1024 * 1024), Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_spaced_schedule_never_sleeps_less_than_its_floor() {
        let mut s = Schedule::spaced(Duration::from_secs(5), Duration::from_millis(300));
        let t = Instant::now();
        assert!(s.sleep().await);
        assert!(
            t.elapsed() >= Duration::from_millis(300),
            "{:?}",
            t.elapsed()
        );
    }

    #[tokio::test]
    async fn until_times_out_with_the_subject_named() {
        let r: Result<()> = until(
            "table t to become ACTIVE",
            Duration::from_millis(300),
            || async { Ok(None) },
        )
        .await;
        let msg = r.unwrap_err().to_string();
        assert!(msg.starts_with("table t to become ACTIVE"), "{msg}");
    }

    #[tokio::test]
    async fn retrying_stops_on_non_retryable_errors() {
        let mut calls = 0;
        let r: Result<()> = retrying(
            Duration::from_secs(5),
            |_| false,
            || {
                calls += 1;
                async { Err(Error::Conflict("no".into())) }
            },
        )
        .await;
        // The operation's own error comes back, after one call.
        assert!(matches!(&r, Err(Error::Conflict(m)) if m == "no"), "{r:?}");
        assert_eq!(calls, 1);
    }

    #[tokio::test]
    async fn retrying_retries_until_success() {
        let mut calls = 0;
        let r = retrying(
            Duration::from_secs(5),
            |_| true,
            || {
                calls += 1;
                let n = calls;
                async move {
                    if n < 3 {
                        Err(Error::Conflict("busy".into()))
                    } else {
                        Ok(n)
                    }
                }
            },
        )
        .await;
        assert_eq!(r.unwrap(), 3);
    }
}
