//! Expansion: events + a window + the calendar's zone → occurrences. Pure.
//!
//! Recurrence is computed on *local wall time* in the event's zone: the `rrule` crate is
//! given DTSTART as a naive time dressed as UTC, where no DST exists, and each local start is
//! then mapped to an instant by [`local_to_instant`] — the same gap and fold rule as every
//! rule firing (SPEC §4). This sidesteps rrule's own DST handling, which duplicates and drops
//! occurrences across transitions (fmeringdal/rust-rrule#115), and it is what RFC 5545 means:
//! a weekly 09:00 meeting stays at 09:00 local time when the clocks change.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Month, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::parse::{Busy, Event, Freq, Length, Rule, Time, Warning};
use crate::schedule::local_to_instant;

/// The most occurrences generated for one rule. Rules without COUNT start their walk just
/// before the window (`skip_ahead`), so this is about a window's worth (a 5-minute rule over
/// 14 days is 4,032; a daily one with COUNT from 2013 is 5,000); a rule with COUNT walks
/// from DTSTART. The cap keeps a hostile `FREQ=SECONDLY` from costing seconds.
const MAX_GENERATED: usize = 5_000;

/// Why an occurrence is listed but never shown. Serialized as [`Ignored::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ignored {
    /// One of the calendar's `email` addresses has `PARTSTAT=DECLINED`.
    Declined,
    /// `STATUS:CANCELLED` on the event or on this occurrence's override.
    Cancelled,
}

impl Ignored {
    /// `preview --events`'s word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Ignored::Declined => "declined",
            Ignored::Cancelled => "cancelled",
        }
    }
}

/// One occurrence of an event, as instants. It round-trips through JSON: the daemon keeps a
/// calendar's last good copy as its occurrences (a private one's title is already gone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Occurrence {
    /// The event's UID.
    pub uid: String,
    /// When it starts (a start in a DST gap has moved to the first instant after it).
    pub start: DateTime<Utc>,
    /// When it ends (exclusive); equal to `start` for a zero-length event.
    pub end: DateTime<Utc>,
    /// A DATE event: local midnight to midnight in the calendar's zone.
    pub all_day: bool,
    /// Its busy state.
    pub busy: Busy,
    /// Its title; `None` when private (or when it has none).
    pub summary: Option<String>,
    /// A private event shows as `Busy` (SPEC §5); kept apart from `summary` so nothing has to
    /// guess why a summary is missing.
    pub private: bool,
    /// Why it is never shown, if it is not.
    pub ignored: Option<Ignored>,
}

/// The occurrences in a window and what could not be expanded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    /// Sorted by start, then by feed order.
    pub occurrences: Vec<Occurrence>,
    /// Events skipped here (a rule the recurrence engine refuses) or truncated.
    pub warnings: Vec<Warning>,
}

/// Expand `events` (in feed order, as [`super::parse`] returns them) to the occurrences that
/// overlap `[from, to)`. `zone` is the calendar's: floating times and all-day events are read
/// in it. `me` are the calendar's `email` addresses, for declined events.
pub fn expand(
    events: &[Event],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    zone: Tz,
    me: &[String],
) -> Expansion {
    let me: Vec<String> = me.iter().map(|m| m.trim().to_ascii_lowercase()).collect();
    let mut out = Expansion::default();
    let mut found: Vec<(usize, Occurrence)> = Vec::new();

    // Overrides by UID, each with its feed index; a master consumes those it owns.
    let masters: std::collections::HashSet<&str> = events
        .iter()
        .filter(|e| e.recurrence_id.is_none())
        .map(|e| e.uid.as_str())
        .collect();
    let mut overrides: HashMap<&str, Vec<(usize, &Event)>> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        if e.recurrence_id.is_some() {
            overrides.entry(e.uid.as_str()).or_default().push((i, e));
        }
    }

    let window = Window { from, to };
    for (index, event) in events.iter().enumerate() {
        if event.recurrence_id.is_some() {
            // An override whose master is missing stands on its own.
            if !masters.contains(event.uid.as_str()) {
                push_single(&mut found, index, event, event.start, zone, &me, window);
            }
            continue;
        }
        let ez = event_zone(event.start, zone);
        let starts = match local_starts(event, ez, zone, window) {
            Ok((starts, note)) => {
                if let Some(message) = note {
                    out.warnings.push(Warning {
                        line: 0,
                        uid: Some(event.uid.clone()),
                        message,
                    });
                }
                starts
            }
            Err(message) => {
                out.warnings.push(Warning {
                    line: 0,
                    uid: Some(event.uid.clone()),
                    message,
                });
                continue;
            }
        };
        let mut starts = starts;
        let own = overrides
            .get(event.uid.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for &(_, o) in own {
            if let Some(rid) = o.recurrence_id {
                remove_matching(&mut starts, rid, ez, zone);
            }
        }
        // Local starts in and just after a DST gap map to one instant: one occurrence.
        let mut previous = None;
        for local in starts {
            let at = local_to_instant(if event.start.is_date() { zone } else { ez }, local);
            if previous.replace(at) != Some(at) {
                push_occurrence(&mut found, index, event, local, ez, zone, &me, window);
            }
        }
        for &(i, o) in own {
            push_single(&mut found, i, o, o.start, zone, &me, window);
        }
    }

    found.sort_by_key(|(index, o)| (o.start, *index));
    out.occurrences = found.into_iter().map(|(_, o)| o).collect();
    out
}

