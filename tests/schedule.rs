//! The schedule module through its public API (SPEC §3 rule keys, §4 "Scheduling"): tables of
//! rules, zones and starting instants with the exact firing instants they must give.
//!
//! The rules are built with the schedule module's grammar (`parse_time_of_day`, `parse_days`,
//! `parse_date_range`, `parse_cron`), the one the config loader calls; what that grammar
//! accepts and rejects, with the messages users see, is tested through the loader in
//! `tests/config.rs`.
//!
//! Instants are written in UTC (`...Z`) so that a wrong offset cannot hide. Dates used:
//! 2026-11-23 is a Monday; Europe/Berlin springs forward on 2026-03-29 (02:00 CET → 03:00 CEST,
//! at 01:00Z) and falls back on 2026-10-25 (03:00 CEST → 02:00 CET, at 01:00Z);
//! America/New_York springs forward on 2026-03-08 (at 07:00Z) and falls back on 2026-11-01
//! (at 06:00Z).

use std::time::Duration;

use chrono::{DateTime, NaiveTime, SecondsFormat, TimeDelta, Utc, Weekday};
use chrono_tz::Tz;
use slack_statusd::schedule::{
    expiry_instant, last_firing_in, local_to_instant, next_firing, parse_cron, parse_date_range,
    parse_days, parse_time_of_day, DateRange, Expiry, Schedule,
};

const BERLIN: Tz = chrono_tz::Europe::Berlin;
const NEW_YORK: Tz = chrono_tz::America::New_York;
const UTC: Tz = chrono_tz::UTC;

// ---------------------------------------------------------------------------------------------
// Helpers

fn instant(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("bad test instant {s}: {e}"))
        .with_timezone(&Utc)
}

fn show(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// An `at`/`days` rule; `days` are `parse_days` inputs, joined as a TOML list would be.
fn cal(times: &[&str], days: &[&str]) -> Schedule {
    let mut ts: Vec<NaiveTime> = times
        .iter()
        .map(|t| parse_time_of_day(t).expect("test time"))
        .collect();
    ts.sort();
    ts.dedup();
    let mut ds: Vec<Weekday> = days
        .iter()
        .flat_map(|d| parse_days(d).expect("test days"))
        .collect();
    ds.dedup();
    Schedule::Calendar {
        times: ts,
        days: ds,
    }
}

fn cron(expr: &str) -> Schedule {
    parse_cron(expr).unwrap_or_else(|e| panic!("test cron {expr}: {e}"))
}

fn skips(ranges: &[&str]) -> Vec<DateRange> {
    ranges
        .iter()
        .map(|r| parse_date_range(r).expect("test skip date"))
        .collect()
}

/// The first `n` firings after `after`, each found by `next_firing` from the one before.
fn firings(schedule: &Schedule, tz: Tz, skip: &[DateRange], after: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = instant(after);
    for _ in 0..n {
        match next_firing(schedule, tz, skip, at) {
            Some(f) => {
                assert!(f > at, "next_firing went backwards: {f} after {at}");
                out.push(show(f));
                at = f;
            }
            None => break,
        }
    }
    out
}

/// One table row: a rule in a zone, a starting instant, and the firings that must follow.
struct Case {
    name: &'static str,
    schedule: Schedule,
    tz: Tz,
    skip: Vec<DateRange>,
    after: &'static str,
    expect: &'static [&'static str],
}

