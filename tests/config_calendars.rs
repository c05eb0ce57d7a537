//! `[[calendars]]` in the config (SPEC §3 "New keys", §5): every key parsed, every bad value
//! reported at once with file:line:col, drop-ins, `url_file`, and the calendar URL a secret
//! that no `check` output or error shows beyond its scheme and host.

mod common;

use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use slack_statusd::calendar::template::Fill;
use slack_statusd::config::{
    load, load_str, Busy, CalendarSource, Config, Feed, Presence, Problem,
};

/// The file name every `load_str` case is checked as.
const FILE: &str = "config.toml";

/// The secret part of every URL in these tests; it must never be printed.
const SECRET: &str = "s3cr3t-7f9a2c";

/// Lines 1–4: a token and the start of a calendar; a case's keys start on line 5.
const HEAD: &str = "[tokens.alice]
token_env = \"SLACK_TOKEN_ALICE\"
[[calendars]]
name = \"work\"
";

fn check(text: &str) -> Result<Config, Vec<Problem>> {
    load_str(Path::new(FILE), text).map_err(|e| e.problems)
}

fn valid(text: &str) -> Config {
    match check(text) {
        Ok(c) => c,
        Err(p) => panic!("unexpected problems: {p:#?}\nin:\n{text}"),
    }
}

fn problems(text: &str) -> Vec<String> {
    match check(text) {
        Ok(_) => panic!("expected problems in:\n{text}"),
        Err(p) => p.iter().map(ToString::to_string).collect(),
    }
}

/// The SPEC §5 example, with the top-level zone it falls back to.
const SPEC_EXAMPLE: &str = r#"timezone = "America/New_York"
[tokens.alice]
token_env = "SLACK_TOKEN_ALICE"

[[calendars]]
name = "alice-work"
token = "alice"
url = "webcal://calendar.example/alice/s3cr3t-7f9a2c/basic.ics"
poll = "5m"
horizon = "14d"
email = ["Alice@Example.com"]
timezone = "Europe/Berlin"
respect_manual = true
restore = true

[[calendars.map]]
summary = "(?i)\\b(ooo|vacation|holiday)\\b"
busy = ["oof"]
all_day = true
status_text = "Out of office until {end:%a %-d %b}"
status_emoji = ":palm_tree:"
dnd = true
presence = "away"

[[calendars.map]]
busy = ["busy", "tentative"]
status_text = "{summary}"
status_emoji = ":spiral_calendar_pad:"

[[calendars]]
name = "bob-local"
token = "alice"
url = "cals/bob.ics"
[[calendars.map]]
status_emoji = ":calendar:"
"#;

#[test]
fn the_spec_example_parses_into_every_field() {
    let config = valid(SPEC_EXAMPLE);
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    let [work, local] = &config.calendars[..] else {
        panic!("two calendars: {:?}", config.calendars);
    };
    assert_eq!(work.name, "alice-work");
    assert_eq!(work.token, "alice");
    assert_eq!(work.user, None);
    let CalendarSource::Url(url) = &work.source else {
        panic!("a URL: {:?}", work.source);
    };
    // webcal:// is fetched over https; only scheme and host are shown.
    assert_eq!(
        url.expose_url(),
        "https://calendar.example/alice/s3cr3t-7f9a2c/basic.ics"
    );
    assert_eq!(url.display(), "https://calendar.example");
    assert_eq!(work.poll, Duration::from_secs(300));
    assert_eq!(work.horizon, Duration::from_secs(14 * 86_400));
    assert_eq!(work.email, ["alice@example.com"]);
    assert_eq!(work.timezone, chrono_tz::Europe::Berlin);
    assert!(work.respect_manual && work.restore);
    assert_eq!(work.map.len(), 2);
    let ooo = &work.map[0];
    assert_eq!(ooo.busy.as_deref(), Some(&[Busy::Oof][..]));
    assert_eq!(ooo.all_day, Some(true));
    assert_eq!(ooo.dnd, Some(true));
    assert_eq!(ooo.presence, Some(Presence::Away));
    assert_eq!(
        work.map[1].busy.as_deref(),
        Some(&[Busy::Busy, Busy::Tentative][..])
    );

    // The second calendar: a local file beside the config, and the defaults.
    let CalendarSource::File(path) = &local.source else {
        panic!("a file: {:?}", local.source);
    };
    assert!(
        path.is_absolute() && path.ends_with("cals/bob.ics"),
        "{path:?}"
    );
    assert_eq!(local.poll, Duration::from_secs(300));
    assert_eq!(local.horizon, Duration::from_secs(14 * 86_400));
    assert_eq!(local.timezone, chrono_tz::America::New_York);
    assert!(local.email.is_empty() && !local.restore && !local.respect_manual);
    let status = local.map[0].status.as_ref().unwrap();
    let fill = Fill {
        summary: "x",
        start: Utc::now(),
        end: Utc::now(),
        all_day: false,
    };
    assert_eq!(status.text.render(&fill, local.timezone), "");
    assert_eq!(status.emoji.render(&fill, local.timezone), ":calendar:");
}

