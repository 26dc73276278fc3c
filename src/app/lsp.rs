//! The process's language servers: one per (project root, language), started on first use by an
//! `lsp_*` tool (after the gate allowed it), started again when it exited or crashed, shut down
//! when the process ends ([`shutdown_all`]). Shared by every surface of the process: `zeke mcp`'s
//! calls and the chat agent's use the same servers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use crate::config::{LspConfig, LspServerConfig};
use crate::lsp::{Client, Launch, LspError};

/// One (root, language) slot: its client, when one was started.
#[derive(Default)]
struct Slot {
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
}

#[derive(Default)]
pub struct Pool {
    slots: std::sync::Mutex<HashMap<(PathBuf, String), Arc<Slot>>>,
}

/// The process's pool.
pub static POOL: LazyLock<Pool> = LazyLock::new(Pool::default);

/// How a server came to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// It was running already.
    Running,
    /// Started now (the first use in this root).
    Now,
    /// Started again: the one before had exited.
    Again,
}

impl Pool {
    fn slot(&self, root: &Path, language: &str) -> Arc<Slot> {
        let mut m = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        m.entry((root.to_path_buf(), language.to_string()))
            .or_default()
            .clone()
    }

    /// The running server of `server.language` for `root`; when none runs (or the last one
    /// exited) `allow` is awaited first — the gate for starting a program — then it is started
    /// and initialized. Two callers at once start it once.
    pub async fn client<F>(
        &self,
        root: &Path,
        server: &LspServerConfig,
        cfg: &LspConfig,
        allow: F,
    ) -> Result<(Arc<Client>, Started), StartError>
    where
        F: std::future::Future<Output = Result<(), crate::app::tools::ToolError>>,
    {
        let slot = self.slot(root, &server.language);
        let mut held = slot.client.lock().await;
        let again = match held.as_ref() {
            Some(c) if c.alive() => return Ok((c.clone(), Started::Running)),
            Some(c) => {
                tracing::warn!(server = %c.name, root = %root.display(), "language server exited; starting it again");
                true
            }
            None => false,
        };
        *held = None;
        allow.await.map_err(StartError::Refused)?;
        let launch = Launch {
            language: server.language.clone(),
            command: server.command.clone(),
            args: server.args.clone(),
        };
        let client = Arc::new(
            Client::start(&launch, root, cfg.start_timeout)
                .await
                .map_err(StartError::Lsp)?,
        );
        tracing::info!(server = %client.name, root = %root.display(), pid = ?client.pid(), "language server started");
        *held = Some(client.clone());
        Ok((client, if again { Started::Again } else { Started::Now }))
    }

    /// The servers running for `root`, by language.
    pub fn running(&self, root: &Path) -> Vec<(String, Arc<Client>)> {
        let slots: Vec<((PathBuf, String), Arc<Slot>)> = (self.slots.lock())
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|((r, _), _)| r == root)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        slots
            .into_iter()
            .filter_map(|((_, lang), s)| {
                let c = s.client.try_lock().ok()?.clone()?;
                c.alive().then_some((lang, c))
            })
            .collect()
    }

    /// Every running server: `shutdown` + `exit` (each within a second), then they are dropped
    /// (their process groups killed).
    pub async fn shutdown_all(&self) {
        let slots: Vec<Arc<Slot>> = (self.slots.lock())
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, v)| v)
            .collect();
        for s in slots {
            if let Some(c) = s.client.lock().await.take() {
                c.shutdown(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Why no server answered.
#[derive(Debug)]
pub enum StartError {
    /// The gate said no (or the user did).
    Refused(crate::app::tools::ToolError),
    Lsp(LspError),
}

/// Shuts down every language server of the process (the MCP server's end, the editor's exit).
pub async fn shutdown_all() {
    POOL.shutdown_all().await;
}

/// `command --version`'s first line, for `zeke doctor` and `:checkhealth` (`None`: not found or
/// it would not say).
pub async fn version_of(command: &str) -> Option<String> {
    let out = crate::sys::run(command, &["--version"], None, Duration::from_secs(5))
        .await
        .ok()?;
    let text = if out.stdout.trim().is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    text.lines()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
}

/// One configured language server as `zeke doctor` and `:checkhealth` list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The languages it serves (`c, cpp`).
    pub languages: Vec<String>,
    pub command: String,
    /// Where it was found (`None`: not on `$PATH`).
    pub path: Option<PathBuf>,
    /// Its `--version` line.
    pub version: Option<String>,
}

/// The enabled servers of `cfg`, one row per command, with where they are and their versions
/// (asked concurrently).
pub async fn found(cfg: &LspConfig) -> Vec<Found> {
    let mut rows: Vec<Found> = Vec::new();
    for s in cfg.servers.values().filter(|s| s.enabled) {
        match rows.iter_mut().find(|r| r.command == s.command) {
            Some(r) => r.languages.push(s.language.clone()),
            None => rows.push(Found {
                languages: vec![s.language.clone()],
                command: s.command.clone(),
                path: crate::sys::resolve(&s.command).ok().filter(|p| p.is_file()),
                version: None,
            }),
        }
    }
    let versions = futures_util::future::join_all(rows.iter().map(|r| async {
        match &r.path {
            Some(_) => version_of(&r.command).await,
            None => None,
        }
    }))
    .await;
    for (r, v) in rows.iter_mut().zip(versions) {
        r.version = v;
    }
    rows
}

/// The language whose marker file `root` holds (Cargo.toml → rust, go.mod → go, …).
pub fn language_of_root(root: &Path) -> Option<&'static str> {
    [
        ("Cargo.toml", "rust"),
        ("go.mod", "go"),
        ("pyproject.toml", "python"),
        ("setup.py", "python"),
        ("tsconfig.json", "typescript"),
        ("package.json", "javascript"),
        ("compile_commands.json", "cpp"),
        ("CMakeLists.txt", "cpp"),
    ]
    .into_iter()
    .find(|(f, _)| root.join(f).exists())
    .map(|(_, l)| l)
}

/// Whether the `lsp_*` tools can answer in `root`: an enabled server found on PATH whose
/// language the root's marker files name, or whose files lie at the top of the root or of its
/// `src/` (the chat agent is offered the tools only then: their schemas cost prompt tokens).
pub fn available(root: &Path, cfg: &LspConfig) -> bool {
    let found = |s: &&LspServerConfig| {
        s.enabled && crate::sys::resolve(&s.command).is_ok_and(|p| p.is_file())
    };
    if let Some(l) = language_of_root(root)
        && cfg.servers.get(l).as_ref().is_some_and(found)
    {
        return true;
    }
    let files = [root.to_path_buf(), root.join("src")]
        .into_iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .flatten()
        .take(500)
        .map(|e| e.path());
    files.filter_map(|p| cfg.server_for(&p)).any(|s| found(&s))
}
