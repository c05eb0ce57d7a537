//! Firings (SPEC §5 "Timeline"): the timeline of a calendar rendered with its map entries'
//! templates into the queue rows it wants. Pure: `now` is an argument.
//!
//! Decisions taken here, each from SPEC §5 and §6:
//! - A boundary whose firing would send exactly what the one before sends — the same text,
//!   emoji and expiry, and the same `dnd` and `presence` — sends nothing: the earlier firing's
//!   segment simply goes on. (Back-to-back events with the same text differ in expiry, so
//!   each is a firing.) `dnd` and `presence` count too, because a firing that snoozes DND
//!   where the one before did not is not "nothing".
//! - Where nothing is shown any more, there is a firing only with the calendar's `restore`:
//!   a [`Kind::End`], which the restore of SPEC §6 acts on. Without it the shown status's
//!   own expiry clears it, so there is nothing to send.
//! - A map entry with only `dnd` and/or `presence` sets no status: its patch has no status
//!   group, exactly as a rule without `status_text`/`status_emoji`, so the status shown
//!   before it (with its own expiry) stays. SPEC §6 makes DND and presence parts of their
//!   own, which go out even without a profile part.
//! - Calendar firings ignore `catch_up`: the segment running at `now` keeps its real start as
//!   `at` (the daemon applies it at once); a segment that ended by `now` is dropped.

use chrono::{DateTime, Utc};

use super::expand::Occurrence;
use super::template::Fill;
use super::timeline::{timeline, Matcher};
use crate::config::{Calendar, MapEntry, Presence};
use crate::profile::{Dnd, Patch, Status};

/// What a private event is called everywhere outside the parser (SPEC §5).
pub const PRIVATE_SUMMARY: &str = "Busy";

/// The title an occurrence shows to the map and the templates: `Busy` for a private event,
/// empty for an event without one.
pub fn shown_summary(occurrence: &Occurrence) -> &str {
    if occurrence.private {
        PRIVATE_SUMMARY
    } else {
        occurrence.summary.as_deref().unwrap_or("")
    }
}

/// A calendar's ordered `[[calendars.map]]` entries as the timeline's [`Matcher`]: the first
/// entry whose conditions all hold wins.
#[derive(Debug, Clone, Copy)]
pub struct Map<'a>(pub &'a [MapEntry]);

impl Matcher for Map<'_> {
    fn matches(&self, o: &Occurrence) -> Option<usize> {
        let summary = shown_summary(o);
        self.0
            .iter()
            .position(|e| e.matches(summary, o.busy, o.all_day))
    }
}

/// What a firing does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Show the status of an occurrence (and its entry's `dnd`/`presence`).
    Show,
    /// Nothing is shown from `at` on: with `restore`, put back the status from before the
    /// calendar's (SPEC §6). Only produced when the calendar has `restore = true`.
    End,
}

/// One change the calendar wants sent: a queue row.
#[derive(Debug, Clone, PartialEq)]
pub struct Firing {
    /// Show or end.
    pub kind: Kind,
    /// When it is due: the boundary's instant, even when that is before `now` (the segment
    /// running now is applied at once, whenever it began).
    pub at: DateTime<Utc>,
    /// When its segment ends: the next boundary that sends something or ends the status.
    /// `None` for an [`Kind::End`] after which nothing more is shown.
    pub until: Option<DateTime<Utc>>,
    /// The UID of the occurrence shown (for an end: of the one whose status ends).
    pub uid: String,
    /// The end of the occurrence shown: the status's expiry and the end of a DND snooze.
    /// For an end, equal to `at`.
    pub end: DateTime<Utc>,
    /// What the profile part sets: the rendered status with `expiration` = `end`, or no
    /// status group for an entry that sets none (and for an end).
    pub patch: Patch,
    /// The entry's `dnd`, carried for the DND part (SPEC §6). `None` for an end.
    pub dnd: Option<bool>,
    /// The entry's `presence`, carried for the presence part. `None` for an end.
    pub presence: Option<Presence>,
    /// What identifies this change across fetches and restarts (stored in the queue row):
    /// built from its instant and everything it sends, so an unchanged feed gives the same
    /// keys and an edit of title or time a new one. It holds rendered text only, and a
    /// private event's renders from `Busy`, so no private title can be in it.
    pub key: String,
}

impl Firing {
    /// Whether its segment is running at `now`: begun, and not ended.
    pub fn active_at(&self, now: DateTime<Utc>) -> bool {
        self.at <= now && self.until.is_none_or(|u| u > now)
    }