#[derive(Clone, Copy)]
struct Window {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

impl Window {
    fn overlaps(self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        start < self.to && (end > self.from || (start == end && start >= self.from))
    }
}

/// The zone an event recurs in: its DTSTART's, or the calendar's for floating and DATE
/// values. A UTC DTSTART recurs in UTC.
fn event_zone(start: Time, calendar: Tz) -> Tz {
    match start {
        Time::Zoned(_, tz) => tz,
        Time::Utc(_) => Tz::UTC,
        Time::Date(_) | Time::Floating(_) => calendar,
    }
}

/// The instant of a value (a DATE is its local midnight in the calendar's zone).
fn instant(t: Time, calendar: Tz) -> DateTime<Utc> {
    match t {
        Time::Date(d) => local_to_instant(calendar, d.and_time(NaiveTime::MIN)),
        Time::Floating(n) => local_to_instant(calendar, n),
        Time::Utc(u) => u,
        Time::Zoned(n, tz) => local_to_instant(tz, n),
    }
}

/// A value as wall time in the event's zone `ez` (SPEC §5: an EXDATE, RDATE or UNTIL of
/// another kind than DTSTART is read in the event's zone).
fn to_local(t: Time, ez: Tz, calendar: Tz) -> NaiveDateTime {
    match t {
        Time::Date(d) => d.and_time(NaiveTime::MIN),
        Time::Floating(n) if ez == calendar => n,
        Time::Zoned(n, tz) if tz == ez => n,
        other => instant(other, calendar).with_timezone(&ez).naive_local(),
    }
}

/// Every local start of a master event, sorted, without EXDATEs, and a note for the
/// warnings when the rule was cut at [`MAX_GENERATED`] or can never match.
fn local_starts(
    event: &Event,
    ez: Tz,
    calendar: Tz,
    window: Window,
) -> Result<(Vec<NaiveDateTime>, Option<String>), String> {
    let first = to_local(event.start, ez, calendar);
    let mut starts: BTreeSet<NaiveDateTime> = BTreeSet::new();
    starts.insert(first);
    let mut note = None;
    if let Some(rule) = &event.rule {
        // Local times past the window's end (plus a day for any zone offset and a day for
        // an occurrence that moves out of a gap) cannot start inside it.
        let last = window.to.with_timezone(&ez).naive_local() + TimeDelta::days(2);
        // Occurrences that start this early cannot reach the window, whatever their length.
        let earliest = window.from.with_timezone(&ez).naive_local()
            - TimeDelta::days(2)
            - nominal_length(event, calendar);
        let span = (first, earliest, last);
        let (generated, why) = recur(rule, span, event.start.is_date(), ez, calendar)?;
        note = why;
        starts.extend(generated);
    }
    for &r in &event.rdates {
        starts.insert(to_local(r, ez, calendar));
    }
    for &x in &event.exdates {
        match x {
            // A DATE excludes the occurrence that starts on that local date.
            Time::Date(d) => starts.retain(|s| s.date() != d),
            other => {
                starts.remove(&to_local(other, ez, calendar));
            }
        }
    }
    Ok((starts.into_iter().collect(), note))
}

/// Remove the occurrence an override's RECURRENCE-ID names.
fn remove_matching(starts: &mut Vec<NaiveDateTime>, rid: Time, ez: Tz, calendar: Tz) {
    match rid {
        Time::Date(d) => starts.retain(|s| s.date() != d),
        other => {
            let local = to_local(other, ez, calendar);
            starts.retain(|s| *s != local);
        }
    }
}

/// The rule's local starts up to `last`, DTSTART counted as the first (RFC 5545 §3.8.5.3:
/// also when the rule would not produce it, and toward COUNT), and a note for the warnings
/// when the list was cut or the rule can never match.
///
/// `span` is (DTSTART, the earliest start that can matter, the latest), all local.
fn recur(
    rule: &Rule,
    span: (NaiveDateTime, NaiveDateTime, NaiveDateTime),
    all_day: bool,
    ez: Tz,
    calendar: Tz,
) -> Result<(Vec<NaiveDateTime>, Option<String>), String> {
    let (first, earliest, last) = span;
    let as_utc = |n: NaiveDateTime| rrule::Tz::UTC.from_utc_datetime(&n);
    let until = rule.until.map(|u| match u {
        // A DATE UNTIL on a timed event includes that whole local day.
        Time::Date(d) if !all_day => d
            .and_hms_opt(23, 59, 59)
            .unwrap_or(d.and_time(NaiveTime::MIN)),
        other => to_local(other, ez, calendar),
    });
    if until.is_some_and(|u| u < first) {
        return Ok((Vec::new(), None));
    }
    let mut r = rrule::RRule::new(match rule.freq {
        Freq::Secondly => rrule::Frequency::Secondly,
        Freq::Minutely => rrule::Frequency::Minutely,
        Freq::Hourly => rrule::Frequency::Hourly,
        Freq::Daily => rrule::Frequency::Daily,
        Freq::Weekly => rrule::Frequency::Weekly,
        Freq::Monthly => rrule::Frequency::Monthly,
        Freq::Yearly => rrule::Frequency::Yearly,
    })
    .interval(rule.interval)
    .week_start(rule.week_start);
    if let Some(count) = rule.count {
        r = r.count(count);
    }
    if let Some(u) = until {
        r = r.until(as_utc(u));
    }
    let months: Option<Vec<Month>> = rule
        .by_month
        .iter()
        .map(|&m| Month::try_from(m).ok())
        .collect();
    let months = months.ok_or("RRULE: BYMONTH must be 1 to 12; the event is skipped")?;
    r = r
        .by_second(rule.by_second.clone())
        .by_minute(rule.by_minute.clone())
        .by_hour(rule.by_hour.clone())
        .by_weekday(
            rule.by_day
                .iter()
                .map(|&(n, d)| match n {
                    Some(n) => rrule::NWeekday::Nth(n, d),
                    None => rrule::NWeekday::Every(d),
                })
                .collect(),
        )
        .by_month_day(rule.by_month_day.clone())
        .by_year_day(rule.by_year_day.clone())
        .by_week_no(rule.by_week_no.clone())
        .by_month(&months)
        .by_set_pos(rule.by_set_pos.clone());
    let skipped_to = skip_ahead(rule, first, earliest);
    if until.is_some_and(|u| u < skipped_to) {
        // The rule ended before the window; the engine would refuse UNTIL < DTSTART.
        return Ok((Vec::new(), None));
    }
    let set = r.build(as_utc(skipped_to)).map_err(|e| {
        let e: String = e.to_string().chars().take(200).collect();
        format!("RRULE cannot be expanded ({e}); the event is skipped")
    })?;
    // Checked once the engine has accepted the rule, so that a rule it refuses is still
    // skipped as before.
    if let Some(why) = never_matches(rule) {
        // The engine would look for a first match through its limit of 100,000 periods
        // (a second or more per rule in a debug build) and find none: DTSTART alone is the
        // answer it would have given.
        return Ok((
            Vec::new(),
            Some(format!(
                "RRULE can never match ({why}); only DTSTART is kept, fix the rule to get \
                 its repeats"
            )),
        ));
    }

    let mut out = Vec::new();
    let mut cut = None;
    for (n, t) in (&set).into_iter().enumerate() {
        let local = t.naive_utc();
        if local > last {
            break;
        }
        if n >= MAX_GENERATED {
            cut = Some(format!(
                "RRULE produces more than {MAX_GENERATED} occurrences; the later ones are not \
                 expanded"
            ));
            break;
        }
        out.push(local);
    }
    // DTSTART is the first occurrence even when the rule would not produce it; with COUNT
    // it takes one of the rule's places. (With COUNT nothing is skipped.)
    if out.first() != Some(&first) && rule.count.is_some() {
        let count = rule.count.unwrap_or(0) as usize;
        out.truncate(count.saturating_sub(1));
    }
    Ok((out, cut))
}

/// Why `rule` can never produce an occurrence, if its BYxxx parts rule out every candidate
/// of every period: a BYSETPOS past the largest set a period can hold, or BYMONTH,
/// BYYEARDAY and BYMONTHDAY that no day satisfies at once (BYMONTHDAY=30 in February,
/// BYYEARDAY=-120 on the 30th from a month's end). Each test is an upper bound on what could
/// match, so a rule that can match, however rarely (February 29), is never refused.
fn never_matches(rule: &Rule) -> Option<&'static str> {
    let distinct = |v: &[u8]| v.iter().collect::<BTreeSet<_>>().len().max(1);
    let months: Vec<usize> = rule
        .by_month
        .iter()
        .filter(|m| (1..=12).contains(*m))
        .map(|&m| usize::from(m) - 1)
        .collect();

