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
//!
//! `config.d/` may appear, go, or be replaced (renamed away, a symlink swapped) while the
//! daemon runs, so its name in the config folder is watched too: each event naming it reloads
//! and re-adds the drop-ins watch on whatever `config.d` now is. The old watch followed the
//! old folder's inode wherever it went, so it is removed rather than trusted.
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

/// The drop-ins folder's mask: [`MASK`], and the folder itself moved or deleted, which is
/// all the config folder would not see when `config.d` is a symlink to a folder elsewhere.
const DROP_INS_MASK: u32 = MASK | libc::IN_MOVE_SELF | libc::IN_DELETE_SELF;

/// The drop-ins folder's name in the config folder, as the loader reads it.
const DROP_IN_DIR: &str = "config.d";

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
/// `config_name`: the file itself, the drop-ins folder (the set of drop-ins may have changed),
/// or a drop-in (`*.toml`, not hidden, as the loader reads).
pub fn is_relevant(folder: Folder, name: &OsStr, config_name: &OsStr) -> bool {
    match folder {
        Folder::Config => name == config_name || name == DROP_IN_DIR,
        Folder::DropIns => {
            let n = name.as_bytes();
            n.ends_with(b".toml") && !n.starts_with(b".")
        }
    }
}

/// What one inotify event asks for; ordered by how much, so a batch asks for its maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    /// Nothing: another file, or a watch already replaced.
    Ignore,
    /// A reload.
    Reload,
    /// A reload, and the drop-ins watch added anew on whatever `config.d` now is.
    Rewatch,
}

/// What the event `e` asks for, given the folder its watch descriptor stands for (`None`:
/// one no longer watched, such as the `IN_IGNORED` that follows our own removal of an old
/// drop-ins watch). Pure: the caller looks the folder up and carries the action out.
fn action(e: &RawEvent, folder: Option<Folder>, config_name: &OsStr) -> Action {
    // After an overflow anything may have changed, `config.d` too.
    if e.mask & libc::IN_Q_OVERFLOW != 0 {
        return Action::Rewatch;
    }
    let Some(folder) = folder else {
        return Action::Ignore;
    };
    let gone = libc::IN_MOVE_SELF | libc::IN_DELETE_SELF | libc::IN_IGNORED;
    match folder {
        Folder::Config if e.name == DROP_IN_DIR => Action::Rewatch,
        Folder::DropIns if e.mask & gone != 0 => Action::Rewatch,
        _ if is_relevant(folder, &e.name, config_name) => Action::Reload,
        _ => Action::Ignore,
    }
}

/// One event read from inotify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RawEvent {
    /// The watch descriptor it belongs to (-1 for a queue overflow).
    pub(super) wd: i32,
    /// What happened (`IN_*` bits).
    pub(super) mask: u32,
    /// The entry's name within the folder (empty for events on the folder itself).
    pub(super) name: OsString,
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
    let fd = inotify()?;
    let config_wd = add_watch(fd.get_ref(), &dir, MASK)?;
    let drop_ins_path = dir.join(DROP_IN_DIR);
    let drop_ins = add_drop_ins_watch(fd.get_ref(), &drop_ins_path)?;
    let watches = Watches {
        config: config_wd,
        drop_ins,
        drop_ins_path,
    };
    let stop = shutdown.child_token();
    let (raw_tx, raw_rx) = mpsc::channel::<()>(1);
    tokio::spawn(read_events(fd, watches, config_name, raw_tx, stop.clone()));
    tokio::spawn(debounce(raw_rx, tx, stop.clone()));
    Ok(FileWatch {
        _stop: stop.drop_guard(),
    })
}

/// The watch descriptors in use, and what they stand for.
struct Watches {
    /// The config file's folder; watched for as long as the daemon runs.
    config: i32,
    /// `config.d/`, when it exists. Replaced whenever the name `config.d` changes, so events
    /// of a folder that was renamed away stop counting.
    drop_ins: Option<i32>,
    /// Where `config.d` is, so that it can be watched again.
    drop_ins_path: PathBuf,
}

