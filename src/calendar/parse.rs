//! Parsing: the bytes of an iCalendar feed → events. Pure: no I/O, no clock, no logging —
//! a broken event is skipped and reported as a [`Warning`] in the result, the rest kept.
//!
//! Only what the timeline needs survives: a private event's title is dropped here, and no
//! description, location or attendee name is kept at all.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::zones;

/// How busy an event makes its attendee (SPEC §5 "Busy state"). Serialized as the config's
/// word for it ([`Busy::as_str`]), since occurrences are kept in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Busy {
    /// `X-MICROSOFT-CDO-BUSYSTATUS:FREE`, or `TRANSP:TRANSPARENT`.
    Free,
    /// `X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE`, or `STATUS:TENTATIVE`.
    Tentative,
    /// Everything else.
    Busy,
    /// Out of office: `X-MICROSOFT-CDO-BUSYSTATUS:OOF`.
    Oof,
}

impl Busy {
    /// The state as the config writes it (`busy = [...]`), from any case.
    pub fn parse(text: &str) -> Option<Busy> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "free" => Busy::Free,
            "tentative" => Busy::Tentative,
            "busy" => Busy::Busy,
            "oof" => Busy::Oof,
            _ => return None,
        })
    }

    /// The config's and `preview`'s word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Busy::Free => "free",
            Busy::Tentative => "tentative",
            Busy::Busy => "busy",
            Busy::Oof => "oof",
        }
    }
}

/// A DTSTART, DTEND, RDATE, EXDATE, RECURRENCE-ID or UNTIL value, with its zone resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Time {
    /// A DATE value: all-day, read in the calendar's zone (even when it carries a TZID).
    Date(NaiveDate),
    /// A floating DATE-TIME (no `Z`, no TZID, or a TZID nobody knows): the calendar's zone.
    Floating(NaiveDateTime),
    /// A UTC DATE-TIME (`…Z`).
    Utc(DateTime<Utc>),
    /// A DATE-TIME with a TZID that names, or was matched to, an IANA zone.
    Zoned(NaiveDateTime, Tz),
}

impl Time {
    /// Whether this is a DATE (all-day) value.
    pub fn is_date(self) -> bool {
        matches!(self, Time::Date(_))
    }
}

/// How long each occurrence lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    /// DTEND was given.
    End(Time),
    /// DURATION was given: whole days (nominal: they follow the wall clock across DST) and
    /// seconds (exact), as RFC 5545 §3.3.6 reads them.
    Duration {
        /// Weeks and days, in days.
        days: i64,
        /// Hours, minutes and seconds, in seconds.
        seconds: i64,
    },
    /// Neither: zero length for a DATE-TIME, one day for a DATE (RFC 5545 §3.6.1).
    Default,
}

/// RRULE's FREQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freq {
    /// SECONDLY.
    Secondly,
    /// MINUTELY.
    Minutely,
    /// HOURLY.
    Hourly,
    /// DAILY.
    Daily,
    /// WEEKLY.
    Weekly,
    /// MONTHLY.
    Monthly,
    /// YEARLY.
    Yearly,
}

/// An RRULE with its parts checked for shape; the recurrence engine checks their ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// FREQ (required: a rule without it makes the event unparsable).
    pub freq: Freq,
    /// INTERVAL, default 1.
    pub interval: u16,
    /// COUNT, counting DTSTART as the first.
    pub count: Option<u32>,
    /// UNTIL, inclusive; read in the event's zone when its kind differs from DTSTART's.
    pub until: Option<Time>,
    /// BYSECOND.
    pub by_second: Vec<u8>,
    /// BYMINUTE.
    pub by_minute: Vec<u8>,
    /// BYHOUR.
    pub by_hour: Vec<u8>,
    /// BYDAY: an optional ordinal (`-1SU`, `2MO`) and the weekday.
    pub by_day: Vec<(Option<i16>, Weekday)>,
    /// BYMONTHDAY.
    pub by_month_day: Vec<i8>,
    /// BYYEARDAY.
    pub by_year_day: Vec<i16>,
    /// BYWEEKNO.
    pub by_week_no: Vec<i8>,
    /// BYMONTH.
    pub by_month: Vec<u8>,
    /// BYSETPOS.
    pub by_set_pos: Vec<i32>,
    /// WKST, default Monday.
    pub week_start: Weekday,
}

