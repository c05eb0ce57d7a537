//! Temporary statuses that put back what was there (SPEC §6 "Restore"): the pure decisions.
//!
//! A temporary status (a rule or calendar with `restore = true`, `set --restore`) saves the
//! status it replaces and leaves a restore due at its end. Two moments need a decision, both
//! functions of what the daemon knows and what Slack answered — no I/O, no clock:
//!
//! - [`on_temporary`]: right before a temporary status goes out, with the status Slack shows
//!   now and the restore already pending for the target, if any. Temporaries that overlap
//!   share one restore, due at the end of the last of them, holding the status from before
//!   the first: the daemon never "restores" one of its own temporary statuses.
//! - [`at_restore`]: when the restore's turn comes, with the status Slack shows then. It puts
//!   the saved status back only if what shows is still the temporary one, or empty (Slack
//!   clears a status at its `status_expiration`); otherwise it is skipped with a reason.
//!
//! Wiring these into the queue (saved statuses, restore rows) and the worker is the job of
//! the queue and daemon modules; this module decides only.

use crate::profile::Status;

/// The restore waiting for a target: what to put back, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRestore {
    /// The status from before the first temporary one.
    pub saved: Status,
    /// The latest temporary status sent: at the restore, a status equal to it is still ours.
    pub temporary: Status,
    /// When to restore: the end of the last temporary status (Unix seconds).
    pub due: i64,
}

/// What [`on_temporary`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Leave (or move) a restore due at `pending.due` holding `pending.saved`.
    Restore(PendingRestore),
    /// The status before was empty or had expired: there is nothing to put back (a saved
    /// empty status restores nothing; Slack's own expiry clears the temporary one).
    Nothing,
}

/// A temporary status `temporary`, ending at `end` (Unix seconds), is about to go out; Slack
/// shows `shown` now; `pending` is the target's restore already waiting, if any.
pub fn on_temporary(
    pending: Option<&PendingRestore>,
    shown: &Status,
    temporary: &Status,
    end: i64,
    now: i64,
) -> Plan {
    match pending {
        // Nested: keep the status from before the first temporary, due at the later end.
        Some(p) => Plan::Restore(PendingRestore {
            saved: p.saved.clone(),
            temporary: temporary.clone(),
            due: p.due.max(end),
        }),
        None if shown.is_empty() || shown.is_expired_at(now) => Plan::Nothing,
        None => Plan::Restore(PendingRestore {
            saved: shown.clone(),
            temporary: temporary.clone(),
            due: end,
        }),
    }
}

/// Why a restore was not applied: the reason recorded on its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// The user set another status meanwhile: theirs wins.
    ChangedByUser,
    /// A later firing that is not temporary set the status: it wins.
    Overtaken,
    /// The saved status's own expiry has passed: putting it back would show a stale status.
    Expired,
}

impl Skip {
    /// The reason as stored on the row and shown by `queue`.
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::ChangedByUser => "changed_by_user",
            Skip::Overtaken => "overtaken",
            Skip::Expired => "expired",
        }
    }
}

/// What to do when a restore's turn comes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AtRestore {
    /// Send the saved status back (text, emoji and its own `status_expiration`).
    Apply(Status),
    /// Record the row as skipped for this reason.
    Skip(Skip),
}

/// The restore `pending` is due; Slack shows `shown`; `overtaken` says whether a firing that
/// is not temporary set the target's status after the temporary one went out.
pub fn at_restore(
    pending: &PendingRestore,
    shown: &Status,
    overtaken: bool,
    now: i64,
) -> AtRestore {
    if overtaken {
        return AtRestore::Skip(Skip::Overtaken);
    }
    let ours = same_status(shown, &pending.temporary);
    if !ours && !shown.is_empty() {
        return AtRestore::Skip(Skip::ChangedByUser);
    }
    if pending.saved.is_expired_at(now) {
        return AtRestore::Skip(Skip::Expired);
    }
    AtRestore::Apply(pending.saved.clone())
}

