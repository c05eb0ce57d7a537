//! slack-statusd: keeps Slack statuses and profile fields on a schedule.
//!
//! # Layout
//!
//! The data path reads straight through the modules:
//!
//! - [`config`]: the TOML file and drop-ins → a validated [`config::Config`], or every problem
//!   with file:line:col.
//! - [`schedule`]: pure firing arithmetic — next firing, DST mapping, skip dates, expiry.
//! - [`profile`]: the payload of one update, split into merge groups.

pub mod config;
pub mod profile;
pub mod schedule;
