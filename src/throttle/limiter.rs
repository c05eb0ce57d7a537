//! Sliding-window limits, kept exactly: per token and per target for `users.profile.set`,
//! per token for `users.profile.get` and for each Tier 2 method (see [`TokenLimiter`]).
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
use crate::profile::{Dnd, Part, Patch};

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

    /// How many requests may start at `now`, one after another, before the log is full.
    pub fn free(&self, now: DateTime<Utc>) -> usize {
        let expiry = self.window + margin(self.window);
        let busy = self
            .starts
            .iter()
            .filter(|t| (**t).min(now) + expiry > now)
            .count();
        self.cap.saturating_sub(busy)
    }

    /// Record a request that started at `at`.
    pub fn record(&mut self, at: DateTime<Utc>) {
        self.starts.push_back(at);
        while self.starts.len() > self.cap {
            self.starts.pop_front();
        }
    }
}

/// A Web API method the daemon calls, as the limiter counts it and as the request log
/// records it (by [`Method::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// `users.profile.set`: `per_token` per token and `per_user` per target.
    ProfileSet,
    /// `users.profile.get` (for `restore` and `respect_manual`): `per_read` per token.
    ProfileGet,
    /// `dnd.setSnooze` (Tier 2): `per_method` per token.
    DndSetSnooze,
    /// `dnd.endSnooze` (Tier 2): `per_method` per token.
    DndEndSnooze,
    /// `users.setPresence` (Tier 2): `per_method` per token.
    SetPresence,
}

impl Method {
    /// Every method, in the order a row's parts go out.
    pub const ALL: [Method; 5] = [
        Method::ProfileGet,
        Method::ProfileSet,
        Method::DndSetSnooze,
        Method::DndEndSnooze,
        Method::SetPresence,
    ];

    /// The Tier 2 methods, each with a `per_method` window of its own.
    const TIER2: [Method; 3] = [
        Method::DndSetSnooze,
        Method::DndEndSnooze,
        Method::SetPresence,
    ];