    /// Whether its segment has ended by `now`.
    pub fn ended_by(&self, now: DateTime<Utc>) -> bool {
        self.until.is_some_and(|u| u <= now)
    }
}

/// The firings `calendar` wants for `occurrences` (sorted as [`super::expand`] returns them),
/// in time order, without those whose segment ended by `now`.
pub fn firings(occurrences: &[Occurrence], calendar: &Calendar, now: DateTime<Utc>) -> Vec<Firing> {
    let mut out: Vec<Firing> = Vec::new();
    // The firing whose segment runs, if something is shown; `None` after an end.
    let mut showing: Option<usize> = None;
    for change in timeline(occurrences, &Map(&calendar.map)) {
        let at = change.at;
        let next = match change.shown {
            Some(s) => {
                let firing = show(
                    &occurrences[s.occurrence],
                    &calendar.map[s.entry],
                    calendar,
                    at,
                );
                if showing.is_some_and(|i| sends_the_same(&out[i], &firing)) {
                    continue;
                }
                Some(firing)
            }
            None => {
                let ended = showing.map(|i| out[i].uid.clone());
                match ended {
                    Some(uid) if calendar.restore => Some(end(uid, at)),
                    _ => None,
                }
            }
        };
        // The segment before ends here, whether or not this boundary sends anything.
        if let Some(last) = out.last_mut() {
            last.until.get_or_insert(at);
        }
        showing = None;
        if let Some(firing) = next {
            if firing.kind == Kind::Show {
                showing = Some(out.len());
            }
            out.push(firing);
        }
    }
    out.retain(|f| !f.ended_by(now));
    out
}

/// The firing that shows `occurrence` through `entry` from `at`.
fn show(
    occurrence: &Occurrence,
    entry: &MapEntry,
    calendar: &Calendar,
    at: DateTime<Utc>,
) -> Firing {
    let status = entry.status.as_ref().map(|s| {
        let fill = Fill {
            summary: shown_summary(occurrence),
            start: occurrence.start,
            end: occurrence.end,
            all_day: occurrence.all_day,
        };
        Status {
            text: s.text.render(&fill, calendar.timezone),
            emoji: s.emoji.render(&fill, calendar.timezone),
            expiration: occurrence.end.timestamp(),
        }
    });
    let key = show_key(
        at,
        occurrence.end,
        status.as_ref(),
        entry.dnd,
        entry.presence,
    );
    Firing {
        kind: Kind::Show,
        at,
        until: None,
        uid: occurrence.uid.clone(),
        end: occurrence.end,
        patch: Patch {
            status,
            fields: Default::default(),
            dnd: entry
                .dnd
                .map(|on| Dnd::toggle(on, occurrence.end.timestamp())),
            presence: entry.presence,
        },
        dnd: entry.dnd,
        presence: entry.presence,
        key,
    }
}

/// The firing that ends the status of occurrence `uid` at `at`.
fn end(uid: String, at: DateTime<Utc>) -> Firing {
    Firing {
        kind: Kind::End,
        at,
        until: None,
        uid,
        end: at,
        patch: Patch::default(),
        dnd: None,
        presence: None,
        key: format!("end|{}", at.timestamp_millis()),
    }
}

/// Whether `b` would send exactly what `a` sends (its instant aside).
fn sends_the_same(a: &Firing, b: &Firing) -> bool {
    a.patch == b.patch && a.end == b.end && a.dnd == b.dnd && a.presence == b.presence
}

/// `show|{at_ms}|{end_ms}|{text}|{emoji}|{dnd}|{presence}`, text and emoji as JSON strings
/// (so a `|` in a title cannot make two changes one key, and the encoding is stable across
/// Rust versions, unlike `Debug`); `-` for what the firing does not set.
fn show_key(
    at: DateTime<Utc>,
    end: DateTime<Utc>,
    status: Option<&Status>,
    dnd: Option<bool>,
    presence: Option<Presence>,
) -> String {
    let status = match status {
        Some(s) => format!("{}|{}", json(&s.text), json(&s.emoji)),
        None => "-|-".to_owned(),
    };
    let dnd = dnd.map_or("-", |d| if d { "true" } else { "false" });
    let presence = presence.map_or("-", Presence::as_str);
    format!(
        "show|{}|{}|{status}|{dnd}|{presence}",
        at.timestamp_millis(),
        end.timestamp_millis()
    )
}

/// `text` as a JSON string.
fn json(text: &str) -> String {
    // Serializing a string cannot fail.
    serde_json::to_string(text).unwrap_or_default()
}
