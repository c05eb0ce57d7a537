//! When to fetch again after failures. Pure.

use std::time::Duration;

/// The wait before the first retry after a failure: soon, since most failures (a dropped
/// connection, a server restarting) are over in seconds.
pub const FIRST_RETRY: Duration = Duration::from_secs(30);

/// How long to wait before the next fetch of a calendar polled every `poll` that has failed
/// `failures` times in a row: `poll` with no failure, else `min(poll, 30 s × 2^(failures-1))`.
///
/// The wait doubles from [`FIRST_RETRY`] so that a server that is down is not asked twice a
/// minute for hours, and it never exceeds `poll`: a failing calendar is still tried at least
/// as often as a healthy one, so a fix on the server's side shows within one `poll`.
pub fn backoff(failures: u32, poll: Duration) -> Duration {
    let Some(doublings) = failures.checked_sub(1) else {
        return poll;
    };
    // 2^doublings overflows long before it matters: any wait past `poll` is `poll`.
    let factor = 1u32.checked_shl(doublings).unwrap_or(u32::MAX);
    FIRST_RETRY.checked_mul(factor).unwrap_or(poll).min(poll)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_thirty_seconds_up_to_poll() {
        let s = Duration::from_secs;
        // (failures, poll, wait)
        let cases: &[(u32, Duration, Duration)] = &[
            (0, s(300), s(300)),
            (1, s(300), s(30)),
            (2, s(300), s(60)),
            (3, s(300), s(120)),
            (4, s(300), s(240)),
            (5, s(300), s(300)),
            (6, s(300), s(300)),
            (31, s(300), s(300)),
            (32, s(300), s(300)),
            (33, s(300), s(300)),
            (u32::MAX, s(300), s(300)),
            // A poll shorter than the first retry: never waits longer than poll.
            (0, s(10), s(10)),
            (1, s(10), s(10)),
            (7, s(10), s(10)),
            // A long poll: the doubling runs its course.
            (1, s(86_400), s(30)),
            (8, s(86_400), s(3_840)),
            (12, s(86_400), s(61_440)),
            (13, s(86_400), s(86_400)),
            (1, Duration::MAX, s(30)),
            (40, Duration::MAX, s(30 * u64::from(u32::MAX))),
        ];
        for &(failures, poll, want) in cases {
            assert_eq!(
                backoff(failures, poll),
                want,
                "failures {failures}, poll {poll:?}"
            );
        }
    }
}
