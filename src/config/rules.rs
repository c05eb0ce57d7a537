//! One `[[rules]]` entry: every key checked, then converted into the parts of a [`Rule`].
//!
//! Checks that need the other files (is the token defined, is the name unique) happen in
//! `load` once every file has been walked; this module returns what they need.

use crate::profile::{status_text_over_limit, MAX_STATUS_TEXT};
use std::ops::Range;
use std::time::Duration;

use chrono::{NaiveTime, Utc, Weekday};
use chrono_tz::Tz;
use toml::de::DeValue;

use super::rule_profile::{self, Profile};
use super::walk::{entry, Ctx, Table, Value};
use super::{Expiry, Presence, StatusTemplate};
use crate::schedule::{
    longest_expire_after, parse_cron, parse_date_range, parse_day, parse_days, parse_time_of_day,
    DateRange, Schedule,
};

/// Every key a rule may have.
const RULE_KEYS: &[&str] = &[
    "name",
    "token",
    "user",
    "at",
    "days",
    "cron",
    "timezone",
    "status_text",
    "status_emoji",
    "expire_after",
    "expire_at",
    "clear_status",
    "skip_dates",
    "respect_manual",
    "dnd",
    "presence",
    "restore",
    "profile",
];
/// Slack's limit on the fields of one `users.profile.set`.
const MAX_PROFILE_FIELDS: usize = 50;
/// Fields a status puts in the request: `status_text`, `status_emoji`, `status_expiration`
/// always travel together (see [`crate::slack::wire::profile_json`]).
const STATUS_FIELDS: usize = 3;

/// A string value with the span of the value, for checks made after the walk.
#[derive(Debug, Clone)]
pub(crate) struct Named {
    /// The string.
    pub text: String,
    /// Where it is written.
    pub span: Range<usize>,
}

/// What the walk of one rule produced.
#[derive(Debug)]
pub(crate) struct RuleDraft {
    /// How messages name the rule: `rule "coffee"`, or `rule #3` (its place in the file)
    /// when it has no valid name.
    pub label: String,
    /// `name`, if present and a non-empty string.
    pub name: Option<Named>,
    /// `token`, if present and a non-empty string; checked against `[tokens]` later.
    pub token: Option<Named>,
    /// `timezone`, if given and valid; otherwise the top-level zone applies.
    pub timezone: Option<Tz>,
    /// Everything else, or `None` if any of it was invalid (the problems are recorded).
    pub body: Option<RuleBody>,
}

/// The validated parts of a rule that need nothing from other files.
#[derive(Debug)]
pub(crate) struct RuleBody {
    /// `user`.
    pub user: Option<String>,
    /// `at`/`days` or `cron`.
    pub schedule: Schedule,
    /// The rule's own `skip_dates`.
    pub skip_dates: Vec<DateRange>,
    /// The status to set.
    pub status: Option<StatusTemplate>,
    /// Its expiry.
    pub expiry: Expiry,
    /// `[rules.profile]` as group keys.
    pub profile: Profile,
    /// `respect_manual`.
    pub respect_manual: bool,
    /// `dnd`, `presence` and `restore`.
    pub parts: Parts,
    /// Located warnings (`file:line:col: ...`) about a rule that is valid.
    pub warnings: Vec<String>,
}

/// The temporary parts of a rule beside its profile update (SPEC §6).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Parts {
    /// `dnd = true` snoozes Do Not Disturb until the expiry, `false` ends a snooze.
    pub dnd: Option<bool>,
    /// `presence`.
    pub presence: Option<Presence>,
    /// `restore = true`: put back at the expiry what was there before.
    pub restore: bool,
}

