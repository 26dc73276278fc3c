//! The completion context: the text before and after the cursor, cut at line boundaries to fit a
//! token budget.
//!
//! Token counts are estimated as 1 token ≈ 4 bytes of UTF-8 (close for code in common BPE
//! vocabularies; a budget, not an exact count). Three quarters of the budget go to the prefix, the
//! rest (plus whatever the prefix leaves unused) to the suffix. Only the lines needed are read, so
//! the cost does not grow with the file.

use crate::core::text::{BufferText, floor_char_boundary};

/// Estimated bytes per token.
pub const BYTES_PER_TOKEN: usize = 4;

/// Text around the cursor for a FIM request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FimContext {
    /// Text before the cursor: whole lines, then the cursor line up to the cursor.
    pub prefix: String,
    /// Text after the cursor: the rest of the cursor line, then whole lines.
    pub suffix: String,
    /// The cursor line's text before the cursor.
    pub line_before: String,
    /// The cursor line's text after the cursor.
    pub line_after: String,
    /// First row included in `prefix` and last row included in `suffix` (0-based).
    pub first_row: usize,
    pub last_row: usize,
}

/// Builds the context at (row, byte col), 0-based as Neovim reports the cursor (`col` clamped to the
/// line and to a char boundary). Returns `None` when `row` is past the end of the buffer.
pub fn fim_context(
    text: &BufferText,
    row: usize,
    col: usize,
    budget_tokens: usize,
) -> Option<FimContext> {
    let line = text.line(row)?;
    let col = floor_char_boundary(&line, col);
    let (before, after) = line.split_at(col);
    let budget = budget_tokens.max(16) * BYTES_PER_TOKEN;
    let prefix_budget = budget * 3 / 4;

    let mut prefix_lines: Vec<String> = Vec::new();
    let mut used = before.len();
    let mut first_row = row;
    while first_row > 0 {
        let l = text.line(first_row - 1).unwrap_or_default();
        if used + l.len() + 1 > prefix_budget {
            break;
        }
        used += l.len() + 1;
        prefix_lines.push(l);
        first_row -= 1;
    }
    prefix_lines.reverse();
    let mut prefix = String::with_capacity(used);
    for l in &prefix_lines {
        prefix.push_str(l);
        prefix.push('\n');
    }
    prefix.push_str(before);

    let suffix_budget = budget.saturating_sub(used);
    let mut suffix = after.to_string();
    let mut last_row = row;
    let count = text.line_count();
    while last_row + 1 < count {
        let l = text.line(last_row + 1).unwrap_or_default();
        if suffix.len() + l.len() + 1 > suffix_budget {
            break;
        }
        suffix.push('\n');
        suffix.push_str(&l);
        last_row += 1;
    }
    Some(FimContext {
        prefix,
        suffix,
        line_before: before.to_string(),
        line_after: after.to_string(),
        first_row,
        last_row,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    fn buf(n: usize) -> BufferText {
        let lines: Vec<String> = (0..n).map(|i| format!("line {i:02}")).collect();
        BufferText::from_lines(&lines)
    }

    #[test]
    fn splits_at_cursor() {
        let t = BufferText::from_lines(&["fn main() {", "    let x = 1;", "}"]);
        let c = fim_context(&t, 1, 8, 1024).unwrap();
        expect![[r#"
            FimContext {
                prefix: "fn main() {\n    let ",
                suffix: "x = 1;\n}",
                line_before: "    let ",
                line_after: "x = 1;",
                first_row: 0,
                last_row: 2,
            }
        "#]]
        .assert_debug_eq(&c);
    }

    #[test]
    fn budget_cuts_whole_lines_both_sides() {
        // 16 tokens * 4 = 64 bytes: 48 for the prefix, the rest for the suffix. Each line is 8 bytes + \n.
        let t = buf(100);
        let c = fim_context(&t, 50, 4, 16).unwrap();
        assert!(c.prefix.len() <= 48, "{}", c.prefix.len());
        assert!(c.prefix.len() + c.suffix.len() <= 64);
        assert!(
            c.prefix.starts_with("line "),
            "prefix starts at a line boundary: {:?}",
            c.prefix
        );
        assert!(c.prefix.ends_with("\nline"));
        assert_eq!(c.first_row, 45);
        assert!(c.suffix.starts_with(" 50\nline 51"));
        assert!(c.last_row > 50 && c.last_row < 53);
    }

    #[test]
    fn clamps_column_and_rejects_missing_row() {
        let t = BufferText::from_lines(&["héllo"]);
        let c = fim_context(&t, 0, 2, 64).unwrap();
        assert_eq!(c.line_before, "h");
        assert_eq!(fim_context(&t, 0, 99, 64).unwrap().line_after, "");
        assert!(fim_context(&t, 1, 0, 64).is_none());
    }
}