fn check(cases: Vec<Case>) {
    let mut failures = Vec::new();
    for c in cases {
        let got = firings(&c.schedule, c.tz, &c.skip, c.after, c.expect.len() + 1);
        let got = &got[..got.len().min(c.expect.len())];
        if got != c.expect {
            failures.push(format!(
                "{}: from {}\n  expected {:?}\n  got      {:?}",
                c.name, c.after, c.expect, got
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

fn case(
    name: &'static str,
    schedule: Schedule,
    tz: Tz,
    after: &'static str,
    expect: &'static [&'static str],
) -> Case {
    Case {
        name,
        schedule,
        tz,
        skip: Vec::new(),
        after,
        expect,
    }
}

// ---------------------------------------------------------------------------------------------
// at / days

#[test]
fn calendar_rules() {
    check(vec![
        case(
            "daily, later the same day",
            cal(&["09:00"], &["daily"]),
            BERLIN,
            "2026-11-23T07:00:00Z",
            &["2026-11-23T08:00:00Z", "2026-11-24T08:00:00Z"],
        ),
        case(
            "strictly after: a start on a firing gives the next one",
            cal(&["09:00"], &["daily"]),
            BERLIN,
            "2026-11-23T08:00:00Z",
            &["2026-11-24T08:00:00Z"],
        ),
        case(
            "sub-second start just past a firing",
            cal(&["09:00"], &["daily"]),
            UTC,
            "2026-11-23T09:00:00.5Z",
            &["2026-11-24T09:00:00Z"],
        ),
        case(
            "weekdays from a Saturday",
            cal(&["09:00"], &["weekdays"]),
            BERLIN,
            "2026-11-21T12:00:00Z",
            &[
                "2026-11-23T08:00:00Z",
                "2026-11-24T08:00:00Z",
                "2026-11-25T08:00:00Z",
                "2026-11-26T08:00:00Z",
                "2026-11-27T08:00:00Z",
                "2026-11-30T08:00:00Z",
            ],
        ),
        case(
            "weekends from a Monday",
            cal(&["10:00"], &["weekends"]),
            BERLIN,
            "2026-11-23T12:00:00Z",
            &[
                "2026-11-28T09:00:00Z",
                "2026-11-29T09:00:00Z",
                "2026-12-05T09:00:00Z",
            ],
        ),
        case(
            "range mon-fri",
            cal(&["09:00"], &["mon-fri"]),
            UTC,
            "2026-11-27T10:00:00Z",
            &["2026-11-30T09:00:00Z"],
        ),
        case(
            "wrapping range fri-mon",
            cal(&["09:00"], &["fri-mon"]),
            UTC,
            "2026-11-24T00:00:00Z",
            &[
                "2026-11-27T09:00:00Z",
                "2026-11-28T09:00:00Z",
                "2026-11-29T09:00:00Z",
                "2026-11-30T09:00:00Z",
                "2026-12-04T09:00:00Z",
            ],
        ),
        case(
            "list of days",
            cal(&["09:00"], &["mon", "Wednesday"]),
            UTC,
            "2026-11-23T09:00:00Z",
            &[
                "2026-11-25T09:00:00Z",
                "2026-11-30T09:00:00Z",
                "2026-12-02T09:00:00Z",
            ],
        ),
        case(
            "several times a day, with seconds",
            cal(&["17:00:30", "09:00", "12:30"], &["daily"]),
            BERLIN,
            "2026-11-23T10:00:00Z",
            &[
                "2026-11-23T11:30:00Z",
                "2026-11-23T16:00:30Z",
                "2026-11-24T08:00:00Z",
            ],
        ),
        case(
            "rollover past local midnight",
            cal(&["23:59:59"], &["daily"]),
            BERLIN,
            "2026-11-23T23:00:00Z",
            &["2026-11-24T22:59:59Z", "2026-11-25T22:59:59Z"],
        ),
        case(
            "midnight",
            cal(&["00:00"], &["sun"]),
            UTC,
            "2026-11-23T00:00:00Z",
            &["2026-11-29T00:00:00Z"],
        ),
    ]);
}

// ---------------------------------------------------------------------------------------------
// cron

#[test]
fn cron_rules() {
    check(vec![
        case(
            "0 9 * * 1-5 is Monday to Friday, from a Saturday",
            cron("0 9 * * 1-5"),
            UTC,
            "2026-11-21T00:00:00Z",
            &[
                "2026-11-23T09:00:00Z",
                "2026-11-24T09:00:00Z",
                "2026-11-25T09:00:00Z",
                "2026-11-26T09:00:00Z",
                "2026-11-27T09:00:00Z",
                "2026-11-30T09:00:00Z",
            ],
        ),
        case(
            "Sunday as 0",
            cron("0 9 * * 0"),
            UTC,
            "2026-11-23T00:00:00Z",
            &["2026-11-29T09:00:00Z", "2026-12-06T09:00:00Z"],
        ),
        case(
            "Sunday as 7",
            cron("0 9 * * 7"),
            UTC,
            "2026-11-23T00:00:00Z",
            &["2026-11-29T09:00:00Z", "2026-12-06T09:00:00Z"],
        ),
        case(
            "range ending in 7 (fri-sun)",
            cron("0 9 * * 5-7"),
            UTC,
            "2026-11-23T00:00:00Z",
            &[
                "2026-11-27T09:00:00Z",
                "2026-11-28T09:00:00Z",
                "2026-11-29T09:00:00Z",
                "2026-12-04T09:00:00Z",
            ],
        ),
        case(
            "day names, lower case",
            cron("0 9 * * mon-fri"),
            UTC,
            "2026-11-21T00:00:00Z",
            &["2026-11-23T09:00:00Z", "2026-11-24T09:00:00Z"],
        ),
        case(
            "day name, upper case",
            cron("0 9 * * SUN"),
            UTC,
            "2026-11-23T00:00:00Z",
            &["2026-11-29T09:00:00Z"],
        ),
        case(
            "month name",
            cron("0 0 1 jan *"),
            UTC,
            "2026-11-23T00:00:00Z",
            &["2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"],
        ),
        case(
            "6 fields: seconds first",
            cron("30 0 9 * * *"),
            UTC,
            "2026-11-23T00:00:00Z",
            &["2026-11-23T09:00:30Z", "2026-11-24T09:00:30Z"],
        ),
        case(
            "6 fields: every 20 seconds",
            cron("*/20 * * * * *"),
            UTC,
            "2026-11-23T09:00:00Z",
            &[
                "2026-11-23T09:00:20Z",
                "2026-11-23T09:00:40Z",
                "2026-11-23T09:01:00Z",
            ],
        ),
        case(
            "DOM or DOW: every 13th and every Friday",
            cron("0 0 13 * 5"),
            UTC,
            "2026-11-01T00:00:00Z",
            &[
                "2026-11-06T00:00:00Z",
                "2026-11-13T00:00:00Z",
                "2026-11-20T00:00:00Z",
                "2026-11-27T00:00:00Z",
                "2026-12-04T00:00:00Z",
                "2026-12-11T00:00:00Z",
                "2026-12-13T00:00:00Z",
                "2026-12-18T00:00:00Z",
            ],
        ),
        case(
            "Sunday as 7 in a list",
            cron("0 9 * * 1,7"),
            UTC,
            "2026-11-01T12:00:00Z",
            &[
                "2026-11-02T09:00:00Z",
                "2026-11-08T09:00:00Z",
                "2026-11-09T09:00:00Z",
            ],
        ),
        case(
            // SPEC's wording: a stepped day-of-month is restricted, so it ORs with the weekday.
            // (Vixie cron itself would AND here because the field starts with '*'.)
            "DOM or DOW with a stepped DOM",
            cron("0 0 */2 * 1"),
            UTC,
            "2026-11-01T00:00:00Z",
            &[
                "2026-11-02T00:00:00Z",
                "2026-11-03T00:00:00Z",
                "2026-11-05T00:00:00Z",
            ],
        ),
        case(
            "DOM alone when DOW is *",
            cron("0 0 13 * *"),
            UTC,
            "2026-11-01T00:00:00Z",
            &["2026-11-13T00:00:00Z", "2026-12-13T00:00:00Z"],
        ),
        case(
            "*/15 minutes",
            cron("*/15 * * * *"),
            UTC,
            "2026-11-23T09:07:00Z",
            &[
                "2026-11-23T09:15:00Z",
                "2026-11-23T09:30:00Z",
                "2026-11-23T09:45:00Z",
                "2026-11-23T10:00:00Z",
            ],
        ),
        case(
            "29 February waits for a leap year",
            cron("0 0 29 2 *"),
            UTC,
            "2026-01-01T00:00:00Z",
            &["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"],
        ),
        case(
            "@daily nickname",
            cron("@daily"),
            UTC,
            "2026-11-23T09:00:00Z",
            &["2026-11-24T00:00:00Z"],
        ),
    ]);
}

#[test]
fn impossible_schedules_end_with_none() {
    let after = instant("2026-01-01T00:00:00Z");
    assert_eq!(next_firing(&cron("0 0 30 2 *"), BERLIN, &[], after), None);
    assert_eq!(
        next_firing(&cron("0 0 31 4,6,9,11 *"), UTC, &[], after),
        None
    );
    // Every date skipped for longer than the horizon.
    let all = skips(&["2026-01-01..2099-12-31"]);
    assert_eq!(next_firing(&cron("* * * * * *"), UTC, &all, after), None);
    assert_eq!(
        next_firing(&cal(&["09:00"], &["daily"]), UTC, &all, after),
        None
    );
    // An empty calendar rule (config rejects it, but the search must still end).
    let empty = Schedule::Calendar {
        times: vec![],
        days: vec![Weekday::Mon],
    };
    assert_eq!(next_firing(&empty, UTC, &[], after), None);
    assert_eq!(
        last_firing_in(
            &cron("0 0 30 2 *"),
            UTC,
            &[],
            after,
            instant("2030-01-01T00:00:00Z")
        ),
        None
    );
}

#[test]
fn search_is_bounded_to_the_horizon() {
    // A rule that next fires in six years is beyond the ~5-year horizon.
    let after = instant("2026-01-01T00:00:00Z");
    assert_eq!(
        next_firing(
            &cron("0 0 1 1 * "),
            UTC,
            &skips(&["2027-01-01..2031-12-31"]),
            after
        ),
        None
    );
    assert_eq!(
        next_firing(
            &cron("0 0 1 1 *"),
            UTC,
            &skips(&["2027-01-01..2029-12-31"]),
            after
        )
        .map(show),
        Some("2030-01-01T00:00:00Z".into())
    );
}

#[test]
fn extreme_instants_do_not_panic() {
    let rules = [cal(&["09:00"], &["daily"]), cron("* * * * * *")];
    for rule in &rules {
        for tz in [BERLIN, NEW_YORK, chrono_tz::Pacific::Kiritimati] {
            for t in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
                let _ = next_firing(rule, tz, &[], t);
                let _ = last_firing_in(rule, tz, &[], DateTime::<Utc>::MIN_UTC, t);
                let _ = expiry_instant(Expiry::At(NaiveTime::MIN), tz, t);
                let _ = expiry_instant(Expiry::After(Duration::MAX), tz, t);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// zones

#[test]
fn same_rule_in_different_zones() {
    let winter = "2026-11-23T00:00:00Z";
    let summer = "2026-07-01T00:00:00Z";
    check(vec![
        case(
            "at, Berlin, winter",
            cal(&["09:00"], &["daily"]),
            BERLIN,
            winter,
            &["2026-11-23T08:00:00Z"],
        ),
        case(
            "at, New York, winter",
            cal(&["09:00"], &["daily"]),
            NEW_YORK,
            winter,
            &["2026-11-23T14:00:00Z"],
        ),
        case(
            "at, UTC, winter",
            cal(&["09:00"], &["daily"]),
            UTC,
            winter,
            &["2026-11-23T09:00:00Z"],
        ),
        case(
            "at, Berlin, summer",
            cal(&["09:00"], &["daily"]),
            BERLIN,
            summer,
            &["2026-07-01T07:00:00Z"],
        ),
        case(
            "at, New York, summer",
            cal(&["09:00"], &["daily"]),
            NEW_YORK,
            summer,
            &["2026-07-01T13:00:00Z"],
        ),
        case(
            "cron, Berlin, winter",
            cron("0 9 * * *"),
            BERLIN,
            winter,
            &["2026-11-23T08:00:00Z"],
        ),
        case(
            "cron, New York, winter",
            cron("0 9 * * *"),
            NEW_YORK,
            winter,
            &["2026-11-23T14:00:00Z"],
        ),
        case(
            "cron, UTC, winter",
            cron("0 9 * * *"),
            UTC,
            winter,
            &["2026-11-23T09:00:00Z"],
        ),
        case(
            "cron, New York, summer",
            cron("0 9 * * *"),
            NEW_YORK,
            summer,
            &["2026-07-01T13:00:00Z"],
        ),
        case(
            "weekday is the local one: Monday 08:00 in Tokyo is Sunday in UTC",
            cal(&["08:00"], &["mon"]),
            chrono_tz::Asia::Tokyo,
            "2026-11-21T00:00:00Z",
            &["2026-11-22T23:00:00Z"],
        ),
        case(
            "cron weekday is the local one too",
            cron("0 8 * * 1"),
            chrono_tz::Asia::Tokyo,
            "2026-11-21T00:00:00Z",
            &["2026-11-22T23:00:00Z"],
        ),
    ]);
}

// ---------------------------------------------------------------------------------------------
// DST: spring forward

#[test]
fn spring_forward_berlin() {
    check(vec![
        case(
            "at in the gap fires at the transition",
            cal(&["02:30"], &["daily"]),
            BERLIN,
            "2026-03-28T12:00:00Z",
            &["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"],
        ),
        case(
            "several at times in the gap and 03:00 collapse into one firing",
            cal(&["02:00", "02:30", "03:00", "03:30"], &["daily"]),
            BERLIN,
            "2026-03-29T00:00:00Z",
            &[
                "2026-03-29T01:00:00Z",
                "2026-03-29T01:30:00Z",
                "2026-03-30T00:00:00Z",
            ],
        ),
        case(
            "at 03:00 does not fire again at the end of the gap",
            cal(&["02:30", "03:00"], &["daily"]),
            BERLIN,
            "2026-03-29T01:00:00Z",
            &["2026-03-30T00:30:00Z"],
        ),
        case(
            "cron fixed time in the gap",
            cron("30 2 * * *"),
            BERLIN,
            "2026-03-28T12:00:00Z",
            &["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"],
        ),
        case(
            "cron */15 in the gap: one firing at 03:00 local",
            cron("*/15 2 * * *"),
            BERLIN,
            "2026-03-28T12:00:00Z",
            &[
                "2026-03-29T01:00:00Z",
                "2026-03-30T00:00:00Z",
                "2026-03-30T00:15:00Z",
            ],
        ),
        case(
            "cron gap times and a 03:00 firing collapse",
            cron("0,30 2,3 * * *"),
            BERLIN,
            "2026-03-29T00:00:00Z",
            &[
                "2026-03-29T01:00:00Z",
                "2026-03-29T01:30:00Z",
                "2026-03-30T00:00:00Z",
            ],
        ),
        case(
            "per-second cron across the gap",
            cron("* * * * * *"),
            BERLIN,
            "2026-03-29T00:59:58Z",
            &[
                "2026-03-29T00:59:59Z",
                "2026-03-29T01:00:00Z",
                "2026-03-29T01:00:01Z",
            ],
        ),
        case(
            "hourly cron across the gap",
            cron("0 * * * *"),
            BERLIN,
            "2026-03-28T23:30:00Z",
            &[
                "2026-03-29T00:00:00Z",
                "2026-03-29T01:00:00Z",
                "2026-03-29T02:00:00Z",
            ],
        ),
    ]);
}

#[test]
fn spring_forward_new_york() {
    check(vec![
        case(
            "at in the gap",
            cal(&["02:30"], &["daily"]),
            NEW_YORK,
            "2026-03-07T12:00:00Z",
            &["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"],
        ),
        case(
            "at 02:00 and 02:59:59 collapse",
            cal(&["02:00", "02:59:59"], &["sun"]),
            NEW_YORK,
            "2026-03-07T12:00:00Z",
            &["2026-03-08T07:00:00Z", "2026-03-15T06:00:00Z"],
        ),
        case(
            "cron fixed time",
            cron("30 2 * * *"),
            NEW_YORK,
            "2026-03-07T12:00:00Z",
            &["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"],
        ),
        case(
            "cron */15 in the gap",
            cron("*/15 2 * * *"),
            NEW_YORK,
            "2026-03-07T12:00:00Z",
            &["2026-03-08T07:00:00Z", "2026-03-09T06:00:00Z"],
        ),
    ]);
}

// ---------------------------------------------------------------------------------------------
// DST: fall back

#[test]
fn fall_back_berlin() {
    check(vec![
        case(
            "at in the repeated hour fires once, at the first pass",
            cal(&["02:30"], &["daily"]),
            BERLIN,
            "2026-10-24T12:00:00Z",
            &["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"],
        ),
        case(
            "cron fixed time fires once",
            cron("30 2 * * *"),
            BERLIN,
            "2026-10-24T12:00:00Z",
            &["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"],
        ),
        case(
            "cron */15 in the repeated hour fires four times, not eight",
            cron("*/15 2 * * *"),
            BERLIN,
            "2026-10-24T12:00:00Z",
            &[
                "2026-10-25T00:00:00Z",
                "2026-10-25T00:15:00Z",
                "2026-10-25T00:30:00Z",
                "2026-10-25T00:45:00Z",
                "2026-10-26T01:00:00Z",
            ],
        ),
        case(
            "hourly cron: 02:00 once, then 03:00 two hours later",
            cron("0 * * * *"),
            BERLIN,
            "2026-10-24T23:30:00Z",
            &[
                "2026-10-25T00:00:00Z",
                "2026-10-25T02:00:00Z",
                "2026-10-25T03:00:00Z",
            ],
        ),
        case(
            "start in the first pass",
            cron("*/15 2 * * *"),
            BERLIN,
            "2026-10-25T00:20:00Z",
            &[
                "2026-10-25T00:30:00Z",
                "2026-10-25T00:45:00Z",
                "2026-10-26T01:00:00Z",
            ],
        ),
        case(
            "cron: start in the second pass skips the rest of the hour",
            cron("*/15 2 * * *"),
            BERLIN,
            "2026-10-25T01:20:00Z",
            &["2026-10-26T01:00:00Z"],
        ),
        case(
            "at: start in the second pass skips the rest of the hour",
            cal(&["02:30"], &["daily"]),
            BERLIN,
            "2026-10-25T01:20:00Z",
            &["2026-10-26T01:30:00Z"],
        ),
        case(
            "at: start in the second pass, 03:00 still fires",
            cal(&["02:30", "03:00"], &["daily"]),
            BERLIN,
            "2026-10-25T01:20:00Z",
            &["2026-10-25T02:00:00Z", "2026-10-26T01:30:00Z"],
        ),
        case(
            "cron: start in the second pass, 03:00 still fires",
            cron("0 3 * * *"),
            BERLIN,
            "2026-10-25T01:20:00Z",
            &["2026-10-25T02:00:00Z"],
        ),
        case(
            "per-second cron: start in the second pass resumes at 03:00 local",
            cron("* * * * * *"),
            BERLIN,
            "2026-10-25T01:30:00Z",
            &["2026-10-25T02:00:00Z", "2026-10-25T02:00:01Z"],
        ),
        case(
            "per-second cron: the end of the first pass runs into 03:00 local",
            cron("* * * * * *"),
            BERLIN,
            "2026-10-25T00:59:58Z",
            &["2026-10-25T00:59:59Z", "2026-10-25T02:00:00Z"],
        ),
    ]);
}

#[test]
fn fall_back_new_york() {
    check(vec![
        case(
            "at in the repeated hour fires once",
            cal(&["01:30"], &["daily"]),
            NEW_YORK,
            "2026-10-31T12:00:00Z",
            &["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"],
        ),
        case(
            "cron fixed time fires once",
            cron("30 1 * * *"),
            NEW_YORK,
            "2026-10-31T12:00:00Z",
            &["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"],
        ),
        case(
            "cron */30 fires on the first pass only",
            cron("*/30 1 * * *"),
            NEW_YORK,
            "2026-10-31T12:00:00Z",
            &[
                "2026-11-01T05:00:00Z",
                "2026-11-01T05:30:00Z",
                "2026-11-02T06:00:00Z",
            ],
        ),
        case(
            "start in the second pass",
            cron("*/30 1 * * *"),
            NEW_YORK,
            "2026-11-01T06:10:00Z",
            &["2026-11-02T06:00:00Z"],
        ),
        case(
            "start in the second pass, 02:00 still fires",
            cron("0 2 * * *"),
            NEW_YORK,
            "2026-11-01T06:10:00Z",
            &["2026-11-01T07:00:00Z"],
        ),
        case(
            "at: start in the second pass",
            cal(&["01:30", "02:00"], &["daily"]),
            NEW_YORK,
            "2026-11-01T06:10:00Z",
            &["2026-11-01T07:00:00Z", "2026-11-02T06:30:00Z"],
        ),
    ]);
}

#[test]
fn local_to_instant_applies_the_dst_rules() {
    let local = |s: &str| {
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").expect("test local time")
    };
    let cases = [
        (BERLIN, "2026-11-23 09:00:00", "2026-11-23T08:00:00Z"),
        (BERLIN, "2026-03-29 01:59:59", "2026-03-29T00:59:59Z"),
        (BERLIN, "2026-03-29 02:00:00", "2026-03-29T01:00:00Z"),
        (BERLIN, "2026-03-29 02:45:17", "2026-03-29T01:00:00Z"),
        (BERLIN, "2026-03-29 03:00:00", "2026-03-29T01:00:00Z"),
        (BERLIN, "2026-10-25 02:00:00", "2026-10-25T00:00:00Z"),
        (BERLIN, "2026-10-25 02:59:59", "2026-10-25T00:59:59Z"),
        (BERLIN, "2026-10-25 03:00:00", "2026-10-25T02:00:00Z"),
        (NEW_YORK, "2026-03-08 02:30:00", "2026-03-08T07:00:00Z"),
        (NEW_YORK, "2026-11-01 01:30:00", "2026-11-01T05:30:00Z"),
        (
            chrono_tz::Australia::Lord_Howe,
            "2026-10-04 02:15:00",
            "2026-10-03T15:30:00Z",
        ),
    ];
    for (tz, l, want) in cases {
        assert_eq!(show(local_to_instant(tz, local(l))), want, "{tz} {l}");
    }
}

// ---------------------------------------------------------------------------------------------
// skip_dates

#[test]
fn skip_dates() {
    let skipping = |name, schedule, tz, skip: &[&str], after, expect| Case {
        name,
        schedule,
        tz,
        skip: skips(skip),
        after,
        expect,
    };
    check(vec![
        skipping(
            "single date",
            cal(&["09:00"], &["daily"]),
            BERLIN,
            &["2026-12-24"],
            "2026-12-23T09:00:00Z",
            &["2026-12-25T08:00:00Z"],
        ),
        skipping(
            "range across the new year",
            cal(&["09:00"], &["daily"]),
            BERLIN,
            &["2026-12-27..2027-01-01"],
            "2026-12-26T12:00:00Z",
            &["2027-01-02T08:00:00Z", "2027-01-03T08:00:00Z"],
        ),
        skipping(
            "range across the new year, cron",
            cron("0 9 * * *"),
            BERLIN,
            &["2026-12-27..2027-01-01"],
            "2026-12-26T12:00:00Z",
            &["2027-01-02T08:00:00Z"],
        ),
        skipping(
            "overlapping and adjacent ranges",
            cron("0 9 * * *"),
            UTC,
            &[
                "2026-12-24..2026-12-26",
                "2026-12-25..2026-12-28",
                "2026-12-29",
            ],
            "2026-12-23T12:00:00Z",
            &["2026-12-30T09:00:00Z"],
        ),
        skipping(
            "the rule's local date, not the UTC date (New York evening)",
            cal(&["21:00"], &["daily"]),
            NEW_YORK,
            &["2026-12-24"],
            "2026-12-24T00:00:00Z",
            &["2026-12-24T02:00:00Z", "2026-12-26T02:00:00Z"],
        ),
        skipping(
            "the rule's local date, not the UTC date (Tokyo morning), cron",
            cron("0 8 * * *"),
            chrono_tz::Asia::Tokyo,
            &["2026-12-25"],
            "2026-12-24T12:00:00Z",
            &["2026-12-25T23:00:00Z"],
        ),
        skipping(
            "per-second cron jumps a long skip range",
            cron("* * * * * *"),
            UTC,
            &["2026-01-01..2026-12-31"],
            "2025-12-31T23:59:58Z",
            &["2025-12-31T23:59:59Z", "2027-01-01T00:00:00Z"],
        ),
        skipping(
            "skipped spring-forward day",
            cron("*/15 2 * * *"),
            BERLIN,
            &["2026-03-29"],
            "2026-03-28T12:00:00Z",
            &["2026-03-30T00:00:00Z"],
        ),
    ]);
}

// ---------------------------------------------------------------------------------------------
// expiry

#[test]
fn expiry_instants() {
    let at = |s| Expiry::At(parse_time_of_day(s).expect("test time"));
    let cases = [
        ("never", Expiry::Never, BERLIN, "2026-11-23T08:00:00Z", None),
        (
            "after 2h",
            Expiry::After(Duration::from_secs(2 * 3600)),
            BERLIN,
            "2026-11-23T08:00:00Z",
            Some("2026-11-23T10:00:00Z"),
        ),
        (
            "after 2h across the spring-forward gap is 2 real hours",
            Expiry::After(Duration::from_secs(2 * 3600)),
            BERLIN,
            "2026-03-29T00:30:00Z",
            Some("2026-03-29T02:30:00Z"),
        ),
        (
            "at later the same day",
            at("17:30"),
            BERLIN,
            "2026-11-23T08:00:00Z",
            Some("2026-11-23T16:30:00Z"),
        ),
        (
            "at earlier: next day",
            at("07:00"),
            BERLIN,
            "2026-11-23T08:00:00Z",
            Some("2026-11-24T06:00:00Z"),
        ),
        (
            "at equal: next day",
            at("09:00"),
            BERLIN,
            "2026-11-23T08:00:00Z",
            Some("2026-11-24T08:00:00Z"),
        ),
        (
            "at uses the firing's local date, not the UTC one",
            at("01:00"),
            NEW_YORK,
            "2026-11-24T02:00:00Z",
            Some("2026-11-24T06:00:00Z"),
        ),
        (
            "at in the spring-forward gap: end of the gap",
            at("02:30"),
            BERLIN,
            "2026-03-28T23:00:00Z",
            Some("2026-03-29T01:00:00Z"),
        ),
        (
            "at in the gap, fired at the end of the gap: next day",
            at("02:30"),
            BERLIN,
            "2026-03-29T01:00:00Z",
            Some("2026-03-30T00:30:00Z"),
        ),
        (
            "at in the repeated hour: first pass",
            at("02:30"),
            BERLIN,
            "2026-10-25T00:10:00Z",
            Some("2026-10-25T00:30:00Z"),
        ),
    ];
    for (name, expiry, tz, fired, want) in cases {
        let got = expiry_instant(expiry, tz, instant(fired)).map(show);
        assert_eq!(got.as_deref(), want, "{name}");
    }
}

// ---------------------------------------------------------------------------------------------
// last_firing_in

#[test]
fn last_firing_in_cases() {
    let daily9 = cal(&["09:00"], &["daily"]);
    /// name, rule, zone, skip dates, after, upto, expected firing.
    type LastCase<'a> = (
        &'a str,
        Schedule,
        Tz,
        Vec<DateRange>,
        &'a str,
        &'a str,
        Option<&'a str>,
    );
    let cases: Vec<LastCase> = vec![
        (
            "gap of days picks the most recent",
            daily9.clone(),
            BERLIN,
            vec![],
            "2026-11-20T12:00:00Z",
            "2026-11-23T12:00:00Z",
            Some("2026-11-23T08:00:00Z"),
        ),
        (
            "upto just before a firing",
            daily9.clone(),
            BERLIN,
            vec![],
            "2026-11-20T12:00:00Z",
            "2026-11-23T07:59:59Z",
            Some("2026-11-22T08:00:00Z"),
        ),
        (
            "upto is inclusive",
            daily9.clone(),
            BERLIN,
            vec![],
            "2026-11-20T12:00:00Z",
            "2026-11-23T08:00:00Z",
            Some("2026-11-23T08:00:00Z"),
        ),
        (
            "after is exclusive",
            daily9.clone(),
            BERLIN,
            vec![],
            "2026-11-23T08:00:00Z",
            "2026-11-23T12:00:00Z",
            None,
        ),
        (
            "none in range",
            cal(&["09:00"], &["weekdays"]),
            BERLIN,
            vec![],
            "2026-11-21T09:00:00Z",
            "2026-11-22T20:00:00Z",
            None,
        ),
        (
            "empty window",
            daily9.clone(),
            BERLIN,
            vec![],
            "2026-11-23T12:00:00Z",
            "2026-11-23T12:00:00Z",
            None,
        ),
        (
            "reversed window",
            daily9.clone(),
            BERLIN,
            vec![],
            "2026-11-24T12:00:00Z",
            "2026-11-23T12:00:00Z",
            None,
        ),
        (
            "skipped most recent day",
            daily9.clone(),
            BERLIN,
            skips(&["2026-11-23"]),
            "2026-11-20T12:00:00Z",
            "2026-11-23T12:00:00Z",
            Some("2026-11-22T08:00:00Z"),
        ),
        (
            "cron weekdays over a weekend: none",
            cron("0 9 * * 1-5"),
            UTC,
            vec![],
            "2026-11-20T10:00:00Z",
            "2026-11-23T08:00:00Z",
            None,
        ),
        (
            "cron weekdays over a weekend: Monday",
            cron("0 9 * * 1-5"),
            UTC,
            vec![],
            "2026-11-20T10:00:00Z",
            "2026-11-23T09:30:00Z",
            Some("2026-11-23T09:00:00Z"),
        ),
        (
            "cron with skipped days",
            cron("0 9 * * *"),
            UTC,
            skips(&["2026-11-22..2026-11-23"]),
            "2026-11-20T10:00:00Z",
            "2026-11-23T09:30:00Z",
            Some("2026-11-21T09:00:00Z"),
        ),
        (
            "cron with everything skipped",
            cron("0 9 * * *"),
            UTC,
            skips(&["2026-11-21..2026-11-23"]),
            "2026-11-20T10:00:00Z",
            "2026-11-23T09:30:00Z",
            None,
        ),
        (
            "per-second cron over three days",
            cron("* * * * * *"),
            UTC,
            vec![],
            "2026-11-20T00:00:00Z",
            "2026-11-23T00:00:00.5Z",
            Some("2026-11-23T00:00:00Z"),
        ),
        (
            "per-minute cron, Berlin",
            cron("* * * * *"),
            BERLIN,
            vec![],
            "2026-11-20T00:00:00Z",
            "2026-11-23T10:17:42Z",
            Some("2026-11-23T10:17:00Z"),
        ),
        (
            "gap: cron */15 in the gap is the transition",
            cron("*/15 2 * * *"),
            BERLIN,
            vec![],
            "2026-03-28T12:00:00Z",
            "2026-03-29T05:00:00Z",
            Some("2026-03-29T01:00:00Z"),
        ),
        (
            "gap: at in the gap",
            cal(&["02:30"], &["daily"]),
            NEW_YORK,
            vec![],
            "2026-03-07T12:00:00Z",
            "2026-03-08T12:00:00Z",
            Some("2026-03-08T07:00:00Z"),
        ),
        (
            "fold: upto in the second pass, cron",
            cron("*/15 2 * * *"),
            BERLIN,
            vec![],
            "2026-10-24T12:00:00Z",
            "2026-10-25T01:50:00Z",
            Some("2026-10-25T00:45:00Z"),
        ),
        (
            "fold: upto in the second pass, at",
            cal(&["02:30"], &["daily"]),
            BERLIN,
            vec![],
            "2026-10-24T12:00:00Z",
            "2026-10-25T01:50:00Z",
            Some("2026-10-25T00:30:00Z"),
        ),
        (
            "fold: upto in the second pass, per-second",
            cron("* * * * * *"),
            BERLIN,
            vec![],
            "2026-10-24T12:00:00Z",
            "2026-10-25T01:30:00Z",
            Some("2026-10-25T00:59:59Z"),
        ),
        (
            "fold: per-second, after in the second pass",
            cron("* * * * * *"),
            BERLIN,
            vec![],
            "2026-10-25T01:30:00Z",
            "2026-10-25T01:59:59Z",
            None,
        ),
    ];
    let mut failures = Vec::new();
    for (name, schedule, tz, skip, after, upto, want) in cases {
        let got = last_firing_in(&schedule, tz, &skip, instant(after), instant(upto)).map(show);
        if got.as_deref() != want {
            failures.push(format!("{name}: expected {want:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// `last_firing_in` and `next_firing` describe one set of firings: walking forward with
/// `next_firing` over the DST days, every firing `f` is the last one up to `f`, and the one
/// before it is the last one up to `f - 1s`.
#[test]
fn last_firing_in_agrees_with_next_firing() {
    let rules = [
        cal(&["01:30", "02:00", "02:30", "03:00"], &["daily"]),
        cron("*/15 1-3 * * *"),
        cron("0 * * * *"),
        cron("*/20 2 * * * *"),
    ];
    let windows = [
        (BERLIN, "2026-03-28T22:00:00Z", "2026-03-29T04:00:00Z"),
        (BERLIN, "2026-10-24T22:00:00Z", "2026-10-25T04:00:00Z"),
        (NEW_YORK, "2026-03-08T04:00:00Z", "2026-03-08T10:00:00Z"),
        (NEW_YORK, "2026-11-01T04:00:00Z", "2026-11-01T10:00:00Z"),
    ];
    let origin = instant("2026-01-01T00:00:00Z");
    for rule in &rules {
        for (tz, from, to) in windows {
            let mut prev = last_firing_in(rule, tz, &[], origin, instant(from));
            let mut at = instant(from);
            while let Some(f) = next_firing(rule, tz, &[], at).filter(|f| *f <= instant(to)) {
                assert_eq!(
                    last_firing_in(rule, tz, &[], origin, f),
                    Some(f),
                    "{rule:?} {tz} {f}"
                );
                let before = f - TimeDelta::seconds(1);
                assert_eq!(
                    last_firing_in(rule, tz, &[], origin, before),
                    prev,
                    "{rule:?} {tz} {before}"
                );
                prev = Some(f);
                at = f;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What croner does on its own with zoned times (summarised in the README, "Dependencies"): the reason the
// module evaluates cron on naive local time instead.

fn croner_native(expr: &str, tz: Tz, from: &str, n: usize) -> Vec<String> {
    let Schedule::Cron(c) = cron(expr) else {
        unreachable!("parse_cron gives Schedule::Cron")
    };
    let mut at = instant(from).with_timezone(&tz);
    let mut out = Vec::new();
    for _ in 0..n {
        at = c
            .find_next_occurrence(&at, false)
            .expect("croner finds a time");
        out.push(show(at.with_timezone(&Utc)));
    }
    out
}

#[test]
fn croner_native_spring_forward() {
    // A fixed time in the gap runs at the end of the gap: matches SPEC §4.
    assert_eq!(
        croner_native("30 2 * * *", BERLIN, "2026-03-28T12:00:00Z", 2),
        ["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]
    );
    assert_eq!(
        croner_native("30 2 * * *", NEW_YORK, "2026-03-07T12:00:00Z", 2),
        ["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]
    );
    // An interval job loses the gap's times entirely: SPEC §4 wants one firing at 03:00.
    assert_eq!(
        croner_native("*/15 2 * * *", BERLIN, "2026-03-28T12:00:00Z", 1),
        ["2026-03-30T00:00:00Z"]
    );
}

#[test]
fn croner_native_fall_back() {
    // A fixed time in the repeated hour runs once, at the first pass: matches SPEC §4.
    assert_eq!(
        croner_native("30 2 * * *", BERLIN, "2026-10-24T12:00:00Z", 2),
        ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]
    );
    assert_eq!(
        croner_native("30 1 * * *", NEW_YORK, "2026-10-31T12:00:00Z", 2),
        ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]
    );
    // An interval job runs on both passes: SPEC §4 wants the first pass only.
    assert_eq!(
        croner_native("*/30 1 * * *", NEW_YORK, "2026-10-31T12:00:00Z", 5),
        [
            "2026-11-01T05:00:00Z",
            "2026-11-01T05:30:00Z",
            "2026-11-01T06:00:00Z",
            "2026-11-01T06:30:00Z",
            "2026-11-02T06:00:00Z",
        ]
    );
}