/// Walk the rule `v`, the `number`th (1-based) in its file.
pub(crate) fn rule(ctx: &mut Ctx<'_>, number: usize, v: &Value<'_>) -> Option<RuleDraft> {
    let what = format!("rule #{number}");
    let t = ctx.table(&what, "a table: write [[rules]] above each rule", v)?;
    let span = v.span();
    let name = required(
        ctx,
        t,
        &span,
        &what,
        ("name", "rule"),
        "a unique name, e.g. name = \"coffee\"",
    );
    // Once the name is known, messages use it: it is what the user searches the file for.
    let label = match &name {
        Some(n) => format!("rule {:?}", n.text),
        None => what,
    };
    let token = required(
        ctx,
        t,
        &span,
        &label,
        ("token", "token"),
        "the name of a [tokens.NAME] table",
    );
    ctx.unknown_keys(t, RULE_KEYS, &label);

    let before = ctx.count();
    let timezone = entry(t, "timezone").and_then(|(_, v)| zone(ctx, &label, v));
    let body = body(ctx, &label, t, &span);
    let clean = ctx.count() == before;
    Some(RuleDraft {
        label,
        name,
        token,
        timezone,
        body: body.filter(|_| clean),
    })
}

/// The checks of a rule that can be made within its own table.
fn body(ctx: &mut Ctx<'_>, label: &str, t: &Table<'_>, span: &Range<usize>) -> Option<RuleBody> {
    let user = t
        .get("user")
        .and_then(|v| ctx.non_empty(&format!("{label}: user"), v))
        .map(str::to_string);
    let schedule = schedule(ctx, label, t, span);
    let skip_dates = t
        .get("skip_dates")
        .map(|v| skip_dates(ctx, &format!("{label}: skip_dates"), v))
        .unwrap_or_default();
    let status = status(ctx, label, t);
    let parts = parts(ctx, label, t);
    let expiry = expiry(ctx, label, t, &status, &parts);
    let mut warnings = Vec::new();
    if let Some(e) = &expiry {
        parts_checks(ctx, label, t, (&parts, e), user.is_some(), &mut warnings);
    }
    let profile = t.get("profile");
    let profile_map = profile
        .map(|v| rule_profile::profile(ctx, label, v))
        .unwrap_or_default();
    let respect_manual = t
        .get("respect_manual")
        .and_then(|v| ctx.boolean(&format!("{label}: respect_manual"), v))
        .unwrap_or(false);

    // A key whose value is wrong still counts as something to set, as a profile table does.
    let has_parts = t.get("dnd").is_some() || t.get("presence").is_some();
    amount(
        ctx,
        label,
        span,
        (status.template.is_some(), has_parts),
        profile,
        profile_map.len(),
    );
    Some(RuleBody {
        user,
        schedule: schedule?,
        skip_dates,
        status: status.template,
        expiry: expiry?,
        profile: profile_map,
        respect_manual,
        parts,
        warnings,
    })
}

/// `dnd`, `presence` and `restore`, as far as their types are right.
fn parts(ctx: &mut Ctx<'_>, label: &str, t: &Table<'_>) -> Parts {
    let dnd = t
        .get("dnd")
        .and_then(|v| ctx.boolean(&format!("{label}: dnd"), v));
    let presence = t.get("presence").and_then(|v| {
        let what = format!("{label}: presence");
        let s = ctx.string(&what, v)?;
        let p = Presence::parse(s.trim());
        if p.is_none() {
            ctx.error(
                &v.span(),
                format!("{what} is {s:?}; use \"away\" or \"auto\""),
            );
        }
        p
    });
    let restore = t
        .get("restore")
        .and_then(|v| ctx.boolean(&format!("{label}: restore"), v))
        .unwrap_or(false);
    Parts {
        dnd,
        presence,
        restore,
    }
}

