//! Fetching calendar feeds (SPEC §5 "Fetching"): the bytes of one feed, over HTTP(S) or from
//! a local file, and nothing more — no parsing, no database, no log line. The daemon and
//! `preview` call [`Fetcher::fetch`]; what the bytes mean is `calendar::parse`'s business.
//!
//! # Layout
//!
//! - `http`: a conditional GET (`If-None-Match` / `If-Modified-Since`), at most
//!   [`MAX_REDIRECTS`] redirects and never one from `https` to `http`, the body read chunk by
//!   chunk and refused once it passes the cap.
//! - `file`: a local file read on a helper thread, a regular file only, with the same cap; its
//!   inode, length and mtime are its pseudo ETag.
//! - `backoff`: how long to wait before the next fetch after failures (pure).
//! - `error`: [`FeedError`], whose messages name a feed only by scheme and host
//!   ([`crate::config::SecretUrl::display`]) or by its file path.
//!
//! A calendar URL is a secret (a "secret address"): it is handed to reqwest and to nothing
//! else. Errors are built from reqwest's without their URL, and whatever text comes from
//! below is scrubbed of the URL's path and query before it enters a message.

mod backoff;
mod error;
mod file;
mod http;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use backoff::{backoff, FIRST_RETRY};
pub use error::FeedError;

use crate::config::Feed;

/// The most redirects one fetch follows. Google and Outlook redirect once or twice; a chain
/// longer than this is a loop or a misconfigured server.
pub const MAX_REDIRECTS: usize = 5;

/// What makes a later fetch conditional: the server's `ETag` and `Last-Modified` (or, for a
/// local file, a pseudo ETag from its inode, length and mtime). The daemon stores them beside
/// the parsed copy, so a restart still asks "has it changed?".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validators {
    /// The `ETag` as the server sent it (quotes and `W/` included), sent back verbatim in
    /// `If-None-Match`.
    pub etag: Option<String>,
    /// The `Last-Modified` date as the server sent it, sent back in `If-Modified-Since`.
    pub last_modified: Option<String>,
}

impl Validators {
    /// Whether there is anything to make a request conditional with.
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// The result of one successful fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The feed has not changed since the fetch that gave the validators passed in: keep the
    /// copy already held.
    NotModified,
    /// The feed's bytes, and the validators to pass to the next fetch.
    Body {
        /// The whole body, at most [`FetchLimits::max_bytes`] long.
        bytes: Vec<u8>,
        /// What to make the next fetch conditional with.
        validators: Validators,
    },
}

/// The bounds of one fetch. Tests shrink them; the daemon uses [`Default`] (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchLimits {
    /// How long one fetch may take in all, from connecting to the last byte of the body
    /// (or reading the whole file).
    pub timeout: Duration,
    /// The largest body accepted: a feed can only grow the daemon by this much.
    pub max_bytes: u64,
}

impl Default for FetchLimits {
    /// 30 s and 20 MB, as SPEC §5 says.
    fn default() -> Self {
        FetchLimits {
            timeout: Duration::from_secs(30),
            max_bytes: 20_000_000,
        }
    }
}

/// Fetches feeds. Built once and shared: it holds one HTTP client, whose connection pool
/// serves every calendar on the same host.
#[derive(Debug, Clone)]
pub struct Fetcher {
    /// The HTTP client: rustls, the limits' timeout, the redirect policy of `http`.
    client: reqwest::Client,
    /// The bounds of every fetch.
    limits: FetchLimits,
}

impl Fetcher {
    /// A fetcher with these limits; fails only if the TLS backend cannot start.
    pub fn new(limits: FetchLimits) -> Result<Fetcher, FeedError> {
        Ok(Fetcher {
            client: http::client(&limits)?,
            limits,
        })
    }

    /// The limits every fetch is held to.
    pub fn limits(&self) -> FetchLimits {
        self.limits
    }

    /// Fetch `feed`, conditionally on `previous` (the validators of the copy already held).
    /// [`Fetched::NotModified`] only ever answers a conditional fetch.
    pub async fn fetch(
        &self,
        feed: &Feed,
        previous: Option<&Validators>,
    ) -> Result<Fetched, FeedError> {
        match feed {
            Feed::Url(url) => http::fetch(&self.client, &self.limits, url, previous).await,
            Feed::File(path) => file::fetch(&self.limits, path, previous).await,
        }
    }
}
