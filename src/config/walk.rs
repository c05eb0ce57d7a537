//! The walk over one parsed file: typed reads of spanned TOML values that record a located
//! [`Problem`] instead of failing, so that one pass finds every problem in the file.

use std::borrow::Cow;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::de::{DeString, DeTable, DeValue};
use toml::Spanned;

use super::span::LineIndex;
use super::string_pos;
use super::Problem;
use crate::schedule::parse_duration;

/// A parsed TOML table whose keys and values keep their byte spans.
pub(crate) type Table<'i> = DeTable<'i>;
/// A parsed TOML value with its byte span.
pub(crate) type Value<'i> = Spanned<DeValue<'i>>;
/// A table key with its byte span.
pub(crate) type Key<'i> = Spanned<DeString<'i>>;

/// The problems found in one file so far, and what is needed to locate them.
pub(crate) struct Ctx<'t> {
    /// The file, as the user named it (or as found in `config.d/`).
    file: PathBuf,
    /// Turns spans into line and column.
    lines: LineIndex<'t>,
    /// Problems in the order they were found; sorted when the file is done.
    problems: Vec<Problem>,
    /// Where in the file the text being walked starts: spans from a parse of one section
    /// (see [`super::sections`]) count from the section's start, not the file's.
    base: usize,
}

impl<'t> Ctx<'t> {
    /// Start checking `text`, the contents of `file`.
    pub(crate) fn new(file: &Path, text: &'t str) -> Self {
        Ctx {
            file: file.to_path_buf(),
            lines: LineIndex::new(text),
            problems: Vec::new(),
            base: 0,
        }
    }

    /// The file being checked, as displayed.
    pub(crate) fn file(&self) -> &Path {
        &self.file
    }

    /// Walk a section that starts at byte `start` of the file: spans given to `walk` count
    /// from there. Spans kept after the walk must be made whole-file ones with [`Self::in_file`].
    pub(crate) fn section<R>(&mut self, start: usize, walk: impl FnOnce(&mut Self) -> R) -> R {
        let outer = std::mem::replace(&mut self.base, start);
        let result = walk(self);
        self.base = outer;
        result
    }

    /// `span` of the text being walked as a span of the whole file, for keeping beyond the
    /// walk of its section (e.g. a name checked for uniqueness once all files are read).
    pub(crate) fn in_file(&self, span: Range<usize>) -> Range<usize> {
        span.start + self.base..span.end + self.base
    }

    /// Record a problem at the start of `span`.
    pub(crate) fn error(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let problem = self.problem(span, message);
        self.problems.push(problem);
    }

    /// A problem at the start of `span`, not recorded: for one found later (a `url_file`
    /// that `check` or `run` reads).
    pub(crate) fn problem(&self, span: &Range<usize>, message: impl Into<String>) -> Problem {
        let (line, col) = self.lines.position(self.base + span.start);
        Problem {
            file: self.file.clone(),
            line,
            col,
            message: message.into(),
        }
    }

    /// Record a problem at byte `offset` of the value of the string `v` (a place in a regex
    /// or a template), or at the string's start where the place cannot be told.
    pub(crate) fn error_inside(
        &mut self,
        v: &Value<'_>,
        offset: usize,
        message: impl Into<String>,
    ) {
        let span = v.span();
        let raw = self
            .lines
            .text()
            .get(self.base + span.start..self.base + span.end)
            .unwrap_or("");
        let at = span.start + string_pos::raw_offset(raw, offset).unwrap_or(0);
        self.error(&(at..at), message);
    }

    /// How many problems have been recorded; a rule compares it before and after its checks
    /// to know whether everything in it was valid.
    pub(crate) fn count(&self) -> usize {
        self.problems.len()
    }

    /// Forget the problems recorded after the first `count`, when a walk is thrown away and
    /// done again (a file whose sections cannot be walked one by one).
    pub(crate) fn forget_since(&mut self, count: usize) {
        self.problems.truncate(count);
    }

    /// `file:line:col` of `span`, for messages that point at another place (the first of two
    /// duplicates).
    pub(crate) fn location(&self, span: &Range<usize>) -> String {
        let (line, col) = self.lines.position(self.base + span.start);
        format!("{}:{line}:{col}", self.file.display())
    }

    /// Take the problems, sorted by line and column (stable, so equal positions keep the
    /// order they were found in).
    pub(crate) fn take_problems(&mut self) -> Vec<Problem> {
        self.problems.sort_by_key(|p| (p.line, p.col));
        std::mem::take(&mut self.problems)
    }

    /// Report every key of `table` not in `allowed`, at the key. `within` names the table for
    /// the message, e.g. `rule "coffee"` or `[limits]`; empty for the top level.
    pub(crate) fn unknown_keys(&mut self, table: &Table<'_>, allowed: &[&str], within: &str) {
        let prefix = if within.is_empty() {
            "unknown top-level key".to_string()
        } else {
            format!("{within}: unknown key")
        };
        for key in table.keys() {
            if !allowed.contains(&key.get_ref().as_ref()) {
                let k = shown(key.get_ref());
                let allowed = allowed.join(", ");
                self.error(
                    &key.span(),
                    format!("{prefix} {k}; allowed keys are {allowed}"),
                );
            }
        }
    }

