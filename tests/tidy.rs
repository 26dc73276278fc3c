//! Source-tree checks of the architecture rules (README, "Architecture"): the one-way layering,
//! the pure core, the single process spawner, stdout only in the CLI, honest tests and file
//! hygiene.
//!
//! The Rust sources are parsed with `syn`: every `use` tree is flattened to full paths (`super::`
//! and `self::` resolved against the file's module), every path in code and every macro body is
//! seen, and every item under `#[cfg(test)]` is left out — so a rule cannot be dodged by a grouped
//! import, a path written inline, or a line break, and test code is not held to surface rules.

use std::path::{Path, PathBuf};

use syn::visit::{self, Visit};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// What one file refers to, outside `#[cfg(test)]` items.
#[derive(Default)]
struct Refs {
    /// Full paths from `use` trees and from code (`crate::workspace::Roots`, `rmcp::model`,
    /// `std::process::Command`), `super::`/`self::` resolved.
    paths: Vec<String>,
    /// Macro names (`println`, `todo`).
    macros: Vec<String>,
    /// Macro bodies with spaces removed (paths inside `json!`, `tokio::select!`, …).
    bodies: Vec<String>,
    /// Test attributes that are not allowed (an ignore attribute without a skip reason, should_panic).
    bad_attrs: Vec<String>,
}

struct Collector {
    /// The file's module path, e.g. `["mcp", "asker"]`.
    module: Vec<String>,
    refs: Refs,
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg") && {
            let t = a
                .meta
                .require_list()
                .map(|l| l.tokens.to_string())
                .unwrap_or_default();
            t == "test"
        }
    })
}

impl Collector {
    fn resolve(&self, segments: &[String]) -> String {
        let mut out: Vec<String> = Vec::new();
        let mut rest = segments;
        match segments.first().map(String::as_str) {
            Some("super") => {
                out.push("crate".into());
                let mut module = self.module.clone();
                while rest.first().is_some_and(|s| s == "super") {
                    module.pop();
                    rest = &rest[1..];
                }
                out.extend(module);
            }
            Some("self") => {
                out.push("crate".into());
                out.extend(self.module.clone());
                rest = &rest[1..];
            }
            _ => {}
        }
        out.extend(rest.iter().cloned());
        out.join("::")
    }

    fn flatten(&mut self, tree: &syn::UseTree, prefix: &mut Vec<String>) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.flatten(&p.tree, prefix);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                prefix.push(n.ident.to_string());
                let full = self.resolve(prefix);
                self.refs.paths.push(full);
                prefix.pop();
            }
            syn::UseTree::Rename(r) => {
                prefix.push(r.ident.to_string());
                let full = self.resolve(prefix);
                self.refs.paths.push(full);
                prefix.pop();
            }
            syn::UseTree::Glob(_) => {
                let full = self.resolve(prefix);
                self.refs.paths.push(format!("{full}::*"));
            }
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.flatten(t, prefix);
                }
            }
        }
    }
}

impl<'ast> Visit<'ast> for Collector {
    fn visit_item(&mut self, i: &'ast syn::Item) {
        let attrs: &[syn::Attribute] = match i {
            syn::Item::Mod(m) => &m.attrs,
            syn::Item::Fn(f) => &f.attrs,
            syn::Item::Impl(x) => &x.attrs,
            syn::Item::Use(u) => &u.attrs,
            syn::Item::Struct(x) => &x.attrs,
            syn::Item::Enum(x) => &x.attrs,
            syn::Item::Const(x) => &x.attrs,
            syn::Item::Static(x) => &x.attrs,
            syn::Item::Macro(x) => &x.attrs,
            _ => &[],
        };
        if is_cfg_test(attrs) {
            return;
        }
        visit::visit_item(self, i);
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        self.flatten(&u.tree, &mut Vec::new());
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segments: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        if segments.len() > 1 {
            let full = self.resolve(&segments);
            self.refs.paths.push(full);
        }
        visit::visit_path(self, p);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        if let Some(last) = m.path.segments.last() {
            self.refs.macros.push(last.ident.to_string());
        }
        self.refs.bodies.push(m.tokens.to_string().replace(' ', ""));
        visit::visit_macro(self, m);
    }

