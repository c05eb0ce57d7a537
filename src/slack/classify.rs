//! What a response from Slack means for the queue. Pure: a function of the HTTP status, the
//! `Retry-After` header and the body.

use std::time::Duration;

use crate::throttle::parse_retry_after;

/// The meaning of one `users.profile.set` (or `.get`) exchange.
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

/// Classify a response.
pub fn classify(status: u16, retry_after: Option<&str>, body: &[u8]) -> Outcome {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let error = json
        .as_ref()
        .and_then(|j| j.get("error"))
        .and_then(|e| e.as_str())
        .map(str::to_string);
    let ok = json
        .as_ref()
        .and_then(|j| j.get("ok"))
        .and_then(|v| v.as_bool());

    if status == 429 || error.as_deref() == Some("ratelimited") {
        return Outcome::RateLimited(retry_after.and_then(parse_retry_after));
    }
    if (500..600).contains(&status) {
        return Outcome::Transient(match error {
            Some(e) => format!("HTTP {status}: {e}"),
            None => format!("HTTP {status}"),
        });
    }
    let Some(json) = json else {
        return Outcome::Transient(format!("HTTP {status}: response is not JSON"));
    };
    if status == 200 && ok == Some(true) {
        let warning = json
            .get("warning")
            .and_then(|w| w.as_str())
            .map(str::to_string);
        return Outcome::Ok {
            warning,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
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
                classify(status, ra, &b),
                want,
                "{status} {ra:?} {}",
                String::from_utf8_lossy(&b)
            );
        }
    }

    #[test]
    fn warning_is_kept() {
        let b = br#"{"ok":true,"warning":"missing_charset"}"#;
        assert_eq!(
            classify(200, None, b),
            Outcome::Ok {
                warning: Some("missing_charset".into()),
                profile: None
            }
        );
    }
}
