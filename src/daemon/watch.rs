//! Reload triggers: SIGHUP, and changes on disk to the config file or a `config.d/` drop-in.
//!
//! Editors often save by writing a new file and renaming it over the old one, which replaces
//! the inode a file watch would follow; so we watch the *folders* (with inotify, directly) and
//! filter by name. Bursts of events (write, chmod, rename) are debounced into one reload.
//!
//! The folders may hold other busy files: the log the daemon writes, the database. So the
//! kernel is asked only for events that finish a change (a write closed, a name created,
//! moved or deleted, a mode changed), never for each `write(2)` (`IN_MODIFY`) or `open(2)`;
//! and every event is filtered by name before anything else happens, without a log line.
//! (The `notify` crate subscribed to both and logged each event at trace level: with
//! `RUST_LOG=trace` and the log file in the config folder, each line it wrote produced the
//! next one, at full CPU.)

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};

/// Quiet time after the last change before reloading.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// The inotify events watched: changes that are complete, and names that appear or go.
const MASK: u32 = libc::IN_CLOSE_WRITE
    | libc::IN_MOVED_TO
    | libc::IN_MOVED_FROM
    | libc::IN_CREATE
    | libc::IN_DELETE
    | libc::IN_ATTRIB
    | libc::IN_ONLYDIR;

/// Why a reload was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// SIGHUP (`systemctl reload`).
    Signal,
    /// The config file or a drop-in changed on disk.
    FileChange,
}

/// Which watched folder an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folder {
    /// The folder of the config file.
    Config,
    /// Its `config.d/`.
    DropIns,
}

/// Whether a change to the entry `name` of `folder` concerns the config file named
/// `config_name`: the file itself, or a drop-in (`*.toml`, not hidden, as the loader reads).
pub fn is_relevant(folder: Folder, name: &OsStr, config_name: &OsStr) -> bool {
    match folder {
        Folder::Config => name == config_name,
        Folder::DropIns => {
            let n = name.as_bytes();
            n.ends_with(b".toml") && !n.starts_with(b".")
        }
    }
}

/// One event read from inotify.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RawEvent {
    /// The watch descriptor it belongs to (-1 for a queue overflow).
    wd: i32,
    /// What happened (`IN_*` bits).
    mask: u32,
    /// The entry's name within the folder (empty for events on the folder itself).
    name: OsString,
}

/// Size of `struct inotify_event` before its name.
const HEADER: usize = 16;

/// The events in a buffer filled by `read(2)` on an inotify descriptor: each a 16-byte header
/// (`wd`, `mask`, `cookie`, `len`) and `len` bytes of NUL-padded name. A truncated tail,
/// which the kernel never produces, is ignored rather than trusted.
fn parse_events(buf: &[u8]) -> Vec<RawEvent> {
    let mut events = Vec::new();
    let mut at = 0;
    while buf.len() - at >= HEADER {
        let word = |i: usize| {
            let b = &buf[at + 4 * i..at + 4 * i + 4];
            [b[0], b[1], b[2], b[3]]
        };
        let wd = i32::from_ne_bytes(word(0));
        let mask = u32::from_ne_bytes(word(1));
        let len = u32::from_ne_bytes(word(3)) as usize;
        let Some(raw) = buf.get(at + HEADER..at + HEADER + len) else {
            break;
        };
        let name = raw.split(|b| *b == 0).next().unwrap_or(&[]);
        events.push(RawEvent {
            wd,
            mask,
            name: OsString::from_vec(name.to_vec()),
        });
        at += HEADER + len;
    }
    events
}

/// The watch on the config's folders; dropping it stops the watching.
pub struct FileWatch {
    /// Cancels the reader task when the watch is dropped.
    _stop: DropGuard,
}

/// Start watching the folders of `config`; returns the watch (keep it alive) and spawns the
/// task that sends [`Trigger::FileChange`] on `tx`, debounced.
pub fn watch_files(
    config: &Path,
    tx: mpsc::Sender<Trigger>,
    shutdown: CancellationToken,
) -> io::Result<FileWatch> {
    let config = std::path::absolute(config).unwrap_or_else(|_| config.to_path_buf());
    let config_name = config.file_name().unwrap_or_default().to_os_string();
    let dir: PathBuf = config
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    // SAFETY: inotify_init1 takes flags only; a non-negative result is a new descriptor
    // that nothing else owns.
    let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and is owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let config_wd = add_watch(&fd, &dir)?;
    let dropins = dir.join("config.d");
    let dropins_wd = if dropins.is_dir() {
        Some(add_watch(&fd, &dropins)?)
    } else {
        None
    };
    // SAFETY: the AsyncFd owns the descriptor, which stays open and is never replaced
    // until the AsyncFd is dropped.
    let fd = unsafe { AsyncFd::register(fd)? };
    let stop = shutdown.child_token();
    let (raw_tx, raw_rx) = mpsc::channel::<()>(1);
    let folder_of = move |wd: i32| {
        if wd == config_wd {
            Some(Folder::Config)
        } else if Some(wd) == dropins_wd {
            Some(Folder::DropIns)
        } else {
            None
        }
    };
    tokio::spawn(read_events(
        fd,
        folder_of,
        config_name,
        raw_tx,
        stop.clone(),
    ));
    tokio::spawn(debounce(raw_rx, tx, stop.clone()));
    Ok(FileWatch {
        _stop: stop.drop_guard(),
    })
}

