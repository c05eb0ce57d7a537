//! The profile payload: what one update sets, split into merge groups.
//!
//! We model an update as a set of *groups*: the status (text, emoji and expiration travel
//! together, so a merge never mixes the text of one firing with the expiry of another) and
//! one group per other field. Custom fields are keyed `fields.<ID>` so that every group has a
//! single flat key. The serde derives are the queue's own storage format; what Slack is sent
//! is built from a patch by `slack::wire`, the only place that knows Slack's JSON.

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

    /// Whether this status has expired at `now_unix` (seconds). A status without expiry never
    /// expires.
    pub fn is_expired_at(&self, now_unix: i64) -> bool {
        self.expiration != 0 && self.expiration <= now_unix
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
}

impl Patch {
    /// Whether the patch sets nothing at all.
    pub fn is_empty(&self) -> bool {
        self.status.is_none() && self.fields.is_empty()
    }
}
