//! Expansion against feeds in the exact style of real producers (Google, Outlook/Exchange,
//! Apple, Fastmail: PRODID, VTIMEZONE blocks, X- properties, CRLF where they use it), each
//! with a hand-checked list of occurrences, and the DST transitions of Europe/Berlin and
//! America/New_York that rust-rrule#115 gets wrong.
//!
//! Every expected row was worked out by hand from the feed: local time, the zone's offset on
//! that date, UTC.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use slack_statusd::calendar::{expand, parse, Busy, Ignored, Occurrence};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// One expected occurrence: uid prefix, start, end (UTC), all-day, busy, summary, ignored.
type Row = (
    &'static str,
    &'static str,
    &'static str,
    bool,
    Busy,
    Option<&'static str>,
    Option<Ignored>,
);

/// A [`Row`] with owned text, as compared.
type Owned = (
    String,
    String,
    String,
    bool,
    Busy,
    Option<String>,
    Option<Ignored>,
);

fn rows(occurrences: &[Occurrence]) -> Vec<Owned> {
    occurrences
        .iter()
        .map(|o| {
            (
                o.uid.chars().take(12).collect(),
                o.start.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                o.end.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                o.all_day,
                o.busy,
                o.summary.clone(),
                o.ignored,
            )
        })
        .collect()
}

fn want(rows: &[Row]) -> Vec<Owned> {
    rows.iter()
        .map(|&(uid, s, e, all_day, busy, summary, ignored)| {
            (
                uid.to_owned(),
                s.to_owned(),
                e.to_owned(),
                all_day,
                busy,
                summary.map(str::to_owned),
                ignored,
            )
        })
        .collect()
}

/// Parse and expand a feed over [from, to) in Europe/Berlin, with alice as "me"; the
/// warnings of both steps come back as text.
fn run(feed: &[u8], from: &str, to: &str) -> (Vec<Occurrence>, Vec<String>) {
    let parsed = parse(feed);
    let expansion = expand(
        &parsed.events,
        utc(from),
        utc(to),
        Tz::Europe__Berlin,
        &["alice@example.com".to_owned()],
    );
    let warnings = parsed
        .warnings
        .iter()
        .chain(&expansion.warnings)
        .map(|w| format!("{} {}", w.uid.as_deref().unwrap_or("-"), w.message))
        .collect();
    (expansion.occurrences, warnings)
}

const FROM: &str = "2026-12-01T00:00:00Z";
const TO: &str = "2026-12-15T00:00:00Z";

#[test]
fn google_weekly_with_exdate_override_all_day_private_and_declined() {
    let (occ, warnings) = run(include_bytes!("data/calendars/google.ics"), FROM, TO);
    assert_eq!(warnings, Vec::<String>::new());
    use Busy::{Busy as B, Free};
    assert_eq!(
        rows(&occ),
        want(&[
            // Tue 1 Dec 09:30 CET; Thu 3 Dec is an EXDATE.
            (
                "3q0s9f7k1c2m",
                "2026-12-01T08:30:00Z",
                "2026-12-01T09:00:00Z",
                false,
                B,
                Some("Standup"),
                None
            ),
            // CLASS:PRIVATE: the title is gone.
            (
                "7r6t5y4u3i2o",
                "2026-12-04T13:00:00Z",
                "2026-12-04T14:00:00Z",
                false,
                B,
                None,
                None
            ),
            // alice declined (her address in another case).
            (
                "9z8x7c6v5b4n",
                "2026-12-07T15:00:00Z",
                "2026-12-07T16:00:00Z",
                false,
                B,
                Some("Quarterly all-hands"),
                Some(Ignored::Declined)
            ),
            // Tue 8 Dec moved from 09:30 to 11:00 by its override.
            (
                "3q0s9f7k1c2m",
                "2026-12-08T10:00:00Z",
                "2026-12-08T10:30:00Z",
                false,
                B,
                Some("Standup (moved)"),
                None
            ),
            // All-day 10–11 Dec in Berlin, DTEND exclusive, TRANSP:TRANSPARENT.
            (
                "0a1b2c3d4e5f",
                "2026-12-09T23:00:00Z",
                "2026-12-11T23:00:00Z",
                true,
                Free,
                Some("Vacation"),
                None
            ),
            (
                "3q0s9f7k1c2m",
                "2026-12-10T08:30:00Z",
                "2026-12-10T09:00:00Z",
                false,
                B,
                Some("Standup"),
                None
            ),
        ])
    );
    assert!(occ[1].private && !occ[0].private);
    // The private title survives neither parsing nor expansion, in any field.
    let parsed = parse(include_bytes!("data/calendars/google.ics"));
    assert!(!format!("{parsed:?}{occ:?}").contains("dermatology"));
}

