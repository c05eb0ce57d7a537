//! Calendar firings (SPEC §5 "Timeline") as a table: hand-built occurrences and a calendar
//! loaded from a real config → the firings it wants at `now`. One event, back to back,
//! unchanged boundaries, priority, private events, all-day text, the segment running at
//! `now`, ended segments, restore at the end, the 100-character cut, a DND-only entry; and
//! occurrences that survive the JSON round trip of the database's last good copy.

mod calendar_fixtures;

use calendar_fixtures::{all_day, calendar, occ, t};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use slack_statusd::calendar::{
    expand, firings, parse, Busy, Firing, Ignored, Kind, Occurrence, PRIVATE_SUMMARY,
};

/// One firing as a line of the table:
/// `kind at..until uid "text" emoji exp=… dnd=…`, times as `DDTHH:MM` in UTC.
fn line(f: &Firing) -> String {
    let hm = |d: DateTime<Utc>| d.format("%dT%H:%M").to_string();
    let kind = match f.kind {
        Kind::Show => "show",
        Kind::End => "end",
    };
    let until = f.until.map_or("-".to_owned(), hm);
    let status = match &f.patch.status {
        Some(s) => {
            // The expiry is the end of the occurrence shown, as Unix seconds.
            assert_eq!(s.expiration, f.end.timestamp(), "{f:?}");
            format!("{:?} {} exp={}", s.text, s.emoji, hm(f.end))
        }
        None => format!("no-status end={}", hm(f.end)),
    };
    let dnd = f.dnd.map_or("-".to_owned(), |d| d.to_string());
    format!("{kind} {}..{until} {} {status} dnd={dnd}", hm(f.at), f.uid)
}

fn run(occurrences: &[Occurrence], restore: bool, now: &str) -> Vec<String> {
    firings(occurrences, &calendar(restore), t(now))
        .iter()
        .map(line)
        .collect()
}

/// A row of the table: its name, the occurrences, `restore`, now, the firings as lines.
type Case = (
    &'static str,
    Vec<Occurrence>,
    bool,
    &'static str,
    Vec<String>,
);

