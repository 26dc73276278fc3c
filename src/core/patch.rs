//! Patches: the changes a model proposes, as plain data with pure operations — line diffs split
//! into hunks (the `similar` crate, Patience algorithm), applying any subset of them, rebasing them
//! onto a buffer that changed since, parsing the unified diffs models write, and pulling code out
//! of a chat answer.
//!
//! Rows are 0-based buffer lines (as in `nvim_buf_set_lines`); a hunk replaces the rows
//! `start..start + old.len()` with `new`. Invariants (property-tested): applying every hunk of
//! `diff(a, b)` to `a` gives `b`, applying none gives `a`, and any subset applies cleanly.

use similar::{Algorithm, DiffTag, capture_diff_slices};

/// Lines of unchanged text kept on each side of a hunk, to find it again after edits.
pub const CONTEXT: usize = 3;

/// One reviewable change: rows `start..start + old.len()` of the old text become `new`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    /// First old row (0-based). For a pure insertion, the row the new lines go before.
    pub start: usize,
    /// The old rows it replaces (empty for an insertion).
    pub old: Vec<String>,
    /// The rows it puts there (empty for a deletion).
    pub new: Vec<String>,
    /// Up to [`CONTEXT`] unchanged rows just above `start`.
    pub before: Vec<String>,
    /// Up to [`CONTEXT`] unchanged rows just below the old rows.
    pub after: Vec<String>,
}

impl Hunk {
    /// One past the last old row.
    pub fn end(&self) -> usize {
        self.start + self.old.len()
    }
}

/// A line replacement for the editor: rows `start..end` (0-based, end exclusive) become `lines`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub start: usize,
    pub end: usize,
    pub lines: Vec<String>,
}

/// Why a patch cannot be made or applied. Messages are for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error("the answer has no code block or diff to apply")]
    NoCode,
    #[error("the proposed code is the same as the buffer: nothing to change")]
    NoChange,
    #[error(
        "hunk {hunk} (line {line}) no longer matches the buffer: that text was edited after the proposal"
    )]
    Stale { hunk: usize, line: usize },
    #[error("the model's diff does not match the code: hunk {hunk} expects {expected:?}")]
    DiffMismatch { hunk: usize, expected: String },
    #[error("the model's diff has no hunks (`@@` lines with `-`/`+` changes)")]
    EmptyDiff,
}

/// Splits `text` into lines the way a buffer holds them (no trailing empty line for a final
/// newline; `\r\n` counts as one break).
pub fn lines(text: &str) -> Vec<String> {
    let t = text.strip_suffix('\n').unwrap_or(text);
    if t.is_empty() && text.is_empty() {
        return Vec::new();
    }
    t.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
        .collect()
}

/// The hunks that turn `old` into `new`: one per run of changed rows.
pub fn diff(old: &[String], new: &[String]) -> Vec<Hunk> {
    capture_diff_slices(Algorithm::Patience, old, new)
        .iter()
        .filter_map(|op| {
            let (tag, o, n) = op.as_tag_tuple();
            (tag != DiffTag::Equal).then(|| Hunk {
                start: o.start,
                old: old[o.clone()].to_vec(),
                new: new[n].to_vec(),
                before: old[o.start.saturating_sub(CONTEXT)..o.start].to_vec(),
                after: old[o.end..(o.end + CONTEXT).min(old.len())].to_vec(),
            })
        })
        .collect()
}

/// The editor edits for the hunks marked in `accepted` (missing marks count as not accepted),
/// ordered bottom-up so each applies at the rows it names.
pub fn edits(hunks: &[Hunk], accepted: &[bool]) -> Vec<Edit> {
    let mut out: Vec<Edit> = hunks
        .iter()
        .enumerate()
        .filter(|(i, _)| accepted.get(*i).copied().unwrap_or(false))
        .map(|(_, h)| Edit {
            start: h.start,
            end: h.end(),
            lines: h.new.clone(),
        })
        .collect();
    out.sort_by(|a, b| b.start.cmp(&a.start).then(b.end.cmp(&a.end)));
    out
}

