//! The systemd notify protocol: READY=1, STATUS=, WATCHDOG=1, RELOADING=1, STOPPING=1.
//! Every call is a no-op when `NOTIFY_SOCKET` is unset (not under systemd).

use std::time::Duration;

use sd_notify::NotifyState;

/// Tell the manager the daemon is ready: the config is valid and the database open.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A one-line description of what the daemon is doing, shown by `systemctl status`.
pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

/// A reload began (ended by [`status`] plus READY=1 via [`reloaded`]).
pub fn reloading() {
    // systemd 253 and newer require MONOTONIC_USEC= with RELOADING=1.
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// A reload ended, successfully or not: READY=1 again, with the new status.
pub fn reloaded(status: &str) {
    ready(status);
}

/// Keep-alive for `WatchdogSec=`.
pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

/// The daemon is shutting down.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// How often to ping the watchdog: half of `WATCHDOG_USEC`, if the manager set it for us.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
        .map(|d| d / 2)
        .filter(|d| !d.is_zero())
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify the service manager");
    }
}