#[test]
fn the_timeline_becomes_the_firings_spec_5_describes() {
    let long = "x".repeat(150);
    let cut = format!("{}…", "x".repeat(99));
    let cases: Vec<Case> = vec![
        (
            "one event",
            vec![occ("Standup", "01T09:00", "01T09:30")],
            false,
            "01T08:00",
            vec![r#"show 01T09:00..01T09:30 Standup "Standup" :spiral_calendar_pad: exp=01T09:30 dnd=-"#.into()],
        ),
        (
            "back to back with the same text: the expiry changes, so two firings",
            vec![
                Occurrence { uid: "a".into(), ..occ("Standup", "01T09:00", "01T09:30") },
                Occurrence { uid: "b".into(), ..occ("Standup", "01T09:30", "01T10:00") },
            ],
            false,
            "01T08:00",
            vec![
                r#"show 01T09:00..01T09:30 a "Standup" :spiral_calendar_pad: exp=01T09:30 dnd=-"#.into(),
                r#"show 01T09:30..01T10:00 b "Standup" :spiral_calendar_pad: exp=01T10:00 dnd=-"#.into(),
            ],
        ),
        (
            "a boundary that changes neither text, emoji nor expiry sends nothing",
            vec![
                Occurrence { uid: "a".into(), ..occ("Sync", "01T09:00", "01T11:00") },
                Occurrence { uid: "b".into(), ..occ("Sync", "01T10:00", "01T11:00") },
            ],
            false,
            "01T08:00",
            vec![r#"show 01T09:00..01T11:00 a "Sync" :spiral_calendar_pad: exp=01T11:00 dnd=-"#.into()],
        ),
        (
            "a higher-priority event inside a longer one, rendered in Berlin",
            vec![
                occ("Workshop", "01T09:00", "01T12:00"),
                occ("Important review", "01T10:00", "01T11:00"),
            ],
            false,
            "01T08:00",
            vec![
                r#"show 01T09:00..01T10:00 Workshop "Workshop" :spiral_calendar_pad: exp=01T12:00 dnd=-"#.into(),
                r#"show 01T10:00..01T11:00 Important review "Important review until 12:00" :red_circle: exp=01T11:00 dnd=-"#.into(),
                r#"show 01T11:00..01T12:00 Workshop "Workshop" :spiral_calendar_pad: exp=01T12:00 dnd=-"#.into(),
            ],
        ),
        (
            "a DND-only entry sets no status; the meeting's status is sent again after it",
            vec![
                occ("Meeting", "01T09:00", "01T11:00"),
                occ("Focus", "01T10:00", "01T10:30"),
            ],
            false,
            "01T08:00",
            vec![
                r#"show 01T09:00..01T10:00 Meeting "Meeting" :spiral_calendar_pad: exp=01T11:00 dnd=-"#.into(),
                "show 01T10:00..01T10:30 Focus no-status end=01T10:30 dnd=true".into(),
                r#"show 01T10:30..01T11:00 Meeting "Meeting" :spiral_calendar_pad: exp=01T11:00 dnd=-"#.into(),
            ],
        ),
        (
            "a private event shows Busy",
            vec![Occurrence {
                uid: "p".into(),
                private: true,
                summary: None,
                ..occ("", "01T09:00", "01T10:00")
            }],
            false,
            "01T08:00",
            vec![r#"show 01T09:00..01T10:00 p "Busy" :spiral_calendar_pad: exp=01T10:00 dnd=-"#.into()],
        ),
        (
            "all day: {end} is the last day, the expiry DTEND's midnight",
            vec![all_day("Vacation", 9, 12)],
            false,
            "01T08:00",
            vec![r#"show 08T23:00..11T23:00 Vacation "Out of office until Fri 11 Dec" :palm_tree: exp=11T23:00 dnd=-"#.into()],
        ),
        (
            "the segment running at now keeps its real start",
            vec![occ("Standup", "01T09:00", "01T10:00")],
            false,
            "01T09:40",
            vec![r#"show 01T09:00..01T10:00 Standup "Standup" :spiral_calendar_pad: exp=01T10:00 dnd=-"#.into()],
        ),
        (
            "segments that ended are dropped (one ended exactly at now)",
            vec![
                occ("First", "01T08:00", "01T09:00"),
                occ("Second", "01T09:00", "01T10:00"),
                occ("Third", "01T11:00", "01T12:00"),
            ],
            false,
            "01T10:00",
            vec![r#"show 01T11:00..01T12:00 Third "Third" :spiral_calendar_pad: exp=01T12:00 dnd=-"#.into()],
        ),
        (
            "restore off: the end of the last event and a gap send nothing",
            vec![occ("A", "01T09:00", "01T10:00"), occ("B", "01T11:00", "01T12:00")],
            false,
            "01T08:00",
            vec![
                r#"show 01T09:00..01T10:00 A "A" :spiral_calendar_pad: exp=01T10:00 dnd=-"#.into(),
                r#"show 01T11:00..01T12:00 B "B" :spiral_calendar_pad: exp=01T12:00 dnd=-"#.into(),
            ],
        ),
        (
            "restore on: an end after each stretch of statuses, naming what ended",
            vec![occ("A", "01T09:00", "01T10:00"), occ("B", "01T11:00", "01T12:00")],
            true,
            "01T08:00",
            vec![
                r#"show 01T09:00..01T10:00 A "A" :spiral_calendar_pad: exp=01T10:00 dnd=-"#.into(),
                "end 01T10:00..01T11:00 A no-status end=01T10:00 dnd=-".into(),
                r#"show 01T11:00..01T12:00 B "B" :spiral_calendar_pad: exp=01T12:00 dnd=-"#.into(),
                "end 01T12:00..- B no-status end=01T12:00 dnd=-".into(),
            ],
        ),
        (
            "restore on: the end still to come is kept while its event runs",
            vec![occ("A", "01T09:00", "01T10:00")],
            true,
            "01T09:59",
            vec![
                r#"show 01T09:00..01T10:00 A "A" :spiral_calendar_pad: exp=01T10:00 dnd=-"#.into(),
                "end 01T10:00..- A no-status end=01T10:00 dnd=-".into(),
            ],
        ),
        (
            "a rendered text over 100 characters is cut to 99 and an ellipsis",
            vec![Occurrence { uid: "long".into(), ..occ(&long, "01T09:00", "01T10:00") }],
            false,
            "01T08:00",
            vec![format!(r#"show 01T09:00..01T10:00 long {cut:?} :spiral_calendar_pad: exp=01T10:00 dnd=-"#)],
        ),
        (
            "ignored and unmatched occurrences give nothing",
            vec![
                Occurrence { ignored: Some(Ignored::Declined), ..occ("Declined", "01T09:00", "01T10:00") },
                Occurrence { busy: Busy::Free, ..occ("Lunch", "01T12:00", "01T13:00") },
            ],
            true,
            "01T08:00",
            vec![],
        ),
    ];
    for (name, occurrences, restore, now, want) in cases {
        assert_eq!(run(&occurrences, restore, now), want, "{name}");
    }
}

#[test]
fn a_private_title_is_in_no_field_and_no_key_even_when_the_occurrence_holds_one() {
    // expand never keeps a private title; firings must not rely on that.
    let secret = "Dr. Schmidt, dermatology";
    let private = Occurrence {
        uid: "p".into(),
        private: true,
        summary: Some(secret.into()),
        ..occ("", "01T09:00", "01T10:00")
    };
    let out = firings(&[private], &calendar(true), t("01T08:00"));
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[0].patch.status.as_ref().unwrap().text, PRIVATE_SUMMARY);
    assert!(out[0].key.contains("\"Busy\""), "{}", out[0].key);
    let everything = format!("{out:?}");
    assert!(!everything.contains("dermatology"), "{everything}");
}

#[test]
fn keys_are_stable_for_an_unchanged_feed_and_new_for_an_edit() {
    let cal = calendar(false);
    let now = t("01T08:00");
    let key = |o: Occurrence| {
        let out = firings(&[o], &cal, now);
        assert_eq!(out.len(), 1);
        out[0].key.clone()
    };
    let base = key(occ("Standup", "01T09:00", "01T09:30"));
    assert_eq!(base, key(occ("Standup", "01T09:00", "01T09:30")));
    // A new UID alone changes nothing that is sent: the same change.
    assert_eq!(
        base,
        key(Occurrence {
            uid: "other".into(),
            ..occ("Standup", "01T09:00", "01T09:30")
        })
    );
    let edits = [
        occ("Standup!", "01T09:00", "01T09:30"),
        occ("Standup", "01T09:05", "01T09:30"),
        occ("Standup", "01T09:00", "01T09:45"),
        occ("Important standup", "01T09:00", "01T09:30"),
    ];
    let mut seen = vec![base];
    for edit in edits {
        let k = key(edit);
        assert!(!seen.contains(&k), "{k} repeats");
        seen.push(k);
    }
    // A `|` in a title cannot make two different changes one key.
    assert_ne!(
        key(occ("a|b", "01T09:00", "01T09:30")),
        key(occ("a", "01T09:00", "01T09:30"))
    );
}

/// The daemon keeps a calendar's last good copy as its occurrences, in JSON: they come back
/// equal, with no private title in the stored text, and give the same firings.
#[test]
fn occurrences_round_trip_through_json_and_give_the_same_firings() {
    let parsed = parse(include_bytes!("data/calendars/google.ics"));
    let expansion = expand(
        &parsed.events,
        t("01T00:00"),
        t("15T00:00"),
        Tz::Europe__Berlin,
        &["alice@example.com".to_owned()],
    );
    let occurrences = expansion.occurrences;
    assert!(occurrences.iter().any(|o| o.private));
    assert!(occurrences.iter().any(|o| o.all_day));
    assert!(occurrences.iter().any(|o| o.ignored.is_some()));

    let stored = serde_json::to_string(&occurrences).unwrap();
    assert!(!stored.contains("dermatology"), "{stored}");
    assert!(stored.contains(r#""ignored":"declined""#), "{stored}");
    assert!(stored.contains(r#""busy":"busy""#), "{stored}");
    let back: Vec<Occurrence> = serde_json::from_str(&stored).unwrap();
    assert_eq!(back, occurrences);

    let cal = calendar(true);
    let now = t("01T00:00");
    let from_feed = firings(&occurrences, &cal, now);
    assert!(!from_feed.is_empty());
    assert_eq!(firings(&back, &cal, now), from_feed);
    // The private event is there, as Busy, and its title nowhere.
    assert!(from_feed.iter().any(|f| f
        .patch
        .status
        .as_ref()
        .is_some_and(|s| s.text == PRIVATE_SUMMARY)));
    assert!(!format!("{from_feed:?}").contains("dermatology"));

    for (word, busy) in [("free", Busy::Free), ("oof", Busy::Oof)] {
        assert_eq!(serde_json::to_string(&busy).unwrap(), format!("\"{word}\""));
    }
    assert_eq!(
        serde_json::to_string(&Ignored::Cancelled).unwrap(),
        "\"cancelled\""
    );
}