    /// Slack's name of the method: the path of its URL and its name in the request log.
    pub fn name(self) -> &'static str {
        match self {
            Method::ProfileSet => "users.profile.set",
            Method::ProfileGet => "users.profile.get",
            Method::DndSetSnooze => "dnd.setSnooze",
            Method::DndEndSnooze => "dnd.endSnooze",
            Method::SetPresence => "users.setPresence",
        }
    }

    /// The method that sends `patch`, one part of a firing (`Patch::parts`): its DND or
    /// presence method, else `users.profile.set` (also for a patch that sets nothing).
    pub fn sending(patch: &Patch) -> Method {
        match (patch.part(), patch.dnd) {
            (Part::Dnd, Some(Dnd::Snooze { .. })) => Method::DndSetSnooze,
            (Part::Dnd, _) => Method::DndEndSnooze,
            (Part::Presence, _) => Method::SetPresence,
            (Part::Profile, _) => Method::ProfileSet,
        }
    }

    /// The method named `name` (as [`Method::name`] spells it), if the daemon calls it.
    pub fn from_name(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Its place among [`Method::TIER2`], if it is one of them.
    fn tier2_index(self) -> Option<usize> {
        Method::TIER2.iter().position(|m| *m == self)
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The limits of one token: a log per kind of window. Tokens are independent, so each
/// token's worker owns one of these.
///
/// - `users.profile.set`: the token's own log (`per_token`) and one per target user
///   (`per_user`); a request must fit both.
/// - `users.profile.get`: one log (`per_read`), apart from the writes, so that reads for
///   `restore` and `respect_manual` never use up the budget of the updates.
/// - `dnd.setSnooze`, `dnd.endSnooze`, `users.setPresence`: one log each (`per_method`):
///   Slack's Tier 2 limits are per method, and these act on the token's own user, so the
///   target does not matter to them.
#[derive(Debug, Clone)]
pub struct TokenLimiter {
    limits: Limits,
    /// `users.profile.set` by the token, all targets together.
    token: SlidingLog,
    /// `users.profile.set` per target user; `""` is the token's own profile, as in the
    /// database. Keyed by `String`, not `Option<String>`, so that the per-step lookup
    /// allocates nothing.
    users: HashMap<String, SlidingLog>,
    /// `users.profile.get`, all targets together.
    reads: SlidingLog,
    /// One log per Tier 2 method, in [`Method::TIER2`] order.
    tier2: [SlidingLog; 3],
}

impl TokenLimiter {
    /// An empty limiter for one token.
    pub fn new(limits: Limits) -> Self {
        let window = window_delta(&limits);
        let per_method = || SlidingLog::new(limits.per_method, window);
        TokenLimiter {
            limits,
            token: SlidingLog::new(limits.per_token, window),
            users: HashMap::new(),
            reads: SlidingLog::new(limits.per_read, window),
            tier2: [per_method(), per_method(), per_method()],
        }
    }

    /// A limiter with its windows rebuilt from the request log: every request start of the
    /// last window, as `(method, target user, start)`, in any order (they are recorded
    /// oldest first, which the logs need to stay exact).
    pub fn rebuilt<U: AsRef<str>>(
        limits: Limits,
        sends: impl IntoIterator<Item = (Method, Option<U>, DateTime<Utc>)>,
    ) -> Self {
        let mut sends: Vec<_> = sends.into_iter().collect();
        sends.sort_by_key(|(_, _, at)| *at);
        let mut limiter = TokenLimiter::new(limits);
        for (method, user, at) in &sends {
            limiter.record_for(*method, user.as_ref().map(AsRef::as_ref), *at);
        }
        limiter
    }

    /// When a `users.profile.set` for `user` (`None`: the token's own profile) may start,
    /// at or after `now`: [`TokenLimiter::next_allowed_for`] with [`Method::ProfileSet`].
    pub fn next_allowed(&self, user: Option<&str>, now: DateTime<Utc>) -> DateTime<Utc> {
        self.next_allowed_for(Method::ProfileSet, user, now)
    }

    /// Record a `users.profile.set` for `user` that started at `at`.
    pub fn record(&mut self, user: Option<&str>, at: DateTime<Utc>) {
        self.record_for(Method::ProfileSet, user, at)
    }

    /// When a call of `method` for `user` (`None`: the token's own) may start, at or after
    /// `now`. Only `users.profile.set` looks at the user.
    pub fn next_allowed_for(
        &self,
        method: Method,
        user: Option<&str>,
        now: DateTime<Utc>,
    ) -> DateTime<Utc> {
        match method {
            Method::ProfileSet => {
                let by_token = self.token.next_allowed(now);
                let by_user = self
                    .users
                    .get(user.unwrap_or(""))
                    .map_or(now, |log| log.next_allowed(now));
                by_token.max(by_user)
            }
            Method::ProfileGet => self.reads.next_allowed(now),
            tier2 => self.tier2_log(tier2).next_allowed(now),
        }
    }

    /// Start a call of `method` for `user` at `now` if its windows have room: it is
    /// recorded and `Ok`; else nothing changes and `Err` says when it may start. Deciding
    /// and recording in one step is what lets concurrent requests share the windows: a
    /// slot checked is a slot taken.
    pub fn try_start(
        &mut self,
        method: Method,
        user: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), DateTime<Utc>> {
        let at = self.next_allowed_for(method, user, now);
        if at > now {
            return Err(at);
        }
        self.record_for(method, user, now);
        Ok(())
    }

    /// How many `users.profile.set` calls of the token, for distinct targets, may start at
    /// `now`: the room in the token's own window.
    pub fn free_profile_sets(&self, now: DateTime<Utc>) -> usize {
        self.token.free(now)
    }

    /// Record a call of `method` for `user` that started at `at`.
    pub fn record_for(&mut self, method: Method, user: Option<&str>, at: DateTime<Utc>) {
        match method {
            Method::ProfileSet => {
                self.token.record(at);
                let window = window_delta(&self.limits);
                let per_user = self.limits.per_user;
                self.users
                    .entry(user.unwrap_or("").to_string())
                    .or_insert_with(|| SlidingLog::new(per_user, window))
                    .record(at);
            }
            Method::ProfileGet => self.reads.record(at),
            tier2 => {
                let i = tier2.tier2_index().expect("every other method is Tier 2");
                self.tier2[i].record(at);
            }
        }
    }

    /// The log of a Tier 2 method.
    fn tier2_log(&self, method: Method) -> &SlidingLog {
        let i = method.tier2_index().expect("every other method is Tier 2");
        &self.tier2[i]
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
            ..Limits::DEFAULT
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
    fn try_start_takes_a_slot_only_when_there_is_room() {
        let mut l = TokenLimiter::new(limits(2, 3, 1_000));
        assert_eq!(l.free_profile_sets(t(0)), 3);
        assert_eq!(l.try_start(Method::ProfileSet, Some("A"), t(0)), Ok(()));
        assert_eq!(l.try_start(Method::ProfileSet, Some("A"), t(1)), Ok(()));
        // A's own window is full; the token's still has one slot.
        assert_eq!(
            l.try_start(Method::ProfileSet, Some("A"), t(2)),
            Err(t(1_050))
        );
        assert_eq!(l.free_profile_sets(t(2)), 1);
        assert_eq!(l.try_start(Method::ProfileSet, Some("B"), t(2)), Ok(()));
        assert_eq!(l.free_profile_sets(t(2)), 0);
        // Refused starts took nothing: the slots free as the first three age out.
        assert_eq!(
            l.try_start(Method::ProfileSet, Some("C"), t(3)),
            Err(t(1_050))
        );
        assert_eq!(l.free_profile_sets(t(1_050)), 1);
        assert_eq!(l.free_profile_sets(t(1_052)), 3);
        // Other methods have windows of their own.
        assert_eq!(l.try_start(Method::ProfileGet, None, t(3)), Ok(()));
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

    fn method_limits(per_method: u32, per_read: u32, window_ms: u64) -> Limits {
        Limits {
            per_method,
            per_read,
            window: Duration::from_millis(window_ms),
            ..Limits::DEFAULT
        }
    }

    #[test]
    fn method_names_round_trip() {
        for m in Method::ALL {
            assert_eq!(Method::from_name(m.name()), Some(m), "{m}");
        }
        assert_eq!(Method::from_name("users.profile.SET"), None);
        assert_eq!(Method::from_name("chat.postMessage"), None);
    }

    /// Each row: the requests already made (method, user, start in ms), then a method and
    /// user asked about at `t(1_000)`, and when it may start. Window 10 s (margin 100 ms),
    /// per_method 2, per_read 3, per_token 30, per_user 10.
    #[test]
    fn each_method_has_its_own_window() {
        use Method::*;
        let two_snoozes = [(DndSetSnooze, None, 0), (DndSetSnooze, None, 500)];
        type Case<'a> = (
            &'a str,
            Vec<(Method, Option<&'a str>, i64)>,
            Method,
            Option<&'a str>,
            i64,
        );
        let cases: Vec<Case<'_>> = vec![
            ("empty", vec![], DndSetSnooze, None, 1_000),
            (
                "a full method waits for its oldest start",
                two_snoozes.to_vec(),
                DndSetSnooze,
                None,
                10_100,
            ),
            (
                "another Tier 2 method is free",
                two_snoozes.to_vec(),
                DndEndSnooze,
                None,
                1_000,
            ),
            (
                "presence is free too",
                two_snoozes.to_vec(),
                SetPresence,
                None,
                1_000,
            ),
            (
                "profile updates are free",
                two_snoozes.to_vec(),
                ProfileSet,
                Some("U1"),
                1_000,
            ),
            (
                "reads are free",
                two_snoozes.to_vec(),
                ProfileGet,
                None,
                1_000,
            ),
            (
                "the user does not matter to Tier 2",
                vec![(SetPresence, Some("U1"), 0), (SetPresence, Some("U2"), 200)],
                SetPresence,
                Some("U3"),
                10_100,
            ),
            (
                "reads wait for their own window",
                vec![
                    (ProfileGet, None, 0),
                    (ProfileGet, Some("U1"), 100),
                    (ProfileGet, Some("U2"), 300),
                ],
                ProfileGet,
                Some("U9"),
                10_100,
            ),
            (
                "reads do not use up the profile budget",
                vec![
                    (ProfileGet, None, 0),
                    (ProfileGet, None, 100),
                    (ProfileGet, None, 300),
                ],
                ProfileSet,
                None,
                1_000,
            ),
            (
                "an old start has left the window",
                vec![(DndEndSnooze, None, -9_500), (DndEndSnooze, None, 900)],
                DndEndSnooze,
                None,
                1_000,
            ),
            (
                "Tier 2 calls do not count against per_token",
                (0..30).map(|i| (SetPresence, None, i)).collect(),
                ProfileSet,
                Some("U1"),
                1_000,
            ),
        ];
        for (name, made, method, user, want) in cases {
            let mut l = TokenLimiter::new(method_limits(2, 3, 10_000));
            for (m, u, at) in made {
                l.record_for(m, u, t(at));
            }
            assert_eq!(
                l.next_allowed_for(method, user, t(1_000)),
                t(want),
                "{name}"
            );
        }
    }

    #[test]
    fn profile_set_shorthand_is_the_same_window() {
        let mut l = TokenLimiter::new(limits(1, 30, 1_000));
        l.record(Some("A"), t(0));
        assert_eq!(
            l.next_allowed_for(Method::ProfileSet, Some("A"), t(0)),
            t(1_050)
        );
        l.record_for(Method::ProfileSet, Some("B"), t(0));
        assert_eq!(l.next_allowed(Some("B"), t(0)), t(1_050));
    }

    #[test]
    fn rebuilt_from_unordered_sends_is_exact() {
        let sends = vec![
            (Method::DndSetSnooze, None::<String>, t(500)),
            (Method::DndSetSnooze, None, t(0)),
            (Method::ProfileSet, Some("U1".to_string()), t(200)),
            (Method::ProfileGet, None, t(300)),
        ];
        let l = TokenLimiter::rebuilt(method_limits(2, 1, 10_000), sends);
        // Sorted before recording: the oldest snooze (t 0) decides, not the first listed.
        assert_eq!(
            l.next_allowed_for(Method::DndSetSnooze, None, t(1_000)),
            t(10_100)
        );
        assert_eq!(
            l.next_allowed_for(Method::ProfileGet, None, t(1_000)),
            t(10_400)
        );
        assert_eq!(
            l.next_allowed_for(Method::DndEndSnooze, None, t(1_000)),
            t(1_000)
        );
        assert_eq!(l.next_allowed(Some("U1"), t(1_000)), t(1_000));
    }
}
