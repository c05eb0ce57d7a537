//! The one place that knows about daylight saving time: mapping a local wall-clock time to an
//! instant with SPEC §4's rules, and the absolute expiry of a status.

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

use super::Expiry;

/// The longest spring-forward gap searched for its end. Real gaps are an hour or less, but
/// Pacific/Apia and Pacific/Kiritimati once skipped a whole calendar day, so two days leave
/// room without letting a bad zone make the walk unbounded.
const MAX_GAP_MINUTES: u32 = 2 * 24 * 60;

/// Map a local wall-clock time in `tz` to an instant, with the DST rules of SPEC §4:
///
/// - a local time that exists once maps to that instant;
/// - a local time that occurs twice (fall-back) maps to its *first* occurrence, so the
///   repeated hour never fires a second time;
/// - a local time that does not exist (spring-forward gap) maps to the first instant after the
///   gap, which is the transition instant. Every local time in one gap maps to the same
///   instant, and so does the first local time after the gap (03:00 in Europe/Berlin), which
///   is how several firings in and just after a gap collapse into one.
///
/// The result never decreases as `local` grows; the searches in this module rely on that.
///
/// Cost: one zone lookup, or for a time inside a gap at most one lookup per minute of the gap
/// plus 60.
pub fn local_to_instant(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        // chrono-tz lists the earlier instant first, but taking the minimum does not depend
        // on that.
        LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
        LocalResult::None => end_of_gap(tz, local),
    }
}

/// The first instant after the spring-forward gap that contains `local`.
///
/// chrono-tz does not expose its transitions, so the end of the gap is found from the local
/// side: step forward a minute at a time to the first local time that exists, then back a
/// second at a time to the exact first second after the gap (gaps need not end on a whole
/// minute relative to `local`'s seconds). That local time exists once, and its instant is the
/// transition.
fn end_of_gap(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut probe = local;
    for _ in 0..MAX_GAP_MINUTES {
        let Some(next) = probe.checked_add_signed(TimeDelta::minutes(1)) else {
            break;
        };
        probe = next;
        if exists(tz, probe) {
            return earliest_instant(tz, first_existing_second(tz, probe));
        }
    }
    // Unreachable for the zones in the tz database; read `local` with the offset in force at
    // that moment of UTC rather than panic.
    fixed_offset_reading(tz, local)
}

/// Walk back from `probe`, which exists, while the second before it also exists. Stops
/// within 60 steps, because `probe` is one minute past a local time inside the gap.
fn first_existing_second(tz: Tz, probe: NaiveDateTime) -> NaiveDateTime {
    let mut first = probe;
    for _ in 0..60 {
        match first.checked_sub_signed(TimeDelta::seconds(1)) {
            Some(prev) if exists(tz, prev) => first = prev,
            _ => break,
        }
    }
    first
}

/// Whether `local` exists in `tz` (once or twice).
fn exists(tz: Tz, local: NaiveDateTime) -> bool {
    !matches!(tz.from_local_datetime(&local), LocalResult::None)
}

/// The earliest instant of a local time known to exist.
fn earliest_instant(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
        LocalResult::None => fixed_offset_reading(tz, local),
    }
}

/// `local` read with the UTC offset that `tz` has at the UTC instant with the same digits:
/// a total fallback that cannot fail.
fn fixed_offset_reading(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let offset = tz.offset_from_utc_datetime(&local).fix();
    let utc = local.checked_sub_offset(offset).unwrap_or(local);
    Utc.from_utc_datetime(&utc)
}

/// The local wall-clock time of `instant` in `tz`, or `None` at the very edge of chrono's
/// range (where `DateTime::naive_local` would panic).
pub(super) fn to_local(tz: Tz, instant: DateTime<Utc>) -> Option<NaiveDateTime> {
    let offset = tz.offset_from_utc_datetime(&instant.naive_utc()).fix();
    instant.naive_utc().checked_add_offset(offset)
}

/// The absolute expiry of a status fired at `fired`, per SPEC §4 (`status_expiration` is
/// measured from the scheduled firing, not from when the request went out):
///
/// - [`Expiry::Never`] → `None`;
/// - [`Expiry::After`]`(d)` → `fired + d` (`None` if that is past the end of time: so far away
///   it cannot be told from "never");
/// - [`Expiry::At`]`(t)` → the first local time `t` strictly after the firing: `t` on the
///   firing's local date if that instant is later than `fired`, else `t` on the next day. The
///   local time goes through [`local_to_instant`], so a `t` inside a spring-forward gap expires
///   at the end of the gap, and a repeated `t` counts only at its first occurrence.
pub fn expiry_instant(expiry: Expiry, tz: Tz, fired: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match expiry {
        Expiry::Never => None,
        Expiry::After(d) => fired.checked_add_signed(TimeDelta::from_std(d).ok()?),
        Expiry::At(t) => {
            let date = to_local(tz, fired)?.date();
            // Day 0 or day 1 always answers in real zones; day 2 covers a zone that skips a
            // whole local day (Pacific/Apia, 2011-12-30).
            (0..=2)
                .filter_map(|days| date.checked_add_signed(TimeDelta::days(days)))
                .map(|d| local_to_instant(tz, d.and_time(t)))
                .find(|&at| at > fired)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|d| d.and_hms_opt(h, mi, s))
            .expect("test date exists")
    }

    #[test]
    fn gap_end_is_exact_to_the_second() {
        let berlin: Tz = chrono_tz::Europe::Berlin;
        let t = local_to_instant(berlin, local(2026, 3, 29, 2, 59, 59));
        assert_eq!(t.to_rfc3339(), "2026-03-29T01:00:00+00:00");
        let t = local_to_instant(berlin, local(2026, 3, 29, 2, 0, 0));
        assert_eq!(t.to_rfc3339(), "2026-03-29T01:00:00+00:00");
    }

    #[test]
    fn whole_skipped_day_maps_to_its_end() {
        // Samoa moved across the date line: 2011-12-30 did not exist in Pacific/Apia.
        let apia: Tz = chrono_tz::Pacific::Apia;
        let t = local_to_instant(apia, local(2011, 12, 30, 12, 0, 0));
        assert_eq!(t.to_rfc3339(), "2011-12-30T10:00:00+00:00");
    }

    #[test]
    fn to_local_does_not_panic_at_the_edges() {
        let ny: Tz = chrono_tz::America::New_York;
        assert!(to_local(ny, DateTime::<Utc>::MIN_UTC).is_none());
        assert!(to_local(chrono_tz::Asia::Tokyo, DateTime::<Utc>::MAX_UTC).is_none());
    }
}
