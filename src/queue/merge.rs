//! Merging the due updates of one target into one request. Pure: a function of the rows and
//! the current time.
//!
//! The status (`status_text`, `status_emoji`, `status_expiration`) is one group, every other
//! field a group of its own, and DND and presence one each; per group the newest firing
//! wins. A row that wins at least one group that is sent *contributes*; a row whose only
//! winning group is a status (or a snooze) that has expired is *expired*; any other row is
//! *superseded*. The claim merges each part's rows apart (`profile::Part`): one request each.

use std::collections::BTreeMap;

use super::SKIPPED_MANUAL;
use crate::profile::Patch;

/// One pending row as the merge sees it. Rows must be given in firing order.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeInput {
    /// Row id.
    pub id: i64,
    /// What the row sets.
    pub patch: Patch,
}

/// The result of merging: one request and the fate of every row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MergePlan {
    /// What to send; empty when nothing is left to send.
    pub patch: Patch,
    /// Rows that contribute at least one group to `patch`.
    pub contributors: Vec<i64>,
    /// Rows whose every group was overtaken by a newer firing.
    pub superseded: Vec<i64>,
    /// Rows whose winning status expired before its turn and that contribute nothing else.
    pub expired: Vec<i64>,
    /// Rows left out because the user set a status by hand (see [`MergePlan::skip_status`]).
    pub skipped: Vec<i64>,
    /// The row whose status is in `patch`.
    pub status_from: Option<i64>,
    /// Rows that win at least one field other than the status.
    pub field_winners: Vec<i64>,
    /// Why the rows in `skipped` were left out; `None`: the user set a status by hand.
    pub skip_reason: Option<&'static str>,
}

impl MergePlan {
    /// The reason recorded on the rows in `skipped`.
    pub fn skip_reason(&self) -> &'static str {
        self.skip_reason.unwrap_or(SKIPPED_MANUAL)
    }

    /// [`MergePlan::skip_status`] for `reason` (a restore that must not apply).
    pub fn skip_status_because(&mut self, reason: &'static str) {
        self.skip_status();
        self.skip_reason = Some(reason);
    }

    /// Leave the status out of the request (`respect_manual`): the row it came from is
    /// skipped unless it also contributes another field.
    pub fn skip_status(&mut self) {
        self.patch.status = None;
        if let Some(id) = self.status_from.take() {
            if !self.field_winners.contains(&id) {
                self.contributors.retain(|c| *c != id);
                self.skipped.push(id);
            }
        }
    }
}