/// Applies the accepted hunks to `old`. Every accepted hunk's old rows must be where it says;
/// otherwise `Err(PatchError::Stale)` and nothing is applied.
pub fn apply(old: &[String], hunks: &[Hunk], accepted: &[bool]) -> Result<Vec<String>, PatchError> {
    for (i, h) in hunks.iter().enumerate() {
        if accepted.get(i).copied().unwrap_or(false) && !matches_at(old, h.start, &h.old) {
            return Err(PatchError::Stale {
                hunk: i + 1,
                line: h.start + 1,
            });
        }
    }
    let mut text = old.to_vec();
    for e in edits(hunks, accepted) {
        text.splice(e.start..e.end, e.lines);
    }
    Ok(text)
}

fn matches_at(text: &[String], start: usize, want: &[String]) -> bool {
    text.get(start..start + want.len())
        .is_some_and(|s| s == want)
}

/// Moves hunks made against `base` (the buffer when the patch was proposed) onto `current` (the
/// buffer now). The edits between the two are diffed; a hunk whose rows and context lie in text
/// those edits did not touch moves by their offset, a hunk whose text or context was edited gives
/// `Err(PatchError::Stale)`. Exact: a hunk is never moved onto look-alike text elsewhere.
pub fn rebase(
    hunks: &[Hunk],
    base: &[String],
    current: &[String],
) -> Result<Vec<Hunk>, PatchError> {
    let unchanged: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)> =
        capture_diff_slices(Algorithm::Patience, base, current)
            .iter()
            .filter_map(|op| {
                let (tag, o, n) = op.as_tag_tuple();
                (tag == DiffTag::Equal).then_some((o, n))
            })
            .collect();
    hunks
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let (lo, hi) = (h.start - h.before.len(), h.end() + h.after.len());
            let inside = |o: &std::ops::Range<usize>| {
                o.start <= lo && hi <= o.end && (lo < hi || o.start < o.end)
            };
            match unchanged.iter().find(|(o, _)| inside(o)) {
                Some((o, n)) => Ok(Hunk {
                    start: h.start - o.start + n.start,
                    ..h.clone()
                }),
                // Insertion into an empty text with no context: fine if the text is still empty.
                None if lo == hi && base.is_empty() && current.is_empty() => Ok(h.clone()),
                None => Err(PatchError::Stale {
                    hunk: i + 1,
                    line: h.start + 1,
                }),
            }
        })
        .collect()
}

/// Where a model answer's code goes: a unified diff, or replacement code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The text of a unified diff (`@@` hunks).
    Diff(String),
    /// Code to put in place of the target, with the fence's language tag if any.
    Code { lang: Option<String>, text: String },
}

/// Pulls the code out of a chat answer: a ```diff block or bare `@@` hunks → [`Answer::Diff`];
/// else the longest fenced block → [`Answer::Code`]; an answer that is nothing but code (no fence,
/// no prose) is taken whole. `None` when there is no code.
pub fn extract(answer: &str) -> Option<Answer> {
    let blocks = fenced_blocks(answer);
    if let Some((_, text)) = blocks.iter().find(|(lang, text)| {
        lang.as_deref() == Some("diff") || lang.as_deref() == Some("patch") || looks_like_diff(text)
    }) {
        return Some(Answer::Diff(text.clone()));
    }
    if blocks.is_empty() && looks_like_diff(answer) {
        return Some(Answer::Diff(answer.to_string()));
    }
    if let Some((lang, text)) = blocks
        .into_iter()
        .filter(|(_, t)| !t.trim().is_empty())
        .max_by_key(|(_, t)| t.len())
    {
        return Some(Answer::Code { lang, text });
    }
    None
}

