//! slack-statusd: keeps Slack statuses and profile fields on a schedule.
//!
//! # Layout
//!
//! The data path reads straight through the modules:
//!
//! - [`calendar`]: iCalendar feeds as a second source of firings (SPEC §5).
//! - [`config`]: the TOML file and drop-ins → a validated [`config::Config`], or every problem
//!   with file:line:col.
//! - [`schedule`]: pure firing arithmetic — next firing, DST mapping, skip dates, expiry.
//! - [`calendar`]: pure iCalendar handling — parse a feed, expand occurrences, compute the
//!   timeline of status changes.
//! - [`feed`]: the bytes of one calendar feed, over HTTP(S) (conditional GET, capped) or from
//!   a local file; no parsing.
//! - [`profile`]: the payload of one update, split into merge groups.
//! - [`queue`]: the durable SQLite queue (the only module with SQL) and the pure merge.
//! - [`throttle`]: when a request may start — sliding-window limits and backoff (pure).
//! - [`slack`]: the Web API client (with `feed`, the only modules that speak HTTP) and response classification.
//! - [`daemon`]: wires them together: the scheduler task and one worker task per token.
//! - [`observe`]: the metrics and the `[http]` server of `/metrics`, `/healthz`, `/readyz`.
//! - [`clock`]: the injected wall clock.
//! - [`cli`]: the binary's commands — `check`, `preview`, `set`, `queue`, `run` — with their
//!   checks, output shapes and typed errors; `main.rs` only parses and maps exit codes.
//! - [`restore`]: temporary statuses that put back what was there — the pure decisions.
//! - [`untrusted`]: outside text made safe to log and store — escaped and bounded.
//! - [`http_body`]: a response body read within a cap, for `slack` and `feed`.

pub mod calendar;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod feed;
pub mod http_body;
pub mod observe;
pub mod profile;
pub mod queue;
pub mod restore;
pub mod schedule;
pub mod slack;
pub mod throttle;
pub mod untrusted;