    // The most candidates one period holds: its days × the times of day each day has.
    let (days, finer) = match rule.freq {
        Freq::Yearly => (366, 3),
        Freq::Monthly => (31, 3),
        Freq::Weekly => (7, 3),
        Freq::Daily => (1, 3),
        Freq::Hourly => (1, 2),
        Freq::Minutely => (1, 1),
        Freq::Secondly => (1, 0),
    };
    let times = [&rule.by_hour, &rule.by_minute, &rule.by_second][3 - finer..]
        .iter()
        .map(|v| distinct(v))
        .product::<usize>();
    let largest = i64::try_from(days * times).unwrap_or(i64::MAX);
    if !rule.by_set_pos.is_empty()
        && rule
            .by_set_pos
            .iter()
            .all(|&p| i64::from(p).abs() > largest)
    {
        return Some("every BYSETPOS is past the largest set one period can have");
    }

    // BYMONTH, BYYEARDAY and BYMONTHDAY depend only on the day of the year and whether the
    // year is a leap year: one leap and one common year show every combination they can
    // match. (BYDAY and BYWEEKNO are left out, so this only ever errs towards "can match".)
    let date_parts = !rule.by_month_day.is_empty() || !rule.by_year_day.is_empty();
    if date_parts
        && ![true, false]
            .iter()
            .any(|&leap| year_matches(rule, &months, leap))
    {
        return Some("no day of any year has the BYMONTH, BYYEARDAY and BYMONTHDAY it names");
    }
    None
}

