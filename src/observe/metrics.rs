//! The metrics of SPEC §7: one registry, every metric's name and help text in this file,
//! and [`Metrics`], the cheap handle the tasks that count clone.
//!
//! Counters and histograms are updated where things happen (a worker's request, a calendar's
//! fetch, a reload); the queue's depth is read at scrape time (see `observe::http`).
//!
//! **Invariant:** label values are names (methods, outcomes, states, and the config's token
//! and calendar names), never a token's value, a hash of one, or a URL.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};

use super::health::Health;
use crate::queue::Depth;
use crate::slack::{Outcome, PartOutcome};
use crate::throttle::Method;

/// A label set: `(name, value)` pairs, the values already escaped for the text format
/// (see [`label`]).
type Labels = Vec<(&'static str, String)>;

/// A float gauge (seconds, timestamps).
type FloatGauge = Gauge<f64, AtomicU64>;

/// Buckets of `firing_delay_seconds`: from "on time" to "an hour late".
const DELAY_BUCKETS: [f64; 12] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

/// How a fetch of a calendar ended, as `calendar_fetches_total{outcome}` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchOutcome {
    /// A new body, parsed and kept.
    Ok,
    /// Unchanged since the last fetch (304, or a local file's same identity).
    NotModified,
    /// The fetch failed; the last good copy stays in use.
    Error,
}

impl FetchOutcome {
    fn as_str(self) -> &'static str {
        match self {
            FetchOutcome::Ok => "ok",
            FetchOutcome::NotModified => "not_modified",
            FetchOutcome::Error => "error",
        }
    }
}

/// The `outcome` label of a request: `ok`, `rate_limited`, `transient`, `token_error` or
/// `permanent`.
pub fn outcome_label(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Ok { .. } => "ok",
        Outcome::RateLimited(_) => "rate_limited",
        Outcome::Transient(_) => "transient",
        Outcome::TokenDead(_) => "token_error",
        Outcome::Permanent(_) => "permanent",
    }
}

/// The `outcome` label of a DND or presence call: `snooze_not_active` is `ok` (there was
/// nothing to end), a missing scope `permanent` (the part fails, the token is not held).
pub fn part_outcome_label(outcome: &PartOutcome) -> &'static str {
    match outcome {
        PartOutcome::Answer(o) => outcome_label(o),
        PartOutcome::NotActive => "ok",
        PartOutcome::MissingScope(_) => "permanent",
    }
}

/// A label value escaped for the text format (`\`, `"` and line feeds), which
/// prometheus-client writes as given. Config names have no control characters, but may
/// have quotes.
fn label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The handle every counting task holds: clones share one registry. The default handle
/// counts nothing (for workers and schedulers run outside the daemon, as tests do).
#[derive(Clone, Default)]
pub struct Metrics(Option<Arc<Inner>>);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Metrics"
        } else {
            "Metrics(off)"
        })
    }
}

/// The registry and a handle on each metric in it.
struct Inner {
    /// What `/metrics` encodes.
    registry: Registry,
    /// `[http] token_labels`: add `token` to requests and throttle wait.
    token_labels: AtomicBool,
    /// `requests_total{method,outcome[,token]}`.
    requests: Family<Labels, Counter>,
    /// `updates{state}`, set at scrape time.
    updates: Family<Labels, Gauge>,
    /// `oldest_due_seconds`, set at scrape time.
    oldest_due: FloatGauge,
    /// `firing_delay_seconds`.
    firing_delay: Histogram,
    /// `throttle_wait_seconds_total[{token}]`.
    throttle_wait: Family<Labels, Counter<f64, AtomicU64>>,
    /// `next_firing_timestamp_seconds`, set at scrape time.
    next_firing: FloatGauge,
    /// `tokens{state}`.
    tokens: Family<Labels, Gauge>,
    /// `token_held{token}`: 1, only for held tokens.
    token_held: Family<Labels, Gauge>,
    /// Every configured token and whether it is held, behind `tokens` and `token_held`.
    token_states: Mutex<BTreeMap<String, bool>>,
    /// `calendar_fetches_total{calendar,outcome}`.
    calendar_fetches: Family<Labels, Counter>,
    /// `calendar_last_success_timestamp_seconds{calendar}`.
    calendar_success: Family<Labels, FloatGauge>,
    /// `reloads_total{outcome}`.
    reloads: Family<Labels, Counter>,
    /// What `/healthz` and `/readyz` answer from.
    health: Mutex<Health>,
}