fn looks_like_diff(text: &str) -> bool {
    text.lines().any(|l| l.starts_with("@@"))
        && text
            .lines()
            .any(|l| l.starts_with('+') || l.starts_with('-'))
}

/// Fenced blocks (```lang … ```), tolerating an unclosed last fence (a capped answer).
fn fenced_blocks(text: &str) -> Vec<(Option<String>, String)> {
    let mut out = Vec::new();
    let mut open: Option<(Option<String>, Vec<&str>)> = None;
    for line in text.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("```") {
            match open.take() {
                None => {
                    let lang = rest.trim();
                    open = Some(((!lang.is_empty()).then(|| lang.to_lowercase()), Vec::new()));
                }
                Some((lang, body)) => out.push((lang, body.join("\n"))),
            }
        } else if let Some((_, body)) = open.as_mut() {
            body.push(line);
        }
    }
    if let Some((lang, body)) = open {
        out.push((lang, body.join("\n")));
    }
    out
}

/// One hunk of a unified diff as the model wrote it: its lines tagged ' ', '-' or '+', and the
/// old start row the `@@` header claims (a hint only: models miscount).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffHunk {
    pub hint: Option<usize>,
    pub lines: Vec<(char, String)>,
}

/// Parses unified-diff hunks leniently: `---`/`+++` headers and `\ No newline` markers are
/// skipped, `@@` line counts are ignored, a line with no prefix counts as context.
pub fn parse_unified(text: &str) -> Result<Vec<DiffHunk>, PatchError> {
    let mut hunks: Vec<DiffHunk> = Vec::new();
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(header) = line.strip_prefix("@@") {
            let hint = header
                .trim()
                .strip_prefix('-')
                .and_then(|s| s.split([',', ' ']).next())
                .and_then(|n| n.parse::<usize>().ok())
                .map(|n| n.saturating_sub(1));
            hunks.push(DiffHunk {
                hint,
                lines: Vec::new(),
            });
            continue;
        }
        let Some(h) = hunks.last_mut() else { continue };
        if line.starts_with("---") || line.starts_with("+++") || line.starts_with('\\') {
            continue;
        }
        let mut chars = line.chars();
        match chars.next() {
            Some(c @ ('-' | '+' | ' ')) => h.lines.push((c, chars.as_str().to_string())),
            _ => h.lines.push((' ', line.to_string())),
        }
    }
    hunks.retain(|h| h.lines.iter().any(|(c, _)| *c != ' '));
    if hunks.is_empty() {
        return Err(PatchError::EmptyDiff);
    }
    Ok(hunks)
}

/// Applies parsed diff hunks to `old` by content: each hunk's old side (context and `-` lines)
/// must appear in order after the previous hunk; the occurrence nearest its `@@` hint wins.
/// Trailing whitespace is ignored when matching (models drop it).
pub fn apply_unified(old: &[String], hunks: &[DiffHunk]) -> Result<Vec<String>, PatchError> {
    let mut out = Vec::new();
    let mut pos = 0;
    for (i, h) in hunks.iter().enumerate() {
        let want: Vec<&str> = h
            .lines
            .iter()
            .filter(|(c, _)| *c != '+')
            .map(|(_, l)| l.as_str())
            .collect();
        let same = |at: usize| {
            want.iter().enumerate().all(|(k, w)| {
                old.get(at + k)
                    .is_some_and(|o| o.trim_end() == w.trim_end())
            })
        };
        let hint = h
            .hint
            .filter(|&at| at >= pos && at < old.len())
            .unwrap_or(pos);
        let at = (pos..=old.len().saturating_sub(want.len()))
            .filter(|&at| same(at))
            .min_by_key(|&at| at.abs_diff(hint))
            .ok_or_else(|| PatchError::DiffMismatch {
                hunk: i + 1,
                expected: want
                    .iter()
                    .find(|w| !w.trim().is_empty())
                    .unwrap_or(&"")
                    .to_string(),
            })?;
        out.extend_from_slice(&old[pos..at]);
        let mut k = at;
        for (c, l) in &h.lines {
            match c {
                ' ' => {
                    out.push(old[k].clone());
                    k += 1;
                }
                '-' => k += 1,
                _ => out.push(l.clone()),
            }
        }
        pos = k;
    }
    out.extend_from_slice(&old[pos..]);
    Ok(out)
}

