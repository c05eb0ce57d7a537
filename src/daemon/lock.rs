//! One `run` per database: an exclusive lock on `<database>.lock`, holding the owner's PID.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error("another slack-statusd (pid {pid}) is already running on {database}; stop it first (lock file {lock})")]
    Held {
        /// The holder's PID as it wrote it, or "unknown".
        pid: String,
        /// The database.
        database: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
    /// The lock file could not be opened.
    #[error("cannot open the lock file {path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Held for as long as the daemon runs; the OS releases it when the process dies, even by
/// `kill -9`, so a crash never leaves a stale lock.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// `<database>.lock`.
fn lock_path(database: &Path) -> PathBuf {
    let mut path = database.as_os_str().to_owned();
    path.push(".lock");
    PathBuf::from(path)
}

/// The pid of the `run` that holds `database`, if one does. Takes the lock file's shared lock
/// for an instant to tell: it conflicts with a running daemon's exclusive one, and a crashed
/// daemon's lock is gone with its process, whatever pid the file still holds.
pub fn holder(database: &Path) -> Option<String> {
    let mut file = File::open(lock_path(database)).ok()?;
    match file.try_lock_shared() {
        Ok(()) => None,
        Err(TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            Some(if pid.is_empty() { "unknown" } else { pid }.to_string())
        }
        Err(TryLockError::Error(_)) => None,
    }
}

/// Take the run lock of `database`.
pub fn lock(database: &Path) -> Result<RunLock, LockError> {
    let path = lock_path(database);
    let io = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    // The state folder may not exist yet on a first run from a shell (systemd makes it).
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {
            file.set_len(0).map_err(io)?;
            file.rewind().map_err(io)?;
            writeln!(file, "{}", std::process::id()).map_err(io)?;
            Ok(RunLock { _file: file })
        }
        Err(TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            Err(LockError::Held {
                pid: if pid.is_empty() {
                    "unknown".into()
                } else {
                    pid.to_string()
                },
                database: database.to_path_buf(),
                lock: path.clone(),
            })
        }
        Err(TryLockError::Error(e)) => Err(io(e)),
    }
}