    /// The value as a string, or a problem saying `what` must be one.
    pub(crate) fn string<'v>(&mut self, what: &str, v: &'v Value<'_>) -> Option<&'v str> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.as_ref()),
            other => {
                self.wrong_type(what, "a string (in double quotes)", other, &v.span());
                None
            }
        }
    }

    /// A non-empty string.
    pub(crate) fn non_empty<'v>(&mut self, what: &str, v: &'v Value<'_>) -> Option<&'v str> {
        let s = self.string(what, v)?;
        if s.trim().is_empty() {
            self.error(&v.span(), format!("{what} is empty; give it a value"));
            return None;
        }
        Some(s)
    }

    /// The value as text for the date and time parsers: a string, or an unquoted TOML local
    /// date or local time (`2026-12-24`, `09:00:00`), which people write naturally.
    pub(crate) fn date_or_time_text<'v>(
        &mut self,
        what: &str,
        expected: &str,
        v: &'v Value<'_>,
    ) -> Option<Cow<'v, str>> {
        match v.get_ref() {
            DeValue::String(s) => Some(Cow::Borrowed(s.as_ref())),
            DeValue::Datetime(dt)
                if dt.offset.is_none() && (dt.date.is_none() || dt.time.is_none()) =>
            {
                Some(Cow::Owned(dt.to_string()))
            }
            other => {
                self.wrong_type(what, expected, other, &v.span());
                None
            }
        }
    }

    /// The value as a boolean.
    pub(crate) fn boolean(&mut self, what: &str, v: &Value<'_>) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.wrong_type(what, "true or false", other, &v.span());
                None
            }
        }
    }

    /// The value as a whole number of at least 1 that fits in a `u32`.
    pub(crate) fn positive_count(&mut self, what: &str, v: &Value<'_>) -> Option<u32> {
        let n = match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
            other => {
                self.wrong_type(what, "a whole number", other, &v.span());
                return None;
            }
        };
        // Parsing fails only for numbers beyond i64, which are too large anyway.
        let n = n.unwrap_or(i64::MAX);
        if n < 1 {
            self.error(&v.span(), format!("{what} must be at least 1"));
            return None;
        }
        match u32::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => {
                let max = u32::MAX;
                self.error(&v.span(), format!("{what} is too large; use at most {max}"));
                None
            }
        }
    }

    /// The value as a duration string such as `"2h"`.
    pub(crate) fn duration(&mut self, what: &str, v: &Value<'_>) -> Option<Duration> {
        let text = match v.get_ref() {
            DeValue::String(s) => s.as_ref(),
            other => {
                self.wrong_type(what, "a duration in quotes, e.g. \"2h\"", other, &v.span());
                return None;
            }
        };
        self.parsed(what, v, parse_duration(text))
    }

    /// What a grammar function (`crate::schedule::parse_*`) made of the value `v`, or, if it
    /// failed, its message recorded at `v` after `what`.
    pub(crate) fn parsed<T>(
        &mut self,
        what: &str,
        v: &Value<'_>,
        result: Result<T, String>,
    ) -> Option<T> {
        result
            .map_err(|e| self.error(&v.span(), format!("{what}: {e}")))
            .ok()
    }

    /// Whether `name`, the name of a `kind` ("rule", "token"), is free of control characters;
    /// if not, a problem at `span`. Names go into every log line and message about their
    /// rule or token, so a newline or an ESC sequence in one (from a drop-in an admin did not
    /// write, say) would forge a log line or drive the terminal of whoever reads the journal.
    pub(crate) fn plain_name(&mut self, kind: &str, name: &str, span: &Range<usize>) -> bool {
        let Some(c) = name.chars().find(|c| c.is_control()) else {
            return true;
        };
        self.error(
            span,
            format!(
                "{kind} name {} contains the control character {c:?}; {kind} names may not \
                 contain control characters, so remove it",
                shown(name)
            ),
        );
        false
    }

    /// The value as a table.
    pub(crate) fn table<'v, 'i>(
        &mut self,
        what: &str,
        expected: &str,
        v: &'v Value<'i>,
    ) -> Option<&'v Table<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            other => {
                self.wrong_type(what, expected, other, &v.span());
                None
            }
        }
    }

    /// Record that `what` has the wrong type. The value itself is never quoted: it may be a
    /// token.
    pub(crate) fn wrong_type(
        &mut self,
        what: &str,
        expected: &str,
        found: &DeValue<'_>,
        span: &Range<usize>,
    ) {
        self.error(
            span,
            format!("{what} must be {expected}, not {}", a_type(found)),
        );
    }
}

/// The type of a value with its article, for "must be a string, not an integer".
fn a_type(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a number with a fraction",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date/time",
        DeValue::Array(_) => "a list",
        DeValue::Table(_) => "a table",
    }
}

/// Whether a string looks like a Slack token (`xoxb-…`, `xoxp-…`, `xapp-…`, …). Such strings
/// are never echoed, wherever they turn up: as a key, a token name or a rule's `token`
/// reference (people paste the token where its name belongs).
pub(crate) fn looks_like_token(s: &str) -> bool {
    let s = s.trim().to_ascii_lowercase();
    s.starts_with("xox") || s.starts_with("xapp-")
}

/// A name or key quoted for a message, unless it looks like a token.
pub(crate) fn shown(s: &str) -> String {
    if looks_like_token(s) {
        "<hidden: it looks like a Slack token>".to_string()
    } else {
        format!("{s:?}")
    }
}

/// Look up `key` in `table`, with the key's span.
pub(crate) fn entry<'a, 'i>(
    table: &'a Table<'i>,
    key: &str,
) -> Option<(&'a Key<'i>, &'a Value<'i>)> {
    table.get_key_value(key)
}
