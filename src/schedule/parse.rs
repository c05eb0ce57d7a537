//! The grammar of the small strings inside the config: times of day (`at`, `expire_at`),
//! days (`days`), dates and date ranges (`skip_dates`), durations (`expire_after`,
//! `catch_up`, `retention`, the limits and backoffs), and the wording of cron errors.
//!
//! This is the only parser of these strings: the config's walk calls it for every file, and
//! anything else that reads one from a user (a `--expire` on the command line) calls the same
//! functions, so the program accepts one language everywhere. Every error names the input,
//! says what is wrong and what to write instead; the config puts file:line:col and the key in
//! front.
//!
//! The decisions where people's habits and SPEC §3 (`"HH:MM"` or `"HH:MM:SS"`) meet, each
//! tested through the config loader in `tests/config.rs`:
//!
//! | input | | why |
//! | --- | --- | --- |
//! | `9:00` | accepted | a one-digit hour is how people write times, and it is unambiguous |
//! | `9:5`, `12:0` | rejected | is `9:5` 9:05 or 9:50? minutes and seconds need two digits |
//! | `12:00:60` | rejected | no schedule needs a leap second, and most days have none |
//! | `24:00` | rejected | the hour is 0 to 23; midnight is `00:00` (of the next day) |
//! | ` 09:00 ` | accepted | surrounding spaces change nothing and are easy to leave in |
//! | `2026-1-5` | rejected | a date is `YYYY-MM-DD`; the message offers `2026-01-05` |
//! | `Mon`, `MONDAY` | accepted | day names in any case, short (3 letters) or full |
//! | `tues`, `thur` | rejected | neither the short nor the full name; the message offers both |

use std::time::Duration;

use chrono::{NaiveDate, NaiveTime, Weekday};

use super::DateRange;

/// What a cron error message ends with: the shape of a valid expression.
const CRON_HINT: &str = "write 5 fields \"minute hour day-of-month month day-of-week\" \
     (or 6 with seconds first), e.g. \"0 9 * * mon-fri\"";

/// Word a croner parse error for users, with the expression and what to write instead.
pub(super) fn cron_error_message(expr: &str, err: &croner::errors::CronError) -> String {
    let err = err.to_string();
    let err = err.trim_end_matches('.');
    format!("{expr:?} is not a valid cron expression ({err}); {CRON_HINT}")
}

/// Parse a time of day `"HH:MM"` or `"HH:MM:SS"` on the 24-hour clock, as used by `at` and
/// `expire_at`. The module's table says which near misses are accepted and why.
pub fn parse_time_of_day(s: &str) -> Result<NaiveTime, String> {
    let bad = |why: &str| {
        format!(
            "{s:?} is not a time of day: {why}; write \"HH:MM\" or \"HH:MM:SS\" on the 24-hour \
             clock, e.g. \"09:00\" or \"17:30:15\""
        )
    };
    let parts: Vec<&str> = s.trim().split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return Err(bad("hours and minutes must be separated by ':'"));
    }
    let hour = number(parts[0], 1..=2).ok_or_else(|| bad("the hour is not a number"))?;
    let minute = number(parts[1], 2..=2).ok_or_else(|| bad("the minutes need two digits"))?;
    let second = match parts.get(2) {
        Some(p) => number(p, 2..=2).ok_or_else(|| bad("the seconds need two digits"))?,
        None => 0,
    };
    if hour > 23 {
        return Err(bad("the hour must be 0 to 23 (midnight is \"00:00\")"));
    }
    if minute > 59 {
        return Err(bad("the minutes must be 00 to 59"));
    }
    if second > 59 {
        return Err(bad(
            "the seconds must be 00 to 59 (there are no leap seconds)",
        ));
    }
    NaiveTime::from_hms_opt(hour, minute, second).ok_or_else(|| bad("no such time"))
}