    fn visit_attribute(&mut self, a: &'ast syn::Attribute) {
        let tokens = match &a.meta {
            syn::Meta::List(l) => l.tokens.to_string(),
            syn::Meta::NameValue(nv) => {
                let v = &nv.value;
                let lit = match v {
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(s),
                        ..
                    }) => s.value(),
                    _ => String::new(),
                };
                format!("= {lit:?}")
            }
            syn::Meta::Path(_) => String::new(),
        };
        let name = a
            .path()
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default();
        if name == "should_panic" || (name == "cfg_attr" && tokens.contains("should_panic")) {
            self.refs
                .bad_attrs
                .push("#[should_panic]: assert the error instead".into());
        }
        let ignores = name == "ignore" || (name == "cfg_attr" && tokens.contains("ignore"));
        if ignores && !tokens.contains("\"skipped: ") {
            self.refs.bad_attrs.push(
                "an ignore attribute without a reason starting \"skipped: \" (a skipped test says why)"
                    .into(),
            );
        }
    }
}

/// The module path of `rel` (relative to `src/`): `mcp/asker.rs` → `["mcp", "asker"]`.
fn module_of(rel: &str) -> Vec<String> {
    let stem = rel.trim_end_matches(".rs");
    if stem == "lib" || stem == "main" {
        return Vec::new();
    }
    stem.split('/').map(str::to_string).collect()
}

fn parse_refs(path: &Path, module: Vec<String>) -> Refs {
    let text = std::fs::read_to_string(path).unwrap();
    let file = syn::parse_file(&text)
        .unwrap_or_else(|e| panic!("{}: does not parse: {e}", path.display()));
    let mut c = Collector {
        module,
        refs: Refs::default(),
    };
    c.visit_file(&file);
    c.refs
}

/// (file relative to src/, what it refers to outside `#[cfg(test)]` items)
fn sources() -> Vec<(String, Refs)> {
    rust_files(&src())
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(src())
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let refs = parse_refs(&p, module_of(&rel));
            (rel, refs)
        })
        .collect()
}

/// `prefix` names `path` or one of its parents (`crate::app` covers `crate::app::gate::Gate`, not
/// `crate::apple`).
fn under(path: &str, prefix: &str) -> bool {
    path == prefix || path.starts_with(&format!("{prefix}::"))
}

/// Every reference of a file that falls under one of `banned` (paths, and macro bodies naming it).
fn hits(refs: &Refs, banned: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for p in &refs.paths {
        if let Some(b) = banned.iter().find(|b| under(p, b)) {
            out.push(format!("{b} ({p})"));
        }
    }
    for body in &refs.bodies {
        if let Some(b) = banned.iter().find(|b| body.contains(&format!("{b}::"))) {
            out.push(format!("{b} (in a macro)"));
        }
    }
    out
}

#[test]
fn core_does_no_io_and_knows_no_wire_format() {
    let banned = [
        "tokio",
        "reqwest",
        "std::fs",
        "std::net",
        "std::process",
        "serde",
        "serde_json",
        "rmpv",
        "nvim_rs",
        "rmcp",
        "crate::app",
        "crate::providers",
        "crate::nvim",
        "crate::mcp",
        "crate::config",
        "crate::sys",
        "crate::workspace",
        "crate::git",
    ];
    let mut v = Vec::new();
    for (file, refs) in sources() {
        if file.starts_with("core") {
            v.extend(
                hits(&refs, &banned)
                    .into_iter()
                    // a tool's JSON Schema is data, not a wire format: `serde_json::Value` is the
                    // one serde type core may hold (in `ToolSpec`), never (de)serialize
                    .filter(|h| !(file == "core/llm.rs" && h == "serde_json (serde_json::Value)"))
                    .map(|h| format!("src/{file}: core must not use {h}")),
            );
        }
    }
    assert!(v.is_empty(), "{}", v.join("\n"));
}

