//! The config contract (SPEC §3): every validation reported with file:line:col, drop-ins,
//! defaults, path and token resolution, and tokens never quoted.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{NaiveDate, NaiveTime, Weekday};
use serde_json::json;
use slack_statusd::config::{load, load_str, Config, Expiry, Problem, TokenError, TokenSource};
use slack_statusd::schedule::{DateRange, Schedule};

use common::RULE_HEAD;

/// The file name every `load_str` case is checked as.
const FILE: &str = "config.toml";

/// Validate `text` as `config.toml`.
fn check(text: &str) -> Result<Config, Vec<Problem>> {
    load_str(Path::new(FILE), text).map_err(|e| e.problems)
}

/// The problems of `text`, which must be invalid.
fn problems(text: &str) -> Vec<Problem> {
    match check(text) {
        Ok(_) => panic!("expected problems in:\n{text}"),
        Err(p) => p,
    }
}

/// The config of `text`, which must be valid.
fn valid(text: &str) -> Config {
    match check(text) {
        Ok(c) => c,
        Err(p) => panic!("unexpected problems: {p:#?}\nin:\n{text}"),
    }
}

/// Assert `text` has exactly one problem, at `line:col`, whose message contains `phrase`.
fn assert_one(case: &str, text: &str, line: usize, col: usize, phrase: &str) {
    let p = problems(text);
    let shown: Vec<String> = p.iter().map(|p| p.to_string()).collect();
    assert_eq!(p.len(), 1, "{case}: expected one problem, got {shown:#?}");
    let prefix = format!("{FILE}:{line}:{col}: ");
    assert!(
        shown[0].starts_with(&prefix) && shown[0].contains(phrase),
        "{case}: expected {prefix}…{phrase}…, got {}",
        shown[0]
    );
}

/// A rule body that is valid on its own, for cases about something else.
const OK_SCHEDULE: &str = "at = \"09:00\"\n";

#[test]
fn every_rule_validation_reports_its_location_and_what_to_change() {
    let long = |n: usize| "é".repeat(n);
    let status101 = format!("{OK_SCHEDULE}status_text = \"{}\"\n", long(101));
    let value5001 = format!(
        "{OK_SCHEDULE}[rules.profile.fields.Xf01]\nvalue = \"{}\"\n",
        long(5001)
    );
    let alt257 = format!(
        "{OK_SCHEDULE}[rules.profile.fields.Xf01]\nvalue = \"v\"\nalt = \"{}\"\n",
        long(257)
    );
    let tag51 = format!(
        "{OK_SCHEDULE}[rules.profile.fields]\nXf01 = [{{ value = \"ok\" }}, {{ value = \"{}\" }}]\n",
        long(51)
    );
    let id256 = format!(
        "{OK_SCHEDULE}[rules.profile.fields]\n{} = {{ value = \"v\" }}\n",
        "X".repeat(256)
    );
    let fifty_one = {
        // title + 47 custom fields + the status (text, emoji, expiration) = 51.
        let fields: String = (0..47)
            .map(|i| format!("Xf{i:02} = {{ value = \"v\" }}\n"))
            .collect();
        format!("{OK_SCHEDULE}status_text = \"x\"\n[rules.profile]\ntitle = \"t\"\n[rules.profile.fields]\n{fields}")
    };

    #[rustfmt::skip]
    let cases: Vec<(&str, String, usize, usize, &str)> = vec![
        // (case, body from line 6, line, col, phrase)
        ("no schedule", "status_text = \"x\"\n".into(), 3, 1, "has no schedule; add at ="),
        ("two schedules", "at = \"09:00\"\ncron = \"0 9 * * *\"\nstatus_text = \"x\"\n".into(), 7, 1, "has both cron and at/days"),
        ("days without at", "days = \"weekdays\"\nstatus_text = \"x\"\n".into(), 6, 1, "days needs at"),
        ("bad cron", "cron = \"61 * * * *\"\nstatus_text = \"x\"\n".into(), 6, 8, "cron: \"61 * * * *\" is not a valid cron expression ("),
        ("bad time", "at = \"9.30\"\nstatus_text = \"x\"\n".into(), 6, 6, "at: \"9.30\" is not a time of day: hours and minutes must be separated by ':'; write \"HH:MM\""),
        ("bad time in list", "at = [\"09:00\", \"24:00\"]\nstatus_text = \"x\"\n".into(), 6, 16, "at: \"24:00\" is not a time of day: the hour must be 0 to 23"),
        ("empty at list", "at = []\nstatus_text = \"x\"\n".into(), 6, 6, "at is an empty list"),
        ("bad days", format!("{OK_SCHEDULE}days = \"mon-fry\"\nstatus_text = \"x\"\n"), 7, 8, "days: \"mon-fry\" is not a range of days: \"fry\" is not a day; write mon, tue,"),
        ("bad day in list", format!("{OK_SCHEDULE}days = [\"mon\", \"funday\"]\nstatus_text = \"x\"\n"), 7, 16, "days: \"funday\" is not a day; write mon, tue, wed, thu, fri, sat or sun (or the full name)"),
        ("unknown zone", format!("{OK_SCHEDULE}timezone = \"Mars/Olympus\"\nstatus_text = \"x\"\n"), 7, 12, "unknown time zone \"Mars/Olympus\"; use an IANA name"),
        ("bad date", format!("{OK_SCHEDULE}skip_dates = [\"2026-02-30\"]\nstatus_text = \"x\"\n"), 7, 15, "skip_dates: \"2026-02-30\" is not a date: there is no such day; write an existing date \"YYYY-MM-DD\""),
        ("bad range", format!("{OK_SCHEDULE}skip_dates = [\"2026-12-24\", \"2027-01-01..2026-12-27\"]\nstatus_text = \"x\"\n"), 7, 29, "ends before it starts"),
        ("bad duration", format!("{OK_SCHEDULE}status_text = \"x\"\nexpire_after = \"2 parsecs\"\n"), 8, 16, "is not a duration"),
        ("zero expire_after", format!("{OK_SCHEDULE}status_text = \"x\"\nexpire_after = \"0s\"\n"), 8, 16, "expire_after is zero"),
        ("both expiries", format!("{OK_SCHEDULE}status_text = \"x\"\nexpire_after = \"2h\"\nexpire_at = \"17:00\"\n"), 9, 1, "both expire_after and expire_at"),
        ("bad expire_at", format!("{OK_SCHEDULE}status_text = \"x\"\nexpire_at = \"5pm\"\n"), 8, 13, "expire_at: \"5pm\" is not a time of day"),
        ("expiry without status", format!("{OK_SCHEDULE}expire_after = \"2h\"\n[rules.profile]\ntitle = \"t\"\n"), 7, 1, "expire_after without a status to expire"),
        ("expiry with clear", format!("{OK_SCHEDULE}clear_status = true\nexpire_at = \"17:00\"\n"), 8, 1, "nothing to expire because the rule clears"),
        ("status_text too long", status101, 7, 15, "status_text is 101 characters; Slack allows at most 100"),
        ("clear text only", format!("{OK_SCHEDULE}status_text = \"\"\nstatus_emoji = \":x:\"\n"), 7, 15, "status_text is \"\" but status_emoji is not;"),
        ("clear emoji only", format!("{OK_SCHEDULE}status_emoji = \"\"\n"), 7, 16, "status_emoji is \"\" but status_text is not set"),
        ("clear_status with status", format!("{OK_SCHEDULE}status_text = \"x\"\nclear_status = true\n"), 8, 16, "clear_status = true cannot be combined"),
        ("sets nothing", OK_SCHEDULE.into(), 3, 1, "sets nothing; add status_text"),
        ("empty profile sets nothing", format!("{OK_SCHEDULE}[rules.profile]\n"), 3, 1, "sets nothing"),
        ("unknown rule key", format!("{OK_SCHEDULE}status_text = \"x\"\ncolour = \"red\"\n"), 8, 1, "unknown key \"colour\"; allowed keys are name, token"),
        ("wrong type", format!("{OK_SCHEDULE}status_text = 5\n"), 7, 15, "status_text must be a string (in double quotes), not an integer"),
        ("wrong bool", format!("{OK_SCHEDULE}status_text = \"x\"\nrespect_manual = \"yes\"\n"), 8, 18, "respect_manual must be true or false, not a string"),
        ("empty user", format!("{OK_SCHEDULE}status_text = \"x\"\nuser = \"\"\n"), 8, 8, "user is empty"),
        ("first_name slackbot", format!("{OK_SCHEDULE}[rules.profile]\nfirst_name = \"SlackBot\"\n"), 8, 14, "first_name cannot be \"slackbot\""),
        ("last_name slackbot", format!("{OK_SCHEDULE}[rules.profile]\nlast_name = \"slackbot\"\n"), 8, 13, "last_name cannot be \"slackbot\""),
        ("more than 50 fields", fifty_one, 8, 1, "sets 51 profile fields; Slack allows at most 50"),
        ("field name too long", id256, 8, 1, "custom field ID is 256 characters; Slack allows at most 255"),
        ("value too long", value5001, 8, 9, "value is 5001 characters; Slack allows at most 5000"),
        ("alt too long", alt257, 9, 7, "alt is 257 characters; Slack allows at most 256"),
        ("tag too long", tag51, 8, 37, "a tag is 51 characters; Slack allows at most 50"),
        ("unknown profile key", format!("{OK_SCHEDULE}[rules.profile]\nskype = \"x\"\n"), 8, 1, "has no field \"skype\"; allowed keys are title, pronouns"),
        ("status in profile", format!("{OK_SCHEDULE}[rules.profile]\nstatus_text = \"x\"\n"), 8, 1, "the status is set by the rule itself"),
        ("image in profile", format!("{OK_SCHEDULE}[rules.profile]\nimage_72 = \"x\"\n"), 8, 1, "profile images cannot be set"),
        ("custom field unknown key", format!("{OK_SCHEDULE}[rules.profile.fields.Xf01]\nvalue = \"v\"\ntype = \"text\"\n"), 9, 1, "unknown key \"type\"; allowed keys are value, alt"),
        ("custom field without value", format!("{OK_SCHEDULE}[rules.profile.fields.Xf01]\nalt = \"a\"\n"), 7, 1, "value is missing"),
        ("custom field as string", format!("{OK_SCHEDULE}[rules.profile.fields]\nXf01 = \"v\"\n"), 8, 8, "must be a table { value"),
    ];
    for (case, body, line, col, phrase) in cases {
        assert_one(case, &format!("{RULE_HEAD}{body}"), line, col, phrase);
    }
}

