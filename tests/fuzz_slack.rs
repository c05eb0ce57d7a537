//! Slack's answers are not trusted: property tests feed the pure `classify` arbitrary
//! statuses, headers (`Retry-After`, `Date`, `Content-Type`, `Location`) and bodies — random
//! bytes, real answers carrying arbitrary text, and random mutations of real answers — and
//! it never panics and always gives an outcome whose text has no control character and is
//! bounded. Then one bounded run of the real binary against a fake answering a random
//! sequence: no panic, no control character in the log, and no row lost.
//!
//! Case counts are modest so the file runs in seconds; raise `PROPTEST_CASES` to search
//! longer. The end-to-end run prints its seed; `FUZZ_SLACK_SEED=N` repeats one.

mod common;

use std::time::{Duration, Instant};

use axum::http::{HeaderName, HeaderValue};
use chrono::{DateTime, TimeDelta, Utc};
use common::{FakeSlack, Scripted, Setup};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use slack_statusd::queue::State;
use slack_statusd::slack::classify::MAX_TEXT;
use slack_statusd::slack::{classify, Answer, Body, HeaderMap, Outcome};
use slack_statusd::throttle::parse_retry_after;

/// Real answers, as Slack's docs show them.
const REAL: &[&str] = &[
    r#"{"ok":true}"#,
    r#"{"ok":true,"profile":{"status_text":"Coffee","status_emoji":":coffee:","status_expiration":0}}"#,
    r#"{"ok":true,"warning":"superfluous_charset","response_metadata":{"warnings":["superfluous_charset"]}}"#,
    r#"{"ok":false,"error":"ratelimited"}"#,
    r#"{"ok":false,"error":"invalid_auth"}"#,
    r#"{"ok":false,"error":"internal_error"}"#,
    r#"{"ok":false,"error":"not_admin"}"#,
];

/// Room an outcome's text may take beyond Slack's own (bounded) text: "HTTP 503: " and the
/// like, or a redirect's fixed words around a bounded host.
const PREFIX_ROOM: usize = 200;

/// Statuses: anything, and often the ones that mean something.
fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        any::<u16>(),
        100u16..600,
        prop::sample::select(vec![200u16, 301, 302, 307, 308, 400, 404, 429, 500, 503]),
    ]
}

/// A header value: random bytes, arbitrary text, or something shaped like the real thing.
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        any::<String>().prop_map(String::into_bytes),
        "[0-9]{1,40}(\\.[0-9]{0,12})?".prop_map(String::into_bytes),
        "-[0-9]{1,20}".prop_map(String::into_bytes),
        (0i64..4_000_000_000).prop_map(|s| {
            let t = DateTime::from_timestamp(s, 0).unwrap();
            t.format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string()
                .into_bytes()
        }),
        (0i64..4_000_000_000).prop_map(|s| {
            let t = DateTime::from_timestamp(s, 0).unwrap();
            t.format("%A, %d-%b-%y %H:%M:%S GMT")
                .to_string()
                .into_bytes()
        }),
        "(https?://)?[a-z0-9.:@\\[\\]%-]{0,40}(/[ -~]{0,40})?".prop_map(String::into_bytes),
        Just(b"application/json; charset=utf-8".to_vec()),
        Just(b"text/html".to_vec()),
    ]
}

fn headers() -> impl Strategy<Value = Vec<(&'static str, Vec<u8>)>> {
    let name = prop::sample::select(vec!["retry-after", "date", "content-type", "location"]);
    prop::collection::vec((name, header_value()), 0..5)
}

/// A real answer with arbitrary text (control characters, any length) in its texts.
fn real_with_text() -> impl Strategy<Value = Vec<u8>> {
    let text = prop_oneof![
        any::<String>(),
        (any::<String>(), 1usize..3000).prop_map(|(s, n)| s.repeat(n)),
        "[\\x00-\\x1f\\x7f\\u{80}-\\u{9f}a-z_]{0,64}",
    ];
    (text, any::<bool>(), 0usize..3).prop_map(|(text, ok, key)| {
        let key = ["error", "warning", "needed"][key];
        serde_json::json!({"ok": ok, key: text})
            .to_string()
            .into_bytes()
    })
}