/// A string of ASCII digits whose length is in `digits`, as a number.
fn number(s: &str, digits: std::ops::RangeInclusive<usize>) -> Option<u32> {
    if !digits.contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Every weekday, Monday first: the order in which [`parse_days`] returns days.
const WEEK: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

/// The full English names of [`WEEK`], lower case; the short name is the first three letters.
const DAY_NAMES: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// What a `days` error ends with: every form the key takes.
const DAYS_HINT: &str = "write \"daily\", \"weekdays\", \"weekends\", a day such as \"mon\", \
     a range such as \"mon-fri\", or a list such as [\"mon\", \"wed\"]";

/// Parse `days`: `"daily"`, `"weekdays"`, `"weekends"`, a range such as `"mon-fri"` (a range
/// may wrap past Sunday: `"fri-mon"` is Friday to Monday), or one day name (see
/// [`parse_day`]). The days come back Monday first, without duplicates.
///
/// A list of days is a TOML array in the config, each element one day name for
/// [`parse_day`]; a comma-separated string is rejected with a hint to write the array.
pub fn parse_days(s: &str) -> Result<Vec<Weekday>, String> {
    let word = s.trim().to_ascii_lowercase();
    match word.as_str() {
        "daily" => return Ok(WEEK.to_vec()),
        "weekdays" => return Ok(WEEK[..5].to_vec()),
        "weekends" => return Ok(WEEK[5..].to_vec()),
        _ => {}
    }
    if word.contains(',') {
        return Err(format!(
            "{s:?} is not a day or a range of days: a list of days is a TOML array; \
             write e.g. [\"mon\", \"wed\"]"
        ));
    }
    let Some((from, to)) = word.split_once('-') else {
        return match weekday(&word) {
            Some(day) => Ok(vec![day]),
            // A near miss of one name ("tues") is answered with that name's spellings.
            None if near_miss(&word).is_some() => Err(day_error(s)),
            None => Err(format!(
                "{s:?} is not a day or a range of days; {DAYS_HINT}"
            )),
        };
    };
    let end = |part: &str| {
        let part = part.trim();
        let why = match part {
            "" => "it needs a day on each side of '-'; write e.g. \"mon-fri\"".to_string(),
            _ => day_error(part),
        };
        weekday(part).ok_or_else(|| format!("{s:?} is not a range of days: {why}"))
    };
    Ok(weekday_range(end(from)?, end(to)?))
}

/// Parse one day name: short (`"mon"`) or full (`"monday"`), in any case, with spaces
/// around it ignored. Other abbreviations (`"tues"`, `"thur"`) are rejected, with the two
/// spellings that would have been right.
pub fn parse_day(s: &str) -> Result<Weekday, String> {
    weekday(&s.trim().to_ascii_lowercase()).ok_or_else(|| day_error(s))
}

/// The message for `s`, which is not a day name.
fn day_error(s: &str) -> String {
    match near_miss(&s.trim().to_ascii_lowercase()) {
        Some(full) => format!("{s:?} is not a day; write {:?} or {full:?}", &full[..3]),
        None => format!(
            "{s:?} is not a day; write mon, tue, wed, thu, fri, sat or sun (or the full name)"
        ),
    }
}

/// The full day name that `word` (lower case) begins, if it begins exactly one and is long
/// enough to tell: `"tues"` → `"tuesday"`, `"s"` → none (Saturday or Sunday?).
fn near_miss(word: &str) -> Option<&'static str> {
    let mut matches = DAY_NAMES
        .iter()
        .filter(|full| word.len() >= 2 && full.starts_with(word));
    match (matches.next(), matches.next()) {
        (Some(full), None) => Some(full),
        _ => None,
    }
}

/// The days from `first` to `last` inclusive, wrapping past Sunday, returned Monday first.
fn weekday_range(first: Weekday, last: Weekday) -> Vec<Weekday> {
    let mut days = vec![first];
    let mut day = first;
    while day != last {
        day = day.succ();
        days.push(day);
    }
    days.sort_by_key(|d| d.num_days_from_monday());
    days
}

