//! Whether a target's current status was set by hand (`respect_manual`). Pure: a function of
//! the profile Slack returned, the status this daemon last set, and the time.

use crate::profile::Status;

/// A status is the user's own when it is non-empty, has not expired, and is not the last one
/// this daemon set (text and emoji compared; the expiry Slack reports may be normalised).
pub fn is_manual(profile: &serde_json::Value, last_ours: Option<&Status>, now_unix: i64) -> bool {
    let text = profile
        .get("status_text")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    let emoji = profile
        .get("status_emoji")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    if text.is_empty() && emoji.is_empty() {
        return false;
    }
    let expiration = profile
        .get("status_expiration")
        .and_then(|v| v.as_i64())
        .unwrap_or(0);
    if expiration != 0 && expiration <= now_unix {
        return false;
    }
    !last_ours.is_some_and(|s| s.text == text && s.emoji == emoji)
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
