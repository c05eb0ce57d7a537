//! The config loader never panics, whatever it is given: property tests over arbitrary
//! bytes and strings, TOML-shaped noise, and random mutations of the shipped configs. Every
//! input either loads or yields located problems, and no problem message is empty.
//!
//! Case counts are modest so the file runs in seconds; raise `PROPTEST_CASES` to search
//! longer (e.g. `PROPTEST_CASES=20000 cargo test --test fuzz_config`).

use std::path::Path;

use proptest::prelude::*;
use slack_statusd::config::{load, load_str};

const EXAMPLE: &str = include_str!("../config/example.toml");
const TEMPLATE: &str = include_str!("../config/config.toml");

/// A config that uses every kind of key, so mutations reach every check.
const RICH: &str = r#"
database = "q.db"
timezone = "Europe/Berlin"
api_url = "http://127.0.0.1:1/api"
catch_up = "6h"
retention = "30d"
log_level = "info"
skip_dates = ["2026-12-24", "2026-12-27..2027-01-01"]
[limits]
per_user = 10
per_token = 30
window = "60s"
[retry]
max_attempts = 8
initial_backoff = "1s"
max_backoff = "5m"
[tokens.alice]
token_env = "SLACK_TOKEN_ALICE"
[tokens.bob]
token_file = "bob.token"
[[rules]]
name = "morning"
token = "alice"
user = "U0123ABCD"
at = ["09:00", "13:30:15"]
days = "mon-fri"
timezone = "America/New_York"
status_text = "Coffee"
status_emoji = ":coffee:"
expire_after = "2h"
skip_dates = ["2026-11-26"]
respect_manual = true
[rules.profile]
title = "Barista"
pronouns = "they/them"
[rules.profile.fields.Xf0111111]
value = "Barista"
alt = ""
[rules.profile.fields]
Xf0333333 = [{ value = "Mocha" }, { value = "Latte" }]
[[rules]]
name = "evening"
token = "bob"
cron = "0 18 * * 1-5"
clear_status = true
[[rules]]
name = "lunch"
token = "alice"
at = "12:00"
days = ["mon", "wed"]
status_text = "Lunch"
status_emoji = ":fork_and_knife:"
expire_at = "13:00"
"#;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        // PROPTEST_CASES in the environment overrides this.
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Load `text` and check the result is well formed: no panic (proptest reports one as a
/// failure with the minimal input), and each problem has a position and a message.
fn check(text: &str) -> Result<(), TestCaseError> {
    match load_str(Path::new("fuzz.toml"), text) {
        Ok(_) => {}
        Err(e) => {
            prop_assert!(!e.problems.is_empty(), "an error with no problem");
            for p in &e.problems {
                prop_assert!(p.line >= 1 && p.col >= 1, "{p}");
                prop_assert!(!p.message.trim().is_empty(), "{p:?}");
            }
        }
    }
    Ok(())
}

/// One edit of a text, on characters (never splitting one).
#[derive(Debug, Clone)]
enum Edit {
    InsertChar(usize, char),
    DeleteChars(usize, usize),
    ReplaceChar(usize, char),
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    InsertText(usize, &'static str),
}

/// Fragments that mean something to the parser or the validator.
const FRAGMENTS: &[&str] = &[
    "[",
    "]",
    "[[rules]]",
    "[tokens.x]",
    "\"",
    "'''",
    "=",
    "\n",
    "#",
    ",",
    "{",
    "}",
    ".",
    "-",
    "..",
    ":",
    "0",
    "-1",
    "99999999999999999999",
    "1e309",
    "nan",
    "inf",
    "true",
    "\u{0}",
    "\u{feff}",
    "\u{1F600}",
    "é",
    "\\u0000",
    "\\",
    "*/0",
    "L",
    "W",
    "#5",
    "@daily",
    "24:00",
    "23:59:60",
    "2026-02-30",
    "0s",
    "1ns",
    "18446744073709551616s",
    "mon-sun",
    "sun-mon",
    "xoxp-1",
    "token = \"xoxp-2\"",
];

fn edit() -> impl Strategy<Value = Edit> {
    let ch = prop_oneof![
        any::<char>(),
        prop::sample::select(vec![
            '"', '[', ']', '=', '\n', '#', ',', '{', '}', ' ', '\''
        ]),
    ];
    prop_oneof![
        (any::<usize>(), ch.clone()).prop_map(|(i, c)| Edit::InsertChar(i, c)),
        (any::<usize>(), 1..20usize).prop_map(|(i, n)| Edit::DeleteChars(i, n)),
        (any::<usize>(), ch).prop_map(|(i, c)| Edit::ReplaceChar(i, c)),
        any::<usize>().prop_map(Edit::DeleteLine),
        any::<usize>().prop_map(Edit::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        (any::<usize>(), prop::sample::select(FRAGMENTS)).prop_map(|(i, f)| Edit::InsertText(i, f)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for e in edits {
        let n = chars.len().max(1);
        match *e {
            Edit::InsertChar(i, c) => chars.insert(i % (chars.len() + 1), c),
            Edit::DeleteChars(i, k) => {
                let start = i % n;
                let end = (start + k).min(chars.len());
                chars.drain(start.min(end)..end);
            }
            Edit::ReplaceChar(i, c) => {
                if !chars.is_empty() {
                    chars[i % n] = c;
                }
            }
            Edit::InsertText(i, f) => {
                let at = i % (chars.len() + 1);
                chars.splice(at..at, f.chars());
            }
            Edit::DeleteLine(_) | Edit::DuplicateLine(_) | Edit::SwapLines(..) => {
                let s: String = chars.iter().collect();
                let mut lines: Vec<&str> = s.split('\n').collect();
                let m = lines.len();
                match *e {
                    Edit::DeleteLine(i) => {
                        lines.remove(i % m);
                    }
                    Edit::DuplicateLine(i) => lines.insert(i % m, lines[i % m]),
                    Edit::SwapLines(a, b) => lines.swap(a % m, b % m),
                    _ => unreachable!(),
                }
                chars = lines.join("\n").chars().collect();
            }
        }
    }
    chars.into_iter().collect()
}

#[test]
fn the_seed_configs_load() {
    // The mutations start from valid files; if these stop loading, the mutation tests mostly
    // exercise the first error instead of the checks deep inside.
    for (name, text) in [("example", EXAMPLE), ("template", TEMPLATE), ("rich", RICH)] {
        if let Err(e) = load_str(Path::new("seed.toml"), text) {
            panic!("{name} does not load:\n{e}");
        }
    }
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>()) {
        check(&text)?;
    }

    #[test]
    fn toml_shaped_noise_never_panics(
        text in r#"([a-z_\[\]\.=" ,:0-9#{}*/-]|\n|'|\\|xoxp-|\[\[rules\]\]|\[tokens\.a\]|cron|at|days|status_text|expire_after|expire_at|catch_up|token){0,80}"#
    ) {
        check(&text)?;
    }

    #[test]
    fn mutations_of_example_toml_never_panic(edits in prop::collection::vec(edit(), 1..6)) {
        check(&apply(EXAMPLE, &edits))?;
    }

    #[test]
    fn mutations_of_a_config_using_every_key_never_panic(edits in prop::collection::vec(edit(), 1..6)) {
        check(&apply(RICH, &edits))?;
    }
}

proptest! {
    #![proptest_config(config(40))]

    /// Through the file loader: arbitrary bytes (invalid UTF-8 included), plus a drop-in.
    #[test]
    fn arbitrary_bytes_in_files_never_panic(
        main in prop::collection::vec(any::<u8>(), 0..400),
        drop_in in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, &main).unwrap();
        std::fs::create_dir(dir.path().join("config.d")).unwrap();
        std::fs::write(dir.path().join("config.d/x.toml"), &drop_in).unwrap();
        match load(&path) {
            Ok(_) => {}
            Err(e) => {
                prop_assert!(!e.problems.is_empty());
                for p in &e.problems {
                    prop_assert!(p.line >= 1 && p.col >= 1, "{p}");
                }
            }
        }
    }
}
