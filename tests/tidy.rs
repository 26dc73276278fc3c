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
