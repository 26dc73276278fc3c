//! The buffer mirror: a rope holding a Neovim buffer's lines, updated from `nvim_buf_lines_event`
//! line replacements, and position conversions.
//!
//! Positions are 0-based (row, byte col) as in `nvim_buf_set_extmark`. Invariant: the rope holds
//! each buffer line followed by `\n`, so a buffer of N lines has `len_lines() == N + 1` (the last rope
//! line is empty) and line replacement is a single char-range edit. Lines end at `\n` only, as in
//! Neovim: `ropey` is built without `unicode_lines` and `cr_lines`, so a form feed, vertical tab,
//! lone CR, NEL, U+2028 or U+2029 inside a line is text, not a break. Clones are O(1) snapshots.

use ropey::Rope;

/// Why a line event could not be applied; the caller resynchronises from the editor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextError {
    /// `first..last` is not a range of existing lines.
    OutOfRange {
        first: usize,
        last: usize,
        line_count: usize,
    },
    /// The event's `changedtick` is older than the mirror's, or skips one: an event was lost or
    /// reordered (Neovim advances `b:changedtick` by one per lines or changedtick event).
    TickOrder { had: i64, got: i64 },
}

impl std::fmt::Display for TextError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TextError::OutOfRange {
                first,
                last,
                line_count,
            } => {
                write!(
                    f,
                    "line range {first}..{last} outside a buffer of {line_count} lines"
                )
            }
            TextError::TickOrder { had, got } => {
                write!(
                    f,
                    "changedtick {got} after {had}: an event was lost or reordered"
                )
            }
        }
    }
}

/// A buffer's text as a rope of `\n`-terminated lines.
#[derive(Debug, Clone, Default)]
pub struct BufferText {
    rope: Rope,
}

impl BufferText {
    /// Builds the mirror from the buffer's lines (as `nvim_buf_get_lines` returns them).
    pub fn from_lines<S: AsRef<str>>(lines: &[S]) -> Self {
        let mut text = BufferText { rope: Rope::new() };
        text.rope.insert(0, &join_lines(lines));
        text
    }

    /// Number of buffer lines (an empty Neovim buffer has one empty line; a fresh mirror has 0).
    pub fn line_count(&self) -> usize {
        self.rope.len_lines() - 1
    }

    /// Replaces lines `first..last` (end exclusive; `None` = to the end) with `lines`, exactly as an
    /// `nvim_buf_lines_event(firstline, lastline, linedata)` describes (`lastline == -1` → `None`).
    pub fn replace_lines<S: AsRef<str>>(
        &mut self,
        first: usize,
        last: Option<usize>,
        lines: &[S],
    ) -> Result<(), TextError> {
        let count = self.line_count();
        let last = last.unwrap_or(count);
        if first > last || last > count {
            return Err(TextError::OutOfRange {
                first,
                last,
                line_count: count,
            });
        }
        let start = self.rope.line_to_char(first);
        let end = self.rope.line_to_char(last);
        self.rope.remove(start..end);
        self.rope.insert(start, &join_lines(lines));
        Ok(())
    }

    /// Line `row` without its newline, or `None` past the end.
    pub fn line(&self, row: usize) -> Option<String> {
        if row >= self.line_count() {
            return None;
        }
        let mut s = self.rope.line(row).to_string();
        s.pop();
        Some(s)
    }

    /// Lines `start..=end` (clamped to the buffer), joined with `\n`.
    pub fn lines_text(&self, start: usize, end: usize) -> String {
        let count = self.line_count();
        if count == 0 || start >= count {
            return String::new();
        }
        let end = end.min(count - 1);
        let mut s = self
            .rope
            .slice(self.rope.line_to_char(start)..self.rope.line_to_char(end + 1))
            .to_string();
        s.pop();
        s
    }

    /// Every line, without newlines (what `nvim_buf_get_lines(buf, 0, -1, false)` returns).
    pub fn lines(&self) -> Vec<String> {
        self.rope
            .lines()
            .take(self.line_count())
            .map(|l| {
                let mut s = l.to_string();
                s.pop();
                s
            })
            .collect()
    }

    /// The whole text, lines joined by `\n` with a final `\n`.
    pub fn text(&self) -> String {
        self.rope.to_string()
    }

