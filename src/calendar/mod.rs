//! Calendars (SPEC §5): iCalendar feeds whose events become firings beside the rules'.
//!
//! # Layout
//!
//! - `template`: the `{summary}`/`{start:FMT}`/`{end:FMT}` templates of map entries, parsed
//!   when the config loads and rendered purely.

pub mod template;
