//! Text from outside the program (Slack's `error` and `warning`, a redirect's host) made safe
//! to log and to store. Pure.
//!
//! Such text is chosen by whoever answers our requests. Written raw, a `\n` forges a log line,
//! an ESC sequence drives the operator's terminal, and a 10 MB error becomes a 10 MB log line
//! and `last_error`. So it is [`escape`]d (control characters made visible) and [`bounded`]
//! (cut at a size we choose) before it goes anywhere; [`clean`] does both.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Write control characters as visible escapes: `\n`, `\r`, `\t`, and `\u{1b}` for the rest
/// (C0 controls, DEL and the C1 controls U+0080–U+009F), and so also the characters that
/// rearrange or break what a terminal shows without being controls: the line and paragraph
/// separators U+2028/U+2029 and the bidirectional embeddings, overrides and isolates
/// (U+202A–U+202E, U+2066–U+2069), which can make a log line read backwards. Everything
/// else, non-ASCII text included, is unchanged; text without such a character is returned
/// as it is.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Whether `c` must not reach a terminal or a log as it is.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// At most `max_bytes` of `text`: cut at a character boundary, ending with a marker that says
/// it was cut and how long the whole was. The marker counts toward `max_bytes` (when even
/// the marker does not fit, the text is cut without one).
pub fn bounded(text: &str, max_bytes: usize) -> Cow<'_, str> {
    if text.len() <= max_bytes {
        return Cow::Borrowed(text);
    }
    Cow::Owned(cut(text, max_bytes, text.len()))
}

/// [`escape`], then [`bounded`], without escaping more of a huge text than can be kept: the
/// form in which outside text enters an `Outcome`, a log line or the database.
pub fn clean(text: &str, max_bytes: usize) -> Cow<'_, str> {
    // Escaping only makes text longer, so nothing past the first `max_bytes` bytes can survive
    // the cut: escape only those.
    let head = &text[..floor_char_boundary(text, max_bytes)];
    let escaped = escape(head);
    if head.len() == text.len() && escaped.len() <= max_bytes {
        return match escaped {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            Cow::Owned(s) => Cow::Owned(s),
        };
    }
    Cow::Owned(cut(&escaped, max_bytes, text.len()))
}

/// `text` cut to fit `max_bytes` together with a marker naming `whole`, the original length.
fn cut(text: &str, max_bytes: usize, whole: usize) -> String {
    let marker = format!("… [cut: {whole} bytes in all]");
    if marker.len() > max_bytes {
        return text[..floor_char_boundary(text, max_bytes)].to_string();
    }
    let keep = floor_char_boundary(text, max_bytes - marker.len());
    let mut out = String::with_capacity(keep + marker.len());
    out.push_str(&text[..keep]);
    out.push_str(&marker);
    out
}

/// The largest character boundary of `text` at or below `at` (std's is not stable yet).
fn floor_char_boundary(text: &str, at: usize) -> usize {
    if at >= text.len() {
        return text.len();
    }
    (0..=at)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_table() {
        let cases = [
            ("invalid_auth", "invalid_auth"),
            ("evil\u{202e}txt.exe", "evil\\u{202e}txt.exe"),
            ("a\u{2028}b\u{2029}c", "a\\u{2028}b\\u{2029}c"),
            ("\u{2066}x\u{2069}", "\\u{2066}x\\u{2069}"),
            ("", ""),
            ("a\nb", "a\\nb"),
            ("a\r\nb\t", "a\\r\\nb\\t"),
            ("\u{1b}[31mred", "\\u{1b}[31mred"),
            ("nul\0", "nul\\u{0}"),
            ("del\u{7f}", "del\\u{7f}"),
            ("c1\u{9b}2J", "c1\\u{9b}2J"),
            ("Grüße, 東京 ☕", "Grüße, 東京 ☕"),
            ("back\\slash", "back\\slash"),
        ];
        for (input, want) in cases {
            assert_eq!(escape(input), want, "{input:?}");
        }
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn bounded_table() {
        let long = "x".repeat(100);
        let cases: [(&str, usize, &str); 5] = [
            ("short", 10, "short"),
            ("exactly10!", 10, "exactly10!"),
            (&long, 40, "xxxxxxxxxxxxx… [cut: 100 bytes in all]"),
            // "é" is two bytes: the cut never splits it (13 bytes free: six, not 6.5).
            (
                "ééééééééééééééééééééé",
                39,
                "éééééé… [cut: 42 bytes in all]",
            ),
            // No room for the marker: cut bare.
            (&long, 5, "xxxxx"),
        ];
        for (input, max, want) in cases {
            let got = bounded(input, max);
            assert_eq!(got, want, "{input:?} at {max}");
            assert!(got.len() <= max, "{got:?} is over {max} bytes");
        }
    }

    #[test]
    fn clean_escapes_and_bounds_in_one_pass() {
        assert_eq!(clean("ok", 100), "ok");
        assert_eq!(clean("a\nb", 100), "a\\nb");
        // Escaping pushes a short text over the bound: it is cut, naming the original length.
        let ctl = "\u{1b}".repeat(10);
        let got = clean(&ctl, 40);
        assert!(
            got.len() <= 40 && got.ends_with("[cut: 10 bytes in all]"),
            "{got}"
        );
        // A huge text: only its head is escaped, and the result is bounded.
        let huge = "\n".repeat(10 << 20);
        let got = clean(&huge, 2048);
        assert!(got.len() <= 2048, "{}", got.len());
        assert!(!got.chars().any(char::is_control));
        assert!(got.ends_with(&format!("[cut: {} bytes in all]", 10 << 20)));
    }

    #[test]
    fn any_text_comes_out_bounded_and_without_control_characters() {
        // Every code point class at every offset around the bound.
        let pieces = ["a", "é", "東", "☕", "\n", "\u{1b}", "\u{9f}", "\u{10ffff}"];
        for max in 0..48 {
            for (i, p) in pieces.iter().enumerate() {
                let text = format!("{}{}", pieces[(i + 1) % pieces.len()], p.repeat(max));
                let got = clean(&text, max);
                assert!(got.len() <= max, "{text:?} at {max}: {got:?}");
                assert!(!got.chars().any(char::is_control), "{got:?}");
            }
        }
    }
}
