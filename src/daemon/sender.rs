//! Where a worker's requests go: Slack, or (`run --dry-run`) nowhere but the log.

use chrono::{DateTime, Utc};

use crate::config::Secret;
use crate::profile::{Dnd, Patch};
use crate::queue::Target;
use crate::slack::{dnd_minutes, Client, Outcome, PartOutcome};
use crate::throttle::Method;

/// Where requests go.
#[derive(Debug, Clone)]
pub enum Sender {
    /// To Slack, with the token's value.
    Slack {
        /// The HTTP client.
        client: Client,
        /// The token's value.
        token: Secret,
    },
    /// Nowhere: log what would be sent and report success (`run --dry-run`).
    DryRun,
}

impl Sender {
    pub(super) async fn set_profile(&self, target: &Target, patch: &Patch) -> Outcome {
        match self {
            Sender::Slack { client, token } => {
                client
                    .set_profile(token, target.user.as_deref(), patch)
                    .await
            }
            Sender::DryRun => {
                let body = Client::set_body(target.user.as_deref(), patch);
                // The body carries the config's status text; JSON escapes C0 controls but not DEL or C1.
                let body = crate::untrusted::escape(&body.to_string()).into_owned();
                tracing::info!(target = %target, body = %body, "dry run: would POST users.profile.set");
                Outcome::Ok {
                    warning: None,
                    profile: None,
                }
            }
        }
    }

    /// Send the DND or presence part `patch`, for a request starting at `started` (a
    /// snooze lasts from then until its end).
    pub(super) async fn send_part(&self, patch: &Patch, started: DateTime<Utc>) -> PartOutcome {
        match self {
            Sender::Slack { client, token } => match (patch.dnd, patch.presence) {
                (Some(Dnd::Snooze { until }), _) => {
                    let until = DateTime::from_timestamp(until, 0).unwrap_or(started);
                    client.set_snooze(token, dnd_minutes(until, started)).await
                }
                (Some(Dnd::End), _) => client.end_snooze(token).await,
                (None, Some(presence)) => client.set_presence(token, presence).await,
                (None, None) => unreachable!("a part's batch sets DND or presence"),
            },
            Sender::DryRun => {
                let method = Method::sending(patch).name();
                tracing::info!(method, dnd = ?patch.dnd, presence = ?patch.presence, "dry run: would POST");
                PartOutcome::Answer(Outcome::Ok {
                    warning: None,
                    profile: None,
                })
            }
        }
    }

    pub(super) async fn get_profile(&self, target: &Target) -> Outcome {
        match self {
            Sender::Slack { client, token } => {
                client.get_profile(token, target.user.as_deref()).await
            }
            // A dry run knows no current status: nothing was set by hand.
            Sender::DryRun => Outcome::Ok {
                warning: None,
                profile: None,
            },
        }
    }
}
