//! The timeline of SPEC §5 as a table: occurrences + an ordered map → status changes.
//! Overlaps, priority by map order, a higher-priority event inside a longer one,
//! back-to-back events, all-day plus timed, ignored and zero-length occurrences, and a change
//! that lands in a DST gap (through the real parse and expansion).

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use slack_statusd::calendar::{expand, parse, timeline, Busy, Ignored, Matcher, Occurrence};

/// A test map entry: every given condition must hold (as `[[calendars.map]]` entries do).
#[derive(Default)]
struct Entry {
    summary_contains: Option<&'static str>,
    busy: Option<&'static [Busy]>,
    all_day: Option<bool>,
}

struct Map(Vec<Entry>);

impl Matcher for Map {
    fn matches(&self, o: &Occurrence) -> Option<usize> {
        self.0.iter().position(|e| {
            // A private event's summary reads as "Busy", as SPEC §5 says.
            let summary = if o.private {
                "Busy"
            } else {
                o.summary.as_deref().unwrap_or("")
            };
            e.summary_contains.is_none_or(|s| summary.contains(s))
                && e.busy.is_none_or(|b| b.contains(&o.busy))
                && e.all_day.is_none_or(|a| a == o.all_day)
        })
    }
}

/// `"01T09:00"` → 2026-12-01T09:00Z.
fn t(s: &str) -> DateTime<Utc> {
    NaiveDateTime::parse_from_str(&format!("2026-12-{s}"), "%Y-%m-%dT%H:%M")
        .unwrap()
        .and_utc()
}

fn occ(summary: &str, start: &str, end: &str, busy: Busy, all_day: bool) -> Occurrence {
    Occurrence {
        uid: summary.to_owned(),
        start: t(start),
        end: t(end),
        all_day,
        busy,
        summary: Some(summary.to_owned()),
        private: false,
        ignored: None,
    }
}

/// The changes as (instant, shown summary or "-", entry).
fn run(occurrences: &[Occurrence], map: &Map) -> Vec<(String, String, Option<usize>)> {
    timeline(occurrences, map)
        .into_iter()
        .map(|c| {
            (
                c.at.format("%dT%H:%M").to_string(),
                c.shown
                    .map_or("-".to_owned(), |s| occurrences[s.occurrence].uid.clone()),
                c.shown.map(|s| s.entry),
            )
        })
        .collect()
}

fn busy_map() -> Map {
    Map(vec![Entry {
        busy: Some(&[Busy::Busy, Busy::Tentative]),
        ..Entry::default()
    }])
}

/// Map order: OOO first, then "1:1" meetings, then anything busy.
fn priority_map() -> Map {
    Map(vec![
        Entry {
            busy: Some(&[Busy::Oof]),
            ..Entry::default()
        },
        Entry {
            summary_contains: Some("1:1"),
            ..Entry::default()
        },
        Entry {
            busy: Some(&[Busy::Busy, Busy::Tentative]),
            all_day: Some(false),
            ..Entry::default()
        },
        Entry {
            all_day: Some(true),
            ..Entry::default()
        },
    ])
}