#[test]
fn rule_name_and_token_are_required_and_checked() {
    let head = "[tokens.alice]\ntoken_env = \"A\"\n";
    #[rustfmt::skip]
    let cases = [
        ("missing name", "[[rules]]\ntoken = \"alice\"\nat = \"09:00\"\nstatus_text = \"x\"\n", 3, 1, "rule #1: name is missing; add a unique name"),
        ("empty name", "[[rules]]\nname = \"\"\ntoken = \"alice\"\nat = \"09:00\"\nstatus_text = \"x\"\n", 4, 8, "rule #1: name is empty"),
        ("missing token", "[[rules]]\nname = \"r\"\nat = \"09:00\"\nstatus_text = \"x\"\n", 3, 1, "rule \"r\": token is missing; add the name of a [tokens.NAME] table"),
        ("unknown token", "[[rules]]\nname = \"r\"\ntoken = \"bob\"\nat = \"09:00\"\nstatus_text = \"x\"\n", 5, 9, "token \"bob\" is not defined; add a [tokens.bob] table (defined: \"alice\")"),
        ("duplicate name", "[[rules]]\nname = \"r\"\ntoken = \"alice\"\nat = \"09:00\"\nstatus_text = \"x\"\n[[rules]]\nname = \"r\"\ntoken = \"alice\"\ncron = \"0 9 * * *\"\nstatus_text = \"y\"\n", 9, 8, "rule name \"r\" is already used at config.toml:4:8"),
        ("rules as a table", "[rules]\nname = \"r\"\n", 3, 1, "rules must be a list of tables: write [[rules]]"),
    ];
    for (case, body, line, col, phrase) in cases {
        assert_one(case, &format!("{head}{body}"), line, col, phrase);
    }
}

#[test]
fn every_top_level_validation_reports_its_location() {
    #[rustfmt::skip]
    let cases = [
        ("unknown key", "database = \"q.db\"\ncolour = 1\n", 2, 1, "unknown top-level key \"colour\"; allowed keys are database, database_password_file, lease, timezone"),
        ("database scheme", "database = \"mysql://u@db/q\"\n", 1, 12, "database: the scheme mysql:// is not supported; write a file path for SQLite, or a postgres:// or postgresql:// URL"),
        ("database password", "database = \"postgres://u:hunter2@db/q\"\n", 1, 12, "database: this URL holds a password; remove it and put the password in database_password_file"),
        ("lease without postgres", "database = \"q.db\"\nlease = \"30s\"\n", 2, 9, "lease is for several instances sharing a PostgreSQL database"),
        ("lease too short", "database = \"postgres://u@db/q\"\nlease = \"10s\"\n", 2, 9, "lease must be at least 15s"),
        ("password file without postgres", "database_password_file = \"pg.pass\"\n", 1, 26, "database_password_file is for a PostgreSQL database"),
        ("database type", "database = 5\n", 1, 12, "database must be a string"),
        ("unknown zone", "timezone = \"Europe/Berln\"\n", 1, 12, "timezone: unknown time zone \"Europe/Berln\""),
        ("api_url scheme", "api_url = \"slack.com/api\"\n", 1, 11, "api_url must start with http:// or https://"),
        ("catch_up", "catch_up = \"soon\"\n", 1, 12, "catch_up: \"soon\" is not a duration"),
        ("retention type", "retention = 30\n", 1, 13, "retention must be a duration in quotes"),
        ("log_level type", "log_level = 3\n", 1, 13, "log_level must be a string"),
        ("skip_dates", "skip_dates = \"2026-12-24\"\n", 1, 14, "skip_dates must be a list"),
        ("per_user zero", "[limits]\nper_user = 0\n", 2, 12, "[limits] per_user must be at least 1"),
        ("per_token type", "[limits]\nper_token = \"30\"\n", 2, 13, "[limits] per_token must be a whole number, not a string"),
        ("window zero", "[limits]\nwindow = \"0s\"\n", 2, 10, "[limits] window must be longer than 0s"),
        ("limits unknown", "[limits]\nburst = 3\n", 2, 1, "[limits]: unknown key \"burst\"; allowed keys are per_user, per_token, per_method, per_read, in_flight, window"),
        ("limits type", "limits = 3\n", 1, 10, "limits must be a table"),
        ("max_attempts zero", "[retry]\nmax_attempts = 0\n", 2, 16, "[retry] max_attempts must be at least 1"),
        ("backoff order", "[retry]\ninitial_backoff = \"1m\"\nmax_backoff = \"30s\"\n", 2, 19, "initial_backoff (1m) is longer than max_backoff (30s)"),
        ("backoff over default max", "[retry]\ninitial_backoff = \"10m\"\n", 2, 19, "longer than max_backoff (5m)"),
        ("retry unknown", "[retry]\njitter = true\n", 2, 1, "[retry]: unknown key \"jitter\""),
        ("token without source", "[tokens.alice]\n", 1, 1, "token \"alice\": has no source; add one of token_env"),
        ("token with two sources", "[tokens.alice]\ntoken_env = \"A\"\ntoken_file = \"a\"\n", 3, 1, "has both token_env and token_file; keep exactly one"),
        ("token unknown key", "[tokens.alice]\ntoken_env = \"A\"\nscope = \"x\"\n", 3, 1, "token \"alice\": unknown key \"scope\"; allowed keys are token_env, token_file, token"),
        ("token_env not a name", "[tokens.alice]\ntoken_env = \"MY-TOKEN\"\n", 2, 13, "must name an environment variable"),
        ("token not a table", "[tokens]\nalice = \"A\"\n", 2, 9, "token \"alice\" must be a table with one of token_env"),
        ("empty token_file", "[tokens.alice]\ntoken_file = \"\"\n", 2, 14, "token_file is empty"),
        ("syntax error", "a = 1\nname = \"unterminated\n", 2, 21, "invalid TOML:"),
        ("duplicate key", "[tokens.a]\ntoken_env = \"A\"\n[tokens.a]\ntoken_env = \"B\"\n", 3, 9, "invalid TOML: duplicate key"),
    ];
    for (case, text, line, col, phrase) in cases {
        assert_one(case, text, line, col, phrase);
    }
}

