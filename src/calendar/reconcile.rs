//! Reconciliation (SPEC §5 "Each successful fetch recomputes the future"): the firings a
//! calendar wants against the queue rows it already has → what to enqueue, what to
//! supersede, and whether the status shown must end now. Pure: the rows come in as plain
//! data and the decision goes out as a [`Plan`] for the daemon to apply.
//!
//! The rows are the memory: a change whose key has a row is never enqueued again, across
//! fetches and restarts — except when that row was superseded because the feed no longer
//! wanted it, since a change that comes back (an edit, then its undo) is wanted again.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::firings::Firing;

/// Where one of the calendar's queue rows is, as far as reconciling cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowState {
    /// Waiting to be sent: superseded if the feed no longer wants it.
    Pending,
    /// Being sent now: left alone, whatever the feed says.
    InFlight,
    /// Sent.
    Sent,
    /// Finished otherwise — failed, skipped, superseded by a merge or by the user. It still
    /// counts as done: the change is not enqueued again.
    Finished,
    /// Superseded by an earlier fetch (reason `calendar_changed`): forgotten, so the change
    /// is enqueued again if the feed wants it again.
    CalendarChanged,
}

/// One queue row of this calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    /// The row's id.
    pub id: i64,
    /// The [`Firing::key`] it was enqueued with.
    pub key: String,
    /// When it is due; rows to supersede are listed in this order.
    pub at: DateTime<Utc>,
    /// Its state.
    pub state: RowState,
}

/// What one fetch changes in the queue.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Wanted firings that have no row yet, in time order.
    pub enqueue: Vec<Firing>,
    /// Pending rows whose change the feed no longer wants, to supersede with the reason
    /// `calendar_changed`, in due order.
    pub supersede: Vec<i64>,
    /// The status shown is for an event that went away (cancelled, declined, moved or
    /// deleted) and nothing takes its place now: end it at once (a clear, or with `restore`
    /// the restore, at `now`).
    pub end_now: bool,
}

/// The plan for `wanted` (from [`super::firings()`] at `now`) against this calendar's `rows`.
/// `shown` is the key of the row whose status Slack shows now — the target's last sent
/// status, if it is this calendar's and has not expired; the caller works that out.
pub fn reconcile(
    now: DateTime<Utc>,
    wanted: Vec<Firing>,
    rows: &[Existing],
    shown: Option<&str>,
) -> Plan {
    // The state that counts for each key: that of a row not forgotten, and among several,
    // one still to be sent.
    let mut remembered: HashMap<&str, RowState> = HashMap::new();
    for row in rows.iter().filter(|r| r.state != RowState::CalendarChanged) {
        let to_send = matches!(row.state, RowState::Pending | RowState::InFlight);
        let slot = remembered.entry(&row.key).or_insert(row.state);
        if to_send {
            *slot = row.state;
        }
    }

    // Looked up once per row: a feed of recurring meetings wants thousands of changes.
    let wanted_keys: HashSet<&str> = wanted.iter().map(|f| f.key.as_str()).collect();
    let mut stale: Vec<&Existing> = rows
        .iter()
        .filter(|r| r.state == RowState::Pending)
        .filter(|r| !wanted_keys.contains(r.key.as_str()))
        .collect();
    stale.sort_by_key(|r| (r.at, r.id));

    let end_now = shown.is_some_and(|shown| {
        let still_wanted = wanted.iter().any(|f| f.key == shown && f.active_at(now));
        // Another change running now takes the status over if it is still to be sent: new,
        // or queued. One already sent (or finished) before the shown one will not come again.
        let replaced = wanted.iter().any(|f| {
            f.key != shown
                && f.active_at(now)
                && matches!(
                    remembered.get(f.key.as_str()),
                    None | Some(RowState::Pending | RowState::InFlight)
                )
        });
        !still_wanted && !replaced
    });

    let enqueue = wanted
        .into_iter()
        .filter(|f| !remembered.contains_key(f.key.as_str()))
        .collect();
    Plan {
        enqueue,
        supersede: stale.into_iter().map(|r| r.id).collect(),
        end_now,
    }
}
