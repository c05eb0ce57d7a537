//! Byte offsets (what the TOML parser gives) to the 1-based line and column people see.

/// The start of every line of one text, for turning byte offsets into line and column.
///
/// Columns count characters (Unicode scalar values), not bytes, so that a column points at
/// the same place an editor's cursor does even after an `ü` or an emoji earlier on the line.
pub(crate) struct LineIndex<'t> {
    /// The text the offsets point into.
    text: &'t str,
    /// Byte offset of the first character of each line; the first entry is 0.
    starts: Vec<usize>,
}

impl<'t> LineIndex<'t> {
    /// Index the lines of `text`.
    pub(crate) fn new(text: &'t str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { text, starts }
    }

    /// The text the offsets point into.
    pub(crate) fn text(&self) -> &'t str {
        self.text
    }

    /// The 1-based line and column of the byte `offset`. An offset past the end (the parser
    /// reports "unexpected end of input" there) or inside a multibyte character is clamped
    /// to the nearest valid position before it rather than panicking.
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        // `starts[0]` is 0, so the partition point is at least 1.
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        let col = self.text[start..offset].chars().count() + 1;
        (line, col)
    }
}

#[cfg(test)]
mod tests {
    use super::LineIndex;

    #[test]
    fn columns_count_characters_not_bytes() {
        // "ü" is 2 bytes and "☕" 3, so byte offsets and columns diverge after them.
        let text = "a = 1\nname = \"ü☕\" x\n\nlast";
        let idx = LineIndex::new(text);
        assert_eq!(idx.position(0), (1, 1));
        assert_eq!(idx.position(4), (1, 5));
        // The newline itself still belongs to line 1.
        assert_eq!(idx.position(5), (1, 6));
        assert_eq!(idx.position(6), (2, 1));
        let x = text.find('x').unwrap();
        // `name = "ü☕" x`: x is the 13th character of the line (its byte offset is 15).
        assert_eq!(x - 6, 15);
        assert_eq!(idx.position(x), (2, 13));
        let last = text.find("last").unwrap();
        assert_eq!(idx.position(last), (4, 1));
    }

    #[test]
    fn offsets_past_the_end_or_inside_a_character_do_not_panic() {
        let text = "é\n☕";
        let idx = LineIndex::new(text);
        assert_eq!(idx.position(1), (1, 1)); // inside "é": clamped to its start
        assert_eq!(idx.position(4), (2, 1)); // inside "☕"
        assert_eq!(idx.position(999), (2, 2));
        assert_eq!(LineIndex::new("").position(3), (1, 1));
    }
}