/// One VEVENT: a master (with or without a rule) or, with `recurrence_id`, an override of
/// one occurrence of the master of the same UID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// UID.
    pub uid: String,
    /// SUMMARY, or `None` for a private or confidential event (its title is not kept) or an
    /// event without one.
    pub summary: Option<String>,
    /// Whether the event is private (`CLASS:PRIVATE` or `CONFIDENTIAL`): it shows as `Busy`.
    pub private: bool,
    /// The busy state (SPEC §5).
    pub busy: Busy,
    /// `STATUS:CANCELLED`.
    pub cancelled: bool,
    /// Each attendee's address (lower-case, without `mailto:`) and PARTSTAT (upper-case), so
    /// that expansion can ignore events "I" declined.
    pub attendees: Vec<(String, String)>,
    /// DTSTART.
    pub start: Time,
    /// DTEND, DURATION or neither.
    pub length: Length,
    /// RRULE (only the first one counts; RFC 5545 says SHOULD NOT have more).
    pub rule: Option<Rule>,
    /// RDATE values (a PERIOD contributes its start).
    pub rdates: Vec<Time>,
    /// EXDATE values.
    pub exdates: Vec<Time>,
    /// RECURRENCE-ID: which occurrence of the master this VEVENT replaces.
    pub recurrence_id: Option<Time>,
}

/// Something in the feed that was skipped or read by a fallback rule. Carries no title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The line of the feed (1-based, after unfolding: the first physical line) it is about.
    pub line: usize,
    /// The event's UID, when it had one.
    pub uid: Option<String>,
    /// What was wrong and what was done about it.
    pub message: String,
}

/// What a feed parses into: the events in feed order and what was wrong with the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Every event that parsed, in feed order.
    pub events: Vec<Event>,
    /// Every event skipped and every fallback taken.
    pub warnings: Vec<Warning>,
}

/// Parse an iCalendar feed. Never fails as a whole: what cannot be read becomes a warning.
pub fn parse(bytes: &[u8]) -> Parsed {
    let text = String::from_utf8_lossy(bytes);
    let lines = unfold(&text);
    let mut out = Parsed::default();

    // Zones first: a VTIMEZONE may follow the events that use it.
    let vtimezones = vtimezones(&lines, &mut out.warnings);

    let mut depth_in_event: Option<(usize, usize, Vec<&Line>)> = None; // (start line, nesting, props)
    for line in &lines {
        match (&mut depth_in_event, line.name.as_str()) {
            (None, "BEGIN") if line.value.eq_ignore_ascii_case("VEVENT") => {
                depth_in_event = Some((line.number, 0, Vec::new()));
            }
            (None, _) => {}
            (Some((_, nesting, _)), "BEGIN") => *nesting += 1,
            (Some((_, nesting, _)), "END") if *nesting > 0 => *nesting -= 1,
            (Some((start, 0, props)), "END") => {
                let (start, props) = (*start, std::mem::take(props));
                depth_in_event = None;
                if !line.value.eq_ignore_ascii_case("VEVENT") {
                    out.warnings.push(Warning {
                        line: start,
                        uid: None,
                        message: format!(
                            "VEVENT closed by END:{}; the event is read as far as it goes",
                            bounded(&line.value)
                        ),
                    });
                }
                match event(&props, &vtimezones, &mut out.warnings) {
                    Ok(e) => out.events.push(e),
                    Err((uid, message)) => out.warnings.push(Warning {
                        line: start,
                        uid,
                        message,
                    }),
                }
            }
            (Some((_, 0, props)), _) => props.push(line),
            (Some(_), _) => {} // inside a VALARM or another nested component
        }
    }
    // DTSTART and DTEND with the same unknown TZID say the same thing once.
    out.warnings
        .dedup_by(|a, b| a.uid == b.uid && a.message == b.message);
    if let Some((start, _, _)) = depth_in_event {
        out.warnings.push(Warning {
            line: start,
            uid: None,
            message: "VEVENT without END:VEVENT (a truncated feed?); the event is skipped"
                .to_owned(),
        });
    }
    out
}

/// One content line after unfolding: `NAME;PARAM=VALUE:value`.
#[derive(Debug)]
struct Line {
    /// The first physical line, for warnings.
    number: usize,
    /// Upper-cased.
    name: String,
    /// Parameter names upper-cased, values unquoted.
    params: Vec<(String, String)>,
    value: String,
}

impl Line {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Unfold (RFC 5545 §3.1: a line starting with a space or tab continues the previous one)
/// and split each content line; lines with no `:` are dropped.
fn unfold(text: &str) -> Vec<Line> {
    let mut logical: Vec<(usize, String)> = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(rest) = raw.strip_prefix([' ', '\t']) {
            if let Some((_, last)) = logical.last_mut() {
                last.push_str(rest);
                continue;
            }
        }
        if !raw.trim().is_empty() {
            logical.push((i + 1, raw.to_owned()));
        }
    }
    logical
        .into_iter()
        .filter_map(|(n, l)| split_line(n, &l))
        .collect()
}

