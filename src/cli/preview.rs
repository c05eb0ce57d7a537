//! `slack-statusd preview`: the next firings of every rule, as text or JSON lines. What it
//! prints is a pure function of the config and a start instant ([`upcoming`]).
//!
//! `preview --events` ([`preview_events`]) fetches each calendar once and lists its expanded
//! occurrences instead: what a user runs to see why a meeting did or did not set a status.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

pub use events::preview_events;

use super::{line, CliError};
use crate::config::{Config, Rule};
use crate::daemon::scheduler::patch_for;
use crate::profile::Patch;
use crate::schedule::next_firing;

/// Print the first `count` firings after `from`, one line each, or one JSON object per line.
pub fn preview(
    config: &Config,
    from: DateTime<Utc>,
    count: usize,
    json: bool,
    out: &mut impl Write,
) -> Result<(), CliError> {
    for f in upcoming(config, from, count) {
        if json {
            line(out, f.to_json())?;
        } else {
            line(out, f.to_line())?;
        }
    }
    Ok(())
}

/// `--from`: an RFC 3339 instant with its offset.
pub fn parse_from(given: &str) -> Result<DateTime<Utc>, CliError> {
    DateTime::parse_from_rfc3339(given)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|reason| CliError::From {
            given: given.to_string(),
            reason,
        })
}

/// One upcoming firing.
#[derive(Debug, Clone)]
pub struct Firing<'a> {
    /// The firing instant, shown in the rule's zone.
    pub at: DateTime<Tz>,
    /// The rule that fires.
    pub rule: &'a Rule,
    /// What it will set.
    pub patch: Patch,
}

/// The first `count` firings strictly after `from`, earliest first (ties in rule order).
pub fn upcoming(config: &Config, from: DateTime<Utc>, count: usize) -> Vec<Firing<'_>> {
    let next = |r: &Rule, after| next_firing(&r.schedule, r.timezone, &r.skip_dates, after);
    let mut heap: BinaryHeap<Reverse<(DateTime<Utc>, usize)>> = config
        .rules
        .iter()
        .enumerate()
        .filter_map(|(i, r)| next(r, from).map(|t| Reverse((t, i))))
        .collect();
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let Some(Reverse((at, i))) = heap.pop() else {
            break;
        };
        let rule = &config.rules[i];
        out.push(Firing {
            at: at.with_timezone(&rule.timezone),
            rule,
            patch: patch_for(rule, at),
        });
        if let Some(n) = next(rule, at) {
            heap.push(Reverse((n, i)));
        }
    }
    out
}

impl Firing<'_> {
    fn target(&self) -> String {
        match &self.rule.user {
            Some(u) => format!("{}/{}", self.rule.token, u),
            None => self.rule.token.clone(),
        }
    }

    fn expires(&self) -> Option<DateTime<Tz>> {
        let s = self.patch.status.as_ref()?;
        (s.expiration != 0)
            .then(|| DateTime::from_timestamp(s.expiration, 0))
            .flatten()
            .map(|e| e.with_timezone(&self.rule.timezone))
    }

    /// One line: instant, rule, target, what it sets, expiry.
    pub fn to_line(&self) -> String {
        let mut what: Vec<String> = Vec::new();
        if let Some(s) = &self.patch.status {
            if s.text.is_empty() && s.emoji.is_empty() {
                what.push("(clear status)".into());
            } else {
                what.push(
                    [s.emoji.as_str(), s.text.as_str()]
                        .join(" ")
                        .trim()
                        .to_string(),
                );
            }
        }
        for (k, v) in &self.patch.fields {
            let shown = v.get("value").unwrap_or(v);
            what.push(format!(
                "{k}={}",
                shown
                    .as_str()
                    .map_or_else(|| shown.to_string(), str::to_string)
            ));
        }
        let mut line = format!(
            "{}  {}  {}  {}",
            self.at.to_rfc3339(),
            self.rule.name,
            self.target(),
            what.join("  ")
        );
        if let Some(e) = self.expires() {
            line.push_str(&format!("  expires {}", e.to_rfc3339()));
        }
        line
    }

    /// One JSON object with the keys `at`, `rule`, `token`, `user`, `expires`, `profile`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "at": self.at.to_rfc3339(),
            "rule": self.rule.name,
            "token": self.rule.token,
            "user": self.rule.user,
            "expires": self.expires().map(|e| e.to_rfc3339()),
            "profile": crate::slack::wire::profile_json(&self.patch),
        })
    }
}

/// `preview --events` (SPEC §5): every calendar's occurrences over `[from, from + horizon)`,
/// ignored ones included, with the map entry each matches.
mod events {
    use std::io::Write;

    use chrono::{DateTime, TimeDelta, Utc};

    use super::super::{line, CliError};
    use crate::calendar::{self, Occurrence, Warning};
    use crate::config::{Calendar, Config};
    use crate::feed::{FetchLimits, Fetched, Fetcher};
    use crate::untrusted::escape;

    /// What a private event's title is, to `summary` regexes (SPEC §5).
    const PRIVATE_TITLE: &str = "Busy";

