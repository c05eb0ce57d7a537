//! The Slack Web API client. The only module that speaks HTTP or knows Slack's JSON.
//!
//! - [`classify`]: what a response means (pure).
//! - [`manual`]: whether a current status was set by hand (pure).
//! - [`wire`]: the bodies of the requests — JSON for the profile, forms for DND and presence
//!   — and `num_minutes` (pure).
//!
//! Answers are not trusted: the client follows no redirect, reads at most [`MAX_BODY`] bytes
//! of a body, and [`classify`] escapes and bounds every text it passes on.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::config::{Presence, Secret};
use crate::profile::Patch;
use crate::throttle::Method;

pub mod classify;
pub(crate) mod manual;
pub mod wire;

pub use classify::{classify, classify_part, scope, Answer, Body, Outcome, PartOutcome};
/// The header map of an [`Answer`], re-exported so callers need not name the HTTP crate.
pub use reqwest::header::HeaderMap;
pub use wire::dnd_minutes;

/// How long one request may take before it counts as a transient failure.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The most bytes of a response body the client reads. Slack's answers are a few KB; a longer
/// one is not read on (a transient error), so a hostile or broken server cannot make the
/// daemon buffer 500 MB.
pub const MAX_BODY: usize = 1 << 20;

/// A `Retry-After` longer than this is logged at warn with its length and end, so that an
/// operator sees why a token went quiet.
pub const LONG_PAUSE: Duration = Duration::from_secs(10 * 60);

/// A client for `users.profile.set` and `.get`, `dnd.setSnooze`, `dnd.endSnooze` and
/// `users.setPresence`. Every call goes through one request path: the token as a bearer
/// credential, no redirect followed, the body capped, the answer classified.
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

    /// `POST {api_url}/dnd.setSnooze` with `num_minutes = minutes` (see [`dnd_minutes`]):
    /// Do Not Disturb for the token's own user.
    pub async fn set_snooze(&self, token: &Secret, minutes: u32) -> PartOutcome {
        self.call_form(Method::DndSetSnooze, token, &wire::snooze_form(minutes))
            .await
    }

    /// `POST {api_url}/dnd.endSnooze`: end the token's own user's snooze. No snooze active
    /// is [`PartOutcome::NotActive`], which counts as done.
    pub async fn end_snooze(&self, token: &Secret) -> PartOutcome {
        self.call_form(Method::DndEndSnooze, token, &[]).await
    }

    /// `POST {api_url}/users.setPresence` with `presence`, for the token's own user.
    pub async fn set_presence(&self, token: &Secret, presence: Presence) -> PartOutcome {
        self.call_form(Method::SetPresence, token, &wire::presence_form(presence))
            .await
    }

    /// POST a JSON body to a Web API method.
    async fn call(&self, method: &str, token: &Secret, body: serde_json::Value) -> Outcome {
        let request = self.post(method, token).body(body.to_string()).header(
            reqwest::header::CONTENT_TYPE,
            "application/json; charset=utf-8",
        );
        let outcome = self
            .exchange(request, classify)
            .await
            .unwrap_or_else(Outcome::Transient);
        if let Outcome::RateLimited(Some(wait)) = &outcome {
            log_long_pause(method, *wait, Utc::now());
        }
        outcome
    }

    /// POST a form to a DND or presence method; its answer classified as a part's.
    async fn call_form(
        &self,
        method: Method,
        token: &Secret,
        form: &[(&str, String)],
    ) -> PartOutcome {
        let request = self.post(method.name(), token).form(form);
        let outcome = self
            .exchange(request, |answer| classify_part(method, answer))
            .await
            .unwrap_or_else(|e| PartOutcome::Answer(Outcome::Transient(e)));
        if let PartOutcome::Answer(Outcome::RateLimited(Some(wait))) = &outcome {
            log_long_pause(method.name(), *wait, Utc::now());
        }
        outcome
    }

    /// A POST to `method` with the token as a bearer credential.
    fn post(&self, method: &str, token: &Secret) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}/{method}", self.api_url))
            .bearer_auth(token.expose())
    }

    /// Send `request` and hand the answer, as far as it was read, to `classify`; `Err`
    /// describes a transport failure (without URL or headers).
    async fn exchange<T>(
        &self,
        request: reqwest::RequestBuilder,
        classify: impl FnOnce(&Answer<'_>) -> T,
    ) -> Result<T, String> {
        let mut response = request.send().await.map_err(|e| transport_error(&e))?;
        let received_at = Utc::now();
        let status = response.status().as_u16();
        let headers = std::mem::take(response.headers_mut());
        // A redirect is classified by its status and Location alone: its body is not read.
        let body = if response.status().is_redirection() {
            Some(Vec::new())
        } else {
            crate::http_body::read_capped(&mut response, MAX_BODY as u64)
                .await
                .map_err(|e| transport_error(&e))?
        };
        let body = match &body {
            Some(bytes) => Body::Read(bytes),
            None => Body::TooLarge,
        };
        Ok(classify(&Answer {
            status,
            headers: &headers,
            body,
            received_at,
        }))
    }
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