#[test]
fn timeline_table() {
    use Busy::{Busy as B, Free, Oof};
    type Case = (
        &'static str,
        Vec<Occurrence>,
        Map,
        Vec<(&'static str, &'static str, Option<usize>)>,
    );
    let cases: Vec<Case> = vec![
        (
            "back-to-back: one change per boundary, the end clears",
            vec![occ("A", "01T09:00", "01T10:00", B, false), occ("B", "01T10:00", "01T11:00", B, false)],
            busy_map(),
            vec![("01T09:00", "A", Some(0)), ("01T10:00", "B", Some(0)), ("01T11:00", "-", None)],
        ),
        (
            "overlap with equal entries: the one that started last wins; A's end changes nothing",
            vec![occ("A", "01T09:00", "01T11:00", B, false), occ("B", "01T10:00", "01T12:00", B, false)],
            busy_map(),
            vec![("01T09:00", "A", Some(0)), ("01T10:00", "B", Some(0)), ("01T12:00", "-", None)],
        ),
        (
            "when the later one ends first, the earlier one comes back",
            vec![occ("Long", "01T09:00", "01T17:00", B, false), occ("Short", "01T11:00", "01T12:00", B, false)],
            busy_map(),
            vec![("01T09:00", "Long", Some(0)), ("01T11:00", "Short", Some(0)), ("01T12:00", "Long", Some(0)), ("01T17:00", "-", None)],
        ),
        (
            "equal start and entry: the first in the feed wins",
            vec![occ("First", "01T09:00", "01T10:00", B, false), occ("Second", "01T09:00", "01T10:30", B, false)],
            busy_map(),
            vec![("01T09:00", "First", Some(0)), ("01T10:00", "Second", Some(0)), ("01T10:30", "-", None)],
        ),
        (
            "priority by map order: an OOO day hides the meetings inside it, whose boundaries send nothing",
            vec![
                occ("Away", "01T00:00", "03T00:00", Oof, true),
                occ("Planning", "01T09:00", "01T10:00", B, false),
                occ("1:1 Bob", "02T14:00", "02T14:30", B, false),
            ],
            priority_map(),
            vec![("01T00:00", "Away", Some(0)), ("03T00:00", "-", None)],
        ),
        (
            "a higher-priority event inside a longer one interrupts it and hands back",
            vec![occ("Workshop", "01T09:00", "01T17:00", B, false), occ("1:1 Carol", "01T11:00", "01T11:30", B, false)],
            priority_map(),
            vec![("01T09:00", "Workshop", Some(2)), ("01T11:00", "1:1 Carol", Some(1)), ("01T11:30", "Workshop", Some(2)), ("01T17:00", "-", None)],
        ),
        (
            "a lower-priority event that starts later does not take over",
            vec![occ("1:1 Dan", "01T09:00", "01T10:00", B, false), occ("Sync", "01T09:30", "01T10:30", B, false)],
            priority_map(),
            vec![("01T09:00", "1:1 Dan", Some(1)), ("01T10:00", "Sync", Some(2)), ("01T10:30", "-", None)],
        ),
        (
            "all-day plus timed: the timed entry comes first in the map, the all-day one fills around it",
            vec![occ("Conference", "01T00:00", "02T00:00", Free, true), occ("Talk", "01T13:00", "01T14:00", B, false)],
            priority_map(),
            vec![("01T00:00", "Conference", Some(3)), ("01T13:00", "Talk", Some(2)), ("01T14:00", "Conference", Some(3)), ("02T00:00", "-", None)],
        ),
        (
            "unmatched, ignored and zero-length occurrences are never shown",
            vec![
                occ("Lunch", "01T12:00", "01T13:00", Free, false),
                Occurrence { ignored: Some(Ignored::Declined), ..occ("Declined", "01T09:00", "01T10:00", B, false) },
                Occurrence { ignored: Some(Ignored::Cancelled), ..occ("Cancelled", "01T10:00", "01T11:00", B, false) },
                occ("Reminder", "01T15:00", "01T15:00", B, false),
            ],
            busy_map(),
            vec![],
        ),
        (
            "a private event matches as Busy, not by its title",
            vec![Occurrence { private: true, summary: None, ..occ("P", "01T09:00", "01T10:00", B, false) }],
            Map(vec![Entry { summary_contains: Some("Busy"), ..Entry::default() }]),
            vec![("01T09:00", "P", Some(0)), ("01T10:00", "-", None)],
        ),
        ("nothing in, nothing out", vec![], busy_map(), vec![]),
    ];
    for (name, occurrences, map, want) in cases {
        let want: Vec<(String, String, Option<usize>)> = want
            .into_iter()
            .map(|(a, s, e)| (a.to_owned(), s.to_owned(), e))
            .collect();
        assert_eq!(run(&occurrences, &map), want, "{name}");
    }
}

#[test]
fn a_change_that_lands_in_a_dst_gap_happens_at_the_first_instant_after_it() {
    // Sun 29 Mar 2026 in Berlin: 02:00 CET → 03:00 CEST. "Night shift" starts at 02:30,
    // which does not exist: it starts at 03:00 CEST = 01:00Z. "Ghost" lies wholly in the gap
    // and so has no length: it is never shown. "Early" ends at 02:15 (also 01:00Z), so the
    // change from Early to Night shift is one change, at the end of the gap.
    let feed = "BEGIN:VCALENDAR\r\n\
        BEGIN:VEVENT\r\nUID:early\r\nDTSTART;TZID=Europe/Berlin:20260329T013000\r\nDTEND;TZID=Europe/Berlin:20260329T021500\r\nSUMMARY:Early\r\nEND:VEVENT\r\n\
        BEGIN:VEVENT\r\nUID:ghost\r\nDTSTART;TZID=Europe/Berlin:20260329T020000\r\nDTEND;TZID=Europe/Berlin:20260329T023000\r\nSUMMARY:Ghost\r\nEND:VEVENT\r\n\
        BEGIN:VEVENT\r\nUID:night\r\nDTSTART;TZID=Europe/Berlin:20260329T023000\r\nDTEND;TZID=Europe/Berlin:20260329T040000\r\nSUMMARY:Night shift\r\nEND:VEVENT\r\n\
        END:VCALENDAR\r\n";
    let parsed = parse(feed.as_bytes());
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    let from = DateTime::parse_from_rfc3339("2026-03-28T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let to = DateTime::parse_from_rfc3339("2026-03-30T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let occurrences = expand(&parsed.events, from, to, Tz::Europe__Berlin, &[]).occurrences;
    let changes: Vec<(String, Option<String>)> = timeline(&occurrences, &busy_map())
        .into_iter()
        .map(|c| {
            (
                c.at.format("%dT%H:%MZ").to_string(),
                c.shown.map(|s| occurrences[s.occurrence].uid.clone()),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            ("29T00:30Z".to_owned(), Some("early".to_owned())),
            ("29T01:00Z".to_owned(), Some("night".to_owned())),
            ("29T02:00Z".to_owned(), None),
        ]
    );
}
