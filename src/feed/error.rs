//! Why a fetch gave no feed. Every message names the feed only as
//! [`SecretUrl::display`] (scheme and host) or by its file path, and says what to change.

use std::path::PathBuf;
use std::time::Duration;

use super::MAX_REDIRECTS;
use crate::config::SecretUrl;

/// Why [`super::Fetcher::fetch`] (or [`super::Fetcher::new`]) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// The HTTP client could not be built (the TLS backend did not start).
    #[error(
        "cannot start the HTTP client for calendar feeds ({0}); the system's TLS setup is broken"
    )]
    Client(String),
    /// The server answered with a status that is neither success, a followed redirect, nor
    /// `304 Not Modified` to a conditional request.
    #[error("HTTP {status} from {feed}: {}", status_hint(*status))]
    Status {
        /// Scheme and host.
        feed: String,
        /// The HTTP status code.
        status: u16,
    },
    /// More than [`MAX_REDIRECTS`] redirects.
    #[error("{feed} redirected more than {MAX_REDIRECTS} times (a redirect loop?); check the calendar's address, or use the address the redirects end at")]
    TooManyRedirects {
        /// Scheme and host of the first request.
        feed: String,
    },
    /// A redirect from `https` to plain `http`, which would send the secret address (the
    /// redirect target's path usually carries it too) unencrypted.
    #[error("{feed} redirected to plain {to}, which would send the calendar's secret address unencrypted; refused: ask the server's owner to keep https, or use another address")]
    Downgrade {
        /// Scheme and host of the first request.
        feed: String,
        /// Scheme and host of the refused redirect target.
        to: String,
    },
    /// The body (or the file) is larger than the cap.
    #[error("the feed from {feed} is larger than {}; a calendar feed is far smaller: check the calendar's address, or export fewer years of events", size(*max_bytes))]
    TooLarge {
        /// Scheme and host, or the file path.
        feed: String,
        /// The cap it passed.
        max_bytes: u64,
    },
    /// The fetch did not finish in time.
    #[error("fetching {feed} timed out after {}; check the network and whether the server is up (it is tried again later)", duration(*after))]
    TimedOut {
        /// Scheme and host, or the file path.
        feed: String,
        /// The time limit.
        after: Duration,
    },
    /// A network failure: refused connection, DNS, TLS, a connection cut mid-body.
    #[error("cannot fetch {feed} ({reason}); check the network and the calendar's address (it is tried again later)")]
    Network {
        /// Scheme and host.
        feed: String,
        /// What failed, without any URL, and scrubbed of the address's path, query and
        /// credentials.
        reason: String,
    },
    /// A local feed that is a FIFO, device, socket or directory.
    #[error("{}: it is a {kind}, not a regular file; point the calendar's url at an .ics file", path.display())]
    NotRegular {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// A local feed that cannot be read.
    #[error("cannot read {}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What the OS said, and what to do.
        reason: String,
    },
}

/// What to change for an HTTP status.
fn status_hint(status: u16) -> &'static str {
    match status {
        401 | 403 => "the server refused access; the secret address may have been reset: copy it again from the calendar's sharing settings",
        404 | 410 => "check the calendar's address (it may have been reset, or the calendar deleted)",
        429 => "the server asks to be polled less often; raise the calendar's poll",
        500..=599 => "the server failed; it is tried again later, and the last good copy stays in use",
        300..=399 => "a redirect that cannot be followed; use the address it should lead to",
        _ => "check the calendar's address",
    }
}

/// A byte count as the cap is written: `20 MB`, else in bytes.
fn size(bytes: u64) -> String {
    if bytes >= 1_000_000 && bytes.is_multiple_of(1_000_000) {
        format!("{} MB", bytes / 1_000_000)
    } else {
        format!("{bytes} bytes")
    }
}

/// A time limit: `30 s`, or in milliseconds below a second or when not whole.
fn duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// `text` without the secret parts of `url`: the whole URL, its path and every long path
/// segment, its query, user name and password. Text from below reqwest (hyper, the OS) is
/// not known to quote URLs; this makes sure.
pub(super) fn scrub(text: &str, url: &SecretUrl) -> String {
    let full = url.expose_url();
    let mut secrets = vec![full.to_string()];
    if let Ok(u) = url::Url::parse(full) {
        if u.path().len() > 1 {
            secrets.push(u.path().to_string());
        }
        secrets.extend(
            u.path_segments()
                .into_iter()
                .flatten()
                .filter(|s| s.len() >= 6)
                .map(str::to_string),
        );
        // Shorter ones would cut letters out of ordinary words.
        let long = |s: &&str| s.len() >= 4;
        secrets.extend(u.query().filter(long).map(str::to_string));
        secrets.extend(Some(u.username()).filter(long).map(str::to_string));
        secrets.extend(u.password().filter(long).map(str::to_string));
    }
    secrets
        .iter()
        .fold(text.to_string(), |t, s| t.replace(s, "…"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CalendarSource;

    /// The `SecretUrl` a config with this calendar `url` holds.
    pub(crate) fn secret_url(url: &str) -> SecretUrl {
        let text = format!(
            "[tokens.a]\ntoken_env = \"T\"\n[[calendars]]\nname = \"c\"\ntoken = \"a\"\n\
             url = \"{url}\"\n[[calendars.map]]\nstatus_text = \"x\"\n"
        );
        let config = crate::config::load_str(std::path::Path::new("/etc/c.toml"), &text).unwrap();
        match &config.calendars[0].source {
            CalendarSource::Url(u) => u.clone(),
            other => panic!("not a URL: {other:?}"),
        }
    }

    #[test]
    fn scrub_removes_every_secret_part_of_the_url() {
        let url = secret_url(
            "https://user:pw-s3cr3t@cal.example:8443/alice/priv-s3cr3t/basic.ics?key=q-s3cr3t",
        );
        let cases: &[(&str, &str)] = &[
            (
                "error for url (https://user:pw-s3cr3t@cal.example:8443/alice/priv-s3cr3t/basic.ics?key=q-s3cr3t)",
                "error for url (…)",
            ),
            ("GET /alice/priv-s3cr3t/basic.ics failed", "GET … failed"),
            ("segment priv-s3cr3t here", "segment … here"),
            ("query key=q-s3cr3t", "query …"),
            ("password pw-s3cr3t", "password …"),
            ("connection refused by cal.example", "connection refused by cal.example"),
        ];
        for (text, want) in cases {
            let got = scrub(text, &url);
            assert_eq!(got, *want, "{text}");
            assert!(!got.contains("s3cr3t"), "{got}");
        }
    }

    #[test]
    fn sizes_and_durations_read_as_the_limits_are_written() {
        assert_eq!(size(20_000_000), "20 MB");
        assert_eq!(size(1_000), "1000 bytes");
        assert_eq!(size(20_000_001), "20000001 bytes");
        assert_eq!(duration(Duration::from_secs(30)), "30 s");
        assert_eq!(duration(Duration::from_millis(300)), "300 ms");
        assert_eq!(duration(Duration::from_millis(1_500)), "1500 ms");
    }
}
