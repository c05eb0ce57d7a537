//! `[rules.profile]`: the profile fields other than the status, checked against the limits
//! Slack documents for `users.profile.set` and turned into the group keys of
//! [`crate::profile::Patch`] (`title`, `fields.<ID>`).

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};
use toml::de::DeValue;

use super::walk::{shown, Ctx, Table, Value};
use crate::profile::CUSTOM_FIELD_PREFIX;

/// The standard fields `users.profile.set` can change (Slack's doc lists exactly these;
/// `skype` is always empty and images have their own methods).
const STANDARD: &[&str] = &[
    "title",
    "pronouns",
    "phone",
    "real_name",
    "display_name",
    "email",
    "first_name",
    "last_name",
];
/// Slack rejects these as a first or last name (`reserved_name`).
const RESERVED_NAME: &str = "slackbot";
/// "Each field name is limited to 255 characters."
const MAX_FIELD_NAME: usize = 255;
/// The longest custom field value of any type (`long_text`). We do not know a field's type,
/// so the shorter limits of `text` and `link` (256) are left to Slack.
const MAX_VALUE: usize = 5000;
/// The longest `alt` of a custom field, of any type.
const MAX_ALT: usize = 256;
/// The longest single tag of a `tags` field.
const MAX_TAG: usize = 50;

/// The profile of one rule, as group keys to the JSON Slack expects.
pub(crate) type Profile = BTreeMap<String, Json>;

/// Check `[rules.profile]` of the rule `label` and convert it. Problems are recorded in
/// `ctx`; the returned map holds the fields that were valid.
pub(crate) fn profile(ctx: &mut Ctx<'_>, label: &str, v: &Value<'_>) -> Profile {
    let mut out = Profile::new();
    let what = format!("{label}: profile");
    let Some(table) = ctx.table(&what, "a table ([rules.profile])", v) else {
        return out;
    };
    for (key, value) in table {
        let name = key.get_ref().as_ref();
        if name == "fields" {
            custom_fields(ctx, label, value, &mut out);
        } else if STANDARD.contains(&name) {
            if let Some(s) = standard_field(ctx, label, name, value) {
                out.insert(name.to_string(), Json::String(s.to_string()));
            }
        } else {
            ctx.error(&key.span(), unknown_profile_key(label, name));
        }
    }
    out
}

/// The message for a key that is not a settable profile field, with a hint for the
/// mistakes people make most: status fields (which belong to the rule) and images.
fn unknown_profile_key(label: &str, name: &str) -> String {
    let hint = if name.starts_with("status_") {
        "; the status is set by the rule itself (status_text, status_emoji, expire_after), \
         not in [rules.profile]"
    } else if name.starts_with("image_") {
        "; profile images cannot be set with users.profile.set"
    } else if name == "skype" {
        "; Slack no longer lets the skype field be set"
    } else {
        ""
    };
    format!(
        "{label}: [rules.profile] has no field {}; allowed keys are {}{hint}",
        shown(name),
        // The standard fields, plus `fields` for custom ones.
        STANDARD.join(", ") + ", fields"
    )
}

/// A standard field: a string, and not a reserved name.
fn standard_field<'v>(
    ctx: &mut Ctx<'_>,
    label: &str,
    name: &str,
    v: &'v Value<'_>,
) -> Option<&'v str> {
    let s = ctx.string(&format!("{label}: profile field {name}"), v)?;
    let is_name = name == "first_name" || name == "last_name";
    if is_name && s.trim().eq_ignore_ascii_case(RESERVED_NAME) {
        ctx.error(
            &v.span(),
            format!("{label}: {name} cannot be \"slackbot\" (Slack reserves it); choose another"),
        );
        return None;
    }
    Some(s)
}

/// `[rules.profile.fields]`: custom field ID → `{ value, alt }` or a list of tags.
fn custom_fields(ctx: &mut Ctx<'_>, label: &str, v: &Value<'_>, out: &mut Profile) {
    let what = format!("{label}: profile fields");
    let expected = "a table of custom field IDs ([rules.profile.fields.Xf0111111])";
    let Some(fields) = ctx.table(&what, expected, v) else {
        return;
    };
    for (key, value) in fields {
        let id = key.get_ref().as_ref();
        let n = id.chars().count();
        if n > MAX_FIELD_NAME {
            ctx.error(
                &key.span(),
                format!(
                    "{label}: a custom field ID is {n} characters; Slack allows at most \
                     {MAX_FIELD_NAME} (use the ID from team.profile.get)"
                ),
            );
            continue;
        }
        let field = format!("{label}: custom field {}", shown(id));
        if let Some(json) = custom_field(ctx, &field, value) {
            out.insert(format!("{CUSTOM_FIELD_PREFIX}{id}"), json);
        }
    }
}

/// One custom field: a `{ value, alt }` table, or a list of such tables for a `tags` field.
fn custom_field(ctx: &mut Ctx<'_>, field: &str, v: &Value<'_>) -> Option<Json> {
    match v.get_ref() {
        DeValue::Table(t) => field_value(ctx, field, t, &v.span(), MAX_VALUE, "value"),
        DeValue::Array(items) => {
            let before = ctx.count();
            let mut tags = Vec::new();
            for item in items.iter() {
                let what = format!("{field}: each tag");
                let expected = "a table such as { value = \"Mocha\" }";
                if let Some(t) = ctx.table(&what, expected, item) {
                    tags.extend(field_value(ctx, field, t, &item.span(), MAX_TAG, "a tag"));
                }
            }
            (ctx.count() == before).then_some(Json::Array(tags))
        }
        other => {
            let expected = "a table { value = \"...\", alt = \"\" } or a list of tags \
                            [{ value = \"...\" }]";
            ctx.wrong_type(field, expected, other, &v.span());
            None
        }
    }
}

/// `{ value, alt }` with `alt` defaulting to "" (what Slack's examples send). `max` and
/// `noun` are the limit and name of `value`: the field's own, or one tag's.
fn field_value(
    ctx: &mut Ctx<'_>,
    field: &str,
    t: &Table<'_>,
    span: &std::ops::Range<usize>,
    max: usize,
    noun: &str,
) -> Option<Json> {
    let before = ctx.count();
    ctx.unknown_keys(t, &["value", "alt"], field);
    let value = match t.get("value") {
        Some(v) => limited(ctx, &format!("{field}: {noun}"), v, max),
        None => {
            ctx.error(
                span,
                format!("{field}: value is missing; add value = \"...\""),
            );
            None
        }
    };
    let alt = match t.get("alt") {
        Some(v) => limited(ctx, &format!("{field}: alt"), v, MAX_ALT),
        None => Some(String::new()),
    };
    let (value, alt) = (value?, alt?);
    (ctx.count() == before).then(|| json!({ "value": value, "alt": alt }))
}

/// A string of at most `max` characters.
fn limited(ctx: &mut Ctx<'_>, what: &str, v: &Value<'_>, max: usize) -> Option<String> {
    let s = ctx.string(what, v)?;
    let n = s.chars().count();
    if n > max {
        ctx.error(
            &v.span(),
            format!("{what} is {n} characters; Slack allows at most {max}"),
        );
        return None;
    }
    Some(s.to_string())
}
