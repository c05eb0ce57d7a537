//! Retry timing: exponential backoff with jitter, and `Retry-After`. Pure functions of the
//! attempt count, the policy and a random sample, so they can be tested as tables.

use std::time::Duration;

use crate::config::RetryPolicy;

/// The wait before retrying after `attempts` failed attempts (1 = the first failure).
///
/// `initial_backoff × 2^(attempts−1)`, capped at `max_backoff`, then scaled by a jitter factor
/// in [0.5, 1.0] taken from `sample` (uniform in [0, 1)): "equal jitter" keeps at least half
/// the backoff, so a retry storm spreads out without ever retrying immediately.
pub fn backoff(policy: &RetryPolicy, attempts: u32, sample: f64) -> Duration {
    let exp = attempts.saturating_sub(1).min(31);
    let base = policy
        .initial_backoff
        .saturating_mul(1u32 << exp)
        .min(policy.max_backoff);
    base.mul_f64(0.5 + 0.5 * sample.clamp(0.0, 1.0))
}

/// Parse a `Retry-After` header given in seconds. HTTP dates are not used by Slack; anything
/// that is not a plain non-negative number is unusable (the caller backs off instead).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    let secs: f64 = v.parse().ok()?;
    (secs.is_finite() && (0.0..=86_400.0).contains(&secs)).then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 8,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
        }
    }

    #[test]
    fn doubles_and_caps() {
        let cases = [(1, 1), (2, 2), (3, 4), (9, 256), (10, 300), (40, 300)];
        for (attempts, secs) in cases {
            assert_eq!(
                backoff(&policy(), attempts, 1.0),
                Duration::from_secs(secs),
                "attempt {attempts}"
            );
        }
    }

    #[test]
    fn jitter_keeps_at_least_half() {
        assert_eq!(backoff(&policy(), 3, 0.0), Duration::from_secs(2));
        assert_eq!(backoff(&policy(), 3, 0.5), Duration::from_secs(3));
    }

    #[test]
    fn retry_after_parsing() {
        assert_eq!(parse_retry_after("30"), Some(Duration::from_secs(30)));
        assert_eq!(
            parse_retry_after(" 1.5 "),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_retry_after("0"), Some(Duration::ZERO));
        for bad in [
            "",
            "-1",
            "soon",
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "NaN",
            "1e9",
        ] {
            assert_eq!(parse_retry_after(bad), None, "{bad:?}");
        }
    }
}
