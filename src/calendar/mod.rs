//! Calendars (SPEC §5): the pure core that turns an iCalendar feed into status changes, in
//! three steps that each have their own tests, so that a report like "my Tuesday meeting is
//! missing" lands in exactly one of them. No I/O and no clock: every function takes the
//! instants it reasons about, and warnings are returned as data, never logged here.
//!
//! # Layout
//!
//! - `parse`: bytes → [`Event`]s and [`Warning`]s. A private event's title is dropped here.
//! - `zones`: TZID → IANA zone (vendor prefixes, Windows zone names).
//! - `expand`: events + window + calendar zone → [`Occurrence`]s, with RFC 5545's recurrence
//!   (RRULE through the `rrule` crate, on local wall time) and SPEC §5's decisions on what
//!   real feeds get wrong. DST is mapped by [`crate::schedule::local_to_instant`].
//! - `timeline`: occurrences + the map's [`Matcher`] → [`Change`]s, the status shown
//!   between boundaries.
//! - `firings`: occurrences + the [`crate::config::Calendar`] + now → the [`Firing`]s it
//!   wants: the timeline rendered with the entries' templates, keyed, running segment kept.
//! - `reconcile`: wanted firings + the calendar's queue rows → a [`Plan`]: what to enqueue,
//!   what to supersede (`calendar_changed`), whether the status shown ends now.
//! - `template`: the `{summary}`/`{start:FMT}`/`{end:FMT}` templates of map entries, parsed
//!   when the config loads and rendered purely.

mod expand;
mod firings;
mod parse;
mod reconcile;
pub mod template;
mod timeline;
mod zones;

pub use expand::{expand, Expansion, Ignored, Occurrence};
pub use firings::{firings, shown_summary, Firing, Kind, Map, PRIVATE_SUMMARY};
pub use parse::{parse, Busy, Event, Freq, Length, Parsed, Rule, Time, Warning};
pub use reconcile::{reconcile, Existing, Plan, RowState};
pub use timeline::{timeline, Change, Matcher, Shown};
pub use zones::known_zone;