/// A real answer with random bytes flipped, inserted or removed.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let edit = (any::<prop::sample::Index>(), any::<u8>(), 0u8..3);
    (
        prop::sample::select(REAL),
        prop::collection::vec(edit, 1..8),
    )
        .prop_map(|(real, edits)| {
            let mut bytes = real.as_bytes().to_vec();
            for (at, byte, kind) in edits {
                let i = at.index(bytes.len() + 1);
                match kind {
                    0 if i < bytes.len() => bytes[i] = byte,
                    1 => bytes.insert(i, byte),
                    _ if i < bytes.len() => {
                        bytes.remove(i);
                    }
                    _ => {}
                }
            }
            bytes
        })
}

fn body() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256).prop_map(Some),
        prop::sample::select(REAL).prop_map(|r| Some(r.as_bytes().to_vec())),
        real_with_text().prop_map(Some),
        mutated().prop_map(Some),
        Just(None),
    ]
}

/// The texts an outcome carries to the log and the database.
fn texts(outcome: &Outcome) -> Vec<&str> {
    match outcome {
        Outcome::Ok { warning, .. } => warning.as_deref().into_iter().collect(),
        Outcome::RateLimited(_) => vec![],
        Outcome::Transient(t) | Outcome::TokenDead(t) | Outcome::Permanent(t) => vec![t],
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_answer_classifies_to_safe_bounded_text(
        status in status(),
        headers in headers(),
        body in body(),
        received in -100_000_000_000i64..100_000_000_000,
    ) {
        let mut map = HeaderMap::new();
        for (name, value) in &headers {
            if let Ok(v) = HeaderValue::from_bytes(value) {
                map.append(HeaderName::from_static(name), v);
            }
        }
        let received_at = DateTime::from_timestamp(received, 0).unwrap();
        let answer = Answer {
            status,
            headers: &map,
            body: body.as_deref().map_or(Body::TooLarge, Body::Read),
            received_at,
        };
        let outcome = classify(&answer);
        for text in texts(&outcome) {
            prop_assert!(!text.chars().any(char::is_control), "{text:?}");
            prop_assert!(text.len() <= MAX_TEXT + PREFIX_ROOM, "{} bytes", text.len());
        }
        if let Outcome::RateLimited(Some(wait)) = outcome {
            prop_assert!(TimeDelta::from_std(wait).is_ok(), "{wait:?} fits an instant");
        }
    }

    #[test]
    fn any_retry_after_parses_without_panic_to_a_wait_that_fits(
        value in any::<String>(),
        now in -8_000_000_000_000i64..8_000_000_000_000,
    ) {
        let now = DateTime::from_timestamp(now, 0).unwrap();
        if let Some(wait) = parse_retry_after(&value, now) {
            prop_assert!(TimeDelta::from_std(wait).is_ok());
        }
    }
}

/// One random answer of the end-to-end run. Never a token error (it would hold every row
/// and end the run early) and never a wait over a second (the run stays short).
fn random_answer(rng: &mut StdRng) -> Scripted {
    let codes = [
        "internal_error",
        "fatal_error",
        "not_admin",
        "too_long",
        "invalid_profile",
        "ratelimited",
        "something_new",
    ];
    match rng.random_range(0..10) {
        0 | 1 => Scripted::Normal,
        2 => Scripted::raw(rng.random_range(500..600), &[], text(rng)),
        3 => {
            let retry_after = match rng.random_range(0..5) {
                0 => "0".to_string(),
                1 => "1".to_string(),
                2 => "-3".to_string(),
                3 => text(rng),
                _ => (Utc::now() + TimeDelta::seconds(1))
                    .format("%a, %d %b %Y %H:%M:%S GMT")
                    .to_string(),
            };
            let body = r#"{"ok":false,"error":"ratelimited"}"#;
            Scripted::raw(429, &[("retry-after", retry_after.as_str())], body)
        }
        4 => {
            let code = if rng.random_bool(0.5) {
                codes[rng.random_range(0..codes.len())].to_string()
            } else {
                text(rng)
            };
            let body = serde_json::json!({"ok": false, "error": code}).to_string();
            Scripted::raw(200, &[], body)
        }
        5 => {
            let bytes: Vec<u8> = (0..rng.random_range(0..200))
                .map(|_| rng.random())
                .collect();
            // No 1xx: an informational answer is not final, and the request would only time
            // out, slowly.
            Scripted::raw(rng.random_range(200..600), &[], bytes)
        }
        6 => {
            let location = format!("http://127.0.0.1:1/{}", text(rng).escape_default());
            Scripted::raw(
                rng.random_range(300..400),
                &[("location", location.as_str())],
                "",
            )
        }
        7 => Scripted::Stream {
            status: 200,
            len: 2 << 20,
        },
        8 => Scripted::CloseConnection,
        _ => {
            let body = serde_json::json!({"ok": true, "warning": text(rng)}).to_string();
            Scripted::raw(200, &[], body)
        }
    }
}

/// Up to 40 characters, half of them control characters (C0, DEL, C1).
fn text(rng: &mut StdRng) -> String {
    let len = rng.random_range(0..40);
    (0..len)
        .map(|_| match rng.random_range(0..4) {
            0 => char::from(rng.random_range(0u8..0x20)),
            1 => char::from_u32(rng.random_range(0x7f..0xa0)).unwrap(),
            _ => char::from(rng.random_range(b'a'..=b'z')),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_random_sequence_of_answers_loses_no_row_and_logs_no_control_character() {
    let seed: u64 = std::env::var("FUZZ_SLACK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("FUZZ_SLACK_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let token = "xoxp-fuzz";
    // The window scaled down: retries can take the starts past 30, and the daemon then waits
    // for its own window to slide, which at Slack's minute would outlast the deadline.
    let slack = FakeSlack::start(10, 30, Duration::from_secs(3), &[token]).await;
    slack.script(token, (0..60).map(|_| random_answer(&mut rng)).collect());
    let setup = Setup::new(
        &slack,
        "[limits]\nwindow = \"3s\"\n[retry]\nmax_attempts = 3\ninitial_backoff = \"20ms\"\nmax_backoff = \"50ms\"\n\
         [tokens.fz]\ntoken_env = \"FUZZ_TOKEN\"\n",
    );
    let mut child = setup.spawn("daemon.log", &[("FUZZ_TOKEN", token)]);
    setup.wait_started("daemon.log").await;
    let ids: Vec<i64> = (0..30)
        .map(|i| {
            let user = format!("U{}", i % 6);
            setup.set(&["--token", "fz", "--user", &user, "--text", &format!("r{i}")])
        })
        .collect();

    let end = Instant::now() + Duration::from_secs(60);
    let rows = loop {
        let rows = common::rows(&setup.db()).await;
        if rows
            .iter()
            .all(|r| !matches!(r.state, State::Pending | State::InFlight))
        {
            break rows;
        }
        assert!(
            Instant::now() < end,
            "seed {seed}: rows did not settle: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    common::stop(&mut child).await;

    for id in &ids {
        assert!(
            rows.iter().any(|r| r.id == *id),
            "seed {seed}: row {id} disappeared"
        );
    }
    for r in &rows {
        let finished = [
            State::Sent,
            State::Failed,
            State::Superseded,
            State::Expired,
        ];
        assert!(finished.contains(&r.state), "seed {seed}: {r:?}");
        let error = r.last_error.as_deref().unwrap_or("");
        assert!(
            !error.chars().any(char::is_control),
            "seed {seed}: {error:?}"
        );
        assert!(error.len() <= MAX_TEXT + PREFIX_ROOM, "seed {seed}");
    }
    let log = std::fs::read_to_string(setup.path("daemon.log")).unwrap();
    assert!(
        !log.contains("panicked"),
        "seed {seed}: a task panicked:\n{log}"
    );
    for line in log.lines() {
        assert!(
            !line.chars().any(char::is_control),
            "seed {seed}: a raw control character in {line:?}"
        );
        assert!(
            line.len() <= 4096,
            "seed {seed}: a log line of {} bytes",
            line.len()
        );
    }
}
