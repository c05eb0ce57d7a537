//! The unit files in `systemd/`, checked with the tool systemd itself ships:
//! `systemd-analyze verify` on both units and `systemd-analyze security --offline=true` on the
//! system unit, whose overall exposure must stay at 1.5 or better (SPEC §4 "Operations").
//!
//! `verify` insists that every `Exec*=` binary exists, so each unit is checked as a copy in a
//! temporary folder with `/usr/bin/slack-statusd` replaced by the binary Cargo just built.
//! Without `systemd-analyze` these tests fail (they do not skip): on Debian and Ubuntu it is
//! in the `systemd` package (`apt-get install -y systemd`); no running systemd is needed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The path the units name the binary by, as a package installs it.
const INSTALLED_BINARY: &str = "/usr/bin/slack-statusd";
/// The worst `systemd-analyze security` exposure the system unit may have (issue 4).
const MAX_EXPOSURE: f64 = 1.5;
/// How long the daemon may take to drain after SIGTERM; `TimeoutStopSec=` must exceed it.
const DRAIN_SECONDS: f64 = 3.0;

fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Run `systemd-analyze` with `args`, or fail the test saying how to install it.
fn systemd_analyze(args: &[&str], extra_env: &[(&str, &Path)]) -> Output {
    let mut command = Command::new("systemd-analyze");
    command.args(args);
    for (name, value) in extra_env {
        command.env(name, value);
    }
    match command.output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "systemd-analyze is not installed, so the unit files cannot be checked. \
             On Debian/Ubuntu: apt-get install -y systemd (systemd need not be running)"
        ),
        Err(e) => panic!("cannot run systemd-analyze {args:?}: {e}"),
    }
}

/// The major version of the installed systemd; `--offline=` needs 250 or later.
fn systemd_version() -> u32 {
    let output = systemd_analyze(&["--version"], &[]);
    let text = String::from_utf8_lossy(&output.stdout);
    // First line: "systemd 252 (252.38-1~deb12u1)".
    text.split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            panic!("cannot read the version from systemd-analyze --version: {text:?}")
        })
}

/// A copy of the unit at `relative`, named like the original (the name matters: it is the
/// dynamic user's name), with the installed binary's path replaced by the one Cargo built.
fn unit_with_built_binary(relative: &str, dir: &Path) -> PathBuf {
    let source = repo_file(relative);
    let text = std::fs::read_to_string(&source)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", source.display()));
    assert!(
        text.contains(INSTALLED_BINARY),
        "{relative} does not run {INSTALLED_BINARY}"
    );
    let built = env!("CARGO_BIN_EXE_slack-statusd");
    assert!(
        !built.contains(char::is_whitespace),
        "the built binary's path {built:?} contains whitespace; use a CARGO_TARGET_DIR without"
    );
    // A '%' in a unit file starts a specifier.
    let text = text.replace(INSTALLED_BINARY, &built.replace('%', "%%"));
    let copy = dir.join(source.file_name().unwrap());
    std::fs::write(&copy, text).unwrap();
    copy
}

/// `systemd-analyze [--user] verify` on `unit`: it must exit 0 and say nothing about this
/// unit. `verify` also loads the units this one refers to (network-online.target, ...) and
/// may complain about those on a minimal system; such lines are shown but not fatal.
fn verify(unit: &Path, user: bool) {
    let runtime_dir = tempfile::tempdir().unwrap();
    let unit_arg = unit.to_str().unwrap();
    let mut args = vec![];
    if user {
        args.push("--user");
    }
    args.extend(["verify", unit_arg]);
    // A user manager needs $XDG_RUNTIME_DIR, which CI (and root shells) often lack.
    let env: &[(&str, &Path)] = if user {
        &[("XDG_RUNTIME_DIR", runtime_dir.path())]
    } else {
        &[]
    };
    let output = systemd_analyze(&args, env);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let name = unit.file_name().unwrap().to_str().unwrap();
    let ours: Vec<&str> = stderr
        .lines()
        .chain(stdout.lines())
        .filter(|l| l.contains(name) || l.contains(unit_arg))
        .collect();
    if !stderr.trim().is_empty() {
        eprintln!("systemd-analyze {args:?} said:\n{stderr}");
    }
    assert!(
        output.status.success() && ours.is_empty(),
        "systemd-analyze {args:?} failed ({}):\n{stdout}{stderr}",
        output.status
    );
}

