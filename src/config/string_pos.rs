//! Where a place inside a string's value is in the file: the TOML parser hands out the
//! decoded text (escapes resolved) with the span of the whole string as written, while a
//! problem inside a regex or a template should point at its own column.

/// The byte offset in `raw`, a TOML string as written (delimiters, escapes and all), of the
/// byte `decoded` of its value. `None` when `raw` is not a string or `decoded` lies beyond
/// its value; callers then point at the string's start.
///
/// Literal strings (`'…'`, `'''…'''`) are their value; in basic strings (`"…"`, `"""…"""`)
/// each escape is one character of the value, and a line-ending backslash none. A newline
/// right after an opening `"""` or `'''` is not part of the value.
pub(crate) fn raw_offset(raw: &str, decoded: usize) -> Option<usize> {
    let (open, basic) = if raw.starts_with("\"\"\"") {
        (3, true)
    } else if raw.starts_with("'''") {
        (3, false)
    } else if raw.starts_with('"') {
        (1, true)
    } else if raw.starts_with('\'') {
        (1, false)
    } else {
        return None;
    };
    let mut pos = open;
    if open == 3 {
        pos += leading_newline(&raw[pos..]);
    }
    let mut value = 0;
    let bytes = raw.as_bytes();
    while pos < raw.len() {
        let c = raw[pos..].chars().next()?;
        if !basic || c != '\\' {
            if value >= decoded {
                return (value == decoded).then_some(pos);
            }
            pos += c.len_utf8();
            value += c.len_utf8();
            continue;
        }
        let (raw_len, value_len) = match bytes.get(pos + 1) {
            Some(b'x') => (4, hex_char(raw.get(pos + 2..pos + 4)?)?),
            Some(b'u') => (6, hex_char(raw.get(pos + 2..pos + 6)?)?),
            Some(b'U') => (10, hex_char(raw.get(pos + 2..pos + 10)?)?),
            // A line-ending backslash: it and the blanks and line breaks after it vanish.
            Some(b' ' | b'\t' | b'\r' | b'\n') => {
                let rest = &raw[pos + 1..];
                let blank = rest
                    .find(|c: char| !matches!(c, ' ' | '\t' | '\r' | '\n'))
                    .unwrap_or(rest.len());
                (1 + blank, 0)
            }
            // Any other escape is one character (`\n`, `\"`, …); measured, not assumed to be
            // one byte, so that a malformed one cannot cut a character in two.
            Some(_) => (1 + raw[pos + 1..].chars().next()?.len_utf8(), 1),
            None => return None,
        };
        if value_len > 0 && value >= decoded {
            return (value == decoded).then_some(pos);
        }
        pos += raw_len;
        value += value_len;
    }
    None
}

/// The length of a line break at the start of `s`, if any.
fn leading_newline(s: &str) -> usize {
    if s.starts_with("\r\n") {
        2
    } else if s.starts_with('\n') {
        1
    } else {
        0
    }
}

/// The UTF-8 length of the character with the hex code `hex`.
fn hex_char(hex: &str) -> Option<usize> {
    let code = u32::from_str_radix(hex, 16).ok()?;
    char::from_u32(code).map(char::len_utf8)
}

#[cfg(test)]
mod tests {
    use super::raw_offset;

    #[test]
    fn offsets_in_the_value_map_to_the_text_as_written() {
        // (as written, the value's byte, where it is written)
        let cases: &[(&str, usize, Option<usize>)] = &[
            ("\"abc\"", 0, Some(1)),
            ("\"abc\"", 2, Some(3)),
            ("'a\\bc'", 2, Some(3)),
            // `\\b` is one character of the value: `(?i)\b(x` in a basic string.
            ("\"(?i)\\\\b(x\"", 6, Some(8)),
            ("\"\\u00e9x\"", 2, Some(7)),
            ("\"\\U0001F600x\"", 4, Some(11)),
            ("\"\\x41x\"", 1, Some(5)),
            ("\"\"\"\nab\"\"\"", 1, Some(5)),
            ("'''\r\nab'''", 0, Some(5)),
            ("\"\"\"a\\\n   b\"\"\"", 1, Some(9)),
            ("\"é{\"", 2, Some(3)),
            ("\"ab\"", 9, None),
            ("42", 0, None),
        ];
        for (raw, decoded, want) in cases {
            assert_eq!(raw_offset(raw, *decoded), *want, "{raw} @ {decoded}");
        }
    }

    proptest::proptest! {
        /// Whatever the text, the answer is a place in it (never a panic, never past it).
        #[test]
        fn any_text_gives_a_place_inside_it_or_none(raw in "[\"'\\\\ \nxuU0-9a-fé{}]{0,24}", at in 0usize..30) {
            if let Some(pos) = raw_offset(&raw, at) {
                proptest::prop_assert!(raw.is_char_boundary(pos) && pos <= raw.len());
            }
        }
    }
}
