//! What a response from Slack means for the queue. Pure: a function of the HTTP status, the
//! headers, the body (or the fact that it was too large to read) and the time it arrived.
//!
//! Everything in an answer is chosen by whoever answers, so nothing of it reaches an
//! [`Outcome`] raw: Slack's `error` and `warning` are [`clean`]ed (control characters
//! escaped, at most [`MAX_TEXT`] bytes), and a redirect is named by its host alone.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, DATE, LOCATION, RETRY_AFTER};

use crate::throttle::{parse_http_date, parse_retry_after, Method};
use crate::untrusted::clean;

/// The most bytes of Slack's `error` or `warning` text an [`Outcome`] carries; the rest is
/// cut with a marker. Real codes are short (`invalid_auth`); this bounds a hostile one in the
/// log and in `last_error`.
pub const MAX_TEXT: usize = 2048;

/// The body of an answer, as far as the client read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body<'a> {
    /// The whole body.
    Read(&'a [u8]),
    /// Longer than the client reads (`slack::MAX_BODY`): not read to its end.
    TooLarge,
}

/// One answer to a Web API call, as the client received it.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    /// The HTTP status code.
    pub status: u16,
    /// The response headers: `Retry-After`, `Date` and `Location` are read. `Content-Type` is
    /// not trusted either way; the body decides whether the answer is JSON.
    pub headers: &'a HeaderMap,
    /// The body.
    pub body: Body<'a>,
    /// When the answer arrived, by our clock: an HTTP-date `Retry-After` counts from the
    /// answer's own `Date` header when it has a valid one (the server's clock, so a skew
    /// between the clocks does not shorten the wait), else from this.
    pub received_at: DateTime<Utc>,
}

/// The meaning of one `users.profile.set` (or `.get`) exchange. Every text in it is safe to
/// log and to store: escaped and bounded.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// HTTP 200 with `"ok": true`.
    Ok {
        /// Slack's `warning`, if any, to log.
        warning: Option<String>,
        /// The `profile` object of the response, if any.
        profile: Option<serde_json::Value>,
    },
    /// HTTP 429, or `ratelimited` under any status: wait, then retry without spending an
    /// attempt. `None`: no usable `Retry-After`, so back off as for a transient failure.
    RateLimited(Option<Duration>),
    /// Worth retrying with backoff; the text is recorded as the row's last error.
    Transient(String),
    /// The token is unusable: fail the row and hold the token's other rows.
    TokenDead(String),
    /// This row can never succeed: fail it with Slack's code.
    Permanent(String),
}

/// The meaning of one DND or presence call: a part of a row beside its profile update, whose
/// failure is that part's alone (SPEC §6).
#[derive(Debug, Clone, PartialEq)]
pub enum PartOutcome {
    /// What [`classify`] makes of the answer, as for a profile update: done, rate-limited
    /// (pause the token), transient (retry the part), token dead (hold the token),
    /// permanent (fail the part).
    Answer(Outcome),
    /// `dnd.endSnooze` answered `snooze_not_active`: there was no snooze to end, which is
    /// what the call was for, so the part is done.
    NotActive,
    /// `missing_scope`: the token lacks this method's scope but may well set statuses, so
    /// only this part fails and the token is not held. The text says which scope to add.
    MissingScope(String),
}

impl PartOutcome {
    /// Whether the part is done: sent, or nothing was left to do.
    pub fn is_done(&self) -> bool {
        matches!(
            self,
            PartOutcome::Answer(Outcome::Ok { .. }) | PartOutcome::NotActive
        )
    }
}

/// The OAuth scope a method needs (Slack's docs, in `slack-api/`).
pub fn scope(method: Method) -> &'static str {
    match method {
        Method::ProfileSet => "users.profile:write",
        Method::ProfileGet => "users.profile:read",
        Method::DndSetSnooze | Method::DndEndSnooze => "dnd:write",
        Method::SetPresence => "users:write",
    }
}