impl Metrics {
    /// A registry with every metric of SPEC §7, `build_info` set to this version.
    pub fn new(token_labels: bool) -> Metrics {
        let mut r = Registry::default();
        // prometheus-client appends `_total` to counters' names itself.
        let requests = registered(
            &mut r,
            "slack_statusd_requests",
            "Slack Web API requests by method and outcome",
            Family::<Labels, Counter>::default(),
        );
        let updates = registered(
            &mut r,
            "slack_statusd_updates",
            "Queue rows per state",
            Family::<Labels, Gauge>::default(),
        );
        let oldest_due = registered(
            &mut r,
            "slack_statusd_oldest_due_seconds",
            "Age of the oldest due, unsent row (the backlog); 0 when there is none",
            FloatGauge::default(),
        );
        let firing_delay = registered(
            &mut r,
            "slack_statusd_firing_delay_seconds",
            "From a row's scheduled instant to the start of a request for it, retries included",
            Histogram::new(DELAY_BUCKETS),
        );
        let throttle_wait = registered(
            &mut r,
            "slack_statusd_throttle_wait_seconds",
            "Seconds requests waited past their rows' due instant (limits, 429 pauses, turns)",
            Family::<Labels, Counter<f64, AtomicU64>>::default(),
        );
        let next_firing = registered(
            &mut r,
            "slack_statusd_next_firing_timestamp_seconds",
            "Unix time of the next rule firing; 0 when none is scheduled",
            FloatGauge::default(),
        );
        let tokens = registered(
            &mut r,
            "slack_statusd_tokens",
            "Configured tokens by state (ok, held)",
            Family::<Labels, Gauge>::default(),
        );
        let token_held = registered(
            &mut r,
            "slack_statusd_token_held",
            "1 for each token Slack refused, whose rows are held until the config changes it",
            Family::<Labels, Gauge>::default(),
        );
        let calendar_fetches = registered(
            &mut r,
            "slack_statusd_calendar_fetches",
            "Calendar feed fetches by calendar and outcome (ok, not_modified, error)",
            Family::<Labels, Counter>::default(),
        );
        let calendar_success = registered(
            &mut r,
            "slack_statusd_calendar_last_success_timestamp_seconds",
            "Unix time of the calendar's last successful fetch",
            Family::<Labels, FloatGauge>::default(),
        );
        let reloads = registered(
            &mut r,
            "slack_statusd_reloads",
            "Config reloads by outcome (ok, rejected, failed)",
            Family::<Labels, Counter>::default(),
        );
        let build_info = registered(
            &mut r,
            "slack_statusd_build_info",
            "1, labelled with the version of slack-statusd",
            Family::<Labels, Gauge>::default(),
        );
        build_info
            .get_or_create(&vec![("version", label(env!("CARGO_PKG_VERSION")))])
            .set(1);
        for state in ["ok", "held"] {
            tokens.get_or_create(&vec![("state", label(state))]).set(0);
        }
        let metrics = Metrics(Some(Arc::new(Inner {
            registry: r,
            token_labels: AtomicBool::new(token_labels),
            requests,
            updates,
            oldest_due,
            firing_delay,
            throttle_wait,
            next_firing,
            tokens,
            token_held,
            token_states: Mutex::default(),
            calendar_fetches,
            calendar_success,
            reloads,
            health: Mutex::default(),
        })));
        metrics.show_throttle_total();
        metrics
    }

    /// Apply a reloaded `token_labels`. A change drops the series whose labels it changes
    /// (a counter reset, which Prometheus's `rate` handles).
    pub fn set_token_labels(&self, on: bool) {
        let Some(m) = &self.0 else { return };
        if m.token_labels.swap(on, Ordering::Relaxed) != on {
            m.requests.clear();
            m.throttle_wait.clear();
            self.show_throttle_total();
        }
    }

    /// Without per-token labels, the one throttle series exists from the start (at 0).
    fn show_throttle_total(&self) {
        let Some(m) = &self.0 else { return };
        if !m.token_labels.load(Ordering::Relaxed) {
            m.throttle_wait.get_or_create(&Vec::new()).inc_by(0.0);
        }
    }

    /// The labels of a per-token series: `extra`, plus `token` if `token_labels` is on.
    fn per_token(m: &Inner, token: &str, extra: Labels) -> Labels {
        let mut labels = extra;
        if m.token_labels.load(Ordering::Relaxed) {
            labels.push(("token", label(token)));
        }
        labels
    }

    /// A request of `token` to `method` ended with `outcome` (`None`: abandoned at shutdown,
    /// not counted).
    pub fn request(&self, method: Method, token: &str, outcome: Option<&Outcome>) {
        if let Some(o) = outcome {
            self.request_as(method, token, outcome_label(o));
        }
    }

