//! Walks over local wall-clock time that find a rule's firings.
//!
//! A rule's firings are `local_to_instant(tz, n)` for every local time `n` that matches its
//! schedule on a local date not in `skip`. `local_to_instant` never decreases as `n` grows,
//! so the walks can go through local time in order and compare the mapped instants with the
//! bounds they were given; that comparison is what makes the DST edge cases come out right
//! (a search that starts inside a repeated hour, or right at the end of a gap).

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone};
use chrono::{Datelike, Utc, Weekday};
use chrono_tz::Tz;

use super::dst::{local_to_instant, to_local};
use super::{DateRange, Schedule};

/// How far, in days of local time, [`next_firing`] looks ahead and [`last_firing_in`] looks
/// back: five years. A schedule that cannot fire in that span (`0 0 30 2 *`, or weekdays all
/// skipped) is treated as never firing, and every search ends.
pub const SEARCH_HORIZON_DAYS: i64 = 5 * 366;

/// Cap on croner calls in one search. A search needs one call per skip range it jumps over,
/// plus at most one per second of a repeated hour when it starts inside one (a per-second
/// cron), so this is never reached in practice; it is here so that no input can loop forever.
const MAX_CRON_STEPS: u32 = 100_000;

/// The first firing strictly after `after`: the earliest instant `f > after` at which
/// `schedule` fires in `tz`, skipping local dates in `skip`. `None` if there is none within
/// [`SEARCH_HORIZON_DAYS`].
///
/// The walk starts at `after`'s local time. Every local time at or before it maps to an
/// instant at or before `after`, so nothing is missed, and a gap's firing is not repeated once
/// `after` has reached it. Local times after it can still map to instants at or before
/// `after` when `after` lies in the second pass of a repeated hour (they map to the first
/// pass); those are skipped.
///
/// Cost: a calendar rule looks at each local date once up to the answer (at most
/// [`SEARCH_HORIZON_DAYS`] dates); a cron rule makes one croner call per candidate, which is
/// one call unless a skip range or a repeated hour is in the way.
pub fn next_firing(
    schedule: &Schedule,
    tz: Tz,
    skip: &[DateRange],
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let start = to_local(tz, after)?;
    let limit = start.checked_add_signed(TimeDelta::days(SEARCH_HORIZON_DAYS))?;
    match schedule {
        Schedule::Calendar { times, days } => {
            next_calendar(times, days, tz, skip, after, start.date(), limit.date())
        }
        Schedule::Cron(cron) => next_cron(cron, tz, skip, after, start, limit),
    }
}

/// The most recent firing `f` with `after < f <= upto`, or `None` if there is none (or
/// `upto <= after`). This is what the daemon applies after downtime: only the latest missed
/// firing counts.
///
/// The walk goes *backwards* from `upto`, so it stops at the first firing it meets, however
/// long the gap and however often the rule fires: a per-second cron over a three-day gap costs
/// one croner call, not 259,200. In detail:
///
/// - cron rules: one croner backward search per candidate; candidates are only rejected when
///   they fall on a skipped date (one call jumps over a whole skip range) or, when `upto` lies
///   in the second pass of a repeated hour, when they map past `upto` (at most one per second
///   of that hour);
/// - calendar rules: one look at each local date from `upto` back to the answer.
///
/// Either walk stops at `after`, and in any case after [`SEARCH_HORIZON_DAYS`] of local time.
pub fn last_firing_in(
    schedule: &Schedule,
    tz: Tz,
    skip: &[DateRange],
    after: DateTime<Utc>,
    upto: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if upto <= after {
        return None;
    }
    let top = latest_local_at_or_before(tz, upto)?;
    let horizon = top.checked_sub_signed(TimeDelta::days(SEARCH_HORIZON_DAYS))?;
    let window = Window { after, upto };
    match schedule {
        Schedule::Calendar { times, days } => {
            // Local times before `after`'s local date cannot map past `after`.
            let floor = to_local(tz, after)?.date().max(horizon.date());
            last_calendar(times, days, tz, skip, window, top.date(), floor)
        }
        Schedule::Cron(cron) => last_cron(cron, tz, skip, window, top, horizon),
    }
}