/// The `Key=Value` lines of a unit file, in order, without comments.
fn directives(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .filter(|l| !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn values<'a>(directives: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    directives
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn one<'a>(directives: &'a [(String, String)], key: &str, unit: &str) -> &'a str {
    match values(directives, key).as_slice() {
        [v] => v,
        other => panic!("{unit}: expected one {key}=, found {other:?}"),
    }
}

/// Seconds of a systemd time span such as "15s", "1min 30s" or "90".
fn seconds(span: &str) -> f64 {
    let mut total = 0.0;
    for part in span.split_whitespace() {
        let split = part
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(part.len());
        let (number, unit) = part.split_at(split);
        let number: f64 = number
            .parse()
            .unwrap_or_else(|_| panic!("not a time span: {span:?}"));
        total += number
            * match unit {
                "" | "s" | "sec" => 1.0,
                "ms" | "msec" => 0.001,
                "m" | "min" => 60.0,
                "h" | "hr" => 3600.0,
                other => panic!("unexpected time unit {other:?} in {span:?}"),
            };
    }
    total
}

/// What the daemon relies on in either unit: readiness, reload through `check`, no restart
/// loop on an invalid config, a stop timeout longer than the drain, a watchdog.
fn assert_service_contract(relative: &str) {
    let text = std::fs::read_to_string(repo_file(relative)).unwrap();
    let d = directives(&text);
    assert_eq!(one(&d, "Type", relative), "notify", "{relative}");
    assert_eq!(one(&d, "NotifyAccess", relative), "main", "{relative}");
    assert_eq!(one(&d, "Restart", relative), "on-failure", "{relative}");
    assert_eq!(
        one(&d, "RestartPreventExitStatus", relative),
        "1",
        "{relative}"
    );
    assert!(
        seconds(one(&d, "TimeoutStopSec", relative)) > 2.0 * DRAIN_SECONDS,
        "{relative}: TimeoutStopSec= must comfortably exceed the {DRAIN_SECONDS} s drain"
    );
    assert!(
        seconds(one(&d, "WatchdogSec", relative)) >= 10.0,
        "{relative}: WatchdogSec="
    );
    assert!(!values(&d, "StateDirectory").is_empty(), "{relative}");

    // ExecStart runs `run` with a config; ExecReload checks that same config, then signals.
    let start = one(&d, "ExecStart", relative);
    let config = start
        .strip_prefix(INSTALLED_BINARY)
        .and_then(|rest| rest.trim().strip_suffix(" run"))
        .unwrap_or_else(|| panic!("{relative}: ExecStart={start}"))
        .trim();
    assert!(config.starts_with("--config "), "{relative}: {start}");
    let reload = values(&d, "ExecReload");
    assert_eq!(
        reload,
        [
            format!("{INSTALLED_BINARY} {config} check").as_str(),
            "/bin/kill -HUP $MAINPID"
        ],
        "{relative}: ExecReload= must check the config, then send SIGHUP; a failing check \
         stops the sequence and fails the reload"
    );
}

#[test]
fn system_unit_passes_systemd_analyze_verify() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_with_built_binary("systemd/slack-statusd.service", dir.path());
    verify(&unit, false);
}

#[test]
fn user_unit_passes_systemd_analyze_verify() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_with_built_binary("systemd/user/slack-statusd.service", dir.path());
    verify(&unit, true);
}