/// Text and emoji compared: the expiry Slack reports may be normalised.
fn same_status(a: &Status, b: &Status) -> bool {
    a.text == b.text && a.emoji == b.emoji
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(text: &str, emoji: &str, expiration: i64) -> Status {
        Status {
            text: text.into(),
            emoji: emoji.into(),
            expiration,
        }
    }

    #[test]
    fn a_temporary_status_saves_what_shows_unless_nothing_worth_keeping_shows() {
        let lunch = st("Lunch", ":taco:", 1300);
        let own = st("Writing", ":pencil:", 0);
        let cases = [
            // The user's own status is saved, the restore due at the lunch's end.
            (
                st("Writing", ":pencil:", 0),
                Plan::Restore(PendingRestore {
                    saved: own.clone(),
                    temporary: lunch.clone(),
                    due: 1300,
                }),
            ),
            // Empty: nothing to put back.
            (st("", "", 0), Plan::Nothing),
            // Expired already (Slack had not cleared it yet): nothing to put back.
            (st("Old", ":x:", 1000), Plan::Nothing),
            (st("Old", ":x:", 999), Plan::Nothing),
            // Expires later: saved with its own expiry.
            (
                st("Trip", ":airplane:", 5000),
                Plan::Restore(PendingRestore {
                    saved: st("Trip", ":airplane:", 5000),
                    temporary: lunch.clone(),
                    due: 1300,
                }),
            ),
        ];
        for (shown, want) in cases {
            assert_eq!(
                on_temporary(None, &shown, &lunch, 1300, 1000),
                want,
                "{shown:?}"
            );
        }
    }

    #[test]
    fn nested_temporaries_share_one_restore_with_the_status_from_before_the_first() {
        let own = st("Writing", ":pencil:", 0);
        let meeting = st("Meeting", ":calendar:", 1100);
        let lunch = st("Lunch", ":taco:", 1300);
        let first = on_temporary(None, &own, &meeting, 1100, 1000);
        let Plan::Restore(first) = first else {
            panic!("the first temporary saves the user's status")
        };
        // The second starts while the first shows: Slack shows the meeting, not the user's.
        let second = on_temporary(Some(&first), &meeting, &lunch, 1300, 1050);
        assert_eq!(
            second,
            Plan::Restore(PendingRestore {
                saved: own.clone(),
                temporary: lunch.clone(),
                due: 1300,
            })
        );
        // A shorter one inside a longer one keeps the later end.
        let inner = on_temporary(Some(&first), &meeting, &lunch, 1080, 1050);
        let Plan::Restore(inner) = inner else {
            panic!()
        };
        assert_eq!((inner.saved, inner.due), (own, 1100));
    }

    #[test]
    fn a_restore_applies_only_over_its_own_temporary_or_an_empty_status() {
        let pending = PendingRestore {
            saved: st("Writing", ":pencil:", 0),
            temporary: st("Lunch", ":taco:", 1300),
            due: 1300,
        };
        let apply = AtRestore::Apply(st("Writing", ":pencil:", 0));
        let cases = [
            // Still the temporary one (Slack's expiry may be normalised): put back.
            (st("Lunch", ":taco:", 1299), false, apply.clone()),
            // Slack cleared it at its expiry: put back.
            (st("", "", 0), false, apply.clone()),
            // The user changed it: theirs wins.
            (
                st("Gym", ":muscle:", 0),
                false,
                AtRestore::Skip(Skip::ChangedByUser),
            ),
            (
                st("Lunch", ":pizza:", 0),
                false,
                AtRestore::Skip(Skip::ChangedByUser),
            ),
            // A later firing without restore set the status: it wins, whatever shows.
            (st("", "", 0), true, AtRestore::Skip(Skip::Overtaken)),
            (
                st("Lunch", ":taco:", 0),
                true,
                AtRestore::Skip(Skip::Overtaken),
            ),
        ];
        for (shown, overtaken, want) in cases {
            assert_eq!(
                at_restore(&pending, &shown, overtaken, 1300),
                want,
                "{shown:?}"
            );
        }
    }

    #[test]
    fn a_saved_status_that_expired_meanwhile_is_not_put_back() {
        let pending = PendingRestore {
            saved: st("Trip", ":airplane:", 1200),
            temporary: st("Lunch", ":taco:", 1300),
            due: 1300,
        };
        assert_eq!(
            at_restore(&pending, &st("Lunch", ":taco:", 1300), false, 1300),
            AtRestore::Skip(Skip::Expired)
        );
        // Still valid at the restore: put back with its own expiry.
        assert_eq!(
            at_restore(&pending, &st("", "", 0), false, 1100),
            AtRestore::Apply(st("Trip", ":airplane:", 1200))
        );
        assert_eq!(Skip::Expired.as_str(), "expired");
        assert_eq!(Skip::ChangedByUser.as_str(), "changed_by_user");
        assert_eq!(Skip::Overtaken.as_str(), "overtaken");
    }
}
