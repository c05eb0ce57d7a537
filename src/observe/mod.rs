//! Observability (SPEC §7): the metrics the daemon keeps and the HTTP server of `[http]`
//! that shows them, with the health endpoints.
//!
//! - [`metrics`]: the registry, every metric's name, and the [`Metrics`] handle the tasks
//!   count with.
//! - [`health`]: what `/healthz` and `/readyz` answer — plain state and pure rules.
//! - [`http`]: the axum server: `/metrics`, `/healthz`, `/readyz`.
//!
//! **Invariant:** labels carry names, never a token's value, a hash of one, or a URL.

pub mod health;
pub mod http;
pub mod metrics;

pub use health::{Health, Probe, UNHEALTHY_AFTER};
pub use http::{bind, Endpoints, Server};
pub use metrics::{FetchOutcome, Metrics};
