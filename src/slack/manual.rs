//! Whether a target's current status was set by hand (`respect_manual`). Pure: a function of
//! the profile Slack returned, the status this daemon last set, and the time.

use crate::profile::Status;

/// The status a `users.profile.get` answer shows: text, emoji and expiry, empty where a
/// field is missing or not of its type (the answer is not trusted).
pub fn shown_status(profile: &serde_json::Value) -> Status {
    let text = |key: &str| {
        profile
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    Status {
        text: text("status_text"),
        emoji: text("status_emoji"),
        expiration: profile
            .get("status_expiration")
            .and_then(|v| v.as_i64())
            .unwrap_or(0),
    }
}

/// A status is the user's own when it is non-empty, has not expired, and is not the last one
/// this daemon set (text and emoji compared; the expiry Slack reports may be normalised).
pub fn is_manual(profile: &serde_json::Value, last_ours: Option<&Status>, now_unix: i64) -> bool {
    let shown = shown_status(profile);
    if shown.is_empty() {
        return false;
    }
    if shown.is_expired_at(now_unix) {
        return false;
    }
    !last_ours.is_some_and(|s| s.text == shown.text && s.emoji == shown.emoji)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table() {
        let ours = Status {
            text: "Coffee".into(),
            emoji: ":coffee:".into(),
            expiration: 0,
        };
        let cases = [
            (
                json!({"status_text": "", "status_emoji": ""}),
                Some(&ours),
                false,
            ),
            (json!({}), None, false),
            (
                json!({"status_text": "Lunch", "status_emoji": ":taco:", "status_expiration": 0}),
                None,
                true,
            ),
            (
                json!({"status_text": "Lunch", "status_emoji": ":taco:", "status_expiration": 0}),
                Some(&ours),
                true,
            ),
            (
                json!({"status_text": "Coffee", "status_emoji": ":coffee:", "status_expiration": 99999}),
                Some(&ours),
                false,
            ),
            (
                json!({"status_text": "Lunch", "status_expiration": 50}),
                None,
                false,
            ),
            (
                json!({"status_text": "Lunch", "status_expiration": 101}),
                None,
                true,
            ),
            (json!({"status_emoji": ":palm_tree:"}), Some(&ours), true),
        ];
        for (profile, last, want) in cases {
            assert_eq!(is_manual(&profile, last, 100), want, "{profile} {last:?}");
        }
    }
}
