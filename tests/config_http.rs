//! `[http]` (SPEC §3, §7): `listen` must be IP:PORT (an error with file:line:col), a
//! non-loopback one is a warning, unknown keys are reported as in every other table.

use std::path::Path;

use slack_statusd::config::{load_str, Config, Problem};

/// The file name every case is checked as.
const FILE: &str = "config.toml";

fn check(text: &str) -> Result<Config, Vec<String>> {
    load_str(Path::new(FILE), text).map_err(|e| e.problems.iter().map(Problem::to_string).collect())
}

#[test]
fn http_is_off_by_default_and_takes_ip_and_port() {
    let c = check("").unwrap();
    assert_eq!(c.http.listen, None);
    assert!(!c.http.token_labels);
    let c = check("[http]\nlisten = \"127.0.0.1:9464\"\ntoken_labels = true\n").unwrap();
    assert_eq!(c.http.listen, Some("127.0.0.1:9464".parse().unwrap()));
    assert!(c.http.token_labels);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let c = check("[http]\nlisten = \"[::1]:0\"\n").unwrap();
    assert_eq!(c.http.listen, Some("[::1]:0".parse().unwrap()));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn a_listen_that_is_not_ip_port_is_an_error_at_its_value() {
    for bad in [
        "localhost:9464",
        "9464",
        ":9464",
        "127.0.0.1",
        "127.0.0.1:70000",
    ] {
        let text = format!("timezone = \"UTC\"\n[http]\nlisten = \"{bad}\"\n");
        let p = check(&text).unwrap_err();
        assert_eq!(p.len(), 1, "{bad}: {p:?}");
        assert!(
            p[0].starts_with("config.toml:3:10: [http] listen") && p[0].contains("is not IP:PORT"),
            "{bad}: {}",
            p[0]
        );
    }
    let p = check("[http]\nlisten = 9464\n").unwrap_err();
    assert!(
        p[0].starts_with("config.toml:2:10: [http] listen must be a string"),
        "{p:?}"
    );
    let p = check("[http]\ntoken_labels = \"yes\"\n").unwrap_err();
    assert!(
        p[0].starts_with("config.toml:2:16: [http] token_labels"),
        "{p:?}"
    );
    let p = check("http = 1\n").unwrap_err();
    assert!(
        p[0].starts_with("config.toml:1:8: http must be a table"),
        "{p:?}"
    );
}

#[test]
fn unknown_keys_in_http_are_reported_with_the_others() {
    let p = check("[http]\nlisten = \"127.0.0.1:1\"\nport = 9464\n[limits]\nper_users = 1\n")
        .unwrap_err();
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(
        p[0].starts_with("config.toml:3:1: [http]: unknown key \"port\"")
            && p[0].contains("listen, token_labels"),
        "{}",
        p[0]
    );
    assert!(
        p[1].starts_with("config.toml:5:1: [limits]: unknown key"),
        "{}",
        p[1]
    );
}

#[test]
fn a_listen_that_is_not_loopback_is_a_located_warning() {
    for addr in ["0.0.0.0:9464", "192.0.2.1:9464", "[::]:9464"] {
        let text = format!("[http]\nlisten = \"{addr}\"\n");
        let c = check(&text).unwrap();
        assert_eq!(c.http.listen, Some(addr.parse().unwrap()));
        assert_eq!(c.warnings.len(), 1, "{addr}: {:?}", c.warnings);
        assert!(
            c.warnings[0].starts_with("config.toml:2:10: [http] listen")
                && c.warnings[0].contains("is not a loopback address"),
            "{}",
            c.warnings[0]
        );
    }
}

#[test]
fn http_belongs_in_the_main_file() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("config.toml");
    std::fs::write(&main, "").unwrap();
    std::fs::create_dir(dir.path().join("config.d")).unwrap();
    std::fs::write(
        dir.path().join("config.d/a.toml"),
        "[http]\nlisten = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    let e = slack_statusd::config::load(&main).unwrap_err().to_string();
    assert!(
        e.contains("a.toml:1:2: unknown key \"http\" in a drop-in") && e.contains("move it to"),
        "{e}"
    );
}
