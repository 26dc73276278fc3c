//! The MCP surface: `zeke mcp`, a stdio MCP server (rmcp) offering the tool layer
//! ([`crate::app::tools`]: the reference filesystem and git tools) confined to its roots and gated
//! by the one policy gate ([`crate::app::gate`]).
//!
//! This module is protocol mapping only: `tools/list` from the catalog ([`tools`]), `tools/call` →
//! the roots in force (client roots narrow the configured ones) → [`crate::app::tools::run`] with
//! an [`asker::McpAsker`] (elicitation or an input-required result when the policy says prompt) →
//! the result as content blocks and `structuredContent`, long text paged ([`output`]).
//!
//! Invariants: stdout carries only protocol (rmcp's stdio transport; logs go to stderr or a file);
//! the server exits when stdin closes; every call is audited (by the tool layer), including
//! refusals and cancellations; a refusal is an `isError` result naming its rule, never a protocol
//! error; client roots only narrow the configured roots. Requests run concurrently (rmcp spawns
//! one task per request) and `notifications/cancelled` cancels the request's token.

pub mod asker;
pub mod output;
pub mod questions;
pub mod tools;
pub mod wire;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use base64::Engine;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    InitializeResult, ListToolsResult, PaginatedRequestParams, ProgressNotificationParam,
    ResourceContents, ServerCapabilities,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::{Map, Value, json};

use crate::app::audit::{self, Audit};
use crate::app::gate::Gate;
use crate::app::grants::GrantStore;
use crate::app::tools::{Invocation, Output, Progress, ToolError};
use crate::app::tools::{Protected, Roots};
use crate::config::Config;

/// State shared by every request of one server.
pub struct Shared {
    configured: Roots,
    /// The files no tool may change, found while the handshake runs
    /// ([`crate::app::protected::discover`]: it starts git to read config includes); every tool
    /// call waits for it, so none runs unprotected.
    protected: tokio::sync::OnceCell<Arc<Protected>>,
    discovering: std::sync::Mutex<Option<tokio::task::JoinHandle<Protected>>>,
    config_path: Option<PathBuf>,
    /// The client's roots intersected with the configured ones, once fetched.
    narrowed: RwLock<Option<Roots>>,
    first_fetch: tokio::sync::OnceCell<()>,
    /// The policy, the grant store shared with every Zeke process, and the audit log.
    pub gate: Arc<Gate>,
    pub max_output_chars: usize,
    pub tools_page_size: usize,
    pub prompt_timeout: std::time::Duration,
    /// Settings of the tools (`[fetch]`).
    pub settings: crate::app::tools::Settings,
    /// The policy questions asked through `InputRequiredResult`, and the states carrying answers.
    pub questions: questions::Questions,
}

/// The rmcp server handler.
#[derive(Clone)]
pub struct Server {
    shared: Arc<Shared>,
}

impl Server {
    /// A server for `roots` (command line) plus `[mcp] roots` from `config`, whose tools never
    /// change the files `discovering` finds ([`crate::app::protected::discover`]; `None`: found on
    /// the first tool call); grants come from (and go to) `grants`, records to the audit log at
    /// `audit_log`.
    pub fn new(
        config: &Config,
        roots: &[PathBuf],
        discovering: Option<tokio::task::JoinHandle<Protected>>,
        grants: GrantStore,
        audit_log: PathBuf,
    ) -> Result<Server, String> {
        let mut all = config.mcp.roots.clone();
        all.extend_from_slice(roots);
        let configured = Roots::new(&all)?;
        let config_path = config.source.clone().or_else(crate::config::default_path);
        let shared = Shared {
            configured,
            protected: tokio::sync::OnceCell::new(),
            discovering: std::sync::Mutex::new(discovering),
            config_path,
            narrowed: RwLock::new(None),
            first_fetch: tokio::sync::OnceCell::new(),
            gate: Arc::new(Gate::new(
                config.policy.clone(),
                grants,
                Audit::new(audit_log),
                config.source.clone().or_else(crate::config::default_path),
            )),
            max_output_chars: config.mcp.max_output_chars,
            tools_page_size: config.mcp.tools_page_size,
            prompt_timeout: config.mcp.prompt_timeout,
            questions: questions::Questions::new(config.mcp.prompt_timeout),
            settings: crate::app::tools::Settings::from_config(config),
        };
        Ok(Server {
            shared: Arc::new(shared),
        })
    }