/// Classify the answer to a DND or presence call of `method`: as [`classify`] does, except
/// that `missing_scope` fails only the part and `snooze_not_active` ends `dnd.endSnooze`.
pub fn classify_part(method: Method, answer: &Answer<'_>) -> PartOutcome {
    match classify(answer) {
        Outcome::TokenDead(code) if code == "missing_scope" => {
            let needed = scope(method);
            PartOutcome::MissingScope(format!(
                "missing_scope: {method} needs the {needed} scope; add {needed} to the Slack \
                 app's user token scopes and reinstall it (the status is not affected)"
            ))
        }
        Outcome::Permanent(code)
            if method == Method::DndEndSnooze && code == "snooze_not_active" =>
        {
            PartOutcome::NotActive
        }
        other => PartOutcome::Answer(other),
    }
}

/// Slack error codes that are worth retrying (SPEC §4).
const TRANSIENT: &[&str] = &[
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
    "profile_set_failed",
    "partial_profile_set_failed",
    "team_added_to_org",
    "org_login_required",
];

/// Slack error codes that mean the token itself is bad (SPEC §4).
const TOKEN_DEAD: &[&str] = &[
    "invalid_auth",
    "not_authed",
    "token_revoked",
    "token_expired",
    "account_inactive",
    "missing_scope",
    "not_allowed_token_type",
];

/// Classify an answer.
pub fn classify(answer: &Answer<'_>) -> Outcome {
    let status = answer.status;
    // API calls follow no redirect (SPEC §4): the profile would be re-sent to wherever the
    // redirect points, and that server's `ok: true` would mark the row sent.
    if (300..400).contains(&status) {
        return Outcome::Transient(redirect_error(status, header(answer.headers, LOCATION)));
    }
    let body = match answer.body {
        Body::Read(body) => Some(body),
        Body::TooLarge => None,
    };
    let json: Option<serde_json::Value> = body.and_then(|b| serde_json::from_slice(b).ok());
    let text = |key: &str| {
        json.as_ref()
            .and_then(|j| j.get(key))
            .and_then(|v| v.as_str())
            .map(|s| clean(s, MAX_TEXT).into_owned())
    };
    let error = text("error");
    let ok = json
        .as_ref()
        .and_then(|j| j.get("ok"))
        .and_then(|v| v.as_bool());

    if status == 429 || error.as_deref() == Some("ratelimited") {
        return Outcome::RateLimited(retry_after(answer));
    }
    if (500..600).contains(&status) {
        return Outcome::Transient(match error {
            Some(e) => format!("HTTP {status}: {e}"),
            None => format!("HTTP {status}"),
        });
    }
    if body.is_none() {
        return Outcome::Transient(format!(
            "HTTP {status}: response body over {} bytes, not read",
            super::MAX_BODY
        ));
    }
    let Some(json) = &json else {
        return Outcome::Transient(format!("HTTP {status}: response is not JSON"));
    };
    if status == 200 && ok == Some(true) {
        return Outcome::Ok {
            warning: text("warning"),
            profile: json.get("profile").cloned(),
        };
    }
    match error {
        Some(code) if TRANSIENT.contains(&code.as_str()) => Outcome::Transient(code),
        Some(code) if TOKEN_DEAD.contains(&code.as_str()) => Outcome::TokenDead(code),
        Some(code) => Outcome::Permanent(code),
        None if status == 200 => Outcome::Permanent("ok is not true and no error code".into()),
        None => Outcome::Permanent(format!("HTTP {status}")),
    }
}

