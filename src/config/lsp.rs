//! `[lsp]`: the language servers behind the `lsp_*` tools. Each language has a built-in server
//! found on `$PATH` (rust-analyzer, clangd, pyright-langserver, typescript-language-server,
//! gopls, lua-language-server); `[lsp.servers.LANG]` changes its `command` / `args`, or turns it
//! off (`enabled = false`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// One language's server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LspServerConfig {
    /// The language key (`rust`, `c`, `python`, …).
    pub language: String,
    /// The program: a bare name found on an absolute `$PATH` entry, or an absolute path.
    pub command: String,
    pub args: Vec<String>,
    pub enabled: bool,
    /// File name extensions (without the dot) of this language's documents.
    pub extensions: Vec<String>,
}

/// `[lsp]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LspConfig {
    /// How long a tool call waits for its server to finish indexing before it answers
    /// "still indexing, retry".
    pub wait: Duration,
    /// The time limit of starting and initializing a server.
    pub start_timeout: Duration,
    /// By language key.
    pub servers: BTreeMap<String, LspServerConfig>,
}

/// (language, command, args, extensions) of the built-in servers.
const DEFAULTS: &[(&str, &str, &[&str], &[&str])] = &[
    ("rust", "rust-analyzer", &[], &["rs"]),
    ("c", "clangd", &[], &["c", "h"]),
    (
        "cpp",
        "clangd",
        &[],
        &["cc", "cpp", "cxx", "hpp", "hh", "hxx"],
    ),
    ("python", "pyright-langserver", &["--stdio"], &["py", "pyi"]),
    (
        "typescript",
        "typescript-language-server",
        &["--stdio"],
        &["ts", "tsx", "mts", "cts"],
    ),
    (
        "javascript",
        "typescript-language-server",
        &["--stdio"],
        &["js", "jsx", "mjs", "cjs"],
    ),
    ("go", "gopls", &[], &["go"]),
    ("lua", "lua-language-server", &[], &["lua"]),
];

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLsp {
    pub(super) wait_ms: Option<u64>,
    pub(super) start_timeout_ms: Option<u64>,
    #[serde(default)]
    pub(super) servers: BTreeMap<String, RawLspServer>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLspServer {
    pub(super) command: Option<String>,
    pub(super) args: Option<Vec<String>>,
    pub(super) enabled: Option<bool>,
    pub(super) extensions: Option<Vec<String>>,
}

impl LspConfig {
    /// The server of the file `path` (by its extension), when one is enabled.
    pub fn server_for(&self, path: &std::path::Path) -> Option<&LspServerConfig> {
        let ext = path.extension()?.to_str()?;
        self.servers
            .values()
            .find(|s| s.enabled && s.extensions.iter().any(|e| e == ext))
    }
}

pub(super) fn build(raw: RawLsp, problems: &mut Vec<String>) -> LspConfig {
    let mut servers: BTreeMap<String, LspServerConfig> = DEFAULTS
        .iter()
        .map(|(lang, cmd, args, exts)| {
            let s = LspServerConfig {
                language: (*lang).into(),
                command: (*cmd).into(),
                args: args.iter().map(|a| (*a).into()).collect(),
                enabled: true,
                extensions: exts.iter().map(|e| (*e).into()).collect(),
            };
            ((*lang).to_string(), s)
        })
        .collect();
    for (lang, r) in raw.servers {
        let known = servers.contains_key(&lang);
        if !known && r.command.is_none() {
            problems.push(format!(
                "lsp.servers.{lang}: a language without a built-in server needs `command` (and `extensions`)"
            ));
            continue;
        }
        let s = servers
            .entry(lang.clone())
            .or_insert_with(|| LspServerConfig {
                language: lang.clone(),
                command: String::new(),
                args: Vec::new(),
                enabled: true,
                extensions: Vec::new(),
            });
        if let Some(c) = r.command {
            if c.trim().is_empty() {
                problems.push(format!("lsp.servers.{lang}.command: must not be empty"));
            }
            s.command = c;
        }
        if let Some(a) = r.args {
            s.args = a;
        }
        if let Some(e) = r.enabled {
            s.enabled = e;
        }
        if let Some(x) = r.extensions {
            s.extensions = x
                .into_iter()
                .map(|e| e.trim_start_matches('.').to_string())
                .collect();
        }
    }
    LspConfig {
        wait: Duration::from_millis(super::limited(problems, "lsp.wait_ms", raw.wait_ms)),
        start_timeout: Duration::from_millis(super::limited(
            problems,
            "lsp.start_timeout_ms",
            raw.start_timeout_ms,
        )),
        servers,
    }
}
