//! Reload triggers: SIGHUP, and changes on disk to the config file or a `config.d/` drop-in.
//!
//! Editors often save by writing a new file and renaming it over the old one, which replaces
//! the inode a file watch would follow; so we watch the *folders* and filter by name. Bursts of
//! events (write, chmod, rename) are debounced into one reload.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Quiet time after the last change before reloading.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// Why a reload was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// SIGHUP (`systemctl reload`).
    Signal,
    /// The config file or a drop-in changed on disk.
    FileChange,
}

/// Whether a change to `changed` concerns the config at `config`: the file itself, or a
/// `*.toml` in `config.d/` beside it.
pub fn is_relevant(config: &Path, changed: &Path) -> bool {
    if changed == config {
        return true;
    }
    let dropins = config.parent().map(|p| p.join("config.d"));
    changed.parent() == dropins.as_deref() && changed.extension().is_some_and(|e| e == "toml")
}

/// Start watching; returns the watcher (keep it alive) and spawns the debounce task that sends
/// [`Trigger::FileChange`] on `tx`.
pub fn watch_files(
    config: &Path,
    tx: mpsc::Sender<Trigger>,
    shutdown: CancellationToken,
) -> notify::Result<RecommendedWatcher> {
    let config = std::path::absolute(config).unwrap_or_else(|_| config.to_path_buf());
    let (raw_tx, mut raw_rx) = mpsc::unbounded_channel::<()>();
    let target = config.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            if event.kind.is_access() {
                return;
            }
            if event.paths.iter().any(|p| is_relevant(&target, p)) {
                let _ = raw_tx.send(());
            }
        }
    })?;
    let dir: PathBuf = config
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    let dropins = dir.join("config.d");
    if dropins.is_dir() {
        watcher.watch(&dropins, RecursiveMode::NonRecursive)?;
    }
    tokio::spawn(async move {
        loop {
            tokio::select! {
                got = raw_rx.recv() => if got.is_none() { return },
                _ = shutdown.cancelled() => return,
            }
            // Debounce: wait until the folder has been quiet for DEBOUNCE.
            loop {
                tokio::select! {
                    got = raw_rx.recv() => if got.is_none() { return },
                    _ = tokio::time::sleep(DEBOUNCE) => break,
                    _ = shutdown.cancelled() => return,
                }
            }
            if tx.send(Trigger::FileChange).await.is_err() {
                return;
            }
        }
    });
    Ok(watcher)
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
    fn relevant_paths() {
        let cfg = Path::new("/etc/s/config.toml");
        assert!(is_relevant(cfg, Path::new("/etc/s/config.toml")));
        assert!(is_relevant(cfg, Path::new("/etc/s/config.d/alice.toml")));
        assert!(!is_relevant(cfg, Path::new("/etc/s/config.toml.swp")));
        assert!(!is_relevant(cfg, Path::new("/etc/s/config.d/alice.toml~")));
        assert!(!is_relevant(cfg, Path::new("/etc/s/other.toml")));
        assert!(!is_relevant(cfg, Path::new("/etc/s/config.d/sub/x.toml")));
    }
}