/// SPEC §3 on the temporary parts: DND and presence act on the token's own user only; a
/// snooze and a restore need an end; `presence = "away"` without `restore` stays away.
fn parts_checks(
    ctx: &mut Ctx<'_>,
    label: &str,
    t: &Table<'_>,
    (parts, expiry): (&Parts, &Expiry),
    has_user: bool,
    warnings: &mut Vec<String>,
) {
    let key = |name: &str| entry(t, name).map(|(k, _)| k.span());
    if has_user {
        for name in ["dnd", "presence"] {
            if let Some(span) = key(name) {
                let method = if name == "dnd" {
                    "dnd.setSnooze and dnd.endSnooze"
                } else {
                    "users.setPresence"
                };
                ctx.error(
                    &span,
                    format!(
                        "{label}: {name} cannot be combined with user: Slack's {method} act \
                         on the token's own user only; remove {name}, or user (restore works \
                         with user)"
                    ),
                );
            }
        }
    }
    let no_expiry = matches!(expiry, Expiry::Never);
    if no_expiry && parts.dnd == Some(true) {
        if let Some(span) = key("dnd") {
            ctx.error(
                &span,
                format!(
                    "{label}: dnd = true needs an expiry, the end of the snooze; add \
                     expire_after or expire_at, or use dnd = false to end a snooze"
                ),
            );
        }
    }
    if no_expiry && parts.restore {
        if let Some(span) = key("restore") {
            ctx.error(
                &span,
                format!(
                    "{label}: restore = true needs an expiry, when to put the status back; \
                     add expire_after or expire_at, or remove restore"
                ),
            );
        }
    }
    if parts.presence == Some(Presence::Away) && !parts.restore {
        if let Some((_, v)) = entry(t, "presence") {
            warnings.push(format!(
                "{}: {label}: presence = \"away\" without restore = true stays away after \
                 the rule; add restore = true (with an expiry) to be set back to auto at the \
                 end, or a later rule with presence = \"auto\"",
                ctx.location(&v.span())
            ));
        }
    }
}

/// A rule must set something, and at most Slack's 50 fields in one request.
///
/// The count is what one request for this rule carries: every key of `[rules.profile]`
/// (each custom field counts once, a tags field too) plus, when the rule has a status, 3 for
/// `status_text`, `status_emoji` and `status_expiration`, which always travel together.
fn amount(
    ctx: &mut Ctx<'_>,
    label: &str,
    rule_span: &Range<usize>,
    (has_status, has_parts): (bool, bool),
    profile: Option<&Value<'_>>,
    profile_fields: usize,
) {
    let n = profile_fields + if has_status { STATUS_FIELDS } else { 0 };
    if let (Some(p), true) = (profile, n > MAX_PROFILE_FIELDS) {
        ctx.error(
            &p.span(),
            format!(
                "{label}: sets {n} profile fields; Slack allows at most {MAX_PROFILE_FIELDS} \
                 per update (the status counts as {STATUS_FIELDS}: text, emoji, expiration); \
                 split the rule in two"
            ),
        );
    }
    // A profile table whose fields failed their checks still counts as "something to set",
    // so the user is not told both that a field is wrong and that the rule sets nothing.
    let empty_profile =
        profile.is_none_or(|p| p.get_ref().as_table().is_some_and(|t| t.is_empty()));
    if !has_status && !has_parts && empty_profile {
        ctx.error(
            rule_span,
            format!(
                "{label}: sets nothing; add status_text and/or status_emoji, \
                 clear_status = true, fields in [rules.profile], dnd or presence"
            ),
        );
    }
}

/// A required name: `key` holds the name of a `kind` ("rule" for `name`, "token" for the
/// token a rule uses); a problem at the rule's header when it is missing.
pub(crate) fn required(
    ctx: &mut Ctx<'_>,
    t: &Table<'_>,
    rule_span: &Range<usize>,
    label: &str,
    (key, kind): (&str, &str),
    hint: &str,
) -> Option<Named> {
    let Some(v) = t.get(key) else {
        ctx.error(rule_span, format!("{label}: {key} is missing; add {hint}"));
        return None;
    };
    let text = ctx.non_empty(&format!("{label}: {key}"), v)?;
    let text = text.trim().to_string();
    if !ctx.plain_name(kind, &text, &v.span()) {
        return None;
    }
    Some(Named {
        text,
        span: ctx.in_file(v.span()),
    })
}

/// An IANA zone name.
pub(crate) fn zone(ctx: &mut Ctx<'_>, label: &str, v: &Value<'_>) -> Option<Tz> {
    let what = if label.is_empty() {
        "timezone".to_string()
    } else {
        format!("{label}: timezone")
    };
    let name = ctx.string(&what, v)?;
    match name.trim().parse::<Tz>() {
        Ok(tz) => Some(tz),
        Err(_) => {
            ctx.error(
                &v.span(),
                format!(
                    "{what}: unknown time zone {name:?}; use an IANA name such as \
                     \"Europe/Berlin\", \"America/New_York\" or \"UTC\""
                ),
            );
            None
        }
    }
}