/// Fits replacement code for rows `start..end` of `buffer` to what the model meant: when the code
/// begins or ends with buffer lines outside the range (the model repeated surrounding code), the
/// range grows to cover them; when the code lost the range's indentation, it is re-indented.
/// Returns the (start, end) rows the code replaces and the code's lines.
pub fn fit_replacement(
    buffer: &[String],
    start: usize,
    end: usize,
    code: &str,
) -> (usize, usize, Vec<String>) {
    let mut new = lines(code);
    while new.first().is_some_and(|l| l.trim().is_empty()) {
        new.remove(0);
    }
    while new.last().is_some_and(|l| l.trim().is_empty()) {
        new.pop();
    }
    let distinctive = |l: &str| l.trim().len() > 3;
    let (mut start, mut end) = (
        start.min(buffer.len()),
        end.min(buffer.len()).max(start.min(buffer.len())),
    );
    let mut grew = false;
    if let Some(first) = new.first().filter(|l| distinctive(l)) {
        match (start..end).find(|&r| buffer[r].trim() == first.trim()) {
            // The code starts further down the range: the model left out the range's first lines
            // (a comment, an attribute) rather than deleting them; keep them.
            Some(r)
                if r > start
                    && !buffer[start..r].iter().any(|b| {
                        !b.trim().is_empty() && new.iter().any(|n| n.trim() == b.trim())
                    }) =>
            {
                // What the left-out lines open (`impl S {`), the range's last lines close: keep those.
                let mut open: isize = buffer[start..r]
                    .iter()
                    .flat_map(|l| l.chars())
                    .map(|c| match c {
                        '{' | '(' | '[' => 1,
                        '}' | ')' | ']' => -1,
                        _ => 0,
                    })
                    .sum();
                while open > 0
                    && end > r + 1
                    && !buffer[end - 1].trim().is_empty()
                    && buffer[end - 1].trim().chars().all(|c| "})];,".contains(c))
                {
                    end -= 1;
                    open -= 1;
                }
                start = r;
            }
            Some(_) => {}
            None => {
                if let Some(r) = (0..start).rev().find(|&r| buffer[r].trim() == first.trim()) {
                    start = r;
                    grew = true;
                }
            }
        }
    }
    match new.last() {
        Some(last)
            if distinctive(last) && !buffer[start..end].iter().any(|b| b.trim() == last.trim()) =>
        {
            if let Some(r) = (end..buffer.len()).find(|&r| buffer[r].trim() == last.trim()) {
                end = r + 1;
            }
        }
        Some(last) if distinctive(last) => {}
        // A closing line such as `}`: when the model repeated the lines above the range, it
        // usually repeated the ones below too; take the end where the code's tail lines up best.
        Some(_) if grew => {
            let overlap = |e: usize| {
                new.iter()
                    .rev()
                    .zip(buffer[..e].iter().rev())
                    .take_while(|(n, b)| n.trim() == b.trim())
                    .count()
            };
            let best = (end..=(end + 3).min(buffer.len()))
                .max_by_key(|&e| (overlap(e), std::cmp::Reverse(e)))
                .unwrap_or(end);
            if overlap(best) > overlap(end) {
                end = best;
            }
        }
        _ => {}
    }
    let indent_of = |l: &str| l.len() - l.trim_start().len();
    if let (Some(b), Some(c)) = (
        buffer[start..end].iter().find(|l| !l.trim().is_empty()),
        new.iter().find(|l| !l.trim().is_empty()),
    ) {
        let (want, have) = (indent_of(b), indent_of(c));
        if have == 0 && want > 0 {
            let pad = b[..want].to_string();
            for l in new.iter_mut().filter(|l| !l.trim().is_empty()) {
                l.insert_str(0, &pad);
            }
        }
    }
    (start, end, new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(s: &str) -> Vec<String> {
        lines(s)
    }

    #[test]
    fn diff_splits_into_hunks_with_context() {
        let old = v("a\nb\nc\nd\ne\nf\ng\n");
        let new = v("a\nB\nc\nd\ne\nf\ng\nh\n");
        let h = diff(&old, &new);
        assert_eq!(h.len(), 2);
        assert_eq!(
            (
                h[0].start,
                h[0].old.clone(),
                h[0].new.clone(),
                h[0].before.clone()
            ),
            (1, v("b"), v("B"), v("a"))
        );
        assert_eq!(
            (
                h[1].start,
                h[1].old.len(),
                h[1].new.clone(),
                h[1].after.len()
            ),
            (7, 0, v("h"), 0)
        );
        assert_eq!(
            apply(&old, &h, &[false, true]).unwrap(),
            v("a\nb\nc\nd\ne\nf\ng\nh\n")
        );
    }

    #[test]
    fn stale_hunks_are_refused_or_moved() {
        let old = v("fn a() {\n    1\n}\n\nfn b() {\n    2\n}\n");
        let new = v("fn a() {\n    1\n}\n\nfn b() {\n    3\n}\n");
        let h = diff(&old, &new);
        // An edit above shifts the hunk: it is moved, and applies.
        let mut shifted = v("// header\n// more\n");
        shifted.extend(old.clone());
        let moved = rebase(&h, &old, &shifted).unwrap();
        assert_eq!(moved[0].start, h[0].start + 2);
        assert_eq!(apply(&shifted, &moved, &[true]).unwrap()[7], "    3");
        // The changed text itself was edited: refused.
        let mut edited = old.clone();
        edited[5] = "    20".into();
        assert_eq!(
            rebase(&h, &old, &edited),
            Err(PatchError::Stale { hunk: 1, line: 6 })
        );
        // An edit in the context next to the hunk counts as touching it.
        let mut near = old.clone();
        near[4] = "fn b2() {".into();
        assert!(rebase(&h, &old, &near).is_err());
        assert!(
            apply(&edited, &h, &[true]).is_err(),
            "apply checks the old rows too"
        );
    }

    #[test]
    fn extracts_code_and_diffs() {
        let a = "Here is the fix:\n```rust\nfn x() {}\n```\nand a note\n```\nshort\n```";
        assert_eq!(
            extract(a),
            Some(Answer::Code {
                lang: Some("rust".into()),
                text: "fn x() {}".into()
            })
        );
        let d = "```diff\n--- a/x.rs\n+++ b/x.rs\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n```";
        assert!(matches!(extract(d), Some(Answer::Diff(_))));
        assert!(matches!(
            extract("@@ -3 +3 @@\n-x\n+y\n"),
            Some(Answer::Diff(_))
        ));
        assert_eq!(extract("I cannot help with that."), None);
        assert_eq!(
            extract("```rust\nfn cut_off() {\n    1"),
            Some(Answer::Code {
                lang: Some("rust".into()),
                text: "fn cut_off() {\n    1".into()
            })
        );
    }

    #[test]
    fn unified_diffs_apply_by_content_despite_wrong_numbers() {
        let old = v("a\nb\nc\nd\nb\nc\n");
        let d = parse_unified("--- a\n+++ b\n@@ -40,2 +40,2 @@\n b  \n-c\n+C\n").unwrap();
        assert_eq!(
            apply_unified(&old, &d).unwrap(),
            v("a\nb\nC\nd\nb\nc\n"),
            "first match after the previous hunk"
        );
        let d = parse_unified("@@ -5,2 +5,2 @@\n b\n-c\n+C\n").unwrap();
        assert_eq!(
            apply_unified(&old, &d).unwrap(),
            v("a\nb\nc\nd\nb\nC\n"),
            "the hint picks the nearer match"
        );
        let bad = parse_unified("@@ -1 +1 @@\n-zzz\n+y\n").unwrap();
        assert_eq!(
            apply_unified(&old, &bad),
            Err(PatchError::DiffMismatch {
                hunk: 1,
                expected: "zzz".into()
            })
        );
        assert_eq!(parse_unified("no hunks here"), Err(PatchError::EmptyDiff));
    }

    #[test]
    fn replacement_grows_over_repeated_context_and_keeps_indentation() {
        let buf = v("impl S {\n    fn f(&self) -> i32 {\n        1 +\n    }\n}\n");
        let (s, e, new) = fit_replacement(&buf, 2, 3, "fn f(&self) -> i32 {\n    1 + 1\n}\n");
        assert_eq!(
            (s, e),
            (1, 4),
            "the model repeated the signature and closing brace"
        );
        assert_eq!(
            new,
            v("fn f(&self) -> i32 {\n    1 + 1\n}")
                .iter()
                .map(|l| format!("    {l}"))
                .collect::<Vec<_>>()
        );
        let (s, e, new) =
            fit_replacement(&buf, 1, 4, "    fn f(&self) -> i32 {\n        2\n    }\n");
        assert_eq!((s, e, new[1].as_str()), (1, 4, "        2"));
    }

    fn text() -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec(
            prop::sample::select(vec!["a", "b", "c", "}", "", "fn x() {"]).prop_map(String::from),
            0..24,
        )
    }

    proptest! {
        #[test]
        fn all_none_and_any_subset_apply(old in text(), new in text(), mask in prop::collection::vec(any::<bool>(), 24)) {
            let hunks = diff(&old, &new);
            prop_assert_eq!(apply(&old, &hunks, &vec![true; hunks.len()]).unwrap(), new.clone());
            prop_assert_eq!(apply(&old, &hunks, &[]).unwrap(), old.clone());
            let some = apply(&old, &hunks, &mask).unwrap();
            let delta: isize = hunks.iter().zip(&mask).filter(|(_, m)| **m).map(|(h, _)| h.new.len() as isize - h.old.len() as isize).sum();
            prop_assert_eq!(some.len() as isize, old.len() as isize + delta);
            // Unchanged text is a no-op rebase.
            prop_assert_eq!(rebase(&hunks, &old, &old).unwrap(), hunks);
        }

        #[test]
        fn rebase_follows_lines_added_above(old in text(), new in text(), added in 1usize..5) {
            // (An insertion into an empty text has no anchor: refusing it is right.)
            prop_assume!(!old.is_empty());
            let hunks = diff(&old, &new);
            let mut cur: Vec<String> = (0..added).map(|i| format!("// new {i}")).collect();
            cur.extend(old.iter().cloned());
            let moved = rebase(&hunks, &old, &cur).unwrap();
            let mut want: Vec<String> = (0..added).map(|i| format!("// new {i}")).collect();
            want.extend(new.iter().cloned());
            prop_assert_eq!(apply(&cur, &moved, &vec![true; moved.len()]).unwrap(), want);
        }

        #[test]
        fn rebase_never_misapplies(old in text(), new in text(), edited in text()) {
            // Whatever the user did meanwhile, a rebased hunk replaces exactly the rows it was made for.
            let hunks = diff(&old, &new);
            if let Ok(moved) = rebase(&hunks, &old, &edited) {
                for h in &moved {
                    prop_assert_eq!(&edited[h.start..h.end()], &h.old[..]);
                }
                prop_assert!(apply(&edited, &moved, &vec![true; moved.len()]).is_ok());
            }
        }
    }
}
