//! Syntax queries with tree-sitter: the item (function, impl, …) around a position, for
//! `:Zeke explain` without a range.
//!
//! Grammars compiled in: Rust (`tree-sitter-rust`). Other filetypes return `None` and the caller
//! falls back to a block of lines.

use tree_sitter::{Language, Node, Parser, Point};

fn language(
    filetype: &str,
) -> Option<(Language, &'static [&'static str], &'static [&'static str])> {
    match filetype {
        "rust" => Some((
            tree_sitter_rust::LANGUAGE.into(),
            &[
                "function_item",
                "function_signature_item",
                "closure_expression",
            ],
            &[
                "impl_item",
                "trait_item",
                "struct_item",
                "enum_item",
                "mod_item",
                "macro_definition",
            ],
        )),
        _ => None,
    }
}

/// Whether a grammar is compiled in for this Neovim `filetype`.
pub fn has_grammar(filetype: &str) -> bool {
    language(filetype).is_some()
}

/// Rows (0-based, end inclusive) of the innermost function around (row, byte col) in `source`, or
/// else the innermost item (impl, trait, struct, …); `None` without a grammar or an enclosing item.
pub fn enclosing_item(
    filetype: &str,
    source: &str,
    row: usize,
    col: usize,
) -> Option<(usize, usize)> {
    let (lang, functions, items) = language(filetype)?;
    let mut parser = Parser::new();
    parser.set_language(&lang).ok()?;
    let tree = parser.parse(source, None)?;
    let point = Point { row, column: col };
    let mut node: Option<Node> = tree.root_node().descendant_for_point_range(point, point);
    let mut fallback = None;
    while let Some(n) = node {
        let kind = n.kind();
        // A closure counts only when it spans several lines; otherwise explain its function.
        let multi_line = n.end_position().row > n.start_position().row;
        if functions.contains(&kind) && (kind != "closure_expression" || multi_line) {
            return Some((n.start_position().row, n.end_position().row));
        }
        if fallback.is_none() && items.contains(&kind) {
            fallback = Some((n.start_position().row, n.end_position().row));
        }
        node = n.parent();
    }
    fallback
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "use std::fmt;\n\nstruct S;\n\nimpl S {\n    fn a(&self) -> u8 {\n        1\n    }\n\n    fn b() {}\n}\n";

    #[test]
    fn finds_function_then_item() {
        assert_eq!(enclosing_item("rust", SRC, 6, 8), Some((5, 7)));
        assert_eq!(enclosing_item("rust", SRC, 9, 6), Some((9, 9)));
        assert_eq!(enclosing_item("rust", SRC, 8, 0), Some((4, 10)));
        assert_eq!(enclosing_item("rust", SRC, 0, 0), None);
        assert_eq!(enclosing_item("python", "def f():\n  pass\n", 1, 2), None);
    }
}
