//! The per-method and per-read limits (SPEC §6 "Limits", §3 `[limits]`): the config keys
//! with their defaults and their errors, and a property test that drives `TokenLimiter` with
//! random requests of every method and checks that no window of any kind ever holds more
//! starts than its limit.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use slack_statusd::config::{load_str, Limits, Problem};
use slack_statusd::throttle::{Method, TokenLimiter};

/// The file name every case is checked as.
const FILE: &str = "config.toml";

/// The problems of `text` as `file:line:col: message` lines (empty when it is valid).
fn problems(text: &str) -> Vec<String> {
    match load_str(Path::new(FILE), text) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems.iter().map(Problem::to_string).collect(),
    }
}

#[test]
fn limits_default_to_slacks_documented_tiers() {
    let c = load_str(Path::new(FILE), "").unwrap();
    let l = c.limits;
    assert_eq!(
        (
            l.per_user,
            l.per_token,
            l.per_method,
            l.per_read,
            l.in_flight
        ),
        (10, 30, 20, 100, 30)
    );
    assert_eq!(l.window, Duration::from_secs(60));
    assert_eq!(l, Limits::default());
}

#[test]
fn limits_keys_are_read() {
    let text = "[limits]\nper_method = 5\nper_read = 0x40\nin_flight = 64\nwindow = \"2s\"\n";
    let l = load_str(Path::new(FILE), text).unwrap().limits;
    assert_eq!((l.per_method, l.per_read, l.in_flight), (5, 64, 64));
    assert_eq!(l.window, Duration::from_secs(2));
    let l = load_str(Path::new(FILE), "[limits]\nin_flight = 1\n")
        .unwrap()
        .limits;
    assert_eq!(l.in_flight, 1);
}

#[test]
fn every_bad_limit_is_reported_at_its_place_all_at_once() {
    #[rustfmt::skip]
    let cases: &[(&str, &str, &[&str])] = &[
        ("per_method zero", "[limits]\nper_method = 0\n",
            &["config.toml:2:14: [limits] per_method must be at least 1"]),
        ("per_read zero", "[limits]\nper_read = 0\n",
            &["config.toml:2:12: [limits] per_read must be at least 1"]),
        ("in_flight zero", "[limits]\nin_flight = 0\n",
            &["config.toml:2:13: [limits] in_flight must be at least 1"]),
        ("in_flight over 64", "[limits]\nin_flight = 65\n",
            &["config.toml:2:13: [limits] in_flight is 65; use 1 to 64 requests in flight per token"]),
        ("per_method negative", "[limits]\nper_method = -3\n",
            &["config.toml:2:14: [limits] per_method must be at least 1"]),
        ("per_read type", "[limits]\nper_read = \"100\"\n",
            &["config.toml:2:12: [limits] per_read must be a whole number, not a string"]),
        ("all at once", "[limits]\nper_method = 0\nper_read = 0\nin_flight = 100\nper_user = 0\n", &[
            "config.toml:2:14: [limits] per_method must be at least 1",
            "config.toml:3:12: [limits] per_read must be at least 1",
            "config.toml:4:13: [limits] in_flight is 100; use 1 to 64",
            "config.toml:5:12: [limits] per_user must be at least 1",
        ]),
    ];
    for (case, text, want) in cases {
        let got = problems(text);
        assert_eq!(got.len(), want.len(), "{case}: {got:#?}");
        for (g, w) in got.iter().zip(want.iter()) {
            assert!(g.starts_with(w), "{case}: expected {w}…, got {g}");
        }
    }
}

/// An instant `ms` milliseconds after a fixed origin.
fn t(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_800_000_000_000 + ms).unwrap()
}

/// The window a request's start counts in, as Slack counts: per method and token, and for
/// `users.profile.set` also per target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Window {
    Method(Method),
    Target(Option<String>),
}

/// The most starts of `starts` (sorted) that fall in any half-open window of `window`.
fn max_in_any_window(starts: &[DateTime<Utc>], window: TimeDelta) -> usize {
    let mut most = 0;
    let mut first = 0;
    for (i, s) in starts.iter().enumerate() {
        while *s - starts[first] >= window {
            first += 1;
        }
        most = most.max(i + 1 - first);
    }
    most
}

