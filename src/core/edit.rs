//! Exact-match text edits (the `edit_file` tool) and unified diffs of their result.
//!
//! Invariants: an edit applies only when its old text occurs exactly once in the text as it is
//! after the previous edits (never "the first of several"); a file's line-ending style survives
//! (edits written with `\n` apply to a `\r\n` file and produce `\r\n`); an edit that fails leaves
//! nothing half-applied, because the caller writes only a complete [`Edited`].

use similar::TextDiff;

/// One replacement: `old` must occur exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub old: String,
    pub new: String,
}

/// The line-ending style of a text: the more frequent of `\r\n` and lone `\n` (`Lf` on a tie).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEnding {
    Lf,
    CrLf,
}

impl LineEnding {
    pub fn of(text: &str) -> LineEnding {
        let crlf = text.matches("\r\n").count();
        let lf = text.matches('\n').count() - crlf;
        if crlf > lf {
            LineEnding::CrLf
        } else {
            LineEnding::Lf
        }
    }

    /// `text` with every line break written in this style.
    pub fn apply(self, text: &str) -> String {
        let lf = text.replace("\r\n", "\n");
        match self {
            LineEnding::Lf => lf,
            LineEnding::CrLf => lf.replace('\n', "\r\n"),
        }
    }
}

/// The text after all edits, and a unified diff (LF line breaks, `a`/`b` both named `path`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edited {
    pub text: String,
    pub diff: String,
}

/// Why an edit was refused; `index` is 0-based, messages say "edit 1" for the first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("edit {}: oldText is empty; give the exact text to replace", .index + 1)]
    Empty { index: usize },
    /// The message does not repeat `oldText`: the caller sent it, and the message goes to the
    /// audit log, which holds no file text.
    #[error("edit {}: oldText ({} line(s), {} bytes) was not found in the file (it must match exactly, including whitespace)", .index + 1, .lines, .bytes)]
    NotFound {
        index: usize,
        lines: usize,
        bytes: usize,
    },
    #[error("edit {}: oldText matches {count} times (at lines {}); add surrounding lines so it matches exactly once", .index + 1, lines.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(", "))]
    Ambiguous {
        index: usize,
        count: usize,
        lines: Vec<usize>,
    },
}

/// Applies `edits` in order to `original` (see the module invariants).
pub fn apply(original: &str, edits: &[Edit], path: &str) -> Result<Edited, EditError> {
    let ending = LineEnding::of(original);
    let mut text = original.to_string();
    for (index, e) in edits.iter().enumerate() {
        if e.old.is_empty() {
            return Err(EditError::Empty { index });
        }
        let old = ending.apply(&e.old);
        let new = ending.apply(&e.new);
        let starts: Vec<usize> = text.match_indices(old.as_str()).map(|(i, _)| i).collect();
        match starts.len() {
            0 => {
                return Err(EditError::NotFound {
                    index,
                    lines: e.old.lines().count().max(1),
                    bytes: e.old.len(),
                });
            }
            1 => text.replace_range(starts[0]..starts[0] + old.len(), &new),
            count => {
                let lines = starts
                    .iter()
                    .map(|&i| text[..i].matches('\n').count() + 1)
                    .collect();
                return Err(EditError::Ambiguous {
                    index,
                    count,
                    lines,
                });
            }
        }
    }
    let diff = unified_diff(original, &text, path);
    Ok(Edited { text, diff })
}

/// A unified diff of `old` → `new` with 3 lines of context, line breaks shown as `\n`.
pub fn unified_diff(old: &str, new: &str, path: &str) -> String {
    let (old, new) = (LineEnding::Lf.apply(old), LineEnding::Lf.apply(new));
    let diff = TextDiff::from_lines(&old, &new);
    diff.unified_diff()
        .context_radius(3)
        .header(path, path)
        .to_string()
}

/// `diff` in a Markdown fence long enough not to clash with backticks inside it.
pub fn fenced(diff: &str) -> String {
    let mut n = 3;
    while diff.contains(&"`".repeat(n)) {
        n += 1;
    }
    let fence = "`".repeat(n);
    format!("{fence}diff\n{diff}{fence}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(old: &str, new: &str) -> Edit {
        Edit {
            old: old.into(),
            new: new.into(),
        }
    }

    #[test]
    fn single_match_applies_and_diffs() {
        let r = apply("a\nb\nc\n", &[e("b\n", "B\nB2\n")], "f.txt").unwrap();
        assert_eq!(r.text, "a\nB\nB2\nc\n");
        assert_eq!(
            r.diff,
            "--- f.txt\n+++ f.txt\n@@ -1,3 +1,4 @@\n a\n-b\n+B\n+B2\n c\n"
        );
    }

    #[test]
    fn crlf_is_preserved_when_edits_use_lf() {
        let r = apply("one\r\ntwo\r\nthree\r\n", &[e("two\nthree", "2\n3")], "f").unwrap();
        assert_eq!(r.text, "one\r\n2\r\n3\r\n");
        assert!(!r.diff.contains('\r'));
        let lf = apply("one\ntwo\n", &[e("two\r\n", "2\r\n")], "f").unwrap();
        assert_eq!(lf.text, "one\n2\n");
    }

    #[test]
    fn refuses_ambiguous_and_missing_and_says_which() {
        let err = apply(
            "x = 1\ny = 2\nx = 1\n",
            &[e("y", "z"), e("x = 1", "x = 3")],
            "f",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "edit 2: oldText matches 2 times (at lines 1, 3); add surrounding lines so it matches exactly once"
        );
        let err = apply("abc", &[e("abd", "")], "f").unwrap_err();
        assert_eq!(
            err.to_string(),
            "edit 1: oldText (1 line(s), 3 bytes) was not found in the file (it must match exactly, including whitespace)"
        );
        assert_eq!(
            apply("abc", &[e("", "x")], "f").unwrap_err(),
            EditError::Empty { index: 0 }
        );
    }

    #[test]
    fn later_edits_see_earlier_ones() {
        let r = apply(
            "fn a() {}\n",
            &[e("a()", "b()"), e("b() {}", "b() { 1 }")],
            "f",
        )
        .unwrap();
        assert_eq!(r.text, "fn b() { 1 }\n");
    }

    #[test]
    fn line_ending_detection() {
        assert_eq!(LineEnding::of("a\r\nb\r\nc\n"), LineEnding::CrLf);
        assert_eq!(LineEnding::of("a\nb\r\n"), LineEnding::Lf);
        assert_eq!(LineEnding::of("no breaks"), LineEnding::Lf);
    }

    #[test]
    fn fence_outgrows_backticks() {
        assert_eq!(fenced("+```\n"), "````diff\n+```\n````\n");
    }
}
