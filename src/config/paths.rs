//! Where files live: the queue database and token files, resolved from the config's folder
//! and the environment systemd (or the user's session) provides.
//!
//! The environment is captured once into [`Env`] and passed in, so every rule here is a pure
//! function that tests can call with made-up values instead of mutating the process
//! environment (tests run in parallel threads).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;

/// The folder a system-wide install keeps its config in.
const SYSTEM_CONFIG_DIR: &str = "/etc/slack-statusd";
/// Where a system service's database lives when it is not run by systemd (SPEC §2).
const SYSTEM_DATABASE: &str = "/var/lib/slack-statusd/queue.db";
/// File name of the default database in a state directory.
const DATABASE_FILE: &str = "queue.db";

/// The parts of the process environment the config depends on.
#[derive(Debug, Clone, Default)]
pub(crate) struct Env {
    /// `$STATE_DIRECTORY` (systemd `StateDirectory=`), possibly several paths joined by `:`.
    pub state_directory: Option<OsString>,
    /// `$XDG_STATE_HOME`.
    pub xdg_state_home: Option<OsString>,
    /// `$HOME`, for `~/.local/state`.
    pub home: Option<OsString>,
    /// `$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`).
    pub credentials_directory: Option<OsString>,
    /// The zone rules use when the config names none.
    pub system_zone: Tz,
    /// The working directory, to make paths absolute when the config path is relative.
    pub current_dir: Option<PathBuf>,
}

impl Env {
    /// Capture the current process environment.
    pub(crate) fn from_process() -> Self {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        Env {
            state_directory: var("STATE_DIRECTORY"),
            xdg_state_home: var("XDG_STATE_HOME"),
            home: var("HOME"),
            credentials_directory: credentials_directory(),
            system_zone: system_zone(),
            current_dir: std::env::current_dir().ok(),
        }
    }
}

/// `$CREDENTIALS_DIRECTORY`, set by systemd when the unit has `LoadCredential=`; `None` when
/// unset or empty (as from a shell).
pub(crate) fn credentials_directory() -> Option<OsString> {
    std::env::var_os("CREDENTIALS_DIRECTORY").filter(|v| !v.is_empty())
}

/// The system's zone, or UTC when it cannot be determined or is not an IANA name chrono-tz
/// knows (containers often have no `/etc/localtime`).
fn system_zone() -> Tz {
    iana_time_zone::get_timezone()
        .ok()
        .and_then(|name| name.parse().ok())
        .unwrap_or(Tz::UTC)
}

/// The folder relative paths in `config_path` are resolved against, made absolute.
pub(crate) fn config_dir(config_path: &Path, env: &Env) -> PathBuf {
    let dir = config_path.parent().unwrap_or(Path::new(""));
    absolute(dir, env)
}

/// `path` made absolute against the working directory (left alone if that is unknown).
fn absolute(path: &Path, env: &Env) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    match &env.current_dir {
        Some(cwd) if path.as_os_str().is_empty() => cwd.clone(),
        Some(cwd) => cwd.join(path),
        None => path.to_path_buf(),
    }
}

/// The queue database: `configured` (relative to the config's folder) if given, else the
/// default of SPEC §2/§3.
///
/// Default, in order: `$STATE_DIRECTORY/queue.db` (the first path when systemd lists
/// several); `/var/lib/slack-statusd/queue.db` for a config under `/etc/slack-statusd/` (so
/// `queue` and `set` run from a shell find the system service's database);
/// `$XDG_STATE_HOME/slack-statusd/queue.db`; `~/.local/state/slack-statusd/queue.db`.
pub(crate) fn database_path(config_path: &Path, configured: Option<&str>, env: &Env) -> PathBuf {
    if let Some(p) = configured {
        return config_dir(config_path, env).join(p);
    }
    if let Some(dir) = env.state_directory.as_ref().and_then(first_state_dir) {
        return dir.join(DATABASE_FILE);
    }
    if config_dir(config_path, env).starts_with(SYSTEM_CONFIG_DIR) {
        return PathBuf::from(SYSTEM_DATABASE);
    }
    user_state_dir(env)
        .join("slack-statusd")
        .join(DATABASE_FILE)
}

