//! Reading config files and turning them into a [`Config`]: the main file, then every drop-in
//! in `config.d/`, each walked once (see [`super::top`]); then the checks across files (names
//! unique, tokens defined); then defaults and paths.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::calendars;
use super::database::DatabaseValue;
use super::paths::{self, Env};
use super::rules::RuleDraft;
use super::span::LineIndex;
use super::token_file::{self, OpenError};
use super::top::{self, FileOut, Globals, RawToken};
use super::walk::{shown, Ctx};
use super::{Config, ConfigError, Database, Postgres, Problem, Rule, TokenSource};
use crate::queue::lease::MIN_LEASE;

/// Folder of drop-in files, beside the main config file.
const DROP_IN_DIR: &str = "config.d";

/// The config path when `--config` is not given: `$SLACK_STATUSD_CONFIG`, else
/// `$XDG_CONFIG_HOME/slack-statusd/config.toml` (or `~/.config/...`) if it exists, else
/// `/etc/slack-statusd/config.toml`.
pub fn default_config_path() -> PathBuf {
    if let Some(p) = std::env::var_os("SLACK_STATUSD_CONFIG").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    if let Some(dir) = xdg {
        let p = dir.join("slack-statusd").join("config.toml");
        if p.exists() {
            return p;
        }
    }
    PathBuf::from("/etc/slack-statusd/config.toml")
}

/// Load and validate the config at `path` and its `config.d/*.toml` drop-ins.
///
/// Every problem in every file is reported, each with its own file, line and column. Also
/// fills [`Config::warnings`], e.g. for an inline token in a file others can read.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let main = read_file(path, true).map_err(|p| ConfigError { problems: vec![p] })?;
    let mut sources = vec![Source {
        path: path.to_path_buf(),
        text: main,
    }];
    let mut problems = Vec::new();
    let mut skipped = Vec::new();
    let drop_ins = drop_in_files(path, &mut problems, &mut skipped);
    for file in &drop_ins {
        match read_file(file, false) {
            Ok(text) => sources.push(Source {
                path: file.clone(),
                text,
            }),
            Err(p) => problems.push(p),
        }
    }
    let checked = check(&sources, &Env::from_process(), file_mode);
    let mut problems = match checked {
        Ok(mut config) if problems.is_empty() => {
            config.warnings.extend(skipped);
            return Ok(config);
        }
        Ok(_) => problems,
        Err(e) => e.problems.into_iter().chain(problems).collect(),
    };
    // Files in the order they are read: the main file, then drop-ins by name (an unreadable
    // drop-in in its place). The sort is stable, so each file keeps its line order.
    let order: Vec<&Path> = std::iter::once(path)
        .chain(drop_ins.iter().map(PathBuf::as_path))
        .collect();
    problems.sort_by_key(|p| {
        order
            .iter()
            .position(|f| *f == p.file)
            .unwrap_or(order.len())
    });
    Err(ConfigError { problems })
}

/// Validate config text as if it were the file `path` (no drop-ins). For tests and `check`.
///
/// Reads nothing from disk: paths are resolved, but the file's permissions are not checked.
pub fn load_str(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let source = Source {
        path: path.to_path_buf(),
        text: text.to_string(),
    };
    check(&[source], &Env::from_process(), |_| None)
}

/// One file's text, with the path it is reported under.
struct Source {
    /// As the user named it, or the main file's folder joined with `config.d/NAME`.
    path: PathBuf,
    /// Its contents.
    text: String,
}

/// Read a config file as UTF-8, or say at 1:1 (or where the bad byte is) what to do.
fn read_file(path: &Path, main: bool) -> Result<String, Problem> {
    let at = |line, col, message: String| Problem {
        file: path.to_path_buf(),
        line,
        col,
        message,
    };
    let bytes = if main {
        std::fs::read(path).map_err(|e| at(1, 1, read_error(&e, main)))?
    } else {
        read_drop_in(path).map_err(|m| at(1, 1, m))?
    };
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        // The prefix up to the bad byte is valid UTF-8 by definition.
        let prefix = String::from_utf8_lossy(&e.as_bytes()[..valid]).into_owned();
        let (line, col) = LineIndex::new(&prefix).position(valid);
        at(
            line,
            col,
            "the file is not valid UTF-8 here; save it as UTF-8".into(),
        )
    })
}

