//! The Slack Web API client. The only module that speaks HTTP or knows Slack's JSON.
//!
//! - [`classify`]: what a response means (pure).
//! - [`manual`]: whether a current status was set by hand (pure).

use std::time::Duration;

use crate::config::Secret;
use crate::profile::Patch;

pub mod classify;
pub mod manual;

pub use classify::{classify, Outcome};

/// How long one request may take before it counts as a transient failure.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

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

    /// The JSON body of a `users.profile.set` request.
    pub fn set_body(user: Option<&str>, patch: &Patch) -> serde_json::Value {
        let mut body = serde_json::json!({ "profile": patch.to_profile_json() });
        if let Some(u) = user {
            body["user"] = u.into();
        }
        body
    }

    /// `POST {api_url}/users.profile.set` with `patch` for `user` (`None`: the token's own).
    pub async fn set_profile(&self, token: &Secret, user: Option<&str>, patch: &Patch) -> Outcome {
        self.call("users.profile.set", token, Self::set_body(user, patch))
            .await
    }

    /// `POST {api_url}/users.profile.get` for `user` (`None`: the token's own profile).
    pub async fn get_profile(&self, token: &Secret, user: Option<&str>) -> Outcome {
        let body = match user {
            Some(u) => serde_json::json!({ "user": u }),
            None => serde_json::json!({}),
        };
        self.call("users.profile.get", token, body).await
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
        self.exchange(request).await
    }

    async fn exchange(&self, request: reqwest::RequestBuilder) -> Outcome {
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Outcome::Transient(transport_error(&e)),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        match response.bytes().await {
            Ok(body) => classify(status, retry_after.as_deref(), &body),
            Err(e) => Outcome::Transient(transport_error(&e)),
        }
    }
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
