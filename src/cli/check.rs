//! `slack-statusd check`: the config is valid, and what a reload of it would apply.

use std::io::Write;

use super::{line, CliError};
use crate::config::{Config, ConfigError};
use crate::daemon::{DaemonError, NEEDS_RESTART};

/// Print that `config` is valid, what it holds, and which keys a running daemon applies only
/// after a restart. Token files are read as `run` will read them, so that a special or
/// oversized one fails here first (a missing one is only a warning, on stderr); so are the
/// calendars' `url_file`s. Calendars are never fetched.
pub fn check(config: &Config, out: &mut impl Write) -> Result<(), CliError> {
    let tokens = config.check_token_files();
    for w in &tokens.warnings {
        eprintln!("slack-statusd: warning: {w}");
    }
    if !tokens.errors.is_empty() {
        return Err(DaemonError::Tokens(tokens.errors).into());
    }
    // Calendars are not fetched here: only a `url_file` is read, as `run` reads it.
    let urls = config.check_url_files();
    for w in &urls.warnings {
        eprintln!("slack-statusd: warning: {w}");
    }
    if !urls.errors.is_empty() {
        return Err(ConfigError {
            problems: urls.errors,
        }
        .into());
    }
    let calendars = match config.calendars.len() {
        0 => String::new(),
        n => format!("{n} calendars, "),
    };
    line(
        out,
        format_args!(
            "{}: valid ({} rules, {calendars}{} tokens, {} files)",
            config.path.display(),
            config.rules.len(),
            config.tokens.len(),
            config.files.len()
        ),
    )?;
    line(out, reload_note(NEEDS_RESTART))
}

/// What a reload applies, given the keys that need a restart.
fn reload_note(needs_restart: &[&str]) -> String {
    let keys: Vec<String> = needs_restart.iter().map(|k| format!("`{k}`")).collect();
    format!(
        "a reload (SIGHUP, `systemctl reload`, or saving a config file) applies every key \
         except {}, which {} a restart",
        keys.join(", "),
        if keys.len() == 1 { "takes" } else { "take" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reload_note_names_each_key_that_needs_a_restart() {
        for (keys, want) in [
            (
                &["database"][..],
                "except `database`, which takes a restart",
            ),
            (
                &["database", "listen"][..],
                "except `database`, `listen`, which take a restart",
            ),
        ] {
            let note = reload_note(keys);
            assert!(note.ends_with(want), "{keys:?}: {note}");
        }
    }
}
