//! What the `preview` tests share: the Google-style feed `tests/data/calendars/preview.ics`
//! served over HTTP on 127.0.0.1 behind a secret path, the real binary run off the runtime's
//! threads, and the check that no output shows the private title or the secret.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;

use crate::common;

/// The part of the calendar's address no output may show.
pub const SECRET: &str = "s3cr3t";
/// The private event's title (and a word of its description), which never leaves the
/// parser.
pub const PRIVATE: &str = "Quibblesworth";
/// The Monday the window starts, in Berlin.
pub const FROM: &str = "2026-12-07T00:00:00+01:00";

/// Serves `preview.ics` at `/alice/{SECRET}/basic.ics`, 500 anywhere else; counts requests.
pub async fn serve_feed() -> (SocketAddr, Arc<AtomicUsize>) {
    async fn feed(State(hits): State<Arc<AtomicUsize>>, uri: Uri) -> Response {
        hits.fetch_add(1, Ordering::SeqCst);
        if uri.path() == format!("/alice/{SECRET}/basic.ics") {
            let ics: &[u8] = include_bytes!("../data/calendars/preview.ics");
            ([("content-type", "text/calendar")], ics).into_response()
        } else {
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
    let hits = Arc::new(AtomicUsize::new(0));
    let app = Router::new().fallback(feed).with_state(hits.clone());
    (super::common::serve_router(app).await, hits)
}

/// Run the binary with `args` off the runtime's threads, so the feed server keeps serving.
pub async fn run(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(common::bin())
            .args(&args)
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// No output of `o` shows the private title or the address's secret part.
pub fn assert_nothing_secret(o: &Output) {
    for (what, text) in [("stdout", stdout(o)), ("stderr", stderr(o))] {
        assert!(
            !text.contains(PRIVATE),
            "the private title on {what}: {text}"
        );
        assert!(
            !text.contains(SECRET),
            "the secret address on {what}: {text}"
        );
    }
}

/// The JSON lines of a successful run.
pub fn json_lines(o: &Output) -> Vec<Value> {
    assert_eq!(o.status.code(), Some(0), "{}", stderr(o));
    assert_nothing_secret(o);
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