fn split_line(number: usize, line: &str) -> Option<Line> {
    // The name and parameters end at the first ':' outside double quotes.
    let mut in_quotes = false;
    let mut colon = None;
    for (i, c) in line.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            ':' if !in_quotes => {
                colon = Some(i);
                break;
            }
            _ => {}
        }
    }
    let colon = colon?;
    let (head, value) = (&line[..colon], &line[colon + 1..]);
    let mut parts = split_outside_quotes(head, ';').into_iter();
    let name = parts.next()?.trim().to_ascii_uppercase();
    let params = parts
        .filter_map(|p| {
            let (n, v) = p.split_once('=')?;
            Some((
                n.trim().to_ascii_uppercase(),
                v.trim().trim_matches('"').to_owned(),
            ))
        })
        .collect();
    Some(Line {
        number,
        name,
        params,
        value: value.to_owned(),
    })
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut in_quotes, mut from) = (false, 0);
    for (i, c) in s.char_indices() {
        if c == '"' {
            in_quotes = !in_quotes;
        } else if c == sep && !in_quotes {
            out.push(&s[from..i]);
            from = i + c.len_utf8();
        }
    }
    out.push(&s[from..]);
    out
}

/// At most 40 characters of a value for a warning, so a hostile feed cannot make one long.
/// Never called on a SUMMARY.
fn bounded(value: &str) -> String {
    let mut s: String = value.chars().take(40).collect();
    if value.chars().count() > 40 {
        s.push('…');
    }
    s
}

/// TEXT unescaping (RFC 5545 §3.3.11).
fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

type Failure = (Option<String>, String);

fn event(
    props: &[&Line],
    vtimezones: &HashMap<String, Tz>,
    warnings: &mut Vec<Warning>,
) -> Result<Event, Failure> {
    let first = |name: &str| props.iter().find(|l| l.name == name).copied();
    let uid = first("UID")
        .map(|l| l.value.trim().to_owned())
        .filter(|u| !u.is_empty());
    let fail = |message: String| (uid.clone(), message);
    let Some(uid_value) = uid.clone() else {
        return Err(fail(
            "VEVENT without a UID; the event is skipped".to_owned(),
        ));
    };
    let mut warn = |line: usize, message: String| {
        warnings.push(Warning {
            line,
            uid: Some(uid_value.clone()),
            message,
        })
    };
    let zones = Zones { vtimezones };

    let dtstart = first("DTSTART")
        .ok_or_else(|| fail("VEVENT without DTSTART; the event is skipped".to_owned()))?;
    let start = zones
        .time(dtstart, &dtstart.value, &mut warn)
        .map_err(|m| fail(format!("DTSTART: {m}; the event is skipped")))?;

    let length = if let Some(dtend) = first("DTEND") {
        match zones.time(dtend, &dtend.value, &mut warn) {
            Ok(end) => Length::End(end),
            Err(m) => return Err(fail(format!("DTEND: {m}; the event is skipped"))),
        }
    } else if let Some(duration) = first("DURATION") {
        let (days, seconds) = parse_duration(duration.value.trim()).ok_or_else(|| {
            fail("DURATION is not an RFC 5545 duration; the event is skipped".to_owned())
        })?;
        Length::Duration { days, seconds }
    } else {
        Length::Default
    };

    let class = first("CLASS").map(|l| l.value.trim().to_ascii_uppercase());
    let private = matches!(class.as_deref(), Some("PRIVATE" | "CONFIDENTIAL"));
    // The title of a private event is never copied out of the feed's bytes.
    let summary = if private {
        None
    } else {
        first("SUMMARY").map(|l| unescape(&l.value))
    };

    let status = first("STATUS").map(|l| l.value.trim().to_ascii_uppercase());
    let busy = match first("X-MICROSOFT-CDO-BUSYSTATUS").and_then(|l| Busy::parse(&l.value)) {
        Some(busy) => busy,
        None if first("TRANSP")
            .is_some_and(|l| l.value.trim().eq_ignore_ascii_case("TRANSPARENT")) =>
        {
            Busy::Free
        }
        None if status.as_deref() == Some("TENTATIVE") => Busy::Tentative,
        None => Busy::Busy,
    };

    let attendees = props
        .iter()
        .filter(|l| l.name == "ATTENDEE")
        .map(|l| {
            let address = l.value.trim();
            // `get` and not `[..7]`: the seventh byte may fall inside a character.
            let address = match address.get(..7) {
                Some(scheme) if scheme.eq_ignore_ascii_case("mailto:") => &address[7..],
                _ => address,
            };
            let partstat = l
                .param("PARTSTAT")
                .unwrap_or("NEEDS-ACTION")
                .to_ascii_uppercase();
            (address.to_ascii_lowercase(), partstat)
        })
        .collect();

    let rule = match first("RRULE") {
        Some(line) => Some(
            parse_rule(&line.value, &zones, line, &mut warn)
                .map_err(|m| fail(format!("RRULE: {m}; the event is skipped")))?,
        ),
        None => None,
    };

    let mut rdates = Vec::new();
    let mut exdates = Vec::new();
    for line in props
        .iter()
        .filter(|l| l.name == "RDATE" || l.name == "EXDATE")
    {
        for item in line
            .value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            // An RDATE PERIOD (`start/end` or `start/duration`) contributes its start.
            let item = item.split('/').next().unwrap_or(item);
            match zones.time(line, item, &mut warn) {
                Ok(t) if line.name == "RDATE" => rdates.push(t),
                Ok(t) => exdates.push(t),
                Err(m) => warn(
                    line.number,
                    format!("{}: {m}; that one date is ignored", line.name),
                ),
            }
        }
    }

    let recurrence_id = match first("RECURRENCE-ID") {
        Some(line) => Some(
            zones
                .time(line, &line.value, &mut warn)
                .map_err(|m| fail(format!("RECURRENCE-ID: {m}; the override is skipped")))?,
        ),
        None => None,
    };

    Ok(Event {
        uid: uid_value.clone(),
        summary,
        private,
        busy,
        cancelled: status.as_deref() == Some("CANCELLED"),
        attendees,
        start,
        length,
        rule,
        rdates,
        exdates,
        recurrence_id,
    })
}