#[test]
fn only_sys_starts_processes() {
    let mut v = Vec::new();
    for (file, refs) in sources() {
        if file != "sys.rs" && !file.starts_with("sys/") {
            v.extend(
                hits(&refs, &["std::process::Command", "tokio::process::Command"])
                    .into_iter()
                    .map(|h| format!("src/{file}: a process started outside sys.rs: {h}")),
            );
        }
    }
    assert!(v.is_empty(), "{}", v.join("\n"));
}

#[test]
fn stdout_only_in_the_cli() {
    let mut v = Vec::new();
    for (file, refs) in sources() {
        let cli =
            matches!(file.as_str(), "main.rs" | "cmd.rs" | "cli.rs") || file.starts_with("cmd/");
        if cli {
            continue;
        }
        for m in &refs.macros {
            if matches!(m.as_str(), "print" | "println" | "dbg") {
                v.push(format!("src/{file}: {m}! writes to stdout, the protocol"));
            }
        }
        for p in &refs.paths {
            let stdout = p.ends_with("io::stdout");
            // the two protocol surfaces own their stdout
            let allowed = matches!(file.as_str(), "nvim.rs" | "mcp.rs") && p == "tokio::io::stdout";
            if stdout && !allowed {
                v.push(format!(
                    "src/{file}: {p}: stdout is the protocol outside the CLI"
                ));
            }
        }
    }
    assert!(v.is_empty(), "{}", v.join("\n"));
}

#[test]
fn layers_point_one_way() {
    // (module prefix, modules it must not use)
    let surfaces = ["crate::nvim", "crate::mcp", "crate::cmd", "crate::cli"];
    let rules: &[(&str, Vec<&str>)] = &[
        ("providers", [&surfaces[..], &["crate::app"]].concat()),
        (
            "config",
            [&surfaces[..], &["crate::app", "crate::providers"]].concat(),
        ),
        (
            "app",
            [&surfaces[..], &["rmpv", "nvim_rs", "rmcp"]].concat(),
        ),
        (
            "nvim",
            vec!["crate::cmd", "crate::cli", "crate::mcp", "rmcp"],
        ),
        // the MCP surface is protocol mapping over the tool layer: it never reaches past it to
        // the filesystem, git or the policy itself
        (
            "mcp",
            vec![
                "crate::nvim",
                "crate::cmd",
                "crate::cli",
                "rmpv",
                "nvim_rs",
                "crate::workspace",
                "crate::git",
                "crate::core::edit",
                "crate::core::policy::Policy",
                "crate::app::grants::GrantStore::grant",
            ],
        ),
        (
            "workspace",
            [&surfaces[..], &["crate::app", "crate::providers", "rmcp"]].concat(),
        ),
        // the router sees providers only through `Provider` and `core::llm`, and knows no surface
        (
            "router",
            [&surfaces[..], &["crate::app", "rmpv", "nvim_rs", "rmcp"]].concat(),
        ),
        // the ledger is storage: it knows rows, not who writes them
        (
            "ledger.rs",
            [
                &surfaces[..],
                &["crate::app", "crate::providers", "crate::router", "rmcp"],
            ]
            .concat(),
        ),
        (
            "git.rs",
            [&surfaces[..], &["crate::app", "crate::providers", "rmcp"]].concat(),
        ),
        // the language-server edge knows servers, not Zeke's policy, tools or surfaces
        (
            "lsp",
            [
                &surfaces[..],
                &[
                    "crate::app",
                    "crate::providers",
                    "crate::router",
                    "rmcp",
                    "nvim_rs",
                ],
            ]
            .concat(),
        ),
    ];
    let mut v = Vec::new();
    for (file, refs) in sources() {
        for (m, banned) in rules.iter().filter(|(m, _)| file.starts_with(m)) {
            v.extend(
                hits(&refs, banned)
                    .into_iter()
                    .map(|h| format!("src/{file}: {m} must not use {h}")),
            );
        }
        if file == "sys.rs" || file.starts_with("sys/") {
            for p in (refs.paths.iter()).filter(|p| under(p, "crate") && !under(p, "crate::sys")) {
                v.push(format!("src/{file}: sys uses nothing of Zeke's ({p})"));
            }
        }
    }
    assert!(v.is_empty(), "{}", v.join("\n"));
}

