//! The JSON bodies of the Web API requests. Pure.
//!
//! `users.profile.set` takes a flat `profile` object plus a nested `fields` object for
//! custom fields; a [`Patch`] keeps every group under one flat key (`fields.<ID>` for custom
//! fields, see [`CUSTOM_FIELD_PREFIX`]), and this is where the two shapes meet. The queue
//! stores patches in their own serde form, never in this one.

use serde_json::{json, Map, Value};

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
}