/// Resolves TZIDs for one feed.
struct Zones<'a> {
    vtimezones: &'a HashMap<String, Tz>,
}

impl Zones<'_> {
    /// Read a DATE or DATE-TIME `value` of property `line`, resolving its TZID.
    fn time(
        &self,
        line: &Line,
        value: &str,
        warn: &mut impl FnMut(usize, String),
    ) -> Result<Time, String> {
        self.read(
            line.param("TZID"),
            line.param("VALUE"),
            line.number,
            value,
            warn,
        )
    }

    /// Read a DATE or DATE-TIME with the given TZID and VALUE parameters.
    fn read(
        &self,
        tzid: Option<&str>,
        value_type: Option<&str>,
        number: usize,
        value: &str,
        warn: &mut impl FnMut(usize, String),
    ) -> Result<Time, String> {
        let value = value.trim();
        let is_date = value_type.is_some_and(|v| v.eq_ignore_ascii_case("DATE"))
            || (value.len() == 8 && value.bytes().all(|b| b.is_ascii_digit()));
        if is_date {
            return parse_date(value)
                .map(Time::Date)
                .ok_or_else(|| format!("{:?} is not a DATE (YYYYMMDD)", bounded(value)));
        }
        let (local, utc) = parse_date_time(value).ok_or_else(|| {
            format!(
                "{:?} is not a DATE-TIME (YYYYMMDDTHHMMSS, optionally Z)",
                bounded(value)
            )
        })?;
        if utc {
            return Ok(Time::Utc(local.and_utc()));
        }
        let Some(tzid) = tzid else {
            return Ok(Time::Floating(local));
        };
        if let Some(tz) = zones::known_zone(tzid).or_else(|| self.vtimezones.get(tzid).copied()) {
            return Ok(Time::Zoned(local, tz));
        }
        warn(
            number,
            format!(
                "TZID {:?} is neither an IANA zone, a known Windows zone nor a VTIMEZONE in the \
                 feed; read in the calendar's timezone",
                bounded(tzid)
            ),
        );
        Ok(Time::Floating(local))
    }
}

fn parse_date(value: &str) -> Option<NaiveDate> {
    if value.len() != 8 || !value.is_ascii() {
        return None;
    }
    let y = value[0..4].parse().ok()?;
    let m = value[4..6].parse().ok()?;
    let d = value[6..8].parse().ok()?;
    NaiveDate::from_ymd_opt(y, m, d)
}

