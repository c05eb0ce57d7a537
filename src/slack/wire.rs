//! The bodies of the Web API requests. Pure.
//!
//! The profile methods take JSON; `dnd.setSnooze` takes only a form (its doc lists no other
//! content type), so the DND and presence methods are all sent form-encoded, as pairs.
//!
//! `users.profile.set` takes a flat `profile` object plus a nested `fields` object for
//! custom fields; a [`Patch`] keeps every group under one flat key (`fields.<ID>` for custom
//! fields, see [`CUSTOM_FIELD_PREFIX`]), and this is where the two shapes meet. The queue
//! stores patches in their own serde form, never in this one.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::config::Presence;
use crate::profile::{Patch, CUSTOM_FIELD_PREFIX};

/// The `profile` object of a `users.profile.set` request for `patch`: the status group as
/// `status_text`, `status_emoji` and `status_expiration`, standard fields flat, custom fields
/// under `fields` by their ID.
pub fn profile_json(patch: &Patch) -> Value {
    let mut profile = Map::new();
    let mut custom = Map::new();
    if let Some(s) = &patch.status {
        profile.insert("status_text".into(), s.text.clone().into());
        profile.insert("status_emoji".into(), s.emoji.clone().into());
        profile.insert("status_expiration".into(), s.expiration.into());
    }
    for (key, value) in &patch.fields {
        match key.strip_prefix(CUSTOM_FIELD_PREFIX) {
            Some(id) => custom.insert(id.to_string(), value.clone()),
            None => profile.insert(key.clone(), value.clone()),
        };
    }
    if !custom.is_empty() {
        profile.insert("fields".into(), custom.into());
    }
    Value::Object(profile)
}

/// The body of a `users.profile.set` request: `{"profile": {...}}`, plus `"user"` when it
/// sets another user's profile.
pub fn set_body(user: Option<&str>, patch: &Patch) -> Value {
    let mut body = json!({ "profile": profile_json(patch) });
    if let Some(u) = user {
        body["user"] = u.into();
    }
    body
}

/// The body of a `users.profile.get` request: `{"user": ...}`, or `{}` for the token's own.
pub fn get_body(user: Option<&str>) -> Value {
    match user {
        Some(u) => json!({ "user": u }),
        None => json!({}),
    }
}

/// `num_minutes` for a snooze that should last until `expiry`, for a request that starts at
/// `request_start`: ⌈(expiry − start) / 60 s⌉, so that DND never ends before the status
/// does, and at least 1 (Slack's smallest snooze; a passed expiry is the caller's to
/// catch). Beyond `u32::MAX` minutes it saturates.
pub fn dnd_minutes(expiry: DateTime<Utc>, request_start: DateTime<Utc>) -> u32 {
    const MINUTE_NS: i128 = 60_000_000_000;
    let left = expiry.signed_duration_since(request_start);
    // Nanoseconds in an i128: any two chrono instants fit, so no difference overflows.
    let ns = i128::from(left.num_seconds()) * 1_000_000_000 + i128::from(left.subsec_nanos());
    let minutes = (ns + MINUTE_NS - 1).div_euclid(MINUTE_NS);
    u32::try_from(minutes.max(1)).unwrap_or(u32::MAX)
}

/// The form of a `dnd.setSnooze` request.
pub fn snooze_form(minutes: u32) -> Vec<(&'static str, String)> {
    vec![("num_minutes", minutes.to_string())]
}

/// The form of a `users.setPresence` request.
pub fn presence_form(presence: Presence) -> Vec<(&'static str, String)> {
    vec![("presence", presence.as_str().to_string())]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Status;

    #[test]
    fn bodies() {
        let patch = Patch {
            status: Some(Status {
                text: "Coffee".into(),
                emoji: ":coffee:".into(),
                expiration: 5,
            }),
            ..Patch::default()
        };
        let profile =
            json!({"status_text": "Coffee", "status_emoji": ":coffee:", "status_expiration": 5});
        assert_eq!(set_body(None, &patch), json!({ "profile": profile }));
        assert_eq!(
            set_body(Some("U1"), &patch),
            json!({ "profile": profile, "user": "U1" })
        );
        assert_eq!(profile_json(&Patch::default()), json!({}));
        assert_eq!(get_body(None), json!({}));
        assert_eq!(get_body(Some("U1")), json!({"user": "U1"}));
    }

    #[test]
    fn forms() {
        assert_eq!(snooze_form(45), vec![("num_minutes", "45".to_string())]);
        assert_eq!(
            presence_form(Presence::Away),
            vec![("presence", "away".to_string())]
        );
        assert_eq!(
            presence_form(Presence::Auto),
            vec![("presence", "auto".to_string())]
        );
    }

    #[test]
    fn dnd_minutes_table() {
        let start: DateTime<Utc> = "2026-11-23T12:00:00Z".parse().unwrap();
        let ms = |n: i64| start + chrono::TimeDelta::milliseconds(n);
        let cases = [
            ("exactly an hour", ms(3_600_000), 60),
            ("a millisecond over an hour rounds up", ms(3_600_001), 61),
            ("a millisecond under an hour", ms(3_599_999), 60),
            ("one minute", ms(60_000), 1),
            ("one second", ms(1_000), 1),
            ("a nanosecond", start + chrono::TimeDelta::nanoseconds(1), 1),
            ("61 seconds", ms(61_000), 2),
            ("expiry now: at least 1", start, 1),
            ("expiry passed: at least 1", ms(-90_000), 1),
            ("a day", ms(86_400_000), 1_440),
            (
                "the end of time saturates",
                DateTime::<Utc>::MAX_UTC,
                u32::MAX,
            ),
        ];
        for (name, expiry, want) in cases {
            assert_eq!(dnd_minutes(expiry, start), want, "{name}");
        }
        let late = DateTime::<Utc>::MAX_UTC - chrono::TimeDelta::days(1);
        assert_eq!(dnd_minutes(late, DateTime::<Utc>::MIN_UTC), u32::MAX);
    }
}