/// The first entry of a colon-separated `$STATE_DIRECTORY`, if non-empty.
fn first_state_dir(value: &OsString) -> Option<PathBuf> {
    let text = value.to_string_lossy();
    let first = text.split(':').next().unwrap_or("");
    (!first.is_empty()).then(|| PathBuf::from(first))
}

/// `$XDG_STATE_HOME`, else `~/.local/state`, else (no `$HOME` at all) a relative
/// `.local/state` so that a broken environment still yields a usable path.
fn user_state_dir(env: &Env) -> PathBuf {
    if let Some(x) = &env.xdg_state_home {
        return PathBuf::from(x);
    }
    let home = env.home.as_ref().map(PathBuf::from).unwrap_or_default();
    absolute(&home.join(".local").join("state"), env)
}

/// A `token_file`: relative to `$CREDENTIALS_DIRECTORY` when systemd provides one (that is
/// where `LoadCredential=` puts the files), else relative to the config's folder.
pub(crate) fn token_file_path(config_path: &Path, configured: &str, env: &Env) -> PathBuf {
    let base = match &env.credentials_directory {
        Some(dir) => absolute(Path::new(dir), env),
        None => config_dir(config_path, env),
    };
    base.join(configured)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        Env {
            home: Some("/home/ann".into()),
            current_dir: Some("/work".into()),
            ..Env::default()
        }
    }

    #[test]
    fn configured_database_is_relative_to_the_config_folder() {
        let e = env();
        let p = |c: &str, d: &str| database_path(Path::new(c), Some(d), &e);
        assert_eq!(
            p("/srv/cfg/config.toml", "q.db"),
            Path::new("/srv/cfg/q.db")
        );
        assert_eq!(p("config.toml", "q.db"), Path::new("/work/q.db"));
        assert_eq!(
            p("cfg/config.toml", "../q.db"),
            Path::new("/work/cfg/../q.db")
        );
        assert_eq!(p("/srv/config.toml", "/abs/q.db"), Path::new("/abs/q.db"));
    }

    #[test]
    fn default_database_follows_state_directory_then_etc_then_xdg_then_home() {
        let etc = Path::new("/etc/slack-statusd/config.toml");
        let user = Path::new("/home/ann/.config/slack-statusd/config.toml");

        let systemd = Env {
            state_directory: Some("/var/lib/a:/var/lib/b".into()),
            ..env()
        };
        assert_eq!(
            database_path(etc, None, &systemd),
            Path::new("/var/lib/a/queue.db")
        );
        // A config under /etc without systemd's variable: the system service's database.
        assert_eq!(
            database_path(etc, None, &env()),
            Path::new("/var/lib/slack-statusd/queue.db")
        );
        let xdg = Env {
            xdg_state_home: Some("/x/state".into()),
            ..env()
        };
        assert_eq!(
            database_path(user, None, &xdg),
            Path::new("/x/state/slack-statusd/queue.db")
        );
        assert_eq!(
            database_path(user, None, &env()),
            Path::new("/home/ann/.local/state/slack-statusd/queue.db")
        );
        // The /etc rule looks at the folder, not at a prefix of the string.
        assert_eq!(
            database_path(
                Path::new("/etc/slack-statusd-old/config.toml"),
                None,
                &env()
            ),
            Path::new("/home/ann/.local/state/slack-statusd/queue.db")
        );
    }

    #[test]
    fn token_files_are_relative_to_the_credentials_directory_if_any() {
        let cfg = Path::new("/etc/slack-statusd/config.toml");
        assert_eq!(
            token_file_path(cfg, "alice.token", &env()),
            Path::new("/etc/slack-statusd/alice.token")
        );
        let creds = Env {
            credentials_directory: Some("/run/credentials/slack-statusd.service".into()),
            ..env()
        };
        assert_eq!(
            token_file_path(cfg, "alice", &creds),
            Path::new("/run/credentials/slack-statusd.service/alice")
        );
        assert_eq!(
            token_file_path(cfg, "/abs/tok", &creds),
            Path::new("/abs/tok")
        );
    }
}