/// Merge `rows` (oldest firing first) for sending at `now_unix` (seconds).
pub fn merge(rows: &[MergeInput], now_unix: i64) -> MergePlan {
    // Winner per group: index into `rows`. Later rows overwrite earlier ones.
    let mut status_winner: Option<usize> = None;
    let mut field_winner: BTreeMap<&str, usize> = BTreeMap::new();
    let mut dnd_winner: Option<usize> = None;
    let mut presence_winner: Option<usize> = None;
    for (i, row) in rows.iter().enumerate() {
        if row.patch.status.is_some() {
            status_winner = Some(i);
        }
        for key in row.patch.fields.keys() {
            field_winner.insert(key, i);
        }
        if row.patch.dnd.is_some() {
            dnd_winner = Some(i);
        }
        if row.patch.presence.is_some() {
            presence_winner = Some(i);
        }
    }

    let mut plan = MergePlan::default();
    let mut contributes = vec![false; rows.len()];
    let mut expired_status = vec![false; rows.len()];
    if let Some(i) = status_winner {
        let status = rows[i].patch.status.as_ref().expect("winner has a status");
        if status.is_expired_at(now_unix) {
            expired_status[i] = true;
        } else {
            plan.patch.status = Some(status.clone());
            plan.status_from = Some(rows[i].id);
            contributes[i] = true;
        }
    }
    if let Some(i) = dnd_winner {
        let dnd = rows[i].patch.dnd.expect("winner has a DND group");
        // A snooze whose end has passed is too late to start.
        if dnd.is_expired_at(now_unix) {
            expired_status[i] = true;
        } else {
            plan.patch.dnd = Some(dnd);
            contributes[i] = true;
        }
    }
    if let Some(i) = presence_winner {
        plan.patch.presence = rows[i].patch.presence;
        contributes[i] = true;
    }
    for (key, i) in field_winner {
        plan.patch
            .fields
            .insert(key.to_string(), rows[i].patch.fields[key].clone());
        contributes[i] = true;
        if !plan.field_winners.contains(&rows[i].id) {
            plan.field_winners.push(rows[i].id);
        }
    }
    for (i, row) in rows.iter().enumerate() {
        if contributes[i] {
            plan.contributors.push(row.id);
        } else if expired_status[i] {
            plan.expired.push(row.id);
        } else {
            plan.superseded.push(row.id);
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Status;
    use serde_json::json;

    fn status(id: i64, text: &str, expiration: i64) -> MergeInput {
        MergeInput {
            id,
            patch: Patch {
                status: Some(Status {
                    text: text.into(),
                    emoji: ":x:".into(),
                    expiration,
                }),
                ..Patch::default()
            },
        }
    }

    fn field(id: i64, key: &str, value: &str) -> MergeInput {
        let mut patch = Patch::default();
        patch.fields.insert(key.into(), json!(value));
        MergeInput { id, patch }
    }

    #[test]
    fn newest_status_wins_and_older_are_superseded() {
        let plan = merge(&[status(1, "a", 0), status(2, "b", 0)], 100);
        assert_eq!(plan.patch.status.unwrap().text, "b");
        assert_eq!(plan.contributors, vec![2]);
        assert_eq!(plan.superseded, vec![1]);
        assert!(plan.expired.is_empty());
    }

    #[test]
    fn groups_are_independent() {
        let plan = merge(
            &[
                status(1, "a", 0),
                field(2, "title", "T1"),
                field(3, "fields.X1", "v"),
                field(4, "title", "T2"),
            ],
            100,
        );
        assert_eq!(plan.patch.status.as_ref().unwrap().text, "a");
        assert_eq!(plan.patch.fields["title"], json!("T2"));
        assert_eq!(plan.patch.fields["fields.X1"], json!("v"));
        assert_eq!(plan.contributors, vec![1, 3, 4]);
        assert_eq!(plan.superseded, vec![2]);
    }

    #[test]
    fn expired_newest_status_is_not_sent_and_not_replaced_by_an_older_one() {
        let plan = merge(&[status(1, "old", 0), status(2, "new", 50)], 100);
        assert!(plan.patch.is_empty());
        assert_eq!(plan.expired, vec![2]);
        assert_eq!(plan.superseded, vec![1]);
        assert!(plan.contributors.is_empty());
    }

    #[test]
    fn expired_status_with_a_field_still_sends_the_field() {
        let mut row = status(1, "a", 50);
        row.patch.fields.insert("title".into(), json!("T"));
        let plan = merge(&[row], 100);
        assert!(plan.patch.status.is_none());
        assert_eq!(plan.patch.fields["title"], json!("T"));
        assert_eq!(plan.contributors, vec![1]);
    }

    #[test]
    fn skipping_the_status_keeps_other_fields() {
        let mut with_title = status(2, "b", 0);
        with_title.patch.fields.insert("title".into(), json!("T"));
        let mut plan = merge(&[status(1, "a", 0), with_title], 100);
        plan.skip_status();
        assert!(plan.patch.status.is_none());
        assert_eq!(plan.contributors, vec![2], "row 2 still sends its title");
        assert!(plan.skipped.is_empty());

        let mut plan = merge(&[field(1, "title", "T"), status(2, "b", 0)], 100);
        plan.skip_status();
        assert_eq!(plan.contributors, vec![1]);
        assert_eq!(plan.skipped, vec![2]);
    }

    #[test]
    fn dnd_and_presence_are_groups_of_their_own() {
        use crate::profile::{Dnd, Presence};
        let dnd = |id, dnd| MergeInput {
            id,
            patch: Patch {
                dnd: Some(dnd),
                ..Patch::default()
            },
        };
        let plan = merge(&[dnd(1, Dnd::Snooze { until: 200 }), dnd(2, Dnd::End)], 100);
        assert_eq!(plan.patch.dnd, Some(Dnd::End), "the newest wins");
        assert_eq!((plan.contributors, plan.superseded), (vec![2], vec![1]));
        // A snooze that has ended is not started, and an older one does not stand in.
        let plan = merge(
            &[
                dnd(1, Dnd::Snooze { until: 300 }),
                dnd(2, Dnd::Snooze { until: 90 }),
            ],
            100,
        );
        assert!(plan.patch.is_empty());
        assert_eq!((plan.expired, plan.superseded), (vec![2], vec![1]));
        let away = MergeInput {
            id: 3,
            patch: Patch {
                presence: Some(Presence::Away),
                ..Patch::default()
            },
        };
        let plan = merge(&[away], 100);
        assert_eq!(plan.patch.presence, Some(Presence::Away));
        assert_eq!(plan.contributors, vec![3]);
    }

    #[test]
    fn status_expiring_later_is_sent() {
        let plan = merge(&[status(7, "a", 101)], 100);
        assert_eq!(plan.contributors, vec![7]);
        assert_eq!(plan.patch.status.unwrap().expiration, 101);
    }
}