/// Whether a day of a leap (or common) year passes the rule's BYMONTH (`months`, 0-based),
/// BYYEARDAY and BYMONTHDAY, each counted from either end as RFC 5545 counts them.
fn year_matches(rule: &Rule, months: &[usize], leap: bool) -> bool {
    let lengths: [i32; 12] = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let year_length: i32 = lengths.iter().sum();
    let mut year_day = 0;
    lengths.iter().enumerate().any(|(month, &length)| {
        (1..=length).any(|day| {
            year_day += 1;
            let in_month = months.is_empty() || months.contains(&month);
            let in_year = rule.by_year_day.is_empty()
                || rule.by_year_day.iter().any(|&n| {
                    let n = i32::from(n);
                    n == year_day || n == year_day - year_length - 1
                });
            let in_days = rule.by_month_day.is_empty()
                || rule.by_month_day.iter().any(|&n| {
                    let n = i32::from(n);
                    n == day || n == day - length - 1
                });
            in_month && in_year && in_days
        })
    })
}

/// Where to start the rule's walk: DTSTART moved forward by whole periods (INTERVAL × one
/// second, minute, hour, day or week) to just before `earliest`. On naive wall time these
/// periods have a fixed length, so the moved start keeps the rule's phase (time of day,
/// weekday, week parity) and the rule produces exactly the occurrences it would have from
/// DTSTART; this keeps a daily rule begun years ago, or a MINUTELY one, from walking every
/// past occurrence. Months and years vary in length, and COUNT needs every occurrence
/// counted, so those rules start at DTSTART.
fn skip_ahead(rule: &Rule, first: NaiveDateTime, earliest: NaiveDateTime) -> NaiveDateTime {
    let unit: i64 = match rule.freq {
        Freq::Secondly => 1,
        Freq::Minutely => 60,
        Freq::Hourly => 3_600,
        Freq::Daily => 86_400,
        Freq::Weekly => 604_800,
        Freq::Monthly | Freq::Yearly => return first,
    };
    if rule.count.is_some() || earliest <= first {
        return first;
    }
    let period = unit * i64::from(rule.interval);
    let periods = (earliest - first).num_seconds() / period;
    periods
        .checked_mul(period)
        .and_then(|s| first.checked_add_signed(TimeDelta::seconds(s)))
        .unwrap_or(first)
}