/// `YYYYMMDDTHHMMSS[Z]` → the wall time and whether it is UTC.
fn parse_date_time(value: &str) -> Option<(NaiveDateTime, bool)> {
    let (value, utc) = match value.strip_suffix(['Z', 'z']) {
        Some(v) => (v, true),
        None => (value, false),
    };
    if value.len() != 15 || !value.is_ascii() || !value[8..9].eq_ignore_ascii_case("T") {
        return None;
    }
    let date = parse_date(&value[..8])?;
    let h = value[9..11].parse().ok()?;
    let m = value[11..13].parse().ok()?;
    // A leap second (60) is read as 59, as chrono cannot hold it outside a fraction.
    let s: u32 = value[13..15].parse().ok()?;
    let time = NaiveTime::from_hms_opt(h, m, s.min(59))?;
    Some((date.and_time(time), utc))
}

/// `[+-]P[nW][nD][T[nH][nM][nS]]` → (days, seconds). Negative durations are refused: an event
/// cannot end before it starts.
fn parse_duration(value: &str) -> Option<(i64, i64)> {
    let value = value.strip_prefix('+').unwrap_or(value);
    let rest = value.strip_prefix(['P', 'p'])?;
    let (mut days, mut seconds, mut in_time, mut number, mut any) =
        (0i64, 0i64, false, String::new(), false);
    for c in rest.chars() {
        match c.to_ascii_uppercase() {
            '0'..='9' => number.push(c),
            'T' if !in_time && number.is_empty() => in_time = true,
            unit => {
                let n: i64 = number.parse().ok()?;
                number.clear();
                any = true;
                match (unit, in_time) {
                    ('W', false) => days = days.checked_add(n.checked_mul(7)?)?,
                    ('D', false) => days = days.checked_add(n)?,
                    ('H', true) => seconds = seconds.checked_add(n.checked_mul(3600)?)?,
                    ('M', true) => seconds = seconds.checked_add(n.checked_mul(60)?)?,
                    ('S', true) => seconds = seconds.checked_add(n)?,
                    _ => return None,
                }
            }
        }
    }
    // Longer than ten years is not an event; bounding it keeps instant arithmetic safe.
    (any && number.is_empty() && days <= 3660 && seconds <= 3660 * 86_400)
        .then_some((days, seconds))
}

fn parse_rule(
    value: &str,
    zones: &Zones<'_>,
    line: &Line,
    warn: &mut impl FnMut(usize, String),
) -> Result<Rule, String> {
    let mut rule = Rule {
        freq: Freq::Daily,
        interval: 1,
        count: None,
        until: None,
        by_second: Vec::new(),
        by_minute: Vec::new(),
        by_hour: Vec::new(),
        by_day: Vec::new(),
        by_month_day: Vec::new(),
        by_year_day: Vec::new(),
        by_week_no: Vec::new(),
        by_month: Vec::new(),
        by_set_pos: Vec::new(),
        week_start: Weekday::Mon,
    };
    let mut freq = None;
    for part in value.trim().split(';').filter(|p| !p.is_empty()) {
        let Some((key, val)) = part.split_once('=') else {
            warn(
                line.number,
                format!("RRULE part {:?} has no '='; ignored", bounded(part)),
            );
            continue;
        };
        let key = key.trim().to_ascii_uppercase();
        let val = val.trim();
        let bad = || format!("{key}={:?} is not valid", bounded(val));
        match key.as_str() {
            "FREQ" => {
                freq = Some(match val.to_ascii_uppercase().as_str() {
                    "SECONDLY" => Freq::Secondly,
                    "MINUTELY" => Freq::Minutely,
                    "HOURLY" => Freq::Hourly,
                    "DAILY" => Freq::Daily,
                    "WEEKLY" => Freq::Weekly,
                    "MONTHLY" => Freq::Monthly,
                    "YEARLY" => Freq::Yearly,
                    _ => return Err(bad()),
                })
            }
            "INTERVAL" => rule.interval = val.parse().ok().filter(|&n| n > 0).ok_or_else(bad)?,
            "COUNT" => rule.count = Some(val.parse().ok().filter(|&n| n > 0).ok_or_else(bad)?),
            // UNTIL carries no parameters of its own: the RRULE line lends it no TZID.
            "UNTIL" => rule.until = Some(zones.read(None, None, line.number, val, warn)?),
            "BYSECOND" => rule.by_second = list(val).ok_or_else(bad)?,
            "BYMINUTE" => rule.by_minute = list(val).ok_or_else(bad)?,
            "BYHOUR" => rule.by_hour = list(val).ok_or_else(bad)?,
            "BYMONTHDAY" => rule.by_month_day = list(val).ok_or_else(bad)?,
            "BYYEARDAY" => rule.by_year_day = list(val).ok_or_else(bad)?,
            "BYWEEKNO" => rule.by_week_no = list(val).ok_or_else(bad)?,
            "BYMONTH" => rule.by_month = list(val).ok_or_else(bad)?,
            "BYSETPOS" => rule.by_set_pos = list(val).ok_or_else(bad)?,
            "BYDAY" => {
                rule.by_day = val
                    .split(',')
                    .map(|d| by_day(d.trim()))
                    .collect::<Option<_>>()
                    .ok_or_else(bad)?
            }
            "WKST" => rule.week_start = weekday(val).ok_or_else(bad)?,
            _ => warn(
                line.number,
                format!("RRULE part {key:?} is not part of RFC 5545; ignored, the rest of the rule used"),
            ),
        }
    }
    rule.freq = freq.ok_or("it has no FREQ")?;
    // RFC 5545 §3.3.10's ranges. Checked here because the engine accepts some values no date
    // can match (BYMONTHDAY=-36) and then walks 100,000 periods looking for one.
    let ranges_hold = rule.by_second.iter().all(|&v| v <= 60)
        && rule.by_minute.iter().all(|&v| v <= 59)
        && rule.by_hour.iter().all(|&v| v <= 23)
        && rule
            .by_month_day
            .iter()
            .all(|&v| v != 0 && (-31..=31).contains(&v))
        && rule
            .by_year_day
            .iter()
            .all(|&v| v != 0 && (-366..=366).contains(&v))
        && rule
            .by_week_no
            .iter()
            .all(|&v| v != 0 && (-53..=53).contains(&v))
        && rule.by_month.iter().all(|&v| (1..=12).contains(&v))
        && rule
            .by_set_pos
            .iter()
            .all(|&v| v != 0 && (-366..=366).contains(&v));
    if !ranges_hold {
        return Err(
            "a BYxxx value is out of RFC 5545's range (e.g. BYMONTHDAY beyond ±31)".to_owned(),
        );
    }
    if rule.count.is_some() && rule.until.is_some() {
        return Err("it has both COUNT and UNTIL, which RFC 5545 forbids".to_owned());
    }
    Ok(rule)
}