#[test]
fn all_problems_of_a_file_are_reported_together_sorted() {
    let text = "\
timezone = \"Nowhere/Land\"
colour = 1
[limits]
per_user = 0
[tokens.alice]
[[rules]]
name = \"a\"
token = \"bob\"
days = \"mon-fri\"
status_text = 5
[[rules]]
name = \"a\"
token = \"alice\"
cron = \"0 9 * * *\"
at = \"25:00\"
clear_status = true
status_emoji = \"\"
[rules.profile]
last_name = \"Slackbot\"
skype = \"x\"
";
    let got: Vec<(usize, usize)> = problems(text).iter().map(|p| (p.line, p.col)).collect();
    assert_eq!(
        got,
        vec![
            (1, 12),  // unknown zone
            (2, 1),   // unknown key
            (4, 12),  // per_user 0
            (5, 1),   // token without source
            (8, 9),   // unknown token bob
            (9, 1),   // days without at
            (10, 15), // status_text type
            (12, 8),  // duplicate rule name
            (14, 1),  // cron and at
            (15, 6),  // bad time
            (16, 16), // clear_status with status
            (19, 13), // slackbot
            (20, 1),  // skype
        ]
    );
    let rendered = load_str(Path::new(FILE), text).unwrap_err().to_string();
    assert_eq!(rendered.lines().count(), 13);
    assert!(rendered.starts_with("config.toml:1:12: timezone: unknown time zone"));
}

#[test]
fn the_spec_example_message_has_the_exact_shape() {
    let text = format!(
        "[tokens.alice]\ntoken_env = \"A\"\n\n[[rules]]\nname = \"coffee\"\ntoken = \"alice\"\n\
         at = \"09:00\"\n\n\n\n\n\n\nstatus_text = \"{}\"\n",
        "x".repeat(131)
    );
    let e = load_str(Path::new("config.toml"), &text).unwrap_err();
    assert_eq!(
        e.to_string(),
        "config.toml:14:15: rule \"coffee\": status_text is 131 characters; Slack allows at most 100"
    );
}

#[test]
fn limits_at_the_boundary_are_accepted() {
    // 45 custom fields + Xlong + Tags + the status (3) = 50, Slack's maximum.
    let fields: String = (0..45)
        .map(|i| format!("Xf{i:02} = {{ value = \"v\" }}\n"))
        .collect();
    let text = format!(
        "{RULE_HEAD}{OK_SCHEDULE}status_text = \"{}\"\n[rules.profile.fields.Xlong]\nvalue = \"{}\"\nalt = \"{}\"\n\
         [rules.profile.fields]\nTags = [{{ value = \"{}\" }}]\n{fields}",
        "☕".repeat(100),
        "v".repeat(5000),
        "a".repeat(256),
        "t".repeat(50),
    );
    let c = valid(&text);
    assert_eq!(c.rules[0].profile.len(), 47);
}