/// Add an inotify watch on the folder `dir`.
fn add_watch(fd: &OwnedFd, dir: &Path) -> io::Result<i32> {
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in the path"))?;
    // SAFETY: a valid descriptor and a NUL-terminated path that outlives the call.
    let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), MASK) };
    if wd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(wd)
}

/// Read inotify events until `stop`, and send `()` on `raw` for each batch that holds a
/// relevant one (or an overflow, after which anything may have changed). Nothing is logged
/// per event.
async fn read_events(
    fd: AsyncFd<OwnedFd>,
    folder_of: impl Fn(i32) -> Option<Folder>,
    config_name: OsString,
    raw: mpsc::Sender<()>,
    stop: CancellationToken,
) {
    // Room for many events at once; one read drains what is queued up to this.
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut guard = tokio::select! {
            g = fd.readable() => match g {
                Ok(g) => g,
                Err(e) => return watch_failed(&e),
            },
            _ = stop.cancelled() => return,
        };
        let read = guard.try_io(|fd| {
            // SAFETY: reads at most `buf.len()` bytes into `buf`, which lives through the call.
            let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        });
        let n = match read {
            Ok(Ok(n)) => n,
            Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
            Ok(Err(e)) => return watch_failed(&e),
            Err(_would_block) => continue,
        };
        let relevant = parse_events(&buf[..n]).iter().any(|e| {
            e.mask & libc::IN_Q_OVERFLOW != 0
                || folder_of(e.wd).is_some_and(|f| is_relevant(f, &e.name, &config_name))
        });
        // One pending change is enough: the reload reads everything anew.
        if relevant && raw.try_send(()).is_err() && raw.is_closed() {
            return;
        }
    }
}

/// Say once that watching stopped, and how to reload instead.
fn watch_failed(e: &io::Error) {
    tracing::warn!(error = %e, "watching the config folder failed; reload with SIGHUP");
}

/// Wait for a change on `raw`, then until the folder has been quiet for [`DEBOUNCE`], then
/// send one [`Trigger::FileChange`].
async fn debounce(mut raw: mpsc::Receiver<()>, tx: mpsc::Sender<Trigger>, stop: CancellationToken) {
    loop {
        tokio::select! {
            got = raw.recv() => if got.is_none() { return },
            _ = stop.cancelled() => return,
        }
        loop {
            tokio::select! {
                got = raw.recv() => if got.is_none() { return },
                _ = tokio::time::sleep(DEBOUNCE) => break,
                _ = stop.cancelled() => return,
            }
        }
        tracing::debug!("the config changed on disk; reloading");
        if tx.send(Trigger::FileChange).await.is_err() {
            return;
        }
    }
}

/// Send [`Trigger::Signal`] on every SIGHUP.
pub fn watch_sighup(tx: mpsc::Sender<Trigger>, shutdown: CancellationToken) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = hup.recv() => if tx.send(Trigger::Signal).await.is_err() { return },
                _ = shutdown.cancelled() => return,
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relevant_names() {
        let cfg = OsStr::new("config.toml");
        let cases = [
            (Folder::Config, "config.toml", true),
            (Folder::Config, "config.toml.swp", false),
            (Folder::Config, "config.toml.tmp", false),
            (Folder::Config, "daemon.log", false),
            (Folder::Config, "queue.db-wal", false),
            (Folder::Config, "other.toml", false),
            (Folder::DropIns, "alice.toml", true),
            (Folder::DropIns, "alice.toml~", false),
            (Folder::DropIns, ".alice.toml", false),
            (Folder::DropIns, "config.toml", true),
            (Folder::DropIns, "notes.txt", false),
        ];
        for (folder, name, want) in cases {
            assert_eq!(
                is_relevant(folder, OsStr::new(name), cfg),
                want,
                "{folder:?} {name}"
            );
        }
    }

    /// One event as the kernel lays it out, with its name padded to `len` bytes.
    fn event(wd: i32, mask: u32, name: &str, len: usize) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(wd.to_ne_bytes());
        b.extend(mask.to_ne_bytes());
        b.extend(7u32.to_ne_bytes());
        b.extend((len as u32).to_ne_bytes());
        let mut n = name.as_bytes().to_vec();
        n.resize(len, 0);
        b.extend(n);
        b
    }

    #[test]
    fn events_are_parsed_from_the_kernels_layout() {
        let ev = |wd, mask, name: &str| RawEvent {
            wd,
            mask,
            name: name.into(),
        };
        let two = [
            event(1, libc::IN_CLOSE_WRITE, "config.toml", 16),
            event(2, libc::IN_CREATE, "a.toml", 8),
        ]
        .concat();
        let overflow = event(-1, libc::IN_Q_OVERFLOW, "", 0);
        let mut truncated = two.clone();
        truncated.truncate(two.len() - 3);
        let cases: Vec<(&str, Vec<u8>, Vec<RawEvent>)> = vec![
            ("empty", vec![], vec![]),
            (
                "two events",
                two.clone(),
                vec![
                    ev(1, libc::IN_CLOSE_WRITE, "config.toml"),
                    ev(2, libc::IN_CREATE, "a.toml"),
                ],
            ),
            (
                "an overflow",
                overflow,
                vec![ev(-1, libc::IN_Q_OVERFLOW, "")],
            ),
            (
                "a truncated tail is dropped",
                truncated,
                vec![ev(1, libc::IN_CLOSE_WRITE, "config.toml")],
            ),
            ("a short header", vec![0; 15], vec![]),
        ];
        for (what, buf, want) in cases {
            assert_eq!(parse_events(&buf), want, "{what}");
        }
    }
}
