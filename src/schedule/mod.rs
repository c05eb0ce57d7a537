//! Schedules: when a rule fires. Pure: no I/O, no clock — every function takes the instant it
//! reasons about.
//!
//! Both `at`/`days` rules and cron rules are matched against *local wall-clock time* (a
//! `NaiveDateTime` in the rule's zone); only then is the local time mapped to an instant,
//! by one function that applies the DST rules of SPEC §4 to every kind of rule alike:
//! a local time in a spring-forward gap fires at the first instant after the gap, and a local
//! time that occurs twice fires once, at its first occurrence.
//!
//! # Layout
//!
//! - `parse`: the grammar of the config's small strings — times, days, dates, durations —
//!   and the wording of cron errors; the only parser of them in the program.
//! - `dst`: [`local_to_instant`], the one place that knows about DST, and [`expiry_instant`].
//! - `search`: [`next_firing`] and [`last_firing_in`], the walks over local time.
//!
//! The set of firings of a rule is `{ local_to_instant(tz, n) }` over every local time `n`
//! that matches the schedule on a date not in `skip`. Because `local_to_instant` never
//! decreases as `n` grows, a walk over local time meets the firings in instant order, and
//! several local times that map to one instant (a gap) are one firing.
//! The README ("Dependencies") says what croner itself does at DST transitions and why we do
//! not use it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc, Weekday};

mod dst;
mod parse;
mod search;

pub use dst::{expiry_instant, local_to_instant};
pub use parse::{parse_date_range, parse_day, parse_days, parse_duration, parse_time_of_day};
pub use search::{last_firing_in, next_firing, SEARCH_HORIZON_DAYS};

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
    /// A crontab expression with Vixie semantics. Shared, not boxed: a croner object takes
    /// about 5 KB (its year field alone is a bitmap of 5,000 years), and rules are cloned,
    /// e.g. for the scheduler.
    Cron(Arc<croner::Cron>),
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
///
/// Croner already gives these semantics with `Seconds::Optional` and `dom_and_dow(false)`
/// (checked field by field in the tests: 0 and 7 are Sunday, names in any case, 6 fields put
/// the seconds first, and a restricted day-of-month ORs with a restricted day-of-week), so the
/// expression is passed through unchanged. Choices on top of it:
///
/// - Croner would also take a 7th field (years), which Vixie cron does not have and SPEC §3
///   does not offer, so `Year::Disallowed` rejects it instead of silently accepting it.
/// - A day field counts as restricted unless it is exactly `*` (or `?`), as SPEC §3 words it.
///   Vixie cron itself treats any field *starting* with `*` as unrestricted, so there
///   `0 0 */2 * 1` means "odd days that are Mondays"; here, as in croner, it means "odd days,
///   and Mondays". Only such stepped-star day fields differ; we keep SPEC's reading.
/// - Croner's own extensions (`L`, `W`, `#`, a `+` prefix for DOM-and-DOW, `@daily` and
///   friends) are kept: they cannot change the meaning of a Vixie expression.
///
/// Identical expressions share one parsed object (see `PARSED_CRONS`).
pub fn parse_cron(expr: &str) -> Result<Schedule, String> {
    let key = expr.trim();
    if let Some(cron) = PARSED_CRONS.with(|m| m.borrow().get(key).and_then(Weak::upgrade)) {
        return Ok(Schedule::Cron(cron));
    }
    let cron = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .year(croner::parser::Year::Disallowed)
        .dom_and_dow(false)
        .build()
        .parse(key)
        .map(Arc::new)
        .map_err(|e| parse::cron_error_message(expr, &e))?;
    PARSED_CRONS.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= PARSED_CRONS_CAP {
            m.retain(|_, w| w.strong_count() > 0);
            if m.len() >= PARSED_CRONS_CAP {
                m.clear();
            }
        }
        m.insert(key.to_string(), Arc::downgrade(&cron));
    });
    Ok(Schedule::Cron(cron))
}

/// Distinct expressions [`parse_cron`] remembers per thread.
const PARSED_CRONS_CAP: usize = 4096;

thread_local! {
    /// Expressions parsed on this thread that some rule still holds: a large config repeats a
    /// few expressions over thousands of rules, and parsing one costs about 5 KB and 20 µs
    /// (croner sets its year field bit by bit for 5,000 years). Parsing is a pure function of
    /// the text, so sharing the result changes nothing; `Weak` keeps no expression alive
    /// that no rule uses any more.
    static PARSED_CRONS: RefCell<HashMap<String, Weak<croner::Cron>>> =
        RefCell::new(HashMap::new());
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

/// [`latest_expiry`] in Unix seconds: 9999-12-31T23:59:59Z.
const LATEST_EXPIRY_SECS: i64 = 253_402_300_799;

/// The last instant a status may expire at, the end of the year 9999: SPEC §3 rejects "an
/// expiry beyond the year 9999". Every instant the program shows is RFC 3339, whose years
/// have four digits.
pub fn latest_expiry() -> DateTime<Utc> {
    DateTime::from_timestamp(LATEST_EXPIRY_SECS, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The longest `expire_after` whose expiry, for a firing at `fired`, is not past
/// [`latest_expiry`]; zero once `fired` itself is past it.
pub fn longest_expire_after(fired: DateTime<Utc>) -> Duration {
    (latest_expiry() - fired).to_std().unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_expire_after_ends_at_the_end_of_9999() {
        let at = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .expect("test instant")
                .with_timezone(&Utc)
        };
        assert_eq!(latest_expiry(), at("9999-12-31T23:59:59Z"));
        let cases = [
            ("9999-12-31T23:59:58Z", Duration::from_secs(1)),
            ("9999-12-31T23:59:59Z", Duration::ZERO),
            ("9999-12-31T23:59:59.5Z", Duration::ZERO),
            ("9999-12-30T23:59:59Z", Duration::from_secs(86_400)),
        ];
        for (fired, want) in cases {
            assert_eq!(longest_expire_after(at(fired)), want, "{fired}");
        }
        let later = latest_expiry() + chrono::TimeDelta::days(400);
        assert_eq!(longest_expire_after(later), Duration::ZERO);
        let now = at("2026-12-02T00:00:00Z");
        let longest = longest_expire_after(now);
        assert_eq!(
            expiry_instant(Expiry::After(longest), chrono_tz::UTC, now),
            Some(latest_expiry())
        );
    }
}
