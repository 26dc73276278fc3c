//! Turns a model's raw (possibly partial, streamed) FIM output into the ghost text to show.
//!
//! Pure and idempotent: called on the accumulated text after every streamed delta. Chat models used
//! for FIM wrap code in fences, echo the line before the cursor, or run on past the suffix; this
//! removes what would be wrong to insert.

/// Limits for shaping a suggestion.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Most lines to show.
    pub max_lines: usize,
    /// When true (the cursor is mid-line: non-blank text after it), keep only the first line.
    pub single_line: bool,
}

/// Shapes `raw` (the model output so far) for insertion at a cursor whose line reads
/// `line_before` + cursor + `line_after`; `next_line` is the first non-blank buffer line below the
/// cursor. A multi-line suggestion ends at its first blank line (one block at a time) and before a
/// line that repeats `next_line` (models often re-emit the closing brace that already follows).
/// Returns the empty string when nothing is worth showing yet.
pub fn shape(
    raw: &str,
    line_before: &str,
    line_after: &str,
    next_line: &str,
    shape: Shape,
) -> String {
    let mut text = strip_fences(raw);
    // A chat model often repeats the current line before continuing it.
    let echo = line_before.trim_start();
    if !echo.is_empty() {
        let t = text.trim_start();
        if let Some(rest) = t.strip_prefix(echo) {
            text = rest.to_string();
        }
    }
    // At the start of a blank line, leading newlines are noise.
    if line_before.trim().is_empty() {
        text = text.trim_start_matches('\n').to_string();
        // After indentation only, a model that restates the indentation would double it.
        let ws = text.len() - text.trim_start_matches([' ', '\t']).len();
        text.drain(..ws.min(line_before.len()));
    }
    let single = shape.single_line || !line_after.trim().is_empty();
    let mut lines: Vec<&str> = text.split('\n').collect();
    let limit = if single { 1 } else { shape.max_lines.max(1) };
    lines.truncate(limit);
    let next = next_line.trim_end();
    if let Some(i) = lines
        .iter()
        .enumerate()
        .skip(1)
        .position(|(_, l)| l.trim().is_empty() || (!next.is_empty() && l.trim_end() == next))
    {
        lines.truncate(i + 1);
    }
    let mut out = lines.join("\n");
    // Don't insert what already follows the cursor on this line.
    let after = line_after.trim_end();
    if !after.is_empty() {
        if let Some(stripped) = out.strip_suffix(after) {
            out = stripped.to_string();
        } else if let Some(i) = out.find(after) {
            out.truncate(i);
        }
    }
    let trimmed = out.trim_end();
    if trimmed.trim().is_empty() {
        return String::new();
    }
    trimmed.to_string()
}

/// Removes a surrounding Markdown code fence, tolerating a stream that stopped mid-fence: an opening
/// ```lang line is dropped (nothing is returned until it is complete) and everything from a closing
/// fence on is cut.
fn strip_fences(raw: &str) -> String {
    let t = raw.trim_start_matches([' ', '\n', '\r']);
    let body = if let Some(rest) = t.strip_prefix("```") {
        match rest.find('\n') {
            Some(i) => &rest[i + 1..],
            None => return String::new(),
        }
    } else {
        raw
    };
    let body = match body.find("```") {
        Some(i) => &body[..i],
        None => body,
    };
    body.replace("\r\n", "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MULTI: Shape = Shape {
        max_lines: 8,
        single_line: false,
    };

    #[test]
    fn plain_continuation() {
        assert_eq!(
            shape("in() {\n    1\n}", "fn ma", "", "", MULTI),
            "in() {\n    1\n}"
        );
    }

    #[test]
    fn fences_and_echo() {
        assert_eq!(
            shape(
                "```rust\nfn main() {}\n```\nExplanation",
                "fn ma",
                "",
                "",
                MULTI
            ),
            "in() {}"
        );
        assert_eq!(shape("```rus", "x", "", "", MULTI), "");
        assert_eq!(
            shape("```rust\n    let y = 2;", "    let", "", "", MULTI),
            " y = 2;"
        );
    }

    #[test]
    fn mid_line_is_single_line_and_drops_overlap() {
        assert_eq!(shape("a, b)\n{", "foo(", ")", "", MULTI), "a, b");
        assert_eq!(shape("x + 1); more", "f(", ");", "", MULTI), "x + 1");
    }

    #[test]
    fn one_block_and_no_repeat_of_the_next_line() {
        assert_eq!(
            shape(" return a + b;\n}\n\nconst x = 1;", "    ", "", "}", MULTI),
            "return a + b;"
        );
        assert_eq!(
            shape(
                "if x {\n        y\n    }\n\nfn z() {}",
                "    ",
                "",
                "}",
                MULTI
            ),
            "if x {\n        y\n    }"
        );
        assert_eq!(shape("a\n\nb", "", "", "", MULTI), "a");
    }

    #[test]
    fn indentation_is_not_doubled_after_indentation_only() {
        assert_eq!(
            shape("    let y = 2;\n    z", "    ", "", "", MULTI),
            "let y = 2;\n    z"
        );
        assert_eq!(
            shape("\n\t\tx", "\t", "", "", MULTI),
            "\tx",
            "only as much as the cursor's indentation"
        );
        assert_eq!(
            shape("  x", "", "", "", MULTI),
            "  x",
            "at column 0 the model's indentation stands"
        );
    }

    #[test]
    fn limits_lines_and_whitespace() {
        assert_eq!(
            shape(
                "a\nb\nc",
                "",
                "",
                "",
                Shape {
                    max_lines: 2,
                    single_line: false
                }
            ),
            "a\nb"
        );
        assert_eq!(shape("\n\n  x  \n", "", "", "", MULTI), "  x");
        assert_eq!(shape("   \n ", "y", "", "", MULTI), "");
    }
}
