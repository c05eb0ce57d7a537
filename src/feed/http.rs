//! A feed over HTTP(S): one conditional GET, its redirects bounded, its body capped.

use std::fmt;

use reqwest::header::{
    HeaderMap, HeaderValue, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
};
use reqwest::StatusCode;
use url::Url;

use super::error::scrub;
use super::{FeedError, FetchLimits, Fetched, Validators, MAX_REDIRECTS};
use crate::config::SecretUrl;

/// The longest validator kept. Real ETags are a hash or a version (under 100 bytes); a
/// longer one is not stored, and the next fetch is simply unconditional.
const MAX_VALIDATOR: usize = 512;

/// The longest reason taken from below reqwest into a message.
const MAX_REASON: usize = 300;

/// The client every fetch shares.
pub(super) fn client(limits: &FetchLimits) -> Result<reqwest::Client, FeedError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            match follow(attempt.previous(), attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refused) => attempt.error(refused),
            }
        }))
        // reqwest would send the previous URL — the secret address — as `Referer` to the
        // redirect's target, which may be another host.
        .referer(false)
        // A feed is polled every few minutes, far longer than any server keeps an idle
        // connection open: a pooled one would never serve a second fetch, and would hold its
        // read buffer, grown to the size of the body, for the pool's 90 s (issue 12, 5c).
        .pool_max_idle_per_host(0)
        // One limit for the whole fetch, connecting to the last byte of the body.
        .timeout(limits.timeout)
        .connect_timeout(limits.timeout)
        .user_agent(concat!("slack-statusd/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| FeedError::Client(e.without_url().to_string()))
}

/// Why a redirect is not followed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refused {
    /// [`MAX_REDIRECTS`] were followed already.
    TooMany,
    /// From `https` to plain `http`; the target's scheme and host.
    Downgrade(String),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::TooMany => write!(f, "more than {MAX_REDIRECTS} redirects"),
            Refused::Downgrade(to) => write!(f, "a redirect from https to {to}"),
        }
    }
}

impl std::error::Error for Refused {}

/// Whether to follow a redirect to `next`, given the URLs requested so far (the first
/// request's included). Once any request was `https`, no later one may be plain `http`: the
/// secret address, or the target's own path, would travel in clear text.
fn follow(previous: &[Url], next: &Url) -> Result<(), Refused> {
    if previous.len() > MAX_REDIRECTS {
        return Err(Refused::TooMany);
    }
    if next.scheme() == "http" && previous.iter().any(|u| u.scheme() == "https") {
        let host = next.host_str().unwrap_or("");
        return Err(Refused::Downgrade(format!("http://{host}")));
    }
    Ok(())
}

/// GET `url`, conditional on `previous`.
pub(super) async fn fetch(
    client: &reqwest::Client,
    limits: &FetchLimits,
    url: &SecretUrl,
    previous: Option<&Validators>,
) -> Result<Fetched, FeedError> {
    let mut request = client.get(url.expose_url());
    let mut conditional = false;
    if let Some(v) = previous {
        for (name, value) in [
            (IF_NONE_MATCH, &v.etag),
            (IF_MODIFIED_SINCE, &v.last_modified),
        ] {
            if let Some(value) = value.as_deref().and_then(|s| HeaderValue::from_str(s).ok()) {
                request = request.header(name, value);
                conditional = true;
            }
        }
    }
    let mut response = request
        .send()
        .await
        .map_err(|e| transport_error(e, url, limits))?;
    let status = response.status();
    // A 304 to an unconditional request is the server's mistake: there is no copy to keep.
    if status == StatusCode::NOT_MODIFIED && conditional {
        return Ok(Fetched::NotModified);
    }
    if !status.is_success() {
        return Err(FeedError::Status {
            feed: url.display().to_string(),
            status: status.as_u16(),
        });
    }
    let validators = validators(response.headers());
    let bytes = crate::http_body::read_capped(&mut response, limits.max_bytes)
        .await
        .map_err(|e| transport_error(e, url, limits))?
        .ok_or_else(|| FeedError::TooLarge {
            feed: url.display().to_string(),
            max_bytes: limits.max_bytes,
        })?;
    Ok(Fetched::Body { bytes, validators })
}

