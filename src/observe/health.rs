//! What `/healthz` and `/readyz` answer (SPEC §7), as plain state and pure rules over
//! instants the caller gives: no clock is read here, so the 30 s rule is tested with
//! made-up instants.

use std::time::{Duration, Instant};

/// How long scheduling or queue writes may fail before `/healthz` answers 503.
pub const UNHEALTHY_AFTER: Duration = Duration::from_secs(30);

/// One thing that either works or has been failing since some instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Probe {
    /// When the current run of failures began; `None` while it works.
    failing_since: Option<Instant>,
}

impl Probe {
    /// It worked: a run of failures ends.
    pub fn ok(&mut self) {
        self.failing_since = None;
    }

    /// It failed at `now`; a run of failures begins unless one is under way.
    pub fn failed(&mut self, now: Instant) {
        self.failing_since.get_or_insert(now);
    }

    /// Whether it counts as working at `now`: it works, or it has failed for less than
    /// [`UNHEALTHY_AFTER`].
    pub fn healthy_at(&self, now: Instant) -> bool {
        self.failing_since
            .is_none_or(|since| now.saturating_duration_since(since) < UNHEALTHY_AFTER)
    }
}

/// The state behind `/healthz` and `/readyz`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Health {
    /// The scheduler's ticks.
    pub scheduling: Probe,
    /// Writes to the queue (a worker's claims and outcomes, a calendar's rows).
    pub queue_writes: Probe,
    /// READY=1 has been sent.
    pub ready: bool,
    /// Shutdown has begun.
    pub stopping: bool,
}

impl Health {
    /// `/healthz`: scheduling and queue writes both count as working at `now`.
    pub fn live_at(&self, now: Instant) -> bool {
        self.scheduling.healthy_at(now) && self.queue_writes.healthy_at(now)
    }

    /// `/readyz`: READY=1 sent, not stopping, and the database reachable (which the caller
    /// has just found out).
    pub fn ready_with(&self, database_reachable: bool) -> bool {
        self.ready && !self.stopping && database_reachable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unhealthy_once_failing_for_30_seconds() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut h = Health::default();
        assert!(h.live_at(t0));
        h.queue_writes.failed(at(1));
        // Further failures do not move the start of the run.
        h.queue_writes.failed(at(20));
        assert!(h.live_at(at(30)), "29 s of failures");
        assert!(!h.live_at(at(31)), "30 s of failures");
        h.queue_writes.ok();
        assert!(h.live_at(at(31)), "a success ends the run");
        h.scheduling.failed(at(40));
        assert!(h.live_at(at(69)));
        assert!(!h.live_at(at(70)));
        // A clock that went backwards counts as no time.
        assert!(h.live_at(at(0)));
    }

    #[test]
    fn ready_after_ready_1_until_stopping_and_while_the_database_answers() {
        let mut h = Health::default();
        assert!(!h.ready_with(true), "before READY=1");
        h.ready = true;
        assert!(h.ready_with(true));
        assert!(!h.ready_with(false), "database unreachable");
        h.stopping = true;
        assert!(!h.ready_with(true), "stopping");
    }
}