    /// The protected files, once found. A discovery task that failed is run again here: never
    /// fail open.
    async fn protected(&self) -> Arc<Protected> {
        self.shared
            .protected
            .get_or_init(|| async {
                let task = self
                    .shared
                    .discovering
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take();
                let found = match task {
                    Some(t) => t.await.ok(),
                    None => None,
                };
                let p = match found {
                    Some(p) => p,
                    None => {
                        crate::app::protected::discover(
                            self.shared.config_path.as_deref(),
                            self.shared.gate.audit().path(),
                        )
                        .await
                    }
                };
                for (path, kind) in p.paths() {
                    tracing::debug!(path = %path.display(), ?kind, "protected");
                }
                Arc::new(p)
            })
            .await
            .clone()
    }

    /// The roots in force for a request: the configured ones, narrowed by the client's roots when
    /// the client declared the roots capability (fetched once, before the first tool call), with
    /// the protected files.
    async fn roots(&self, peer: &rmcp::Peer<RoleServer>) -> Roots {
        let protected = self.protected().await;
        let declared = peer
            .peer_info()
            .is_some_and(|i| i.capabilities.roots.is_some());
        if declared {
            self.shared
                .first_fetch
                .get_or_init(|| self.refresh_roots(peer.clone()))
                .await;
        }
        self.shared
            .narrowed
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| self.shared.configured.clone())
            .with_shared_protected(protected)
    }

    /// Asks the client for its roots and narrows the configured roots to them. A failed request
    /// leaves the roots as they were; an empty list (or one with no existing `file://` directory)
    /// means "no opinion" and keeps the configured roots. Roots that do not overlap the configured
    /// ones leave nothing allowed.
    #[allow(deprecated)]
    async fn refresh_roots(&self, peer: rmcp::Peer<RoleServer>) {
        match tokio::time::timeout(std::time::Duration::from_secs(10), peer.list_roots()).await {
            Ok(Ok(list)) => {
                let dirs: Vec<PathBuf> = list
                    .roots
                    .iter()
                    .filter_map(|r| {
                        url::Url::parse(&r.uri)
                            .ok()
                            .filter(|u| u.scheme() == "file")
                            .and_then(|u| u.to_file_path().ok())
                    })
                    .filter_map(|p| std::fs::canonicalize(p).ok())
                    .collect();
                if dirs.is_empty() {
                    // an empty list (the Inspector sends one) says nothing: keep the configured roots
                    tracing::info!("client offered no usable roots; keeping the configured roots");
                    *self
                        .shared
                        .narrowed
                        .write()
                        .unwrap_or_else(|e| e.into_inner()) = None;
                    return;
                }
                let narrowed = self.shared.configured.narrowed(&dirs);
                tracing::info!(
                    "client roots {:?} narrow the allowed roots to [{}]",
                    dirs,
                    narrowed.list()
                );
                *self
                    .shared
                    .narrowed
                    .write()
                    .unwrap_or_else(|e| e.into_inner()) = Some(narrowed);
            }
            Ok(Err(e)) => tracing::warn!("roots/list failed: {e}; keeping the configured roots"),
            Err(_) => tracing::warn!("roots/list timed out; keeping the configured roots"),
        }
    }

    async fn call(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let mut args = request.arguments.unwrap_or_default();
        let page = match args.remove("page") {
            None | Some(Value::Null) => Ok(1),
            Some(v) => v
                .as_u64()
                .filter(|p| (1..=u32::MAX as u64).contains(p))
                .map(|p| p as u32)
                .ok_or_else(|| format!("page must be a positive integer (got {v})")),
        };
        let roots = self.roots(&context.peer).await;
        let client = context.peer.peer_info().map(|i| i.client_info.name.clone());
        let answers = self
            .shared
            .questions
            .accept(request.request_state.as_deref(), request.input_responses);
        // a later page is the same call again: for a tool that is not idempotent (run_command)
        // that would do it twice
        let reruns = matches!(page, Ok(p) if p > 1)
            && tools::find(&request.name).is_some_and(|s| matches!(s.writes, Some((_, false))));
        let refused = match (&page, &answers) {
            (_, Err(forged)) => Some(ToolError::Denied(format!(
                "refused (rule policy-forged): {forged}; answer only the questions Zeke asks, in \
                 the call it asked them for"
            ))),
            (Err(e), _) => Some(ToolError::Failed(e.clone())),
            (Ok(p), _) if reruns => Some(ToolError::Failed(format!(
                "page {p} of {} would run it again; its output was cut to fit one page \
                 (redirect it to a file and read that file in pages)",
                request.name
            ))),
            _ => None,
        };
        let asker = asker::McpAsker::new(
            &context,
            answers.unwrap_or_default(),
            &self.shared.questions,
            self.shared.prompt_timeout,
        );
        let result = crate::app::tools::run(
            &self.shared.gate,
            Invocation {
                name: &request.name,
                args,
                roots,
                ct: context.ct.clone(),
                progress: progress(&context),
                asker: &asker,
                settings: &self.shared.settings,
                client: client.as_deref(),
                refused,
            },
        )
        .await;
        match result {
            Ok(out) => {
                let spec = tools::find(&request.name);
                let structured = spec.is_some_and(|s| s.output.is_some());
                Ok(self.to_result(&request.name, out, structured, page.unwrap_or(1)))
            }
            Err(e @ ToolError::Unknown(_)) => Err(ErrorData::invalid_params(e.to_string(), None)),
            Err(ToolError::NeedsInput) => match asker.input_required() {
                Some(r) => Ok(CallToolResponse::from(r)),
                None => Ok(error_result("internal error: a question went missing")),
            },
            Err(e) => Ok(error_result(&e.to_string())),
        }
    }

    /// A tool's output as an MCP result: media as an image, audio or resource block; text paged
    /// (page `page`), with `structuredContent` = `{content, …fields}` when the tool has an output
    /// schema — the fields only when the whole text fits in one page, else `page` / `pages`.
    fn to_result(&self, tool: &str, out: Output, structured: bool, page: u32) -> CallToolResponse {
        if let Some(m) = out.media {
            let data = base64::engine::general_purpose::STANDARD.encode(&m.bytes);
            let block = if m.mime.starts_with("image/") {
                ContentBlock::image(data, m.mime)
            } else if m.mime.starts_with("audio/") {
                ContentBlock::audio(data, m.mime)
            } else {
                ContentBlock::resource(ResourceContents::blob(data, m.uri).with_mime_type(m.mime))
            };
            return CallToolResponse::from(CallToolResult::success(vec![block]));
        }
        let p = match output::page(&out.text, tool, page, self.shared.max_output_chars) {
            Ok(p) => p,
            Err(e) => return error_result(&e),
        };
        let mut fields = Map::new();
        fields.insert("content".into(), Value::String(p.text.clone()));
        if p.pages > 1 {
            fields.insert("page".into(), json!(p.page));
            fields.insert("pages".into(), json!(p.pages));
        } else {
            fields.extend(out.structured);
        }
        let mut r = CallToolResult::success(vec![ContentBlock::text(p.text)]);
        if structured {
            r.structured_content = Some(Value::Object(fields));
        }
        CallToolResponse::from(r)
    }
}

