//! The feed fetcher (SPEC §5 "Fetching") against real servers on 127.0.0.1 and real files:
//! conditional GET with ETag and Last-Modified, errors that name the host only, the size cap
//! (declared and streamed), the timeout, redirects followed and bounded, and local files —
//! their pseudo ETag, and a FIFO or device refused at once.
//!
//! Every URL carries the secret `s3cr3t` in its path and query; no error text may show it.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use slack_statusd::config::{load_str, Feed};
use slack_statusd::feed::{FeedError, FetchLimits, Fetched, Fetcher, Validators};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::wait_for;

/// The part of every address no message may show.
const SECRET: &str = "s3cr3t";

/// A feed body.
const ICS: &[u8] = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n";

/// What the server saw: each request's path and conditional headers.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    if_none_match: Option<String>,
    if_modified_since: Option<String>,
}

/// A feed server on 127.0.0.1 whose behaviour depends on the path's first segment.
struct Server {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    async fn start() -> Server {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new().fallback(serve).with_state(seen.clone());
        let addr = common::serve_router(app).await;
        Server { addr, seen }
    }

    /// The feed at `/{kind}/…` with the secret in its path and query.
    fn feed(&self, kind: &str) -> Feed {
        feed_at(&format!(
            "http://{}/{kind}/{SECRET}-path/basic.ics?key={SECRET}-query",
            self.addr
        ))
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// The handler: `/etag/…` and `/modified/…` answer conditionally, `/status-N/…` with status
/// N, `/big/…` with 2,000 bytes, `/hang/…` never, `/redirect-N/…` with N more redirects
/// before the feed, `/loop/…` with a redirect to itself.
async fn serve(
    State(seen): State<Arc<Mutex<Vec<Seen>>>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &header::HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let path = uri.path().to_string();
    seen.lock().unwrap().push(Seen {
        path: path.clone(),
        if_none_match: text(header::IF_NONE_MATCH),
        if_modified_since: text(header::IF_MODIFIED_SINCE),
    });
    let rest = uri
        .path_and_query()
        .unwrap()
        .as_str()
        .split_once('/')
        .unwrap()
        .1;
    let (kind, tail) = rest.split_once('/').unwrap();
    const MODIFIED: &str = "Tue, 01 Dec 2026 08:00:00 GMT";
    match kind {
        "etag" if text(header::IF_NONE_MATCH).as_deref() == Some("\"v1\"") => {
            StatusCode::NOT_MODIFIED.into_response()
        }
        "etag" => ([(header::ETAG, "\"v1\"")], ICS).into_response(),
        "modified" if text(header::IF_MODIFIED_SINCE).as_deref() == Some(MODIFIED) => {
            StatusCode::NOT_MODIFIED.into_response()
        }
        "modified" => ([(header::LAST_MODIFIED, MODIFIED)], ICS).into_response(),
        "big" => vec![b'x'; 2_000].into_response(),
        "hang" => std::future::pending::<Response>().await,
        "loop" => redirect(&path),
        "redirect-0" => ICS.into_response(),
        _ if kind.starts_with("redirect-") => {
            let n: u32 = kind["redirect-".len()..].parse().unwrap();
            redirect(&format!("/redirect-{}/{tail}", n - 1))
        }
        _ if kind.starts_with("status-") => {
            StatusCode::from_u16(kind["status-".len()..].parse().unwrap())
                .unwrap()
                .into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

fn redirect(to: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, to.to_string())]).into_response()
}

/// The `Feed` a config with this calendar `url` gives (the URL as a `SecretUrl`).
fn feed_at(url: &str) -> Feed {
    let text = format!(
        "[tokens.a]\ntoken_env = \"T\"\n[[calendars]]\nname = \"c\"\ntoken = \"a\"\n\
         url = \"{url}\"\n[[calendars.map]]\nstatus_text = \"x\"\n"
    );
    let config = load_str(Path::new("/etc/slack-statusd/config.toml"), &text).unwrap();
    config.calendars[0].feed().unwrap().0
}

fn fetcher(timeout: Duration, max_bytes: u64) -> Fetcher {
    Fetcher::new(FetchLimits { timeout, max_bytes }).unwrap()
}

/// A fetcher with the default limits.
fn default_fetcher() -> Fetcher {
    Fetcher::new(FetchLimits::default()).unwrap()
}

/// The error of a fetch that must fail; its text and debug form show no secret.
async fn failure(fetcher: &Fetcher, feed: &Feed) -> FeedError {
    let e = fetcher
        .fetch(feed, None)
        .await
        .expect_err("the fetch fails");
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains(SECRET), "the secret leaked: {shown}");
    e
}

/// The body of a fetch that must give one.
fn body(fetched: Fetched) -> (Vec<u8>, Validators) {
    match fetched {
        Fetched::Body { bytes, validators } => (bytes, validators),
        Fetched::NotModified => panic!("not modified, expected a body"),
    }
}

#[test]
fn the_default_limits_are_the_specs() {
    let limits = FetchLimits::default();
    assert_eq!(limits.timeout, Duration::from_secs(30));
    assert_eq!(limits.max_bytes, 20_000_000);
}

#[tokio::test]
async fn an_etag_makes_the_second_fetch_conditional_and_not_modified() {
    let server = Server::start().await;
    let fetcher = default_fetcher();
    let feed = server.feed("etag");
    let (bytes, validators) = body(fetcher.fetch(&feed, None).await.unwrap());
    assert_eq!(bytes, ICS);
    assert_eq!(validators.etag.as_deref(), Some("\"v1\""));
    assert_eq!(validators.last_modified, None);
    let second = fetcher.fetch(&feed, Some(&validators)).await.unwrap();
    assert_eq!(second, Fetched::NotModified);
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].if_none_match, None,
        "the first fetch is unconditional"
    );
    assert_eq!(seen[1].if_none_match.as_deref(), Some("\"v1\""));
    assert_eq!(seen[1].if_modified_since, None);
    // Validators survive the database as JSON.
    let stored = serde_json::to_string(&validators).unwrap();
    assert_eq!(
        serde_json::from_str::<Validators>(&stored).unwrap(),
        validators
    );
}