    /// A DND or presence call of `token` ended with `outcome`.
    pub fn request_part(&self, method: Method, token: &str, outcome: Option<&PartOutcome>) {
        if let Some(o) = outcome {
            self.request_as(method, token, part_outcome_label(o));
        }
    }

    fn request_as(&self, method: Method, token: &str, outcome: &'static str) {
        let Some(m) = &self.0 else { return };
        let labels = vec![
            ("method", label(method.name())),
            ("outcome", label(outcome)),
        ];
        m.requests
            .get_or_create(&Self::per_token(m, token, labels))
            .inc();
    }

    /// A request of `token` for rows scheduled at `scheduled` (the earliest `fire_at`) and
    /// due since `due` (the earliest `not_before`, which a retry moves) starts at
    /// `started`: one observation of the firing delay, and the wait past `due` added to the
    /// throttle wait.
    pub fn request_started(
        &self,
        token: &str,
        scheduled: DateTime<Utc>,
        due: DateTime<Utc>,
        started: DateTime<Utc>,
    ) {
        let Some(m) = &self.0 else { return };
        m.firing_delay.observe(seconds_between(scheduled, started));
        let wait = seconds_between(due, started);
        m.throttle_wait
            .get_or_create(&Self::per_token(m, token, Vec::new()))
            .inc_by(wait);
    }

    /// [`Self::request_started`] for a batch of rows.
    pub fn batch_started(
        &self,
        token: &str,
        rows: &[crate::queue::Update],
        started: DateTime<Utc>,
    ) {
        let scheduled = rows.iter().map(|r| r.fire_at).min();
        let due = rows.iter().map(|r| r.not_before).min();
        if let (Some(scheduled), Some(due)) = (scheduled, due) {
            self.request_started(token, scheduled, due, started);
        }
    }

    /// The configured tokens are `names`, none held (a start, or a reload that restarted
    /// their workers); tokens no longer configured disappear.
    pub fn set_tokens<'a>(&self, names: impl IntoIterator<Item = &'a String>) {
        let Some(m) = &self.0 else { return };
        let mut states = m.token_states.lock().expect("token states lock");
        let old = std::mem::take(&mut *states);
        *states = names
            .into_iter()
            .map(|n| (n.clone(), old.get(n).copied().unwrap_or(false)))
            .collect();
        drop(states);
        self.publish_tokens();
    }

    /// `token` is held (Slack refused it) or no longer (its worker restarted on a new value).
    pub fn token_held(&self, token: &str, held: bool) {
        let Some(m) = &self.0 else { return };
        if let Some(s) = m
            .token_states
            .lock()
            .expect("token states lock")
            .get_mut(token)
        {
            *s = held;
        }
        self.publish_tokens();
    }

    fn publish_tokens(&self) {
        let Some(m) = &self.0 else { return };
        let states = m.token_states.lock().expect("token states lock");
        let held = states.values().filter(|h| **h).count() as i64;
        let total = states.len() as i64;
        m.tokens
            .get_or_create(&vec![("state", label("ok"))])
            .set(total - held);
        m.tokens
            .get_or_create(&vec![("state", label("held"))])
            .set(held);
        m.token_held.clear();
        for (name, _) in states.iter().filter(|(_, h)| **h) {
            m.token_held
                .get_or_create(&vec![("token", label(name))])
                .set(1);
        }
    }

    /// A fetch of `calendar` ended with `outcome` at `now`.
    pub fn calendar_fetch(&self, calendar: &str, outcome: FetchOutcome, now: DateTime<Utc>) {
        let Some(m) = &self.0 else { return };
        let name = label(calendar);
        m.calendar_fetches
            .get_or_create(&vec![
                ("calendar", name.clone()),
                ("outcome", label(outcome.as_str())),
            ])
            .inc();
        if outcome != FetchOutcome::Error {
            self.calendar_success(calendar, now);
        }
    }

    /// `calendar` was last fetched successfully at `at` (a fetch now, or the stored copy's
    /// at start).
    pub fn calendar_success(&self, calendar: &str, at: DateTime<Utc>) {
        let Some(m) = &self.0 else { return };
        m.calendar_success
            .get_or_create(&vec![("calendar", label(calendar))])
            .set(timestamp(at));
    }

    /// A reload ended: `ok`, `rejected` (an invalid config; the old one stays) or `failed`
    /// (the database refused part of it).
    pub fn reload(&self, outcome: &'static str) {
        let Some(m) = &self.0 else { return };
        m.reloads
            .get_or_create(&vec![("outcome", label(outcome))])
            .inc();
    }

    /// The queue's depth at `now`, read at scrape time.
    pub fn set_depth(&self, depth: &Depth, now: DateTime<Utc>) {
        let Some(m) = &self.0 else { return };
        for (state, n) in &depth.per_state {
            m.updates
                .get_or_create(&vec![("state", label(state.as_str()))])
                .set(*n);
        }
        m.oldest_due
            .set(depth.oldest_due.map_or(0.0, |at| seconds_between(at, now)));
    }

    /// The scheduler's next firing, read at scrape time.
    pub fn set_next_firing(&self, next: Option<DateTime<Utc>>) {
        let Some(m) = &self.0 else { return };
        m.next_firing.set(next.map_or(0.0, timestamp));
    }

    /// Change the health state under its lock.
    pub fn health<R>(&self, f: impl FnOnce(&mut Health) -> R) -> Option<R> {
        let m = self.0.as_ref()?;
        Some(f(&mut m.health.lock().expect("health lock")))
    }

    /// A scheduler tick worked (`true`) or failed, now.
    pub fn scheduled(&self, ok: bool) {
        let now = std::time::Instant::now();
        self.health(|h| {
            if ok {
                h.scheduling.ok()
            } else {
                h.scheduling.failed(now)
            }
        });
    }

    /// A write to the queue worked (`true`) or failed, now.
    pub fn queue_write(&self, ok: bool) {
        let now = std::time::Instant::now();
        self.health(|h| {
            if ok {
                h.queue_writes.ok()
            } else {
                h.queue_writes.failed(now)
            }
        });
    }

    /// Every metric in the text format (OpenMetrics 1.0, which Prometheus reads).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Some(m) = &self.0 {
            // Writing into a String cannot fail.
            let _ = encode(&mut out, &m.registry);
        }
        out
    }
}

