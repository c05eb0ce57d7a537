//! The payload: what one update sets, split into merge groups.
//!
//! We model an update as a set of *groups*: the status (text, emoji and expiration travel
//! together, so a merge never mixes the text of one firing with the expiry of another), one
//! group per other field, and Do Not Disturb and presence (SPEC §6), each a group of its own.
//! Custom fields are keyed `fields.<ID>` so that every group has a single flat key. The serde
//! derives are the queue's own storage format; what Slack is sent is built from a patch by
//! `slack::wire`, the only place that knows Slack's JSON.
//!
//! The groups go out in up to three requests — `users.profile.set`, then `dnd.*`, then
//! `users.setPresence` — and each is a [`Part`]: the queue keeps one row per part of a
//! firing ([`Patch::parts`]), so that each has its own outcome, retry and window.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Prefix of a group key that names a custom profile field by its per-team ID.
pub const CUSTOM_FIELD_PREFIX: &str = "fields.";

/// The most characters Slack accepts in `status_text`.
pub const MAX_STATUS_TEXT: usize = 100;

/// The length of `text` if it is over [`MAX_STATUS_TEXT`], counted as Slack counts it: in
/// Unicode scalar values. One rule for the config's `status_text` and `set --text`.
pub fn status_text_over_limit(text: &str) -> Option<usize> {
    let n = text.chars().count();
    (n > MAX_STATUS_TEXT).then_some(n)
}

/// The status group of one update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// `status_text`; empty together with `emoji` clears the status.
    pub text: String,
    /// `status_emoji`, such as `:coffee:`.
    pub emoji: String,
    /// Absolute expiry as Unix seconds; 0 means the status does not expire.
    pub expiration: i64,
}

impl Status {
    /// The empty status: sent, it clears the one shown.
    pub fn cleared() -> Status {
        Status {
            text: String::new(),
            emoji: String::new(),
            expiration: 0,
        }
    }

    /// Whether it shows nothing: no text and no emoji (sent, it clears the status).
    pub fn is_empty(&self) -> bool {
        self.text.is_empty() && self.emoji.is_empty()
    }

    /// Whether this status has expired at `now_unix` (seconds). A status without expiry never
    /// expires.
    pub fn is_expired_at(&self, now_unix: i64) -> bool {
        self.expiration != 0 && self.expiration <= now_unix
    }
}

/// `presence`: what `users.setPresence` sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    /// `away`: shown as away whatever the user does.
    Away,
    /// `auto`: Slack decides from the user's activity (the usual state).
    Auto,
}

impl Presence {
    /// The value as Slack and the config spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Away => "away",
            Presence::Auto => "auto",
        }
    }

    /// The presence spelled `s` (`"away"` or `"auto"`).
    pub fn parse(s: &str) -> Option<Presence> {
        match s {
            "away" => Some(Presence::Away),
            "auto" => Some(Presence::Auto),
            _ => None,
        }
    }
}

/// What one firing asks of Do Not Disturb.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dnd {
    /// Snooze notifications until `until` (Unix seconds): `dnd.setSnooze`.
    Snooze {
        /// The end of the snooze: the firing's expiry.
        until: i64,
    },
    /// End a snooze: `dnd.endSnooze`.
    End,
}

impl Dnd {
    /// `dnd = true` (a snooze until `until`, Unix seconds) or `dnd = false` (end a snooze).
    pub fn toggle(on: bool, until: i64) -> Dnd {
        if on {
            Dnd::Snooze { until }
        } else {
            Dnd::End
        }
    }

    /// Whether this is a snooze that has ended by `now_unix`: too late to send.
    pub fn is_expired_at(self, now_unix: i64) -> bool {
        matches!(self, Dnd::Snooze { until } if until <= now_unix)
    }
}

/// Which request of a firing a row is, in the order they go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// The status and profile fields: `users.profile.set`.
    Profile,
    /// Do Not Disturb: `dnd.setSnooze` or `dnd.endSnooze`.
    Dnd,
    /// Presence: `users.setPresence`.
    Presence,
}

impl Part {
    /// The name stored in the database and shown by `queue`.
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Profile => "profile",
            Part::Dnd => "dnd",
            Part::Presence => "presence",
        }
    }
}

/// What one queued row asks Slack to set.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Patch {
    /// The status group, if this update touches the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Every other group: a standard field name (`title`) or `fields.<ID>`, to its JSON value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, serde_json::Value>,
    /// The Do Not Disturb group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnd: Option<Dnd>,
    /// The presence group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence: Option<Presence>,
}

impl Patch {
    /// Whether the patch sets nothing at all.
    pub fn is_empty(&self) -> bool {
        self.status.is_none()
            && self.fields.is_empty()
            && self.dnd.is_none()
            && self.presence.is_none()
    }

    /// Whether it sets nothing through `users.profile.set`.
    pub fn profile_is_empty(&self) -> bool {
        self.status.is_none() && self.fields.is_empty()
    }

    /// The part a row holding this patch is: a patch split by [`Patch::parts`] has one.
    pub fn part(&self) -> Part {
        if self.profile_is_empty() {
            if self.dnd.is_some() {
                return Part::Dnd;
            }
            if self.presence.is_some() {
                return Part::Presence;
            }
        }
        Part::Profile
    }

    /// The patch split into one patch per request, in the order they go out: the profile
    /// groups, DND, presence. A patch that sets nothing is one (empty) profile part, so that
    /// a firing always leaves a row.
    pub fn parts(&self) -> Vec<Patch> {
        let mut parts = Vec::with_capacity(1);
        if !self.profile_is_empty() || (self.dnd.is_none() && self.presence.is_none()) {
            parts.push(Patch {
                status: self.status.clone(),
                fields: self.fields.clone(),
                ..Patch::default()
            });
        }
        if let Some(dnd) = self.dnd {
            parts.push(Patch {
                dnd: Some(dnd),
                ..Patch::default()
            });
        }
        if let Some(presence) = self.presence {
            parts.push(Patch {
                presence: Some(presence),
                ..Patch::default()
            });
        }
        parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_splits_into_its_parts_in_sending_order() {
        let status = Some(Status {
            text: "Focus".into(),
            emoji: ":headphones:".into(),
            expiration: 100,
        });
        let all = Patch {
            status: status.clone(),
            dnd: Some(Dnd::Snooze { until: 100 }),
            presence: Some(Presence::Away),
            ..Patch::default()
        };
        let parts = all.parts();
        let kinds: Vec<Part> = parts.iter().map(Patch::part).collect();
        assert_eq!(kinds, [Part::Profile, Part::Dnd, Part::Presence]);
        assert_eq!(parts[0].status, status);
        assert_eq!(parts[1].dnd, Some(Dnd::Snooze { until: 100 }));
        assert_eq!(parts[2].presence, Some(Presence::Away));
        // DND alone: one part, no empty profile request.
        let dnd = Patch {
            dnd: Some(Dnd::End),
            ..Patch::default()
        };
        assert_eq!(dnd.parts(), vec![dnd.clone()]);
        assert_eq!(dnd.part(), Part::Dnd);
        // Nothing at all (a calendar's end): still one row.
        assert_eq!(Patch::default().parts(), vec![Patch::default()]);
        // The stored form of a patch without the new groups is unchanged.
        assert_eq!(serde_json::to_string(&Patch::default()).unwrap(), "{}");
        assert_eq!(serde_json::to_string(&dnd).unwrap(), r#"{"dnd":"end"}"#);
    }
}