#[test]
fn system_unit_exposure_is_at_most_one_and_a_half() {
    let version = systemd_version();
    assert!(
        version >= 250,
        "systemd-analyze {version} has no `security --offline=`; install systemd 250 or later"
    );
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_with_built_binary("systemd/slack-statusd.service", dir.path());
    let output = systemd_analyze(
        &[
            "security",
            "--offline=true",
            "--no-pager",
            unit.to_str().unwrap(),
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // "→ Overall exposure level for slack-statusd.service: 1.1 OK 🙂"
    let line = stdout
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no overall exposure in:\n{stdout}{stderr}"));
    let figure: f64 = line
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the exposure from {line:?}"));
    eprintln!("{line}");
    assert!(
        figure <= MAX_EXPOSURE,
        "exposure {figure} is above {MAX_EXPOSURE}:\n{stdout}"
    );
}

#[test]
fn system_unit_keeps_the_daemon_contract() {
    assert_service_contract("systemd/slack-statusd.service");
    let text = std::fs::read_to_string(repo_file("systemd/slack-statusd.service")).unwrap();
    let d = directives(&text);
    let unit = "system unit";
    assert!(
        one(&d, "ExecStart", unit).contains("--config /etc/slack-statusd/config.toml "),
        "the system unit reads /etc/slack-statusd/config.toml"
    );
    assert_eq!(one(&d, "StateDirectory", unit), "slack-statusd");
    assert_eq!(one(&d, "ConfigurationDirectory", unit), "slack-statusd");
    assert_eq!(one(&d, "DynamicUser", unit), "yes");
    assert_eq!(
        one(&d, "RestrictAddressFamilies", unit),
        "AF_INET AF_INET6 AF_UNIX"
    );
    // The daemon must reach Slack, whose addresses change.
    assert!(values(&d, "IPAddressDeny").is_empty() && values(&d, "PrivateNetwork").is_empty());
    // Every file of the one documented folder is a credential, so a new token needs no unit
    // edit; the package creates that folder (tests/packaging.rs), as a missing one fails the
    // start.
    assert_eq!(
        values(&d, "LoadCredential"),
        [format!("{CREDENTIAL_ID}:{CREDENTIAL_FOLDER}").as_str()]
    );
}

/// The credential ID of the token folder: systemd 252 names each file in it `tokens_<file>`.
const CREDENTIAL_ID: &str = "tokens";
/// The folder whose every file the system unit loads as a credential.
const CREDENTIAL_FOLDER: &str = "/etc/slack-statusd/credentials";

/// What the README tells an admin: a file dropped into the credentials folder, named in the
/// config as `tokens_<file>`, is read by the daemon from `$CREDENTIALS_DIRECTORY`, where
/// systemd's directory `LoadCredential=` puts it under exactly that name.
#[test]
fn a_token_dropped_into_the_credentials_folder_is_found_under_its_credential_name() {
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials");
    std::fs::create_dir(&credentials).unwrap();
    // As systemd 252 lays out a directory credential: "<ID>_<file name>".
    std::fs::write(
        credentials.join(format!("{CREDENTIAL_ID}_alice.token")),
        "xoxp-not-a-real-token\n",
    )
    .unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!("[tokens.alice]\ntoken_file = \"{CREDENTIAL_ID}_alice.token\"\n"),
    )
    .unwrap();
    let check = |credentials_dir: &Path| {
        Command::new(env!("CARGO_BIN_EXE_slack-statusd"))
            .arg("--config")
            .arg(&config)
            .arg("check")
            .env("CREDENTIALS_DIRECTORY", credentials_dir)
            .output()
            .unwrap()
    };
    let found = check(&credentials);
    let stdout = String::from_utf8_lossy(&found.stdout);
    let stderr = String::from_utf8_lossy(&found.stderr);
    assert!(found.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("1 tokens"), "{stdout}");
    assert!(!stderr.contains("warning"), "{stderr}");
    // The same config with the file absent is refused: the check above really read it.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(!check(&empty).status.success());
}

#[test]
fn user_unit_keeps_the_daemon_contract() {
    assert_service_contract("systemd/user/slack-statusd.service");
    let text = std::fs::read_to_string(repo_file("systemd/user/slack-statusd.service")).unwrap();
    let d = directives(&text);
    assert!(
        one(&d, "ExecStart", "user unit").contains("--config %E/slack-statusd/config.toml "),
        "the user unit reads ~/.config/slack-statusd/config.toml"
    );
    assert_eq!(one(&d, "StateDirectory", "user unit"), "slack-statusd");
}

/// The template a package installs at /etc/slack-statusd/config.toml is valid and has no
/// active rule, so `systemctl enable --now` right after installing starts a daemon that
/// does nothing until the admin adds rules.
#[test]
fn installed_config_template_is_valid_and_inactive() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::copy(repo_file("config/config.toml"), &config).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_slack-statusd"))
        .arg("--config")
        .arg(&config)
        .arg("check")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("(0 rules, 0 tokens"), "{stdout}");
}