#[tokio::test]
async fn last_modified_makes_the_second_fetch_conditional_and_not_modified() {
    let server = Server::start().await;
    let fetcher = default_fetcher();
    let feed = server.feed("modified");
    let (bytes, validators) = body(fetcher.fetch(&feed, None).await.unwrap());
    assert_eq!(bytes, ICS);
    assert_eq!(validators.etag, None);
    assert_eq!(
        validators.last_modified.as_deref(),
        Some("Tue, 01 Dec 2026 08:00:00 GMT")
    );
    assert_eq!(
        fetcher.fetch(&feed, Some(&validators)).await.unwrap(),
        Fetched::NotModified
    );
    let seen = server.seen();
    assert_eq!(
        seen[1].if_modified_since.as_deref(),
        Some("Tue, 01 Dec 2026 08:00:00 GMT")
    );
    assert_eq!(seen[1].if_none_match, None);
}

#[tokio::test]
async fn a_304_to_an_unconditional_fetch_is_an_error() {
    let server = Server::start().await;
    let e = failure(&default_fetcher(), &server.feed("status-304")).await;
    assert!(matches!(e, FeedError::Status { status: 304, .. }), "{e:?}");
}

#[tokio::test]
async fn http_errors_name_the_status_and_the_host_only() {
    let server = Server::start().await;
    let fetcher = default_fetcher();
    let host = "http://127.0.0.1";
    // (status, what the message says to do)
    let cases: &[(u16, &str)] = &[
        (500, "tried again later"),
        (503, "tried again later"),
        (404, "check the calendar's address"),
        (410, "check the calendar's address"),
        (401, "copy it again"),
        (403, "copy it again"),
        (429, "raise the calendar's poll"),
        (300, "redirect"),
    ];
    for &(status, hint) in cases {
        let e = failure(&fetcher, &server.feed(&format!("status-{status}"))).await;
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("HTTP {status} from {host}: ")),
            "{text}"
        );
        assert!(text.contains(hint), "{status}: {text}");
        assert!(!text.contains(&server.addr.port().to_string()), "{text}");
    }
}