/// `metric`, registered in `registry` under `name` with `help`; a handle on it.
fn registered<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

/// Seconds from `from` to `to`, 0 if `to` is earlier.
fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    let ms = (to - from).num_milliseconds().max(0);
    ms as f64 / 1000.0
}

/// Unix time in seconds, with milliseconds.
fn timestamp(at: DateTime<Utc>) -> f64 {
    at.timestamp_millis() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn series_carry_names_and_escape_them() {
        let m = Metrics::new(false);
        m.set_tokens([&"al\"ice".to_string(), &"bob".to_string()]);
        m.token_held("al\"ice", true);
        m.request(
            Method::ProfileSet,
            "bob",
            Some(&Outcome::Ok {
                warning: None,
                profile: None,
            }),
        );
        m.request_part(Method::DndEndSnooze, "bob", Some(&PartOutcome::NotActive));
        m.request(Method::ProfileSet, "bob", None);
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).unwrap();
        m.request_started("bob", t0, t0, t0 + chrono::TimeDelta::seconds(2));
        let text = m.encode();
        for line in [
            "slack_statusd_requests_total{method=\"users.profile.set\",outcome=\"ok\"} 1",
            "slack_statusd_requests_total{method=\"dnd.endSnooze\",outcome=\"ok\"} 1",
            "slack_statusd_token_held{token=\"al\\\"ice\"} 1",
            "slack_statusd_tokens{state=\"held\"} 1",
            "slack_statusd_tokens{state=\"ok\"} 1",
            // Empty braces are valid in both text formats.
            "slack_statusd_throttle_wait_seconds_total{} 2.0",
            "slack_statusd_firing_delay_seconds_count 1",
            "slack_statusd_build_info{version=\"",
        ] {
            assert!(text.contains(line), "{line} in:\n{text}");
        }
        assert!(!text.contains("token=\"bob\""), "no token label:\n{text}");
    }

    #[test]
    fn token_labels_add_the_name() {
        let m = Metrics::new(true);
        m.request(
            Method::ProfileGet,
            "bob",
            Some(&Outcome::Transient("x".into())),
        );
        let text = m.encode();
        assert!(
            text.contains(
                "slack_statusd_requests_total{method=\"users.profile.get\",outcome=\"transient\",token=\"bob\"} 1"
            ),
            "{text}"
        );
        m.set_token_labels(false);
        assert!(!m.encode().contains("token=\"bob\""));
    }

    #[test]
    fn the_off_handle_counts_nothing() {
        let m = Metrics::default();
        m.reload("ok");
        assert_eq!(m.encode(), "");
        assert_eq!(m.health(|h| h.ready), None);
    }
}