/// `at` + `days`, or `cron`: exactly one schedule.
fn schedule(
    ctx: &mut Ctx<'_>,
    label: &str,
    t: &Table<'_>,
    rule_span: &Range<usize>,
) -> Option<Schedule> {
    let at = entry(t, "at");
    let days = entry(t, "days");
    let cron = entry(t, "cron");
    // Check each value that is there, so a typo in one is reported even beside a conflict.
    let times = at.and_then(|(_, v)| times(ctx, label, v));
    let weekdays = days.and_then(|(_, v)| weekdays(ctx, label, v));
    let cron_schedule = cron.and_then(|(_, v)| cron_expr(ctx, label, v));

    match (at, days, cron) {
        (_, _, Some((key, _))) if at.is_some() || days.is_some() => {
            ctx.error(
                &key.span(),
                format!(
                    "{label}: has both cron and at/days; keep one schedule: \
                     either cron, or at (with days)"
                ),
            );
            None
        }
        (_, _, Some(_)) => cron_schedule,
        (Some(_), _, None) => {
            let all_days = || parse_days("daily").unwrap_or_default();
            Some(Schedule::Calendar {
                times: times?,
                days: if days.is_some() {
                    weekdays?
                } else {
                    all_days()
                },
            })
        }
        (None, Some((key, _)), None) => {
            ctx.error(
                &key.span(),
                format!("{label}: days needs at; add at = \"HH:MM\" (or use cron instead)"),
            );
            None
        }
        (None, None, None) => {
            ctx.error(
                rule_span,
                format!(
                    "{label}: has no schedule; add at = \"HH:MM\" (optionally with days) \
                     or cron = \"MIN HOUR DOM MON DOW\""
                ),
            );
            None
        }
    }
}

/// `at`: one time or a list; sorted without duplicates.
fn times(ctx: &mut Ctx<'_>, label: &str, v: &Value<'_>) -> Option<Vec<NaiveTime>> {
    let what = format!("{label}: at");
    let mut out: Vec<NaiveTime> =
        one_or_many(ctx, &what, v, |ctx, item| time_value(ctx, &what, item))?;
    out.sort();
    out.dedup();
    Some(out)
}

/// One time of day, quoted or a TOML local time.
fn time_value(ctx: &mut Ctx<'_>, what: &str, v: &Value<'_>) -> Option<NaiveTime> {
    let text = ctx.date_or_time_text(what, "a time such as \"09:00\"", v)?;
    ctx.parsed(what, v, parse_time_of_day(&text))
}

/// `days`: a day spec string, or a list of day names; in week order without duplicates.
fn weekdays(ctx: &mut Ctx<'_>, label: &str, v: &Value<'_>) -> Option<Vec<Weekday>> {
    let what = format!("{label}: days");
    let mut out = match v.get_ref() {
        DeValue::String(s) => ctx.parsed(&what, v, parse_days(s))?,
        DeValue::Array(_) => one_or_many(ctx, &what, v, |ctx, item| {
            let s = ctx.string(&what, item)?;
            ctx.parsed(&what, item, parse_day(s))
        })?,
        other => {
            let expected = "a string such as \"mon-fri\" or a list such as [\"mon\", \"wed\"]";
            ctx.wrong_type(&what, expected, other, &v.span());
            return None;
        }
    };
    out.sort_by_key(|d| d.num_days_from_monday());
    out.dedup();
    Some(out)
}

/// `cron`, parsed with the schedule module's Vixie-compatible parser.
fn cron_expr(ctx: &mut Ctx<'_>, label: &str, v: &Value<'_>) -> Option<Schedule> {
    let what = format!("{label}: cron");
    let expr = ctx.string(&what, v)?;
    ctx.parsed(&what, v, parse_cron(expr))
}

