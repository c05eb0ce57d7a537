//! The rule keys of SPEC §6 — `dnd`, `presence`, `restore` — and their validation by SPEC §3:
//! every problem reported at once with file:line:col, the warning for `presence = "away"`
//! without `restore`, and what a valid rule stores.

mod common;

use common::RULE_HEAD;

use std::path::Path;

use slack_statusd::config::{load_str, Config, Presence, Problem};

/// The file name every case is checked as.
const FILE: &str = "config.toml";

/// Line 6: a schedule, so that each case is about something else.
const AT: &str = "at = \"12:00\"\n";

fn check(body: &str) -> Result<Config, Vec<Problem>> {
    let text = format!("{RULE_HEAD}{AT}{body}");
    load_str(Path::new(FILE), &text).map_err(|e| e.problems)
}

fn valid(body: &str) -> Config {
    match check(body) {
        Ok(c) => c,
        Err(p) => panic!("unexpected problems: {p:#?}\nin:\n{body}"),
    }
}

#[test]
fn every_part_validation_reports_its_location_and_what_to_change() {
    #[rustfmt::skip]
    let cases: &[(&str, &str, &[&str])] = &[
        ("dnd with user",
            "user = \"U1\"\nstatus_text = \"Focus\"\nexpire_after = \"1h\"\ndnd = true\n",
            &["config.toml:10:1: rule \"r\": dnd cannot be combined with user: Slack's dnd.setSnooze and dnd.endSnooze act on the token's own user only; remove dnd, or user (restore works with user)"]),
        ("dnd = false with user",
            "user = \"U1\"\nstatus_text = \"x\"\ndnd = false\n",
            &["config.toml:9:1: rule \"r\": dnd cannot be combined with user"]),
        ("presence with user",
            "user = \"U1\"\nstatus_text = \"Out\"\nexpire_after = \"1h\"\nrestore = true\npresence = \"away\"\n",
            &["config.toml:11:1: rule \"r\": presence cannot be combined with user: Slack's users.setPresence act on the token's own user only"]),
        ("dnd = true without an expiry",
            "status_text = \"Focus\"\ndnd = true\n",
            &["config.toml:8:1: rule \"r\": dnd = true needs an expiry, the end of the snooze; add expire_after or expire_at, or use dnd = false to end a snooze"]),
        ("restore without an expiry",
            "status_text = \"Lunch\"\nrestore = true\n",
            &["config.toml:8:1: rule \"r\": restore = true needs an expiry, when to put the status back; add expire_after or expire_at, or remove restore"]),
        ("presence neither away nor auto",
            "presence = \"busy\"\n",
            &["config.toml:7:12: rule \"r\": presence is \"busy\"; use \"away\" or \"auto\""]),
        ("presence type",
            "presence = true\n",
            &["config.toml:7:12: rule \"r\": presence must be a string"]),
        ("dnd type",
            "status_text = \"x\"\nexpire_after = \"1h\"\ndnd = \"yes\"\n",
            &["config.toml:9:7: rule \"r\": dnd must be true or false"]),
        ("restore type",
            "status_text = \"x\"\nexpire_after = \"1h\"\nrestore = 1\n",
            &["config.toml:9:11: rule \"r\": restore must be true or false"]),
        ("an expiry with only presence auto still expires nothing",
            "presence = \"auto\"\nexpire_after = \"1h\"\n",
            &["config.toml:8:1: rule \"r\": expire_after without a status to expire"]),
        ("all at once, in file order",
            "user = \"U1\"\nstatus_text = \"x\"\ndnd = true\nrestore = true\npresence = \"away\"\n",
            &[
                "config.toml:9:1: rule \"r\": dnd cannot be combined with user",
                "config.toml:9:1: rule \"r\": dnd = true needs an expiry",
                "config.toml:10:1: rule \"r\": restore = true needs an expiry",
                "config.toml:11:1: rule \"r\": presence cannot be combined with user",
            ]),
    ];
    for (case, body, want) in cases {
        let got: Vec<String> = match check(body) {
            Ok(_) => Vec::new(),
            Err(p) => p.iter().map(Problem::to_string).collect(),
        };
        assert_eq!(got.len(), want.len(), "{case}: {got:#?}");
        for (g, w) in got.iter().zip(want.iter()) {
            assert!(g.starts_with(w), "{case}:\n expected {w}…\n got      {g}");
        }
    }
}

/// A valid rule body and the `dnd`, `presence` and `restore` it stores.
type Stored<'a> = (&'a str, &'a str, Option<bool>, Option<Presence>, bool);

#[test]
fn valid_rules_store_their_parts() {
    #[rustfmt::skip]
    let cases: &[Stored<'_>] = &[
        ("none: the defaults", "status_text = \"x\"\n", None, None, false),
        ("a focus block: status, DND and restore",
            "status_text = \"Focus\"\nexpire_after = \"90m\"\ndnd = true\nrestore = true\n",
            Some(true), None, true),
        ("DND alone, with its expiry", "expire_at = \"13:00\"\ndnd = true\n", Some(true), None, false),
        ("ending a snooze needs no expiry", "dnd = false\n", Some(false), None, false),
        ("a vacation that sets away and back",
            "status_text = \"Off\"\nexpire_after = \"3d\"\npresence = \"away\"\nrestore = true\n",
            None, Some(Presence::Away), true),
        ("presence auto alone", "presence = \"auto\"\n", None, Some(Presence::Auto), false),
        ("restore works with user",
            "user = \"U1\"\nstatus_text = \"Lunch\"\nexpire_after = \"1h\"\nrestore = true\n",
            None, None, true),
        ("clearing for a while and restoring",
            "clear_status = true\nexpire_after = \"30m\"\nrestore = true\n",
            None, None, true),
    ];
    for (case, body, dnd, presence, restore) in cases {
        let c = valid(body);
        let r = &c.rules[0];
        assert_eq!(
            (r.dnd, r.presence, r.restore),
            (*dnd, *presence, *restore),
            "{case}"
        );
        assert!(c.warnings.is_empty(), "{case}: {:?}", c.warnings);
    }
}

#[test]
fn presence_away_without_restore_is_a_located_warning_not_an_error() {
    let c = valid("status_text = \"Out\"\npresence = \"away\"\n");
    assert_eq!(c.rules[0].presence, Some(Presence::Away));
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(
        c.warnings[0].starts_with(
            "config.toml:8:12: rule \"r\": presence = \"away\" without restore = true stays away"
        ),
        "{}",
        c.warnings[0]
    );
}

#[test]
fn check_prints_the_warning_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    let text = format!("{RULE_HEAD}{AT}status_text = \"Out\"\npresence = \"away\"\n");
    std::fs::write(&cfg, text).unwrap();
    let out = std::process::Command::new(common::bin())
        .arg("--config")
        .arg(&cfg)
        .arg("check")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("config.toml:8:12: rule \"r\": presence = \"away\" without restore"),
        "{stderr}"
    );
}
