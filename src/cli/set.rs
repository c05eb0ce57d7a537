//! `slack-statusd set`: one immediate update through the same queue and throttle as the
//! rules. Its arguments are checked as the config checks a rule — the same status-text limit,
//! the same duration grammar, the same expiry arithmetic — before the database is touched.

use std::io::Write;

use chrono::{DateTime, Utc};

use super::{close, line, open_existing, CliError};
use crate::config::{Config, Expiry};
use crate::profile::{self, Dnd, Patch, Presence, Status};
use crate::queue::{NewUpdate, Target};
use crate::schedule::expiry_instant;

pub use super::args::SetArgs;

/// Why `set`'s arguments cannot make an update. Never quotes `--token`: people paste the
/// token itself where its name belongs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetError {
    /// `--token` is not a token name of the config.
    #[error("--token takes the NAME of a [tokens.NAME] table, and the config has none of that name; {}", known_tokens(.known))]
    UnknownToken {
        /// The names the config defines.
        known: Vec<String>,
    },
    /// Neither a status nor `--clear`, `--dnd` or `--presence`.
    #[error("give --text and/or --emoji, or --clear, --dnd or --presence")]
    NothingToSet,
    /// `--dnd` or `--presence` with `--user`: Slack's methods act on the token's own user.
    #[error("--dnd and --presence act on the token's own user only (Slack's dnd.* and users.setPresence take no user); leave out --user, or --dnd and --presence")]
    PartWithUser,
    /// `--presence` is neither `away` nor `auto` (the command line already refuses it).
    #[error("--presence {0:?}: give away or auto")]
    Presence(String),
    /// `--dnd` without `--expire`: a snooze needs an end.
    #[error("--dnd needs --expire, the end of the snooze; or use --dnd=false to end a snooze")]
    DndWithoutExpiry,
    /// `--clear` with a status (the command line already refuses it; a library caller may not).
    #[error("--clear cannot be combined with --text, --emoji or --expire; give one or the other")]
    ClearWithStatus,
    /// `--text` over Slack's limit.
    #[error("--text is {0} characters; Slack allows at most {max}", max = profile::MAX_STATUS_TEXT)]
    TextTooLong(usize),
    /// `--expire` is not a duration; holds the duration parser's message.
    #[error("--expire: {0}")]
    Expire(String),
    /// `--expire` of zero would expire the status as it is set.
    #[error("--expire {0:?} is zero: the status would expire at once; give a positive duration, or leave --expire out for no expiry")]
    ExpireZero(String),
    /// `--restore` without `--expire` (the command line already refuses it).
    #[error("--restore needs --expire: the restore goes out when the temporary status expires")]
    RestoreWithoutExpiry,
    /// `--expire` reaches past the year 9999.
    #[error("--expire {0:?} reaches past the year 9999; give a shorter duration, or leave --expire out for no expiry")]
    ExpireTooFar(String),
}

/// "known tokens: a, b", or what to do when there are none.
fn known_tokens(known: &[String]) -> String {
    if known.is_empty() {
        "the config defines no token: add a [tokens.NAME] table".to_string()
    } else {
        format!("known tokens: {}", known.join(", "))
    }
}

impl SetArgs {
    /// The update these arguments ask for, fired at `now`, or why there is none.
    pub fn to_update(&self, config: &Config, now: DateTime<Utc>) -> Result<NewUpdate, SetError> {
        if !config.tokens.contains_key(&self.token) {
            return Err(SetError::UnknownToken {
                known: config.tokens.keys().cloned().collect(),
            });
        }
        if self.restore && self.expire.is_none() {
            return Err(SetError::RestoreWithoutExpiry);
        }
        let presence = self
            .presence
            .as_deref()
            .map(|p| Presence::parse(p).ok_or_else(|| SetError::Presence(p.to_string())))
            .transpose()?;
        if self.user.is_some() && (self.dnd.is_some() || self.presence.is_some()) {
            return Err(SetError::PartWithUser);
        }
        let expiry = self
            .expire
            .as_deref()
            .map(|given| expiration(given, now))
            .transpose()?;
        if self.dnd == Some(true) && expiry.is_none() {
            return Err(SetError::DndWithoutExpiry);
        }
        let status = if self.clear || self.end {
            if self.text.is_some() || self.emoji.is_some() || self.expire.is_some() {
                return Err(SetError::ClearWithStatus);
            }
            Some(Status::cleared())
        } else if self.text.is_some() || self.emoji.is_some() {
            let text = self.text.clone().unwrap_or_default();
            if let Some(n) = profile::status_text_over_limit(&text) {
                return Err(SetError::TextTooLong(n));
            }
            Some(Status {
                text,
                emoji: self.emoji.clone().unwrap_or_default(),
                expiration: expiry.unwrap_or(0),
            })
        } else if self.dnd.is_some() || self.presence.is_some() {
            None
        } else {
            return Err(SetError::NothingToSet);
        };
        Ok(NewUpdate {
            rule: None,
            target: Target {
                token: self.token.clone(),
                user: self.user.clone(),
            },
            fire_at: now,
            patch: Patch {
                status,
                dnd: self.dnd.map(|on| Dnd::toggle(on, expiry.unwrap_or(0))),
                presence,
                ..Patch::default()
            },
            respect_manual: false,
            restore: self.restore,
        })
    }
}