/// The bounds of [`last_firing_in`]: a firing `f` counts if `after < f <= upto`.
#[derive(Clone, Copy)]
struct Window {
    /// Exclusive lower bound.
    after: DateTime<Utc>,
    /// Inclusive upper bound.
    upto: DateTime<Utc>,
}

impl Window {
    /// Whether the firing `f` lies in the window.
    fn contains(&self, f: DateTime<Utc>) -> bool {
        self.after < f && f <= self.upto
    }
}

/// The latest local time whose firing instant can be at or before `upto`.
///
/// Usually that is `upto`'s own local time. But when `upto` lies in the *second* pass of a
/// repeated hour, the rest of that hour's local times still map (to their first pass) before
/// `upto`, so the walk must start later: one fold length later covers them. Candidates past
/// the fold that this adds map after `upto`, and the walk rejects them.
fn latest_local_at_or_before(tz: Tz, upto: DateTime<Utc>) -> Option<NaiveDateTime> {
    let local = to_local(tz, upto)?;
    match tz.from_local_datetime(&local) {
        LocalResult::Ambiguous(a, b) => {
            let first = a.min(b).with_timezone(&Utc);
            local.checked_add_signed(upto - first)
        }
        _ => Some(local),
    }
}

/// Whether a calendar rule fires at all on `date`: its weekday is listed and it is not skipped.
fn fires_on(days: &[Weekday], skip: &[DateRange], date: NaiveDate) -> bool {
    days.contains(&date.weekday()) && skipping(skip, date).is_none()
}

/// The span covered by every skip range containing `date` (their union, which is one range
/// since they all contain `date`), so that one jump clears overlapping ranges at once; `None`
/// if `date` is not skipped.
fn skipping(skip: &[DateRange], date: NaiveDate) -> Option<DateRange> {
    skip.iter()
        .filter(|r| r.contains(date))
        .copied()
        .reduce(|a, b| DateRange {
            first: a.first.min(b.first),
            last: a.last.max(b.last),
        })
}

/// [`next_firing`] for an `at`/`days` rule: the first local date from `start` on with a
/// firing after `after`, and on it the earliest such firing.
fn next_calendar(
    times: &[NaiveTime],
    days: &[Weekday],
    tz: Tz,
    skip: &[DateRange],
    after: DateTime<Utc>,
    start: NaiveDate,
    limit: NaiveDate,
) -> Option<DateTime<Utc>> {
    if times.is_empty() || days.is_empty() {
        return None;
    }
    start
        .iter_days()
        .take_while(|d| *d <= limit)
        .filter(|d| fires_on(days, skip, *d))
        .find_map(|date| {
            // Firings on one date are compared by instant, so `times` need not be sorted.
            times
                .iter()
                .map(|t| local_to_instant(tz, date.and_time(*t)))
                .filter(|f| *f > after)
                .min()
        })
}

/// [`last_firing_in`] for an `at`/`days` rule: the latest local date from `top` back to
/// `floor` with a firing in the window, and on it the latest such firing.
fn last_calendar(
    times: &[NaiveTime],
    days: &[Weekday],
    tz: Tz,
    skip: &[DateRange],
    window: Window,
    top: NaiveDate,
    floor: NaiveDate,
) -> Option<DateTime<Utc>> {
    if times.is_empty() || days.is_empty() {
        return None;
    }
    top.iter_days()
        .rev()
        .take_while(|d| *d >= floor)
        .filter(|d| fires_on(days, skip, *d))
        .find_map(|date| {
            times
                .iter()
                .map(|t| local_to_instant(tz, date.and_time(*t)))
                .filter(|f| window.contains(*f))
                .max()
        })
}