/// One request a worker wants to make: a method, a target (index into a few users, or the
/// token's own), and when it becomes due (ms).
fn request() -> impl Strategy<Value = (Method, Option<u8>, i64)> {
    let method = prop::sample::select(Method::ALL.to_vec());
    (method, prop::option::of(0u8..4), 0i64..20_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    /// A worker loop in miniature: time only moves forward; at each moment any due request
    /// that the limiter allows now may start (the test picks which, by `picks`), and is
    /// recorded at that moment; when none may, time jumps to the earliest instant the
    /// limiter names. Every start of every kind is then checked against its limit.
    #[test]
    fn no_window_of_any_kind_ever_exceeds_its_limit(
        requests in prop::collection::vec(request(), 1..160),
        picks in prop::collection::vec(any::<prop::sample::Index>(), 160),
        per_user in 1u32..4,
        per_token in 1u32..8,
        per_method in 1u32..5,
        per_read in 1u32..6,
        window_ms in 200u64..3_000,
    ) {
        let limits = Limits {
            per_user, per_token, per_method, per_read,
            window: Duration::from_millis(window_ms),
            ..Limits::DEFAULT
        };
        let mut limiter = TokenLimiter::new(limits);
        let user = |u: Option<u8>| u.map(|i| format!("U{i}"));
        let mut pending: Vec<(Method, Option<String>, DateTime<Utc>)> =
            requests.iter().map(|(m, u, at)| (*m, user(*u), t(*at))).collect();
        let mut starts: HashMap<Window, Vec<DateTime<Utc>>> = HashMap::new();
        let mut now = t(0);
        let mut step = 0;
        while !pending.is_empty() {
            let allowed: Vec<usize> = (0..pending.len())
                .filter(|&i| {
                    let (m, u, due) = &pending[i];
                    *due <= now && limiter.next_allowed_for(*m, u.as_deref(), now) <= now
                })
                .collect();
            if allowed.is_empty() {
                let next = pending
                    .iter()
                    .map(|(m, u, due)| limiter.next_allowed_for(*m, u.as_deref(), now.max(*due)).max(*due))
                    .min()
                    .unwrap();
                prop_assert!(next > now, "the limiter names a later instant when nothing may go");
                now = next;
                continue;
            }
            let i = allowed[picks[step % picks.len()].index(allowed.len())];
            step += 1;
            let (m, u, _) = pending.swap_remove(i);
            limiter.record_for(m, u.as_deref(), now);
            starts.entry(Window::Method(m)).or_default().push(now);
            if m == Method::ProfileSet {
                starts.entry(Window::Target(u)).or_default().push(now);
            }
        }
        let window = TimeDelta::milliseconds(window_ms as i64);
        for (kind, list) in &starts {
            let cap = match kind {
                Window::Method(Method::ProfileSet) => per_token,
                Window::Method(Method::ProfileGet) => per_read,
                Window::Method(_) => per_method,
                Window::Target(_) => per_user,
            } as usize;
            let most = max_in_any_window(list, window);
            prop_assert!(most <= cap, "{kind:?}: {most} starts in one window, limit {cap}");
        }
    }
}

/// A burst that mixes every method goes out at once up to each limit: the windows are
/// separate, so a full Tier 2 budget delays neither the profile update nor the read.
#[test]
fn a_mixed_burst_goes_out_at_once_up_to_each_limit() {
    let limits = Limits {
        per_method: 20,
        per_read: 100,
        ..Limits::DEFAULT
    };
    let mut l = TokenLimiter::new(limits);
    for m in [
        Method::DndSetSnooze,
        Method::DndEndSnooze,
        Method::SetPresence,
    ] {
        for _ in 0..20 {
            assert_eq!(l.next_allowed_for(m, None, t(0)), t(0), "{m}");
            l.record_for(m, None, t(0));
        }
        assert!(
            l.next_allowed_for(m, None, t(0)) > t(60_000),
            "the 21st {m} waits"
        );
    }
    for _ in 0..100 {
        assert_eq!(l.next_allowed_for(Method::ProfileGet, None, t(0)), t(0));
        l.record_for(Method::ProfileGet, None, t(0));
    }
    assert!(l.next_allowed_for(Method::ProfileGet, None, t(0)) > t(60_000));
    assert_eq!(
        l.next_allowed(None, t(0)),
        t(0),
        "profile updates are untouched"
    );
}
