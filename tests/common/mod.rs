//! Test support: a fake Slack on 127.0.0.1 that enforces the profile limits and the per-method
//! (Tier 2) windows exactly and answers like the docs in `slack-api/`, and helpers to run the
//! real binary and wait for conditions.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

pub mod backends;
pub mod postgres;

/// Lines 1–5 of a config with one rule (`r`, token `alice`); a case's body starts on line 6.
pub const RULE_HEAD: &str = "[tokens.alice]
token_env = \"SLACK_TOKEN_ALICE\"
[[rules]]
name = \"r\"
token = \"alice\"
";

/// The form-encoded methods the fake serves beside the profile ones, with their URL paths.
pub const SNOOZE: &str = "dnd.setSnooze";
/// `dnd.endSnooze`.
pub const END_SNOOZE: &str = "dnd.endSnooze";
/// `users.setPresence`.
pub const PRESENCE: &str = "users.setPresence";
/// `users.profile.set`.
pub const PROFILE_SET: &str = "users.profile.set";

/// One request the fake received (`users.profile.get` is only counted, see
/// [`FakeSlack::gets`]).
#[derive(Debug, Clone)]
pub struct Received {
    /// When it arrived.
    pub at: Instant,
    /// When its answer was sent (`at` plus any hold-back).
    pub answered: Instant,
    /// The method called, e.g. `users.profile.set` or `dnd.setSnooze`.
    pub method: &'static str,
    /// The form fields of a form-encoded request, in order (empty for JSON).
    pub form: Vec<(String, String)>,
    /// The bearer token.
    pub token: String,
    /// `user` of the body, if any.
    pub user: Option<String>,
    /// `profile` of the body.
    pub profile: Value,
    /// The status code answered.
    pub status: u16,
    /// `Content-Type` header as sent.
    pub content_type: String,
}

/// A scripted answer, used instead of the normal one for the next request of a token.
#[derive(Debug, Clone)]
pub enum Scripted {
    /// Answer with this status, optional Retry-After, and body. A numeric Retry-After on a 429
    /// or on a body that says `ratelimited` blocks the token for that long (see
    /// [`FakeSlack::early_after_429`]).
    Reply(u16, Option<String>, String),
    /// Read the request, then close the connection without any response (recorded with
    /// status 0). The profile is not changed.
    CloseConnection,
    /// Wait this long, then answer as the inner script says: with a delay longer than the
    /// client's timeout, a response that comes too late.
    Delay(Duration, Box<Scripted>),
    /// The normal answer: limits enforced, profile updated. Useful inside `Delay`.
    Normal,
    /// Answer with anything: a status (100–999), raw headers (a value the HTTP library
    /// refuses is left out) and a body of any bytes and size (`Bytes` clones share it). The
    /// fake cannot read every `Retry-After` form itself, so `block_until` says until when
    /// the test means the token to wait: requests sooner count in
    /// [`FakeSlack::early_after_429`].
    Raw {
        /// The status code.
        status: u16,
        /// Header names and values, in order.
        headers: Vec<(String, Vec<u8>)>,
        /// The body.
        body: Bytes,
        /// Until when the token must now wait, if at all.
        block_until: Option<Instant>,
    },
    /// Answer `status` with a body of `len` bytes of `x` streamed in chunks, without a
    /// `Content-Length`, as a hostile server would (`u64::MAX`: a body that never ends).
    Stream {
        /// The status code.
        status: u16,
        /// The body's length.
        len: u64,
    },
}

