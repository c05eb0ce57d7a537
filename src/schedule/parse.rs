//! The small grammars of a rule: `at` / `expire_at` times, `days`, `skip_dates`, and the
//! wording of cron errors. Every error says what is wrong and what to write instead; the
//! config module puts file:line:col in front.

use chrono::{NaiveDate, NaiveTime, Weekday};

use super::DateRange;

/// What a cron error message ends with: the shape of a valid expression.
const CRON_HINT: &str = "write 5 fields \"minute hour day-of-month month day-of-week\" \
     (or 6 with seconds first), e.g. \"0 9 * * mon-fri\"";

/// Word a croner parse error for users, with the expression and what to write instead.
pub(super) fn cron_error_message(expr: &str, err: &croner::errors::CronError) -> String {
    format!("invalid cron expression {expr:?}: {err}; {CRON_HINT}")
}

/// Parse a time of day `"HH:MM"` or `"HH:MM:SS"` on the 24-hour clock, as used by `at` and
/// `expire_at`.
///
/// A one-digit hour (`"9:00"`) is accepted because people write it; minutes and seconds must
/// have two digits so that `"9:5"` (9:05 or 9:50?) is not guessed at. Leap seconds (`:60`) are
/// rejected: no schedule needs them.
pub fn parse_time_of_day(s: &str) -> Result<NaiveTime, String> {
    let bad = |why: &str| {
        format!(
            "invalid time {s:?}: {why}; write \"HH:MM\" or \"HH:MM:SS\" on the 24-hour clock, \
             e.g. \"09:00\" or \"17:30:15\""
        )
    };
    let parts: Vec<&str> = s.trim().split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return Err(bad("expected hours and minutes separated by ':'"));
    }
    let hour = number(parts[0], 1..=2).ok_or_else(|| bad("the hour is not a number"))?;
    let minute = number(parts[1], 2..=2).ok_or_else(|| bad("the minutes need two digits"))?;
    let second = match parts.get(2) {
        Some(p) => number(p, 2..=2).ok_or_else(|| bad("the seconds need two digits"))?,
        None => 0,
    };
    if hour > 23 {
        return Err(bad("the hour must be 0 to 23"));
    }
    if minute > 59 || second > 59 {
        return Err(bad("minutes and seconds must be 00 to 59"));
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

/// Parse `days`: `"daily"`, `"weekdays"`, `"weekends"`, a range such as `"mon-fri"` (a range
/// may wrap past Sunday: `"fri-mon"` is Friday to Monday), or one day name. Names are short
/// (`"mon"`) or full (`"monday"`), in any case.
///
/// The days come back Monday first, without duplicates. A list of days is a TOML array in the
/// config, each element parsed by this function; a comma-separated string is rejected with a
/// hint to write the array.
pub fn parse_days(s: &str) -> Result<Vec<Weekday>, String> {
    let word = s.trim().to_ascii_lowercase();
    match word.as_str() {
        "daily" => return Ok(WEEK.to_vec()),
        "weekdays" => return Ok(WEEK[..5].to_vec()),
        "weekends" => return Ok(WEEK[5..].to_vec()),
        _ => {}
    }
    let hint = "write \"daily\", \"weekdays\", \"weekends\", a day such as \"mon\", \
                a range such as \"mon-fri\", or a list such as [\"mon\", \"wed\"]";
    if word.contains(',') {
        return Err(format!(
            "invalid days {s:?}: a list of days is a TOML array, e.g. [\"mon\", \"wed\"]"
        ));
    }
    let Some((from, to)) = word.split_once('-') else {
        let day = weekday(&word).ok_or_else(|| format!("unknown day {s:?}; {hint}"))?;
        return Ok(vec![day]);
    };
    let first = weekday(from.trim())
        .ok_or_else(|| format!("invalid days {s:?}: {:?} is not a day; {hint}", from.trim()))?;
    let last = weekday(to.trim())
        .ok_or_else(|| format!("invalid days {s:?}: {:?} is not a day; {hint}", to.trim()))?;
    Ok(weekday_range(first, last))
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
    const NAMES: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    NAMES
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
            "invalid date range {s:?}: it ends before it starts; write the earlier date first, \
             e.g. \"{last}..{first}\""
        ));
    }
    Ok(DateRange { first, last })
}

/// One `YYYY-MM-DD` date of the skip date `whole`, with an error that names `whole`.
fn date(whole: &str, part: &str) -> Result<NaiveDate, String> {
    let well_formed = part.len() == 10
        && part.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    let hint = "write a date \"YYYY-MM-DD\" such as \"2026-12-24\", \
                or a range such as \"2026-12-27..2027-01-01\"";
    if !well_formed {
        return Err(format!(
            "invalid date {part:?} in skip date {whole:?}; {hint}"
        ));
    }
    NaiveDate::parse_from_str(part, "%Y-%m-%d")
        .map_err(|_| format!("invalid date {part:?} in skip date {whole:?}: no such day; {hint}"))
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
