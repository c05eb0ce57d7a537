//! Retry timing: exponential backoff with jitter, and `Retry-After`. Pure functions of the
//! attempt count, the policy and a random sample, so they can be tested as tables.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};

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

/// How long a `Retry-After` header asks us to wait, counted from `now` (the time of the
/// response it came with). `None` when it is unusable — negative, empty, or neither form —
/// and the caller backs off as for a transient failure (SPEC §4).
///
/// Both forms of RFC 9110 §10.2.3 are accepted: delta-seconds of any size (a fraction such as
/// `1.5` too, as some servers send) and an HTTP-date, which is waited for until it comes (a
/// date already past asks for no wait). Nothing the server asks for is shortened: a wait is
/// cut only where a `chrono::TimeDelta` (about 292 million years) ends, so that adding it to
/// an instant stays meaningful.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.bytes().next()? {
        b'0'..=b'9' => parse_delta_seconds(value)?,
        _ => (parse_http_date(value)? - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    };
    Some(wait.min(longest_wait()))
}

/// The longest wait that a `chrono::TimeDelta` can hold.
fn longest_wait() -> Duration {
    TimeDelta::MAX.to_std().unwrap_or(Duration::MAX)
}

/// `1*DIGIT [ "." 1*DIGIT ]`, saturating instead of overflowing.
fn parse_delta_seconds(value: &str) -> Option<Duration> {
    let (whole, fraction) = match value.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (value, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || fraction.is_some_and(|f| !digits(f)) {
        return None;
    }
    let secs = whole.bytes().fold(0u64, |acc, b| {
        acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    });
    // Nanoseconds from the first nine digits of the fraction.
    let nanos = fraction.map_or(0, |f| {
        let f = &f[..f.len().min(9)];
        let n: u32 = f.parse().unwrap_or(0);
        n * 10u32.pow(9 - f.len() as u32)
    });
    Some(Duration::new(secs, nanos))
}

/// An HTTP-date (RFC 9110 §5.6.7) in any of its three forms: IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`), the obsolete RFC 850 form
/// (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`). The day
/// name is not checked against the date: it says nothing the date does not.
pub fn parse_http_date(value: &str) -> Option<DateTime<Utc>> {
    let value = value.trim();
    // Drop the day name: "Sun, ", "Sunday, " or the asctime "Sun ".
    let (_, rest) = value.split_once(' ')?;
    let rest = rest.trim_start();
    let date = if let Ok(t) = NaiveDateTime::parse_from_str(rest, "%d %b %Y %H:%M:%S GMT") {
        t
    } else if let Ok(t) = NaiveDateTime::parse_from_str(rest, "%d-%b-%y %H:%M:%S GMT") {
        // chrono reads a two-digit year 00–68 as 20xx and 69–99 as 19xx. RFC 9110 would put
        // a year over 50 years ahead in the past century; for this obsolete form, from a
        // server that means "soon", the difference never arises.
        t
    } else {
        NaiveDateTime::parse_from_str(rest, "%b %e %H:%M:%S %Y").ok()?
    };
    Some(date.and_utc())
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

    /// The instant the responses in these tables arrived.
    fn at() -> DateTime<Utc> {
        "2026-10-21T07:28:00Z".parse().unwrap()
    }

    #[test]
    fn retry_after_table() {
        let s = Duration::from_secs;
        let cases: &[(&str, Option<Duration>)] = &[
            ("30", Some(s(30))),
            (" 1.5 ", Some(Duration::from_millis(1500))),
            ("0", Some(Duration::ZERO)),
            // Over a day is what the server asked for: waited in full.
            ("999999", Some(s(999_999))),
            ("86401", Some(s(86_401))),
            (
                "18446744073709551615",
                Some(TimeDelta::MAX.to_std().unwrap()),
            ),
            (
                "99999999999999999999999999999999",
                Some(TimeDelta::MAX.to_std().unwrap()),
            ),
            ("0.000000001999", Some(Duration::from_nanos(1))),
            // HTTP-dates, relative to the response's time, in all three forms.
            ("Wed, 21 Oct 2026 07:28:03 GMT", Some(s(3))),
            ("Wed, 21 Oct 2026 08:28:00 GMT", Some(s(3600))),
            ("Thu, 21 Oct 2027 07:28:00 GMT", Some(s(365 * 86_400))),
            ("Wednesday, 21-Oct-26 07:29:00 GMT", Some(s(60))),
            ("Wed Oct 21 07:28:10 2026", Some(s(10))),
            ("Sat Oct  3 07:28:00 2026", Some(Duration::ZERO)),
            ("Sun Nov  1 07:28:00 2026", Some(s(11 * 86_400))),
            // A date already past asks for no wait.
            ("Wed, 21 Oct 2015 07:28:00 GMT", Some(Duration::ZERO)),
            // Unusable: back off instead.
            ("", None),
            ("   ", None),
            ("-1", None),
            ("-999999", None),
            ("+5", None),
            ("soon", None),
            ("NaN", None),
            ("inf", None),
            ("1e9", None),
            ("1.", None),
            (".5", None),
            ("1.5.2", None),
            ("30 s", None),
            ("Wed, 21 Oct 2026 07:28:03 UTC+2", None),
            ("Wed, 32 Oct 2026 07:28:03 GMT", None),
            ("Wed, 21 Oct 2026 25:28:03 GMT", None),
            ("Wed,", None),
        ];
        for (value, want) in cases {
            assert_eq!(parse_retry_after(value, at()), *want, "{value:?}");
        }
    }

    #[test]
    fn an_http_date_is_counted_from_the_time_passed_in() {
        let value = "Wed, 21 Oct 2026 07:30:00 GMT";
        let later = at() + TimeDelta::seconds(90);
        assert_eq!(
            parse_retry_after(value, later),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn http_dates_in_every_form() {
        let want: DateTime<Utc> = "1994-11-06T08:49:37Z".parse().unwrap();
        for form in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "  Sun, 06 Nov 1994 08:49:37 GMT  ",
        ] {
            assert_eq!(parse_http_date(form), Some(want), "{form:?}");
        }
        for bad in ["", "Sun", "06 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994"] {
            assert_eq!(parse_http_date(bad), None, "{bad:?}");
        }
    }
}