impl Watches {
    /// Which folder the watch descriptor `wd` stands for, if it is still in use.
    fn folder_of(&self, wd: i32) -> Option<Folder> {
        if wd == self.config {
            Some(Folder::Config)
        } else if Some(wd) == self.drop_ins {
            Some(Folder::DropIns)
        } else {
            None
        }
    }

    /// Watch whatever `config.d` is now (nothing when it is gone), and remove the old watch:
    /// it follows the old folder, wherever that was moved.
    fn rewatch(&mut self, fd: &OwnedFd) {
        let new = add_drop_ins_watch(fd, &self.drop_ins_path).unwrap_or_else(|e| {
            // Only events of `config.d` itself or an overflow get here, never the log's
            // writes, so this line cannot feed itself.
            tracing::warn!(error = %e, folder = %self.drop_ins_path.display(),
                "cannot watch the drop-in folder; reload with SIGHUP after changing drop-ins");
            None
        });
        // The same folder (renamed away and back) keeps its descriptor; never remove the
        // config folder's, should `config.d` lead back to it.
        if let Some(old) = self
            .drop_ins
            .filter(|&old| Some(old) != new && old != self.config)
        {
            // SAFETY: a valid descriptor and a watch descriptor; removing one the kernel has
            // already dropped (the folder was deleted) fails with EINVAL and changes nothing.
            unsafe { libc::inotify_rm_watch(fd.as_raw_fd(), old) };
        }
        self.drop_ins = new;
    }
}

/// Add an inotify watch on the folder `dir` for the events `mask`.
pub(super) fn add_watch(fd: &OwnedFd, dir: &Path, mask: u32) -> io::Result<i32> {
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in the path"))?;
    // SAFETY: a valid descriptor and a NUL-terminated path that outlives the call.
    let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), mask) };
    if wd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(wd)
}