/// The response's `ETag` and `Last-Modified`, each only if it is short visible text.
fn validators(headers: &HeaderMap) -> Validators {
    let get = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= MAX_VALIDATOR)
            .map(str::to_string)
    };
    Validators {
        etag: get(ETAG),
        last_modified: get(LAST_MODIFIED),
    }
}

/// A transport failure as a [`FeedError`] naming only the feed's scheme and host.
fn transport_error(e: reqwest::Error, url: &SecretUrl, limits: &FetchLimits) -> FeedError {
    let feed = url.display().to_string();
    if e.is_timeout() {
        return FeedError::TimedOut {
            feed,
            after: limits.timeout,
        };
    }
    let refused = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<Refused>());
    match refused {
        Some(Refused::TooMany) => FeedError::TooManyRedirects { feed },
        Some(Refused::Downgrade(to)) => FeedError::Downgrade {
            feed,
            to: to.clone(),
        },
        None => FeedError::Network {
            feed,
            reason: reason(e, url),
        },
    }
}

/// What went wrong, from reqwest's error and its causes, without any URL: reqwest's own
/// errors print theirs, so the top one is taken `without_url` and nested ones are skipped;
/// the rest (hyper's, the OS's) is scrubbed of the address's parts all the same.
fn reason(e: reqwest::Error, url: &SecretUrl) -> String {
    let top = e.without_url();
    let mut parts = vec![top.to_string()];
    let mut source = std::error::Error::source(&top);
    while let Some(s) = source {
        if !s.is::<reqwest::Error>() {
            parts.push(s.to_string());
        }
        source = s.source();
    }
    parts.dedup();
    let text = scrub(&parts.join(": "), url);
    crate::untrusted::clean(&text, MAX_REASON).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(list: &[&str]) -> Vec<Url> {
        list.iter().map(|u| Url::parse(u).unwrap()).collect()
    }

    #[test]
    fn redirects_are_followed_five_times_and_never_to_plain_http_after_https() {
        let five = [
            "https://a/0",
            "https://a/1",
            "https://a/2",
            "https://a/3",
            "https://a/4",
        ];
        let six = [&five[..], &["https://a/5"]].concat();
        // (requested so far, next, result)
        let cases: &[(&[&str], &str, Result<(), Refused>)] = &[
            (&["https://a/x"], "https://b/y", Ok(())),
            (&["http://a/x"], "https://b/y", Ok(())),
            (&["http://a/x"], "http://b/y", Ok(())),
            (
                &["https://a/x"],
                "http://b:8080/y",
                Err(Refused::Downgrade("http://b".into())),
            ),
            (
                &["http://a/x", "https://b/y"],
                "http://c/z",
                Err(Refused::Downgrade("http://c".into())),
            ),
            (&five, "https://a/5", Ok(())),
            (&six, "https://a/6", Err(Refused::TooMany)),
        ];
        for (previous, next, want) in cases {
            let got = follow(&urls(previous), &Url::parse(next).unwrap());
            assert_eq!(&got, want, "{previous:?} → {next}");
        }
    }

    #[test]
    fn only_short_text_validators_are_kept() {
        let long = "x".repeat(MAX_VALIDATOR + 1);
        /// (etag header, last-modified header, kept etag, kept last-modified)
        type Case<'a> = (
            Option<&'a [u8]>,
            Option<&'a [u8]>,
            Option<&'a str>,
            Option<&'a str>,
        );
        let cases: &[Case<'_>] = &[
            (None, None, None, None),
            (
                Some(b"W/\"abc\""),
                Some(b"Wed, 02 Dec 2026 03:00:00 GMT"),
                Some("W/\"abc\""),
                Some("Wed, 02 Dec 2026 03:00:00 GMT"),
            ),
            (Some(b"\"\xff\""), None, None, None),
            (Some(long.as_bytes()), Some(b" "), None, None),
        ];
        for &(etag, modified, want_etag, want_modified) in cases {
            let mut headers = HeaderMap::new();
            if let Some(v) = etag {
                headers.insert(ETAG, HeaderValue::from_bytes(v).unwrap());
            }
            if let Some(v) = modified {
                headers.insert(LAST_MODIFIED, HeaderValue::from_bytes(v).unwrap());
            }
            let got = validators(&headers);
            assert_eq!(got.etag.as_deref(), want_etag, "{etag:?}");
            assert_eq!(got.last_modified.as_deref(), want_modified, "{modified:?}");
        }
    }
}
