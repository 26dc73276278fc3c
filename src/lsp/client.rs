//! One running language server, spoken to over its pipes: the JSON-RPC transport is `async-lsp`'s
//! main loop (Content-Length framing, request ids, the server's own requests answered by a
//! router), the typed requests are `lsp-types`'. This file adds what a tool needs on top:
//! start and `initialize` with real client capabilities, the server's progress (`$/progress`
//! work-done tokens, and rust-analyzer's `experimental/serverStatus`) to tell "ready" from
//! "still indexing", documents kept in sync with the disk (`didOpen` / `didChange` / `didSave`,
//! full text, versioned), and the diagnostics it publishes, per document and version.
//!
//! Invariants: a request never waits on a fixed sleep — it waits for the server to become
//! quiescent (or gives up with [`LspError::Indexing`] and what the server is doing); a document
//! is re-sent when the file on disk changed since it was last sent (by a tool, the agent, or
//! another program); the process group is killed when the client is dropped.

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_lsp::router::Router;
use async_lsp::{LanguageServer, ServerSocket};
use lsp_types::notification::{self as note, Notification};
use lsp_types::request::{self as req, Request};
use lsp_types::{
    ClientCapabilities, Diagnostic, InitializeParams, NumberOrString, ProgressParamsValue,
    PublishDiagnosticsParams, ServerCapabilities, Url, WorkDoneProgress, WorkspaceFolder,
};
use serde_json::{Value, json};
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

use super::position::Encoding;

/// Why a language-server call did not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LspError {
    /// The server could not be started or initialized.
    #[error("{0}")]
    Start(String),
    /// The server is still working (indexing, loading the workspace) after the wait.
    #[error("still indexing ({server}: {doing}); retry in {retry_s} s")]
    Indexing {
        server: String,
        doing: String,
        retry_s: u64,
    },
    /// The server answered with an error, or the request is malformed.
    #[error("{0}")]
    Server(String),
    /// The server exited (it is started again on the next call).
    #[error("the language server {0} exited; it is started again on the next call")]
    Exited(String),
}

/// What the server publishes, shared with the router's handlers.
#[derive(Default)]
struct State {
    /// Work-done progress in flight: token → "title: message (n %)".
    progress: BTreeMap<String, String>,
    /// rust-analyzer's `experimental/serverStatus` `quiescent` (`None`: never sent).
    quiescent: Option<bool>,
    /// When the last progress ended or began (the server is settling before that plus a moment).
    last_activity: Option<Instant>,
    /// Published diagnostics by document: (version, diagnostics, sequence number of the publish).
    diagnostics: HashMap<Url, (Option<i32>, Vec<Diagnostic>, u64)>,
    publishes: u64,
    /// When a changed document was last saved to the server (checks such as `cargo check` start
    /// shortly after a save: the server counts as busy for a moment).
    saved_at: Option<Instant>,
    exited: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: tokio::sync::watch::Sender<u64>,
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()));
        self.changed.send_modify(|n| *n += 1);
    }

    fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A document as last sent: its version and the disk's (length, mtime) then.
struct Doc {
    version: i32,
    stamp: (u64, Option<std::time::SystemTime>),
}

/// How to start a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The LSP language id of its documents (`rust`, `python`, …).
    pub language: String,
    pub command: String,
    pub args: Vec<String>,
}

/// A running, initialized language server for one project root.
pub struct Client {
    server: ServerSocket,
    shared: Arc<Shared>,
    process: crate::sys::Piped,
    /// The server's name and version from `initialize` (else the command).
    pub name: String,
    pub encoding: Encoding,
    pub capabilities: ServerCapabilities,
    pub root: PathBuf,
    language: String,
    docs: tokio::sync::Mutex<HashMap<PathBuf, Doc>>,
    started: Instant,
    /// Whether the server reports its status (rust-analyzer): then only that says "ready".
    reports_status: bool,
}

