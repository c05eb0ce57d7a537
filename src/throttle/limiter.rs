//! Sliding-window limits, kept exactly.
//!
//! A GCRA or token bucket with burst `n` lets `2n − 1` requests through within one window
//! (a full burst, then refills that arrive inside the same window), which would draw 429s
//! from a server that counts per sliding window. So we keep, per key, the start times of the
//! last `n` requests: a new request may start once the oldest of them is a full window old.
//! That is exact for any window position and costs `n` timestamps per key.
//!
//! Slack counts a request when it *arrives*, we when it *starts*; arrival times jitter with
//! network latency, so two requests one window apart at the start could arrive a few
//! milliseconds less than a window apart. [`margin`] adds 1% of the window, at least 50 ms and
//! at most 250 ms (never more than a tenth of the window), to absorb that: a clean run then
//! sees no 429, at a cost of about 1% of the throughput for Slack's 60 s window.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, TimeDelta, Utc};

use crate::config::Limits;

/// The start times of the last `cap` requests for one key.
#[derive(Debug, Clone)]
pub struct SlidingLog {
    cap: usize,
    window: TimeDelta,
    starts: VecDeque<DateTime<Utc>>,
}

impl SlidingLog {
    /// A log allowing `cap` requests per `window`.
    pub fn new(cap: u32, window: TimeDelta) -> Self {
        SlidingLog {
            cap: cap.max(1) as usize,
            window,
            starts: VecDeque::new(),
        }
    }

    /// The earliest instant at or after `now` at which one more request may start.
    pub fn next_allowed(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        if self.starts.len() < self.cap {
            return now;
        }
        // The oldest of the last `cap` starts; times from the future (a clock set back) count
        // as now, so a backwards jump cannot lock a key out for longer than one window.
        let oldest = self.starts[self.starts.len() - self.cap].min(now);
        (oldest + self.window + margin(self.window)).max(now)
    }

    /// Record a request that started at `at`.
    pub fn record(&mut self, at: DateTime<Utc>) {
        self.starts.push_back(at);
        while self.starts.len() > self.cap {
            self.starts.pop_front();
        }
    }
}

/// The limits of one token: its own log and one per target user. Tokens are independent, so
/// each token's worker owns one of these.
#[derive(Debug, Clone)]
pub struct TokenLimiter {
    limits: Limits,
    token: SlidingLog,
    /// Per target user; `""` is the token's own profile, as in the database. Keyed by
    /// `String`, not `Option<String>`, so that the per-step lookup allocates nothing.
    users: HashMap<String, SlidingLog>,
}

impl TokenLimiter {
    /// An empty limiter for one token.
    pub fn new(limits: Limits) -> Self {
        let window = window_delta(&limits);
        TokenLimiter {
            limits,
            token: SlidingLog::new(limits.per_token, window),
            users: HashMap::new(),
        }
    }

    /// When a request for `user` (`None`: the token's own profile) may start, at or after `now`.
    pub fn next_allowed(&self, user: Option<&str>, now: DateTime<Utc>) -> DateTime<Utc> {
        let by_token = self.token.next_allowed(now);
        let by_user = self
            .users
            .get(user.unwrap_or(""))
            .map_or(now, |log| log.next_allowed(now));
        by_token.max(by_user)
    }

    /// Record a request for `user` that started at `at`.
    pub fn record(&mut self, user: Option<&str>, at: DateTime<Utc>) {
        self.token.record(at);
        let window = window_delta(&self.limits);
        let per_user = self.limits.per_user;
        self.users
            .entry(user.unwrap_or("").to_string())
            .or_insert_with(|| SlidingLog::new(per_user, window))
            .record(at);
    }
}

/// Slack of the window against latency jitter: 1% of it, clamped to 50–250 ms, and never
/// more than a tenth of the window.
pub fn margin(window: TimeDelta) -> TimeDelta {
    (window / 100)
        .clamp(TimeDelta::milliseconds(50), TimeDelta::milliseconds(250))
        .min(window / 10)
}

