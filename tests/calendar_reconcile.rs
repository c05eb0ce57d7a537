//! Reconciliation (SPEC §5 "Each successful fetch recomputes the future") as a table: the
//! queue rows an earlier fetch left (built from that fetch's own firings, in a given state)
//! against what the feed wants now → what is enqueued, what is superseded, and whether the
//! status shown ends now.

mod calendar_fixtures;

use calendar_fixtures::{calendar, occ, t};
use slack_statusd::calendar::{
    firings, reconcile, Existing, Firing, Kind, Occurrence, Plan, RowState,
};

/// The firings `feed` wants at `now` (`"01T09:15"`), with or without restore.
fn wanted(feed: &[Occurrence], restore: bool, now: &str) -> Vec<Firing> {
    firings(feed, &calendar(restore), t(now))
}

/// A firing as `uid@HH:MM` (`end:uid@HH:MM` for an end).
fn name(f: &Firing) -> String {
    let kind = if f.kind == Kind::End { "end:" } else { "" };
    format!("{kind}{}@{}", f.uid, f.at.format("%H:%M"))
}

/// One fetch's firings become rows in `state` (the earlier fetch was at `then`), with ids
/// after those already in `rows`.
fn enqueue_all(
    rows: &mut Vec<(Existing, String)>,
    feed: &[Occurrence],
    restore: bool,
    then: &str,
    state: RowState,
) {
    for f in wanted(feed, restore, then) {
        let id = rows.len() as i64 + 1;
        let row = Existing {
            id,
            key: f.key.clone(),
            at: f.at,
            state,
        };
        rows.push((row, name(&f)));
    }
}

/// One case: the rows left by earlier fetches, the feed now, and the key shown (by the
/// name of the row that holds it).
struct Case {
    name: &'static str,
    restore: bool,
    rows: Vec<(Existing, String)>,
    feed: Vec<Occurrence>,
    now: &'static str,
    shown: Option<&'static str>,
    /// Names of the firings enqueued, names of the rows superseded, end_now.
    want: (Vec<&'static str>, Vec<&'static str>, bool),
}

fn rows(parts: &[(&[Occurrence], &str, RowState)], restore: bool) -> Vec<(Existing, String)> {
    let mut out = Vec::new();
    for (feed, then, state) in parts {
        enqueue_all(&mut out, feed, restore, then, *state);
    }
    out
}

fn run(case: &Case) -> (Vec<String>, Vec<String>, bool) {
    let existing: Vec<Existing> = case.rows.iter().map(|(r, _)| r.clone()).collect();
    let shown_key = case.shown.map(|n| {
        let (row, _) = case
            .rows
            .iter()
            .find(|(_, name)| name == n)
            .unwrap_or_else(|| panic!("{}: no row named {n}", case.name));
        row.key.as_str()
    });
    let Plan {
        enqueue,
        supersede,
        end_now,
    } = reconcile(
        t(case.now),
        wanted(&case.feed, case.restore, case.now),
        &existing,
        shown_key,
    );
    let superseded = supersede
        .iter()
        .map(|id| {
            let (_, name) = case.rows.iter().find(|(r, _)| r.id == *id).unwrap();
            name.clone()
        })
        .collect();
    (enqueue.iter().map(name).collect(), superseded, end_now)
}

