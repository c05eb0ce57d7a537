//! The HTTP server of `[http] listen` (SPEC §7): `/metrics`, `/healthz`, `/readyz`, and
//! nothing else. It only reads: the metrics the tasks keep, the health state, and the queue's
//! depth, which it reads from the database at most once a second however often it is
//! scraped.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;
use crate::clock::Clock;
use crate::queue::Queue;

/// The queue is read at most this often; scrapes in between see the last read.
pub const DEPTH_EVERY: Duration = Duration::from_secs(1);

/// The content type of the OpenMetrics text format that prometheus-client writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the endpoints read.
#[derive(Clone)]
pub struct Endpoints {
    /// The daemon's metrics and health state.
    pub metrics: Metrics,
    /// The queue, for its depth and whether the database answers.
    pub queue: Queue,
    /// The wall clock, for the backlog's age.
    pub clock: Clock,
    /// The scheduler's next firing.
    pub next_firing: watch::Receiver<Option<DateTime<Utc>>>,
    /// When the queue was last read and whether it answered; shared by every request, so
    /// that concurrent scrapes make one read.
    last_read: Arc<tokio::sync::Mutex<Option<(Instant, bool)>>>,
}

impl Endpoints {
    /// Endpoints over these parts.
    pub fn new(
        metrics: Metrics,
        queue: Queue,
        clock: Clock,
        next_firing: watch::Receiver<Option<DateTime<Utc>>>,
    ) -> Endpoints {
        Endpoints {
            metrics,
            queue,
            clock,
            next_firing,
            last_read: Arc::default(),
        }
    }

    /// Read the queue's depth into the metrics unless it was read in the last
    /// [`DEPTH_EVERY`]; whether the database answered.
    async fn refresh(&self) -> bool {
        let mut last = self.last_read.lock().await;
        if let Some((at, reachable)) = *last {
            if at.elapsed() < DEPTH_EVERY {
                return reachable;
            }
        }
        let now = self.clock.now();
        let health = self.queue.health();
        let reachable = !health.fatal().is_cancelled()
            && health.check_file().is_ok()
            && match self.queue.depth(now).await {
                Ok(depth) => {
                    self.metrics.set_depth(&depth, now);
                    true
                }
                Err(e) => {
                    tracing::warn!(error = %e, "/metrics: cannot read the queue's depth");
                    false
                }
            };
        self.metrics.set_next_firing(*self.next_firing.borrow());
        *last = Some((Instant::now(), reachable));
        reachable
    }
}

/// Bind `addr`: an error here is the caller's to report (exit 2 at start; on reload the old
/// listener stays).
pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    /// The address it is bound to (with the port chosen for port 0).
    pub addr: SocketAddr,
    /// Stops it.
    stop: CancellationToken,
    /// Ends when it has stopped.
    task: JoinHandle<()>,
}

impl Server {
    /// Serve `endpoints` on `listener` until [`Server::stop`].
    pub fn start(listener: TcpListener, endpoints: Endpoints) -> io::Result<Server> {
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/metrics", get(metrics))
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .with_state(endpoints);
        let stop = CancellationToken::new();
        let until = stop.clone().cancelled_owned();
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(until)
                .await
            {
                tracing::error!(error = %e, "the /metrics server failed");
            }
        });
        Ok(Server { addr, stop, task })
    }

    /// Stop serving and wait (at most a second: a client that keeps its connection open
    /// must not hold up a shutdown).
    pub async fn stop(self) {
        self.stop.cancel();
        let abort = self.task.abort_handle();
        if tokio::time::timeout(Duration::from_secs(1), self.task)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}

/// `/metrics`: every metric, the queue's gauges read at most once a second.
async fn metrics(State(e): State<Endpoints>) -> Response {
    e.refresh().await;
    ([(header::CONTENT_TYPE, OPENMETRICS)], e.metrics.encode()).into_response()
}

/// `/healthz`: 200 while scheduling and queue writes work, 503 once either has failed for
/// 30 s.
async fn healthz(State(e): State<Endpoints>) -> Response {
    let now = Instant::now();
    let live = e.metrics.health(|h| h.live_at(now)).unwrap_or(true);
    answer(live)
}

/// `/readyz`: 503 before READY=1, while stopping and while the database is unreachable.
async fn readyz(State(e): State<Endpoints>) -> Response {
    let (ready, stopping) = e
        .metrics
        .health(|h| (h.ready, h.stopping))
        .unwrap_or((false, false));
    // The database is only asked when the answer depends on it.
    let reachable = ready && !stopping && e.refresh().await;
    let ok = e
        .metrics
        .health(|h| h.ready_with(reachable))
        .unwrap_or(false);
    answer(ok)
}

fn answer(ok: bool) -> Response {
    if ok {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable\n").into_response()
    }
}