impl Scripted {
    /// A [`Scripted::Raw`] answer with text headers.
    pub fn raw(status: u16, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Scripted {
        Scripted::Raw {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
            body: body.into(),
            block_until: None,
        }
    }

    /// The same [`Scripted::Raw`] answer, telling the fake that the token must now wait
    /// until `until`.
    pub fn blocking(self, until: Instant) -> Scripted {
        match self {
            Scripted::Raw {
                status,
                headers,
                body,
                ..
            } => Scripted::Raw {
                status,
                headers,
                body,
                block_until: Some(until),
            },
            other => other,
        }
    }
}

/// A payload that unwinds the connection's task without running the panic hook, so the
/// fake can drop a connection mid-request without a panic message in the test output.
struct ScriptedClose;

#[derive(Debug, Default)]
struct Inner {
    per_user: usize,
    per_token: usize,
    /// Calls of each Tier 2 method per token per window (Slack's 20 by default).
    per_method: usize,
    /// `users.profile.get` calls per token per window, if enforced at all.
    per_read: Option<usize>,
    window: Duration,
    valid_tokens: Vec<String>,
    /// Arrival times of accepted requests, per token and per (token, user).
    by_token: HashMap<String, VecDeque<Instant>>,
    by_target: HashMap<(String, String), VecDeque<Instant>>,
    /// Arrival times of accepted Tier 2 calls, per (token, method).
    by_method: HashMap<(String, &'static str), VecDeque<Instant>>,
    /// Arrival times of accepted reads, per token (only with `per_read`).
    reads: HashMap<String, VecDeque<Instant>>,
    /// Reads answered 429 because `per_read` was exceeded.
    read_429s: usize,
    /// The active snooze per token: `num_minutes` asked for and when it ends.
    snoozes: HashMap<String, (u32, Instant)>,
    /// The presence set per token (`away` or `auto`).
    presence: HashMap<String, String>,
    /// Scopes a token lacks: its calls of methods needing them answer `missing_scope`.
    missing_scopes: Vec<(String, &'static str)>,
    received: Vec<Received>,
    /// Current profile per (token, user).
    profiles: HashMap<(String, String), Value>,
    /// Scripted answers per (token, method).
    script: HashMap<(String, &'static str), VecDeque<Scripted>>,
    /// After a 429, when the token must wait (see [`Block`]).
    blocked_until: HashMap<String, Block>,
    early_after_429: usize,
    /// `users.profile.get` requests answered (its own limit only with `per_read`).
    gets: usize,
    /// Every normal answer is held back this long after the profile was updated, so a request
    /// stays "in flight" at the client (Slack applied it, the client has no answer yet).
    response_delay: Duration,
    /// On top of `response_delay`, a random extra of up to this much per answer: a real
    /// round trip varies.
    response_jitter: Duration,
}

impl Inner {
    /// How long to hold the next normal answer back.
    fn answer_delay(&self) -> Duration {
        let jitter = self.response_jitter.as_micros() as u64;
        let extra = if jitter == 0 {
            0
        } else {
            rand::random_range(0..=jitter)
        };
        self.response_delay + Duration::from_micros(extra)
    }
}

/// How long a token must wait after a 429: from when the answer was sent, plus [`GRACE`],
/// until `until`. A request that arrives in that span counts in
/// [`FakeSlack::early_after_429`].
#[derive(Debug, Clone, Copy)]
struct Block {
    /// The arrival of the request answered 429.
    set_at: Instant,
    /// When its answer was sent: the client cannot know of the wait before.
    from: Instant,
    /// The end of the wait.
    until: Instant,
    /// `until` counts from the arrival (a `Retry-After` in seconds), so a held-back answer
    /// moves it too; a scripted absolute instant stays.
    relative: bool,
}

/// Requests that started before a 429's answer reached the client may arrive a little after
/// it was sent: with several in flight, one is always racing the answer.
pub const GRACE: Duration = Duration::from_millis(20);

impl Inner {
    /// Tell `token` to wait `secs` from the arrival `now` (moved by the answer's delay later).
    fn block(&mut self, token: &str, now: Instant, wait: Duration) {
        self.blocked_until.insert(
            token.to_string(),
            Block {
                set_at: now,
                from: now,
                until: now + wait,
                relative: true,
            },
        );
    }
}

/// The fake Slack Web API.
#[derive(Clone)]
pub struct FakeSlack {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl FakeSlack {
    /// Start on an ephemeral port, enforcing `per_user`/`per_token` per sliding `window`,
    /// accepting the given token values.
    pub async fn start(
        per_user: usize,
        per_token: usize,
        window: Duration,
        tokens: &[&str],
    ) -> FakeSlack {
        let inner = Arc::new(Mutex::new(Inner {
            per_user,
            per_token,
            per_method: 20,
            window,
            valid_tokens: tokens.iter().map(|s| s.to_string()).collect(),
            ..Inner::default()
        }));
        let mut app = Router::new().route("/api/users.profile.get", post(get_profile));
        for method in [PROFILE_SET, SNOOZE, END_SNOOZE, PRESENCE] {
            app = app.route(&format!("/api/{method}"), served(method));
        }
        let app = app.with_state(inner.clone());
        let addr = serve_router(app).await;
        FakeSlack { addr, inner }
    }

    /// The `api_url` to put in a config.
    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    /// Queue scripted answers for the next `users.profile.set` requests of `token`.
    pub fn script(&self, token: &str, answers: Vec<Scripted>) {
        self.script_method(token, PROFILE_SET, answers);
    }

    /// Queue scripted answers for the next requests of `token` to `method` (one of
    /// [`PROFILE_SET`], [`SNOOZE`], [`END_SNOOZE`], [`PRESENCE`]).
    pub fn script_method(&self, token: &str, method: &'static str, answers: Vec<Scripted>) {
        self.inner
            .lock()
            .unwrap()
            .script
            .entry((token.into(), method))
            .or_default()
            .extend(answers);
    }

    /// Allow `n` calls of each Tier 2 method per token per window (default 20).
    pub fn set_per_method(&self, n: usize) {
        self.inner.lock().unwrap().per_method = n;
    }

    /// Enforce `n` `users.profile.get` calls per token per window (default: not enforced).
    pub fn set_per_read(&self, n: usize) {
        self.inner.lock().unwrap().per_read = Some(n);
    }

    /// Reads answered 429 because [`FakeSlack::set_per_read`]'s limit was exceeded.
    pub fn read_429s(&self) -> usize {
        self.inner.lock().unwrap().read_429s
    }

    /// Take `scope` (`dnd:write`, `users:write`) from `token`: its calls that need it
    /// answer `missing_scope`, as Slack does for an app installed without it.
    pub fn without_scope(&self, token: &str, scope: &'static str) {
        self.inner
            .lock()
            .unwrap()
            .missing_scopes
            .push((token.into(), scope));
    }

    /// Grant every scope again (undo [`FakeSlack::without_scope`]).
    pub fn missing_scopes_clear(&self) {
        self.inner.lock().unwrap().missing_scopes.clear();
    }

    /// The `num_minutes` of `token`'s active snooze, if one is active.
    pub fn snooze(&self, token: &str) -> Option<u32> {
        let g = self.inner.lock().unwrap();
        g.snoozes
            .get(token)
            .filter(|(_, end)| Instant::now() < *end)
            .map(|(minutes, _)| *minutes)
    }

    /// The presence `token` last set, if any.
    pub fn presence(&self, token: &str) -> Option<String> {
        self.inner.lock().unwrap().presence.get(token).cloned()
    }

    /// The requests received for `method`.
    pub fn received_for(&self, method: &str) -> Vec<Received> {
        let g = self.inner.lock().unwrap();
        g.received
            .iter()
            .filter(|r| r.method == method)
            .cloned()
            .collect()
    }

    /// Hold every normal answer back by `delay` after applying it (see `Inner::response_delay`).
    pub fn set_response_delay(&self, delay: Duration) {
        self.set_response_delay_range(delay, delay);
    }

    /// Hold every normal answer back by a random time between `min` and `max` (inclusive),
    /// drawn per answer: realistic round trips for the benchmark and the burst tests.
    pub fn set_response_delay_range(&self, min: Duration, max: Duration) {
        let mut g = self.inner.lock().unwrap();
        g.response_delay = min;
        g.response_jitter = max.saturating_sub(min);
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    /// The current profile of a target ("" for the token's own).
    pub fn profile(&self, token: &str, user: &str) -> Option<Value> {
        self.inner
            .lock()
            .unwrap()
            .profiles
            .get(&(token.into(), user.into()))
            .cloned()
    }

    /// Set a target's profile as its user would by hand: not a request, not counted.
    pub fn set_by_hand(&self, token: &str, user: &str, profile: Value) {
        self.inner
            .lock()
            .unwrap()
            .profiles
            .insert((token.into(), user.into()), profile);
    }

    /// How many `users.profile.get` requests it answered.
    pub fn gets(&self) -> usize {
        self.inner.lock().unwrap().gets
    }

    /// How many 429s it answered because a limit was exceeded.
    pub fn limit_429s(&self) -> usize {
        self.received().iter().filter(|r| r.status == 429).count()
    }

    /// Requests that arrived while the token was told to wait (Retry-After not respected).
    pub fn early_after_429(&self) -> usize {
        self.inner.lock().unwrap().early_after_429
    }
}

fn reply(status: u16, retry_after: Option<&str>, body: Value) -> Response {
    let mut resp = (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
    if let Some(ra) = retry_after {
        resp.headers_mut()
            .insert("retry-after", ra.parse().unwrap());
    }
    resp
}

fn prune(log: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while log
        .front()
        .is_some_and(|t| now.duration_since(*t) >= window)
    {
        log.pop_front();
    }
}

/// The route of a method the fake answers through [`serve`].
fn served(method: &'static str) -> axum::routing::MethodRouter<Arc<Mutex<Inner>>> {
    post(
        move |State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap, body: Bytes| {
            serve(inner, method, headers, body)
        },
    )
}

/// The fields of a form body (`a=1&b=x+y`), decoded; empty unless the request says it is a
/// form, as Slack reads it.
fn form_fields(content_type: &str, body: &[u8]) -> Vec<(String, String)> {
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return Vec::new();
    }
    let decode = |s: &str| {
        let s = s.replace('+', " ");
        let mut out = Vec::new();
        let bytes = s.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
                (b'%', Some(b)) => {
                    out.push(b);
                    i += 3;
                }
                (b, _) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// One request to `method`: scripted answers first, else the normal answer of a Slack that
/// enforces the limits exactly.
async fn serve(
    inner: Arc<Mutex<Inner>>,
    method: &'static str,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = Instant::now();
    let token = bearer(&headers);
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let form = form_fields(&content_type, &body);
    let parsed: Option<Value> = if method == PROFILE_SET {
        serde_json::from_slice(&body).ok()
    } else {
        None
    };
    let user = parsed
        .as_ref()
        .and_then(|b| b.get("user"))
        .and_then(|u| u.as_str())
        .map(str::to_string);
    let profile = parsed
        .as_ref()
        .and_then(|b| b.get("profile"))
        .cloned()
        .unwrap_or(Value::Null);
    let (response, delay) = {
        let mut g = inner.lock().unwrap();
        let record = |g: &mut Inner, status: u16| {
            g.received.push(Received {
                at: now,
                answered: now,
                method,
                form: form.clone(),
                token: token.clone(),
                user: user.clone(),
                profile: profile.clone(),
                status,
                content_type: content_type.clone(),
            });
        };
        if let Some(b) = g.blocked_until.get(&token) {
            if now >= b.from + GRACE && now < b.until {
                g.early_after_429 += 1;
            }
        }
        let mut action = g
            .script
            .get_mut(&(token.clone(), method))
            .and_then(|q| q.pop_front())
            .unwrap_or(Scripted::Normal);
        let mut delay = Duration::ZERO;
        while let Scripted::Delay(d, then) = action {
            delay += d;
            action = *then;
        }
        let response = match action {
            Scripted::Delay(..) => unreachable!("unwrapped above"),
            Scripted::CloseConnection => {
                record(&mut g, 0);
                None
            }
            Scripted::Reply(status, ra, body) => {
                record(&mut g, status);
                let limited = status == 429 || body.contains("ratelimited");
                let secs = ra.as_deref().and_then(|r| r.trim().parse::<f64>().ok());
                // A negative or absurd value blocks nothing (and must not panic the fake).
                if let Some(secs) = secs.filter(|s| (0.0..1e9).contains(s)) {
                    if limited {
                        g.block(&token, now, Duration::from_secs_f64(secs));
                    }
                }
                let mut resp = (StatusCode::from_u16(status).unwrap(), body).into_response();
                if let Some(ra) = ra {
                    resp.headers_mut()
                        .insert("retry-after", ra.parse().unwrap());
                }
                Some(resp)
            }
            Scripted::Raw {
                status,
                headers,
                body,
                block_until,
            } => {
                record(&mut g, status);
                if let Some(until) = block_until {
                    g.blocked_until.insert(
                        token.clone(),
                        Block {
                            set_at: now,
                            from: now,
                            until,
                            relative: false,
                        },
                    );
                }
                let mut resp = Response::new(axum::body::Body::from(body));
                *resp.status_mut() = StatusCode::from_u16(status).unwrap();
                for (name, value) in headers {
                    if let (Ok(n), Ok(v)) = (
                        axum::http::HeaderName::from_bytes(name.as_bytes()),
                        axum::http::HeaderValue::from_bytes(&value),
                    ) {
                        resp.headers_mut().append(n, v);
                    }
                }
                Some(resp)
            }
            Scripted::Stream { status, len } => {
                record(&mut g, status);
                use tokio::io::AsyncReadExt as _;
                let bytes = tokio::io::repeat(b'x').take(len);
                let stream = tokio_util::io::ReaderStream::with_capacity(bytes, 64 << 10);
                let mut resp = Response::new(axum::body::Body::from_stream(stream));
                *resp.status_mut() = StatusCode::from_u16(status).unwrap();
                Some(resp)
            }
            Scripted::Normal if method == PROFILE_SET => {
                delay += g.answer_delay();
                Some(normal_answer(
                    &mut g,
                    now,
                    &token,
                    user.clone(),
                    &profile,
                    parsed.is_some(),
                    record,
                ))
            }
            Scripted::Normal => {
                delay += g.answer_delay();
                let (status, body) = method_answer(&mut g, now, method, &token, &form);
                record(&mut g, status);
                Some(reply(status, (status == 429).then_some("1"), body))
            }
        };
        if let Some(r) = g
            .received
            .last_mut()
            .filter(|r| r.at == now && r.token == token)
        {
            r.answered = now + delay;
        }
        // A wait this request set begins when its answer leaves, not when it arrived.
        if let Some(b) = g.blocked_until.get_mut(&token) {
            if b.set_at == now {
                b.from = now + delay;
                if b.relative {
                    b.until += delay;
                }
            }
        }
        (response, delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match response {
        Some(r) => r,
        // Unwinding kills the connection's task: hyper drops the socket without an answer.
        None => std::panic::resume_unwind(Box::new(ScriptedClose)),
    }
}

/// The answer of a well-behaved Slack that enforces the limits exactly.
fn normal_answer(
    g: &mut Inner,
    now: Instant,
    token: &str,
    user: Option<String>,
    profile: &Value,
    parsed: bool,
    record: impl Fn(&mut Inner, u16),
) -> Response {
    if !g.valid_tokens.iter().any(|t| t == token) {
        record(g, 200);
        return reply(200, None, json!({"ok": false, "error": "invalid_auth"}));
    }
    if !parsed || !profile.is_object() {
        record(g, 200);
        return reply(200, None, json!({"ok": false, "error": "invalid_profile"}));
    }
    let window = g.window;
    let target = (token.to_string(), user.unwrap_or_default());
    let (per_user, per_token) = (g.per_user, g.per_token);
    let tok_log = g.by_token.entry(token.to_string()).or_default();
    prune(tok_log, now, window);
    let tok_full = tok_log.len() >= per_token;
    let user_log = g.by_target.entry(target.clone()).or_default();
    prune(user_log, now, window);
    let user_full = user_log.len() >= per_user;
    if tok_full || user_full {
        record(g, 429);
        g.block(token, now, Duration::from_secs(1));
        return reply(429, Some("1"), json!({"ok": false, "error": "ratelimited"}));
    }
    g.by_token.get_mut(token).unwrap().push_back(now);
    g.by_target.get_mut(&target).unwrap().push_back(now);
    let current = g.profiles.entry(target).or_insert_with(|| json!({}));
    if let (Some(cur), Some(new)) = (current.as_object_mut(), profile.as_object()) {
        for (k, v) in new {
            cur.insert(k.clone(), v.clone());
        }
    }
    let full = current.clone();
    record(g, 200);
    reply(200, None, json!({"ok": true, "profile": full}))
}

/// The scope a form method needs, as Slack's docs list it.
fn scope_of(method: &str) -> &'static str {
    if method == PRESENCE {
        "users:write"
    } else {
        "dnd:write"
    }
}

/// The answer of a well-behaved Slack to a DND or presence call: the token, the scope, the
/// arguments, then the method's own sliding window per token; a call that passes them all
/// changes the token's snooze or presence and counts in the window.
fn method_answer(
    g: &mut Inner,
    now: Instant,
    method: &'static str,
    token: &str,
    form: &[(String, String)],
) -> (u16, Value) {
    let fail = |code: &str| (200, json!({"ok": false, "error": code}));
    if !g.valid_tokens.iter().any(|t| t == token) {
        return fail("invalid_auth");
    }
    let scope = scope_of(method);
    if g.missing_scopes
        .iter()
        .any(|(t, s)| t == token && *s == scope)
    {
        return (
            200,
            json!({"ok": false, "error": "missing_scope", "needed": scope, "provided": "users.profile:write"}),
        );
    }
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let minutes = match method {
        SNOOZE => match field("num_minutes").map(str::parse::<u32>) {
            None => return fail("missing_duration"),
            Some(Ok(m)) if m >= 1 => Some(m),
            Some(_) => return fail("invalid_arguments"),
        },
        _ => None,
    };
    let presence = match method {
        PRESENCE => match field("presence") {
            Some(p @ ("away" | "auto")) => Some(p.to_string()),
            _ => return fail("invalid_presence"),
        },
        _ => None,
    };
    let (per_method, window) = (g.per_method, g.window);
    let log = g.by_method.entry((token.to_string(), method)).or_default();
    prune(log, now, window);
    if log.len() >= per_method {
        g.block(token, now, Duration::from_secs(1));
        return (429, json!({"ok": false, "error": "ratelimited"}));
    }
    // Every call past the arguments counts, even one that finds no snooze to end.
    log.push_back(now);
    let active = g.snoozes.get(token).is_some_and(|(_, end)| now < *end);
    if method == END_SNOOZE && !active {
        return fail("snooze_not_active");
    }
    if let Some(m) = minutes {
        let end = now + Duration::from_secs(u64::from(m) * 60);
        g.snoozes.insert(token.to_string(), (m, end));
        return (
            200,
            json!({"ok": true, "snooze_enabled": true, "snooze_remaining": u64::from(m) * 60}),
        );
    }
    if let Some(p) = presence {
        g.presence.insert(token.to_string(), p);
        return (200, json!({"ok": true}));
    }
    g.snoozes.remove(token);
    (200, json!({"ok": true, "snooze_enabled": false}))
}

/// Serve `app` on a free port of 127.0.0.1 for the rest of the test; its address.
pub async fn serve_router(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// [`wait_until`] for a condition that needs no `.await`.
pub async fn wait_for(what: &str, deadline: Duration, mut cond: impl FnMut() -> bool) {
    wait_until(what, deadline, || std::future::ready(cond())).await
}

/// The built binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_slack-statusd"))
}

/// Start `slack-statusd --config <config> run` with `envs`, stderr captured to `log`.
pub fn spawn_daemon(config: &Path, log: &Path, envs: &[(&str, &str)]) -> Child {
    let log_file = std::fs::File::create(log).unwrap();
    let mut cmd = Command::new(bin());
    cmd.arg("--config")
        .arg(config)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(log_file);
    cmd.env_remove("RUST_LOG");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Send a signal to a child.
pub fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Stop a daemon with SIGTERM and assert that it exits 0 within 10 s.
pub async fn stop(child: &mut Child) {
    signal(child, "TERM");
    assert_eq!(
        wait_exit(child, Duration::from_secs(10)).await,
        Some(0),
        "clean exit on SIGTERM"
    );
}

/// Wait for a child to exit within `deadline`; returns its exit code. A child still running
/// at the deadline is killed, so a failed test leaves no daemon behind.
pub async fn wait_exit(child: &mut Child, deadline: Duration) -> Option<i32> {
    let exited = tokio::time::timeout(
        deadline,
        wait_until("the process to exit", Duration::MAX, || {
            std::future::ready(child.try_wait().unwrap())
        }),
    )
    .await;
    match exited {
        Ok(status) => status.code(),
        Err(_) => {
            let _ = child.kill();
            panic!("process did not exit within {deadline:?}");
        }
    }
}

/// `users.profile.get`: the current profile of the target (`{}` if never set).
async fn get_profile(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = bearer(&headers);
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let user = parsed
        .get("user")
        .and_then(|u| u.as_str())
        .unwrap_or("")
        .to_string();
    let mut g = inner.lock().unwrap();
    g.gets += 1;
    if !g.valid_tokens.contains(&token) {
        return reply(200, None, json!({"ok": false, "error": "invalid_auth"}));
    }
    if let Some(per_read) = g.per_read {
        let now = Instant::now();
        let window = g.window;
        let log = g.reads.entry(token.clone()).or_default();
        prune(log, now, window);
        if log.len() >= per_read {
            g.read_429s += 1;
            return reply(429, Some("1"), json!({"ok": false, "error": "ratelimited"}));
        }
        log.push_back(now);
    }
    let profile = g
        .profiles
        .get(&(token, user))
        .cloned()
        .unwrap_or_else(|| json!({}));
    reply(200, None, json!({"ok": true, "profile": profile}))
}

/// A worker for the token named `name`, whose value is `value`, sending to `slack` through
/// a client with `timeout`. The caller runs or steps it.
pub async fn slack_worker(
    name: &str,
    value: &str,
    slack: &FakeSlack,
    queue: &slack_statusd::queue::Queue,
    limits: slack_statusd::config::Limits,
    retry: slack_statusd::config::RetryPolicy,
    timeout: Duration,
) -> slack_statusd::daemon::Worker {
    let clock = slack_statusd::clock::Clock::system();
    slack_worker_on(name, value, slack, queue, limits, retry, timeout, clock).await
}

/// [`slack_worker`] reading the time from `clock` (a test clock that can jump ahead).
#[allow(clippy::too_many_arguments)]
pub async fn slack_worker_on(
    name: &str,
    value: &str,
    slack: &FakeSlack,
    queue: &slack_statusd::queue::Queue,
    limits: slack_statusd::config::Limits,
    retry: slack_statusd::config::RetryPolicy,
    timeout: Duration,
    clock: slack_statusd::clock::Clock,
) -> slack_statusd::daemon::Worker {
    use slack_statusd::daemon::Sender;
    let sender = Sender::Slack {
        client: slack_statusd::slack::Client::new(&slack.api_url(), timeout),
        token: slack_statusd::config::Secret::new(value.into()),
    };
    slack_statusd::daemon::Worker::new(name.into(), sender, queue.clone(), clock, limits, retry)
        .await
        .unwrap()
}

/// An update that sets only a status (`text`, `emoji`, no expiry) on `user` of `token`,
/// firing at `at`, from no rule.
pub fn status_update(
    token: &str,
    user: Option<&str>,
    text: &str,
    emoji: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> slack_statusd::queue::NewUpdate {
    use slack_statusd::profile::{Patch, Status};
    slack_statusd::queue::NewUpdate {
        rule: None,
        target: slack_statusd::queue::Target {
            token: token.into(),
            user: user.map(str::to_string),
        },
        fire_at: at,
        patch: Patch {
            status: Some(Status {
                text: text.into(),
                emoji: emoji.into(),
                expiration: 0,
            }),
            ..Patch::default()
        },
        respect_manual: false,
        restore: false,
    }
}

/// Every row of the queue database at `db`, newest first, read by a connection of its own
/// (as `slack-statusd queue list` would).
pub async fn rows(db: &Path) -> Vec<slack_statusd::queue::Update> {
    let q = slack_statusd::queue::Queue::open(db, false).await.unwrap();
    let rows = q.list(&[]).await.unwrap();
    q.close().await;
    rows
}

/// Whether the daemon's log file contains `needle`.
pub fn log_has(log: &Path, needle: &str) -> bool {
    std::fs::read_to_string(log).is_ok_and(|s| s.contains(needle))
}

/// A temporary folder holding a config that points at a fake Slack and keeps its queue in
/// `queue.db` beside it: what every end-to-end test of the real binary starts from.
pub struct Setup {
    /// The folder; deleted when the setup is dropped.
    pub dir: tempfile::TempDir,
    /// `config.toml` in it.
    pub cfg: PathBuf,
}

impl Setup {
    /// Write `config.toml` with `database = "queue.db"`, the fake's `api_url`, then `body`.
    pub fn new(slack: &FakeSlack, body: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config.toml");
        let setup = Setup { dir, cfg };
        setup.write_config(&setup.config_text(slack, body));
        setup
    }

    /// The config text [`Setup::new`] writes for `body`.
    pub fn config_text(&self, slack: &FakeSlack, body: &str) -> String {
        format!(
            "database = \"queue.db\"\napi_url = {:?}\n{body}",
            slack.api_url()
        )
    }

    /// Replace the config the way editors do: write a temporary file, rename it over.
    pub fn write_config(&self, text: &str) {
        replace_file(&self.cfg, text);
    }

    /// The queue database.
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("queue.db")
    }

    /// A file in the folder (a log, a token file, ...).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Start `run` with stderr in the file `log`.
    pub fn spawn(&self, log: &str, envs: &[(&str, &str)]) -> Child {
        spawn_daemon(&self.cfg, &self.path(log), envs)
    }

    /// Run the binary with `--config` and `args`; returns its output.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(bin())
            .arg("--config")
            .arg(&self.cfg)
            .args(args)
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    }

    /// `slack-statusd set --token me --text TEXT --expire EXPIRE --restore`: a temporary
    /// status for the token named `me`; its row id.
    pub fn set_temporary(&self, text: &str, expire: &str) -> i64 {
        self.set(&[
            "--token",
            "me",
            "--text",
            text,
            "--expire",
            expire,
            "--restore",
        ])
    }

    /// Every restore row of the queue (`slack-statusd set --restore`, `restore = true`).
    pub async fn restore_rows(&self) -> Vec<slack_statusd::queue::Update> {
        rows(&self.db())
            .await
            .into_iter()
            .filter(slack_statusd::queue::Update::is_restore)
            .collect()
    }

    /// `slack-statusd set` with `args`; asserts success and returns the printed row id.
    pub fn set(&self, args: &[&str]) -> i64 {
        let mut full = vec!["set"];
        full.extend_from_slice(args);
        let out = self.cli(&full);
        assert!(
            out.status.success(),
            "set: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("set prints the row id")
    }

    /// Wait until the daemon logging to `log` has started.
    pub async fn wait_started(&self, log: &str) {
        let log = self.path(log);
        wait_for("daemon started", Duration::from_secs(10), || {
            log_has(&log, "started")
        })
        .await;
    }
}

/// Write `main` as `config.toml` in a fresh folder, with `drop_ins` (name, text) in its
/// `config.d/`; the folder and the config's path.
pub fn config_folder(main: &str, drop_ins: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, main).unwrap();
    if !drop_ins.is_empty() {
        std::fs::create_dir(dir.path().join("config.d")).unwrap();
    }
    for (name, text) in drop_ins {
        std::fs::write(dir.path().join("config.d").join(name), text).unwrap();
    }
    (dir, path)
}

/// Replace `path` the way editors do: write a temporary file, rename it over the original.
pub fn replace_file(path: &Path, text: &str) {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The bearer token of a request ("" if none).
fn bearer(headers: &HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_string()
}

/// What a condition polled by [`wait_until`] answers: done, with a value, or not yet, with
/// what it saw (for the timeout message; may be empty).
pub trait Check {
    /// The value [`wait_until`] returns once the condition holds.
    type Output;
    /// `Ok` once the condition holds, else `Err` with what it saw.
    fn check(self) -> Result<Self::Output, String>;
}

impl Check for bool {
    type Output = ();
    fn check(self) -> Result<(), String> {
        if self {
            Ok(())
        } else {
            Err(String::new())
        }
    }
}

impl<T> Check for Option<T> {
    type Output = T;
    fn check(self) -> Result<T, String> {
        self.ok_or_else(String::new)
    }
}

impl<T> Check for Result<T, String> {
    type Output = T;
    fn check(self) -> Result<T, String> {
        self
    }
}

/// How often [`wait_until`] asks again: often enough that a test waits little past the
/// moment its condition holds, seldom enough that polling a database costs nothing.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// Ask the async condition `cond` every [`POLL_EVERY`] until it holds (`true`, `Some(v)` or
/// `Ok(v)`; see [`Check`]) and return its value; panic naming `what`, and what the last try
/// saw, once `deadline` has passed. The condition is asked once more at the deadline, so a
/// slow condition still gets its last chance.
///
/// The deadline is on tokio's clock: under `tokio::time::pause` it counts paused time, so a
/// paused-time test can bound how much simulated time something took.
///
/// ```ignore
/// wait_until("three rows", Duration::from_secs(10), || async { rows(&db).await.len() == 3 }).await;
/// ```
pub async fn wait_until<F, Fut>(
    what: &str,
    deadline: Duration,
    mut cond: F,
) -> <Fut::Output as Check>::Output
where
    F: FnMut() -> Fut,
    Fut: std::future::Future,
    Fut::Output: Check,
{
    let end = tokio::time::Instant::now().checked_add(deadline);
    loop {
        let last = match cond().await.check() {
            Ok(v) => return v,
            Err(seen) => seen,
        };
        let now = tokio::time::Instant::now();
        if end.is_some_and(|end| now >= end) {
            let seen = if last.is_empty() {
                String::new()
            } else {
                format!("; last saw: {last}")
            };
            panic!("timed out after {deadline:?} waiting for: {what}{seen}");
        }
        let next = now + POLL_EVERY;
        tokio::time::sleep_until(end.map_or(next, |end| next.min(end))).await;
    }
}

/// A worker for token "a" (value "xoxp-a", the one the fake accepts) over a fresh SQLite
/// queue, on a test clock that starts at a whole second and jumps ahead on demand: for
/// tests of what happens at a status's end without waiting for it.
pub struct ClockRig {
    /// Holds the database; deleted when the rig is dropped.
    pub _dir: tempfile::TempDir,
    /// The queue.
    pub queue: slack_statusd::queue::Queue,
    /// The fake Slack.
    pub slack: FakeSlack,
    /// The worker, stepped by [`ClockRig::drain`].
    pub worker: slack_statusd::daemon::Worker,
    /// The worker's clock.
    pub clock: slack_statusd::clock::Clock,
    /// Where the clock started.
    pub start: chrono::DateTime<chrono::Utc>,
}

impl ClockRig {
    /// A new rig.
    pub async fn new() -> ClockRig {
        use chrono::{DateTime, Utc};
        let dir = tempfile::tempdir().unwrap();
        let queue = slack_statusd::queue::Queue::open(&dir.path().join("q.db"), true)
            .await
            .unwrap();
        let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &["xoxp-a"]).await;
        // A whole second, as a rule's firing is: a restore is due at its status's expiry,
        // which Slack counts in seconds.
        let start = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
        let clock = slack_statusd::clock::Clock::test(start);
        let worker = slack_worker_on(
            "a",
            "xoxp-a",
            &slack,
            &queue,
            slack_statusd::config::Limits::default(),
            slack_statusd::config::RetryPolicy::default(),
            Duration::from_secs(5),
            clock.clone(),
        )
        .await;
        ClockRig {
            _dir: dir,
            queue,
            slack,
            worker,
            clock,
            start,
        }
    }

    /// The instant `minutes` after the start.
    pub fn at(&self, minutes: i64) -> chrono::DateTime<chrono::Utc> {
        self.start + chrono::TimeDelta::minutes(minutes)
    }

    /// Move the wall clock to `minutes` after the start.
    pub fn go_to(&self, minutes: i64) {
        // The clock jumps in whole milliseconds: round up, never land just short.
        let by = self.at(minutes) - self.clock.now() + chrono::TimeDelta::milliseconds(1);
        self.clock.jump(by);
    }

    /// Step the worker until it is idle (the zero-to-production drain loop).
    pub async fn drain(&mut self) {
        let shutdown = tokio_util::sync::CancellationToken::new();
        while self.worker.step(&shutdown).await.unwrap() == slack_statusd::daemon::Step::Worked {}
    }
}
