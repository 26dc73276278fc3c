//! Source-tree checks of the architecture rules (README, "Architecture"): the one-way layering,
//! the pure core, the single process spawner, stdout only in the CLI, and file hygiene.

use std::path::{Path, PathBuf};

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

/// (file relative to src/, text without `#[cfg(test)]` modules)
fn sources() -> Vec<(String, String)> {
    rust_files(&src())
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(src())
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&p).unwrap();
            let code = match text.find("#[cfg(test)]\nmod tests") {
                Some(i) => text[..i].to_string(),
                None => text,
            };
            (rel, code)
        })
        .collect()
}

fn violations(pred: impl Fn(&str, &str) -> Option<String>) -> Vec<String> {
    let mut v = Vec::new();
    for (file, code) in sources() {
        for (n, line) in code.lines().enumerate() {
            let t = line.trim_start();
            if t.starts_with("//") {
                continue;
            }
            if let Some(why) = pred(&file, t) {
                v.push(format!("src/{file}:{}: {why}: {t}", n + 1));
            }
        }
    }
    v
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
        "rmpv",
        "nvim_rs",
        "crate::app",
        "crate::providers",
        "crate::nvim",
        "crate::config",
        "crate::sys",
    ];
    let v = violations(|file, line| {
        if !file.starts_with("core") {
            return None;
        }
        banned
            .iter()
            .find(|b| line.contains(*b))
            .map(|b| format!("core must not use {b}"))
    });
    assert!(v.is_empty(), "{}", v.join("\n"));
}

#[test]
fn only_sys_starts_processes() {
    let v = violations(|file, line| {
        (line.contains("Command::new") && file != "sys.rs")
            .then(|| "process started outside sys.rs".into())
    });
    assert!(v.is_empty(), "{}", v.join("\n"));
}

#[test]
fn stdout_only_in_the_cli() {
    let v = violations(|file, line| {
        let prints = ["print!(", "println!(", "dbg!(", "std::io::stdout()"]
            .iter()
            .any(|p| line.contains(p));
        let allowed = matches!(file, "main.rs" | "cmd.rs" | "cli.rs")
            || (file == "nvim.rs" && line.contains("tokio::io::stdout()"));
        (prints && !allowed).then(|| "stdout is the protocol outside the CLI".into())
    });
    assert!(v.is_empty(), "{}", v.join("\n"));
}

#[test]
fn layers_point_one_way() {
    // (module prefix, modules it must not import)
    let rules: &[(&str, &[&str])] = &[
        (
            "providers",
            &["crate::app", "crate::nvim", "crate::cmd", "crate::cli"],
        ),
        (
            "config",
            &[
                "crate::app",
                "crate::nvim",
                "crate::providers",
                "crate::cmd",
            ],
        ),
        (
            "app",
            &[
                "crate::nvim",
                "crate::cmd",
                "crate::cli",
                "rmpv",
                "nvim_rs",
                "crate::mcp",
                "rmcp",
            ],
        ),
        ("nvim", &["crate::cmd", "crate::cli", "crate::mcp"]),
        (
            "mcp",
            &["crate::nvim", "crate::cmd", "crate::cli", "rmpv", "nvim_rs"],
        ),
        (
            "workspace",
            &[
                "crate::app",
                "crate::nvim",
                "crate::mcp",
                "crate::cmd",
                "crate::cli",
                "crate::providers",
                "rmcp",
            ],
        ),
        (
            "git.rs",
            &[
                "crate::app",
                "crate::nvim",
                "crate::mcp",
                "crate::cmd",
                "crate::cli",
                "crate::providers",
                "rmcp",
            ],
        ),
        ("sys.rs", &["crate::"]),
    ];
    let v = violations(|file, line| {
        rules
            .iter()
            .filter(|(m, _)| file.starts_with(m))
            .find_map(|(m, banned)| {
                banned
                    .iter()
                    .find(|b| line.contains(*b))
                    .map(|b| format!("{m} must not use {b}"))
            })
    });
    assert!(v.is_empty(), "{}", v.join("\n"));
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
    let v = violations(|_, line| {
        (line.contains("todo!(") || line.contains("unimplemented!(")).then(|| "unfinished".into())
    });
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