#[test]
fn outlook_windows_zones_custom_vtimezone_oof_and_cancelled() {
    let (occ, warnings) = run(include_bytes!("data/calendars/outlook.ics"), FROM, TO);
    assert_eq!(warnings, Vec::<String>::new());
    use Busy::{Busy as B, Free, Oof, Tentative};
    assert_eq!(
        rows(&occ),
        want(&[
            // 14:00 "W. Europe Standard Time" = CET.
            (
                "040000008200",
                "2026-12-03T13:00:00Z",
                "2026-12-03T13:30:00Z",
                false,
                Free,
                Some("Canceled: 1:1 with Carol"),
                Some(Ignored::Cancelled)
            ),
            // First Monday of the month, 10:00 "Eastern Standard Time" (EST, -5).
            (
                "040000008200",
                "2026-12-07T15:00:00Z",
                "2026-12-07T16:00:00Z",
                false,
                B,
                Some("Board sync"),
                None
            ),
            // "Customized Time Zone" is matched by its VTIMEZONE's offsets to CET/CEST;
            // CLASS:CONFIDENTIAL hides the title; BUSYSTATUS wins over TRANSP.
            (
                "040000008200",
                "2026-12-09T11:00:00Z",
                "2026-12-09T12:00:00Z",
                false,
                Tentative,
                None,
                None
            ),
            (
                "040000008200",
                "2026-12-13T23:00:00Z",
                "2026-12-15T23:00:00Z",
                true,
                Oof,
                Some("OOO - Conference"),
                None
            ),
        ])
    );
}

#[test]
fn apple_count_until_interval_tentative_and_yearly_all_day() {
    let (occ, warnings) = run(include_bytes!("data/calendars/apple.ics"), FROM, TO);
    assert_eq!(warnings, Vec::<String>::new());
    use Busy::{Busy as B, Free, Tentative};
    let focus = |d: &'static str, s: &'static str, e: &'static str| -> Row {
        let _ = d;
        ("6B29FC40-CA4", s, e, false, B, Some("Focus time"), None)
    };
    assert_eq!(
        rows(&occ),
        want(&[
            // COUNT=5 from Wed 2 Dec, 09:00 EST.
            focus("2", "2026-12-02T14:00:00Z", "2026-12-02T14:30:00Z"),
            focus("3", "2026-12-03T14:00:00Z", "2026-12-03T14:30:00Z"),
            focus("4", "2026-12-04T14:00:00Z", "2026-12-04T14:30:00Z"),
            // A yearly all-day event without zone: the calendar's (Berlin) midnight.
            (
                "A1B2C3D4-E5F",
                "2026-12-04T23:00:00Z",
                "2026-12-05T23:00:00Z",
                true,
                Free,
                Some("Alice's birthday"),
                None
            ),
            focus("5", "2026-12-05T14:00:00Z", "2026-12-05T14:30:00Z"),
            focus("6", "2026-12-06T14:00:00Z", "2026-12-06T14:30:00Z"),
            // Every other Monday from 30 Nov (outside the window); UNTIL is the end of
            // 14 Dec in New York, so 14 Dec is the last.
            (
                "1F0E2D3C-4B5",
                "2026-12-14T19:00:00Z",
                "2026-12-14T20:00:00Z",
                false,
                Tentative,
                Some("Design review"),
                None
            ),
        ])
    );
}

#[test]
fn fastmail_vendor_tzid_rdate_date_exdate_floating_and_broken_events() {
    let (occ, warnings) = run(include_bytes!("data/calendars/fastmail.ics"), FROM, TO);
    use Busy::Busy as B;
    assert_eq!(
        rows(&occ),
        want(&[
            (
                "e5c8a0f2-3b1",
                "2026-12-01T17:00:00Z",
                "2026-12-01T17:45:00Z",
                false,
                B,
                Some("Climbing"),
                None
            ),
            // Floating: the calendar's zone.
            (
                "7c9e6679-742",
                "2026-12-03T18:00:00Z",
                "2026-12-03T21:00:00Z",
                false,
                B,
                Some("Dinner with Sam"),
                None
            ),
            // An unknown TZID without a VTIMEZONE: the calendar's zone, with a warning.
            (
                "f47ac10b-58c",
                "2026-12-05T09:00:00Z",
                "2026-12-05T10:00:00Z",
                false,
                B,
                Some("Zone nobody knows"),
                None
            ),
            // 8 Dec is excluded by a DATE EXDATE; 12 Dec is an RDATE.
            (
                "e5c8a0f2-3b1",
                "2026-12-12T09:00:00Z",
                "2026-12-12T09:45:00Z",
                false,
                B,
                Some("Climbing"),
                None
            ),
        ])
    );
    let has = |uid: &str, text: &str| {
        warnings
            .iter()
            .any(|w| w.starts_with(uid) && w.contains(text))
    };
    assert!(
        has("e5c8a0f2", "\"X-FM-SKIP\" is not part of RFC 5545; ignored"),
        "{warnings:#?}"
    );
    assert!(
        has("f47ac10b", "read in the calendar's timezone"),
        "{warnings:#?}"
    );
    assert!(
        has("0b8e4b2a-broken-rule", "no FREQ; the event is skipped"),
        "{warnings:#?}"
    );
    assert!(has("1c9f5c3b-broken-start", "DTSTART"), "{warnings:#?}");
    assert_eq!(warnings.len(), 4, "{warnings:#?}");
}