/// An `isError` result with `message`.
fn error_result(message: &str) -> CallToolResponse {
    CallToolResponse::from(CallToolResult::error(vec![ContentBlock::text(
        message.to_string(),
    )]))
}

/// Progress notifications for the request's progress token (none without one).
fn progress(ctx: &RequestContext<RoleServer>) -> Option<Progress> {
    let token = ctx.meta.get_progress_token()?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(&'static str, u64)>();
    let peer = ctx.peer.clone();
    tokio::spawn(async move {
        while let Some((what, n)) = rx.recv().await {
            let p = ProgressNotificationParam::new(token.clone(), n as f64)
                .with_message(format!("{what}: {n} entries"));
            let _ = peer.notify_progress(p).await;
        }
    });
    Some(Arc::new(move |what, n| {
        let _ = tx.send((what, n));
    }))
}

impl ServerHandler for Server {
    fn get_info(&self) -> InitializeResult {
        InitializeResult::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("zeke", env!("CARGO_PKG_VERSION")).with_title("Zeke MCP server"))
            .with_instructions(format!(
                "Filesystem, git and fetch tools; files confined to these roots: {}. Paths may be absolute or relative to the first root. Long outputs are paged: call again with \"page\": N.",
                self.shared.configured.list()
            ))
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let start = match request.and_then(|r| r.cursor) {
            None => 0,
            Some(c) => c
                .parse::<usize>()
                .ok()
                .filter(|&n| n < tools::TOOLS.len())
                .ok_or_else(|| ErrorData::invalid_params(format!("invalid cursor {c:?}"), None))?,
        };
        let end = (start + self.shared.tools_page_size).min(tools::TOOLS.len());
        let mut result = ListToolsResult::with_all_items(
            tools::TOOLS[start..end]
                .iter()
                .map(tools::to_tool)
                .collect(),
        );
        if end < tools::TOOLS.len() {
            result.next_cursor = Some(end.to_string());
        }
        Ok(result)
    }

    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        tools::find(name).map(tools::to_tool)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.call(request, context).await
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        let info = context.peer.peer_info();
        tracing::info!(
            client = info
                .as_ref()
                .map(|i| i.client_info.name.as_str())
                .unwrap_or("?"),
            "client initialized"
        );
        if info.is_some_and(|i| i.capabilities.roots.is_some()) {
            self.shared
                .first_fetch
                .get_or_init(|| self.refresh_roots(context.peer.clone()))
                .await;
        }
    }

    async fn on_roots_list_changed(&self, context: NotificationContext<RoleServer>) {
        self.refresh_roots(context.peer.clone()).await;
    }
}

