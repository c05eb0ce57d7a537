//! Parsers for the small string languages inside the config: times of day, days of the week,
//! dates and date ranges, durations. Each returns the value or a message that says what a
//! valid value looks like; the caller adds the location and the rule's name.

use std::time::Duration;

use chrono::{NaiveDate, NaiveTime, Weekday};

/// A local time of day, `"HH:MM"` or `"HH:MM:SS"`.
pub(crate) fn time_of_day(text: &str) -> Result<NaiveTime, String> {
    let t = text.trim();
    // Exactly one or two colons; chrono alone would also accept e.g. "9:00:00.5".
    let parsed = match t.matches(':').count() {
        1 => NaiveTime::parse_from_str(t, "%H:%M").ok(),
        2 => NaiveTime::parse_from_str(t, "%H:%M:%S").ok(),
        _ => None,
    };
    parsed.ok_or_else(|| {
        format!("{text:?} is not a time of day; write \"HH:MM\" or \"HH:MM:SS\", e.g. \"09:30\"")
    })
}

/// The days of the week a `days` string names: `daily`, `weekdays`, `weekends`, one day, or
/// a range such as `mon-fri` (a range may wrap around the weekend: `fri-mon`). Day names
/// are English, abbreviated or full, in any case.
pub(crate) fn days_spec(text: &str) -> Result<Vec<Weekday>, String> {
    let t = text.trim().to_ascii_lowercase();
    let all = || (0..7).map(weekday_from_monday).collect::<Vec<_>>();
    match t.as_str() {
        "daily" => return Ok(all()),
        "weekdays" => return Ok(all()[..5].to_vec()),
        "weekends" => return Ok(vec![Weekday::Sat, Weekday::Sun]),
        _ => {}
    }
    let bad = || {
        format!(
            "{text:?} is not a day or range of days; write \"daily\", \"weekdays\", \
             \"weekends\", a range like \"mon-fri\", or a list like [\"mon\", \"wed\"]"
        )
    };
    match t.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (weekday(a).ok_or_else(bad)?, weekday(b).ok_or_else(bad)?);
            Ok(day_range(a, b))
        }
        None => weekday(&t).map(|d| vec![d]).ok_or_else(bad),
    }
}

/// One day name, abbreviated (`mon`, `tue`/`tues`, …) or full, any case.
pub(crate) fn weekday(text: &str) -> Option<Weekday> {
    let t = text.trim().to_ascii_lowercase();
    let day = match t.as_str() {
        "mon" | "monday" => Weekday::Mon,
        "tue" | "tues" | "tuesday" => Weekday::Tue,
        "wed" | "wednesday" => Weekday::Wed,
        "thu" | "thur" | "thurs" | "thursday" => Weekday::Thu,
        "fri" | "friday" => Weekday::Fri,
        "sat" | "saturday" => Weekday::Sat,
        "sun" | "sunday" => Weekday::Sun,
        _ => return None,
    };
    Some(day)
}

/// The days from `first` to `last` inclusive, wrapping past Sunday when `last` comes first.
fn day_range(first: Weekday, last: Weekday) -> Vec<Weekday> {
    let mut days = vec![first];
    let mut d = first;
    while d != last {
        d = d.succ();
        days.push(d);
    }
    days
}

/// `n` days after Monday (0 = Monday).
fn weekday_from_monday(n: u8) -> Weekday {
    Weekday::try_from(n).unwrap_or(Weekday::Mon)
}

/// A date `"YYYY-MM-DD"`.
pub(crate) fn date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| format!("{text:?} is not a date; write \"YYYY-MM-DD\", e.g. \"2026-12-24\""))
}

/// A date or an inclusive range `"FIRST..LAST"`.
pub(crate) fn date_range(text: &str) -> Result<(NaiveDate, NaiveDate), String> {
    let Some((a, b)) = text.split_once("..") else {
        let d = date(text)?;
        return Ok((d, d));
    };
    let bad = |_| {
        format!(
            "{text:?} is not a date range; write \"FIRST..LAST\", e.g. \"2026-12-27..2027-01-01\""
        )
    };
    let (first, last) = (date(a).map_err(bad)?, date(b).map_err(bad)?);
    if first > last {
        return Err(format!(
            "{text:?} ends before it starts; write the earlier date first"
        ));
    }
    Ok((first, last))
}

/// A duration such as `"2h"`, `"90m"`, `"30d"` or `"1h 30m"`.
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        format!("{text:?} is not a duration ({e}); write e.g. \"30s\", \"15m\", \"2h\" or \"30d\"")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Weekday::*;

    #[test]
    fn times_of_day() {
        assert_eq!(time_of_day("09:30").ok(), NaiveTime::from_hms_opt(9, 30, 0));
        assert_eq!(
            time_of_day("23:59:59").ok(),
            NaiveTime::from_hms_opt(23, 59, 59)
        );
        for bad in [
            "24:00",
            "9",
            "09:60",
            "nine",
            "09:30:00.5",
            "",
            "09:30:00:00",
        ] {
            assert!(time_of_day(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn day_specs() {
        assert_eq!(
            days_spec("weekdays").unwrap(),
            vec![Mon, Tue, Wed, Thu, Fri]
        );
        assert_eq!(days_spec("Weekends").unwrap(), vec![Sat, Sun]);
        assert_eq!(days_spec("daily").unwrap().len(), 7);
        assert_eq!(days_spec("mon-wed").unwrap(), vec![Mon, Tue, Wed]);
        assert_eq!(
            days_spec("Friday-Monday").unwrap(),
            vec![Fri, Sat, Sun, Mon]
        );
        assert_eq!(days_spec("THU").unwrap(), vec![Thu]);
        assert_eq!(days_spec("sun-sun").unwrap(), vec![Sun]);
        for bad in ["", "mon-", "funday", "mon-fri-sat", "1-5"] {
            assert!(days_spec(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_and_ranges() {
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(
            date_range("2026-12-24"),
            Ok((d("2026-12-24"), d("2026-12-24")))
        );
        assert_eq!(
            date_range("2026-12-27..2027-01-01"),
            Ok((d("2026-12-27"), d("2027-01-01")))
        );
        assert!(date_range("2027-01-01..2026-12-27")
            .unwrap_err()
            .contains("ends before it starts"));
        assert!(date_range("2026-02-30").is_err());
        assert!(date_range("2026-12-27..").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(duration("30d"), Ok(Duration::from_secs(30 * 86400)));
        assert_eq!(duration("0s"), Ok(Duration::ZERO));
        assert!(duration("2 fortnights").is_err());
        assert!(duration("").is_err());
    }
}