/// `status_expiration` for `--expire given` at `now`: Unix seconds, as a rule's
/// `expire_after` gives them.
fn expiration(given: &str, now: DateTime<Utc>) -> Result<i64, SetError> {
    let d = crate::schedule::parse_duration(given).map_err(SetError::Expire)?;
    if d.is_zero() {
        return Err(SetError::ExpireZero(given.to_string()));
    }
    expiry_instant(Expiry::After(d), chrono_tz::UTC, now)
        .filter(|at| *at <= crate::schedule::latest_expiry())
        .map(|at| at.timestamp())
        .ok_or_else(|| SetError::ExpireTooFar(given.to_string()))
}

/// Enqueue the update `args` ask for in the existing queue of `config` and print its row id
/// (for `--end`, the id of the restore made due now, or of the clear when none waits).
pub async fn set(config: &Config, args: &SetArgs, out: &mut impl Write) -> Result<(), CliError> {
    let now = Utc::now();
    let update = args.to_update(config, now)?;
    let queue = open_existing(config).await?;
    let id = async {
        if args.end {
            // The waiting restore goes out at once; with none, the status is cleared.
            if let Some(id) = queue.end_temporary_now(&update.target, now).await? {
                return Ok(id);
            }
        }
        queue.enqueue(&update, now).await
    }
    .await
    .map_err(|e| e.at(queue.path()));
    close(queue).await;
    line(out, id?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn config() -> Config {
        crate::config::load_str(
            std::path::Path::new("/cfg/config.toml"),
            "[tokens.alice]\ntoken_env = \"A\"\n[tokens.bob]\ntoken_env = \"B\"\n",
        )
        .unwrap()
    }

    fn args(token: &str) -> SetArgs {
        SetArgs {
            token: token.into(),
            ..SetArgs::default()
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).unwrap()
    }

    #[test]
    fn invalid_arguments_are_refused_with_what_to_change() {
        let text = |t: &str| SetArgs {
            text: Some(t.into()),
            ..args("alice")
        };
        let expire = |e: &str| SetArgs {
            expire: Some(e.into()),
            ..text("hi")
        };
        let cases = [
            (
                SetArgs {
                    token: "xoxp-1234-abcd".into(),
                    ..text("hi")
                },
                SetError::UnknownToken {
                    known: vec!["alice".into(), "bob".into()],
                },
            ),
            (args("alice"), SetError::NothingToSet),
            (
                SetArgs {
                    clear: true,
                    ..text("hi")
                },
                SetError::ClearWithStatus,
            ),
            (text(&"x".repeat(101)), SetError::TextTooLong(101)),
            // Counted in Unicode scalar values, as the config counts them.
            (text(&"é".repeat(101)), SetError::TextTooLong(101)),
            (expire("0s"), SetError::ExpireZero("0s".into())),
            (
                expire("100000000y"),
                SetError::ExpireTooFar("100000000y".into()),
            ),
        ];
        for (a, want) in cases {
            assert_eq!(a.to_update(&config(), now()), Err(want), "{a:?}");
        }
        // The config's own duration grammar, with its message.
        let err = expire("2 fortnights")
            .to_update(&config(), now())
            .unwrap_err();
        assert_eq!(
            err,
            SetError::Expire(crate::schedule::parse_duration("2 fortnights").unwrap_err())
        );
    }

    #[test]
    fn an_unknown_token_is_never_quoted_and_the_known_names_are() {
        let err = args("xoxp-1234-abcd")
            .to_update(&config(), now())
            .unwrap_err()
            .to_string();
        assert!(!err.contains("xoxp"), "{err}");
        assert!(err.contains("known tokens: alice, bob"), "{err}");
        let none = crate::config::load_str(std::path::Path::new("/cfg/config.toml"), "").unwrap();
        let err = args("alice")
            .to_update(&none, now())
            .unwrap_err()
            .to_string();
        assert!(err.contains("add a [tokens.NAME] table"), "{err}");
    }

    #[test]
    fn valid_arguments_make_the_update_fired_now() {
        let cases = [
            (
                SetArgs {
                    text: Some("In a meeting".into()),
                    emoji: Some(":calendar:".into()),
                    expire: Some("1h 30m".into()),
                    user: Some("U1".into()),
                    ..args("alice")
                },
                (
                    "In a meeting".to_string(),
                    ":calendar:",
                    now().timestamp() + 5400,
                ),
            ),
            (
                SetArgs {
                    emoji: Some(":palm_tree:".into()),
                    ..args("bob")
                },
                (String::new(), ":palm_tree:", 0),
            ),
            (
                SetArgs {
                    clear: true,
                    ..args("alice")
                },
                (String::new(), "", 0),
            ),
            (
                SetArgs {
                    text: Some("x".repeat(100)),
                    ..args("alice")
                },
                ("x".repeat(100), "", 0),
            ),
        ];
        for (a, (text, emoji, expiration)) in cases {
            let u = a.to_update(&config(), now()).unwrap();
            assert_eq!(u.fire_at, now());
            assert_eq!(u.rule, None);
            assert_eq!(
                u.target,
                Target {
                    token: a.token.clone(),
                    user: a.user.clone()
                }
            );
            assert_eq!(
                u.patch.status,
                Some(Status {
                    text,
                    emoji: emoji.into(),
                    expiration
                }),
                "{a:?}"
            );
        }
    }
}
