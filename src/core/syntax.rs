//! Syntax queries with tree-sitter: the item (function, impl, …) around a position, for
//! `:Zeke explain` without a range.
//!
//! Grammars compiled in: Rust, Python, Go, JavaScript and TypeScript/TSX (the `tree-sitter-*` crates). Other
//! filetypes return `None` and the caller falls back to a block of lines.

use tree_sitter::{Language, Node, Parser, Point};

/// (grammar, function-like node kinds, other item kinds) for a Neovim `filetype`.
type Grammar = (Language, &'static [&'static str], &'static [&'static str]);

fn language(filetype: &str) -> Option<Grammar> {
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
        "python" => Some((
            tree_sitter_python::LANGUAGE.into(),
            &["function_definition", "lambda"],
            &["class_definition"],
        )),
        "go" => Some((
            tree_sitter_go::LANGUAGE.into(),
            &["function_declaration", "method_declaration", "func_literal"],
            &["type_declaration"],
        )),
        "typescript" | "typescriptreact" => Some((
            if filetype == "typescript" {
                tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into()
            } else {
                tree_sitter_typescript::LANGUAGE_TSX.into()
            },
            &[
                "function_declaration",
                "generator_function_declaration",
                "method_definition",
                "function_expression",
                "arrow_function",
            ],
            &[
                "class_declaration",
                "interface_declaration",
                "abstract_class_declaration",
            ],
        )),
        "javascript" | "javascriptreact" => Some((
            tree_sitter_javascript::LANGUAGE.into(),
            &[
                "function_declaration",
                "generator_function_declaration",
                "method_definition",
                "function_expression",
                "arrow_function",
            ],
            &["class_declaration"],
        )),
        _ => None,
    }
}

/// Anonymous functions count only when they span several lines; otherwise the enclosing
/// function is meant.
const SMALL: &[&str] = &[
    "closure_expression",
    "lambda",
    "func_literal",
    "arrow_function",
    "function_expression",
];

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
        let multi_line = n.end_position().row > n.start_position().row;
        if functions.contains(&kind) && (!SMALL.contains(&kind) || multi_line) {
            return Some((n.start_position().row, n.end_position().row));
        }
        if fallback.is_none() && items.contains(&kind) {
            fallback = Some((n.start_position().row, n.end_position().row));
        }
        node = n.parent();
    }
    fallback
}

/// The Rust unit-test module of a file: `#[cfg(test)] mod tests { … }` at the top level.
/// Returns (row of `mod tests`, row of its closing `}`), 0-based; `None` if the file has none.
pub fn rust_test_module(source: &str) -> Option<(usize, usize)> {
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_rust::LANGUAGE.into())
        .ok()?;
    let tree = parser.parse(source, None)?;
    let root = tree.root_node();
    let mut cursor = root.walk();
    let children: Vec<Node> = root.children(&mut cursor).collect();
    children.iter().enumerate().find_map(|(i, n)| {
        let named_tests = n.kind() == "mod_item"
            && n.child_by_field_name("name")
                .and_then(|name| name.utf8_text(source.as_bytes()).ok())
                == Some("tests");
        let cfg_test = i > 0 && {
            let attr = children[i - 1];
            attr.kind() == "attribute_item"
                && attr
                    .utf8_text(source.as_bytes())
                    .is_ok_and(|t| t.replace(' ', "").contains("cfg(test)"))
        };
        let body = n.child_by_field_name("body")?;
        (named_tests && cfg_test).then(|| (n.start_position().row, body.end_position().row))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_test_module() {
        let src = "fn a() {}\n\n#[cfg(test)]\nmod tests {\n    use super::*;\n\n    #[test]\n    fn t() {}\n}\n";
        assert_eq!(rust_test_module(src), Some((3, 8)));
        assert_eq!(rust_test_module("mod tests {\n}\n"), None, "not cfg(test)");
        assert_eq!(rust_test_module("fn a() {}\n"), None);
    }

    const SRC: &str = "use std::fmt;\n\nstruct S;\n\nimpl S {\n    fn a(&self) -> u8 {\n        1\n    }\n\n    fn b() {}\n}\n";

    #[test]
    fn finds_function_then_item() {
        assert_eq!(enclosing_item("rust", SRC, 6, 8), Some((5, 7)));
        assert_eq!(enclosing_item("rust", SRC, 9, 6), Some((9, 9)));
        assert_eq!(enclosing_item("rust", SRC, 8, 0), Some((4, 10)));
        assert_eq!(enclosing_item("rust", SRC, 0, 0), None);
        assert_eq!(
            enclosing_item("lua", "local function f()\nend\n", 1, 2),
            None,
            "no grammar"
        );
    }

    #[test]
    fn finds_functions_in_python_go_and_javascript() {
        let py =
            "import os\n\nclass C:\n    def m(self):\n        return [x for x in y]\n\n    x = 1\n";
        assert_eq!(enclosing_item("python", py, 4, 10), Some((3, 4)));
        assert_eq!(
            enclosing_item("python", py, 6, 4),
            Some((2, 6)),
            "outside a method: the class"
        );
        let go = "package m\n\nfunc (s *S) Add(a int) int {\n\tf := func() int { return 1 }\n\treturn a + f()\n}\n";
        assert_eq!(
            enclosing_item("go", go, 3, 20),
            Some((2, 5)),
            "a one-line func literal is not the function meant"
        );
        let js = "const add = (a, b) => {\n  return a + b;\n};\nclass K {\n  m() {\n    return 1;\n  }\n}\n";
        assert_eq!(enclosing_item("javascript", js, 1, 4), Some((0, 2)));
        assert_eq!(enclosing_item("javascript", js, 5, 4), Some((4, 6)));
        let ts = "interface P { x: number }\nexport function area(p: P): number {\n  return p.x * 2;\n}\n";
        assert_eq!(enclosing_item("typescript", ts, 2, 4), Some((1, 3)));
        assert_eq!(
            enclosing_item(
                "typescriptreact",
                "const C = () => {\n  return <div/>;\n};\n",
                1,
                4
            ),
            Some((0, 2))
        );
    }
}