/// A header's value as text, if it has one that is.
fn header(headers: &HeaderMap, name: reqwest::header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The wait a rate-limited answer asks for, counted from the answer's time.
fn retry_after(answer: &Answer<'_>) -> Option<Duration> {
    let now = header(answer.headers, DATE)
        .and_then(parse_http_date)
        .unwrap_or(answer.received_at);
    parse_retry_after(header(answer.headers, RETRY_AFTER)?, now)
}

/// The error of a 3xx: its target's host (and port) only. The full `Location` may carry a
/// secret in its path or query, so it is never shown.
fn redirect_error(status: u16, location: Option<&str>) -> String {
    let to = match location.map(reqwest::Url::parse) {
        None => "without a Location".to_string(),
        Some(Ok(url)) => match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("to {}:{port}", clean(host, 256)),
            (Some(host), None) => format!("to {}", clean(host, 256)),
            (None, _) => "to a URL without a host".to_string(),
        },
        // Not an absolute URL: a path on the API's own host.
        Some(Err(_)) => "to a path on the same host".to_string(),
    };
    format!(
        "HTTP {status}: redirect {to} not followed; API calls follow no redirect (check api_url)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    fn at() -> DateTime<Utc> {
        "2026-10-21T07:28:00Z".parse().unwrap()
    }

    /// Classify an answer with these headers and body, arrived at [`at`].
    fn classify_with(status: u16, headers: &[(&str, &str)], body: Body<'_>) -> Outcome {
        let map = header_map(headers);
        classify(&Answer {
            status,
            headers: &map,
            body,
            received_at: at(),
        })
    }

    /// A header map of text headers.
    fn header_map(headers: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    /// Classify an answer with an optional `Retry-After` and a body.
    fn classify_simple(status: u16, retry_after: Option<&str>, body: &[u8]) -> Outcome {
        let headers: Vec<(&str, &str)> = retry_after
            .map(|r| ("retry-after", r))
            .into_iter()
            .collect();
        classify_with(status, &headers, Body::Read(body))
    }

    #[test]
    fn table() {
        use serde_json::json;
        let d = |s| Some(Duration::from_secs(s));
        let cases: Vec<(u16, Option<&str>, Vec<u8>, Outcome)> = vec![
            (
                200,
                None,
                body(json!({"ok": true})),
                Outcome::Ok {
                    warning: None,
                    profile: None,
                },
            ),
            (429, Some("7"), b"".to_vec(), Outcome::RateLimited(d(7))),
            (
                429,
                None,
                body(json!({"ok": false, "error": "ratelimited"})),
                Outcome::RateLimited(None),
            ),
            (
                200,
                Some("3"),
                body(json!({"ok": false, "error": "ratelimited"})),
                Outcome::RateLimited(d(3)),
            ),
            (
                400,
                Some("bogus"),
                body(json!({"ok": false, "error": "ratelimited"})),
                Outcome::RateLimited(None),
            ),
            (
                500,
                None,
                b"oops".to_vec(),
                Outcome::Transient("HTTP 500".into()),
            ),
            (
                503,
                None,
                body(json!({"ok": false, "error": "service_unavailable"})),
                Outcome::Transient("HTTP 503: service_unavailable".into()),
            ),
            (
                200,
                None,
                b"<html>".to_vec(),
                Outcome::Transient("HTTP 200: response is not JSON".into()),
            ),
            (
                200,
                None,
                body(json!({"ok": false, "error": "internal_error"})),
                Outcome::Transient("internal_error".into()),
            ),
            (
                200,
                None,
                body(json!({"ok": false, "error": "org_login_required"})),
                Outcome::Transient("org_login_required".into()),
            ),
            (
                200,
                None,
                body(json!({"ok": false, "error": "invalid_auth"})),
                Outcome::TokenDead("invalid_auth".into()),
            ),
            (
                200,
                None,
                body(json!({"ok": false, "error": "missing_scope"})),
                Outcome::TokenDead("missing_scope".into()),
            ),
            (
                200,
                None,
                body(json!({"ok": false, "error": "not_admin"})),
                Outcome::Permanent("not_admin".into()),
            ),
            (
                200,
                None,
                body(json!({"ok": false, "error": "something_new"})),
                Outcome::Permanent("something_new".into()),
            ),
            (
                404,
                None,
                body(json!({"ok": false})),
                Outcome::Permanent("HTTP 404".into()),
            ),
        ];
        for (status, ra, b, want) in cases {
            assert_eq!(
                classify_simple(status, ra, &b),
                want,
                "{status} {ra:?} {}",
                String::from_utf8_lossy(&b)
            );
        }
    }

    #[test]
    fn part_table() {
        use serde_json::json;
        use Method::*;
        let err = |code: &str| body(json!({"ok": false, "error": code}));
        let scope_msg = |m: Method, s: &str| {
            PartOutcome::MissingScope(format!(
                "missing_scope: {m} needs the {s} scope; add {s} to the Slack app's user \
                 token scopes and reinstall it (the status is not affected)"
            ))
        };
        let ok = PartOutcome::Answer(Outcome::Ok {
            warning: None,
            profile: None,
        });
        type Case<'a> = (Method, u16, Option<&'a str>, Vec<u8>, PartOutcome);
        let a = PartOutcome::Answer;
        let secs = |n| Some(Duration::from_secs(n));
        #[rustfmt::skip]
        let cases: Vec<Case<'_>> = vec![
            (DndSetSnooze, 200, None, body(json!({"ok": true, "snooze_remaining": 60})), ok.clone()),
            (DndEndSnooze, 200, None, body(json!({"ok": true})), ok.clone()),
            (SetPresence, 200, None, body(json!({"ok": true})), ok),
            (DndEndSnooze, 200, None, err("snooze_not_active"), PartOutcome::NotActive),
            // Only ending a snooze is done when none is active.
            (DndSetSnooze, 200, None, err("snooze_not_active"), a(Outcome::Permanent("snooze_not_active".into()))),
            (DndSetSnooze, 200, None, err("missing_scope"), scope_msg(DndSetSnooze, "dnd:write")),
            (DndEndSnooze, 200, None, err("missing_scope"), scope_msg(DndEndSnooze, "dnd:write")),
            (SetPresence, 200, None, err("missing_scope"), scope_msg(SetPresence, "users:write")),
            // A dead token is still a dead token.
            (SetPresence, 200, None, err("invalid_auth"), a(Outcome::TokenDead("invalid_auth".into()))),
            (DndSetSnooze, 200, None, err("token_revoked"), a(Outcome::TokenDead("token_revoked".into()))),
            (DndSetSnooze, 429, Some("12"), b"".to_vec(), a(Outcome::RateLimited(secs(12)))),
            (DndEndSnooze, 200, Some("4"), err("ratelimited"), a(Outcome::RateLimited(secs(4)))),
            (SetPresence, 503, None, b"".to_vec(), a(Outcome::Transient("HTTP 503".into()))),
            (DndSetSnooze, 200, None, err("snooze_failed"), a(Outcome::Permanent("snooze_failed".into()))),
            (SetPresence, 200, None, err("invalid_presence"), a(Outcome::Permanent("invalid_presence".into()))),
        ];
        for (method, status, ra, b, want) in cases {
            let headers: Vec<(&str, &str)> = ra.map(|r| ("retry-after", r)).into_iter().collect();
            let map = header_map(&headers);
            let answer = Answer {
                status,
                headers: &map,
                body: Body::Read(&b),
                received_at: at(),
            };
            let got = classify_part(method, &answer);
            assert_eq!(
                got,
                want,
                "{method} {status} {}",
                String::from_utf8_lossy(&b)
            );
            assert_eq!(
                got.is_done(),
                matches!(
                    want,
                    PartOutcome::NotActive | PartOutcome::Answer(Outcome::Ok { .. })
                )
            );
        }
    }

    #[test]
    fn warning_is_kept() {
        let b = br#"{"ok":true,"warning":"missing_charset"}"#;
        assert_eq!(
            classify_simple(200, None, b),
            Outcome::Ok {
                warning: Some("missing_charset".into()),
                profile: None
            }
        );
    }

    #[test]
    fn headers_and_body_size_table() {
        let ratelimited = br#"{"ok":false,"error":"ratelimited"}"#;
        let d = |s| Outcome::RateLimited(Some(Duration::from_secs(s)));
        let redirect = |to: &str| {
            Outcome::Transient(format!(
                "HTTP 307: redirect {to} not followed; API calls follow no redirect (check api_url)"
            ))
        };
        type Case<'a> = (u16, Vec<(&'a str, &'a str)>, Body<'a>, Outcome);
        let cases: Vec<Case<'_>> = vec![
            // Retry-After over a day, and as an HTTP-date: waited in full.
            (
                429,
                vec![("retry-after", "999999")],
                Body::Read(b""),
                d(999_999),
            ),
            (
                429,
                vec![("retry-after", "Wed, 21 Oct 2026 07:28:03 GMT")],
                Body::Read(b""),
                d(3),
            ),
            // The answer's own Date is the reference for an HTTP-date.
            (
                429,
                vec![
                    ("retry-after", "Wed, 21 Oct 2026 07:28:03 GMT"),
                    ("date", "Wed, 21 Oct 2026 07:27:53 GMT"),
                ],
                Body::Read(b""),
                d(10),
            ),
            // An unusable Date falls back to the time of arrival.
            (
                429,
                vec![
                    ("retry-after", "Wed, 21 Oct 2026 07:28:03 GMT"),
                    ("date", "yesterday"),
                ],
                Body::Read(b""),
                d(3),
            ),
            (
                429,
                vec![("retry-after", "-5")],
                Body::Read(ratelimited),
                Outcome::RateLimited(None),
            ),
            // A 429 needs no body: even an unread one keeps its Retry-After.
            (429, vec![("retry-after", "7")], Body::TooLarge, d(7)),
            (
                200,
                vec![],
                Body::TooLarge,
                Outcome::Transient("HTTP 200: response body over 1048576 bytes, not read".into()),
            ),
            (
                502,
                vec![],
                Body::TooLarge,
                Outcome::Transient("HTTP 502".into()),
            ),
            // Redirects are not followed, and name the host only, never path or query.
            (
                307,
                vec![("location", "https://evil.example:8443/collect?token=xoxp-1")],
                Body::Read(br#"{"ok":true}"#),
                redirect("to evil.example:8443"),
            ),
            (
                307,
                vec![("location", "https://user:pw@evil.example/x")],
                Body::TooLarge,
                redirect("to evil.example"),
            ),
            (
                307,
                vec![("location", "/api/elsewhere?secret=1")],
                Body::Read(b""),
                redirect("to a path on the same host"),
            ),
            (307, vec![], Body::Read(b""), redirect("without a Location")),
            // Content-Type does not decide: the body does.
            (
                200,
                vec![("content-type", "text/html")],
                Body::Read(br#"{"ok":true}"#),
                Outcome::Ok {
                    warning: None,
                    profile: None,
                },
            ),
        ];
        for (status, headers, body, want) in cases {
            assert_eq!(
                classify_with(status, &headers, body),
                want,
                "{status} {headers:?} {body:?}"
            );
        }
    }

    #[test]
    fn slack_texts_are_escaped_and_bounded() {
        let forged = "not_admin\n2026-10-21T07:28:00Z INFO sent \u{1b}[2J";
        let b = body(serde_json::json!({"ok": false, "error": forged}));
        assert_eq!(
            classify_simple(200, None, &b),
            Outcome::Permanent("not_admin\\n2026-10-21T07:28:00Z INFO sent \\u{1b}[2J".into())
        );
        let huge = "e".repeat(10 << 20);
        let b = body(serde_json::json!({"ok": false, "error": huge}));
        let Outcome::Permanent(text) = classify_simple(200, None, &b) else {
            panic!("a long unknown code is permanent");
        };
        assert!(text.len() <= MAX_TEXT, "{} bytes", text.len());
        assert!(text.ends_with(&format!("[cut: {} bytes in all]", 10 << 20)));
        let b = body(serde_json::json!({"ok": false, "error": format!("x\r{huge}")}));
        let Outcome::Transient(text) = classify_simple(503, None, &b) else {
            panic!("a 503 is transient");
        };
        assert!(text.starts_with("HTTP 503: x\\r") && text.len() <= MAX_TEXT + 16);
        let b = body(serde_json::json!({"ok": true, "warning": "w\u{9b}1m"}));
        assert_eq!(
            classify_simple(200, None, &b),
            Outcome::Ok {
                warning: Some("w\\u{9b}1m".into()),
                profile: None
            }
        );
    }
}