#[test]
fn map_entries_match_by_summary_busy_and_kind_and_render_in_the_calendar_zone() {
    let config = valid(SPEC_EXAMPLE);
    let work = &config.calendars[0];
    let (ooo, busy) = (&work.map[0], &work.map[1]);
    // (summary, busy, all_day, matches the OOO entry, matches the busy entry)
    let cases = [
        ("Vacation", Busy::Oof, true, true, false),
        ("OOO: Lisbon", Busy::Oof, true, true, false),
        ("vacationing", Busy::Oof, true, false, false),
        ("Vacation", Busy::Oof, false, false, false),
        ("Vacation", Busy::Busy, true, false, true),
        ("Standup", Busy::Tentative, false, false, true),
        ("Standup", Busy::Free, false, false, false),
    ];
    for (summary, state, all_day, want_ooo, want_busy) in cases {
        assert_eq!(
            ooo.matches(summary, state, all_day),
            want_ooo,
            "{summary} {state:?} {all_day}"
        );
        assert_eq!(
            busy.matches(summary, state, all_day),
            want_busy,
            "{summary} {state:?} {all_day}"
        );
    }
    // Wed 9 Dec to Fri 11 Dec 2026 in Berlin: DTEND is Sat 12 Dec, the text says Fri.
    let berlin = chrono_tz::Europe::Berlin;
    let midnight = |d| {
        berlin
            .with_ymd_and_hms(2026, 12, d, 0, 0, 0)
            .unwrap()
            .with_timezone(&Utc)
    };
    let fill = Fill {
        summary: "Vacation",
        start: midnight(9),
        end: midnight(12),
        all_day: true,
    };
    let status = ooo.status.as_ref().unwrap();
    assert_eq!(
        status.text.render(&fill, work.timezone),
        "Out of office until Fri 11 Dec"
    );
    assert_eq!(status.emoji.render(&fill, work.timezone), ":palm_tree:");
}