/// A drop-in's bytes. It was a regular file when the folder was listed; opening it without
/// blocking and checking the opened descriptor makes sure a FIFO swapped in since cannot
/// block the loader (a reload would wedge, and SIGTERM with it).
fn read_drop_in(path: &Path) -> Result<Vec<u8>, String> {
    let (mut file, _) = token_file::open_regular(path).map_err(|e| match e {
        OpenError::Io(e) => read_error(&e, false),
        OpenError::NotRegular(kind) => not_regular(kind),
    })?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| read_error(&e, false))?;
    Ok(bytes)
}

/// Why a drop-in that is not a regular file is left out.
fn not_regular(kind: &str) -> String {
    format!("this drop-in is a {kind}, not a regular file; drop-ins must be regular files (or symbolic links to them), so it is skipped: remove it or move it out of config.d/")
}

/// What went wrong reading a file, and what to do about it.
fn read_error(e: &io::Error, main: bool) -> String {
    let what = if main {
        "the config file"
    } else {
        "this drop-in"
    };
    let hint = match (e.kind(), main) {
        (io::ErrorKind::NotFound, true) => {
            "; create it (config/config.toml is an annotated template) or pass --config PATH"
        }
        (io::ErrorKind::PermissionDenied, _) => {
            "; make it readable by the user the daemon runs as (e.g. chmod 640 and chgrp)"
        }
        _ => "",
    };
    format!("cannot read {what}: {e}{hint}")
}

/// The drop-ins beside `main`: every `*.toml` file in `config.d/`, sorted by name. Hidden
/// files are skipped (editors keep their backups there). A missing folder is fine; an
/// unreadable one is a problem. A `*.toml` entry that is not a regular file (or a link to
/// one) is skipped with a warning in `skipped` naming it: a dangling link, a link loop, a
/// FIFO (never opened: that could block), a device, a socket or a directory.
fn drop_in_files(
    main: &Path,
    problems: &mut Vec<Problem>,
    skipped: &mut Vec<String>,
) -> Vec<PathBuf> {
    let dir = main.parent().unwrap_or(Path::new("")).join(DROP_IN_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Vec::new();
        }
        Err(e) => {
            problems.push(Problem {
                file: dir,
                line: 1,
                col: 1,
                message: format!("cannot read the drop-in folder: {e}"),
            });
            return Vec::new();
        }
    };
    let mut names: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .filter(|n| {
            let n = n.to_string_lossy();
            n.ends_with(".toml") && !n.starts_with('.')
        })
        .collect();
    names.sort();
    let mut files = Vec::new();
    for path in names.into_iter().map(|n| dir.join(n)) {
        match skip_reason(&path) {
            None => files.push(path),
            Some(why) => skipped.push(format!("{}: {why}", path.display())),
        }
    }
    files
}

/// Why the drop-in entry at `path` is not read, or `None` for a regular file. Looks only at
/// metadata, following symlinks as admins link drop-ins in from elsewhere; opens nothing.
fn skip_reason(path: &Path) -> Option<String> {
    let e = match std::fs::metadata(path) {
        Ok(meta) => return token_file::kind_of(&meta).map(not_regular),
        Err(e) => e,
    };
    let link = |what: &str| {
        format!("this drop-in is a symbolic link {what}, so it is skipped: fix or remove the link")
    };
    if e.raw_os_error() == Some(libc::ELOOP) {
        return Some(link("loop (it leads back to itself)"));
    }
    if e.kind() == io::ErrorKind::NotFound {
        // Listed a moment ago: either a dangling link, or a file removed since (not worth
        // a word, the next reload will not see it either).
        return std::fs::read_link(path)
            .ok()
            .map(|target| link(&format!("to {}, which does not exist", target.display())));
    }
    Some(format!(
        "this drop-in cannot be inspected ({e}), so it is skipped"
    ))
}

/// The permission bits of a file, if it can be inspected.
fn file_mode(path: &Path) -> Option<u32> {
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}

/// A file checked by [`check`]: its problems and what it defines.
struct Checked<'t> {
    /// Problems of this file.
    ctx: Ctx<'t>,
    /// What the walk found.
    out: FileOut,
}

