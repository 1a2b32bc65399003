//! The one place wsconn waits: bounded polling and bounded retries with backoff.

use crate::error::{Error, Result};
use std::future::Future;
use std::time::{Duration, Instant};

/// Backoff schedule: 200 ms doubling to 5 s.
fn next_delay(d: Duration) -> Duration {
    (d * 2).min(Duration::from_secs(5))
}

const FIRST_DELAY: Duration = Duration::from_millis(200);

/// Polls `check` until it returns `Some`, or fails with [`Error::Timeout`] after `limit`.
pub async fn until<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let start = Instant::now();
    let mut delay = FIRST_DELAY;
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if start.elapsed() + delay > limit {
            return Err(Error::Timeout {
                what: what.to_string(),
                secs: limit.as_secs(),
            });
        }
        tokio::time::sleep(delay).await;
        delay = next_delay(delay);
    }
}

/// Runs `op` again while it fails with an error `retryable` accepts, for at most `limit`.
/// The last error is returned when time runs out, so the user sees AWS's own words.
pub async fn retrying<T, F, Fut>(
    limit: Duration,
    retryable: fn(&Error) -> bool,
    mut op: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let start = Instant::now();
    let mut delay = FIRST_DELAY;
    loop {
        match op().await {
            Err(e) if retryable(&e) && start.elapsed() + delay <= limit => {
                tokio::time::sleep(delay).await;
                delay = next_delay(delay);
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped() {
        let mut d = FIRST_DELAY;
        for _ in 0..20 {
            d = next_delay(d);
        }
        assert_eq!(d, Duration::from_secs(5));
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
        assert!(r.is_err());
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
