//! The DND and presence calls of the Slack client (SPEC §6) against the fake Slack over HTTP
//! on 127.0.0.1: the shape of each request (method, form fields, `Authorization`) and each
//! outcome — done, `snooze_not_active`, `missing_scope` (that part only), a dead token,
//! rate-limited by the method's own window or by Slack, transient, redirect, oversized body.

mod common;

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use common::{FakeSlack, Scripted, END_SNOOZE, PRESENCE, SNOOZE};
use slack_statusd::config::{Presence, Secret};
use slack_statusd::profile::{Patch, Status};
use slack_statusd::slack::{dnd_minutes, Client, Outcome, PartOutcome};

const TOKEN: &str = "xoxp-parts-1";

/// A fake accepting [`TOKEN`] with a long window, and a client for it.
async fn rig() -> (FakeSlack, Client, Secret) {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &[TOKEN]).await;
    let client = Client::new(&slack.api_url(), Duration::from_secs(5));
    (slack, client, Secret::new(TOKEN.into()))
}

/// The form of a request as `(key, value)` string pairs, for comparing.
fn form(r: &common::Received) -> Vec<(&str, &str)> {
    r.form
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// What a test expects of one outcome.
type Expect = Box<dyn Fn(&PartOutcome) -> bool>;

fn ok() -> PartOutcome {
    PartOutcome::Answer(Outcome::Ok {
        warning: None,
        profile: None,
    })
}

#[tokio::test]
async fn each_call_is_a_form_post_with_the_token_as_bearer_only() {
    let (slack, client, token) = rig().await;
    let expiry = Utc::now() + TimeDelta::minutes(90) - TimeDelta::seconds(10);
    let minutes = dnd_minutes(expiry, Utc::now());
    assert_eq!(minutes, 90, "90 min minus 10 s rounds up to 90");

    assert_eq!(client.set_snooze(&token, minutes).await, ok());
    assert_eq!(slack.snooze(TOKEN), Some(90));
    assert_eq!(client.set_presence(&token, Presence::Away).await, ok());
    assert_eq!(slack.presence(TOKEN).as_deref(), Some("away"));
    assert_eq!(client.end_snooze(&token).await, ok());
    assert_eq!(slack.snooze(TOKEN), None, "the snooze ended");
    assert_eq!(client.set_presence(&token, Presence::Auto).await, ok());
    assert_eq!(slack.presence(TOKEN).as_deref(), Some("auto"));

    let received = slack.received();
    let mut got: Vec<(&str, Vec<(&str, &str)>)> = Vec::new();
    for r in &received {
        assert_eq!(
            r.token, TOKEN,
            "{}: the token goes in Authorization",
            r.method
        );
        assert!(
            r.content_type
                .starts_with("application/x-www-form-urlencoded"),
            "{}: sent as {:?}",
            r.method,
            r.content_type
        );
        assert!(
            r.form
                .iter()
                .all(|(k, v)| k != "token" && !v.contains(TOKEN)),
            "{}: the token is not in the form",
            r.method
        );
        assert_eq!(r.status, 200);
        got.push((r.method, form(r)));
    }
    assert_eq!(
        got,
        vec![
            (SNOOZE, vec![("num_minutes", "90")]),
            (PRESENCE, vec![("presence", "away")]),
            (END_SNOOZE, vec![]),
            (PRESENCE, vec![("presence", "auto")]),
        ]
    );
}

#[tokio::test]
async fn ending_a_snooze_that_is_not_active_counts_as_done() {
    let (slack, client, token) = rig().await;
    let outcome = client.end_snooze(&token).await;
    assert_eq!(outcome, PartOutcome::NotActive);
    assert!(outcome.is_done());
    assert_eq!(slack.received_for(END_SNOOZE).len(), 1);
}

#[tokio::test]
async fn missing_scope_fails_that_part_only_and_leaves_the_token_usable() {
    let (slack, client, token) = rig().await;
    slack.without_scope(TOKEN, "dnd:write");
    for outcome in [
        client.set_snooze(&token, 30).await,
        client.end_snooze(&token).await,
    ] {
        let PartOutcome::MissingScope(text) = &outcome else {
            panic!("expected missing_scope, got {outcome:?}");
        };
        assert!(
            text.contains("needs the dnd:write scope") && text.contains("reinstall"),
            "{text}"
        );
        assert!(!outcome.is_done());
    }
    assert_eq!(slack.snooze(TOKEN), None);
    // The same token still sets presence and the profile: it is not dead.
    assert_eq!(client.set_presence(&token, Presence::Away).await, ok());
    let patch = Patch {
        status: Some(Status {
            text: "Focus".into(),
            emoji: ":headphones:".into(),
            expiration: 0,
        }),
        ..Patch::default()
    };
    let set = client.set_profile(&token, None, &patch).await;
    assert!(matches!(set, Outcome::Ok { .. }), "{set:?}");

    slack.without_scope(TOKEN, "users:write");
    let PartOutcome::MissingScope(text) = client.set_presence(&token, Presence::Auto).await else {
        panic!("users.setPresence without users:write is missing_scope");
    };
    assert!(
        text.contains("users.setPresence needs the users:write scope"),
        "{text}"
    );
}

#[tokio::test]
async fn a_dead_token_is_a_token_error_not_a_part_failure() {
    let (slack, client, _) = rig().await;
    let dead = Secret::new("xoxp-revoked-9".into());
    for outcome in [
        client.set_snooze(&dead, 5).await,
        client.end_snooze(&dead).await,
        client.set_presence(&dead, Presence::Away).await,
    ] {
        assert_eq!(
            outcome,
            PartOutcome::Answer(Outcome::TokenDead("invalid_auth".into()))
        );
    }
    assert_eq!(slack.received().len(), 3);
}

#[tokio::test]
async fn each_method_has_its_own_window_at_the_fake_and_a_429_carries_retry_after() {
    let (slack, client, token) = rig().await;
    slack.set_per_method(2);
    assert_eq!(client.set_snooze(&token, 10).await, ok());
    assert_eq!(client.set_snooze(&token, 20).await, ok());
    assert_eq!(
        client.set_snooze(&token, 30).await,
        PartOutcome::Answer(Outcome::RateLimited(Some(Duration::from_secs(1)))),
        "the third dnd.setSnooze in the window"
    );
    assert_eq!(
        slack.snooze(TOKEN),
        Some(20),
        "the refused call changed nothing"
    );
    // The other methods count on their own.
    assert_eq!(client.end_snooze(&token).await, ok());
    assert_eq!(client.set_presence(&token, Presence::Away).await, ok());
    assert_eq!(client.set_presence(&token, Presence::Auto).await, ok());
    assert!(matches!(
        client.set_presence(&token, Presence::Away).await,
        PartOutcome::Answer(Outcome::RateLimited(_))
    ));
    assert_eq!(slack.limit_429s(), 2);
}

#[tokio::test]
async fn scripted_answers_are_classified_like_the_profile_ones() {
    let (slack, client, token) = rig().await;
    let redirect = Scripted::raw(302, &[("location", "https://evil.example/steal?t=1")], "");
    slack.script_method(
        TOKEN,
        SNOOZE,
        vec![
            Scripted::Reply(429, Some("30".into()), String::new()),
            Scripted::Reply(
                200,
                Some("7".into()),
                r#"{"ok":false,"error":"ratelimited"}"#.into(),
            ),
            Scripted::Reply(503, None, String::new()),
            Scripted::Reply(200, None, r#"{"ok":false,"error":"snooze_failed"}"#.into()),
            redirect,
            Scripted::Stream {
                status: 200,
                len: 2 << 20,
            },
            Scripted::Reply(
                200,
                None,
                r#"{"ok":false,"error":"snooze_not_active"}"#.into(),
            ),
        ],
    );
    let wants: Vec<Expect> = vec![
        Box::new(|o| {
            *o == PartOutcome::Answer(Outcome::RateLimited(Some(Duration::from_secs(30))))
        }),
        Box::new(|o| *o == PartOutcome::Answer(Outcome::RateLimited(Some(Duration::from_secs(7))))),
        Box::new(|o| *o == PartOutcome::Answer(Outcome::Transient("HTTP 503".into()))),
        Box::new(|o| *o == PartOutcome::Answer(Outcome::Permanent("snooze_failed".into()))),
        Box::new(|o| {
            matches!(o, PartOutcome::Answer(Outcome::Transient(t))
                if t.contains("redirect to evil.example not followed") && !t.contains("steal"))
        }),
        Box::new(
            |o| matches!(o, PartOutcome::Answer(Outcome::Transient(t)) if t.contains("not read")),
        ),
        // Only dnd.endSnooze may take "no snooze active" as done.
        Box::new(|o| *o == PartOutcome::Answer(Outcome::Permanent("snooze_not_active".into()))),
    ];
    for (i, want) in wants.iter().enumerate() {
        let got = client.set_snooze(&token, 15).await;
        assert!(want(&got), "answer {i}: got {got:?}");
    }
    assert_eq!(
        slack.received_for(SNOOZE).len(),
        wants.len(),
        "one request per call: no redirect followed, no retry inside the client"
    );
    assert_eq!(slack.snooze(TOKEN), None, "no scripted answer set a snooze");
}

#[tokio::test]
async fn a_snooze_without_num_minutes_is_refused_by_the_fake() {
    // The fake reads dnd.setSnooze the way Slack's doc says: a form with num_minutes. This
    // guards the test double itself: a client sending JSON would be caught.
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &[TOKEN]).await;
    let answer: serde_json::Value = serde_json::from_str(&json_post(&slack, SNOOZE).await).unwrap();
    assert_eq!(
        answer,
        serde_json::json!({"ok": false, "error": "missing_duration"})
    );
    assert_eq!(slack.snooze(TOKEN), None);
}

/// POST `{"num_minutes": 5}` as JSON to `method` of the fake with [`TOKEN`], by hand over
/// TCP; the body of the answer.
async fn json_post(slack: &FakeSlack, method: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = r#"{"num_minutes":5}"#;
    let request = format!(
        "POST /api/{method} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        slack.addr,
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(slack.addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string()
}
