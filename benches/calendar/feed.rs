//! The calendar bench's feed (issue 12, "Done when"): about 5 MB of iCalendar with 2,000
//! recurring events, generated at run time from a fixed seed around `now`, so that the
//! repository carries no 5 MB file and the window of 14 days from now always has work in it.
//!
//! What a real company feed carries, in the proportions the generator draws them: events
//! begun up to five years back; daily and weekly RRULEs, some with COUNT, UNTIL or BYDAY;
//! EXDATEs on the rule's own phase; RECURRENCE-ID overrides that move, retitle or cancel one
//! occurrence; TZIDs Europe/Berlin and America/New_York, each with its VTIMEZONE (as Google
//! and Apple write them); attendees; and descriptions that make up most of the bytes, folded
//! at 75 octets as RFC 5545 §3.1 requires.

use std::fmt::Write as _;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};

/// What the feed holds, for the bench to print beside its figures.
pub struct Feed {
    /// The iCalendar bytes.
    pub bytes: Vec<u8>,
    /// Master VEVENTs (each with an RRULE).
    pub masters: usize,
    /// RECURRENCE-ID VEVENTs.
    pub overrides: usize,
    /// EXDATE values in all.
    pub exdates: usize,
}

/// xorshift64*: a fixed sequence, so every run measures the same feed shape.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const ZONES: [&str; 2] = ["Europe/Berlin", "America/New_York"];

/// The two VTIMEZONEs, as Google writes them (with X-LIC-LOCATION).
const VTIMEZONES: &str =
    "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nX-LIC-LOCATION:Europe/Berlin\r\n\
BEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nTZNAME:CEST\r\n\
DTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\n\
BEGIN:STANDARD\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nTZNAME:CET\r\n\
DTSTART:19701025T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\n\
END:VTIMEZONE\r\n\
BEGIN:VTIMEZONE\r\nTZID:America/New_York\r\nX-LIC-LOCATION:America/New_York\r\n\
BEGIN:DAYLIGHT\r\nTZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400\r\nTZNAME:EDT\r\n\
DTSTART:19700308T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\r\nEND:DAYLIGHT\r\n\
BEGIN:STANDARD\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\nTZNAME:EST\r\n\
DTSTART:19701101T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\r\nEND:STANDARD\r\n\
END:VTIMEZONE\r\n";

const WORDS: &[&str] = &[
    "agenda",
    "review",
    "quarterly",
    "roadmap",
    "customer",
    "please",
    "join",
    "dial-in",
    "meeting",
    "notes",
    "follow-up",
    "budget",
    "design",
    "release",
    "incident",
    "retro",
    "planning",
    "sync",
    "the",
    "and",
    "for",
    "with",
    "https://meet.example.com/abc-defg-hij",
];

/// `NAME:value` folded at 75 octets (continuation lines start with a space).
fn folded(out: &mut String, line: &str) {
    let bytes = line.as_bytes();
    let mut start = 0;
    let mut width = 75;
    while start < bytes.len() {
        let mut end = (start + width).min(bytes.len());
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        if start > 0 {
            out.push(' ');
        }
        out.push_str(&line[start..end]);
        out.push_str("\r\n");
        start = end;
        width = 74;
    }
}

fn local(t: NaiveDateTime) -> String {
    t.format("%Y%m%dT%H%M%S").to_string()
}

/// A description of about `len` bytes, escaped as TEXT (`\n` for line breaks).
fn description(rng: &mut Rng, len: usize) -> String {
    let mut s = String::from("DESCRIPTION:");
    while s.len() < len {
        s.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
        s.push_str(if rng.chance(8) { "\\n" } else { " " });
    }
    s
}

