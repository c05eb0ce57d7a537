//! The throttle: decides *when* a request may start. Pure: no I/O and no clock — every
//! function takes the current instant.
//!
//! - [`limiter`]: exact sliding-window logs per token, per target and per method.
//! - [`backoff`]: exponential backoff with jitter, and `Retry-After` (and HTTP-date) parsing.

mod backoff;
mod limiter;

pub use backoff::{backoff, parse_http_date, parse_retry_after};
pub use limiter::{Method, SlidingLog, TokenLimiter};
