//! Rows written by another process — `slack-statusd set`, `queue retry` — reach the running
//! daemon at once, without a poll.
//!
//! The CLI opens the database, commits and exits, closing the files it wrote: inotify on the
//! database's folder reports `IN_CLOSE_WRITE` for them within microseconds, and only then
//! does the daemon read SQLite's `data_version` (a cheap counter) and wake the workers of
//! tokens with pending rows. The daemon's own connections stay open, so its own commits
//! raise no such event: an idle daemon is not woken by this at all.
//!
//! Why inotify and not a signal from the CLI: a system service runs as a dynamic user that
//! `set` from an admin's shell may not signal, while the folder's events reach the daemon
//! whoever wrote. A name in the folder that goes or is replaced (the database deleted or
//! renamed over) makes the daemon check the file at once, as a write would. Where inotify
//! is not available (a full watch table, a filesystem without it) the daemon falls back to
//! reading `data_version` once a second: SPEC §2's 1 s either way.

use std::ffi::OsString;

use tokio_util::sync::CancellationToken;

use super::watch::{add_watch, inotify, read_batch};
use super::{Wakers, EXTERNAL_CHECK};
use crate::queue::{ChangeWatcher, Queue};

/// The database folder's events: a file written and closed, names that appear or go.
const MASK: u32 = libc::IN_CLOSE_WRITE
    | libc::IN_MOVED_TO
    | libc::IN_MOVED_FROM
    | libc::IN_DELETE
    | libc::IN_ONLYDIR;

/// What one event in the database's folder means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Seen {
    /// Another file.
    Nothing,
    /// Another process wrote the database: look for new rows.
    Written,
    /// The database's name went or was replaced (or events were lost): check the file.
    Moved,
}

/// What the event (`mask`, `name`) means for the database named `db` (pure).
fn seen(mask: u32, name: &OsString, db: &OsString) -> Seen {
    if mask & libc::IN_Q_OVERFLOW != 0 {
        return Seen::Moved;
    }
    let mut wal = db.clone();
    wal.push("-wal");
    let renamed = libc::IN_DELETE | libc::IN_MOVED_FROM | libc::IN_MOVED_TO;
    if name == db && mask & renamed != 0 {
        Seen::Moved
    } else if (name == db || *name == wal) && mask & (libc::IN_CLOSE_WRITE | libc::IN_MOVED_TO) != 0
    {
        Seen::Written
    } else {
        Seen::Nothing
    }
}

/// Wake the workers of tokens with pending rows whenever another process writes the
/// database, until `shutdown`.
pub async fn watch(queue: Queue, wakers: Wakers, shutdown: CancellationToken) {
    let mut watcher = match queue.change_watcher().await {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch the database for rows added by `set`");
            return;
        }
    };
    let path = std::path::absolute(queue.path()).unwrap_or_else(|_| queue.path().to_path_buf());
    let (Some(dir), Some(db)) = (path.parent(), path.file_name()) else {
        return poll(&queue, &wakers, &mut watcher, &shutdown).await;
    };
    let fd = match inotify().and_then(|fd| add_watch(fd.get_ref(), dir, MASK).map(|_| fd)) {
        Ok(fd) => fd,
        Err(e) => {
            tracing::warn!(error = %e, folder = %dir.display(),
                "cannot watch the database's folder; looking for rows from `set` once a second");
            return poll(&queue, &wakers, &mut watcher, &shutdown).await;
        }
    };
    let db = db.to_os_string();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let events = match read_batch(&fd, &mut buf, &shutdown).await {
            None => return,
            Some(Ok(events)) => events,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "watching the database's folder failed; looking once a second");
                return poll(&queue, &wakers, &mut watcher, &shutdown).await;
            }
        };
        let what = events
            .iter()
            .map(|e| seen(e.mask, &e.name, &db))
            .max()
            .unwrap_or(Seen::Nothing);
        if what == Seen::Moved {
            // A fatal answer here stops the daemon, as a failed write would.
            let _ = queue.health().check_file();
        }
        if what != Seen::Nothing {
            wake_if_changed(&queue, &wakers, &mut watcher).await;
        }
    }
}

/// The fallback: read `data_version` once per [`EXTERNAL_CHECK`].
async fn poll(
    queue: &Queue,
    wakers: &Wakers,
    watcher: &mut ChangeWatcher,
    shutdown: &CancellationToken,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(EXTERNAL_CHECK) => {}
            _ = shutdown.cancelled() => return,
        }
        wake_if_changed(queue, wakers, watcher).await;
    }
}

/// If another connection committed since the last look, wake the workers of the tokens with
/// pending rows (not every idle worker: `data_version` also moves on the daemon's commits).
async fn wake_if_changed(queue: &Queue, wakers: &Wakers, watcher: &mut ChangeWatcher) {
    let tokens = match watcher.changed().await {
        Ok(true) => queue.tokens_with_pending().await,
        Ok(false) => return,
        Err(e) => Err(e),
    };
    match tokens {
        Ok(tokens) => {
            let wakers = wakers.lock().expect("wakers lock");
            tokens
                .iter()
                .filter_map(|t| wakers.get(t))
                .for_each(|w| w.notify_one());
        }
        Err(e) => tracing::warn!(error = %e, "database change check failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_databases_own_files_count() {
        let db = OsString::from("queue.db");
        let cases = [
            (libc::IN_CLOSE_WRITE, "queue.db-wal", Seen::Written),
            (libc::IN_CLOSE_WRITE, "queue.db", Seen::Written),
            (libc::IN_CLOSE_WRITE, "config.toml", Seen::Nothing),
            (libc::IN_CLOSE_WRITE, "queue.db-shm", Seen::Nothing),
            (libc::IN_DELETE, "queue.db", Seen::Moved),
            (libc::IN_MOVED_TO, "queue.db", Seen::Moved),
            (libc::IN_MOVED_FROM, "queue.db", Seen::Moved),
            // SQLite deletes its WAL when the last connection closes: nothing to read.
            (libc::IN_DELETE, "queue.db-wal", Seen::Nothing),
            (libc::IN_Q_OVERFLOW, "", Seen::Moved),
        ];
        for (mask, name, want) in cases {
            assert_eq!(
                seen(mask, &OsString::from(name), &db),
                want,
                "{name} {mask:#x}"
            );
        }
    }
}