#[tokio::test]
async fn a_body_over_the_cap_is_refused() {
    let server = Server::start().await;
    let small = fetcher(Duration::from_secs(30), 1_999);
    let e = failure(&small, &server.feed("big")).await;
    assert_eq!(
        e,
        FeedError::TooLarge {
            feed: "http://127.0.0.1".into(),
            max_bytes: 1_999
        }
    );
    assert!(e.to_string().contains("larger than 1999 bytes"), "{e}");
    // Exactly at the cap is fine.
    let exact = fetcher(Duration::from_secs(30), 2_000);
    let (bytes, _) = body(exact.fetch(&server.feed("big"), None).await.unwrap());
    assert_eq!(bytes.len(), 2_000);
}

/// A server of raw HTTP/1.1: it answers every connection with `head`, then either writes
/// `chunk` forever (chunked encoding) counting the bytes, or stalls. `closed` says the client
/// hung up on it.
struct Raw {
    addr: SocketAddr,
    written: Arc<AtomicU64>,
    closed: Arc<AtomicBool>,
}

impl Raw {
    async fn start(head: &'static str, endless: bool) -> Raw {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let written = Arc::new(AtomicU64::new(0));
        let closed = Arc::new(AtomicBool::new(false));
        let (w, c) = (written.clone(), closed.clone());
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let (w, c) = (w.clone(), c.clone());
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = socket.read(&mut request).await;
                    if socket.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    if !endless {
                        // Hold the connection open, sending nothing, until the client leaves.
                        let _ = socket.read(&mut request).await;
                        c.store(true, Ordering::SeqCst);
                        return;
                    }
                    let chunk = format!("10000\r\n{}\r\n", "x".repeat(0x10000));
                    while socket.write_all(chunk.as_bytes()).await.is_ok() {
                        w.fetch_add(0x10000, Ordering::SeqCst);
                    }
                    c.store(true, Ordering::SeqCst);
                });
            }
        });
        Raw {
            addr,
            written,
            closed,
        }
    }

    fn feed(&self) -> Feed {
        feed_at(&format!("http://{}/{SECRET}/basic.ics", self.addr))
    }
}

#[tokio::test]
async fn an_endless_body_ends_at_the_cap_and_the_connection_is_dropped() {
    let raw = Raw::start(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/calendar\r\n\r\n",
        true,
    )
    .await;
    let cap = 1_000_000;
    let small = fetcher(Duration::from_secs(30), cap);
    let e = failure(&small, &raw.feed()).await;
    assert!(
        matches!(
            e,
            FeedError::TooLarge {
                max_bytes: 1_000_000,
                ..
            }
        ),
        "{e:?}"
    );
    wait_for(
        "the server sees the client hang up",
        Duration::from_secs(10),
        || raw.closed.load(Ordering::SeqCst),
    )
    .await;
    // What the server got out is the cap plus what the sockets' buffers held: the client
    // stopped reading at the cap instead of draining the stream.
    let written = raw.written.load(Ordering::SeqCst);
    assert!(
        written < cap + 64_000_000,
        "the server wrote {written} bytes"
    );
}