fn list<T: std::str::FromStr>(val: &str) -> Option<Vec<T>> {
    val.split(',')
        .map(|v| v.trim().strip_prefix('+').unwrap_or(v.trim()).parse().ok())
        .collect()
}

fn weekday(s: &str) -> Option<Weekday> {
    Some(match s.to_ascii_uppercase().as_str() {
        "MO" => Weekday::Mon,
        "TU" => Weekday::Tue,
        "WE" => Weekday::Wed,
        "TH" => Weekday::Thu,
        "FR" => Weekday::Fri,
        "SA" => Weekday::Sat,
        "SU" => Weekday::Sun,
        _ => return None,
    })
}

fn by_day(s: &str) -> Option<(Option<i16>, Weekday)> {
    if s.len() < 2 || !s.is_ascii() {
        return None;
    }
    let (n, day) = s.split_at(s.len() - 2);
    let day = weekday(day)?;
    if n.is_empty() {
        return Some((None, day));
    }
    let n: i16 = n.strip_prefix('+').unwrap_or(n).parse().ok()?;
    (n != 0 && (-53..=53).contains(&n)).then_some((Some(n), day))
}

/// Every VTIMEZONE in the feed, by TZID, matched to the IANA zone that keeps the same
/// offsets. chrono-tz cannot be handed a zone of our own making, and every producer we know
/// writes VTIMEZONEs of real zones, so matching (X-LIC-LOCATION first, then the offsets at
/// each transition of the rules in force) reads them without a second DST engine.
fn vtimezones(lines: &[Line], warnings: &mut Vec<Warning>) -> HashMap<String, Tz> {
    let mut out = HashMap::new();
    let mut i = 0;
    while i < lines.len() {
        let l = &lines[i];
        if l.name == "BEGIN" && l.value.eq_ignore_ascii_case("VTIMEZONE") {
            let start = i;
            while i < lines.len()
                && !(lines[i].name == "END" && lines[i].value.eq_ignore_ascii_case("VTIMEZONE"))
            {
                i += 1;
            }
            let block = &lines[start..i.min(lines.len())];
            if let Some(tzid) = block
                .iter()
                .find(|l| l.name == "TZID")
                .map(|l| l.value.trim().to_owned())
            {
                if zones::known_zone(&tzid).is_none() {
                    match match_vtimezone(block) {
                        Some(tz) => {
                            out.insert(tzid, tz);
                        }
                        None => warnings.push(Warning {
                            line: l.number,
                            uid: None,
                            message: format!(
                                "VTIMEZONE {:?} matches no IANA zone; times in it are read in \
                                 the calendar's timezone",
                                bounded(&tzid)
                            ),
                        }),
                    }
                }
            }
        }
        i += 1;
    }
    out
}

