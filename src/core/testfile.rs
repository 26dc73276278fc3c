//! Where generated tests go, by each language's convention, and how they are put there: Rust
//! tests into the file's `#[cfg(test)] mod tests` (created at the end of the file when missing),
//! other languages into a test file named the usual way next to the source.
//!
//! Paths are plain strings as Neovim gives them (`nvim_buf_get_name`); nothing here touches the
//! file system.

use crate::core::syntax;

/// The place for tests of a source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestTarget {
    /// In the same file (Rust's `mod tests`).
    SameFile,
    /// In this other file (which may not exist yet).
    File(String),
}

/// The conventional test location for `path` of `filetype`: `x.rs` → same file; `x.py` →
/// `test_x.py`; `x.ts` → `x.test.ts` (also js/jsx/tsx); `x.go` → `x_test.go`; `x.lua` →
/// `x_spec.lua`; `x.rb` → `x_spec.rb`; `X.java` → `XTest.java`; others → `test_x.EXT`. A source that
/// already is a test file gets tests in the same file.
pub fn test_target(path: &str, filetype: &str) -> TestTarget {
    if filetype == "rust" || path.ends_with(".rs") {
        return TestTarget::SameFile;
    }
    let (dir, file) = match path.rfind('/') {
        Some(i) => (&path[..=i], &path[i + 1..]),
        None => ("", path),
    };
    let (stem, ext) = match file.rfind('.') {
        Some(i) if i > 0 => (&file[..i], &file[i + 1..]),
        _ => (file, ""),
    };
    let is_test = stem.starts_with("test_")
        || stem.ends_with("_test")
        || stem.ends_with(".test")
        || stem.ends_with(".spec")
        || stem.ends_with("_spec")
        || stem.ends_with("Test");
    if is_test || stem.is_empty() {
        return TestTarget::SameFile;
    }
    let name = match (filetype, ext) {
        ("python", _) | (_, "py") => format!("test_{stem}.py"),
        ("javascript" | "typescript" | "javascriptreact" | "typescriptreact", _)
        | (_, "js" | "ts" | "jsx" | "tsx" | "mjs") => format!("{stem}.test.{ext}"),
        ("go", _) | (_, "go") => format!("{stem}_test.go"),
        ("lua", _) | (_, "lua") => format!("{stem}_spec.lua"),
        ("ruby", _) | (_, "rb") => format!("{stem}_spec.rb"),
        ("java", _) | (_, "java") => format!("{stem}Test.java"),
        (_, "") => format!("test_{stem}"),
        _ => format!("test_{stem}.{ext}"),
    };
    TestTarget::File(format!("{dir}{name}"))
}

/// The new text of a Rust file with the model's tests added: inside the existing
/// `#[cfg(test)] mod tests` before its closing brace, else in a new such module at the end of the
/// file. The model's code may come wrapped in its own `mod tests { … }` and with `use super::*;`;
/// both are unwrapped. Returns all lines of the new file.
pub fn add_rust_tests(file: &[String], code: &str) -> Vec<String> {
    let body = unwrap_rust_module(code);
    let source: String = file.iter().map(|l| format!("{l}\n")).collect();
    let mut out = file.to_vec();
    match syntax::rust_test_module(&source) {
        Some((_, close)) => {
            let mut add = vec![String::new()];
            add.extend(indent(&body, "    "));
            // Keep a blank line before the new tests, but not two.
            if close > 0 && out[close - 1].trim().is_empty() {
                add.remove(0);
            }
            out.splice(close..close, add);
        }
        None => {
            while out.last().is_some_and(|l| l.trim().is_empty()) {
                out.pop();
            }
            out.extend(
                ["", "#[cfg(test)]", "mod tests {", "    use super::*;", ""].map(String::from),
            );
            out.extend(indent(&body, "    "));
            out.push("}".into());
        }
    }
    out
}