fn token(t: &NumberOrString) -> String {
    match t {
        NumberOrString::Number(n) => n.to_string(),
        NumberOrString::String(s) => s.clone(),
    }
}

/// The capabilities Zeke's tools use, declared as a client that supports them.
fn client_capabilities() -> ClientCapabilities {
    serde_json::from_value(json!({
        "general": {"positionEncodings": ["utf-8", "utf-16"]},
        "window": {"workDoneProgress": true},
        "workspace": {
            "workspaceFolders": true,
            "configuration": true,
            "symbol": {"dynamicRegistration": false},
            "workspaceEdit": {"documentChanges": true, "resourceOperations": ["create", "rename", "delete"]},
        },
        "textDocument": {
            "synchronization": {"didSave": true, "dynamicRegistration": false},
            "definition": {"linkSupport": true},
            "typeDefinition": {"linkSupport": true},
            "implementation": {"linkSupport": true},
            "references": {},
            "hover": {"contentFormat": ["markdown", "plaintext"]},
            "documentSymbol": {"hierarchicalDocumentSymbolSupport": true},
            "callHierarchy": {},
            "codeAction": {"codeActionLiteralSupport": {"codeActionKind": {"valueSet": [
                "", "quickfix", "refactor", "refactor.extract", "refactor.inline", "refactor.rewrite", "source"]}},
                "resolveSupport": {"properties": ["edit"]}, "dataSupport": true},
            "rename": {"prepareSupport": true},
            "publishDiagnostics": {"versionSupport": true, "relatedInformation": true},
        },
        // rust-analyzer: tell us when it is quiescent (its indexing has settled)
        "experimental": {"serverStatusNotification": true},
    }))
    .expect("valid client capabilities")
}