/// `skip_dates`: a list of dates and ranges.
pub(crate) fn skip_dates(ctx: &mut Ctx<'_>, what: &str, v: &Value<'_>) -> Vec<DateRange> {
    let DeValue::Array(items) = v.get_ref() else {
        let expected = "a list such as [\"2026-12-24\", \"2026-12-27..2027-01-01\"]";
        ctx.wrong_type(what, expected, v.get_ref(), &v.span());
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items.iter() {
        let expected = "a date \"YYYY-MM-DD\" or a range \"FIRST..LAST\"";
        let Some(text) = ctx.date_or_time_text(what, expected, item) else {
            continue;
        };
        out.extend(ctx.parsed(what, item, parse_date_range(&text)));
    }
    out
}

/// A value that may be given once or as a non-empty list; `each` checks one item.
pub(crate) fn one_or_many<T>(
    ctx: &mut Ctx<'_>,
    what: &str,
    v: &Value<'_>,
    mut each: impl FnMut(&mut Ctx<'_>, &Value<'_>) -> Option<T>,
) -> Option<Vec<T>> {
    let DeValue::Array(items) = v.get_ref() else {
        return each(ctx, v).map(|x| vec![x]);
    };
    if items.is_empty() {
        ctx.error(
            &v.span(),
            format!("{what} is an empty list; give at least one"),
        );
        return None;
    }
    let before = ctx.count();
    let out: Vec<T> = items.iter().filter_map(|item| each(ctx, item)).collect();
    (ctx.count() == before).then_some(out)
}

/// The status part of a rule, as far as it could be read.
struct StatusParts {
    /// The status to send, if the rule sets or clears one.
    template: Option<StatusTemplate>,
    /// `clear_status = true`.
    clear: bool,
}

/// `status_text`, `status_emoji` and `clear_status`.
fn status(ctx: &mut Ctx<'_>, label: &str, t: &Table<'_>) -> StatusParts {
    let text = t.get("status_text");
    let emoji = t.get("status_emoji");
    let text_s = text.and_then(|v| status_text(ctx, label, v));
    let emoji_s = emoji.and_then(|v| ctx.string(&format!("{label}: status_emoji"), v));
    let clear_v = t.get("clear_status");
    let clear = clear_v
        .and_then(|v| ctx.boolean(&format!("{label}: clear_status"), v))
        .unwrap_or(false);

    if clear && (text.is_some() || emoji.is_some()) {
        if let Some(v) = clear_v {
            ctx.error(
                &v.span(),
                format!(
                    "{label}: clear_status = true cannot be combined with \
                     status_text/status_emoji; remove one or the other"
                ),
            );
        }
    } else {
        half_clear(ctx, label, (text, text_s), (emoji, emoji_s));
    }

    let template = if clear {
        Some(StatusTemplate {
            text: String::new(),
            emoji: String::new(),
        })
    } else if text.is_some() || emoji.is_some() {
        Some(StatusTemplate {
            text: text_s.unwrap_or_default().to_string(),
            emoji: emoji_s.unwrap_or_default().to_string(),
        })
    } else {
        None
    };
    StatusParts { template, clear }
}

/// `status_text`: a string of at most 100 characters.
fn status_text<'v>(ctx: &mut Ctx<'_>, label: &str, v: &'v Value<'_>) -> Option<&'v str> {
    let s = ctx.string(&format!("{label}: status_text"), v)?;
    if let Some(n) = status_text_over_limit(s) {
        ctx.error(
            &v.span(),
            format!(
                "{label}: status_text is {n} characters; Slack allows at most {MAX_STATUS_TEXT}"
            ),
        );
    }
    Some(s)
}

