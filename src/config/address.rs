//! A calendar's address (`url`, or the contents of `url_file`): an `https://`, `http://` or
//! `webcal://` URL, or a local file. The URL is a secret — Google's and Outlook's "secret
//! address" lets anyone who has it read the calendar — so it lives in a [`SecretUrl`] whose
//! only printable form is its scheme and host, and no message here quotes more.

use std::fmt;

/// A calendar URL. `Debug` and `Display` print only [`SecretUrl::display`]; the full URL is
/// given only by [`SecretUrl::expose_url`], for the request that fetches it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl {
    /// The URL to fetch (`webcal://` already turned into `https://`).
    url: String,
    /// Scheme and host, e.g. `https://calendar.google.com`.
    shown: String,
    /// Whether it is plain `http://` (warned about: the secret travels unencrypted).
    plain_http: bool,
}

impl SecretUrl {
    /// A URL shown as `shown` (its scheme and host).
    pub(super) fn new(url: String, shown: String) -> SecretUrl {
        SecretUrl {
            url,
            shown,
            plain_http: false,
        }
    }

    /// Scheme and host only, for logs, errors, metrics and the CLI.
    pub fn display(&self) -> &str {
        &self.shown
    }

    /// The whole URL, for the fetch request and nothing else.
    pub fn expose_url(&self) -> &str {
        &self.url
    }

    /// Whether the URL is plain `http://`.
    pub fn is_plain_http(&self) -> bool {
        self.plain_http
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretUrl({})", self.shown)
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

/// What an address names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Address {
    /// A URL to fetch over HTTP(S).
    Remote(SecretUrl),
    /// A local file, as written (resolved against the config's folder later).
    Local(String),
}

/// The address `text` names, or why it names none. The messages never quote the URL, only
/// its scheme, which is never secret.
pub(crate) fn classify(text: &str) -> Result<Address, String> {
    let text = text.trim();
    let Some(scheme) = scheme_of(text) else {
        return Ok(Address::Local(text.to_string()));
    };
    let rest = &text[scheme.len()..];
    let (fetch_scheme, plain_http) = match scheme.to_ascii_lowercase().as_str() {
        "https" | "webcal" => ("https", false),
        "http" => ("http", true),
        other => {
            let hint = if other == "file" {
                "; for a local file write its path without file://"
            } else {
                ""
            };
            return Err(format!(
                "the scheme {other}:// is not supported; use https://, http://, webcal:// \
                 or a local file path{hint}"
            ));
        }
    };
    // URL parsers skip extra slashes (`https:///x` has the host `x`), which would make part
    // of the path "the host" and show it; an address without a host is refused instead.
    if rest[3..].is_empty() || rest[3..].starts_with(['/', '\\']) {
        return Err(format!(
            "this {scheme}:// address has no host; copy it again from the calendar's sharing settings"
        ));
    }
    let fetched = format!("{fetch_scheme}{rest}");
    let parsed = url::Url::parse(&fetched).map_err(|e| {
        // url's messages ("empty host", "invalid port number") never quote the input.
        format!("this {scheme}:// address is not a valid URL ({e}); copy it again from the calendar's sharing settings")
    })?;
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("this {scheme}:// address has no host; copy it again from the calendar's sharing settings"))?;
    Ok(Address::Remote(SecretUrl {
        shown: format!("{fetch_scheme}://{host}"),
        url: parsed.into(),
        plain_http,
    }))
}

/// The scheme of `text` if it starts like a URL (`letters://`), else `None` (a file path).
pub(super) fn scheme_of(text: &str) -> Option<&str> {
    let (scheme, _) = text.split_once("://")?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The secret parts every case carries, which no output may show.
    const SECRET: &str = "private-0123abcd";

    #[test]
    fn addresses_are_classified_and_shown_by_scheme_and_host_only() {
        // (as written, Ok(shown, fetched, plain http) or Err(phrase))
        type Want = Result<(&'static str, &'static str, bool), &'static str>;
        let cases: &[(&str, Want)] = &[
            (
                "https://calendar.google.com/calendar/ical/a%40b/private-0123abcd/basic.ics",
                Ok((
                    "https://calendar.google.com",
                    "https://calendar.google.com/calendar/ical/a%40b/private-0123abcd/basic.ics",
                    false,
                )),
            ),
            (
                "webcal://p01-caldav.icloud.com/published/2/private-0123abcd",
                Ok((
                    "https://p01-caldav.icloud.com",
                    "https://p01-caldav.icloud.com/published/2/private-0123abcd",
                    false,
                )),
            ),
            (
                " HTTP://user:private-0123abcd@127.0.0.1:8080/c.ics?k=private-0123abcd ",
                Ok((
                    "http://127.0.0.1",
                    "http://user:private-0123abcd@127.0.0.1:8080/c.ics?k=private-0123abcd",
                    true,
                )),
            ),
            (
                "https://[::1]:9/private-0123abcd",
                Ok(("https://[::1]", "https://[::1]:9/private-0123abcd", false)),
            ),
            (
                "ftp://h/private-0123abcd",
                Err("the scheme ftp:// is not supported"),
            ),
            ("file:///private-0123abcd.ics", Err("without file://")),
            ("https:///private-0123abcd", Err("no host")),
            ("https://h:99999/private-0123abcd", Err("not a valid URL")),
        ];
        for (text, want) in cases {
            let got = classify(text);
            match (got, want) {
                (Ok(Address::Remote(u)), Ok((shown, fetched, http))) => {
                    assert_eq!(u.display(), *shown, "{text}");
                    assert_eq!(u.expose_url(), *fetched, "{text}");
                    assert_eq!(u.is_plain_http(), *http, "{text}");
                    assert!(!format!("{u} {u:?}").contains(SECRET), "{text}");
                }
                (Err(e), Err(phrase)) => {
                    assert!(e.contains(phrase), "{text}: {e}");
                    assert!(!e.contains(SECRET), "{text}: {e}");
                }
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn anything_without_a_scheme_is_a_local_file() {
        for path in [
            "cal.ics",
            "/srv/cal.ics",
            "../x://y.ics",
            "a b.ics",
            "9p://x",
        ] {
            assert_eq!(
                classify(path),
                Ok(Address::Local(path.to_string())),
                "{path}"
            );
        }
    }
}
