//! The wire shape of a profile patch (SPEC §4 "Requests", Slack's users.profile.set doc).

use serde_json::json;
use slack_statusd::profile::{Patch, Status};
use slack_statusd::slack::wire::profile_json;

#[test]
fn patch_puts_custom_fields_under_fields_and_status_flat() {
    let mut patch = Patch {
        status: Some(Status {
            text: "Coffee".into(),
            emoji: ":coffee:".into(),
            expiration: 1_800_000_000,
        }),
        ..Patch::default()
    };
    patch.fields.insert("title".into(), json!("Barista"));
    patch.fields.insert(
        "fields.Xf0111111".into(),
        json!({"value": "Barista", "alt": ""}),
    );
    assert_eq!(
        profile_json(&patch),
        json!({
            "status_text": "Coffee",
            "status_emoji": ":coffee:",
            "status_expiration": 1_800_000_000,
            "title": "Barista",
            "fields": {"Xf0111111": {"value": "Barista", "alt": ""}}
        })
    );
}

#[test]
fn status_expiry_is_absolute_and_zero_never_expires() {
    let s = Status {
        text: "x".into(),
        emoji: ":x:".into(),
        expiration: 100,
    };
    assert!(!s.is_expired_at(99));
    assert!(s.is_expired_at(100));
    let forever = Status { expiration: 0, ..s };
    assert!(!forever.is_expired_at(i64::MAX));
}