/// The new text of a test file (possibly empty) with `code` appended.
pub fn add_to_test_file(file: &[String], code: &str) -> Vec<String> {
    let mut out: Vec<String> = file.to_vec();
    while out.last().is_some_and(|l| l.trim().is_empty()) {
        out.pop();
    }
    if !out.is_empty() {
        out.push(String::new());
    }
    out.extend(crate::core::patch::lines(code.trim_matches('\n')));
    out
}

/// Test functions out of a model's Rust answer: without `#[cfg(test)]`, `mod tests {`, its closing
/// brace and `use super::*;`, dedented.
fn unwrap_rust_module(code: &str) -> Vec<String> {
    let mut lines: Vec<String> = crate::core::patch::lines(code);
    if let Some(open) = lines
        .iter()
        .position(|l| l.trim_start().starts_with("mod tests") && l.trim_end().ends_with('{'))
        && let Some(close) = lines.iter().rposition(|l| l.trim() == "}")
        && close > open
    {
        lines = lines[open + 1..close].to_vec();
    }
    lines.retain(|l| {
        let t = l.trim();
        t != "#[cfg(test)]" && t != "use super::*;"
    });
    while lines.first().is_some_and(|l| l.trim().is_empty()) {
        lines.remove(0);
    }
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    let common = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    lines
        .iter()
        .map(|l| {
            if l.trim().is_empty() {
                String::new()
            } else {
                l[common..].to_string()
            }
        })
        .collect()
}

fn indent(lines: &[String], pad: &str) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{pad}{l}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::patch::lines;

    #[test]
    fn targets_follow_conventions() {
        let t = |p: &str, ft: &str| match test_target(p, ft) {
            TestTarget::SameFile => "same".to_string(),
            TestTarget::File(f) => f,
        };
        assert_eq!(t("/p/src/lib.rs", "rust"), "same");
        assert_eq!(t("/p/pkg/calc.py", "python"), "/p/pkg/test_calc.py");
        assert_eq!(t("/p/src/calc.ts", "typescript"), "/p/src/calc.test.ts");
        assert_eq!(t("/p/calc.go", "go"), "/p/calc_test.go");
        assert_eq!(t("/p/lua/calc.lua", "lua"), "/p/lua/calc_spec.lua");
        assert_eq!(t("/p/Calc.java", "java"), "/p/CalcTest.java");
        assert_eq!(
            t("/p/test_calc.py", "python"),
            "same",
            "already a test file"
        );
        assert_eq!(t("calc.c", "c"), "test_calc.c");
    }

    #[test]
    fn rust_tests_go_into_the_existing_module_or_a_new_one() {
        let answer = "#[cfg(test)]\nmod tests {\n    use super::*;\n\n    #[test]\n    fn adds() {\n        assert_eq!(add(1, 2), 3);\n    }\n}";
        let without = lines("fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n\n");
        let got = add_rust_tests(&without, answer);
        assert_eq!(
            got.join("\n"),
            "fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n\n#[cfg(test)]\nmod tests {\n    use super::*;\n\n    #[test]\n    fn adds() {\n        assert_eq!(add(1, 2), 3);\n    }\n}"
        );
        let with = lines(
            "fn add() {}\n\n#[cfg(test)]\nmod tests {\n    use super::*;\n\n    #[test]\n    fn old() {}\n}\n",
        );
        let got = add_rust_tests(&with, "#[test]\nfn new() {}");
        assert_eq!(
            got.join("\n"),
            "fn add() {}\n\n#[cfg(test)]\nmod tests {\n    use super::*;\n\n    #[test]\n    fn old() {}\n\n    #[test]\n    fn new() {}\n}"
        );
    }

    #[test]
    fn other_languages_append_to_the_test_file() {
        assert_eq!(
            add_to_test_file(&[], "\nimport x\n\ndef test_a():\n    pass\n"),
            lines("import x\n\ndef test_a():\n    pass")
        );
        assert_eq!(
            add_to_test_file(&lines("import x\n\n"), "def test_b(): pass"),
            lines("import x\n\ndef test_b(): pass")
        );
    }
}