/// A day by its short (`mon`) or full (`monday`) English name, lower case.
fn weekday(name: &str) -> Option<Weekday> {
    DAY_NAMES
        .iter()
        .zip(WEEK)
        .find(|(full, _)| name == **full || (name.len() == 3 && full.starts_with(name)))
        .map(|(_, day)| day)
}

/// Parse a skip date `"2026-12-24"` or an inclusive range `"2026-12-27..2027-01-01"` whose
/// first date is not after its last.
pub fn parse_date_range(s: &str) -> Result<DateRange, String> {
    let text = s.trim();
    let (first, last) = match text.split_once("..") {
        Some((a, b)) => (date(s, a.trim())?, date(s, b.trim())?),
        None => {
            let d = date(s, text)?;
            (d, d)
        }
    };
    if first > last {
        return Err(format!(
            "{s:?} ends before it starts; write the earlier date first, e.g. \"{last}..{first}\""
        ));
    }
    Ok(DateRange { first, last })
}

/// One `YYYY-MM-DD` date of the skip date `whole`, with an error that names `whole` when the
/// date is only a part of it.
fn date(whole: &str, part: &str) -> Result<NaiveDate, String> {
    let shape = |t: &str| {
        t.len() == 10
            && t.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                _ => b.is_ascii_digit(),
            })
    };
    let what = if whole.trim() == part {
        format!("{part:?}")
    } else {
        format!("{part:?} in {whole:?}")
    };
    // chrono alone reads "2026-1-5" as 5 January; offering that spelling is kinder than
    // guessing silently or only pointing at the format.
    let lenient = NaiveDate::parse_from_str(part, "%Y-%m-%d").ok();
    if !shape(part) {
        let example = lenient
            .map(|d| d.format("%Y-%m-%d").to_string())
            .filter(|d| shape(d))
            .unwrap_or_else(|| "2026-12-24".to_string());
        return Err(format!(
            "{what} is not a date; write \"YYYY-MM-DD\" with a two-digit month and day, \
             e.g. {example:?}, or a range such as \"2026-12-27..2027-01-01\""
        ));
    }
    lenient.ok_or_else(|| {
        format!(
            "{what} is not a date: there is no such day; write an existing date \"YYYY-MM-DD\", \
             e.g. \"2026-12-24\""
        )
    })
}

/// Parse a duration in humantime's syntax: `"90s"`, `"15m"`, `"2h"`, `"30d"`, `"1h 30m"`.
/// Spaces around it are ignored.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| {
        format!("{s:?} is not a duration ({e}); write e.g. \"30s\", \"15m\", \"2h\" or \"30d\"")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekday_names_short_and_full() {
        assert_eq!(weekday("mon"), Some(Weekday::Mon));
        assert_eq!(weekday("sunday"), Some(Weekday::Sun));
        assert_eq!(weekday("mo"), None);
        assert_eq!(weekday("mond"), None);
        assert_eq!(weekday(""), None);
    }

    #[test]
    fn near_misses_name_one_day_or_none() {
        let cases = [
            ("tues", Some("tuesday")),
            ("thur", Some("thursday")),
            ("wednes", Some("wednesday")),
            ("mo", Some("monday")),
            ("s", None),
            ("t", None),
            ("", None),
            ("funday", None),
        ];
        for (word, want) in cases {
            assert_eq!(near_miss(word), want, "{word}");
        }
    }

    #[test]
    fn wrapping_range_comes_back_monday_first() {
        assert_eq!(
            weekday_range(Weekday::Fri, Weekday::Mon),
            vec![Weekday::Mon, Weekday::Fri, Weekday::Sat, Weekday::Sun]
        );
        assert_eq!(
            weekday_range(Weekday::Wed, Weekday::Wed),
            vec![Weekday::Wed]
        );
    }

    #[test]
    fn numbers_need_the_right_digits() {
        assert_eq!(number("09", 2..=2), Some(9));
        assert_eq!(number("9", 2..=2), None);
        assert_eq!(number("+9", 1..=2), None);
        assert_eq!(number("", 1..=2), None);
    }
}
