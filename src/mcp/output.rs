//! Caps and pages long tool outputs. Clients truncate tool results near 25k tokens, so a text longer
//! than the cap is split at line boundaries into pages; every page but the last ends with a marker
//! telling the model how to get the next one (`"page": N` with the same arguments).
//!
//! Invariants: pages concatenated (markers removed) give the whole text back; a page never exceeds
//! the cap except for the marker; page numbers start at 1.

/// One page of a tool's text output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The page's text, with the marker appended when there is more.
    pub text: String,
    pub page: u32,
    pub pages: u32,
}

/// Splits `text` into pages of at most `max_chars` characters and returns page `page` (from 1).
/// Errors when the page does not exist, naming how many there are.
pub fn page(text: &str, tool: &str, page: u32, max_chars: usize) -> Result<Page, String> {
    let bounds = split(text, max_chars.max(1));
    let pages = bounds.len() as u32;
    if page == 0 || page > pages {
        return Err(format!(
            "page {page} does not exist: the output of {tool} has {pages} page(s)"
        ));
    }
    let (start, end) = bounds[(page - 1) as usize];
    let mut out = text[start..end].to_string();
    if pages > 1 {
        let total = text.chars().count();
        if page < pages {
            let ends_nl = out.ends_with('\n');
            out.push_str(&format!(
                "{}[zeke: output truncated: page {page} of {pages} ({total} characters in all). Call {tool} again with the same arguments and \"page\": {} for the next part.]",
                if ends_nl { "" } else { "\n" },
                page + 1
            ));
        } else {
            out.push_str(&format!(
                "{}[zeke: page {page} of {pages}, the end of the output.]",
                if out.ends_with('\n') { "" } else { "\n" }
            ));
        }
    }
    Ok(Page {
        text: out,
        page,
        pages,
    })
}

/// Byte ranges of the pages: whole lines while they fit, a long line cut at character boundaries.
fn split(text: &str, max_chars: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let (mut start, mut chars) = (0usize, 0usize);
    let mut pos = 0usize;
    for line in text.split_inclusive('\n') {
        let n = line.chars().count();
        if chars + n > max_chars && chars > 0 {
            out.push((start, pos));
            start = pos;
            chars = 0;
        }
        if n > max_chars {
            // cut the long line itself
            let mut cut = pos;
            for (i, (off, _)) in line.char_indices().enumerate() {
                if i > 0 && i % max_chars == 0 {
                    out.push((cut, pos + off));
                    cut = pos + off;
                }
            }
            start = cut;
            chars = line[cut - pos..].chars().count();
        } else {
            chars += n;
        }
        pos += line.len();
    }
    if pos > start || out.is_empty() {
        out.push((start, pos));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(p: &str) -> &str {
        match p.find("[zeke: ") {
            Some(i) => &p[..i],
            None => p,
        }
    }

    #[test]
    fn short_text_is_one_page_without_marker() {
        let p = page("a\nb\n", "t", 1, 100).unwrap();
        assert_eq!(
            p,
            Page {
                text: "a\nb\n".into(),
                page: 1,
                pages: 1
            }
        );
        assert_eq!(page("", "t", 1, 10).unwrap().pages, 1);
    }

    #[test]
    fn pages_reassemble_and_name_the_next_page() {
        let text: String = (0..50).map(|i| format!("line {i}\n")).collect();
        let first = page(&text, "read_text_file", 1, 64).unwrap();
        assert!(first.pages > 1);
        assert!(first.text.ends_with("Call read_text_file again with the same arguments and \"page\": 2 for the next part.]"), "{}", first.text);
        let mut joined = String::new();
        for n in 1..=first.pages {
            let p = page(&text, "read_text_file", n, 64).unwrap();
            assert!(strip(&p.text).chars().count() <= 64);
            joined.push_str(strip(&p.text));
        }
        assert_eq!(joined, text);
        assert_eq!(
            page(&text, "x", first.pages + 1, 64).unwrap_err(),
            format!(
                "page {} does not exist: the output of x has {} page(s)",
                first.pages + 1,
                first.pages
            )
        );
    }

    #[test]
    fn one_huge_line_is_cut() {
        let text = "é".repeat(250);
        let p1 = page(&text, "t", 1, 100).unwrap();
        assert_eq!(p1.pages, 3);
        let joined: String = (1..=3)
            .map(|n| {
                strip(&page(&text, "t", n, 100).unwrap().text)
                    .trim_end_matches('\n')
                    .to_string()
            })
            .collect();
        assert_eq!(joined, text);
    }
}
