//! `slack-statusd preview`: the next firings of every rule and every calendar, merged in
//! time order, as text or JSON lines. The rules' part is a pure function of the config and a
//! start instant ([`upcoming`]); the calendars' part fetches (or reads) each feed once and
//! runs the daemon's own pure steps on it (`calendar::expand`, `calendar::firings`).
//!
//! `preview --events` ([`preview_events`]) lists each calendar's expanded occurrences
//! instead: what a user runs to see why a meeting did or did not set a status. Both fetch
//! through [`feeds::occurrences`], so a failing feed reads the same in both.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

pub use events::preview_events;

use super::{line, CliError};
use crate::calendar::{self, Kind};
use crate::config::{Calendar, Config, Rule};
use crate::daemon::scheduler::patch_for;
use crate::feed::{FetchLimits, Fetcher};
use crate::profile::{Dnd, Patch};
use crate::schedule::next_firing;
use crate::untrusted::escape;

/// Print the first `count` firings after `from` — the rules' and the calendars' (SPEC §5:
/// a calendar's as far as its horizon, the segment running at `from` at its real start) —
/// earliest first, one line each or one JSON object per line. A feed that cannot be fetched
/// is an error naming the calendar and the feed's host, and nothing is printed.
pub async fn preview(
    config: &Config,
    from: DateTime<Utc>,
    count: usize,
    json: bool,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let mut listed = upcoming(config, from, count);
    listed.extend(calendar_firings(config, from).await?);
    // Stable: at an equal instant rules come first, then calendars in config order.
    listed.sort_by_key(|f| f.at.with_timezone(&Utc));
    listed.truncate(count);
    print(out, &listed, json, Firing::to_json, Firing::to_line)
}

/// Print `items` one per line, as JSON objects with `json` and else as text: the output of
/// `preview` and of `preview --events` alike.
fn print<T>(
    out: &mut impl Write,
    items: &[T],
    json: bool,
    as_json: impl Fn(&T) -> serde_json::Value,
    as_line: impl Fn(&T) -> String,
) -> Result<(), CliError> {
    for item in items {
        if json {
            line(out, as_json(item))?;
        } else {
            line(out, as_line(item))?;
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

/// Where a firing comes from.
#[derive(Debug, Clone)]
pub enum Source<'a> {
    /// A `[[rules]]` entry.
    Rule(&'a Rule),
    /// A calendar's status change (SPEC §5 "Timeline").
    Calendar {
        /// The calendar.
        calendar: &'a Calendar,
        /// The UID of the occurrence shown (for an end, of the one whose status ends).
        uid: String,
        /// Whether it shows a status or, with `restore`, ends the calendar's.
        kind: Kind,
    },
}

/// One upcoming firing.
#[derive(Debug, Clone)]
pub struct Firing<'a> {
    /// The firing instant, shown in the rule's or calendar's zone.
    pub at: DateTime<Tz>,
    /// The rule or calendar that fires.
    pub source: Source<'a>,
    /// What it will set.
    pub patch: Patch,
}

/// The first `count` firings of the rules strictly after `from`, earliest first (ties in
/// rule order). Pure: calendars, which need their feeds, are [`preview`]'s.
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
            source: Source::Rule(rule),
            patch: patch_for(rule, at),
        });
        if let Some(n) = next(rule, at) {
            heap.push(Reverse((n, i)));
        }
    }
    out
}

/// Every calendar's firings from `from` as far as its horizon, each calendar fetched once:
/// what the daemon would enqueue after a fetch at `from`.
async fn calendar_firings(
    config: &Config,
    from: DateTime<Utc>,
) -> Result<Vec<Firing<'_>>, CliError> {
    if config.calendars.is_empty() {
        // A config with rules only needs no HTTP client.
        return Ok(Vec::new());
    }
    let fetcher = Fetcher::new(FetchLimits::default()).map_err(CliError::Fetcher)?;
    let mut out = Vec::new();
    for calendar in config.calendars.iter() {
        let (occurrences, to) = feeds::occurrences(&fetcher, calendar, from).await?;
        out.extend(
            calendar::firings(&occurrences, calendar, from)
                .into_iter()
                // A segment that begins within the horizon and runs past it is listed; the
                // change at its end is beyond what was expanded, so it is not.
                .filter(|f| f.at <= to)
                .map(|f| Firing {
                    at: f.at.with_timezone(&calendar.timezone),
                    source: Source::Calendar {
                        calendar,
                        uid: f.uid,
                        kind: f.kind,
                    },
                    patch: f.patch,
                }),
        );
    }
    Ok(out)
}