/// Starts (UTC) of an event's occurrences in a window.
fn starts(feed: &str, zone: Tz, from: &str, to: &str) -> Vec<String> {
    let parsed = parse(feed.as_bytes());
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    expand(&parsed.events, utc(from), utc(to), zone, &[])
        .occurrences
        .iter()
        .map(|o| o.start.format("%m-%dT%H:%MZ").to_string())
        .collect()
}

fn vevent(dtstart: &str, rrule: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:dst\r\nDTSTART;{dtstart}\r\nDURATION:PT30M\r\n\
         RRULE:{rrule}\r\nSUMMARY:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

#[test]
fn berlin_spring_forward_moves_a_start_in_the_gap_and_loses_nothing() {
    let b = Tz::Europe__Berlin;
    // Sun 29 Mar 2026: 02:00 CET → 03:00 CEST. 02:30 does not exist: 03:00 CEST = 01:00Z.
    let feed = vevent("TZID=Europe/Berlin:20260322T023000", "FREQ=WEEKLY;COUNT=3");
    assert_eq!(
        starts(&feed, b, "2026-03-01T00:00:00Z", "2026-05-01T00:00:00Z"),
        ["03-22T01:30Z", "03-29T01:00Z", "04-05T00:30Z"]
    );
    // Daily 09:00 stays 09:00 local: one hour earlier in UTC after the change, none lost.
    let feed = vevent("TZID=Europe/Berlin:20260327T090000", "FREQ=DAILY;COUNT=4");
    assert_eq!(
        starts(&feed, b, "2026-03-01T00:00:00Z", "2026-05-01T00:00:00Z"),
        [
            "03-27T08:00Z",
            "03-28T08:00Z",
            "03-29T07:00Z",
            "03-30T07:00Z"
        ]
    );
    // Hourly across the gap: 02:00 is missing locally and collapses into 03:00, once.
    let feed = vevent("TZID=Europe/Berlin:20260329T000000", "FREQ=HOURLY;COUNT=5");
    assert_eq!(
        starts(&feed, b, "2026-03-28T00:00:00Z", "2026-03-30T00:00:00Z"),
        [
            "03-28T23:00Z",
            "03-29T00:00Z",
            "03-29T01:00Z",
            "03-29T02:00Z"
        ]
    );
}

#[test]
fn berlin_fall_back_takes_the_first_of_a_doubled_time_once() {
    let b = Tz::Europe__Berlin;
    // Sun 25 Oct 2026: 03:00 CEST → 02:00 CET. 02:30 happens twice: the first, CEST.
    let feed = vevent("TZID=Europe/Berlin:20261024T023000", "FREQ=DAILY;COUNT=3");
    assert_eq!(
        starts(&feed, b, "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z"),
        ["10-24T00:30Z", "10-25T00:30Z", "10-26T01:30Z"]
    );
    let feed = vevent("TZID=Europe/Berlin:20261023T090000", "FREQ=DAILY;COUNT=4");
    assert_eq!(
        starts(&feed, b, "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z"),
        [
            "10-23T07:00Z",
            "10-24T07:00Z",
            "10-25T08:00Z",
            "10-26T08:00Z"
        ]
    );
}

#[test]
fn new_york_both_transitions() {
    let ny = Tz::America__New_York;
    // Sun 8 Mar 2026: 02:00 EST → 03:00 EDT; 02:30 moves to 03:00 EDT = 07:00Z.
    let feed = vevent(
        "TZID=America/New_York:20260307T023000",
        "FREQ=DAILY;COUNT=3",
    );
    assert_eq!(
        starts(&feed, ny, "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"),
        ["03-07T07:30Z", "03-08T07:00Z", "03-09T06:30Z"]
    );
    // Sun 1 Nov 2026: 02:00 EDT → 01:00 EST; 01:30 happens twice: the first, EDT.
    let feed = vevent(
        "TZID=America/New_York:20261031T013000",
        "FREQ=DAILY;COUNT=3",
    );
    assert_eq!(
        starts(&feed, ny, "2026-10-01T00:00:00Z", "2026-12-01T00:00:00Z"),
        ["10-31T05:30Z", "11-01T05:30Z", "11-02T06:30Z"]
    );
    // A weekly meeting set in UTC stays at its UTC time (and so moves locally).
    let feed = vevent("VALUE=DATE-TIME:20261025T140000Z", "FREQ=WEEKLY;COUNT=3");
    assert_eq!(
        starts(&feed, ny, "2026-10-01T00:00:00Z", "2026-12-01T00:00:00Z"),
        ["10-25T14:00Z", "11-01T14:00Z", "11-08T14:00Z"]
    );
}

#[test]
fn rfc_5545_rule_parts_and_dtstart_counting() {
    let b = Tz::Europe__Berlin;
    let w = ("2026-01-01T00:00:00Z", "2027-12-31T00:00:00Z");
    // DTSTART (a Thursday) is not a Monday but counts as the first, and toward COUNT.
    let feed = vevent(
        "TZID=Europe/Berlin:20261203T100000",
        "FREQ=WEEKLY;BYDAY=MO;COUNT=3",
    );
    assert_eq!(
        starts(&feed, b, w.0, w.1),
        ["12-03T09:00Z", "12-07T09:00Z", "12-14T09:00Z"]
    );
    // The last weekday of the month (BYSETPOS), three months.
    let feed = vevent(
        "TZID=Europe/Berlin:20261030T100000",
        "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;COUNT=3",
    );
    assert_eq!(
        starts(&feed, b, w.0, w.1),
        ["10-30T09:00Z", "11-30T09:00Z", "12-31T09:00Z"]
    );
    // BYMONTHDAY=-1 with INTERVAL=2; UNTIL as a DATE on a timed event includes that day.
    let feed = vevent(
        "TZID=Europe/Berlin:20260731T100000",
        "FREQ=MONTHLY;INTERVAL=2;BYMONTHDAY=-1;UNTIL=20261130",
    );
    assert_eq!(
        starts(&feed, b, w.0, w.1),
        ["07-31T08:00Z", "09-30T08:00Z", "11-30T09:00Z"]
    );
    // WKST changes which weeks INTERVAL=2 picks (RFC 5545's own example).
    let feed = vevent(
        "VALUE=DATE-TIME:19970805T090000Z",
        "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=SU",
    );
    assert_eq!(
        starts(&feed, b, "1997-01-01T00:00:00Z", "1998-01-01T00:00:00Z"),
        [
            "08-05T09:00Z",
            "08-17T09:00Z",
            "08-19T09:00Z",
            "08-31T09:00Z"
        ]
    );
    let feed = vevent(
        "VALUE=DATE-TIME:19970805T090000Z",
        "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=MO",
    );
    assert_eq!(
        starts(&feed, b, "1997-01-01T00:00:00Z", "1998-01-01T00:00:00Z"),
        [
            "08-05T09:00Z",
            "08-10T09:00Z",
            "08-19T09:00Z",
            "08-24T09:00Z"
        ]
    );
}

#[test]
fn an_override_can_cancel_its_occurrence_and_a_utc_exdate_reads_in_the_event_zone() {
    let feed = "BEGIN:VCALENDAR\r\n\
        BEGIN:VEVENT\r\nUID:u\r\nDTSTART;TZID=Europe/Berlin:20261201T100000\r\nDTEND;TZID=Europe/Berlin:20261201T110000\r\n\
        RRULE:FREQ=DAILY;COUNT=4\r\nEXDATE:20261202T090000Z\r\nSUMMARY:Daily\r\nEND:VEVENT\r\n\
        BEGIN:VEVENT\r\nUID:u\r\nRECURRENCE-ID;TZID=Europe/Berlin:20261203T100000\r\nDTSTART;TZID=Europe/Berlin:20261203T100000\r\n\
        DTEND;TZID=Europe/Berlin:20261203T110000\r\nSTATUS:CANCELLED\r\nSUMMARY:Daily\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let (occ, warnings) = run(feed.as_bytes(), FROM, TO);
    assert!(warnings.is_empty(), "{warnings:?}");
    let got: Vec<(String, Option<Ignored>)> = occ
        .iter()
        .map(|o| (o.start.format("%d %H:%M").to_string(), o.ignored))
        .collect();
    // 2 Dec 09:00Z is 10:00 in Berlin: excluded. 3 Dec is cancelled by its override.
    assert_eq!(
        got,
        [
            ("01 09:00".to_owned(), None),
            ("03 09:00".to_owned(), Some(Ignored::Cancelled)),
            ("04 09:00".to_owned(), None)
        ]
    );
}
