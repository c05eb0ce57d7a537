//! `slack-statusd preview`: the next firings of every rule, as text or JSON lines. What it
//! prints is a pure function of the config and a start instant ([`upcoming`]).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{line, CliError};
use crate::config::{Config, Rule};
use crate::daemon::scheduler::patch_for;
use crate::profile::Patch;
use crate::schedule::next_firing;

/// Print the first `count` firings after `from`, one line each, or one JSON object per line.
pub fn preview(
    config: &Config,
    from: DateTime<Utc>,
    count: usize,
    json: bool,
    out: &mut impl Write,
) -> Result<(), CliError> {
    for f in upcoming(config, from, count) {
        if json {
            line(out, f.to_json())?;
        } else {
            line(out, f.to_line())?;
        }
    }
    Ok(())
}

/// `--from`: an RFC 3339 instant with its offset.
pub fn parse_from(given: &str) -> Result<DateTime<Utc>, CliError> {
    DateTime::parse_from_rfc3339(given)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|reason| CliError::From {
            given: given.to_string(),
            reason,
        })
}

/// One upcoming firing.
#[derive(Debug, Clone)]
pub struct Firing<'a> {
    /// The firing instant, shown in the rule's zone.
    pub at: DateTime<Tz>,
    /// The rule that fires.
    pub rule: &'a Rule,
    /// What it will set.
    pub patch: Patch,
}

/// The first `count` firings strictly after `from`, earliest first (ties in rule order).
pub fn upcoming(config: &Config, from: DateTime<Utc>, count: usize) -> Vec<Firing<'_>> {
    let next = |r: &Rule, after| next_firing(&r.schedule, r.timezone, &r.skip_dates, after);
    let mut heap: BinaryHeap<Reverse<(DateTime<Utc>, usize)>> = config
        .rules
        .iter()
        .enumerate()
        .filter_map(|(i, r)| next(r, from).map(|t| Reverse((t, i))))
        .collect();
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let Some(Reverse((at, i))) = heap.pop() else {
            break;
        };
        let rule = &config.rules[i];
        out.push(Firing {
            at: at.with_timezone(&rule.timezone),
            rule,
            patch: patch_for(rule, at),
        });
        if let Some(n) = next(rule, at) {
            heap.push(Reverse((n, i)));
        }
    }
    out
}

impl Firing<'_> {
    fn target(&self) -> String {
        match &self.rule.user {
            Some(u) => format!("{}/{}", self.rule.token, u),
            None => self.rule.token.clone(),
        }
    }

    fn expires(&self) -> Option<DateTime<Tz>> {
        let s = self.patch.status.as_ref()?;
        (s.expiration != 0)
            .then(|| DateTime::from_timestamp(s.expiration, 0))
            .flatten()
            .map(|e| e.with_timezone(&self.rule.timezone))
    }

    /// One line: instant, rule, target, what it sets, expiry.
    pub fn to_line(&self) -> String {
        let mut what: Vec<String> = Vec::new();
        if let Some(s) = &self.patch.status {
            if s.text.is_empty() && s.emoji.is_empty() {
                what.push("(clear status)".into());
            } else {
                what.push(
                    [s.emoji.as_str(), s.text.as_str()]
                        .join(" ")
                        .trim()
                        .to_string(),
                );
            }
        }
        for (k, v) in &self.patch.fields {
            let shown = v.get("value").unwrap_or(v);
            what.push(format!(
                "{k}={}",
                shown
                    .as_str()
                    .map_or_else(|| shown.to_string(), str::to_string)
            ));
        }
        let mut line = format!(
            "{}  {}  {}  {}",
            self.at.to_rfc3339(),
            self.rule.name,
            self.target(),
            what.join("  ")
        );
        if let Some(e) = self.expires() {
            line.push_str(&format!("  expires {}", e.to_rfc3339()));
        }
        line
    }

    /// One JSON object with the keys `at`, `rule`, `token`, `user`, `expires`, `profile`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "at": self.at.to_rfc3339(),
            "rule": self.rule.name,
            "token": self.rule.token,
            "user": self.rule.user,
            "expires": self.expires().map(|e| e.to_rfc3339()),
            "profile": crate::slack::wire::profile_json(&self.patch),
        })
    }
}
