//! The lease an instance holds on a token when several instances share a PostgreSQL queue
//! (SPEC §8; the design is in ARCHITECTURE.md, "Several instances on PostgreSQL"). Pure: the
//! database grants and renews, and this decides, on the instance's own monotonic clock,
//! whether a request may start and when to renew.
//!
//! Every instant is the moment the instance *sent* the statement that granted or renewed the
//! lease. The database stamps the expiry with its own clock when the statement arrives,
//! which is later, so the lease this instance believes in never outlives the one the others
//! see.

use std::time::Duration;

use tokio::time::Instant;

/// The shortest `lease` the config accepts, and its default.
pub const MIN_LEASE: Duration = Duration::from_secs(15);

/// A lease on one token, as its holder sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The epoch the database gave this holding: every claim and finish names it, and the
    /// database refuses them once another instance has taken the token (a higher epoch).
    epoch: i64,
    /// `lease` from the config.
    length: Duration,
    /// When the last successful grant or renewal was sent.
    since: Instant,
}

impl Lease {
    /// A lease granted with `epoch` by a statement sent at `sent_at`.
    pub fn granted(epoch: i64, length: Duration, sent_at: Instant) -> Lease {
        Lease {
            epoch,
            length,
            since: sent_at,
        }
    }

    /// The database confirmed a renewal sent at `sent_at` (a late answer to an older renewal
    /// never moves the lease back).
    pub fn renewed(&mut self, sent_at: Instant) {
        self.since = self.since.max(sent_at);
    }

    /// The holding's epoch, for the fence in each claim and finish.
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// When the next renewal is due: a third of the lease after the last one.
    pub fn renew_at(&self) -> Instant {
        self.since + self.length / 3
    }

    /// When the others may take the token, at the earliest.
    pub fn lost_at(&self) -> Instant {
        self.since + self.length
    }

    /// Whether a request that may take `request_timeout` may start at `now`: only while more
    /// than that is left of the lease, so that it has ended, answered or timed out, before
    /// anyone else can hold the token.
    pub fn may_start(&self, now: Instant, request_timeout: Duration) -> bool {
        now + request_timeout < self.lost_at()
    }

    /// The instant from which no request may start until the next renewal.
    pub fn stop_starting_at(&self, request_timeout: Duration) -> Instant {
        self.lost_at()
            .checked_sub(request_timeout)
            .unwrap_or(self.since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(10);

    #[test]
    fn a_request_starts_only_while_more_than_its_timeout_of_the_lease_is_left() {
        let t0 = Instant::now();
        let lease = Lease::granted(7, MIN_LEASE, t0);
        assert!(lease.may_start(t0, TIMEOUT));
        assert!(lease.may_start(t0 + Duration::from_millis(4_999), TIMEOUT));
        assert!(
            !lease.may_start(t0 + Duration::from_secs(5), TIMEOUT),
            "exactly 10 s left"
        );
        assert!(!lease.may_start(t0 + Duration::from_secs(20), TIMEOUT));
        assert_eq!(lease.stop_starting_at(TIMEOUT), t0 + Duration::from_secs(5));
        assert_eq!(lease.lost_at(), t0 + MIN_LEASE);
    }

    #[test]
    fn a_renewal_every_third_keeps_the_holder_sending_and_never_moves_back() {
        let t0 = Instant::now();
        let mut lease = Lease::granted(1, MIN_LEASE, t0);
        assert_eq!(lease.renew_at(), t0 + Duration::from_secs(5));
        // Renewed on time, the holder never has to stop: 15 − 5 = 10 s is left at the next
        // renewal, and the stop comes only when that is not strictly more than the timeout.
        lease.renewed(t0 + Duration::from_secs(5));
        assert!(lease.may_start(t0 + Duration::from_millis(9_999), TIMEOUT));
        assert_eq!(lease.renew_at(), t0 + Duration::from_secs(10));
        // A slow answer to an older renewal arrives last.
        lease.renewed(t0 + Duration::from_secs(1));
        assert_eq!(lease.renew_at(), t0 + Duration::from_secs(10));
        assert_eq!(lease.epoch(), 1);
    }

    #[test]
    fn a_holder_cut_off_stops_sending_before_its_lease_can_be_taken() {
        let t0 = Instant::now();
        let lease = Lease::granted(3, Duration::from_secs(30), t0);
        // No renewal gets through: the last request may start at 19.999 s and time out by
        // 29.999 s, before the others may take the token at 30 s.
        let last_start = t0 + Duration::from_millis(19_999);
        assert!(lease.may_start(last_start, TIMEOUT));
        assert!(last_start + TIMEOUT < lease.lost_at());
        assert!(!lease.may_start(t0 + Duration::from_secs(20), TIMEOUT));
    }
}