/// Watch the drop-ins folder at `path` (following a symlink, as the loader does); `None`
/// when there is no folder there, which the loader takes as no drop-ins.
fn add_drop_ins_watch(fd: &OwnedFd, path: &Path) -> io::Result<Option<i32>> {
    match add_watch(fd, path, DROP_INS_MASK) {
        Ok(wd) => Ok(Some(wd)),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Read inotify events until `stop`, and send `()` on `raw` for each batch that holds a
/// relevant one (or an overflow, after which anything may have changed), after re-adding the
/// drop-ins watch if the batch asks for it. Nothing is logged per event.
async fn read_events(
    fd: AsyncFd<OwnedFd>,
    mut watches: Watches,
    config_name: OsString,
    raw: mpsc::Sender<()>,
    stop: CancellationToken,
) {
    // Room for many events at once; one read drains what is queued up to this.
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let events = match read_batch(&fd, &mut buf, &stop).await {
            None => return,
            Some(Ok(events)) => events,
            Some(Err(e)) => return watch_failed(&e),
        };
        // Every event of the batch is judged by the watches it was queued under; the new
        // drop-ins watch can only have events in later reads.
        let wanted = events
            .iter()
            .map(|e| action(e, watches.folder_of(e.wd), &config_name))
            .max()
            .unwrap_or(Action::Ignore);
        // The new watch is in place before the reload is asked for, so a drop-in written
        // into a new `config.d` is either seen by that reload or reported by the new watch.
        if wanted == Action::Rewatch {
            watches.rewatch(fd.get_ref());
        }
        let relevant = wanted != Action::Ignore;
        // One pending change is enough: the reload reads everything anew.
        if relevant && raw.try_send(()).is_err() && raw.is_closed() {
            return;
        }
    }
}

/// The next batch of events on the inotify descriptor `fd`, read into `buf`; `None` once
/// `stop` fires. An error means the descriptor cannot be read any more.
pub(super) async fn read_batch(
    fd: &AsyncFd<OwnedFd>,
    buf: &mut [u8],
    stop: &CancellationToken,
) -> Option<io::Result<Vec<RawEvent>>> {
    loop {
        let mut guard = tokio::select! {
            g = fd.readable() => match g {
                Ok(g) => g,
                Err(e) => return Some(Err(e)),
            },
            _ = stop.cancelled() => return None,
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
        match read {
            Ok(Ok(n)) => return Some(Ok(parse_events(&buf[..n]))),
            Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
            Ok(Err(e)) => return Some(Err(e)),
            Err(_would_block) => continue,
        }
    }
}

/// A new non-blocking inotify descriptor, registered with the runtime.
pub(super) fn inotify() -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: inotify_init1 takes flags only; a non-negative result is a new descriptor
    // that nothing else owns.
    let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and is owned by nothing else; the AsyncFd owns it from
    // here, and it stays open and is never replaced until the AsyncFd is dropped.
    unsafe { Ok(AsyncFd::register(OwnedFd::from_raw_fd(fd))?) }
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
            (Folder::Config, "config.d", true),
            (Folder::Config, "config.d.old", false),
            (Folder::DropIns, "config.d", false),
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

    #[test]
    fn actions_of_events() {
        use libc::{
            IN_ATTRIB, IN_CLOSE_WRITE, IN_CREATE, IN_DELETE, IN_DELETE_SELF, IN_IGNORED, IN_ISDIR,
            IN_MOVED_FROM, IN_MOVED_TO, IN_MOVE_SELF, IN_Q_OVERFLOW,
        };
        use Action::{Ignore, Reload, Rewatch};
        let cfg = OsStr::new("config.toml");
        let (c, d) = (Some(Folder::Config), Some(Folder::DropIns));
        let dir = IN_ISDIR;
        let cases = [
            // The config folder: the config saved or renamed over; the log written.
            (c, IN_CLOSE_WRITE, "config.toml", Reload),
            (c, IN_MOVED_TO, "config.toml", Reload),
            (c, IN_CLOSE_WRITE, "daemon.log", Ignore),
            // `config.d` made, renamed away, renamed to, removed, chmod-ed.
            (c, IN_CREATE | dir, "config.d", Rewatch),
            (c, IN_MOVED_FROM | dir, "config.d", Rewatch),
            (c, IN_MOVED_TO | dir, "config.d", Rewatch),
            (c, IN_DELETE | dir, "config.d", Rewatch),
            (c, IN_ATTRIB | dir, "config.d", Rewatch),
            // A `config.d` symlink made, or swapped by rename (`mv -T tmp config.d`).
            (c, IN_CREATE, "config.d", Rewatch),
            (c, IN_MOVED_TO, "config.d", Rewatch),
            (c, IN_CREATE | dir, "config.d.old", Ignore),
            // The drop-ins folder: a drop-in written or removed; an editor's backup.
            (d, IN_CLOSE_WRITE, "alice.toml", Reload),
            (d, IN_DELETE, "alice.toml", Reload),
            (d, IN_CLOSE_WRITE, ".alice.toml.swp", Ignore),
            // The folder itself moved or deleted (a symlink's target), its watch dropped.
            (d, IN_MOVE_SELF, "", Rewatch),
            (d, IN_DELETE_SELF, "", Rewatch),
            (d, IN_IGNORED, "", Rewatch),
            // A watch already replaced: its last events count for nothing.
            (None, IN_IGNORED, "", Ignore),
            (None, IN_CLOSE_WRITE, "alice.toml", Ignore),
            (None, IN_Q_OVERFLOW, "", Rewatch),
        ];
        for (folder, mask, name, want) in cases {
            let e = RawEvent {
                wd: 1,
                mask,
                name: name.into(),
            };
            let got = action(&e, folder, cfg);
            assert_eq!(got, want, "{folder:?} {mask:#x} {name:?}");
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