/// Runs the server on stdin/stdout until stdin closes. `roots` come from `--root`; the config adds
/// `[mcp] roots`. Logs go to `log.file` or stderr, at the level [`crate::logging`] picks.
pub fn serve(roots: Vec<PathBuf>, log: crate::logging::LogArgs) -> anyhow::Result<()> {
    let config = Config::load(crate::config::default_path().as_deref(), None);
    log.init(
        config.as_ref().ok().map(|c| c.log_level),
        crate::logging::LogLevel::Info,
    )?;
    let config = config?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // Resolve git before any client can write: a `git` written later into a PATH directory inside
    // a root is never picked up.
    match crate::sys::resolve("git") {
        Ok(git) => tracing::debug!(git = %git.display(), "git resolved"),
        Err(e) => tracing::warn!("{e}; the git tools will fail"),
    }
    let config_path = config.source.clone().or_else(crate::config::default_path);
    let audit_path = audit::default_path(config.mcp.audit_log.as_deref());
    // found while the handshake runs (it starts git); tool calls wait for it
    let discovering = {
        let (c, a) = (config_path.clone(), audit_path.clone());
        rt.spawn(async move { crate::app::protected::discover(c.as_deref(), &a).await })
    };
    let server = Server::new(
        &config,
        &roots,
        Some(discovering),
        GrantStore::open_default(),
        audit_path,
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    tracing::info!(
        "zeke mcp: roots [{}], audit log {}",
        server.shared.configured.list(),
        server.shared.gate.audit().path().display()
    );
    let gate = server.shared.gate.clone();
    let wire_gate = gate.clone();
    rt.block_on(async move {
        // the client's stdio → the wire guard (framing, text, order, ids, back-pressure) → rmcp
        let (to_rmcp, rmcp_in) = tokio::io::duplex(1 << 20);
        let (rmcp_out, from_rmcp) = tokio::io::duplex(1 << 20);
        let wire = tokio::spawn(wire::guard(
            tokio::io::stdin(),
            tokio::io::stdout(),
            to_rmcp,
            from_rmcp,
            Some(wire_gate),
        ));
        let running = server
            .serve((rmcp_in, rmcp_out))
            .await
            .map_err(|e| anyhow::anyhow!("MCP handshake failed: {e}"))?;
        let reason = running.waiting().await?;
        tracing::info!("zeke mcp: stopped ({reason:?})");
        // the language servers the lsp_* tools started: shutdown + exit, then killed
        crate::app::lsp::shutdown_all().await;
        if let Ok(Err(e)) = wire.await {
            tracing::info!(%e, "client stdio ended");
        }
        anyhow::Ok(())
    })?;
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    gate.audit().flush();
    Ok(())
}