/// Slack clears a status only when both `status_text` and `status_emoji` are "", and
/// rejects a request where one is "" and the other is not
/// (`must_clear_both_status_text_and_status_emoji`). So exactly one of them being the empty
/// string is an error, whether the other is set or absent.
pub(crate) fn half_clear(
    ctx: &mut Ctx<'_>,
    label: &str,
    text: (Option<&Value<'_>>, Option<&str>),
    emoji: (Option<&Value<'_>>, Option<&str>),
) {
    let text_empty = text.1 == Some("");
    let emoji_empty = emoji.1 == Some("");
    let (empty, other, other_value, v) = match (text_empty, emoji_empty) {
        (true, false) => ("status_text", "status_emoji", emoji.0, text.0),
        (false, true) => ("status_emoji", "status_text", text.0, emoji.0),
        _ => return,
    };
    let other_state = if other_value.is_some() {
        "is not"
    } else {
        "is not set"
    };
    if let Some(v) = v {
        ctx.error(
            &v.span(),
            format!(
                "{label}: {empty} is \"\" but {other} {other_state}; Slack clears a status only \
                 when both are \"\": set both to \"\" or use clear_status = true"
            ),
        );
    }
}

/// Seconds in humantime's year (`"1y"` is 365.25 days), to say the longest `expire_after`
/// in the unit the user wrote an absurd one in.
const SECS_PER_YEAR: u64 = 31_557_600;

/// An `expire_after` of `d` (the value `v`) whose expiry would be past the year 9999 even for
/// a firing now, which SPEC §3 rejects. Without this check such a duration overflowed the
/// expiry arithmetic and silently became "no expiry".
///
/// The one place in the config that reads the clock: the bound is about the firings to come,
/// and the earliest of them is now. A firing thousands of years later could still cross it;
/// nothing else in a validated config depends on when it was loaded.
fn too_late(ctx: &mut Ctx<'_>, label: &str, v: &Value<'_>, d: Duration) {
    let longest = longest_expire_after(Utc::now());
    if d <= longest {
        return;
    }
    let text = match v.get_ref() {
        DeValue::String(s) => format!(" {:?}", s.as_ref()),
        _ => String::new(),
    };
    let years = longest.as_secs() / SECS_PER_YEAR;
    ctx.error(
        &v.span(),
        format!(
            "{label}: expire_after{text} puts the expiry past the year 9999; give at most \
             \"{years}y\", or remove expire_after for a status that does not expire"
        ),
    );
}

/// `expire_after` or `expire_at`, which only make sense with a status to expire, a snooze to
/// end (`dnd = true`) or something to restore (`restore = true`).
fn expiry(
    ctx: &mut Ctx<'_>,
    label: &str,
    t: &Table<'_>,
    status: &StatusParts,
    parts: &Parts,
) -> Option<Expiry> {
    let after = entry(t, "expire_after");
    let at = entry(t, "expire_at");
    let before = ctx.count();
    let after_d = after.and_then(|(_, v)| ctx.duration(&format!("{label}: expire_after"), v));
    let at_t = at.and_then(|(_, v)| time_value(ctx, &format!("{label}: expire_at"), v));

    if let (Some((_, a)), Some(d)) = (after, after_d) {
        if d == Duration::ZERO {
            ctx.error(
                &a.span(),
                format!(
                    "{label}: expire_after is zero; give a positive duration such as \"2h\", \
                     or remove it for a status that does not expire"
                ),
            );
        }
        too_late(ctx, label, a, d);
    }
    if let (Some(_), Some((key, _))) = (after, at) {
        ctx.error(
            &key.span(),
            format!("{label}: has both expire_after and expire_at; keep one"),
        );
    }
    let ends_a_part = parts.dnd == Some(true) || parts.restore;
    if let Some((key, _)) = after.or(at).filter(|_| !ends_a_part) {
        let k = key.get_ref();
        if status.clear {
            ctx.error(
                &key.span(),
                format!(
                    "{label}: {k} has nothing to expire because the rule clears the status; \
                     remove {k}"
                ),
            );
        } else if status.template.is_none() {
            ctx.error(
                &key.span(),
                format!(
                    "{label}: {k} without a status to expire; add status_text/status_emoji \
                     (or dnd = true, or restore = true) or remove {k}"
                ),
            );
        }
    }
    if ctx.count() != before {
        return None;
    }
    Some(match (after_d, at_t) {
        (Some(d), _) => Expiry::After(d),
        (None, Some(t)) => Expiry::At(t),
        (None, None) => Expiry::Never,
    })
}
