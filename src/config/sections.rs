//! Cutting one config file into sections that are parsed one at a time.
//!
//! The spanned TOML tree of a file, with the parser's token and event lists, takes over 20
//! bytes per byte of input while it exists: parsing a 17.6 MB file with 100,000 rules in one
//! piece peaked at 385 MB, while the rules built from it take about 64 MB. Parsed section by
//! section, only one section's tree exists at a time, and the same load peaks at 114 MB.
//!
//! A cut must never change what a file means, valid or not. This module only proposes cuts,
//! at lines that look like `[[rules]]` or `[tokens.NAME]` headers; [`super::top`] parses
//! each piece and falls back to parsing the whole file whenever a piece does not parse on
//! its own or the pieces could mean something else together (see `walk_sections` there).
//! Why the proposed cuts are safe when every piece parses:
//!
//! - A cut inside a multi-line string, array or inline table leaves the piece before it
//!   unterminated, and that piece fails to parse. So when every piece parses, every cut is
//!   between two top-level lines of the file, where the line is a table header.
//! - After the first cut, every header line is one of three shapes (else there is no cut
//!   at all): `[[rules]]`, `[tokens.NAME]` with a bare NAME, or a header whose path starts
//!   with `rules.` (such as `[rules.profile]`), which belongs to the `[[rules]]` entry
//!   before it and is never cut off from it. So after the first cut only the `rules` array
//!   of tables and implicitly created `tokens` tables are defined, and the caller can check
//!   the few ways the pieces could conflict: a piece's `rules` is a table (a sub-table of
//!   the previous piece's last rule), or two pieces define the same token.
//!
//! A header-looking line inside a multi-line string can therefore only make the split
//! give up or fail to parse, never mislead it: the whole file is then parsed as one.

use std::collections::HashSet;
use std::ops::Range;

/// How the split treats a line that starts (after blanks) with `[`.
#[derive(Debug, PartialEq, Eq)]
enum Header<'t> {
    /// `[[rules]]` (`token` is `None`) or `[tokens.NAME]`: a section may start here.
    Cut {
        /// The NAME of `[tokens.NAME]`.
        token: Option<&'t str>,
    },
    /// A header under `rules.`: part of the `[[rules]]` entry before it.
    Rule,
    /// Anything else: the split gives up once a cut has been made.
    Other,
}

/// The byte ranges of the sections of `text`, or `None` when the file should be parsed as
/// one piece (no place to cut, a header after the first cut that the split cannot vouch
/// for, or a token defined twice).
///
/// The first section is everything before the first cut: the top-level settings and
/// `[limits]`/`[retry]`. Each later section starts at a cut line and runs to the next cut
/// made; cuts are made only once a section has at least `min_len` bytes, because parsing
/// many tiny pieces costs time (0 cuts at every possible line).
pub(crate) fn split(text: &str, min_len: usize) -> Option<Vec<Range<usize>>> {
    let mut starts = vec![0];
    let mut tokens = HashSet::new();
    for line in lines(text) {
        let trimmed = text[line.clone()].trim_start_matches([' ', '\t']);
        if !trimmed.starts_with('[') {
            continue;
        }
        let cut_made = starts.len() > 1;
        let kind = header(trimmed);
        if let Header::Cut { token: Some(name) } = kind {
            // A token defined twice is an error that only the parse of the whole file reports
            // as it should; the walk of the sections relies on this check.
            if !tokens.insert(name) {
                return None;
            }
        }
        match kind {
            // The first cut is always made: the first section must hold neither rules nor
            // tokens, which the caller checks.
            Header::Cut { .. } if !cut_made || line.start - starts[starts.len() - 1] >= min_len => {
                starts.push(line.start);
            }
            Header::Cut { .. } | Header::Rule => {}
            Header::Other if cut_made => return None,
            Header::Other => {}
        }
    }
    if starts.len() == 1 {
        return None;
    }
    let ends = starts.iter().skip(1).copied().chain([text.len()]);
    Some(starts.iter().zip(ends).map(|(&s, e)| s..e).collect())
}

/// The byte range of every line of `text`, without its line break.
fn lines(text: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut at = 0;
    text.split_inclusive('\n').map(move |line| {
        let start = at;
        at += line.len();
        let body = line.strip_suffix('\n').unwrap_or(line);
        let body = body.strip_suffix('\r').unwrap_or(body);
        start..start + body.len()
    })
}