    /// Fetch (or read) each calendar once and print the first `count` occurrences that
    /// overlap `[from, from + horizon)`, earliest start first (at an equal start, in config
    /// and then feed order), one line each or one JSON object per line. Parse and expansion
    /// warnings go to standard error, naming the calendar; a feed that cannot be fetched is
    /// an error naming the calendar and the feed's host.
    pub async fn preview_events(
        config: &Config,
        from: DateTime<Utc>,
        count: usize,
        json: bool,
        out: &mut impl Write,
    ) -> Result<(), CliError> {
        let fetcher = Fetcher::new(FetchLimits::default()).map_err(CliError::Fetcher)?;
        let mut listed: Vec<Listed<'_>> = Vec::new();
        for calendar in config.calendars.iter() {
            for occurrence in occurrences(&fetcher, calendar, from).await? {
                listed.push(Listed {
                    map: map_index(calendar, &occurrence),
                    calendar,
                    occurrence,
                });
            }
        }
        // Stable: equal starts keep the config's order of calendars and each feed's order.
        listed.sort_by_key(|l| l.occurrence.start);
        for l in listed.iter().take(count) {
            if json {
                line(out, l.to_json())?;
            } else {
                line(out, l.to_line())?;
            }
        }
        Ok(())
    }

    /// The occurrences of `calendar` over its horizon from `from`, its warnings printed.
    async fn occurrences(
        fetcher: &Fetcher,
        calendar: &Calendar,
        from: DateTime<Utc>,
    ) -> Result<Vec<Occurrence>, CliError> {
        let (feed, warning) = calendar.feed()?;
        if let Some(w) = warning {
            eprintln!("slack-statusd: warning: {w}");
        }
        let fetched = fetcher
            .fetch(&feed, None)
            .await
            .map_err(|source| CliError::Feed {
                calendar: calendar.name.clone(),
                source,
            })?;
        // An unconditional fetch always has a body; `NotModified` answers only validators.
        let Fetched::Body { bytes, .. } = fetched else {
            return Ok(Vec::new());
        };
        let parsed = calendar::parse(&bytes);
        drop(bytes);
        // The horizon is at most a year (the config checks it), so this cannot overflow.
        let to = TimeDelta::from_std(calendar.horizon)
            .ok()
            .and_then(|h| from.checked_add_signed(h))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let expansion =
            calendar::expand(&parsed.events, from, to, calendar.timezone, &calendar.email);
        for w in parsed.warnings.iter().chain(&expansion.warnings) {
            eprintln!("slack-statusd: warning: {}", warning_line(calendar, w));
        }
        Ok(expansion.occurrences)
    }

    /// A parse or expansion warning, naming the calendar, the line and the event's UID (a
    /// warning never carries a title).
    fn warning_line(calendar: &Calendar, w: &Warning) -> String {
        let mut text = calendar.label();
        if w.line > 0 {
            text.push_str(&format!(": line {}", w.line));
        }
        if let Some(uid) = &w.uid {
            text.push_str(&format!(" (UID {})", escape(uid)));
        }
        text.push_str(&format!(": {}", escape(&w.message)));
        text
    }

    /// The index of the first map entry of `calendar` that matches `o`, a private event's
    /// title matched as `Busy` (an event without a title as the empty string).
    fn map_index(calendar: &Calendar, o: &Occurrence) -> Option<usize> {
        let title = if o.private {
            PRIVATE_TITLE
        } else {
            o.summary.as_deref().unwrap_or("")
        };
        calendar
            .map
            .iter()
            .position(|entry| entry.matches(title, o.busy, o.all_day))
    }

    /// One occurrence as listed.
    struct Listed<'a> {
        /// The calendar it is from.
        calendar: &'a Calendar,
        /// The occurrence.
        occurrence: Occurrence,
        /// The index of the map entry it matches.
        map: Option<usize>,
    }

    impl Listed<'_> {
        /// An instant in the calendar's zone, RFC 3339 with its offset.
        fn shown(&self, t: DateTime<Utc>) -> String {
            t.with_timezone(&self.calendar.timezone).to_rfc3339()
        }

        /// The title, unless the event is private (whose title was never kept).
        fn summary(&self) -> Option<&str> {
            let o = &self.occurrence;
            (!o.private).then_some(o.summary.as_deref()).flatten()
        }

        /// One line: start and end, calendar, title, busy state, all-day, what it matched or
        /// why it is ignored, and its UID.
        fn to_line(&self) -> String {
            let o = &self.occurrence;
            let title = match self.summary() {
                Some(s) => format!("{:?}", escape(s)),
                None if o.private => "(private)".to_string(),
                None => "(no title)".to_string(),
            };
            let kind = if o.all_day {
                format!("{}, all day", o.busy.as_str())
            } else {
                o.busy.as_str().to_string()
            };
            let outcome = match (o.ignored, self.map) {
                (Some(why), _) => format!("ignored: {}", why.as_str()),
                (None, Some(i)) => format!("map {i}"),
                (None, None) => "no map entry matches".to_string(),
            };
            format!(
                "{} .. {}  {}  {title}  ({kind})  {outcome}  uid {}",
                self.shown(o.start),
                self.shown(o.end),
                self.calendar.name,
                escape(&o.uid),
            )
        }

        /// One JSON object with exactly the keys of SPEC §5.
        fn to_json(&self) -> serde_json::Value {
            let o = &self.occurrence;
            serde_json::json!({
                "calendar": self.calendar.name,
                "uid": o.uid,
                "start": self.shown(o.start),
                "end": self.shown(o.end),
                "all_day": o.all_day,
                "busy": o.busy.as_str(),
                "summary": self.summary(),
                "map": self.map,
                "ignored": o.ignored.map(|i| i.as_str()),
            })
        }
    }
}