/// One STANDARD or DAYLIGHT block: its onset and the offsets around it.
struct Observance {
    start: NaiveDateTime,
    from: i32,
    to: i32,
    rule: Option<String>,
}

fn match_vtimezone(block: &[Line]) -> Option<Tz> {
    if let Some(tz) = block
        .iter()
        .find(|l| l.name == "X-LIC-LOCATION")
        .and_then(|l| zones::known_zone(&l.value))
    {
        return Some(tz);
    }
    let mut observances = Vec::new();
    let mut current: Option<Observance> = None;
    for l in block {
        match l.name.as_str() {
            "BEGIN"
                if matches!(
                    l.value.to_ascii_uppercase().as_str(),
                    "STANDARD" | "DAYLIGHT"
                ) =>
            {
                current = Some(Observance {
                    start: NaiveDateTime::MIN,
                    from: 0,
                    to: 0,
                    rule: None,
                })
            }
            "END" => observances.extend(current.take()),
            "DTSTART" => {
                if let (Some(o), Some((t, _))) = (current.as_mut(), parse_date_time(l.value.trim()))
                {
                    o.start = t;
                }
            }
            "TZOFFSETFROM" => current
                .iter_mut()
                .for_each(|o| o.from = offset(&l.value).unwrap_or(0)),
            "TZOFFSETTO" => current
                .iter_mut()
                .for_each(|o| o.to = offset(&l.value).unwrap_or(0)),
            "RRULE" => current
                .iter_mut()
                .for_each(|o| o.rule = Some(l.value.clone())),
            _ => {}
        }
    }
    // The rules in force: observances with an RRULE and no UNTIL. Their transitions over a
    // few years (from 2020 on, so a 1601 or 1970 onset still checks today's rules) must show
    // the same offsets before and after in the candidate zone.
    let mut checks: Vec<(DateTime<Utc>, i32, i32)> = Vec::new();
    for o in &observances {
        let Some(rule) = o.rule.as_deref() else {
            continue;
        };
        if rule.to_ascii_uppercase().contains("UNTIL") {
            continue;
        }
        for year in [2020, 2021, 2022, 2023, 2024, 2025] {
            if let Some(local) = yearly_onset(rule, o.start, year) {
                let instant = local.and_utc() - TimeDelta::seconds(i64::from(o.from));
                checks.push((instant, o.from, o.to));
            }
        }
    }
    if checks.is_empty() {
        // A fixed offset (one STANDARD without a rule): any zone that keeps it all year.
        let o = observances.last()?;
        let jan = NaiveDate::from_ymd_opt(2024, 1, 15)?
            .and_hms_opt(12, 0, 0)?
            .and_utc();
        let jul = NaiveDate::from_ymd_opt(2024, 7, 15)?
            .and_hms_opt(12, 0, 0)?
            .and_utc();
        return zones::preferred_zones()
            .find(|tz| utc_offset(*tz, jan) == o.to && utc_offset(*tz, jul) == o.to);
    }
    zones::preferred_zones().find(|tz| {
        checks.iter().all(|&(t, from, to)| {
            utc_offset(*tz, t - TimeDelta::hours(1)) == from
                && utc_offset(*tz, t + TimeDelta::hours(1)) == to
        })
    })
}

fn utc_offset(tz: Tz, t: DateTime<Utc>) -> i32 {
    use chrono::Offset;
    t.with_timezone(&tz).offset().fix().local_minus_utc()
}

/// `+0100`, `-0500`, `+013045` → seconds east of UTC.
fn offset(value: &str) -> Option<i32> {
    let v = value.trim();
    let (sign, digits) = match v.as_bytes().first()? {
        b'+' => (1, &v[1..]),
        b'-' => (-1, &v[1..]),
        _ => return None,
    };
    if !(digits.len() == 4 || digits.len() == 6) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: i32 = digits[0..2].parse().ok()?;
    let m: i32 = digits[2..4].parse().ok()?;
    let s: i32 = if digits.len() == 6 {
        digits[4..6].parse().ok()?
    } else {
        0
    };
    Some(sign * (h * 3600 + m * 60 + s))
}

