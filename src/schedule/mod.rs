//! Schedules: when a rule fires. Pure: no I/O, no clock — every function takes the instant it
//! reasons about.
//!
//! Both `at`/`days` rules and cron rules are matched against *local wall-clock time* (a
//! `NaiveDateTime` in the rule's zone); only then is the local time mapped to an instant,
//! by one function that applies the DST rules of SPEC §4 to every kind of rule alike:
//! a local time in a spring-forward gap fires at the first instant after the gap, and a local
//! time that occurs twice fires once, at its first occurrence.

use std::time::Duration;

use chrono::{NaiveDate, NaiveTime, Weekday};

/// A parsed schedule of one rule, without its zone or skip dates.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// `at` + `days`: fires at each of `times` on each day whose weekday is in `days`.
    Calendar {
        /// Local times of day, sorted and without duplicates.
        times: Vec<NaiveTime>,
        /// Weekdays on which the rule fires.
        days: Vec<Weekday>,
    },
    /// A crontab expression with Vixie semantics.
    Cron(Box<croner::Cron>),
}

/// An inclusive range of local dates on which a rule does not fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    /// First skipped date.
    pub first: NaiveDate,
    /// Last skipped date (equal to `first` for a single date).
    pub last: NaiveDate,
}

impl DateRange {
    /// Whether `date` falls in the range, both ends included.
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.first <= date && date <= self.last
    }
}

/// Parse a crontab expression as people know it from Vixie cron: 5 fields minute-first or 6
/// with seconds first; day-of-week 0–7 (0 and 7 are Sunday) or names; when day-of-month and
/// day-of-week are both restricted, either matches.
pub fn parse_cron(expr: &str) -> Result<Schedule, String> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .dom_and_dow(false)
        .build()
        .parse(expr.trim())
        .map(|c| Schedule::Cron(Box::new(c)))
        .map_err(|e| e.to_string())
}

/// When a rule's status expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// No expiry (`status_expiration = 0`).
    Never,
    /// `expire_after`: this long after the firing instant.
    After(Duration),
    /// `expire_at`: the first such local time strictly after the firing.
    At(NaiveTime),
}