impl Firing<'_> {
    /// The token and user it is for, `token/user` or `token`.
    fn target(&self) -> String {
        match self.user() {
            Some(u) => format!("{}/{u}", self.token()),
            None => self.token().to_string(),
        }
    }

    fn token(&self) -> &str {
        match &self.source {
            Source::Rule(r) => &r.token,
            Source::Calendar { calendar, .. } => &calendar.token,
        }
    }

    fn user(&self) -> Option<&str> {
        match &self.source {
            Source::Rule(r) => r.user.as_deref(),
            Source::Calendar { calendar, .. } => calendar.user.as_deref(),
        }
    }

    /// Whether the status it sets is temporary: the one it replaces is put back at its expiry.
    fn restores(&self) -> bool {
        let temporary = match &self.source {
            Source::Rule(r) => r.restore,
            Source::Calendar { calendar, .. } => calendar.restore,
        };
        temporary && self.expires().is_some()
    }

    fn expires(&self) -> Option<DateTime<Tz>> {
        let s = self.patch.status.as_ref()?;
        (s.expiration != 0)
            .then(|| DateTime::from_timestamp(s.expiration, 0))
            .flatten()
            .map(|e| e.with_timezone(&self.at.timezone()))
    }

    /// What it sets, as shown on one line: the status (or "(clear status)") and each
    /// other profile field.
    fn what(&self) -> Vec<String> {
        let mut what: Vec<String> = Vec::new();
        if let Some(s) = &self.patch.status {
            if s.is_empty() {
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
        match self.patch.dnd {
            Some(Dnd::Snooze { .. }) => what.push("(DND on until expiry)".into()),
            Some(Dnd::End) => what.push("(DND off)".into()),
            None => {}
        }
        if let Some(p) = self.patch.presence {
            what.push(format!("(presence {})", p.as_str()));
        }
        if let Source::Calendar {
            kind: Kind::End, ..
        } = self.source
        {
            what.push("(calendar status ends: restore the one from before)".into());
        }
        what
    }

    /// One line: instant, rule (or `calendar NAME`), target, what it sets, expiry; a
    /// calendar's line ends with the occurrence's UID. A calendar's text comes from its
    /// feed, so it is escaped.
    pub fn to_line(&self) -> String {
        let what = self.what().join("  ");
        let (name, what) = match &self.source {
            Source::Rule(r) => (r.name.clone(), what),
            Source::Calendar { calendar, .. } => (
                format!("calendar {}", calendar.name),
                escape(&what).into_owned(),
            ),
        };
        let mut line = format!(
            "{}  {name}  {}  {what}",
            self.at.to_rfc3339(),
            self.target()
        );
        if let Some(e) = self.expires() {
            line.push_str(&format!("  expires {}", e.to_rfc3339()));
        }
        if self.restores() {
            line.push_str("  then restores the status from before");
        }
        if let Source::Calendar { uid, .. } = &self.source {
            line.push_str(&format!("  uid {}", escape(uid)));
        }
        line
    }

    /// One JSON object with the keys `at`, `rule`, `token`, `user`, `expires`, `profile`,
    /// `source` (`rule` or `calendar`), `calendar`, `uid` (SPEC §2 and §5), `restore` (the
    /// status from before is put back at the expiry), `dnd` (true: snooze until the expiry,
    /// false: end a snooze, null) and `presence` (`away`, `auto` or null); `rule` is null on
    /// a calendar's line, `calendar` and `uid` on a rule's.
    pub fn to_json(&self) -> serde_json::Value {
        let (source, rule, calendar, uid) = match &self.source {
            Source::Rule(r) => ("rule", Some(r.name.as_str()), None, None),
            Source::Calendar { calendar, uid, .. } => (
                "calendar",
                None,
                Some(calendar.name.as_str()),
                Some(uid.as_str()),
            ),
        };
        serde_json::json!({
            "at": self.at.to_rfc3339(),
            "source": source,
            "rule": rule,
            "calendar": calendar,
            "uid": uid,
            "token": self.token(),
            "user": self.user(),
            "expires": self.expires().map(|e| e.to_rfc3339()),
            "profile": crate::slack::wire::profile_json(&self.patch),
            "restore": self.restores(),
            "dnd": self.patch.dnd.map(|d| matches!(d, Dnd::Snooze { .. })),
            "presence": self.patch.presence.map(|p| p.as_str()),
        })
    }
}

/// Fetching one calendar for `preview` and `preview --events`: the one code path both use,
/// so a failing feed is the same error in both.
mod feeds {
    use chrono::{DateTime, Utc};

    use super::super::CliError;
    use crate::calendar::Occurrence;
    use crate::config::Calendar;
    use crate::feed::{Fetched, Fetcher};

    /// The occurrences of `calendar` over its horizon from `from`, and the horizon's end;
    /// its warnings printed to standard error.
    pub async fn occurrences(
        fetcher: &Fetcher,
        calendar: &Calendar,
        from: DateTime<Utc>,
    ) -> Result<(Vec<Occurrence>, DateTime<Utc>), CliError> {
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
            return Ok((Vec::new(), from));
        };
        let read = calendar.read(&bytes, from);
        for w in &read.warnings {
            eprintln!("slack-statusd: warning: {}", calendar.describe(w));
        }
        Ok((read.occurrences, read.window.1))
    }
}

/// `preview --events` (SPEC §5): every calendar's occurrences over `[from, from + horizon)`,
/// ignored ones included, with the map entry each matches.
mod events {
    use std::io::Write;

    use chrono::{DateTime, Utc};

    use super::super::CliError;
    use super::{feeds, print};
    use crate::calendar::{Map, Matcher, Occurrence};
    use crate::config::{Calendar, Config};
    use crate::feed::{FetchLimits, Fetcher};
    use crate::untrusted::escape;

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
            let (occurrences, _) = feeds::occurrences(&fetcher, calendar, from).await?;
            for occurrence in occurrences {
                listed.push(Listed {
                    map: Map(&calendar.map).matches(&occurrence),
                    calendar,
                    occurrence,
                });
            }
        }
        // Stable: equal starts keep the config's order of calendars and each feed's order.
        listed.sort_by_key(|l| l.occurrence.start);
        listed.truncate(count);
        print(out, &listed, json, Listed::to_json, Listed::to_line)
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
