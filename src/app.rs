//! The application layer: one async function per feature (`complete`, `explain`), the provider
//! set built from the config, task control and statistics. Surfaces call these with core types and
//! receive [`UiEvent`]s on a channel; `app` knows no protocol.
//!
//! Invariants: model work runs in tasks owned by [`tasks::Tasks`] (cancellable, time-limited); no
//! lock is held across an `.await` (buffers are passed in as O(1) rope snapshots).

pub mod audit;
pub mod chat;
pub mod chat_edit;
pub mod complete;
pub mod explain;
pub mod gate;
pub mod grants;
pub mod lsp;
pub mod mcp_client;
pub mod patch;
pub mod protected;
pub mod providers;
pub mod report;
pub mod stats;
pub mod tasks;
pub mod tools;

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::core::llm::ProviderError;
use crate::router::Router;

pub use providers::{ProviderSet, Selected};
pub use stats::Stats;
pub use tasks::{Job, Tasks};

/// Something to show the user; the surface turns it into its protocol.
#[derive(Debug, Clone)]
pub enum UiEvent {
    /// The whole inline suggestion so far for completion `id`.
    /// `received` is when the surface got the request; `provider_ttft` (first event only) is the
    /// provider's own time from request sent to first event.
    Completion {
        id: u64,
        buf: i64,
        tick: i64,
        row: usize,
        col: usize,
        text: String,
        done: bool,
        received: Instant,
        provider_ttft: Option<Duration>,
    },
    /// The next piece of an explanation. With `restart`, what was shown so far is replaced by
    /// `delta` (a fallback provider took over and answered differently).
    Explain {
        id: u64,
        delta: String,
        restart: bool,
        done: bool,
        provider: String,
        model: String,
        range: (usize, usize),
    },
    /// What a chat turn carries: the attachments and the rules file, with estimated tokens.
    ChatContext {
        id: u64,
        session: String,
        items: Vec<(String, u64)>,
        rules: Option<(String, u64)>,
    },
    /// The next piece of a chat answer (`restart`: replace this turn's text so far).
    ChatDelta {
        id: u64,
        session: String,
        delta: String,
        restart: bool,
        provider: String,
        model: String,
    },
    /// A tool call of the chat agent: running, then its outcome (one folded line in the panel).
    ChatTool {
        id: u64,
        session: String,
        call_id: String,
        name: String,
        arguments: String,
        status: chat::ToolStatus,
        summary: String,
    },
    /// A chat turn ended: who answered, tokens (input = the last prompt: the window in use) and
    /// cost, the model's context window, tool steps taken.
    ChatDone {
        id: u64,
        session: String,
        provider: String,
        model: String,
        input_tokens: u64,
        output_tokens: u64,
        context_window: Option<u64>,
        cost_usd: f64,
        steps: u64,
    },
    /// `/compact` replaced older turns by a summary (estimated tokens before and after).
    ChatCompacted {
        id: u64,
        session: String,
        before_tokens: u64,
        after_tokens: u64,
    },
    /// The policy asks the user (a chat agent's `run_command`, `fetch`, …); answered by `answer`.
    Ask {
        ask: u64,
        capability: String,
        tool: String,
        what: String,
        root: String,
    },
    /// Something the user should know about a job in flight (a fallback, a budget).
    Notice { job: Job, message: String },
    /// A job failed.
    Error {
        id: Option<u64>,
        job: Job,
        error: ProviderError,
        provider: Option<String>,
    },
    /// A proposed patch (`:Zeke fix` / `:Zeke test`), to review or, when `decision` is allow, apply.
    Patch(Box<patch::Proposal>),
    /// A fix/test request is being answered: characters of the answer so far.
    Progress { id: u64, job: Job, chars: usize },
    /// The provider in use is known (after configure), with whether it answered a probe.
    Provider {
        name: String,
        kind: String,
        url: String,
        model: Option<String>,
        reachable: bool,
        detail: String,
    },
}

/// The sending side of the UI channel.
pub type Sink = tokio::sync::mpsc::UnboundedSender<UiEvent>;