/// Walk every source (the first is the main file), check across them, and build the
/// config. `mode` gives a file's permission bits, for the inline-token warning.
fn check(
    sources: &[Source],
    env: &Env,
    mode: impl Fn(&Path) -> Option<u32>,
) -> Result<Config, ConfigError> {
    let main_name = sources.first().map(|s| s.path.clone()).unwrap_or_default();
    let mut files: Vec<Checked<'_>> = sources
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut ctx = Ctx::new(&s.path, &s.text);
            let out = top::walk_file(&mut ctx, &s.text, (i > 0).then_some(main_name.as_path()));
            Checked { ctx, out }
        })
        .collect();

    let token_names = unique_tokens(&mut files);
    let mut names = check_rules(&mut files, &token_names);
    for f in files.iter_mut() {
        calendars::check_across(&mut f.ctx, &f.out.calendars, &token_names, &mut names);
    }

    let problems: Vec<Problem> = files
        .iter_mut()
        .flat_map(|f| f.ctx.take_problems())
        .collect();
    if !problems.is_empty() {
        return Err(ConfigError { problems });
    }
    Ok(build(files, &main_name, env, mode))
}

/// Report token names defined twice (in different files: TOML itself forbids it within
/// one). Returns every defined name, valid or not, so that a rule naming a token with a
/// broken definition is not also told the token does not exist.
fn unique_tokens(files: &mut [Checked<'_>]) -> BTreeMap<String, String> {
    let mut first_at = BTreeMap::new();
    for f in files.iter_mut() {
        for t in &f.out.tokens {
            match first_at.get(&t.name.text) {
                Some(first) => f.ctx.error(
                    &t.name.span,
                    format!(
                        "token {} is already defined at {first}; token names must be unique \
                         across all files, so rename or remove one",
                        shown(&t.name.text)
                    ),
                ),
                None => {
                    first_at.insert(t.name.text.clone(), f.ctx.location(&t.name.span));
                }
            }
        }
    }
    first_at
}

/// Report duplicate rule names and rules whose token is not defined. Returns every rule
/// name with where it is first defined.
fn check_rules(
    files: &mut [Checked<'_>],
    tokens: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut first_at: BTreeMap<String, String> = BTreeMap::new();
    for f in files.iter_mut() {
        for rule in &f.out.rules {
            if let Some(name) = &rule.name {
                match first_at.get(&name.text) {
                    Some(first) => f.ctx.error(
                        &name.span,
                        format!(
                            "rule name {:?} is already used at {first}; rule names must be \
                             unique across all files, so rename one",
                            name.text
                        ),
                    ),
                    None => {
                        first_at.insert(name.text.clone(), f.ctx.location(&name.span));
                    }
                }
            }
            if let Some(token) = &rule.token {
                if !tokens.contains_key(&token.text) {
                    let msg = unknown_token(&rule.label, &token.text, tokens);
                    f.ctx.error(&token.span, msg);
                }
            }
        }
    }
    first_at
}

/// The message for a rule or calendar whose `token` names no `[tokens.NAME]` table.
pub(super) fn unknown_token(label: &str, name: &str, tokens: &BTreeMap<String, String>) -> String {
    if super::walk::looks_like_token(name) {
        // People paste the token itself here; it must not end up in a log.
        return format!(
            "{label}: token must be the NAME of a [tokens.NAME] table, but this looks like a \
             Slack token; move it into [tokens.NAME] (token_env, token_file or token) and \
             write its NAME here"
        );
    }
    let known: Vec<String> = tokens.keys().map(|k| shown(k)).collect();
    let known = if known.is_empty() {
        "no tokens are defined yet".to_string()
    } else {
        format!("defined: {}", known.join(", "))
    };
    format!(
        "{label}: token {} is not defined; add a [tokens.{name}] table ({known})",
        shown(name)
    )
}

/// The config, once every file has been found valid.
fn build(
    files: Vec<Checked<'_>>,
    main: &Path,
    env: &Env,
    mode: impl Fn(&Path) -> Option<u32>,
) -> Config {
    let globals = files
        .first()
        .and_then(|f| f.out.globals.clone())
        .unwrap_or_default();
    let zone = globals.timezone.unwrap_or(env.system_zone);
    let mut tokens = BTreeMap::new();
    let mut rules = Vec::new();
    let mut calendars = Vec::new();
    let mut warnings = globals.warnings.clone();
    let mut paths = Vec::new();
    for f in files {
        let file = f.ctx.file().to_path_buf();
        if f.out
            .tokens
            .iter()
            .any(|t| matches!(t.source, Some(RawToken::Inline(_))))
        {
            warnings.extend(readable_warning(&file, mode(&file)));
        }
        for t in f.out.tokens {
            if let Some(source) = t.source {
                tokens.insert(t.name.text, token_source(source, &file, env));
            }
        }
        for body in f.out.rules.iter().filter_map(|d| d.body.as_ref()) {
            warnings.extend(body.warnings.iter().cloned());
        }
        rules.extend(
            f.out
                .rules
                .into_iter()
                .filter_map(|d| finish_rule(d, &file, zone, &globals)),
        );
        for d in f.out.calendars {
            warnings.extend(d.warnings.iter().cloned());
            calendars.extend(calendars::finish(d, &file, zone, env));
        }
        paths.push(file);
    }
    Config {
        path: main.to_path_buf(),
        files: paths,
        database: database(main, &globals, env),
        timezone: zone,
        api_url: globals
            .api_url
            .unwrap_or_else(|| top::DEFAULT_API_URL.to_string()),
        catch_up: globals.catch_up,
        retention: globals.retention,
        log_level: globals.log_level.clone(),
        limits: globals.limits,
        retry: globals.retry,
        http: globals.http,
        tokens,
        rules: rules.into(),
        calendars: calendars.into(),
        warnings,
    }
}

/// A token's source with its file made absolute. A relative `token_file` is resolved
/// against the folder of the file that names it (a drop-in's token sits beside it), unless
/// systemd provides `$CREDENTIALS_DIRECTORY`.
fn token_source(raw: RawToken, file: &Path, env: &Env) -> TokenSource {
    match raw {
        RawToken::Env(var) => TokenSource::Env(var),
        RawToken::File(p) => TokenSource::File(paths::token_file_path(file, &p, env)),
        RawToken::Inline(s) => TokenSource::Inline(s),
    }
}

/// The warning for an inline token in a file that group or others can read.
fn readable_warning(file: &Path, mode: Option<u32>) -> Option<String> {
    let mode = mode.filter(|m| m & 0o044 != 0)?;
    let f = file.display();
    Some(format!(
        "{f} holds an inline token and is readable by other users (mode {mode:o}); \
         run chmod 600 {f}, or use token_env or token_file instead"
    ))
}

/// A rule from its draft, which is complete once the config has no problems; the zone and
/// top-level skip dates fill in what the rule leaves open.
fn finish_rule(d: RuleDraft, file: &Path, zone: chrono_tz::Tz, globals: &Globals) -> Option<Rule> {
    let body = d.body?;
    let mut skip_dates = body.skip_dates;
    skip_dates.extend(globals.skip_dates.iter().copied());
    Some(Rule {
        name: d.name?.text,
        token: d.token?.text,
        user: body.user,
        schedule: body.schedule,
        timezone: d.timezone.unwrap_or(zone),
        skip_dates,
        status: body.status,
        expiry: body.expiry,
        profile: body.profile,
        respect_manual: body.respect_manual,
        dnd: body.parts.dnd,
        presence: body.parts.presence,
        restore: body.parts.restore,
        file: file.to_path_buf(),
    })
}

/// The queue the globals name: an SQLite file resolved against the config's folder (or the
/// default's), or a PostgreSQL server with its password file resolved like a `token_file`.
fn database(main: &Path, globals: &Globals, env: &Env) -> Database {
    match &globals.database {
        Some(DatabaseValue::Postgres(url)) => Database::Postgres(Postgres {
            url: url.clone(),
            password_file: globals
                .database_password_file
                .as_deref()
                .map(|f| paths::token_file_path(main, f, env)),
            lease: globals.lease.unwrap_or(MIN_LEASE),
        }),
        Some(DatabaseValue::File(file)) => {
            Database::Sqlite(paths::database_path(main, Some(file), env))
        }
        None => Database::Sqlite(paths::database_path(main, None, env)),
    }
}
