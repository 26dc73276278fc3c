//! The MCP surface: `zeke mcp`, a stdio MCP server (rmcp) with the reference filesystem and git
//! tools, confined to its roots and gated by the policy.
//!
//! One call goes: `tools/call` → [`tools::find`] → argument parsing → the tool's handler
//! ([`fs_tools`], [`git_tools`]), which resolves paths through `workspace` (confinement), asks the
//! [`gate`] (policy, elicitation) and does the work → [`output`] pages long text → one audit record.
//!
//! Invariants: stdout carries only protocol (rmcp's stdio transport; logs go to stderr or a file);
//! the server exits when stdin closes; every call is audited, including refusals and cancellations;
//! a refusal is an `isError` result naming its rule, never a protocol error; client roots only
//! narrow the configured roots. Requests run concurrently (rmcp spawns one task per request) and
//! `notifications/cancelled` cancels the request's token, which handlers observe.

pub mod fs_tools;
pub mod gate;
pub mod git_tools;
pub mod output;
pub mod questions;
pub mod tools;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    InitializeResult, ListToolsResult, PaginatedRequestParams, ServerCapabilities,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::{Map, Value};

use crate::app::audit::{self, Audit, Record};
use crate::config::Config;
use crate::core::policy::{Grants, Policy};
use crate::workspace::Roots;

pub use gate::{Call, Done, Fail};

/// State shared by every request of one server.
pub struct Shared {
    configured: Roots,
    /// The client's roots intersected with the configured ones, once fetched.
    narrowed: RwLock<Option<Roots>>,
    first_fetch: tokio::sync::OnceCell<()>,
    pub policy: Policy,
    pub grants: Mutex<Grants>,
    pub audit: Audit,
    pub max_output_chars: usize,
    pub tools_page_size: usize,
    pub prompt_timeout: std::time::Duration,
    /// The policy questions asked through `InputRequiredResult`, and the states carrying answers.
    pub questions: questions::Questions,
    /// The config file users should edit (for "how to allow" messages).
    pub config_path: Option<PathBuf>,
}

/// The rmcp server handler.
#[derive(Clone)]
pub struct Server {
    shared: Arc<Shared>,
}

impl Server {
    /// A server for `roots` (command line) plus `[mcp] roots` from `config`, whose tools never
    /// change the `protected` files ([`crate::app::protected::discover`]).
    pub fn new(
        config: &Config,
        roots: &[PathBuf],
        protected: crate::workspace::Protected,
    ) -> Result<Server, String> {
        let mut all = config.mcp.roots.clone();
        all.extend_from_slice(roots);
        let configured = Roots::new(&all)?.with_protected(protected);
        let shared = Shared {
            configured,
            narrowed: RwLock::new(None),
            first_fetch: tokio::sync::OnceCell::new(),
            policy: config.policy.clone(),
            grants: Mutex::new(Grants::default()),
            audit: Audit::new(audit::default_path(config.mcp.audit_log.as_deref())),
            max_output_chars: config.mcp.max_output_chars,
            tools_page_size: config.mcp.tools_page_size,
            prompt_timeout: config.mcp.prompt_timeout,
            questions: questions::Questions::new(config.mcp.prompt_timeout),
            config_path: config.source.clone().or_else(crate::config::default_path),
        };
        Ok(Server {
            shared: Arc::new(shared),
        })
    }