    /// An O(1) snapshot of the underlying rope.
    pub fn rope(&self) -> &Rope {
        &self.rope
    }

    /// Bytes held (the rope's UTF-8 length).
    pub fn len_bytes(&self) -> usize {
        self.rope.len_bytes()
    }
}

fn join_lines<S: AsRef<str>>(lines: &[S]) -> String {
    let mut out = String::with_capacity(lines.iter().map(|l| l.as_ref().len() + 1).sum());
    for l in lines {
        out.push_str(l.as_ref());
        out.push('\n');
    }
    out
}

/// Clamps a byte column to a char boundary of `line` (at or before `col`).
pub fn floor_char_boundary(line: &str, col: usize) -> usize {
    let mut col = col.min(line.len());
    while !line.is_char_boundary(col) {
        col -= 1;
    }
    col
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn replace_like_nvim_events() {
        let mut t = BufferText::from_lines(&["a", "b", "c"]);
        assert_eq!(t.line_count(), 3);
        // edit line 1
        t.replace_lines(1, Some(2), &["bb"]).unwrap();
        assert_eq!(t.text(), "a\nbb\nc\n");
        // insert two lines before line 0
        t.replace_lines(0, Some(0), &["x", "y"]).unwrap();
        assert_eq!(t.text(), "x\ny\na\nbb\nc\n");
        // delete the last two lines
        t.replace_lines(3, Some(5), &[] as &[&str]).unwrap();
        assert_eq!(t.text(), "x\ny\na\n");
        // whole-buffer replacement (lastline = -1)
        t.replace_lines(0, None, &["only"]).unwrap();
        assert_eq!(t.line(0).as_deref(), Some("only"));
        assert_eq!(t.line(1), None);
        assert_eq!(
            t.replace_lines(3, Some(4), &["z"]),
            Err(TextError::OutOfRange {
                first: 3,
                last: 4,
                line_count: 1
            })
        );
    }

    #[test]
    fn only_newline_ends_a_line() {
        let lines = ["a\x0cb", "c\rd\x0b", "\u{85}e\u{2028}f\u{2029}", "g"];
        let t = BufferText::from_lines(&lines);
        assert_eq!(t.line_count(), 4);
        assert_eq!(t.line(3).as_deref(), Some("g"));
        assert_eq!(t.lines(), lines);
    }

    #[test]
    fn lines_text_clamps() {
        let t = BufferText::from_lines(&["fn a() {", "  1", "}"]);
        assert_eq!(t.lines_text(1, 9), "  1\n}");
        assert_eq!(t.lines_text(5, 9), "");
    }

    #[test]
    fn char_boundary() {
        assert_eq!(floor_char_boundary("aé", 2), 1);
        assert_eq!(floor_char_boundary("aé", 3), 3);
        assert_eq!(floor_char_boundary("a", 10), 1);
    }

    proptest! {
        // Applying random line edits to the mirror gives the same lines as applying them to a Vec —
        // with the characters other editors take for line breaks (CR, VT, FF, NEL, U+2028,
        // U+2029) inside lines, where Neovim keeps them as text.
        #[test]
        fn mirror_matches_vec(ops in prop::collection::vec((0usize..6, 0usize..4, prop::collection::vec("[a-zé€😀 \r\x0b\x0c\u{85}\u{2028}\u{2029}]{0,5}", 0..3)), 0..30)) {
            let mut model: Vec<String> = vec!["".into()];
            let mut t = BufferText::from_lines(&model);
            for (first, len, lines) in ops {
                let first = first.min(model.len());
                let last = (first + len).min(model.len());
                model.splice(first..last, lines.iter().cloned());
                t.replace_lines(first, Some(last), &lines).unwrap();
                prop_assert_eq!(t.line_count(), model.len());
                prop_assert_eq!(t.text(), model.iter().map(|l| format!("{l}\n")).collect::<String>());
                prop_assert_eq!(&t.lines(), &model);
                for (row, want) in model.iter().enumerate() {
                    let got = t.line(row);
                    prop_assert_eq!(got.as_deref(), Some(want.as_str()));
                }
            }
        }
    }
}
