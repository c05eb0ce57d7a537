//! A feed from a local file: read as untrusted input, the way `token_file`s are — a regular
//! file only (looked at before the open and on the opened descriptor, opened `O_NONBLOCK`, so
//! a FIFO or `/dev/zero` can neither block nor grow the process), at most the cap, on a
//! helper thread that the caller waits for at most the limits' timeout (a hung network file
//! system blocks that thread, never the daemon).

use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{FeedError, FetchLimits, Fetched, Validators};
use crate::config::{open_regular, OpenError};

/// Read the file at `path`; [`Fetched::NotModified`] if its pseudo ETag is `previous`'s.
pub(super) async fn fetch(
    limits: &FetchLimits,
    path: &Path,
    previous: Option<&Validators>,
) -> Result<Fetched, FeedError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let owned = path.to_path_buf();
    let max_bytes = limits.max_bytes;
    let previous = previous.and_then(|v| v.etag.clone());
    // A std thread rather than `spawn_blocking`: a runtime waits for its blocking tasks when
    // it shuts down, and a read stuck in the kernel would keep `preview` from exiting.
    std::thread::Builder::new()
        .name("calendar-file".into())
        .spawn(move || {
            let _ = tx.send(read(&owned, max_bytes, previous.as_deref()));
        })
        .map_err(|e| FeedError::File {
            path: path.to_path_buf(),
            reason: format!(
                "cannot start a reader thread ({e}); the system is out of threads or memory"
            ),
        })?;
    match tokio::time::timeout(limits.timeout, rx).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(FeedError::File {
            path: path.to_path_buf(),
            reason: "the reader thread ended without an answer".into(),
        }),
        // The thread is left behind, blocked in the kernel; it holds only its descriptor.
        Err(_) => Err(FeedError::TimedOut {
            feed: path.display().to_string(),
            after: limits.timeout,
        }),
    }
}

/// The reading itself, on the helper thread.
fn read(path: &Path, max_bytes: u64, previous: Option<&str>) -> Result<Fetched, FeedError> {
    let (file, meta) = open_regular(path).map_err(|e| match e {
        OpenError::Io(e) => io_error(path, &e),
        OpenError::NotRegular(kind) => FeedError::NotRegular {
            path: path.to_path_buf(),
            kind,
        },
    })?;
    let etag = pseudo_etag(&meta);
    if previous == Some(etag.as_str()) {
        return Ok(Fetched::NotModified);
    }
    let too_large = || FeedError::TooLarge {
        feed: path.display().to_string(),
        max_bytes,
    };
    if meta.len() > max_bytes {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // One byte more than allowed tells a full file from one that grew since the fstat.
    file.take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(path, &e))?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large());
    }
    // Taken before the read: if the file changed during it, the next fetch sees another
    // pseudo ETag and reads it again, so a torn read is never kept as "not modified".
    Ok(Fetched::Body {
        bytes,
        validators: Validators {
            etag: Some(etag),
            last_modified: None,
        },
    })
}

/// The file's identity and version: device, inode, length and mtime to the nanosecond. A
/// file replaced by a rename (as editors save) has another inode even at the same length and
/// mtime (`cp -p`).
fn pseudo_etag(meta: &std::fs::Metadata) -> String {
    format!(
        "\"file-{:x}-{:x}-{}-{}.{:09}\"",
        meta.dev(),
        meta.ino(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec()
    )
}

/// An I/O error reading `path`, with what to do about it.
fn io_error(path: &Path, e: &io::Error) -> FeedError {
    let reason = match e.kind() {
        io::ErrorKind::NotFound => {
            "no such file; fix the calendar's url (a relative path is read from the config file's folder)".to_string()
        }
        io::ErrorKind::PermissionDenied => {
            "permission denied; make it readable by the user the daemon runs as".to_string()
        }
        _ => e.to_string(),
    };
    FeedError::File {
        path: PathBuf::from(path),
        reason,
    }
}