/// The rules see what they should: a grouped import, a `super::` path and a path inside a macro
/// are all found, and `#[cfg(test)]` items are left out.
#[test]
fn the_checker_sees_through_grouping_super_and_macros() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x.rs");
    std::fs::write(
        &f,
        "use crate::{app::{gate::Gate, tools}, workspace as w};\n\
         use super::sibling::*;\n\
         fn f() { let _ = serde_json::json!({\"a\": crate::git::open()}); }\n\
         #[cfg(test)]\nmod tests { use crate::nvim::Hidden; }\n\
         #[cfg_attr(not(x), ignore)]\nfn t() {}\n",
    )
    .unwrap();
    let refs = parse_refs(&f, vec!["mcp".into(), "x".into()]);
    for want in [
        "crate::app::gate::Gate",
        "crate::app::tools",
        "crate::workspace",
        "crate::mcp::sibling::*",
        "serde_json::json",
    ] {
        assert!(
            refs.paths.iter().any(|p| p == want),
            "{want} in {:?}",
            refs.paths
        );
    }
    assert!(
        !refs.paths.iter().any(|p| p.contains("nvim")),
        "cfg(test) left out"
    );
    assert_eq!(hits(&refs, &["crate::git"]), ["crate::git (in a macro)"]);
    assert_eq!(refs.bad_attrs.len(), 1, "{:?}", refs.bad_attrs);
}

/// Tests say why they skip and never pass by panicking: no ignore attribute without a `skipped: …`
/// reason, no `#[should_panic]`, in `src/` and `tests/`.
#[test]
fn tests_are_honest() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut v = Vec::new();
    for dir in ["src", "tests"] {
        for p in rust_files(&root.join(dir)) {
            // test code counts here: parse with no module (cfg(test) items are kept below)
            let text = std::fs::read_to_string(&p).unwrap();
            let file = syn::parse_file(&text)
                .unwrap_or_else(|e| panic!("{}: does not parse: {e}", p.display()));
            let mut c = AllAttrs::default();
            c.visit_file(&file);
            v.extend(c.0.into_iter().map(|w| format!("{}: {w}", p.display())));
        }
    }
    assert!(v.is_empty(), "{}", v.join("\n"));
}

/// Visits everything, test modules included, for their attributes.
#[derive(Default)]
struct AllAttrs(Vec<String>);

impl<'ast> Visit<'ast> for AllAttrs {
    fn visit_attribute(&mut self, a: &'ast syn::Attribute) {
        let mut c = Collector {
            module: Vec::new(),
            refs: Refs::default(),
        };
        c.visit_attribute(a);
        self.0.extend(c.refs.bad_attrs);
    }
}

