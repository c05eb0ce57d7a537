//! What the calendar tests share: a calendar loaded from a real config, and hand-built
//! occurrences on a compact clock.

// Each test binary that includes this module uses only part of it.
#![allow(dead_code)]

use std::path::Path;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use slack_statusd::calendar::{Busy, Occurrence};
use slack_statusd::config::{load_str, Calendar};

/// A calendar in Berlin with four map entries, in priority order: all-day events, a
/// DND-only "focus" entry, "important" meetings and every busy or tentative meeting.
pub fn calendar(restore: bool) -> Calendar {
    let text = format!(
        r#"timezone = "Europe/Berlin"
[tokens.alice]
token_env = "SLACK_TOKEN_ALICE"

[[calendars]]
name = "work"
token = "alice"
url = "work.ics"
restore = {restore}

[[calendars.map]]
all_day = true
status_text = "Out of office until {{end:%a %-d %b}}"
status_emoji = ":palm_tree:"

[[calendars.map]]
summary = "(?i)focus"
dnd = true

[[calendars.map]]
summary = "(?i)important"
status_text = "{{summary}} until {{end:%H:%M}}"
status_emoji = ":red_circle:"

[[calendars.map]]
busy = ["busy", "tentative"]
status_text = "{{summary}}"
status_emoji = ":spiral_calendar_pad:"
"#
    );
    let config = match load_str(Path::new("/etc/slack-statusd/config.toml"), &text) {
        Ok(c) => c,
        Err(e) => panic!("the test config does not load: {:#?}", e.problems),
    };
    config.calendars[0].clone()
}

/// `"01T09:00"` → 2026-12-01T09:00Z (Berlin is UTC+1 in December).
pub fn t(s: &str) -> DateTime<Utc> {
    NaiveDateTime::parse_from_str(&format!("2026-12-{s}"), "%Y-%m-%dT%H:%M")
        .unwrap()
        .and_utc()
}

/// A timed, busy occurrence whose UID is its title.
pub fn occ(summary: &str, start: &str, end: &str) -> Occurrence {
    Occurrence {
        uid: summary.to_owned(),
        start: t(start),
        end: t(end),
        all_day: false,
        busy: Busy::Busy,
        summary: Some(summary.to_owned()),
        private: false,
        ignored: None,
    }
}

/// An all-day occurrence from Berlin midnight of `first` to that of `after` (exclusive).
pub fn all_day(summary: &str, first: u32, after: u32) -> Occurrence {
    let midnight = |d| {
        Tz::Europe__Berlin
            .with_ymd_and_hms(2026, 12, d, 0, 0, 0)
            .unwrap()
            .with_timezone(&Utc)
    };
    Occurrence {
        start: midnight(first),
        end: midnight(after),
        all_day: true,
        busy: Busy::Oof,
        ..occ(summary, "01T00:00", "01T00:00")
    }
}
