//! The command line's definition, and nothing else: `main.rs` parses it, and `build.rs`
//! includes this very file (`#[path]`) to generate the man page and the shell completions
//! from it, so they can never describe other flags than the binary takes. That is why it
//! depends on `clap` and `std` only: a build script cannot see the rest of the crate.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Keeps Slack statuses and profile fields on a schedule.
///
/// Rules live in a TOML file; every firing becomes a row in a SQLite queue, and a throttled
/// worker sends the rows through Slack's users.profile.set within Slack's rate limits.
#[derive(Debug, Parser)]
// The one-line `about` is spelled out: Cargo's `description` is shorter, as it is also the
// .deb's synopsis, which must stay under 80 characters.
#[command(
    name = "slack-statusd",
    version,
    about = "Keeps Slack statuses and profile fields on a schedule: TOML rules, a durable SQLite queue, a throttled worker",
    long_about,
    after_long_help = MANUAL
)]
pub struct Cli {
    /// Config file. Default: $SLACK_STATUSD_CONFIG, else $XDG_CONFIG_HOME/slack-statusd/config.toml
    /// (or ~/.config/...) if it exists, else /etc/slack-statusd/config.toml.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground (systemd Type=notify).
    Run {
        /// Log each request instead of sending it; use a throwaway database; missing tokens
        /// are warnings.
        #[arg(long)]
        dry_run: bool,
    },
    /// Validate the config; exit 0 if valid, 1 if not.
    Check,
    /// Print the next firings, earliest first.
    Preview {
        /// How many firings to print.
        #[arg(long, default_value_t = 10)]
        count: usize,
        /// Start from this instant (RFC 3339) instead of now.
        #[arg(long, value_name = "RFC3339")]
        from: Option<String>,
        /// List the calendars' expanded occurrences instead (fetches each calendar once).
        #[arg(long)]
        events: bool,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Enqueue one immediate update through the same queue and throttle; prints the row id.
    Set(SetArgs),
    /// Inspect and manage the queue.
    Queue {
        /// What to do with the queue; `list` when omitted.
        #[command(subcommand)]
        action: Option<QueueCommand>,
        /// Print JSON lines.
        #[arg(long, global = true)]
        json: bool,
    },
    /// The daemon, tokens and next firings at a glance; works with the daemon stopped too.
    Status {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Every row, newest first.
    List,
    /// Failed rows only.
    Failed,
    /// Put a failed, held, skipped or expired row back to pending.
    Retry {
        /// Row id.
        id: i64,
    },
    /// Delete a row that is not in flight.
    Drop {
        /// Row id.
        id: i64,
    },
}

/// The rest of the manual, shown by `--help` (not `-h`).
pub const MANUAL: &str = "\
FILES:
    /etc/slack-statusd/config.toml    the system service's config (annotated template)
    <config folder>/config.d/*.toml   drop-ins: more [tokens] and [[rules]], one file per person
    ~/.config/slack-statusd/config.toml
                                      a user's config (user service)
    $STATE_DIRECTORY/queue.db         the queue under systemd (StateDirectory=); without
                                      systemd: /var/lib/slack-statusd/queue.db for a config in
                                      /etc/slack-statusd/, else ~/.local/state/slack-statusd/
    <database>.lock                   held by the running daemon: one `run` per database

ENVIRONMENT:
    SLACK_STATUSD_CONFIG     config file when --config is not given
    RUST_LOG                 log filter; overrides the config's log_level
    CREDENTIALS_DIRECTORY    token_file paths are relative to it (systemd LoadCredential=)
    STATE_DIRECTORY          default folder of the database (systemd StateDirectory=)
    NOTIFY_SOCKET, WATCHDOG_USEC
                             systemd notify protocol: READY=1, STATUS=, WATCHDOG=1, STOPPING=1

SIGNALS:
    SIGHUP             reload the config (an invalid one is rejected; the old one stays)
    SIGTERM, SIGINT    stop: a request in flight gets 3 s, pending rows stay in the database
    Editing the config file or a drop-in also reloads it.

EXIT STATUS:
    0    success
    1    invalid config or input (including a token that cannot be read)
    2    runtime failure: database, I/O, a calendar feed that cannot be fetched, another
         `run` holding the database

EXAMPLES:
    slack-statusd --config config/example.toml run --dry-run
    slack-statusd check && systemctl reload slack-statusd
    slack-statusd preview --count 5
    slack-statusd preview --events --json
    slack-statusd set --token alice --text 'In a meeting' --emoji :calendar: --expire 1h
    slack-statusd queue failed --json
";

/// `set`'s arguments as given on the command line. The field docs are its `--help`.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct SetArgs {
    /// Token name from the config (its name, never its value).
    #[arg(long, value_name = "NAME")]
    pub token: String,
    /// User ID to update (admin tokens); default: the token's own profile.
    #[arg(long, value_name = "ID")]
    pub user: Option<String>,
    /// Status text.
    #[arg(long)]
    pub text: Option<String>,
    /// Status emoji, such as :coffee:.
    #[arg(long)]
    pub emoji: Option<String>,
    /// Expire the status this long after the command runs (e.g. 2h, 30m).
    #[arg(long, value_name = "DURATION")]
    pub expire: Option<String>,
    /// Clear the status.
    #[arg(long, conflicts_with_all = ["text", "emoji", "expire"])]
    pub clear: bool,
    /// A temporary status: at its expiry, put back the status it replaced (needs --expire).
    #[arg(long, requires = "expire")]
    pub restore: bool,
    /// Snooze Do Not Disturb until the expiry (needs --expire); --dnd=false ends a snooze.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          value_name = "BOOL")]
    pub dnd: Option<bool>,
    /// Set presence: away or auto.
    #[arg(long, value_parser = ["away", "auto"])]
    pub presence: Option<String>,
    /// End the target's temporary status now: its restore goes out at once, or the status
    /// is cleared when none waits.
    #[arg(long, conflicts_with_all = ["text", "emoji", "expire", "clear", "restore", "dnd", "presence"])]
    pub end: bool,
}
