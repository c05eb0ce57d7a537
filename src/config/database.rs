//! `database`: a file path for SQLite, the default, or a `postgres://` / `postgresql://` URL
//! for a queue that several instances share (SPEC §8), with `database_password_file` and
//! `lease`. The URL is shown by scheme and host only, like a calendar's, and may not hold a
//! password: that lives in `PGPASSWORD`, `~/.pgpass` or `database_password_file`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::address::{scheme_of, SecretUrl};
use crate::queue::lease::MIN_LEASE;

/// Where the queue lives.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// An SQLite file, resolved (relative paths against the config's folder; defaults per
    /// SPEC §3).
    Sqlite(PathBuf),
    /// A PostgreSQL server.
    Postgres(Postgres),
}

/// A PostgreSQL `database` and its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Postgres {
    /// The URL, without a password.
    pub url: SecretUrl,
    /// `database_password_file`, resolved like a `token_file`.
    pub password_file: Option<PathBuf>,
    /// `lease`: how long a token's lease lasts after its last renewal.
    pub lease: Duration,
}

impl Database {
    /// The SQLite file, if the queue is one.
    pub fn sqlite(&self) -> Option<&Path> {
        match self {
            Database::Sqlite(path) => Some(path),
            Database::Postgres(_) => None,
        }
    }
}

impl fmt::Display for Database {
    /// The file's path, or the server's scheme and host: never more of a URL.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "{}", path.display()),
            Database::Postgres(pg) => f.write_str(pg.url.display()),
        }
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "Sqlite({path:?})"),
            Database::Postgres(pg) => write!(f, "Postgres({pg:?})"),
        }
    }
}

/// What a `database` value names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DatabaseValue {
    /// A file path, as written.
    File(String),
    /// A PostgreSQL URL.
    Postgres(SecretUrl),
}

/// What `text` names, or why it names nothing usable. Messages quote only the scheme.
pub(crate) fn classify(text: &str) -> Result<DatabaseValue, String> {
    let text = text.trim();
    let Some(scheme) = scheme_of(text) else {
        return Ok(DatabaseValue::File(text.to_string()));
    };
    let lower = scheme.to_ascii_lowercase();
    if lower != "postgres" && lower != "postgresql" {
        return Err(format!(
            "the scheme {lower}:// is not supported; write a file path for SQLite, or a \
             postgres:// or postgresql:// URL for PostgreSQL"
        ));
    }
    let parsed = url::Url::parse(text).map_err(|e| {
        format!("this {lower}:// URL is not valid ({e}); write postgres://USER@HOST/DATABASE")
    })?;
    // libpq also takes the password as a query parameter.
    if parsed.password().is_some() || parsed.query_pairs().any(|(k, _)| k == "password") {
        return Err(
            "this URL holds a password; remove it and put the password in \
             database_password_file (or PGPASSWORD, or ~/.pgpass)"
                .to_string(),
        );
    }
    let host = parsed.host_str().filter(|h| !h.is_empty()).ok_or_else(|| {
        format!("this {lower}:// URL has no host; write postgres://USER@HOST/DATABASE")
    })?;
    Ok(DatabaseValue::Postgres(SecretUrl::new(
        parsed.to_string(),
        format!("{lower}://{host}"),
    )))
}

/// A `lease` that is too short, if it is.
pub(crate) fn lease_problem(lease: Duration) -> Option<String> {
    (lease < MIN_LEASE).then(|| {
        format!(
            "lease must be at least {}s: an instance stops sending 10 s (the request timeout) \
             before its lease ends, and renews it every third",
            MIN_LEASE.as_secs()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_files_and_postgres_urls_are_shown_by_scheme_and_host_only() {
        assert_eq!(
            classify(" queue.db ").unwrap(),
            DatabaseValue::File("queue.db".into())
        );
        let DatabaseValue::Postgres(url) =
            classify("postgresql://statusd@db.internal:5433/statusd?sslmode=require").unwrap()
        else {
            panic!("a PostgreSQL URL");
        };
        assert_eq!(url.display(), "postgresql://db.internal");
        assert!(url.expose_url().contains("sslmode=require"));
        assert_eq!(format!("{url:?}"), "SecretUrl(postgresql://db.internal)");
        let DatabaseValue::Postgres(url) = classify("POSTGRES://db/q").unwrap() else {
            panic!("a PostgreSQL URL");
        };
        assert_eq!(url.display(), "postgres://db");
    }

    #[test]
    fn other_schemes_passwords_and_hostless_urls_are_refused_without_quoting_them() {
        for (text, needle) in [
            ("mysql://u@h/db", "mysql:// is not supported"),
            ("sqlite://q.db", "write a file path for SQLite"),
            ("postgres://u:s3cret-pw@h/db", "holds a password"),
            ("postgres://u@h/db?password=s3cret-pw", "holds a password"),
            ("postgres:///db", "no host"),
        ] {
            let e = classify(text).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
            assert!(!e.contains("s3cret") && !e.contains("/db"), "{text}: {e}");
        }
    }

    #[test]
    fn a_lease_under_fifteen_seconds_is_refused() {
        assert!(lease_problem(Duration::from_secs(15)).is_none());
        assert!(lease_problem(Duration::from_secs(14))
            .unwrap()
            .contains("at least 15s"));
    }
}