#[test]
fn each_fetch_supersedes_what_no_longer_holds_enqueues_what_is_new_and_ends_what_went_away() {
    use RowState::{CalendarChanged, Finished, InFlight, Pending, Sent};
    let standup = || occ("Standup", "01T09:00", "01T10:00");
    let review = || occ("Review", "01T14:00", "01T15:00");
    let retitled = || Occurrence {
        uid: "Standup".into(),
        ..occ("Standup (room 4)", "01T09:00", "01T10:00")
    };
    let moved = || Occurrence {
        uid: "Standup".into(),
        ..occ("Standup", "01T14:00", "01T15:00")
    };
    // A long workshop with an important talk inside: three segments.
    let workshop = || occ("Workshop", "01T09:00", "01T12:00");
    let talk = || occ("Important talk", "01T10:00", "01T11:00");

    let cases = vec![
        Case {
            name: "unchanged feed: nothing",
            restore: false,
            rows: rows(&[(&[standup(), review()], "01T08:00", Pending)], false),
            feed: vec![standup(), review()],
            now: "01T08:30",
            shown: None,
            want: (vec![], vec![], false),
        },
        Case {
            name: "a new event is enqueued",
            restore: false,
            rows: rows(&[(&[standup()], "01T08:00", Pending)], false),
            feed: vec![standup(), review()],
            now: "01T08:30",
            shown: None,
            want: (vec!["Review@14:00"], vec![], false),
        },
        Case {
            name: "a title edited before the start: the old row superseded, the new one enqueued",
            restore: false,
            rows: rows(&[(&[standup()], "01T08:00", Pending)], false),
            feed: vec![retitled()],
            now: "01T08:30",
            shown: None,
            want: (vec!["Standup@09:00"], vec!["Standup@09:00"], false),
        },
        Case {
            name: "an event deleted before its start is superseded",
            restore: false,
            rows: rows(&[(&[standup(), review()], "01T08:00", Pending)], false),
            feed: vec![review()],
            now: "01T08:30",
            shown: None,
            want: (vec![], vec!["Standup@09:00"], false),
        },
        Case {
            name: "an event deleted while shown is ended now",
            restore: false,
            rows: rows(&[(&[standup()], "01T08:00", Sent)], false),
            feed: vec![],
            now: "01T09:15",
            shown: Some("Standup@09:00"),
            want: (vec![], vec![], true),
        },
        Case {
            name: "with restore, its pending end is superseded too: the end happens now",
            restore: true,
            rows: {
                let mut r = rows(&[(&[standup()], "01T08:00", Sent)], true);
                r[1].0.state = Pending;
                r
            },
            feed: vec![],
            now: "01T09:15",
            shown: Some("Standup@09:00"),
            want: (vec![], vec!["end:Standup@10:00"], true),
        },
        Case {
            name: "an event moved while shown: ended now, and its new time enqueued",
            restore: false,
            rows: rows(&[(&[standup()], "01T08:00", Sent)], false),
            feed: vec![moved()],
            now: "01T09:15",
            shown: Some("Standup@09:00"),
            want: (vec!["Standup@14:00"], vec![], true),
        },
        Case {
            name: "a title edited while shown: the new text replaces it at once, no end",
            restore: false,
            rows: rows(&[(&[standup()], "01T08:00", Sent)], false),
            feed: vec![retitled()],
            now: "01T09:15",
            shown: Some("Standup@09:00"),
            want: (vec!["Standup@09:00"], vec![], false),
        },
        Case {
            name: "after a restart, a sent or finished row's key is not enqueued again",
            restore: false,
            rows: rows(
                &[
                    (&[standup()], "01T08:00", Sent),
                    (&[review()], "01T08:00", Finished),
                ],
                false,
            ),
            feed: vec![standup(), review()],
            now: "01T09:15",
            shown: Some("Standup@09:00"),
            want: (vec![], vec![], false),
        },
        Case {
            name: "edit then undo: the key superseded as calendar_changed is enqueued again",
            restore: false,
            rows: rows(
                &[
                    (&[standup()], "01T08:00", CalendarChanged),
                    (&[retitled()], "01T08:10", Pending),
                ],
                false,
            ),
            feed: vec![standup()],
            now: "01T08:30",
            shown: None,
            want: (vec!["Standup@09:00"], vec!["Standup@09:00"], false),
        },
        Case {
            name: "a row in flight is left alone",
            restore: false,
            rows: rows(&[(&[standup()], "01T08:00", InFlight)], false),
            feed: vec![],
            now: "01T09:00",
            shown: None,
            want: (vec![], vec![], false),
        },
        Case {
            name: "a queued change running now takes the status over: no end",
            restore: false,
            rows: {
                let mut r = rows(&[(&[workshop(), talk()], "01T08:00", Pending)], false);
                r[0].0.state = Sent;
                r
            },
            feed: vec![workshop(), talk()],
            now: "01T10:00",
            shown: Some("Workshop@09:00"),
            want: (vec![], vec![], false),
        },
        Case {
            name: "the inner event deleted while shown: ended now (the outer one was sent before)",
            restore: false,
            rows: {
                let mut r = rows(&[(&[workshop(), talk()], "01T08:00", Sent)], false);
                r[2].0.state = Pending;
                r
            },
            feed: vec![workshop()],
            now: "01T10:30",
            shown: Some("Important talk@10:00"),
            want: (vec![], vec!["Workshop@11:00"], true),
        },
    ];
    for case in &cases {
        let (enqueue, supersede, end_now) = run(case);
        let (want_enqueue, want_supersede, want_end) = &case.want;
        assert_eq!(
            (enqueue, supersede, end_now),
            (
                want_enqueue.iter().map(|s| s.to_string()).collect(),
                want_supersede.iter().map(|s| s.to_string()).collect(),
                *want_end
            ),
            "{}",
            case.name
        );
    }
}