/// What kind of header `line` (starting with `[`, leading blanks removed) is. Only exact
/// spellings count as cuts, so that the header's key path is certain without a TOML parser;
/// whether the line really is a header is left to the parser of the section.
fn header(line: &str) -> Header<'_> {
    if let Some(rest) = line.strip_prefix("[[rules]]") {
        return cut_if_ends(rest, None);
    }
    if let Some(rest) = line.strip_prefix("[tokens.") {
        let name_len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(rest.len());
        if name_len > 0 {
            if let Some(after) = rest[name_len..].strip_prefix(']') {
                return cut_if_ends(after, Some(&rest[..name_len]));
            }
        }
        return Header::Other;
    }
    // A bare key cannot contain a dot, so the header's path starts with the key `rules`.
    if line.starts_with("[rules.") || line.starts_with("[[rules.") {
        return Header::Rule;
    }
    Header::Other
}

/// A cut, if nothing but blanks or a comment follows the header on its line.
fn cut_if_ends<'t>(rest: &str, token: Option<&'t str>) -> Header<'t> {
    let rest = rest.trim_start_matches([' ', '\t']);
    if rest.is_empty() || rest.starts_with('#') {
        Header::Cut { token }
    } else {
        Header::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text of each section.
    fn pieces(text: &str, min_len: usize) -> Option<Vec<&str>> {
        split(text, min_len).map(|v| v.into_iter().map(|r| &text[r]).collect())
    }

    #[test]
    fn cuts_before_rules_and_token_headers() {
        let text = "a = 1\n[limits]\nx = 2\n[tokens.t-1]\ntoken_env = \"A\"\n[[rules]] # one\n\
                    name = \"r\"\n  [rules.profile]\ntitle = \"x\"\n[[rules]]\r\nname = \"s\"\n";
        assert_eq!(
            pieces(text, 0).unwrap(),
            [
                "a = 1\n[limits]\nx = 2\n",
                "[tokens.t-1]\ntoken_env = \"A\"\n",
                "[[rules]] # one\nname = \"r\"\n  [rules.profile]\ntitle = \"x\"\n",
                "[[rules]]\r\nname = \"s\"\n",
            ]
        );
        // Sections grow to the minimum length; the first cut is always made.
        assert_eq!(
            pieces(text, 40).unwrap(),
            [
                "a = 1\n[limits]\nx = 2\n",
                "[tokens.t-1]\ntoken_env = \"A\"\n[[rules]] # one\nname = \"r\"\n  \
                 [rules.profile]\ntitle = \"x\"\n",
                "[[rules]]\r\nname = \"s\"\n",
            ]
        );
    }

    #[test]
    fn no_cut_without_rules_or_tokens_headers() {
        assert_eq!(pieces("a = 1\n[limits]\nx = 2\n", 0), None);
        assert_eq!(pieces("", 0), None);
    }

    #[test]
    fn gives_up_on_a_header_it_cannot_vouch_for_after_a_cut() {
        for odd in [
            "[limits]",
            "[tokens]",
            "[ tokens.b ]",
            "[tokens.\"b\"]",
            "[tokens.b.c]",
            "[[tokens.b]]",
            "[rules]",
            "[[rules]] x",
            "  [x]",
            "[\"rules\".profile]",
        ] {
            let text = format!("[[rules]]\nname = \"r\"\n{odd}\n");
            assert_eq!(pieces(&text, 0), None, "{odd}");
            // Before the first cut the same line is part of the first section.
            let text = format!("{odd}\n[[rules]]\nname = \"r\"\n");
            assert_eq!(pieces(&text, 0).map(|p| p.len()), Some(2), "{odd}");
        }
    }

    #[test]
    fn a_token_defined_twice_is_left_to_the_whole_file() {
        let text = |second: &str| {
            format!("[tokens.a]\ntoken_env = \"A\"\n[[rules]]\nname = \"r\"\n[tokens.{second}]\n")
        };
        assert_eq!(pieces(&text("a"), 0), None);
        assert_eq!(pieces(&text("b"), 0).map(|p| p.len()), Some(4));
    }

    #[test]
    fn header_kinds() {
        let rules = Header::Cut { token: None };
        assert_eq!(header("[[rules]]"), rules);
        assert_eq!(header("[[rules]]\t# c"), rules);
        assert_eq!(
            header("[tokens.Alice_2] # x"),
            Header::Cut {
                token: Some("Alice_2")
            }
        );
        assert_eq!(header("[tokens.]"), Header::Other);
        assert_eq!(header("[tokens.a]b"), Header::Other);
        assert_eq!(header("[rules.profile.fields]"), Header::Rule);
        assert_eq!(header("[[rules.x]]"), Header::Rule);
        assert_eq!(header("[[rules]]]"), Header::Other);
    }
}
