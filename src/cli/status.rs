//! `slack-statusd status`: how the daemon stands, for a person at a shell — with the daemon
//! running or stopped (SPEC §7): who holds the database, each token's state, pending rows
//! and last send, and the next five firings. Read-only: it opens the existing database and
//! takes the run lock's shared side only for an instant.

use std::collections::BTreeMap;
use std::io::Write;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{close, line, open_existing, upcoming, CliError};
use crate::config::Config;
use crate::daemon::lock;
use crate::queue::TokenSummary;
use crate::untrusted::escape;

/// How many upcoming firings `status` shows.
pub const NEXT_FIRINGS: usize = 5;

/// Print the status of the daemon of `config` at `now`, as text or as one JSON object.
pub async fn status(
    config: &Config,
    now: DateTime<Utc>,
    json: bool,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let queue = open_existing(config).await?;
    let summaries = queue
        .token_summaries()
        .await
        .map_err(|e| e.at(queue.path()));
    let fetches = queue
        .calendar_fetches()
        .await
        .map_err(|e| e.at(queue.path()));
    close(queue).await;
    let fetches = fetches?;
    let calendars: Vec<(&str, Option<DateTime<Utc>>)> = config
        .calendars
        .iter()
        .map(|c| (c.name.as_str(), fetches.get(&c.name).copied()))
        .collect();
    let mut summaries: BTreeMap<String, TokenSummary> = summaries?
        .into_iter()
        .map(|s| (s.token.clone(), s))
        .collect();
    let holder = config.database.sqlite().and_then(lock::holder);
    // Every configured token, and any token the queue still names (removed from the config).
    let mut tokens: Vec<TokenSummary> = config
        .tokens
        .keys()
        .map(|name| {
            summaries.remove(name).unwrap_or_else(|| TokenSummary {
                token: name.clone(),
                pending: 0,
                held: 0,
                held_why: None,
                last: None,
            })
        })
        .collect();
    // What is left are tokens gone from the config.
    tokens.extend(
        summaries
            .into_values()
            .filter(|s| s.pending > 0 || s.held > 0),
    );
    let firings = upcoming(config, now, NEXT_FIRINGS);
    if json {
        let value = json!({
            "daemon": holder.as_ref().map(|pid| json!({"pid": pid})),
            "database": config.database.to_string(),
            "tokens": tokens.iter().map(|t| token_json(t, config)).collect::<Vec<_>>(),
            "calendars": calendars.iter().map(|(name, at)| json!({
                "calendar": name,
                "last_fetch": at.map(|t| t.to_rfc3339()),
            })).collect::<Vec<_>>(),
            "next_firings": firings.iter().map(|f| f.to_json()).collect::<Vec<_>>(),
        });
        return line(out, value);
    }
    match &holder {
        Some(pid) => line(out, format_args!("daemon: running (pid {pid})"))?,
        None => line(out, "daemon: not running")?,
    }
    line(out, format_args!("database: {}", config.database))?;
    line(out, "tokens:")?;
    if tokens.is_empty() {
        line(out, "  (none configured)")?;
    }
    for t in &tokens {
        line(out, format_args!("  {}", token_line(t, config)))?;
    }
    if !calendars.is_empty() {
        line(out, "calendars:")?;
    }
    for (name, at) in &calendars {
        match at {
            Some(t) => line(
                out,
                format_args!("  {}  last fetch {}", escape(name), t.to_rfc3339()),
            )?,
            None => line(out, format_args!("  {}  not fetched yet", escape(name)))?,
        }
    }
    line(out, "next firings:")?;
    if firings.is_empty() {
        line(out, "  (none scheduled)")?;
    }
    for f in &firings {
        line(out, format_args!("  {}", f.to_line()))?;
    }
    Ok(())
}

/// `ok`, `held`, or `removed` for a token the queue names but the config no longer does.
fn state(t: &TokenSummary, config: &Config) -> &'static str {
    if !config.tokens.contains_key(&t.token) {
        "removed"
    } else if t.held > 0 {
        "held"
    } else {
        "ok"
    }
}

/// One token for people: name, state (and why it is held), pending rows, last send.
fn token_line(t: &TokenSummary, config: &Config) -> String {
    let mut s = format!("{}  {}", escape(&t.token), state(t, config));
    if let Some(why) = &t.held_why {
        s.push_str(&format!(" ({})", escape(why)));
    }
    s.push_str(&format!("  pending {}", t.pending));
    if t.held > 0 {
        s.push_str(&format!("  held {}", t.held));
    }
    match &t.last {
        Some(last) => {
            s.push_str(&format!(
                "  last send {} {}",
                last.at.to_rfc3339(),
                last.state
            ));
            if let Some(e) = &last.error {
                s.push_str(&format!(" ({})", escape(e)));
            }
        }
        None => s.push_str("  no send yet"),
    }
    s
}

/// One token for scripts.
fn token_json(t: &TokenSummary, config: &Config) -> serde_json::Value {
    json!({
        "token": t.token,
        "state": state(t, config),
        "held_why": t.held_why,
        "pending": t.pending,
        "held": t.held,
        "last_send": t.last.as_ref().map(|l| json!({
            "at": l.at.to_rfc3339(),
            "outcome": l.state.as_str(),
            "error": l.error,
        })),
    })
}