/// A feed of `events` recurring events around `now`, padded to about `target_bytes`.
pub fn generate(now: DateTime<Utc>, events: usize, target_bytes: usize) -> Feed {
    let mut rng = Rng(0x0ca1_e0da_2026_1202);
    let mut out = String::with_capacity(target_bytes + target_bytes / 8);
    out.push_str(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//slack-statusd//calendar bench//EN\r\n\
         CALSCALE:GREGORIAN\r\nMETHOD:PUBLISH\r\nX-WR-CALNAME:Work\r\n",
    );
    out.push_str(VTIMEZONES);
    // Each master and its overrides share the padding: measured from what the rest weighs.
    let per_event = target_bytes / events;
    let today = now.naive_utc().date();
    let (mut overrides, mut exdates) = (0, 0);
    for i in 0..events {
        let zone = ZONES[i % 2];
        let days_back = rng.below(5 * 365) as i64;
        let start_day = today - Duration::days(days_back);
        let start = start_day
            .and_hms_opt(8 + rng.below(10) as u32, 15 * rng.below(4) as u32, 0)
            .expect("a valid time of day");
        let minutes = [15, 30, 45, 60, 90][rng.below(5) as usize];
        let end = start + Duration::minutes(minutes);
        // The rule's period in days: EXDATEs and overrides are placed on its phase.
        let (rule, period) = match rng.below(8) {
            0 => ("FREQ=DAILY".to_owned(), 1),
            1 => ("FREQ=DAILY;INTERVAL=2".to_owned(), 2),
            2 => ("FREQ=WEEKLY".to_owned(), 7),
            3 => ("FREQ=WEEKLY;INTERVAL=2".to_owned(), 14),
            4 => (format!("FREQ=DAILY;COUNT={}", 10 + rng.below(2_000)), 1),
            5 => {
                // UNTIL from a year back to a year ahead: some ended, some still running.
                let until = today - Duration::days(365) + Duration::days(rng.below(730) as i64);
                (
                    format!("FREQ=WEEKLY;UNTIL={}T235959Z", until.format("%Y%m%d")),
                    7,
                )
            }
            6 => (
                format!(
                    "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;COUNT={}",
                    50 + rng.below(1_500)
                ),
                7,
            ),
            _ => ("FREQ=WEEKLY;BYDAY=MO,WE,FR".to_owned(), 7),
        };
        let uid = format!("{i:05}-{:016x}@bench.example.com", rng.next());
        let at = out.len();
        let _ = write!(
            out,
            "BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20261201T080000Z\r\n\
             DTSTART;TZID={zone}:{}\r\nDTEND;TZID={zone}:{}\r\nRRULE:{rule}\r\n",
            local(start),
            local(end)
        );
        // Occurrences on the rule's phase from 30 days back to 14 ahead: where EXDATEs and
        // overrides land in real feeds (the recent past and the coming weeks).
        let phase = |k: i64| {
            let steps = (days_back - 30).max(0) / period + k;
            start + Duration::days(steps * period)
        };
        let n_ex = rng.below(6) as usize;
        if n_ex > 0 {
            let values: Vec<String> = (0..n_ex)
                .map(|_| local(phase(rng.below(44 / period as u64 + 1) as i64)))
                .collect();
            exdates += n_ex;
            folded(
                &mut out,
                &format!("EXDATE;TZID={zone}:{}", values.join(",")),
            );
        }
        let summary = format!("{} {}", WORDS[i % 18], i);
        let _ = write!(out, "SUMMARY:{summary}\r\n");
        if rng.chance(10) {
            out.push_str("CLASS:PRIVATE\r\n");
        }
        if rng.chance(15) {
            out.push_str("TRANSP:TRANSPARENT\r\n");
        }
        out.push_str(
            "ORGANIZER;CN=Bob:mailto:bob@example.com\r\n\
             ATTENDEE;CN=Alice;PARTSTAT=ACCEPTED;ROLE=REQ-PARTICIPANT:mailto:alice@example.com\r\n",
        );
        let master_len = out.len() - at;
        // An override in one event of four: moved by an hour, retitled, or cancelled.
        let overridden = rng.chance(25).then(|| {
            let rid = phase(rng.below(44 / period as u64 + 1) as i64);
            let moved = rid + Duration::hours(1);
            let status = if rng.chance(30) {
                "STATUS:CANCELLED\r\n"
            } else {
                ""
            };
            format!(
                "BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20261201T080000Z\r\n\
                 RECURRENCE-ID;TZID={zone}:{}\r\nDTSTART;TZID={zone}:{}\r\n\
                 DTEND;TZID={zone}:{}\r\nSUMMARY:{summary} (moved)\r\n{status}END:VEVENT\r\n",
                local(rid),
                local(moved),
                local(moved + Duration::minutes(minutes))
            )
        });
        let padding =
            per_event.saturating_sub(master_len + overridden.as_ref().map_or(0, String::len) + 20);
        folded(&mut out, &description(&mut rng, padding.max(40)));
        out.push_str("END:VEVENT\r\n");
        if let Some(o) = overridden {
            out.push_str(&o);
            overrides += 1;
        }
    }
    out.push_str("END:VCALENDAR\r\n");
    Feed {
        bytes: out.into_bytes(),
        masters: events,
        overrides,
        exdates,
    }
}