#[test]
fn every_file_says_what_it_owns_and_stays_small() {
    let mut problems = Vec::new();
    for p in rust_files(&src()) {
        let text = std::fs::read_to_string(&p).unwrap();
        let name = p.display().to_string();
        if !text.starts_with("//!") {
            problems.push(format!(
                "{name}: starts without a //! doc saying what it owns"
            ));
        }
        if p.file_name()
            .is_some_and(|n| n == "mod.rs" || n == "utils.rs")
        {
            problems.push(format!("{name}: no mod.rs / utils.rs"));
        }
        let lines = text.lines().count();
        if lines > 700 {
            problems.push(format!("{name}: {lines} lines; split it"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn no_unfinished_code() {
    let mut v = Vec::new();
    for (file, refs) in sources() {
        for m in &refs.macros {
            if matches!(m.as_str(), "todo" | "unimplemented") {
                v.push(format!("src/{file}: {m}!: unfinished"));
            }
        }
    }
    assert!(v.is_empty(), "{}", v.join("\n"));
}

/// The plugin says it needs Neovim 0.10 (`plugin/zeke.lua` refuses older ones), and the suite runs
/// on a newer build, so nothing newer than 0.10 may slip in unnoticed: every Lua API that Neovim's
/// `news-0.11.txt` / `news.txt` (0.12) list as new must sit behind a feature test on its line
/// (`vim.fn.has('nvim-0.11')`, or `if vim.X then` / `vim.X and …`).
#[test]
fn lua_uses_no_neovim_api_newer_than_0_10_unguarded() {
    let newer: &[(&str, &str)] = &[
        ("vim.hl.", "0.11"),
        ("vim.fs.relpath", "0.11"),
        ("vim.fs.abspath", "0.11"),
        ("vim.fs.rm", "0.11"),
        ("vim.diagnostic.jump", "0.11"),
        ("vim.text.", "0.11"),
        ("vim.lsp.config", "0.11"),
        ("vim.lsp.enable", "0.11"),
        ("vim.lsp.completion", "0.11"),
        ("vim.lsp.is_enabled", "0.12"),
        ("vim.list.", "0.12"),
        ("vim.pack", "0.12"),
        ("vim.glob.", "0.12"),
        ("vim.diagnostic.status", "0.12"),
        ("vim.version.intersect", "0.12"),
        ("nvim_ui_send", "0.12"),
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["lua/zeke", "plugin"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "lua") {
                files.push(p);
            }
        }
    }
    assert!(files.len() > 5, "found the plugin's Lua files");
    let mut v = Vec::new();
    for p in files {
        let text = std::fs::read_to_string(&p).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("--").next().unwrap_or("");
            let guarded = |name: &str| {
                code.contains("has('nvim-0.1")
                    || code.contains("has(\"nvim-0.1")
                    || code.contains(&format!("if {name}"))
                    || code.contains(&format!("{name} and"))
            };
            for (name, since) in newer {
                if code.contains(name) && !guarded(name.trim_end_matches('.')) {
                    v.push(format!(
                        "{}:{}: {name} is new in Neovim {since}: {}",
                        p.display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
            // vim.validate(name, value, validator) is 0.11's form; 0.10 takes a table
            if code.contains("vim.validate('") || code.contains("vim.validate(\"") {
                v.push(format!(
                    "{}:{}: vim.validate(name, value, …) is new in 0.11: {}",
                    p.display(),
                    n + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(v.is_empty(), "{}", v.join("\n"));
}

/// The numeric settings' defaults and limits are written once (`src/config/limits.rs`): the Lua
/// side's copy (`lua/zeke/schema.json`, what `zeke config --schema` prints) must match it, and the
/// help file must give every key with its default (`key = default` in its config example).
#[test]
fn one_config_schema_for_rust_lua_and_the_docs() {
    let root = env!("CARGO_MANIFEST_DIR");
    let want = format!(
        "{}\n",
        serde_json::to_string_pretty(&zeke::config::limits::schema()).unwrap()
    );
    let have = std::fs::read_to_string(format!("{root}/lua/zeke/schema.json")).unwrap();
    assert!(
        have == want,
        "lua/zeke/schema.json is stale: run `zeke config --schema > lua/zeke/schema.json`"
    );
    let doc = std::fs::read_to_string(format!("{root}/doc/zeke.txt")).unwrap();
    let missing: Vec<String> = zeke::config::limits::LIMITS
        .iter()
        .filter_map(|l| {
            let leaf = l.key.rsplit('.').next().unwrap();
            let line = format!("{leaf} = {}", l.default);
            (!doc.contains(&line)).then(|| format!("{} (want `{line}` in doc/zeke.txt)", l.key))
        })
        .collect();
    // and wherever the help file says "`key` … default N", N is the default
    let stale: Vec<String> = zeke::config::limits::LIMITS
        .iter()
        .flat_map(|l| {
            let leaf = format!("`{}`", l.key.rsplit('.').next().unwrap());
            doc.lines()
                .filter(move |line| line.contains(&leaf))
                .filter_map(move |line| {
                    let n: String = line
                        .split("default ")
                        .nth(1)?
                        .chars()
                        .take_while(|c| c.is_ascii_digit())
                        .collect();
                    (!n.is_empty() && n != l.default.to_string())
                        .then(|| format!("{}: {line:?} (default is {})", l.key, l.default))
                })
        })
        .collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "undocumented or stale defaults: {missing:#?} {stale:#?}"
    );
}
