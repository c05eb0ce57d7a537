//! Errors of the queue database; messages name the database file and what to do.

use std::path::{Path, PathBuf};

/// An error of the queue database. Messages name the database file.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The database does not exist and may not be created here.
    #[error("no queue database at {0}; start the daemon (`slack-statusd run`) once to create it, or pass the --config the service uses")]
    Missing(PathBuf),
    /// The file exists but is empty: SQLite would take it for a new database, and only `run`
    /// may create one.
    #[error("{0} is an empty file, not a queue database; start the daemon (`slack-statusd run`) once to create it there, or pass the --config the service uses")]
    Empty(PathBuf),
    /// The database cannot be used any more while the daemon runs.
    #[error("the queue database {path} cannot be used any more: {reason}; slack-statusd stops so that it can be restarted (systemd does this by itself)")]
    Fatal {
        /// The database file.
        path: PathBuf,
        /// What happened to it.
        reason: String,
    },
    /// Opening the database, or a query on it, failed.
    #[error("queue database {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// The underlying error.
        source: sqlx::Error,
    },
    /// The database was written by a newer slack-statusd.
    #[error("the queue database {path} has a newer schema than this slack-statusd knows (migration {version}); upgrade slack-statusd or point `database` elsewhere")]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// The unknown migration's version.
        version: i64,
    },
    /// Bringing the schema up to date failed for another reason.
    #[error("cannot migrate the queue database {path}: {source}; restore a backup or point `database` elsewhere")]
    Migrate {
        /// The database file.
        path: PathBuf,
        /// The migration error.
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed.
    /// `database_password_file` gave no password.
    #[error("database_password_file {}: {reason}", path.display())]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// Why (never its contents).
        reason: String,
    },
    /// Another instance took over the lease this one claimed or finished under (it had
    /// expired): the rows are the new holder's, and nothing was written.
    #[error("the lease {0} was taken over by another instance; this instance stops working it")]
    LeaseLost(String),
    /// A method not built on PostgreSQL yet (issue 16 in progress; the CLI and daemon still
    /// refuse a `postgres://` database, so only tests can meet this).
    #[error("{0} is not available on PostgreSQL yet; use an SQLite database")]
    NotOnPostgres(&'static str),
    #[error("queue database error: {0}")]
    Sql(#[from] sqlx::Error),
    /// Another process held a write lock for longer than the busy timeout.
    #[error("the queue database {0} is locked by another process (waited 10 s); try again, or look for a stuck `slack-statusd` or sqlite3 holding it")]
    Locked(PathBuf),
    /// A claim or finish was cut off before its transaction ran (the runtime is shutting
    /// down); nothing was written, so the worker tries again.
    #[error(
        "a queue write was interrupted before it ran; nothing was written, it will be retried"
    )]
    Interrupted,
    /// A stored patch did not parse (the database was edited by hand?).
    #[error("row {id} holds an unreadable patch: {source}")]
    BadPatch {
        /// Row id.
        id: i64,
        /// The JSON error.
        source: serde_json::Error,
    },
}

impl QueueError {
    /// Name the database file in an error that does not yet say which one, and say plainly
    /// when it was locked by another process.
    pub fn at(self, path: &Path) -> QueueError {
        match self {
            QueueError::Sql(e) if is_busy(&e) => QueueError::Locked(path.to_path_buf()),
            QueueError::Sql(source) => QueueError::Open {
                path: path.to_path_buf(),
                source,
            },
            other => other,
        }
    }
}

impl QueueError {
    /// Why a failed write means the database cannot be used any more, if it does: SQLite
    /// found it corrupt, not a database, read-only, or could not open it. A full disk, a busy
    /// lock or an I/O error pass (the write is retried); these do not.
    pub(crate) fn fatal_reason(&self) -> Option<String> {
        let (QueueError::Sql(e) | QueueError::Open { source: e, .. }) = self else {
            return None;
        };
        let reason = match sqlite_code(e)? & 0xff {
            8 => "it became read-only",
            11 => "it is corrupt",
            14 => "it can no longer be opened",
            26 => "it is not a database",
            _ => return None,
        };
        Some(format!("{reason} ({e})"))
    }

    /// Whether this error means the database cannot be used any more.
    pub fn is_fatal(&self) -> bool {
        matches!(self, QueueError::Fatal { .. }) || self.fatal_reason().is_some()
    }
}

/// SQLite's (extended) result code of a database error.
fn sqlite_code(e: &sqlx::Error) -> Option<i32> {
    e.as_database_error()
        .and_then(|d| d.code())
        .and_then(|c| c.parse::<i32>().ok())
}

fn is_busy(e: &sqlx::Error) -> bool {
    // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with or without extended codes.
    sqlite_code(e).is_some_and(|c| matches!(c & 0xff, 5 | 6))
}