/// The local onset in `year` of a VTIMEZONE observance whose rule is the usual
/// `FREQ=YEARLY;BYMONTH=m;BYDAY=nDD` (every producer writes this shape).
fn yearly_onset(rule: &str, start: NaiveDateTime, year: i32) -> Option<NaiveDateTime> {
    let mut month = None;
    let mut day = None;
    for part in rule.split(';') {
        let (k, v) = part.split_once('=')?;
        match k.trim().to_ascii_uppercase().as_str() {
            "BYMONTH" => month = v.trim().parse::<u32>().ok(),
            "BYDAY" => day = by_day(v.trim()),
            _ => {}
        }
    }
    let (month, (n, weekday)) = (month?, day?);
    let n = n.unwrap_or(1);
    let date = if n > 0 {
        NaiveDate::from_weekday_of_month_opt(year, month, weekday, u8::try_from(n).ok()?)
            .or_else(|| NaiveDate::from_weekday_of_month_opt(year, month, weekday, 4))?
    } else {
        let first_next = if month == 12 {
            NaiveDate::from_ymd_opt(year + 1, 1, 1)?
        } else {
            NaiveDate::from_ymd_opt(year, month + 1, 1)?
        };
        let mut d = first_next.pred_opt()?;
        while d.weekday() != weekday {
            d = d.pred_opt()?;
        }
        d - TimeDelta::weeks(i64::from(-n - 1))
    };
    Some(date.and_time(start.time()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let cases: &[(&str, Option<(i64, i64)>)] = &[
            ("PT1H", Some((0, 3600))),
            ("PT1H30M", Some((0, 5400))),
            ("P1D", Some((1, 0))),
            ("P1W", Some((7, 0))),
            ("P1DT2H3M4S", Some((1, 7384))),
            ("+PT15M", Some((0, 900))),
            ("-PT15M", None),
            ("P", None),
            ("PT", None),
            ("PT1", None),
            ("P1H", None),
            ("PT1D", None),
            ("P99999999999999999999D", None),
            ("P100000D", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_duration(s), *want, "{s}");
        }
    }

    #[test]
    fn date_times() {
        let t = |s: &str| parse_date_time(s);
        let base = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        assert_eq!(
            t("20260329T023000"),
            Some((base.and_hms_opt(2, 30, 0).unwrap(), false))
        );
        assert_eq!(
            t("20260329T023000Z"),
            Some((base.and_hms_opt(2, 30, 0).unwrap(), true))
        );
        assert_eq!(
            t("20260329T023060"),
            Some((base.and_hms_opt(2, 30, 59).unwrap(), false))
        );
        for bad in [
            "20260329",
            "20260329T2430",
            "20261329T000000",
            "2026032ÄT000000",
            "20260329X000000",
        ] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }

    #[test]
    fn offsets_and_by_day() {
        assert_eq!(offset("+0100"), Some(3600));
        assert_eq!(offset("-0430"), Some(-16200));
        assert_eq!(offset("+013045"), Some(5445));
        assert_eq!(offset("0100"), None);
        assert_eq!(by_day("-1SU"), Some((Some(-1), Weekday::Sun)));
        assert_eq!(by_day("2MO"), Some((Some(2), Weekday::Mon)));
        assert_eq!(by_day("FR"), Some((None, Weekday::Fri)));
        assert_eq!(by_day("0FR"), None);
        assert_eq!(by_day("ÄFR"), None);
    }

    #[test]
    fn an_attendee_address_cut_inside_a_character_does_not_panic() {
        let feed = "BEGIN:VEVENT\nUID:a\nDTSTART:20261201T100000Z\nATTENDEE;PARTSTAT=DECLINED:mailto\u{fffd}-:x@y\nATTENDEE;PARTSTAT=DECLINED:MAILTO:Me@Example.com\nEND:VEVENT\n";
        let parsed = parse(feed.as_bytes());
        assert_eq!(
            parsed.events[0].attendees[1],
            ("me@example.com".to_owned(), "DECLINED".to_owned())
        );
        assert_eq!(parsed.events[0].attendees[0].0, "mailto\u{fffd}-:x@y");
    }

    #[test]
    fn content_lines_unfold_and_split() {
        let lines = unfold("SUMMARY;LANGUAGE=\"en:GB\":Stand\r\n up\r\n\tmeeting\nX\n");
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].name, "SUMMARY");
        assert_eq!(lines[0].param("LANGUAGE"), Some("en:GB"));
        assert_eq!(lines[0].value, "Standupmeeting");
        assert_eq!(unescape(r"a\, b\; c\\d\ne"), "a, b; c\\d\ne");
    }
}