/// About how long one occurrence lasts on the wall clock, for the skip-ahead margin; at
/// least zero, at most the ten years a DURATION may have.
fn nominal_length(event: &Event, calendar: Tz) -> TimeDelta {
    let length = match event.length {
        Length::End(end) => instant(end, calendar) - instant(event.start, calendar),
        Length::Duration { days, seconds } => TimeDelta::days(days) + TimeDelta::seconds(seconds),
        Length::Default if event.start.is_date() => TimeDelta::days(1),
        Length::Default => TimeDelta::zero(),
    };
    length.clamp(TimeDelta::zero(), TimeDelta::days(3_660))
}

/// An override, or an override without a master: one occurrence at its own DTSTART.
fn push_single(
    found: &mut Vec<(usize, Occurrence)>,
    index: usize,
    event: &Event,
    start: Time,
    calendar: Tz,
    me: &[String],
    window: Window,
) {
    let ez = event_zone(start, calendar);
    let local = to_local(start, ez, calendar);
    push_occurrence(found, index, event, local, ez, calendar, me, window);
}

#[allow(clippy::too_many_arguments)] // each is one fact about the occurrence
fn push_occurrence(
    found: &mut Vec<(usize, Occurrence)>,
    index: usize,
    event: &Event,
    local: NaiveDateTime,
    ez: Tz,
    calendar: Tz,
    me: &[String],
    window: Window,
) {
    let all_day = event.start.is_date();
    let (start, end) = if all_day {
        all_day_span(event, local, calendar)
    } else {
        timed_span(event, local, ez, calendar)
    };
    if !window.overlaps(start, end) {
        return;
    }
    let declined = event
        .attendees
        .iter()
        .any(|(address, partstat)| partstat == "DECLINED" && me.iter().any(|m| m == address));
    let ignored = if event.cancelled {
        Some(Ignored::Cancelled)
    } else if declined {
        Some(Ignored::Declined)
    } else {
        None
    };
    found.push((
        index,
        Occurrence {
            uid: event.uid.clone(),
            start,
            end,
            all_day,
            busy: event.busy,
            summary: event.summary.clone(),
            private: event.private,
            ignored,
        },
    ));
}

/// Local midnight to midnight in the calendar's zone, DTEND exclusive.
fn all_day_span(
    event: &Event,
    local: NaiveDateTime,
    calendar: Tz,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = local_to_instant(calendar, local);
    let first = to_local(event.start, calendar, calendar);
    let (days, seconds) = match event.length {
        Length::End(Time::Date(e)) => ((e - first.date()).num_days(), 0),
        Length::End(other) => {
            let delta = instant(other, calendar) - instant(event.start, calendar);
            (delta.num_days(), delta.num_seconds() % 86_400)
        }
        Length::Duration { days, seconds } => (days, seconds),
        Length::Default => (1, 0),
    };
    let end_local = local
        .checked_add_signed(TimeDelta::days(days.max(0)))
        .unwrap_or(local);
    let end = local_to_instant(calendar, end_local) + TimeDelta::seconds(seconds.max(0));
    (start, end.max(start))
}

/// A timed occurrence: DTEND keeps its wall-clock distance when it is in DTSTART's zone
/// (a 09:00–10:00 meeting stays 09:00–10:00 across DST), else its exact distance.
fn timed_span(
    event: &Event,
    local: NaiveDateTime,
    ez: Tz,
    calendar: Tz,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = local_to_instant(ez, local);
    let end = match event.length {
        Length::End(end) => {
            let same_zone =
                matches!(
                    (event.start, end),
                    (Time::Zoned(_, a), Time::Zoned(_, b)) if a == b
                ) || matches!((event.start, end), (Time::Floating(_), Time::Floating(_)));
            if same_zone {
                let delta = to_local(end, ez, calendar) - to_local(event.start, ez, calendar);
                local
                    .checked_add_signed(delta)
                    .map(|e| local_to_instant(ez, e))
                    .unwrap_or(start)
            } else {
                start + (instant(end, calendar) - instant(event.start, calendar))
            }
        }
        Length::Duration { days, seconds } => {
            let wall = local
                .checked_add_signed(TimeDelta::days(days))
                .unwrap_or(local);
            local_to_instant(ez, wall) + TimeDelta::seconds(seconds)
        }
        Length::Default => start,
    };
    (start, end.max(start))
}