impl Client {
    /// Starts `launch` for `root` (through `sys`, its own process group, the `*_API_KEY`
    /// variables removed) and initializes it, within `timeout`.
    pub async fn start(
        launch: &Launch,
        root: &Path,
        timeout: Duration,
    ) -> Result<Client, LspError> {
        let spawned = crate::sys::spawn_piped(
            &launch.command,
            &launch.args,
            &[],
            |k| k.to_string_lossy().ends_with("_API_KEY"),
            Some(root),
        )
        .map_err(|e| LspError::Start(format!("cannot start {}: {e}", launch.command)))?;
        let (tx, _) = tokio::sync::watch::channel(0u64);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: tx,
        });
        let for_router = shared.clone();
        let (mainloop, server) = async_lsp::MainLoop::new_client(move |_server| {
            let mut r = Router::new(for_router);
            r.notification::<note::Progress>(|s, p| {
                let t = token(&p.token);
                s.update(|st| {
                    st.last_activity = Some(Instant::now());
                    match p.value {
                        ProgressParamsValue::WorkDone(WorkDoneProgress::Begin(b)) => {
                            st.progress.insert(t, b.title);
                        }
                        ProgressParamsValue::WorkDone(WorkDoneProgress::Report(r)) => {
                            if let Some(e) = st.progress.get_mut(&t) {
                                let title = e.split(':').next().unwrap_or("").to_string();
                                *e = match (r.message, r.percentage) {
                                    (Some(m), Some(p)) => format!("{title}: {m} ({p} %)"),
                                    (Some(m), None) => format!("{title}: {m}"),
                                    (None, Some(p)) => format!("{title} ({p} %)"),
                                    (None, None) => title,
                                };
                            }
                        }
                        ProgressParamsValue::WorkDone(WorkDoneProgress::End(_)) => {
                            st.progress.remove(&t);
                        }
                    }
                });
                ControlFlow::Continue(())
            })
            .notification::<note::PublishDiagnostics>(|s, p: PublishDiagnosticsParams| {
                s.update(|st| {
                    st.publishes += 1;
                    let n = st.publishes;
                    st.diagnostics.insert(p.uri, (p.version, p.diagnostics, n));
                });
                ControlFlow::Continue(())
            })
            .notification::<ServerStatus>(|s, p| {
                s.update(|st| {
                    st.quiescent = Some(p.quiescent);
                    st.last_activity = Some(Instant::now());
                });
                ControlFlow::Continue(())
            })
            .notification::<note::ShowMessage>(|_, p| {
                tracing::info!(message = %p.message, "language server says");
                ControlFlow::Continue(())
            })
            .notification::<note::LogMessage>(|_, p| {
                tracing::debug!(message = %p.message, "language server log");
                ControlFlow::Continue(())
            })
            .unhandled_notification(|_, n| {
                tracing::debug!(method = %n.method, "language server notification ignored");
                ControlFlow::Continue(())
            })
            .request::<req::WorkDoneProgressCreate, _>(|_, _| async { Ok(()) })
            .request::<req::RegisterCapability, _>(|_, _| async { Ok(()) })
            .request::<req::UnregisterCapability, _>(|_, _| async { Ok(()) })
            .request::<req::WorkspaceConfiguration, _>(|_, p| {
                let n = p.items.len();
                async move { Ok(vec![Value::Null; n]) }
            })
            .request::<req::WorkspaceFoldersRequest, _>(|_, _| async { Ok(None) })
            .request::<req::ShowMessageRequest, _>(|_, _| async { Ok(None) })
            // edits reach files only as reviewed patches: a server never applies one itself
            .request::<req::ApplyWorkspaceEdit, _>(|_, _| async {
                Ok(lsp_types::ApplyWorkspaceEditResponse {
                    applied: false,
                    failure_reason: Some("Zeke applies edits only as reviewed patches".into()),
                    failed_change: None,
                })
            });
            r
        });
        let stderr = spawned.stderr;
        let name = launch.command.clone();
        tokio::spawn(async move {
            use tokio::io::AsyncBufReadExt;
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                tracing::debug!(server = %name, "{l}");
            }
        });
        let on_exit = shared.clone();
        let (stdout, stdin) = (spawned.stdout, spawned.stdin);
        // the loop holds a socket of its own: it ends when the server's stdout does (the process
        // exited or was killed), never because the client was dropped first
        let keep = server.clone();
        tokio::spawn(async move {
            let _keep = keep;
            let r = mainloop
                .run_buffered(stdout.compat(), stdin.compat_write())
                .await;
            if let Err(e) = r {
                tracing::debug!(error = %e, "language server main loop ended");
            }
            on_exit.update(|st| st.exited = true);
        });
        let root_url = Url::from_directory_path(root)
            .map_err(|()| LspError::Start(format!("not an absolute path: {}", root.display())))?;
        let mut server = server;
        #[allow(deprecated)] // root_uri: older servers read it
        let init = InitializeParams {
            process_id: Some(std::process::id()),
            root_uri: Some(root_url.clone()),
            capabilities: client_capabilities(),
            workspace_folders: Some(vec![WorkspaceFolder {
                uri: root_url,
                name: root
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "root".into()),
            }]),
            client_info: Some(lsp_types::ClientInfo {
                name: "zeke".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            ..InitializeParams::default()
        };
        let answer = tokio::time::timeout(timeout, server.initialize(init))
            .await
            .map_err(|_| {
                LspError::Start(format!(
                    "{} did not answer initialize within {} s",
                    launch.command,
                    timeout.as_secs()
                ))
            })?
            .map_err(|e| {
                LspError::Start(format!("{} failed to initialize: {e}", launch.command))
            })?;
        server
            .initialized(lsp_types::InitializedParams {})
            .map_err(|e| LspError::Start(format!("{}: {e}", launch.command)))?;
        let name = answer
            .server_info
            .map(|i| match i.version {
                Some(v) => format!("{} {v}", i.name),
                None => i.name,
            })
            .unwrap_or_else(|| launch.command.clone());
        let reports_status = name.starts_with("rust-analyzer");
        Ok(Client {
            server,
            shared,
            process: spawned.process,
            name,
            encoding: Encoding::from_server(answer.capabilities.position_encoding.as_ref()),
            capabilities: answer.capabilities,
            root: root.to_path_buf(),
            language: launch.language.clone(),
            docs: tokio::sync::Mutex::new(HashMap::new()),
            started: Instant::now(),
            reports_status,
        })
    }

    /// Whether the server is still running.
    pub fn alive(&self) -> bool {
        !self.shared.read(|s| s.exited) && !self.process.exited()
    }

    /// The process id of the server.
    pub fn pid(&self) -> Option<u32> {
        self.process.id()
    }

    /// What the server is busy with (empty: nothing reported).
    pub fn busy(&self) -> Vec<String> {
        self.shared.read(|s| s.progress.values().cloned().collect())
    }

    /// Whether the server has settled: no work-done progress in flight; a server that reports
    /// its status (rust-analyzer's `experimental/serverStatus`) said it is quiescent, one that
    /// does not has had a moment since it started; nothing began or ended in the last 50 ms, and
    /// nothing was saved to it in the last 250 ms (the check a save starts has begun by then).
    fn settled(&self) -> bool {
        self.shared.read(|s| {
            let quiet =
                |t: Option<Instant>, ms| t.is_none_or(|t| t.elapsed() > Duration::from_millis(ms));
            s.progress.is_empty()
                && match s.quiescent {
                    Some(q) => q,
                    None => {
                        !self.reports_status && self.started.elapsed() > Duration::from_millis(300)
                    }
                }
                && quiet(s.last_activity, 50)
                && quiet(s.saved_at, 250)
        })
    }

    /// Waits until the server has settled, up to `timeout`; `Err(Indexing)` says what it is
    /// still doing then.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), LspError> {
        let deadline = Instant::now() + timeout;
        let mut rx = self.shared.changed.subscribe();
        loop {
            if !self.alive() {
                return Err(LspError::Exited(self.name.clone()));
            }
            if self.settled() {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let busy = self.busy();
                return Err(LspError::Indexing {
                    server: self.name.clone(),
                    doing: if busy.is_empty() {
                        "loading the workspace".into()
                    } else {
                        busy.join("; ")
                    },
                    retry_s: 3,
                });
            }
            // a change of state, or a short tick for the "last moment" rule
            let _ = tokio::time::timeout(left.min(Duration::from_millis(60)), rx.changed()).await;
        }
    }

    /// Makes the server see `path` as it is on disk now: `didOpen` the first time, `didChange`
    /// (full text) + `didSave` when the file changed since it was last sent. Returns its URL,
    /// text and version.
    pub async fn sync(&self, path: &Path) -> Result<(Url, String, i32), LspError> {
        let url = Url::from_file_path(path)
            .map_err(|()| LspError::Server(format!("not an absolute path: {}", path.display())))?;
        let meta = std::fs::metadata(path)
            .map_err(|e| LspError::Server(format!("{}: {e}", path.display())))?;
        let stamp = (meta.len(), meta.modified().ok());
        let text = std::fs::read_to_string(path)
            .map_err(|e| LspError::Server(format!("{}: {e}", path.display())))?;
        let mut docs = self.docs.lock().await;
        let sent = |e: async_lsp::Error| LspError::Server(format!("{}: {e}", self.name));
        match docs.get_mut(path) {
            None => {
                self.server
                    .notify::<note::DidOpenTextDocument>(lsp_types::DidOpenTextDocumentParams {
                        text_document: lsp_types::TextDocumentItem {
                            uri: url.clone(),
                            language_id: self.language.clone(),
                            version: 1,
                            text: text.clone(),
                        },
                    })
                    .map_err(sent)?;
                docs.insert(path.to_path_buf(), Doc { version: 1, stamp });
                Ok((url, text, 1))
            }
            Some(d) if d.stamp != stamp => {
                d.version += 1;
                d.stamp = stamp;
                let version = d.version;
                self.server
                    .notify::<note::DidChangeTextDocument>(lsp_types::DidChangeTextDocumentParams {
                        text_document: lsp_types::VersionedTextDocumentIdentifier {
                            uri: url.clone(),
                            version,
                        },
                        content_changes: vec![lsp_types::TextDocumentContentChangeEvent {
                            range: None,
                            range_length: None,
                            text: text.clone(),
                        }],
                    })
                    .map_err(sent)?;
                self.server
                    .notify::<note::DidSaveTextDocument>(lsp_types::DidSaveTextDocumentParams {
                        text_document: lsp_types::TextDocumentIdentifier { uri: url.clone() },
                        text: None,
                    })
                    .map_err(sent)?;
                // the server is busy again from now on
                self.shared.update(|st| st.saved_at = Some(Instant::now()));
                Ok((url, text, version))
            }
            Some(d) => Ok((url, text, d.version)),
        }
    }

    /// Sends request `R`; a `ContentModified` answer (the server's state moved under it) is
    /// retried after the server settles again, a few times.
    pub async fn request<R: Request>(&self, params: R::Params) -> Result<R::Result, LspError>
    where
        R::Params: Clone,
    {
        for _ in 0..5 {
            match self.server.request::<R>(params.clone()).await {
                Ok(r) => return Ok(r),
                Err(async_lsp::Error::Response(e))
                    if e.code == async_lsp::ErrorCode::CONTENT_MODIFIED =>
                {
                    self.wait_ready(Duration::from_secs(5)).await?;
                }
                Err(async_lsp::Error::ServiceStopped) | Err(async_lsp::Error::Eof) => {
                    return Err(LspError::Exited(self.name.clone()));
                }
                Err(e) => {
                    return Err(LspError::Server(format!(
                        "{} ({}): {e}",
                        self.name,
                        R::METHOD
                    )));
                }
            }
        }
        Err(LspError::Server(format!(
            "{} kept answering \"content modified\" to {}",
            self.name,
            R::METHOD
        )))
    }

    /// The diagnostics of `url` once the server published them for `version` (or later) and
    /// settled, within `timeout`; what it published last when that passes (`fresh` false).
    pub async fn diagnostics(
        &self,
        url: &Url,
        version: i32,
        timeout: Duration,
    ) -> (Vec<Diagnostic>, bool) {
        let deadline = Instant::now() + timeout;
        let mut rx = self.shared.changed.subscribe();
        loop {
            let (have, fresh) = self.shared.read(|s| match s.diagnostics.get(url) {
                Some((v, d, _)) => (d.clone(), v.is_none_or(|v| v >= version)),
                None => (Vec::new(), false),
            });
            if fresh && self.settled() {
                return (have, true);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.alive() {
                return (have, false);
            }
            let _ = tokio::time::timeout(left.min(Duration::from_millis(60)), rx.changed()).await;
        }
    }

    /// Every document's latest published diagnostics (the workspace).
    pub fn all_diagnostics(&self) -> Vec<(Url, Vec<Diagnostic>)> {
        self.shared.read(|s| {
            let mut v: Vec<_> = (s.diagnostics.iter())
                .filter(|(_, (_, d, _))| !d.is_empty())
                .map(|(u, (_, d, _))| (u.clone(), d.clone()))
                .collect();
            v.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
            v
        })
    }

    /// `shutdown` then `exit`, within `timeout`; the process group is killed when the client
    /// is dropped anyway.
    pub async fn shutdown(&self, timeout: Duration) {
        let mut s = self.server.clone();
        if tokio::time::timeout(timeout, s.shutdown(())).await.is_ok() {
            let _ = s.exit(());
        }
    }
}

/// rust-analyzer's `experimental/serverStatus` notification.
enum ServerStatus {}

#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
struct ServerStatusParams {
    quiescent: bool,
}

impl Notification for ServerStatus {
    type Params = ServerStatusParams;
    const METHOD: &'static str = "experimental/serverStatus";
}