/// Shared state of one backend process.
pub struct App {
    setup: RwLock<Arc<ProviderSet>>,
    pub stats: Stats,
    pub tasks: Arc<Tasks>,
    /// The one policy gate: policy, grants (shared with every Zeke process) and the audit log.
    pub gate: Arc<gate::Gate>,
    /// Pending patches of `:Zeke fix` / `:Zeke test`.
    pub patches: patch::Patches,
    /// The one router (health, stickiness, the session's pinned provider, the usage ledger).
    pub router: Arc<Router>,
    /// Chat sessions on disk, per project.
    pub chats: chat::store::Store,
    /// Policy questions waiting for the editor's answer.
    pub asks: chat::Asks,
    /// The configured external MCP servers (`[mcp_servers.NAME]`), offered to the chat agent;
    /// replaced (and the old servers stopped) when the configuration changes.
    mcp_clients: RwLock<Arc<mcp_client::McpClients>>,
    /// The protected files (found once: it asks git for its config files), reset by `configure`.
    protected: tokio::sync::Mutex<Option<crate::workspace::Protected>>,
    client: reqwest::Client,
}

/// The usage ledger's path: `[router] ledger`, else `$XDG_STATE_HOME/zeke/usage.sqlite3`.
pub fn ledger_path(config: &Config) -> std::path::PathBuf {
    config
        .router
        .ledger
        .clone()
        .unwrap_or_else(|| grants::state_dir().join("usage.sqlite3"))
}

impl App {
    /// An app with the given config; providers are built lazily on first use.
    pub fn new(config: Config) -> Arc<App> {
        let client = crate::providers::http::client();
        // the audit log is fixed at start ($ZEKE_AUDIT_LOG, else `[mcp] audit_log` from the file,
        // else the XDG state file): the same one `zeke mcp` writes; grants are the shared ones
        let gate = Arc::new(gate::Gate::from_config(&config));
        // the usage ledger opens on the first request (an idle editor never loads SQLite); one
        // that cannot be opened is logged and not used: requests still run
        let router = Router::with_ledger_at(ledger_path(&config));
        let mcp_clients = RwLock::new(Arc::new(mcp_client::McpClients::new(&config)));
        let set = ProviderSet::new(config, client.clone(), None);
        Arc::new(App {
            router,
            chats: chat::store::Store::new(grants::state_dir().join("chats")),
            asks: chat::Asks::default(),
            mcp_clients,
            protected: tokio::sync::Mutex::new(None),
            setup: RwLock::new(Arc::new(set)),
            stats: Stats::default(),
            tasks: Arc::new(Tasks::default()),
            patches: patch::Patches::new(gate.clone()),
            gate,
            client,
        })
    }

    /// The files no tool may change (Zeke's config, state and audit log, git's config files
    /// outside any repository), discovered on first use and kept until the next `configure`.
    pub async fn protected(&self) -> crate::workspace::Protected {
        let mut p = self.protected.lock().await;
        if p.is_none() {
            let setup = self.setup();
            *p = Some(
                protected::discover(
                    setup
                        .config
                        .source
                        .clone()
                        .or_else(crate::config::default_path)
                        .as_deref(),
                    self.gate.audit().path(),
                )
                .await,
            );
        }
        p.clone().unwrap_or_default()
    }

    /// The external MCP servers of the current configuration.
    pub fn mcp_clients(&self) -> Arc<mcp_client::McpClients> {
        self.mcp_clients
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The current provider set (a cheap `Arc` clone; the lock is released at once).
    pub fn setup(&self) -> Arc<ProviderSet> {
        self.setup.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the configuration: with no providers configured, finds a local server first
    /// (llama-server on 127.0.0.1:8080, then Ollama on 127.0.0.1:11434).
    /// Also applies the config's `log_level` to the running process (unless `--log-level` or
    /// `$ZEKE_LOG` pinned it).
    pub async fn configure(&self, config: Config) -> Arc<ProviderSet> {
        crate::logging::follow_config(config.log_level);
        self.gate.set_policy(
            config.policy.clone(),
            config.source.clone().or_else(crate::config::default_path),
        );
        let detected = if config.providers.is_empty() {
            Some(providers::detect_local(&self.client).await)
        } else {
            None
        };
        // the editor's table may name another ledger file (`router.ledger`)
        self.router.set_ledger_path(ledger_path(&config));
        *self.protected.lock().await = None;
        if config.mcp_servers != self.setup().config.mcp_servers {
            *self.mcp_clients.write().unwrap_or_else(|e| e.into_inner()) =
                Arc::new(mcp_client::McpClients::new(&config));
        }
        let set = Arc::new(ProviderSet::new(config, self.client.clone(), detected));
        *self.setup.write().unwrap_or_else(|e| e.into_inner()) = set.clone();
        self.router.reconfigured();
        set
    }
}