fn window_delta(limits: &Limits) -> TimeDelta {
    TimeDelta::from_std(limits.window).unwrap_or(TimeDelta::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn t(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_800_000_000_000 + ms).unwrap()
    }

    fn limits(per_user: u32, per_token: u32, window_ms: u64) -> Limits {
        Limits {
            per_user,
            per_token,
            window: Duration::from_millis(window_ms),
        }
    }

    /// Drive the limiter greedily: each request starts as soon as it is allowed.
    fn greedy(
        l: &mut TokenLimiter,
        users: &[Option<&str>],
        start: DateTime<Utc>,
    ) -> Vec<DateTime<Utc>> {
        let mut now = start;
        users
            .iter()
            .map(|u| {
                now = l.next_allowed(*u, now);
                l.record(*u, now);
                now
            })
            .collect()
    }

    fn max_in_any_window(starts: &[DateTime<Utc>], window: TimeDelta) -> usize {
        starts
            .iter()
            .map(|s| {
                starts
                    .iter()
                    .filter(|x| **x >= *s && **x - *s < window)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn burst_up_to_the_limit_goes_at_once() {
        let mut l = TokenLimiter::new(limits(10, 30, 60_000));
        let users: Vec<String> = (0..30).map(|i| format!("U{i}")).collect();
        let refs: Vec<Option<&str>> = users.iter().map(|u| Some(u.as_str())).collect();
        let starts = greedy(&mut l, &refs, t(0));
        assert!(starts.iter().all(|s| *s == t(0)), "all 30 go at once");
        assert_eq!(
            l.next_allowed(Some("U99"), t(0)),
            t(60_000 + 250),
            "the 31st waits a full window"
        );
    }

    #[test]
    fn never_more_than_the_limit_in_any_window() {
        let mut l = TokenLimiter::new(limits(10, 30, 2_000));
        let users: Vec<String> = (0..7).map(|i| format!("U{i}")).collect();
        // 300 requests over 7 users, round robin.
        let refs: Vec<Option<&str>> = (0..300).map(|i| Some(users[i % 7].as_str())).collect();
        let starts = greedy(&mut l, &refs, t(0));
        let w = TimeDelta::milliseconds(2_000);
        assert_eq!(max_in_any_window(&starts, w), 30);
        for u in &users {
            let mine: Vec<_> = starts
                .iter()
                .zip(&refs)
                .filter(|(_, r)| **r == Some(u.as_str()))
                .map(|(s, _)| *s)
                .collect();
            assert!(max_in_any_window(&mine, w) <= 10, "user {u}");
        }
        // Legal minimum for 300 at 30 per window: (ceil(300/30) - 1) windows.
        assert_eq!(*starts.last().unwrap(), t(9 * (2_000 + 50)));
    }

    #[test]
    fn per_user_limit_applies_to_one_target_only() {
        let mut l = TokenLimiter::new(limits(2, 30, 1_000));
        greedy(&mut l, &[Some("A"), Some("A")], t(0));
        assert_eq!(l.next_allowed(Some("A"), t(10)), t(1_050));
        assert_eq!(l.next_allowed(Some("B"), t(10)), t(10));
        assert_eq!(
            l.next_allowed(None, t(10)),
            t(10),
            "own profile is its own target"
        );
    }

    #[test]
    fn tokens_are_independent() {
        let mut a = TokenLimiter::new(limits(10, 1, 1_000));
        let b = TokenLimiter::new(limits(10, 1, 1_000));
        a.record(None, t(0));
        assert_eq!(a.next_allowed(None, t(0)), t(1_050));
        assert_eq!(b.next_allowed(None, t(0)), t(0));
    }

    #[test]
    fn a_clock_set_back_locks_out_for_at_most_one_window() {
        let mut l = TokenLimiter::new(limits(1, 1, 1_000));
        l.record(None, t(1_000_000));
        assert_eq!(l.next_allowed(None, t(0)), t(1_050));
    }
}