/// Where a croner search resumes: from `at`, including it or not.
struct Cursor {
    /// The local time the next croner call starts from.
    at: NaiveDateTime,
    /// Whether `at` itself may be the answer (true right after a jump over skipped dates).
    inclusive: bool,
}

/// [`next_firing`] for a cron rule: croner searches local time (a `NaiveDateTime`, so it
/// applies no DST logic of its own), and each match is mapped with [`local_to_instant`].
fn next_cron(
    cron: &croner::Cron,
    tz: Tz,
    skip: &[DateRange],
    after: DateTime<Utc>,
    start: NaiveDateTime,
    limit: NaiveDateTime,
) -> Option<DateTime<Utc>> {
    let cron = within_years(cron, start.year(), limit.year())?;
    let mut cursor = Cursor {
        at: start,
        inclusive: false,
    };
    for _ in 0..MAX_CRON_STEPS {
        // croner fails only when it runs out of years to search: no firing.
        let n = cron
            .find_next_occurrence(&cursor.at, cursor.inclusive)
            .ok()?;
        if n > limit {
            return None;
        }
        cursor = match skipping(skip, n.date()) {
            // Resume at the first moment of the day after the skipped range.
            Some(range) => Cursor {
                at: range.last.succ_opt()?.and_time(NaiveTime::MIN),
                inclusive: true,
            },
            None => {
                let f = local_to_instant(tz, n);
                if f > after {
                    return Some(f);
                }
                Cursor {
                    at: n,
                    inclusive: false,
                }
            }
        };
    }
    None
}

/// [`last_firing_in`] for a cron rule: croner searches local time backwards from `top`, and
/// the first match whose instant is in the window is the answer. Since instants never
/// increase as the walk goes back, a match at or before `window.after` ends the search.
fn last_cron(
    cron: &croner::Cron,
    tz: Tz,
    skip: &[DateRange],
    window: Window,
    top: NaiveDateTime,
    horizon: NaiveDateTime,
) -> Option<DateTime<Utc>> {
    let cron = within_years(cron, horizon.year(), top.year())?;
    let mut cursor = Cursor {
        at: top,
        inclusive: true,
    };
    for _ in 0..MAX_CRON_STEPS {
        let n = cron
            .find_previous_occurrence(&cursor.at, cursor.inclusive)
            .ok()?;
        if n < horizon {
            return None;
        }
        cursor = match skipping(skip, n.date()) {
            // Resume at the last second of the day before the skipped range.
            Some(range) => Cursor {
                at: range.first.pred_opt()?.and_hms_opt(23, 59, 59)?,
                inclusive: true,
            },
            None => {
                let f = local_to_instant(tz, n);
                if f <= window.after {
                    return None;
                }
                if f <= window.upto {
                    return Some(f);
                }
                Cursor {
                    at: n,
                    inclusive: false,
                }
            }
        };
    }
    None
}

/// A copy of `cron` that matches only in the years `first..=last`, or `None` if none of those
/// years is in croner's range (1 to 5000), where a cron rule cannot fire at all.
///
/// Left alone, croner searches a pattern that never matches (`0 0 31 4 *`) on to year 5000, or
/// back to year 1, which takes the better part of a second; with its year field narrowed to
/// the search window it gives up at the window's end. The cost is one clone per search.
fn within_years(cron: &croner::Cron, first: i32, last: i32) -> Option<croner::Cron> {
    let first = first.max(croner::YEAR_LOWER_LIMIT);
    let last = last.min(croner::YEAR_UPPER_LIMIT);
    if first > last {
        return None;
    }
    // croner's own year field: its full range, no special features (`L`, `#`, `W`), no offset.
    let mut years = croner::CronComponent::new(
        croner::YEAR_LOWER_LIMIT as u16,
        croner::YEAR_UPPER_LIMIT as u16,
        0,
        0,
    );
    years.parse(&format!("{first}-{last}")).ok()?;
    let mut bounded = cron.clone();
    bounded.pattern.years = years;
    Some(bounded)
}