#[test]
fn a_rule_converts_into_the_typed_form() {
    let text = "\
timezone = \"Europe/Berlin\"
skip_dates = [\"2026-12-25\"]
[tokens.alice]
token_env = \"SLACK_TOKEN_ALICE\"
[[rules]]
name = \"coffee\"
token = \"alice\"
user = \"U0123ABCD\"
at = [\"13:00\", \"09:00:30\", \"13:00\"]
days = [\"Fri\", \"monday\", \"fri\"]
status_text = \"Coffee\"
status_emoji = \":coffee:\"
expire_after = \"2h\"
skip_dates = [\"2026-12-27..2027-01-01\", 2026-12-24]
respect_manual = true
[rules.profile]
title = \"Barista\"
pronouns = \"they/them\"
[rules.profile.fields.Xf0111111]
value = \"Barista\"
[rules.profile.fields]
Xf0333333 = [{ value = \"Mocha\" }, { value = \"Latte\", alt = \"L\" }]
[[rules]]
name = \"wfh\"
token = \"alice\"
cron = \"0 9 * * fri\"
timezone = \"America/New_York\"
clear_status = true
[[rules]]
name = \"lunch\"
token = \"alice\"
at = 12:00:00
days = \"fri-mon\"
status_emoji = \":pizza:\"
expire_at = \"13:00\"
";
    let c = valid(text);
    let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    let r = &c.rules[0];
    assert_eq!(r.name, "coffee");
    assert_eq!(r.token, "alice");
    assert_eq!(r.user.as_deref(), Some("U0123ABCD"));
    assert_eq!(r.timezone, chrono_tz::Europe::Berlin);
    assert_eq!(r.file, Path::new(FILE));
    assert!(r.respect_manual);
    match &r.schedule {
        Schedule::Calendar { times, days } => {
            assert_eq!(
                times,
                &[
                    NaiveTime::from_hms_opt(9, 0, 30).unwrap(),
                    NaiveTime::from_hms_opt(13, 0, 0).unwrap()
                ]
            );
            assert_eq!(days, &[Weekday::Mon, Weekday::Fri]);
        }
        other => panic!("expected a calendar schedule, got {other:?}"),
    }
    // The rule's own dates first, then the top-level ones.
    assert_eq!(
        r.skip_dates,
        vec![
            DateRange {
                first: d("2026-12-27"),
                last: d("2027-01-01")
            },
            DateRange {
                first: d("2026-12-24"),
                last: d("2026-12-24")
            },
            DateRange {
                first: d("2026-12-25"),
                last: d("2026-12-25")
            },
        ]
    );
    let status = r.status.as_ref().unwrap();
    assert_eq!(
        (status.text.as_str(), status.emoji.as_str()),
        ("Coffee", ":coffee:")
    );
    assert_eq!(r.expiry, Expiry::After(Duration::from_secs(7200)));
    assert_eq!(r.profile["title"], json!("Barista"));
    assert_eq!(r.profile["pronouns"], json!("they/them"));
    assert_eq!(
        r.profile["fields.Xf0111111"],
        json!({"value": "Barista", "alt": ""})
    );
    assert_eq!(
        r.profile["fields.Xf0333333"],
        json!([{"value": "Mocha", "alt": ""}, {"value": "Latte", "alt": "L"}])
    );
    assert_eq!(r.profile.len(), 4);

    let wfh = &c.rules[1];
    assert!(matches!(wfh.schedule, Schedule::Cron(_)));
    assert_eq!(wfh.timezone, chrono_tz::America::New_York);
    let cleared = wfh.status.as_ref().unwrap();
    assert_eq!((cleared.text.as_str(), cleared.emoji.as_str()), ("", ""));
    assert_eq!(wfh.expiry, Expiry::Never);
    assert_eq!(
        wfh.skip_dates.len(),
        1,
        "top-level skip_dates apply to every rule"
    );

    let lunch = &c.rules[2];
    match &lunch.schedule {
        Schedule::Calendar { times, days } => {
            assert_eq!(times, &[NaiveTime::from_hms_opt(12, 0, 0).unwrap()]);
            assert_eq!(
                days,
                &[Weekday::Mon, Weekday::Fri, Weekday::Sat, Weekday::Sun]
            );
        }
        other => panic!("expected a calendar schedule, got {other:?}"),
    }
    let s = lunch.status.as_ref().unwrap();
    assert_eq!((s.text.as_str(), s.emoji.as_str()), ("", ":pizza:"));
    assert_eq!(
        lunch.expiry,
        Expiry::At(NaiveTime::from_hms_opt(13, 0, 0).unwrap())
    );
}

#[test]
fn day_specs_and_default_days() {
    let days_of = |spec: &str| {
        let c = valid(&format!(
            "{RULE_HEAD}at = \"09:00\"\nstatus_text = \"x\"\n{spec}"
        ));
        match &c.rules[0].schedule {
            Schedule::Calendar { days, .. } => days.clone(),
            other => panic!("{other:?}"),
        }
    };
    use Weekday::*;
    assert_eq!(days_of(""), vec![Mon, Tue, Wed, Thu, Fri, Sat, Sun]);
    assert_eq!(
        days_of("days = \"daily\""),
        vec![Mon, Tue, Wed, Thu, Fri, Sat, Sun]
    );
    assert_eq!(
        days_of("days = \"weekdays\""),
        vec![Mon, Tue, Wed, Thu, Fri]
    );
    assert_eq!(days_of("days = \"weekends\""), vec![Sat, Sun]);
    assert_eq!(days_of("days = \"Mon-Fri\""), vec![Mon, Tue, Wed, Thu, Fri]);
    assert_eq!(days_of("days = \"sat-tue\""), vec![Mon, Tue, Sat, Sun]);
    assert_eq!(days_of("days = [\"WED\", \"Thursday\"]"), vec![Wed, Thu]);
}

#[test]
fn defaults() {
    let c = valid("");
    assert_eq!(c.api_url, "https://slack.com/api");
    assert_eq!(c.catch_up, Duration::from_secs(6 * 3600));
    assert_eq!(c.retention, Duration::from_secs(30 * 86400));
    assert_eq!(c.log_level, "info");
    assert_eq!((c.limits.per_user, c.limits.per_token), (10, 30));
    assert_eq!(c.limits.window, Duration::from_secs(60));
    assert_eq!(c.retry.max_attempts, 8);
    assert_eq!(c.retry.initial_backoff, Duration::from_secs(1));
    assert_eq!(c.retry.max_backoff, Duration::from_secs(300));
    assert!(c.tokens.is_empty() && c.rules.is_empty() && c.warnings.is_empty());
    assert_eq!(c.files, vec![PathBuf::from(FILE)]);
    assert_eq!(c.path, Path::new(FILE));
    // The default zone is the system's, or UTC when it cannot be determined.
    let system = iana_time_zone::get_timezone()
        .ok()
        .and_then(|z| z.parse::<chrono_tz::Tz>().ok())
        .unwrap_or(chrono_tz::Tz::UTC);
    assert_eq!(c.timezone, system);
    // The default database is a queue.db somewhere absolute (where depends on the
    // environment; the rules are unit-tested in config::paths).
    let db = c.database.sqlite().unwrap();
    assert!(db.is_absolute() && db.ends_with("queue.db"));
}

#[test]
fn top_level_settings_override_the_defaults() {
    let c = valid(
        "database = \"state/q.db\"\ntimezone = \"Asia/Tokyo\"\napi_url = \"http://127.0.0.1:9/api/\"\n\
         catch_up = \"0s\"\nretention = \"7d\"\nlog_level = \"slack_statusd=debug\"\n\
         [limits]\nper_user = 0x2\nper_token = 1_005\nwindow = \"10s\"\n\
         [retry]\nmax_attempts = 3\ninitial_backoff = \"2s\"\nmax_backoff = \"2s\"\n",
    );
    assert_eq!(c.timezone, chrono_tz::Asia::Tokyo);
    assert_eq!(c.api_url, "http://127.0.0.1:9/api");
    assert_eq!(c.catch_up, Duration::ZERO);
    assert_eq!(c.retention, Duration::from_secs(7 * 86400));
    assert_eq!(c.log_level, "slack_statusd=debug");
    assert_eq!((c.limits.per_user, c.limits.per_token), (2, 1005));
    assert_eq!(c.limits.window, Duration::from_secs(10));
    assert_eq!(c.retry.max_attempts, 3);
    assert_eq!(c.retry.initial_backoff, c.retry.max_backoff);
}

#[test]
fn a_relative_database_is_relative_to_the_config_folder() {
    let c = load_str(
        Path::new("/srv/statusd/config.toml"),
        "database = \"q.db\"\n",
    )
    .unwrap();
    assert_eq!(c.database.sqlite(), Some(Path::new("/srv/statusd/q.db")));
    let c = load_str(Path::new("/srv/config.toml"), "database = \"/data/q.db\"\n").unwrap();
    assert_eq!(c.database.sqlite(), Some(Path::new("/data/q.db")));
    // A relative config path is made absolute against the working directory.
    let c = load_str(Path::new("cfg/config.toml"), "database = \"q.db\"\n").unwrap();
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(
        c.database.sqlite(),
        Some(cwd.join("cfg").join("q.db").as_path())
    );
}

#[test]
fn tokens_resolve_from_env_file_and_inline() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alice.token");
    fs::write(&file, "  xoxp-from-file  \nsecond line\n").unwrap();
    let empty = dir.path().join("empty.token");
    fs::write(&empty, "\n").unwrap();
    let text = format!(
        "[tokens.env]\ntoken_env = \"CARGO_MANIFEST_DIR\"\n\
         [tokens.unset]\ntoken_env = \"SLACK_STATUSD_TEST_SURELY_UNSET_VARIABLE\"\n\
         [tokens.file]\ntoken_file = \"{}\"\n\
         [tokens.empty]\ntoken_file = \"{}\"\n\
         [tokens.missing]\ntoken_file = \"{}\"\n\
         [tokens.inline]\ntoken = \"xoxp-inline\"\n",
        file.display(),
        empty.display(),
        dir.path().join("nope").display(),
    );
    let c = valid(&text);
    assert_eq!(c.tokens["file"], TokenSource::File(file.clone()));
    assert_eq!(format!("{:?}", c.tokens["inline"]), "Inline(<redacted>)");

    let (ok, errs) = c.resolve_tokens();
    assert_eq!(ok["file"].expose(), "xoxp-from-file");
    assert_eq!(ok["inline"].expose(), "xoxp-inline");
    // Cargo sets CARGO_MANIFEST_DIR for the tests it runs; without cargo it is unset.
    match std::env::var("CARGO_MANIFEST_DIR") {
        Ok(v) => assert_eq!(ok["env"].expose(), v.trim()),
        Err(_) => assert!(!ok.contains_key("env")),
    }
    assert!(errs.contains(&TokenError::EnvMissing {
        name: "unset".into(),
        var: "SLACK_STATUSD_TEST_SURELY_UNSET_VARIABLE".into()
    }));
    let file_errs: Vec<_> = errs
        .iter()
        .filter_map(|e| match e {
            TokenError::File { name, reason, .. } => Some((name.as_str(), reason.to_string())),
            _ => None,
        })
        .collect();
    assert!(file_errs.contains(&("empty", "the file is empty".to_string())));
    assert!(file_errs.iter().any(|(n, _)| *n == "missing"));
    // Token errors never carry a value either.
    for e in &errs {
        assert!(!e.to_string().contains("xoxp"), "{e}");
    }
}

#[test]
fn a_relative_token_file_is_resolved_against_the_file_that_names_it() {
    // Under systemd's LoadCredential= the base is $CREDENTIALS_DIRECTORY instead (unit
    // tested in config::paths); this test only makes sense outside such a service.
    if std::env::var_os("CREDENTIALS_DIRECTORY").is_some() {
        return;
    }
    let c = load_str(
        Path::new("/etc/slack-statusd/config.toml"),
        "[tokens.alice]\ntoken_file = \"alice.token\"\n",
    )
    .unwrap();
    assert_eq!(
        c.tokens["alice"],
        TokenSource::File(PathBuf::from("/etc/slack-statusd/alice.token"))
    );
}

/// A token no message may ever contain.
const SECRET: &str = "xoxp-1111-RECOGNISABLE-SECRET";

#[test]
fn no_message_ever_quotes_a_token() {
    #[rustfmt::skip]
    let configs = [
        // The inline token beside every kind of mistake in its table.
        format!("[tokens.a]\ntoken = \"{SECRET}\"\ntoken_env = \"A\"\n"),
        format!("[tokens.a]\ntoken = \"{SECRET}\"\nscope = 1\n"),
        format!("[tokens.a]\ntoken = \"{SECRET}\"\n{SECRET} = 1\n"),
        format!("[tokens.a]\ntoken = [\"{SECRET}\"]\n"),
        format!("[tokens.a]\ntoken = {{ v = \"{SECRET}\" }}\n"),
        "[tokens.a]\ntoken = 1111222233334444\n".to_string(),
        format!("[tokens]\na = \"{SECRET}\"\n"),
        // The token pasted where a name, variable or path belongs.
        format!("[tokens.a]\ntoken_env = \"{SECRET}\"\n"),
        format!("[tokens.a]\ntoken_file = \"{SECRET}\"\n"),
        format!("[tokens.\"{SECRET}\"]\n"),
        format!("[[rules]]\nname = \"r\"\ntoken = \"{SECRET}\"\nat = \"09:00\"\nstatus_text = \"x\"\n"),
        format!("{SECRET} = 1\n"),
        // Syntax errors on the token's line.
        format!("[tokens.a]\ntoken = \"{SECRET}\n"),
        format!("[tokens.a]\ntoken = \"{SECRET}\" junk\n"),
        format!("[tokens.a]\ntoken = {SECRET}\n"),
        // A valid token in a file with other problems.
        format!("[tokens.a]\ntoken = \"{SECRET}\"\n[[rules]]\nname = \"r\"\ntoken = \"a\"\n"),
    ];
    for text in &configs {
        let e = load_str(Path::new(FILE), text).expect_err(text);
        let shown = format!("{e}\n{e:?}");
        assert!(
            !shown.contains(SECRET),
            "token quoted for:\n{text}\n{shown}"
        );
        assert!(
            !shown.contains("1111"),
            "token digits quoted for:\n{text}\n{shown}"
        );
    }
    let c = valid(&format!("[tokens.a]\ntoken = \"{SECRET}\"\n"));
    assert!(!format!("{c:?}").contains(SECRET));
}

/// The stderr of `slack-statusd --config <path> check`, which must exit 1 (invalid config).
fn check_fails(path: &Path) -> String {
    let out = std::process::Command::new(common::bin())
        .arg("--config")
        .arg(path)
        .arg("check")
        .output()
        .expect("run slack-statusd check");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    stderr
}

const MAIN: &str = "[tokens.alice]\ntoken_env = \"A\"\n[[rules]]\nname = \"coffee\"\ntoken = \"alice\"\nat = \"09:00\"\nstatus_text = \"Coffee\"\n";

#[test]
fn drop_ins_add_tokens_and_rules_in_name_order() {
    let (dir, path) = common::config_folder(
        MAIN,
        &[
            ("20-bob.toml", "[tokens.bob]\ntoken_env = \"B\"\n[[rules]]\nname = \"bob-lunch\"\ntoken = \"bob\"\nat = \"12:00\"\nstatus_emoji = \":pizza:\"\n"),
            // Uses a token from the main file; read before 20-bob.
            ("10-alice.toml", "[[rules]]\nname = \"alice-wfh\"\ntoken = \"alice\"\ncron = \"0 9 * * fri\"\nstatus_text = \"WFH\"\n"),
            ("notes.txt", "not toml"),
            (".hidden.toml", "this would not parse"),
        ],
    );
    let c = load(&path).unwrap();
    let names: Vec<&str> = c.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["coffee", "alice-wfh", "bob-lunch"]);
    let d = dir.path().join("config.d");
    assert_eq!(
        c.files,
        vec![path.clone(), d.join("10-alice.toml"), d.join("20-bob.toml")]
    );
    assert_eq!(c.rules[2].file, d.join("20-bob.toml"));
    assert_eq!(c.tokens.keys().collect::<Vec<_>>(), ["alice", "bob"]);
}

#[test]
fn drop_in_problems_name_their_own_file() {
    let (dir, path) = common::config_folder(
        &format!("colour = 1\n{MAIN}"),
        &[
            ("a.toml", "[tokens.alice]\ntoken_env = \"A2\"\n[[rules]]\nname = \"coffee\"\ntoken = \"alice\"\nat = \"09:00\"\nstatus_text = \"x\"\n"),
            ("b.toml", "database = \"other.db\"\n[[rules]]\nname = \"b\"\ntoken = \"carol\"\nat = \"9\"\nstatus_text = \"x\"\n"),
        ],
    );
    let e = load(&path).unwrap_err();
    let main = path.display().to_string();
    let a = dir.path().join("config.d/a.toml").display().to_string();
    let b = dir.path().join("config.d/b.toml").display().to_string();
    let got: Vec<String> = e.problems.iter().map(|p| p.to_string()).collect();
    let want = [
        (main.as_str(), 1, 1, "unknown top-level key \"colour\""),
        (a.as_str(), 1, 9, &*format!("token \"alice\" is already defined at {main}:2:9")),
        (a.as_str(), 4, 8, &*format!("rule name \"coffee\" is already used at {main}:5:8")),
        (b.as_str(), 1, 1, &*format!("unknown key \"database\" in a drop-in; drop-ins may only hold [tokens.NAME] tables, [[rules]] and [[calendars]], so move it to {main}")),
        (b.as_str(), 4, 9, "token \"carol\" is not defined"),
        (b.as_str(), 5, 6, "\"9\" is not a time of day"),
    ];
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (g, (file, line, col, phrase)) in got.iter().zip(want) {
        let prefix = format!("{file}:{line}:{col}: ");
        assert!(
            g.starts_with(&prefix) && g.contains(phrase),
            "want {prefix}…{phrase}, got {g}"
        );
    }
}

#[test]
fn a_missing_or_unreadable_main_file_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let e = load(&path).unwrap_err();
    assert_eq!(e.problems.len(), 1);
    let p = &e.problems[0];
    assert_eq!((p.file.as_path(), p.line, p.col), (path.as_path(), 1, 1));
    assert!(p.message.contains("cannot read the config file"), "{p}");
    assert!(p.message.contains("pass --config PATH"), "{p}");
}

#[test]
fn invalid_utf8_is_located() {
    let (_dir, path) = common::config_folder("", &[]);
    fs::write(&path, b"a = 1\nb = \"\xff\"\n").unwrap();
    let e = load(&path).unwrap_err();
    assert_eq!(e.problems.len(), 1);
    assert_eq!((e.problems[0].line, e.problems[0].col), (2, 6));
    assert!(e.problems[0].message.contains("not valid UTF-8"));
}

#[test]
fn an_inline_token_in_a_readable_file_is_warned_about() {
    let text = format!("[tokens.a]\ntoken = \"{SECRET}\"\n");
    let (dir, path) =
        common::config_folder(&text, &[("b.toml", "[tokens.b]\ntoken_env = \"B\"\n")]);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let c = load(&path).unwrap();
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    let w = &c.warnings[0];
    assert!(
        w.contains(&path.display().to_string()) && w.contains("chmod 600"),
        "{w}"
    );
    assert!(
        w.contains("token_env or token_file") && !w.contains(SECRET),
        "{w}"
    );

    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(load(&path).unwrap().warnings.is_empty());
    // load_str reads no file, so it has nothing to warn about.
    assert!(load_str(&path, &text).unwrap().warnings.is_empty());
    drop(dir);
}

/// The shipped files, by their path in the repository.
fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config")
        .join(name)
}

#[test]
fn the_demo_config_is_valid_and_every_rule_fires_within_a_minute() {
    let path = shipped("example.toml");
    let c = load(&path).unwrap();
    assert_eq!(
        c.database.sqlite(),
        Some(path.parent().unwrap().join("demo.db").as_path())
    );
    assert_eq!(
        c.tokens["demo"],
        TokenSource::Env("SLACK_TOKEN_DEMO".into())
    );
    assert!(c.rules.len() >= 2);
    assert!(c.rules.iter().any(|r| matches!(r.expiry, Expiry::After(_))));
    assert!(c.rules.iter().any(|r| r.profile.contains_key("title")));
    assert!(c.rules.iter().any(|r| r
        .status
        .as_ref()
        .is_some_and(|s| s.text.is_empty() && s.emoji.is_empty())));
    // Whatever the start time, each rule fires within 60 s.
    let starts = [
        "2026-03-29T00:59:59Z",
        "2026-11-23T09:00:00Z",
        "2026-12-31T23:59:31Z",
    ];
    for r in c.rules.iter() {
        let Schedule::Cron(cron) = &r.schedule else {
            panic!(
                "{}: the demo uses cron so that it fires at any time",
                r.name
            );
        };
        for s in starts {
            let start = chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .with_timezone(&chrono::Utc);
            let next = cron.find_next_occurrence(&start, false).unwrap();
            assert!(
                next - start <= chrono::TimeDelta::seconds(60),
                "{} after {s}",
                r.name
            );
        }
    }
}

#[test]
fn the_install_template_is_valid_empty_and_documents_every_key() {
    let path = shipped("config.toml");
    let c = load(&path).unwrap();
    assert!(c.rules.is_empty() && c.tokens.is_empty());
    let text = fs::read_to_string(&path).unwrap();
    for key in [
        "database",
        "timezone",
        "api_url",
        "catch_up",
        "retention",
        "log_level",
        "skip_dates",
        "[limits]",
        "per_user",
        "per_token",
        "window",
        "[retry]",
        "max_attempts",
        "initial_backoff",
        "max_backoff",
        "[tokens.",
        "token_env",
        "token_file",
        "token =",
        "[[rules]]",
        "name",
        "user",
        "at =",
        "days",
        "cron",
        "status_text",
        "status_emoji",
        "expire_after",
        "expire_at",
        "clear_status",
        "respect_manual",
        "[rules.profile]",
        "title",
        "pronouns",
        "phone",
        "real_name",
        "display_name",
        "email",
        "first_name",
        "last_name",
        "[rules.profile.fields",
        "value",
        "alt",
        "config.d",
    ] {
        assert!(
            text.contains(key),
            "config/config.toml does not document {key}"
        );
    }
}

#[test]
fn no_input_makes_it_panic() {
    // Every prefix of a config that uses every feature, cut at each character: unterminated
    // strings and tables, half keys, empty values. Each must give a config or problems.
    let text = fs::read_to_string(shipped("example.toml")).unwrap()
        + "skip_dates = [2026-12-24, \"2026-12-27..2027-01-01\"]\n\
           [[rules]]\nname = \"ü☕\"\ntoken = \"demo\"\nat = [\"09:00\", 10:00:00]\n\
           days = [\"mon\", \"fri\"]\nstatus_text = \"é\"\nexpire_at = \"17:30\"\n\
           [rules.profile.fields]\nXf1 = [{ value = \"a\" }]\nXf2 = { value = \"b\", alt = \"c\" }\n";
    let mut ends: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    ends.push(text.len());
    for end in ends {
        let _ = load_str(Path::new(FILE), &text[..end]);
    }
    for weird in [
        "\u{feff}a = 1",
        "\0",
        "[[rules]]\n[[rules]]\n",
        "rules = [1, \"x\", []]",
        "[tokens.\"\"]\ntoken = \"\"\n",
        "at = 9999999999999999999999\n[limits]\nper_user = -9223372036854775808\n",
    ] {
        let _ = load_str(Path::new(FILE), weird);
    }
}

#[test]
fn problems_are_sorted_by_file_in_reading_order() {
    let (dir, path) = common::config_folder(
        "colour = 1\n",
        &[
            ("10-x.toml", "database = \"q.db\"\n"),
            ("20-y.toml", "[tokens]\n"),
        ],
    );
    // A drop-in that cannot be read as text sorts in its place among the others.
    fs::write(dir.path().join("config.d/05-bad.toml"), b"\xff").unwrap();
    let files: Vec<PathBuf> = load(&path)
        .unwrap_err()
        .problems
        .into_iter()
        .map(|p| p.file)
        .collect();
    let d = dir.path().join("config.d");
    assert_eq!(
        files,
        vec![path.clone(), d.join("05-bad.toml"), d.join("10-x.toml")]
    );
}

/// A config large enough to be parsed in sections: 40 tokens with 10 rules each, tokens
/// between rules as in a generated file. Returns the text and, per rule, the line of its
/// `[[rules]]` header.
fn large_config() -> (String, Vec<usize>) {
    let mut text = String::from("timezone = \"UTC\"\n[limits]\nper_user = 5\n");
    let mut headers = Vec::new();
    for t in 0..40 {
        text.push_str(&format!("[tokens.t{t}]\ntoken_env = \"T{t}\"\n"));
        for r in 0..10 {
            headers.push(text.lines().count() + 1);
            text.push_str(&format!(
                "[[rules]]\nname = \"t{t}-r{r}\"\ntoken = \"t{t}\"\nat = \"09:{r:02}\"\n\
                 status_text = \"Focus {r}\"\n  [rules.profile]\n  title = \"T{t}\"\n"
            ));
        }
    }
    (text, headers)
}

#[test]
fn a_large_file_parsed_in_sections_locates_every_problem() {
    let (text, headers) = large_config();
    // Sections are cut at 8 KiB or more.
    assert!(text.len() > 5 * 8192, "{} bytes", text.len());
    let config = valid(&text);
    assert_eq!(config.rules.len(), 400);
    assert_eq!(config.tokens.len(), 40);
    assert_eq!(config.rules[399].name, "t39-r9");
    assert_eq!(config.rules[399].profile["title"], json!("T39"));

    // Problems in rules far apart, and a name used again much later.
    let (a, b, c) = (headers[120], headers[250], headers[290]);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[a + 2] = "at = \"25:00\"".into(); // line a + 3: `at` of rule #121
    lines[b] = "name = \"t12-r0\"".into(); // line b + 1: rule #251 renamed
    lines[c + 5] = "  titel = \"T\"".into(); // line c + 6: in rule #291's profile
    let broken = lines.join("\n") + "\n";
    let shown: Vec<String> = problems(&broken).iter().map(|p| p.to_string()).collect();
    assert_eq!(
        shown,
        [
            format!(
                "{FILE}:{}:6: rule \"t12-r0\": at: \"25:00\" is not a time of day: the hour must \
                 be 0 to 23 (midnight is \"00:00\"); write \"HH:MM\" or \"HH:MM:SS\" on the \
                 24-hour clock, e.g. \"09:00\" or \"17:30:15\"",
                a + 3
            ),
            format!(
                "{FILE}:{}:8: rule name \"t12-r0\" is already used at {FILE}:{}:8; rule names \
                 must be unique across all files, so rename one",
                b + 1,
                a + 1
            ),
            format!(
                "{FILE}:{}:3: rule \"t29-r0\": [rules.profile] has no field \"titel\"; allowed \
                 keys are title, pronouns, phone, real_name, display_name, email, first_name, \
                 last_name, fields",
                c + 6
            ),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// The grammar of times, days, dates and cron (SPEC §3; the decisions are tabled in
// src/schedule/parse.rs), one test per decision, through the loader as users reach it.

/// How every time-of-day message ends.
const TIME_HINT: &str =
    "write \"HH:MM\" or \"HH:MM:SS\" on the 24-hour clock, e.g. \"09:00\" or \"17:30:15\"";

/// A rule whose keys from line 6 on are `body`, with a status so that it sets something.
fn rule_with(body: &str) -> String {
    format!("{RULE_HEAD}{body}status_text = \"x\"\n")
}

/// The one problem of `text`, as `file:line:col: message`.
fn only_problem(text: &str) -> String {
    let p = problems(text);
    assert_eq!(p.len(), 1, "expected one problem, got {p:#?}");
    p[0].to_string()
}

/// Assert that the rule whose keys from line 6 on are `body` has exactly one problem, at
/// `line:col` `at`, and that it says `message` after the rule's name.
fn assert_rule_problem(body: &str, at: &str, message: &str) {
    assert_eq!(
        only_problem(&rule_with(body)),
        format!("{FILE}:{at}: rule \"r\": {message}"),
        "{body}"
    );
}

/// The times and days of the first rule of `text`, which must be valid.
fn calendar_of(text: &str) -> (Vec<NaiveTime>, Vec<Weekday>) {
    match &valid(text).rules[0].schedule {
        Schedule::Calendar { times, days } => (times.clone(), days.clone()),
        other => panic!("expected a calendar schedule, got {other:?}"),
    }
}

fn hms(h: u32, m: u32, s: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, s).expect("test time")
}

#[test]
fn a_one_digit_hour_like_9_00_is_accepted() {
    let text = rule_with("at = [\"9:00\", \"9:30:15\"]\nexpire_at = \"9:45\"\n");
    assert_eq!(calendar_of(&text).0, [hms(9, 0, 0), hms(9, 30, 15)]);
    assert_eq!(valid(&text).rules[0].expiry, Expiry::At(hms(9, 45, 0)));
}

#[test]
fn one_digit_minutes_like_12_0_are_rejected() {
    let why = "is not a time of day: the minutes need two digits";
    assert_rule_problem(
        "at = \"12:0\"\n",
        "6:6",
        &format!("at: \"12:0\" {why}; {TIME_HINT}"),
    );
    // expire_at is read by the same grammar.
    assert_rule_problem(
        "at = \"09:00\"\nexpire_at = \"12:0\"\n",
        "7:13",
        &format!("expire_at: \"12:0\" {why}; {TIME_HINT}"),
    );
}

#[test]
fn an_ambiguous_time_like_9_5_is_rejected_not_guessed() {
    // 9:05 or 9:50? Neither is guessed; the same holds for one-digit seconds.
    let not = "is not a time of day:";
    assert_rule_problem(
        "at = [\"08:00\", \"9:5\"]\n",
        "6:16",
        &format!("at: \"9:5\" {not} the minutes need two digits; {TIME_HINT}"),
    );
    assert_rule_problem(
        "at = \"09:05:7\"\n",
        "6:6",
        &format!("at: \"09:05:7\" {not} the seconds need two digits; {TIME_HINT}"),
    );
}

#[test]
fn a_leap_second_like_12_00_60_is_rejected() {
    let why = "is not a time of day: the seconds must be 00 to 59 (there are no leap seconds)";
    assert_rule_problem(
        "at = \"12:00:60\"\n",
        "6:6",
        &format!("at: \"12:00:60\" {why}; {TIME_HINT}"),
    );
    // An unquoted TOML local time, which TOML allows a leap second, goes through the same
    // grammar.
    assert_rule_problem(
        "at = 23:59:60\n",
        "6:6",
        &format!("at: \"23:59:60\" {why}; {TIME_HINT}"),
    );
}

#[test]
fn midnight_is_00_00_and_24_00_is_rejected() {
    let why = "is not a time of day: the hour must be 0 to 23 (midnight is \"00:00\")";
    for time in ["24:00", "24:00:00"] {
        assert_rule_problem(
            &format!("at = \"{time}\"\n"),
            "6:6",
            &format!("at: \"{time}\" {why}; {TIME_HINT}"),
        );
    }
    assert_eq!(
        calendar_of(&rule_with("at = \"00:00\"\n")).0,
        [hms(0, 0, 0)]
    );
}

#[test]
fn spaces_around_a_time_like_09_00_are_ignored() {
    let text = rule_with("at = [\" 09:00 \", \"\\t17:30:15 \"]\nexpire_at = \" 18:00\"\n");
    assert_eq!(calendar_of(&text).0, [hms(9, 0, 0), hms(17, 30, 15)]);
    assert_eq!(valid(&text).rules[0].expiry, Expiry::At(hms(18, 0, 0)));
    // Spaces inside a time are not "around" it.
    assert_rule_problem(
        "at = \"09: 00\"\n",
        "6:6",
        &format!("at: \"09: 00\" is not a time of day: the minutes need two digits; {TIME_HINT}"),
    );
}

#[test]
fn a_date_like_2026_1_5_is_rejected_with_the_spelling_to_write() {
    let hint = "write \"YYYY-MM-DD\" with a two-digit month and day";
    let range = "or a range such as \"2026-12-27..2027-01-01\"";
    assert_rule_problem(
        "at = \"09:00\"\nskip_dates = [\"2026-1-5\"]\n",
        "7:15",
        &format!("skip_dates: \"2026-1-5\" is not a date; {hint}, e.g. \"2026-01-05\", {range}"),
    );
    // The top-level skip_dates, and one end of a range, the same.
    assert_eq!(
        only_problem(&format!(
            "skip_dates = [\"2026-12-27..2027-1-1\"]\n{}",
            rule_with("at = \"09:00\"\n")
        )),
        format!(
            "{FILE}:1:15: skip_dates: \"2027-1-1\" in \"2026-12-27..2027-1-1\" is not a date; \
             {hint}, e.g. \"2027-01-01\", {range}"
        )
    );
}

#[test]
fn tues_is_not_a_day_name_and_the_message_says_tue_or_tuesday() {
    let at = "at = \"09:00\"\n";
    #[rustfmt::skip]
    let cases = [
        ("days = \"tues\"", 8, "\"tues\" is not a day; write \"tue\" or \"tuesday\""),
        ("days = [\"mon\", \"thur\"]", 16, "\"thur\" is not a day; write \"thu\" or \"thursday\""),
        ("days = \"tues-fri\"", 8, "\"tues-fri\" is not a range of days: \"tues\" is not a day; write \"tue\" or \"tuesday\""),
    ];
    for (days, col, message) in cases {
        assert_rule_problem(
            &format!("{at}{days}\n"),
            &format!("7:{col}"),
            &format!("days: {message}"),
        );
    }
}

#[test]
fn day_names_like_mon_are_accepted_in_any_case() {
    use Weekday::*;
    let days_of = |days: &str| calendar_of(&rule_with(&format!("at = \"09:00\"\n{days}\n"))).1;
    assert_eq!(days_of("days = \"Mon\""), [Mon]);
    assert_eq!(days_of("days = \"MON\""), [Mon]);
    assert_eq!(days_of("days = \"mOnDaY\""), [Mon]);
    assert_eq!(days_of("days = \"Mon-FRI\""), [Mon, Tue, Wed, Thu, Fri]);
    assert_eq!(days_of("days = [\"Sun\", \"WEDNESDAY\"]"), [Wed, Sun]);
    assert_eq!(days_of("days = \"WeekEnds\""), [Sat, Sun]);
}

#[test]
fn times_of_day_are_hh_mm_or_hh_mm_ss_on_the_24_hour_clock() {
    let ok = [
        ("09:00", (9, 0, 0)),
        ("9:00", (9, 0, 0)),
        ("00:00", (0, 0, 0)),
        ("17:30:15", (17, 30, 15)),
        ("23:59:59", (23, 59, 59)),
        (" 08:05 ", (8, 5, 0)),
    ];
    for (s, (h, m, sec)) in ok {
        let text = rule_with(&format!("at = \"{s}\"\n"));
        assert_eq!(calendar_of(&text).0, [hms(h, m, sec)], "{s}");
    }
    for s in [
        "24:00",
        "12:60",
        "12:00:60",
        "9am",
        "",
        "12",
        "12:0",
        "12:00:00:00",
        "-1:00",
        "123:00",
        "12:00:5",
        "１２:00",
        "12:+5",
        "09:30:00.5",
        "9.30",
    ] {
        let p = only_problem(&rule_with(&format!("at = \"{s}\"\n")));
        let start = format!("{FILE}:6:6: rule \"r\": at: {s:?} is not a time of day: ");
        assert!(p.starts_with(&start) && p.ends_with(TIME_HINT), "{s}: {p}");
    }
}

#[test]
fn days_take_every_documented_form() {
    use Weekday::*;
    let ok: [(&str, &[Weekday]); 12] = [
        ("daily", &[Mon, Tue, Wed, Thu, Fri, Sat, Sun]),
        ("weekdays", &[Mon, Tue, Wed, Thu, Fri]),
        ("weekends", &[Sat, Sun]),
        ("Weekdays", &[Mon, Tue, Wed, Thu, Fri]),
        ("mon-fri", &[Mon, Tue, Wed, Thu, Fri]),
        ("fri-mon", &[Mon, Fri, Sat, Sun]),
        ("sat-sun", &[Sat, Sun]),
        ("Tuesday-THU", &[Tue, Wed, Thu]),
        ("wed", &[Wed]),
        ("SUNDAY", &[Sun]),
        (" mon - wed ", &[Mon, Tue, Wed]),
        ("thu-thu", &[Thu]),
    ];
    for (s, want) in ok {
        let text = rule_with(&format!("at = \"09:00\"\ndays = \"{s}\"\n"));
        assert_eq!(calendar_of(&text).1, want, "{s}");
    }
    for s in [
        "",
        "everyday",
        "mon-",
        "-fri",
        "mon-fri-sat",
        "mon,wed",
        "monday-funday",
        "1-5",
    ] {
        let p = only_problem(&rule_with(&format!("at = \"09:00\"\ndays = \"{s}\"\n")));
        let start = format!("{FILE}:7:8: rule \"r\": days: {s:?} is not a ");
        assert!(
            p.starts_with(&start) && p.contains("; write ") && p.contains("mon"),
            "{s}: {p}"
        );
    }
}

#[test]
fn skip_dates_are_dates_or_inclusive_ranges() {
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date");
    let ok = [
        ("2026-12-24", ("2026-12-24", "2026-12-24")),
        ("2026-12-27..2027-01-01", ("2026-12-27", "2027-01-01")),
        ("2028-02-29", ("2028-02-29", "2028-02-29")),
        (" 2026-12-27 .. 2027-01-01 ", ("2026-12-27", "2027-01-01")),
        ("2026-12-24..2026-12-24", ("2026-12-24", "2026-12-24")),
    ];
    for (s, (first, last)) in ok {
        let c = valid(&rule_with(&format!(
            "at = \"09:00\"\nskip_dates = [\"{s}\"]\n"
        )));
        let want = DateRange {
            first: d(first),
            last: d(last),
        };
        assert_eq!(c.rules[0].skip_dates, [want], "{s}");
    }
    for s in [
        "",
        "2026-02-30",
        "2027-02-29",
        "2026-13-01",
        "24.12.2026",
        "2026-1-5",
        "2026-12-24..",
        "..2026-12-24",
        "2026-12-24...2026-12-25",
        "tomorrow",
    ] {
        let p = only_problem(&rule_with(&format!(
            "at = \"09:00\"\nskip_dates = [\"{s}\"]\n"
        )));
        let start = format!("{FILE}:7:15: rule \"r\": skip_dates: ");
        assert!(
            p.starts_with(&start) && p.contains(&format!("{s:?}")) && p.contains("\"YYYY-MM-DD\""),
            "{s}: {p}"
        );
    }
    assert_rule_problem(
        "at = \"09:00\"\nskip_dates = [\"2027-01-01..2026-12-27\"]\n",
        "7:15",
        "skip_dates: \"2027-01-01..2026-12-27\" ends before it starts; write the earlier date \
         first, e.g. \"2026-12-27..2027-01-01\"",
    );
}

#[test]
fn cron_syntax_errors_say_what_to_write() {
    let bad = [
        "",
        "   ",
        "0 9 * *",
        "0 9 * * * * *",
        "0 0 9 * * * 2026",
        "60 * * * *",
        "0 24 * * *",
        "0 0 32 * *",
        "0 0 0 * *",
        "0 0 * 13 *",
        "0 0 * 0 *",
        "0 0 * * 8",
        "0 9 * * funday",
        "0 9 * * 1-",
        "hello world foo bar baz",
        "*/0 * * * *",
        "0 9 * * 5-1",
        "61 0 9 * * *",
    ];
    for s in bad {
        let p = only_problem(&rule_with(&format!("cron = \"{s}\"\n")));
        let start = format!("{FILE}:6:8: rule \"r\": cron: {s:?} is not a valid cron expression (");
        assert!(
            p.starts_with(&start) && p.ends_with("e.g. \"0 9 * * mon-fri\""),
            "{s}: {p}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// An expiry past the year 9999 (SPEC §3).

#[test]
fn an_expire_after_past_the_year_9999_is_rejected_not_taken_as_no_expiry() {
    let expire_after = |d: &str| rule_with(&format!("at = \"09:00\"\nexpire_after = \"{d}\"\n"));
    let p = only_problem(&expire_after("100000000y"));
    let start = format!(
        "{FILE}:7:16: rule \"r\": expire_after \"100000000y\" puts the expiry past the year \
         9999; give at most \""
    );
    let end = "y\", or remove expire_after for a status that does not expire";
    assert!(p.starts_with(&start) && p.ends_with(end), "{p}");
    // The longest duration the message offers is accepted, and a year more is not.
    let years: u64 = p[start.len()..p.len() - end.len()]
        .parse()
        .unwrap_or_else(|e| panic!("{e}: {p}"));
    assert!((7000..8000).contains(&years), "{p}");
    let longest = valid(&expire_after(&format!("{years}y")));
    assert_eq!(
        longest.rules[0].expiry,
        Expiry::After(Duration::from_secs(years * 31_557_600))
    );
    let one_more = only_problem(&expire_after(&format!("{}y", years + 1)));
    assert!(one_more.contains("past the year 9999"), "{one_more}");
    // Too large even to add up is not a duration at all.
    let p = only_problem(&expire_after("100000000000000y"));
    assert!(
        p.starts_with(&format!(
            "{FILE}:7:16: rule \"r\": expire_after: \"100000000000000y\" is not a duration ("
        )),
        "{p}"
    );
}

#[test]
fn check_rejects_an_expire_after_past_the_year_9999_with_exit_1() {
    let text = rule_with("at = \"09:00\"\nexpire_after = \"100000000y\"\n");
    let (_dir, path) = common::config_folder(&text, &[]);
    let stderr = check_fails(&path);
    let located = format!(
        "{}:7:16: rule \"r\": expire_after \"100000000y\" puts the expiry past the year 9999",
        path.display()
    );
    assert!(stderr.contains(&located), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// Names with control characters, which would forge log lines.

/// A drop-in whose token and rule names carry control characters: each would start a forged
/// log line or a terminal escape if it reached a log unescaped.
const FORGING_DROP_IN: &str = "\
[tokens.\"bob\\u001b[2J\"]
token_env = \"B\"
[[rules]]
name = \"lunch\\nINFO sent target=alice ids=[1]\"
token = \"alice\"
at = \"12:00\"
status_text = \"x\"
[[rules]]
name = \"tea\"
token = \"bob\\u001b[2J\"
at = \"16:00\"
status_text = \"x\"
[[rules]]
name = \"del\\u007f\"
token = \"alice\"
at = \"17:00\"
status_text = \"x\"
";

#[test]
fn a_name_with_a_control_character_in_a_drop_in_is_a_config_error() {
    let (dir, path) = common::config_folder(MAIN, &[("forged.toml", FORGING_DROP_IN)]);
    let file = dir
        .path()
        .join("config.d/forged.toml")
        .display()
        .to_string();
    let got: Vec<String> = load(&path)
        .unwrap_err()
        .problems
        .iter()
        .map(|p| p.to_string())
        .collect();
    let rule = "rule names may not contain control characters, so remove it";
    let token = "token names may not contain control characters, so remove it";
    assert_eq!(
        got,
        [
            format!(
                "{file}:1:9: token name \"bob\\u{{1b}}[2J\" contains the control character \
                 '\\u{{1b}}'; {token}"
            ),
            format!(
                "{file}:4:8: rule name \"lunch\\nINFO sent target=alice ids=[1]\" contains the \
                 control character '\\n'; {rule}"
            ),
            format!(
                "{file}:10:9: token name \"bob\\u{{1b}}[2J\" contains the control character \
                 '\\u{{1b}}'; {token}"
            ),
            format!(
                "{file}:14:8: rule name \"del\\u{{7f}}\" contains the control character \
                 '\\u{{7f}}'; {rule}"
            ),
        ]
    );
}

#[test]
fn check_reports_control_characters_in_names_without_printing_them() {
    let (_dir, path) = common::config_folder(MAIN, &[("forged.toml", FORGING_DROP_IN)]);
    let stderr = check_fails(&path);
    assert!(
        stderr.contains("forged.toml:4:8: rule name")
            && stderr.contains("forged.toml:1:9: token name"),
        "{stderr}"
    );
    let forged: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("INFO") || l.bytes().any(|b| b.is_ascii_control()))
        .collect();
    assert!(forged.is_empty(), "forged or raw lines: {forged:?}");
}

#[test]
fn a_postgres_database_is_shown_by_scheme_and_host_with_its_password_file_and_lease() {
    let c = load_str(
        Path::new("/srv/config.toml"),
        "database = \"postgres://statusd@db.internal:5432/statusd?sslmode=verify-full\"\n\
         database_password_file = \"pg.pass\"\nlease = \"20s\"\n",
    )
    .unwrap();
    let slack_statusd::config::Database::Postgres(pg) = &c.database else {
        panic!("PostgreSQL: {:?}", c.database);
    };
    assert_eq!(c.database.to_string(), "postgres://db.internal");
    assert_eq!(format!("{:?}", c.database), "Postgres(Postgres { url: SecretUrl(postgres://db.internal), password_file: Some(\"/srv/pg.pass\"), lease: 20s })");
    assert_eq!(pg.lease, std::time::Duration::from_secs(20));
    let c = load_str(
        Path::new("/srv/config.toml"),
        "database = \"postgresql://db/q\"\n",
    )
    .unwrap();
    let slack_statusd::config::Database::Postgres(pg) = &c.database else {
        panic!("PostgreSQL");
    };
    assert_eq!(
        (pg.lease, &pg.password_file),
        (std::time::Duration::from_secs(15), &None)
    );
}