#[tokio::test]
async fn a_declared_length_over_the_cap_is_refused_before_the_body() {
    // The body never comes: only the Content-Length check can end this fetch before the
    // (default, 30 s) timeout.
    let raw = Raw::start(
        "HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\n\r\n",
        false,
    )
    .await;
    let e = failure(&default_fetcher(), &raw.feed()).await;
    assert!(
        matches!(
            e,
            FeedError::TooLarge {
                max_bytes: 20_000_000,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("larger than 20 MB"), "{e}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let server = Server::start().await;
    let quick = fetcher(Duration::from_millis(300), 20_000_000);
    let e = failure(&quick, &server.feed("hang")).await;
    assert_eq!(
        e,
        FeedError::TimedOut {
            feed: "http://127.0.0.1".into(),
            after: Duration::from_millis(300)
        }
    );
    assert!(e.to_string().contains("timed out after 300 ms"), "{e}");
}

#[tokio::test]
async fn a_body_that_stalls_times_out() {
    let raw = Raw::start("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", false).await;
    let quick = fetcher(Duration::from_millis(300), 20_000_000);
    let e = failure(&quick, &raw.feed()).await;
    assert!(matches!(e, FeedError::TimedOut { .. }), "{e:?}");
}

#[tokio::test]
async fn redirects_are_followed_up_to_five_times() {
    let server = Server::start().await;
    let fetcher = default_fetcher();
    let (bytes, _) = body(
        fetcher
            .fetch(&server.feed("redirect-5"), None)
            .await
            .unwrap(),
    );
    assert_eq!(bytes, ICS);
    let seen = server.seen();
    assert_eq!(seen.len(), 6, "the first request and five redirects");
    assert!(seen[0].path.starts_with("/redirect-5/"), "{seen:?}");
    assert!(seen[5].path.starts_with("/redirect-0/"), "{seen:?}");

    let e = failure(&fetcher, &server.feed("redirect-6")).await;
    assert_eq!(
        e,
        FeedError::TooManyRedirects {
            feed: "http://127.0.0.1".into()
        }
    );
}

#[tokio::test]
async fn a_redirect_loop_ends_after_five_redirects() {
    let server = Server::start().await;
    let e = failure(&default_fetcher(), &server.feed("loop")).await;
    assert!(matches!(e, FeedError::TooManyRedirects { .. }), "{e:?}");
    assert!(e.to_string().contains("more than 5 times"), "{e}");
    assert_eq!(
        server.seen().len(),
        6,
        "one request and five redirects, then no more"
    );
}

#[tokio::test]
async fn a_connection_refused_names_the_host_only() {
    // A port that was just free: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let feed = feed_at(&format!(
        "http://user-{SECRET}:pw-{SECRET}@127.0.0.1:{port}/{SECRET}/basic.ics?k={SECRET}"
    ));
    let e = failure(&default_fetcher(), &feed).await;
    let FeedError::Network { feed, reason } = &e else {
        panic!("{e:?}");
    };
    assert_eq!(feed, "http://127.0.0.1");
    assert!(!reason.is_empty(), "{e}");
    assert!(
        e.to_string().starts_with("cannot fetch http://127.0.0.1 ("),
        "{e}"
    );
}

#[tokio::test]
async fn a_local_file_is_read_and_not_modified_until_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cal.ics");
    std::fs::write(&path, ICS).unwrap();
    let fetcher = default_fetcher();
    let feed = Feed::File(path.clone());
    let (bytes, validators) = body(fetcher.fetch(&feed, None).await.unwrap());
    assert_eq!(bytes, ICS);
    assert!(validators.etag.is_some(), "a pseudo ETag");
    assert_eq!(
        fetcher.fetch(&feed, Some(&validators)).await.unwrap(),
        Fetched::NotModified
    );
    // Replaced by a file of the same length, as an editor saves: read again.
    common::replace_file(&path, &String::from_utf8_lossy(ICS).replace("2.0", "3.0"));
    let (again, newer) = body(fetcher.fetch(&feed, Some(&validators)).await.unwrap());
    assert_eq!(again.len(), ICS.len());
    assert_ne!(again, ICS);
    assert_ne!(newer, validators);
    // Without validators, always a body.
    body(fetcher.fetch(&feed, None).await.unwrap());
}

#[tokio::test]
async fn a_local_file_over_the_cap_or_missing_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.ics");
    std::fs::write(&path, vec![b'x'; 2_000]).unwrap();
    let small = fetcher(Duration::from_secs(30), 1_999);
    let e = failure(&small, &Feed::File(path.clone())).await;
    assert!(
        matches!(
            e,
            FeedError::TooLarge {
                max_bytes: 1_999,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains(&path.display().to_string()), "{e}");

    let missing = dir.path().join("missing.ics");
    let e = failure(&small, &Feed::File(missing.clone())).await;
    assert!(matches!(e, FeedError::File { .. }), "{e:?}");
    assert!(e.to_string().contains("no such file"), "{e}");
}

#[tokio::test]
async fn a_fifo_a_device_or_a_folder_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("cal.ics");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates the node.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // The default 30 s timeout: a fetch that blocked on the FIFO would end as TimedOut, not
    // as NotRegular, and this test would take 30 s.
    let fetcher = default_fetcher();
    let cases = [
        (fifo.clone(), "FIFO (named pipe)"),
        ("/dev/zero".into(), "character device"),
        (dir.path().to_path_buf(), "directory"),
    ];
    for (path, want) in cases {
        let e = failure(&fetcher, &Feed::File(path.clone())).await;
        assert_eq!(
            e,
            FeedError::NotRegular {
                path: path.clone(),
                kind: want
            }
        );
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }
}
