//! `slack-statusd queue`: inspect and manage the queue, and the two shapes a row is printed
//! in — a text line for people, a JSON object per line for scripts.

use crate::untrusted::escape;
use std::io::Write;

use chrono::Utc;

use super::{close, line, open_existing, CliError};
use crate::config::Config;
use crate::profile::Part;
use crate::queue::{Queue, State, Update};

/// What `queue` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueAction {
    /// Print every row, newest first.
    List,
    /// Print the failed rows only.
    Failed,
    /// Put a failed, held, skipped or expired row back to pending.
    Retry(i64),
    /// Delete a row that is not in flight.
    Drop(i64),
}

/// Run `action` on the existing queue of `config`; rows are printed as JSON lines with `json`.
pub async fn queue(
    config: &Config,
    action: QueueAction,
    json: bool,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let queue = open_existing(config).await?;
    let result = act(&queue, action, json, out).await;
    close(queue).await;
    result
}

async fn act(
    queue: &Queue,
    action: QueueAction,
    json: bool,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let at = |e: crate::queue::QueueError| e.at(queue.path());
    match action {
        QueueAction::List | QueueAction::Failed => {
            let states: &[State] = match action {
                QueueAction::Failed => &[State::Failed],
                _ => &[],
            };
            let rows = queue.list(states).await.map_err(at)?;
            for r in &rows {
                if json {
                    line(out, with_parts(row_json(r), r, &rows))?;
                } else {
                    line(out, row_line(r))?;
                }
            }
            Ok(())
        }
        QueueAction::Retry(id) => match queue.retry(id, Utc::now()).await.map_err(at)? {
            true => line(out, format_args!("row {id} is pending again")),
            false => Err(CliError::NotRetryable(id)),
        },
        QueueAction::Drop(id) => match queue.drop_row(id).await.map_err(at)? {
            true => line(out, format_args!("row {id} deleted")),
            false => Err(CliError::NotDroppable(id)),
        },
    }
}

/// A row for people: id, state, target, firing instant, attempts and last error (`-` if none).
/// The target and the error are outside text (a user ID from the command line, Slack's error,
/// a database edited by hand): escaped, so that no row can write to the terminal.
/// A restore row ends with `restore`, a temporary status with `temporary`, a firing's DND or
/// presence row with `dnd of N` or `presence of N` (N: the firing's first row).
pub fn row_line(r: &Update) -> String {
    let part = r.patch.part();
    let kind = match (r.is_restore(), r.restore, part) {
        (true, _, _) => "  restore".to_string(),
        (false, true, _) => "  temporary".to_string(),
        (false, false, Part::Profile) => String::new(),
        (false, false, part) => match r.parent {
            Some(p) => format!("  {} of {p}", part.as_str()),
            None => format!("  {}", part.as_str()),
        },
    };
    format!(
        "{:>6}  {:<10}  {:<24}  {}  attempts={}  {}{kind}",
        r.id,
        r.state.as_str(),
        escape(&r.target.to_string()),
        r.fire_at.to_rfc3339(),
        r.attempts,
        escape(r.last_error.as_deref().unwrap_or("-"))
    )
}

/// A row for scripts: `id`, `state`, `rule`, `calendar` (the calendar whose change it is, or
/// null), `token`, `user`, `at`, `attempts`, `last_error` and `profile` (what it sets, as
/// `users.profile.set` receives it), `kind` (`firing`, or `restore` for a row that puts a
/// saved status back, whose `profile` is that status) and `temporary` (a firing with
/// `restore`).
pub fn row_json(r: &Update) -> serde_json::Value {
    let profile = match &r.saved {
        Some(saved) => crate::slack::wire::profile_json(&crate::profile::Patch {
            status: Some(saved.saved.clone()),
            ..Default::default()
        }),
        None => crate::slack::wire::profile_json(&r.patch),
    };
    serde_json::json!({
        "id": r.id, "state": r.state.as_str(), "rule": r.rule, "calendar": r.calendar,
        "token": r.target.token,
        "user": r.target.user, "at": r.fire_at.to_rfc3339(), "attempts": r.attempts,
        "last_error": r.last_error, "profile": profile,
        "kind": if r.is_restore() { "restore" } else { "firing" }, "temporary": r.restore,
        "part": r.patch.part().as_str(), "parent": r.parent,
    })
}

/// `json`, the object of row `r`, with the state and error of the firing's DND and presence
/// rows among `listed` (`dnd_state`, `dnd_error`, `presence_state`, `presence_error`; null
/// when it has no such part): what each part of one firing did, on its first row.
fn with_parts(mut json: serde_json::Value, r: &Update, listed: &[Update]) -> serde_json::Value {
    for part in [Part::Dnd, Part::Presence] {
        let child = listed
            .iter()
            .find(|c| c.parent == Some(r.id) && c.patch.part() == part);
        let name = part.as_str();
        json[format!("{name}_state")] = child.map(|c| c.state.as_str()).into();
        json[format!("{name}_error")] = child.and_then(|c| c.last_error.clone()).into();
    }
    json
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{Patch, Status};
    use crate::queue::Target;
    use chrono::{DateTime, TimeZone};

    fn row(id: i64, state: State, user: Option<&str>, last_error: Option<&str>) -> Update {
        let at: DateTime<Utc> = Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).unwrap();
        Update {
            id,
            rule: Some("coffee".into()),
            calendar: None,
            target: Target {
                token: "alice".into(),
                user: user.map(str::to_string),
            },
            fire_at: at,
            patch: Patch {
                status: Some(Status {
                    text: "Coffee".into(),
                    emoji: ":coffee:".into(),
                    expiration: 0,
                }),
                ..Patch::default()
            },
            respect_manual: false,
            restore: false,
            saved: None,
            parent: None,
            state,
            attempts: 2,
            last_error: last_error.map(str::to_string),
            not_before: at,
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn a_row_line_shows_id_state_target_instant_attempts_and_error() {
        for (r, want) in [
            (
                row(7, State::Failed, Some("U1"), Some("invalid_auth")),
                "     7  failed      alice/U1                  2026-11-23T08:00:00+00:00  attempts=2  invalid_auth",
            ),
            (
                row(123456, State::Pending, None, None),
                "123456  pending     alice                     2026-11-23T08:00:00+00:00  attempts=2  -",
            ),
        ] {
            assert_eq!(row_line(&r), want);
        }
    }

    #[test]
    fn a_row_json_has_every_key_and_nulls_for_what_is_absent() {
        let j = row_json(&row(7, State::Sent, None, None));
        assert_eq!(
            j,
            serde_json::json!({
                "id": 7, "state": "sent", "rule": "coffee", "calendar": null, "token": "alice", "user": null,
                "at": "2026-11-23T08:00:00+00:00", "attempts": 2, "last_error": null,
                "profile": {"status_text": "Coffee", "status_emoji": ":coffee:", "status_expiration": 0},
                "kind": "firing", "temporary": false, "part": "profile", "parent": null,
            })
        );
    }
}
