//! The architecture, checked: a walk over `src/` that fails on what ARCHITECTURE.md forbids,
//! as rust-analyzer's `xtask/src/tidy.rs` does for its own invariants.
//!
//! - only `src/queue/` holds SQL (it alone may name `sqlx`);
//! - only `src/slack/` and `src/feed/` speak HTTP (they alone may name `reqwest`, with
//!   `src/http_body.rs`, their one capped body read), and only
//!   `src/slack/` calls `Secret::expose`;
//! - only `src/observe/` serves HTTP (it alone may name `axum`);
//! - `src/schedule/`, `src/throttle/`, `src/restore.rs` and `src/calendar/` are pure: no clock
//!   read, no sleep, no I/O.

use std::path::{Path, PathBuf};

/// One rule: code under none of `allowed` may contain `needle` (outside comments).
struct Rule {
    needle: &'static str,
    allowed: &'static [&'static str],
    why: &'static str,
}

/// Code under `within` may not contain `needle` (outside comments).
struct Forbidden {
    within: &'static [&'static str],
    needle: &'static str,
    why: &'static str,
}

const ONLY_IN: &[Rule] = &[
    Rule {
        needle: "sqlx",
        allowed: &["src/queue/"],
        why: "only the queue module contains SQL",
    },
    Rule {
        needle: "reqwest",
        allowed: &["src/slack/", "src/feed/", "src/http_body.rs"],
        why: "only the slack module (Slack's API) and feed (calendar feeds) speak HTTP, with one capped body read between them",
    },
    Rule {
        needle: "axum",
        allowed: &["src/observe/"],
        why: "only the observe module serves HTTP (/metrics, /healthz, /readyz)",
    },
    Rule {
        needle: ".expose()",
        allowed: &["src/slack/"],
        why: "only the slack module reads a token's value",
    },
];

const PURE: &[&str] = &[
    "src/schedule/",
    "src/throttle/",
    "src/restore.rs",
    "src/calendar/",
];

const NOT_IN: &[Forbidden] = &[
    Forbidden {
        within: PURE,
        needle: "::now(",
        why: "pure decisions take the instant they reason about; they read no clock",
    },
    Forbidden {
        within: PURE,
        needle: "Clock",
        why: "pure decisions read no clock",
    },
    Forbidden {
        within: PURE,
        needle: "tokio::",
        why: "pure decisions neither sleep nor do I/O",
    },
    Forbidden {
        within: PURE,
        needle: "std::fs",
        why: "pure decisions do no I/O",
    },
    Forbidden {
        within: PURE,
        needle: "std::net",
        why: "pure decisions do no I/O",
    },
];

/// The code of a line, without a trailing `//` comment (doc comments included). Good enough
/// for this tree: no string literal here contains `//` before a needle.
fn code_of(line: &str) -> &str {
    match line.find("//") {
        Some(i) => &line[..i],
        None => line,
    }
}

/// Every violation in the file at `path` (relative to the crate, `/`-separated) with `text`.
fn violations(path: &str, text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = code_of(line);
        for rule in ONLY_IN {
            if code.contains(rule.needle) && !rule.allowed.iter().any(|a| path.starts_with(a)) {
                found.push(format!(
                    "{path}:{}: `{}` outside {:?}: {}",
                    n + 1,
                    rule.needle,
                    rule.allowed,
                    rule.why
                ));
            }
        }
        for rule in NOT_IN {
            if code.contains(rule.needle) && rule.within.iter().any(|w| path.starts_with(w)) {
                found.push(format!(
                    "{path}:{}: `{}` in {path}: {}",
                    n + 1,
                    rule.needle,
                    rule.why
                ));
            }
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_source_tree_keeps_the_architecture_invariants() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    assert!(files.len() > 20, "the walk found the source files");
    let mut found = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        found.extend(violations(&rel, &std::fs::read_to_string(&file).unwrap()));
    }
    assert!(
        found.is_empty(),
        "architecture invariants broken (ARCHITECTURE.md):\n{}",
        found.join("\n")
    );
}

/// The checker itself catches each kind of violation, and leaves comments and the allowed
/// places alone.
#[test]
fn the_checker_catches_what_it_names() {
    let cases: &[(&str, &str, bool)] = &[
        ("src/daemon/mod.rs", "use sqlx::Row;", true),
        ("src/queue/mod.rs", "use sqlx::Row;", false),
        (
            "src/daemon/worker.rs",
            "let c = reqwest::Client::new();",
            true,
        ),
        ("src/slack/mod.rs", "let c = reqwest::Client::new();", false),
        ("src/daemon/mod.rs", "let app = axum::Router::new();", true),
        (
            "src/observe/http.rs",
            "let app = axum::Router::new();",
            false,
        ),
        ("src/daemon/worker.rs", "header(token.expose())", true),
        ("src/slack/mod.rs", "header(token.expose())", false),
        ("src/schedule/search.rs", "let now = Utc::now();", true),
        ("src/throttle/limiter.rs", "let t = Instant::now();", true),
        (
            "src/throttle/limiter.rs",
            "tokio::time::sleep(d).await;",
            true,
        ),
        ("src/schedule/mod.rs", "std::fs::read(p)", true),
        ("src/daemon/scheduler.rs", "let now = Utc::now();", false),
        ("src/daemon/mod.rs", "// sqlx would be wrong here", false),
        ("src/schedule/mod.rs", "/// no Utc::now() here", false),
    ];
    for &(path, line, bad) in cases {
        assert_eq!(
            !violations(path, line).is_empty(),
            bad,
            "{path}: {line:?} should {}be flagged",
            if bad { "" } else { "not " }
        );
    }
}
