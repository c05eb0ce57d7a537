//! The Slack Web API client. The only module that speaks HTTP or knows Slack's JSON.
//!
//! - [`classify`]: what a response means (pure).
//! - [`manual`]: whether a current status was set by hand (pure).
//! - [`wire`]: the JSON bodies of the requests (pure).
//!
//! Answers are not trusted: the client follows no redirect, reads at most [`MAX_BODY`] bytes
//! of a body, and [`classify`] escapes and bounds every text it passes on.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::config::Secret;
use crate::profile::Patch;

pub mod classify;
pub(crate) mod manual;
pub mod wire;

pub use classify::{classify, Answer, Body, Outcome};
/// The header map of an [`Answer`], re-exported so callers need not name the HTTP crate.
pub use reqwest::header::HeaderMap;

/// How long one request may take before it counts as a transient failure.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The most bytes of a response body the client reads. Slack's answers are a few KB; a longer
/// one is not read on (a transient error), so a hostile or broken server cannot make the
/// daemon buffer 500 MB.
pub const MAX_BODY: usize = 1 << 20;

/// A `Retry-After` longer than this is logged at warn with its length and end, so that an
/// operator sees why a token went quiet.
pub const LONG_PAUSE: Duration = Duration::from_secs(10 * 60);

/// A client for `users.profile.set` and `users.profile.get`.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    api_url: String,
}

impl Client {
    /// A client for the Web API at `api_url` (e.g. `https://slack.com/api`).
    pub fn new(api_url: &str, timeout: Duration) -> Client {
        let http = reqwest::Client::builder()
            // A redirect would re-send the token's profile (and, to the same origin, the
            // token) wherever it points; `classify` turns a 3xx into a transient error.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("slack-statusd/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the TLS backend (rustls) initialises");
        Client {
            http,
            api_url: api_url.trim_end_matches('/').to_string(),
        }
    }

    /// The JSON body of a `users.profile.set` request (see [`wire::set_body`]).
    pub fn set_body(user: Option<&str>, patch: &Patch) -> serde_json::Value {
        wire::set_body(user, patch)
    }

    /// `POST {api_url}/users.profile.set` with `patch` for `user` (`None`: the token's own).
    pub async fn set_profile(&self, token: &Secret, user: Option<&str>, patch: &Patch) -> Outcome {
        self.call("users.profile.set", token, Self::set_body(user, patch))
            .await
    }

    /// `POST {api_url}/users.profile.get` for `user` (`None`: the token's own profile).
    pub async fn get_profile(&self, token: &Secret, user: Option<&str>) -> Outcome {
        self.call("users.profile.get", token, wire::get_body(user))
            .await
    }

    /// POST a JSON body to a Web API method with the token as a bearer credential.
    async fn call(&self, method: &str, token: &Secret, body: serde_json::Value) -> Outcome {
        let request = self
            .http
            .post(format!("{}/{method}", self.api_url))
            .bearer_auth(token.expose())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/json; charset=utf-8",
            )
            .body(body.to_string());
        let outcome = self.exchange(request).await;
        if let Outcome::RateLimited(Some(wait)) = &outcome {
            log_long_pause(method, *wait, Utc::now());
        }
        outcome
    }

    async fn exchange(&self, request: reqwest::RequestBuilder) -> Outcome {
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Outcome::Transient(transport_error(&e)),
        };
        let received_at = Utc::now();
        let status = response.status().as_u16();
        let headers = std::mem::take(response.headers_mut());
        // A redirect is classified by its status and Location alone: its body is not read.
        let body = if response.status().is_redirection() {
            Ok(Some(Vec::new()))
        } else {
            read_capped(&mut response, MAX_BODY).await
        };
        let body = match &body {
            Ok(Some(bytes)) => Body::Read(bytes),
            Ok(None) => Body::TooLarge,
            Err(e) => return Outcome::Transient(transport_error(e)),
        };
        classify(&Answer {
            status,
            headers: &headers,
            body,
            received_at,
        })
    }
}

/// Read a body chunk by chunk; `None` as soon as it grows past `cap` bytes. The rest is never
/// read: dropping the response closes the connection.
async fn read_capped(
    response: &mut reqwest::Response,
    cap: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    // A declared length over the cap is refused before a byte is read.
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > cap {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// Warn when Slack asks a token to wait longer than [`LONG_PAUSE`]: the wait is honoured in
/// full, and the operator should see why nothing goes out.
fn log_long_pause(method: &str, wait: Duration, now: DateTime<Utc>) {
    if wait <= LONG_PAUSE {
        return;
    }
    let until = TimeDelta::from_std(wait)
        .ok()
        .and_then(|d| now.checked_add_signed(d));
    let until = until.map_or_else(|| "the end of time".to_string(), |t| t.to_rfc3339());
    tracing::warn!(
        method,
        wait_secs = wait.as_secs(),
        until = %until,
        "Slack asked this token to pause for a long time (Retry-After); nothing is sent for it until then"
    );
}

/// Describe a transport error without its URL or headers (never the token).
fn transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connection error".into()
    } else if e.is_body() || e.is_decode() {
        "connection closed while reading the response".into()
    } else {
        "request failed (connection closed?)".into()
    }
}