    /// The roots in force for a request: the configured ones, narrowed by the client's roots when
    /// the client declared the roots capability (fetched once, before the first tool call).
    async fn roots(&self, peer: &rmcp::Peer<RoleServer>) -> Roots {
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
        let started = Instant::now();
        let Some(spec) = tools::find(&request.name) else {
            let message = format!("Unknown tool: {}", request.name);
            let client = context.peer.peer_info().map(|i| i.client_info.name.clone());
            self.shared.audit.append(&Record {
                tool: &request.name,
                arguments: audit::redact(&Value::Object(request.arguments.unwrap_or_default())),
                decisions: &[],
                outcome: "error",
                message: Some(&message),
                duration_ms: started.elapsed().as_millis() as u64,
                client: client.as_deref(),
            });
            return Err(ErrorData::invalid_params(message, None));
        };
        let mut args = request.arguments.unwrap_or_default();
        let page = match args.remove("page") {
            None | Some(Value::Null) => Ok(1),
            Some(v) => v
                .as_u64()
                .filter(|p| (1..=u32::MAX as u64).contains(p))
                .map(|p| p as u32)
                .ok_or_else(|| format!("page must be a positive integer (got {v})")),
        };
        let redacted = audit::redact(&Value::Object(args.clone()));
        let roots = self.roots(&context.peer).await;
        let client = context.peer.peer_info().map(|i| i.client_info.name.clone());
        let answers = self
            .shared
            .questions
            .accept(request.request_state.as_deref(), request.input_responses);
        let call = Call::new(
            spec,
            roots,
            &context,
            page.clone().unwrap_or(1),
            self.shared.clone(),
            answers.clone().unwrap_or_default(),
        );
        let result = match (page, answers) {
            (_, Err(forged)) => Err(Fail::Denied(format!(
                "refused (rule policy-forged): {forged}; answer only the questions Zeke asks, in \
                 the call it asked them for"
            ))),
            (Err(e), _) => Err(Fail::Failed(e)),
            (Ok(_), Ok(_)) => tokio::select! {
                r = dispatch(&call, Value::Object(args)) => r,
                _ = context.ct.cancelled(), if spec.writes.is_none() => Err(Fail::Cancelled),
            },
        };
        let (outcome, message) = match &result {
            Ok(_) => ("ok", None),
            Err(f) => (f.outcome(), Some(f.to_string())),
        };
        let decisions = call.decisions();
        self.shared.audit.append(&Record {
            tool: spec.name,
            arguments: redacted,
            decisions: &decisions,
            outcome,
            message: message.as_deref(),
            duration_ms: started.elapsed().as_millis() as u64,
            client: client.as_deref(),
        });
        tracing::debug!(
            tool = spec.name,
            outcome,
            ms = started.elapsed().as_millis() as u64,
            "tool call"
        );
        Ok(match result {
            Ok(done) => CallToolResponse::from(done.into_result(spec.output.is_some())),
            Err(Fail::NeedsInput { key, request }) => {
                CallToolResponse::from(call.input_required(key, *request))
            }
            Err(f) => CallToolResponse::from(CallToolResult::error(vec![ContentBlock::text(
                f.to_string(),
            )])),
        })
    }
}

/// Parses `args` into the tool's argument struct and runs its handler.
async fn dispatch(call: &Call, args: Value) -> Result<Done, Fail> {
    let name = call.spec.name;
    if name.starts_with("git_") {
        git_tools::run(call, name, args).await
    } else {
        fs_tools::run(call, name, args).await
    }
}

/// Deserializes tool arguments, with a message naming the tool and the bad field.
pub fn parse<T: serde::de::DeserializeOwned>(tool: &str, args: Value) -> Result<T, Fail> {
    serde_path_to_error::deserialize(args).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            Fail::Failed(format!("invalid arguments for {tool}: {inner}"))
        } else {
            Fail::Failed(format!("invalid arguments for {tool}: {path}: {inner}"))
        }
    })
}

impl ServerHandler for Server {
    fn get_info(&self) -> InitializeResult {
        InitializeResult::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("zeke", env!("CARGO_PKG_VERSION")).with_title("Zeke MCP server"))
            .with_instructions(format!(
                "Filesystem and git tools confined to these roots: {}. Paths may be absolute or relative to the first root. Long outputs are paged: call again with \"page\": N.",
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
    let protected = rt.block_on(crate::app::protected::discover(
        config_path.as_deref(),
        &audit_path,
    ));
    let server = Server::new(&config, &roots, protected).map_err(|e| anyhow::anyhow!(e))?;
    tracing::info!(
        "zeke mcp: roots [{}], audit log {}",
        server.shared.configured.list(),
        server.shared.audit.path().display()
    );
    for (p, kind) in server.shared.configured.protected().paths() {
        tracing::debug!(path = %p.display(), ?kind, "protected");
    }
    rt.block_on(async move {
        let running = server
            .serve(rmcp::transport::io::stdio())
            .await
            .map_err(|e| anyhow::anyhow!("MCP handshake failed: {e}"))?;
        let reason = running.waiting().await?;
        tracing::info!("zeke mcp: stopped ({reason:?})");
        anyhow::Ok(())
    })?;
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    Ok(())
}

/// A JSON object from pairs, for structured results.
pub fn obj(pairs: Vec<(&str, Value)>) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}