#[test]
fn every_bad_calendar_value_is_reported_at_once_with_its_place() {
    // Each line of the calendar is wrong; every one is reported in one pass.
    let text = format!(
        "{HEAD}token = \"nobody\"
url = \"ftp://cal.example/{SECRET}\"
poll = \"5s\"
horizon = \"400d\"
email = [\"alice@example.com\", \"not-an-address\"]
timezone = \"Mars/Olympus\"
colour = \"red\"
[[calendars.map]]
summary = '(?i)(ooo'
busy = [\"oof\", \"away\"]
all_day = \"yes\"
status_text = \"In {{title}} until {{end:%Q}}\"
dnd = true
presence = \"invisible\"
[[calendars.map]]
busy = [\"busy\"]
"
    );
    let got = problems(&text);
    let want = [
        "config.toml:5:9: calendar \"work\": token \"nobody\" is not defined",
        "config.toml:6:7: calendar \"work\": url: the scheme ftp:// is not supported",
        "config.toml:7:8: calendar \"work\": poll is 5s; fetch at most every 10s",
        "config.toml:8:11: calendar \"work\": horizon is longer than 366d",
        "config.toml:9:31: calendar \"work\": email: \"not-an-address\" is not an address of the form local@domain",
        "config.toml:10:12: calendar \"work\": timezone: unknown time zone \"Mars/Olympus\"",
        "config.toml:11:1: calendar \"work\": unknown key \"colour\"",
        // The regex error points into the pattern, at the unclosed group.
        "config.toml:13:16: calendar \"work\": map entry #1: summary: not a valid regex: unclosed group",
        "config.toml:14:16: calendar \"work\": map entry #1: busy: unknown busy state \"away\"",
        "config.toml:15:11: calendar \"work\": map entry #1: all_day must be true or false",
        // Template problems point at the placeholder and at the format.
        "config.toml:16:19: calendar \"work\": map entry #1: status_text: unknown placeholder {title}",
        "config.toml:16:38: calendar \"work\": map entry #1: status_text: {end:…}: \"%Q\" is not a valid strftime format",
        "config.toml:18:12: calendar \"work\": map entry #1: presence: \"invisible\" is not a presence",
        "config.toml:19:1: calendar \"work\": map entry #2: sets nothing",
    ];
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (got, want) in got.iter().zip(want) {
        assert!(got.starts_with(want), "got  {got}\nwant {want}");
    }
    assert!(got.iter().all(|p| !p.contains(SECRET)), "{got:#?}");
}

#[test]
fn each_calendar_rule_of_spec_3_is_its_own_error() {
    // (case, calendar keys after name and token, map entry, line:col, phrase)
    let url = format!("url = \"https://cal.example/{SECRET}\"\n");
    let cases: Vec<(&str, String, &str, &str, &str)> = vec![
        (
            "no address",
            String::new(),
            "busy = [\"busy\"]\nstatus_text = \"x\"\n",
            "3:1",
            "has no address; add url",
        ),
        (
            "both addresses",
            format!("{url}url_file = \"cal.url\"\n"),
            "status_text = \"x\"\n",
            "7:1",
            "has both url and url_file",
        ),
        (
            "poll 0",
            format!("{url}poll = \"0s\"\n"),
            "status_text = \"x\"\n",
            "7:8",
            "poll is 0s",
        ),
        (
            "horizon 0",
            format!("{url}horizon = \"0s\"\n"),
            "status_text = \"x\"\n",
            "7:11",
            "horizon is 0",
        ),
        (
            "email without a domain",
            format!("{url}email = \"alice@\"\n"),
            "status_text = \"x\"\n",
            "7:9",
            "local@domain",
        ),
        (
            "dnd with user",
            format!("{url}user = \"U0123\"\n"),
            "status_text = \"x\"\ndnd = true\n",
            "10:1",
            "dnd acts on the token's own user only",
        ),
        (
            "presence with user",
            format!("{url}user = \"U0123\"\n"),
            "presence = \"auto\"\n",
            "9:1",
            "presence acts on the token's own user only",
        ),
        (
            "a half-cleared status",
            url.clone(),
            "status_text = \"\"\nstatus_emoji = \":x:\"\n",
            "8:15",
            "status_text is \"\" but status_emoji is not",
        ),
        (
            "an unclosed placeholder",
            url.clone(),
            "status_text = \"until {end:%H:%M\"\n",
            "8:22",
            "this { is never closed",
        ),
        (
            "{start} without a format",
            url.clone(),
            "status_emoji = \"{start}\"\n",
            "8:17",
            "{start} needs a strftime format",
        ),
        (
            "a regex error behind escapes points into the pattern",
            url.clone(),
            "summary = \"\\\\bstand\\\\b(up\"\nstatus_text = \"x\"\n",
            "8:23",
            "unclosed group",
        ),
        (
            "a status_text that is not a string",
            url.clone(),
            "status_text = 5\n",
            "8:15",
            "status_text must be a string",
        ),
    ];
    for (case, keys, map, at, phrase) in cases {
        let text = format!("{HEAD}token = \"alice\"\n{keys}[[calendars.map]]\n{map}");
        let got = problems(&text);
        assert_eq!(got.len(), 1, "{case}: {got:#?}\n{text}");
        let prefix = format!("{FILE}:{at}: ");
        assert!(
            got[0].starts_with(&prefix) && got[0].contains(phrase),
            "{case}: want {prefix}…{phrase}…, got {}",
            got[0]
        );
        assert!(!got[0].contains(SECRET), "{case}: {}", got[0]);
    }
}

#[test]
fn a_calendar_without_a_map_entry_is_an_error() {
    let text = format!("{HEAD}token = \"alice\"\nurl = \"https://cal.example/{SECRET}\"\n");
    let got = problems(&text);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(
        got[0].starts_with("config.toml:3:1: calendar \"work\": has no [[calendars.map]] entry"),
        "{}",
        got[0]
    );
    let text = format!("{}map = []\n", text);
    let got = problems(&text);
    assert!(
        got.len() == 1 && got[0].starts_with("config.toml:7:7:"),
        "{got:#?}"
    );
}

#[test]
fn plain_http_and_away_without_restore_are_warnings_not_errors() {
    let text = format!(
        "{HEAD}token = \"alice\"\nurl = \"http://127.0.0.1:8080/{SECRET}.ics\"\n\
         [[calendars.map]]\npresence = \"away\"\n"
    );
    let config = valid(&text);
    assert_eq!(config.warnings.len(), 2, "{:?}", config.warnings);
    assert!(
        config.warnings[0].starts_with(
            "config.toml:6:7: calendar \"work\": url http://127.0.0.1 is a plain http:// address"
        ),
        "{}",
        config.warnings[0]
    );
    assert!(
        config.warnings[1].starts_with("config.toml:8:12: calendar \"work\": map entry #1: presence = \"away\" without restore"),
        "{}",
        config.warnings[1]
    );
    assert!(config.warnings.iter().all(|w| !w.contains(SECRET)));
    // With restore, away is set back to auto: no warning.
    let text = text.replace("[[calendars.map]]", "restore = true\n[[calendars.map]]");
    assert_eq!(valid(&text).warnings.len(), 1);
}

/// `slack-statusd --config <path> check`, with `$CREDENTIALS_DIRECTORY` unset.
fn run_check(path: &Path) -> Output {
    std::process::Command::new(common::bin())
        .arg("--config")
        .arg(path)
        .arg("check")
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .expect("run slack-statusd check")
}

/// Both output streams of a `check`, for looking for what must not be there.
fn all_output(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const MAIN: &str = "[tokens.alice]\ntoken_env = \"A\"\n[[rules]]\nname = \"coffee\"\ntoken = \"alice\"\nat = \"09:00\"\nstatus_text = \"Coffee\"\n";

#[test]
fn calendars_live_in_drop_ins_and_share_one_set_of_names_with_rules() {
    let drop_in = format!(
        "[tokens.bob]\ntoken_env = \"B\"\n[[calendars]]\nname = \"bob-work\"\ntoken = \"bob\"\n\
         url = \"https://cal.example/{SECRET}\"\n[[calendars.map]]\nstatus_text = \"{{summary}}\"\n"
    );
    let (dir, path) = common::config_folder(MAIN, &[("bob.toml", &drop_in)]);
    let config = load(&path).unwrap();
    assert_eq!(config.calendars.len(), 1);
    assert_eq!(config.calendars[0].token, "bob");
    assert_eq!(
        config.calendars[0].file,
        dir.path().join("config.d/bob.toml")
    );
    let out = run_check(&path);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("valid (1 rules, 1 calendars, 2 tokens, 2 files)"),
        "{stdout}"
    );

    // A calendar named like a rule, and one named like an earlier calendar.
    let clash = drop_in.replace("bob-work", "coffee")
        + "[[calendars]]\nname = \"coffee\"\ntoken = \"alice\"\nurl = \"c.ics\"\n[[calendars.map]]\nstatus_text = \"x\"\n";
    let (_dir, path) = common::config_folder(MAIN, &[("bob.toml", &clash)]);
    let err = load(&path).unwrap_err().to_string();
    let bob = Path::new("config.d").join("bob.toml");
    assert_eq!(err.lines().count(), 2, "{err}");
    assert!(
        err.contains(&format!(
            "{}:4:8: calendar name \"coffee\" is already used at ",
            bob.display()
        )) && err.contains("config.toml:4:8; rules and calendars share one set of names"),
        "{err}"
    );
    assert!(
        err.contains(":10:8: calendar name \"coffee\" is already used at "),
        "{err}"
    );

    // A name with a control character, through a drop-in.
    let forged = drop_in.replace("bob-work", "bob\\u001b[2Jwork");
    let (_dir, path) = common::config_folder(MAIN, &[("bob.toml", &forged)]);
    let out = run_check(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("bob.toml:4:8: calendar name") && stderr.contains("control character"),
        "{stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
}

#[test]
fn the_secret_url_appears_in_no_check_output_or_error() {
    // A valid config with a plain-http secret address (a warning), and one with errors
    // around it: the path and query never show, the host does.
    let url = format!("http://user:{SECRET}@cal.example:8080/{SECRET}/basic.ics?token={SECRET}");
    let good = format!(
        "{MAIN}[[calendars]]\nname = \"work\"\ntoken = \"alice\"\nurl = \"{url}\"\n\
         [[calendars.map]]\nstatus_text = \"{{summary}}\"\n"
    );
    let bad = good.replace(
        "token = \"alice\"\nurl",
        "token = \"bob\"\npoll = \"1s\"\nurl",
    ) + "[[calendars.map]]\nbusy = \"x\"\n";
    let wrong_scheme = good.replace("http://", "gopher://");
    for (case, text, code) in [
        ("valid", &good, 0),
        ("invalid", &bad, 1),
        ("scheme", &wrong_scheme, 1),
    ] {
        let (_dir, path) = common::config_folder(text, &[]);
        let out = run_check(&path);
        let all = all_output(&out);
        assert_eq!(out.status.code(), Some(code), "{case}: {all}");
        assert!(!all.contains(SECRET), "{case}: {all}");
        if code == 0 {
            assert!(all.contains("http://cal.example"), "{case}: {all}");
        }
        // Nor in the loaded config's Debug form (what a log of it would print).
        if let Ok(config) = load(&path) {
            assert!(!format!("{config:?}").contains(SECRET), "{case}");
        }
    }
}

#[test]
fn url_file_is_resolved_like_token_file_and_read_by_check() {
    let text = format!(
        "{MAIN}[[calendars]]\nname = \"work\"\ntoken = \"alice\"\nurl_file = \"work.url\"\n\
         [[calendars.map]]\nstatus_text = \"{{summary}}\"\n"
    );
    let (dir, path) = common::config_folder(&text, &[]);
    let url_file = dir.path().join("work.url");
    let config = load(&path).unwrap();
    let CalendarSource::UrlFile(f) = &config.calendars[0].source else {
        panic!("{:?}", config.calendars[0].source);
    };
    assert_eq!(f.path, url_file);

    // Missing, from a shell: a warning naming the place, and check passes.
    let out = run_check(&path);
    let all = all_output(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("config.toml:11:12: calendar \"work\": url_file")
            && all.contains("no such file"),
        "{all}"
    );

    // A secret address in it: read, never shown, warned about over plain http.
    fs::write(
        &url_file,
        format!("http://cal.example/{SECRET}?k={SECRET}\n# note\n"),
    )
    .unwrap();
    let (feed, warning) = config.calendars[0].feed().unwrap();
    let Feed::Url(u) = feed else {
        panic!("{feed:?}")
    };
    assert_eq!(
        u.expose_url(),
        format!("http://cal.example/{SECRET}?k={SECRET}")
    );
    assert!(warning.is_some_and(|w| w.contains("plain http://") && !w.contains(SECRET)));
    let out = run_check(&path);
    let all = all_output(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("plain http://") && !all.contains(SECRET),
        "{all}"
    );

    // What run would refuse, check refuses with exit 1 at url_file's place: a file that
    // holds another scheme or a path, or one that is not a small regular file.
    type Setup<'a> = Box<dyn Fn() + 'a>;
    let cases: Vec<(&str, Setup<'_>, &str)> = vec![
        (
            "a scheme",
            Box::new(|| fs::write(&url_file, format!("ftp://h/{SECRET}\n")).unwrap()),
            "ftp:// is not supported",
        ),
        (
            "a path",
            Box::new(|| fs::write(&url_file, "cal.ics\n").unwrap()),
            "not a file path",
        ),
        (
            "empty",
            Box::new(|| fs::write(&url_file, "\n").unwrap()),
            "the file is empty",
        ),
        (
            "too large",
            Box::new(|| fs::write(&url_file, format!("https://h/{}\n", "x".repeat(5000))).unwrap()),
            "larger than 4096 bytes",
        ),
        (
            "a device",
            Box::new(|| {
                fs::remove_file(&url_file).unwrap();
                std::os::unix::fs::symlink("/dev/zero", &url_file).unwrap();
            }),
            "character device",
        ),
    ];
    for (case, setup, phrase) in cases {
        setup();
        let out = run_check(&path);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{case}: {stderr}");
        assert!(
            stderr.contains("config.toml:11:12: calendar \"work\": url_file")
                && stderr.contains(phrase),
            "{case}: {stderr}"
        );
        assert!(!stderr.contains(SECRET), "{case}: {stderr}");
    }
}

#[test]
fn check_fetches_nothing() {
    // An address on a port where nothing listens, and a local file that does not exist:
    // check only validates them.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let text = format!(
        "{MAIN}[[calendars]]\nname = \"remote\"\ntoken = \"alice\"\nurl = \"https://127.0.0.1:{port}/{SECRET}\"\n\
         [[calendars.map]]\nstatus_text = \"x\"\n\
         [[calendars]]\nname = \"local\"\ntoken = \"alice\"\nurl = \"missing.ics\"\n\
         [[calendars.map]]\nstatus_text = \"x\"\n"
    );
    let (_dir, path) = common::config_folder(&text, &[]);
    let out = run_check(&path);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    // No connection reached the listener.
    assert!(
        listener.accept().is_err(),
        "check connected to the calendar's server"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Edits of the SPEC example — a run of characters that mean something to TOML, regexes,
    /// templates and URLs put anywhere — never panic the loader, and every problem is inside
    /// the file with a message.
    #[test]
    fn edited_calendars_never_panic_and_every_problem_is_in_the_file(
        at in 0usize..2000,
        cut in 0usize..8,
        insert in "[\\[\\]{}()%:\"'\\\\=\\n a-z0-9@/.?*^-]{0,12}",
    ) {
        let chars: Vec<char> = SPEC_EXAMPLE.chars().collect();
        let at = at % (chars.len() + 1);
        let end = (at + cut).min(chars.len());
        let text: String = chars[..at]
            .iter()
            .copied()
            .chain(insert.chars())
            .chain(chars[end..].iter().copied())
            .collect();
        let lines = text.lines().count() + 1;
        if let Err(problems) = check(&text) {
            proptest::prop_assert!(!problems.is_empty());
            for p in &problems {
                proptest::prop_assert!(p.line >= 1 && p.line <= lines && p.col >= 1, "{p}");
                proptest::prop_assert!(!p.message.trim().is_empty(), "{p:?}");
            }
        }
    }
}
