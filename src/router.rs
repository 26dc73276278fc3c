//! The router: one for every surface. For each request it plans the candidates (`plan`: intent
//! routes, capability, context window, budget and health filters; ranking by configured order,
//! measured TTFT, locality and price), then streams the answer with fallback and hedging:
//!
//! - **Fallback cascade**: a provider that fails — before its first token or mid-stream (incl.
//!   Anthropic's `error` event after HTTP 200), or stays silent past `router.first_token_timeout_ms`
//!   — is recorded (cooldown rules in `health`) and the next candidate gets the **whole
//!   conversation** again (the request is replayed as is; adapters never keep one provider's
//!   private reasoning). What the user already saw is not shown twice: the next answer is held
//!   while it repeats the shown text and only its continuation is sent; if it says something else,
//!   a [`Routed::Restart`] tells the surface to replace what it showed.
//! - **retry-after**: when the failing provider is the last candidate and its 429/503 asked for at
//!   most [`MAX_RETRY_WAIT`], the router waits that long and tries it once more; an exhausted
//!   quota is never retried.
//! - **Hedging** (latency-critical intents, `router.hedge`): when the first candidate has sent
//!   nothing by its recent p95 TTFT (or `router.hedge_after_ms` until measured), the next one
//!   starts too; the first to send a token wins and the loser's stream is dropped, which closes
//!   its connection.
//! - **Stickiness**: a conversation (`RouteRequest::conversation`) stays on the provider that last
//!   answered it, unless the user pins another or it fails.
//!
//! Every request ends as one usage-ledger row (also when the caller drops the stream). The router
//! never sees vendor JSON, only `core::llm` events.

pub mod health;
pub mod plan;
pub mod pricing;
mod run;
pub mod splice;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::Stream;
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

use crate::config::Config;
use crate::core::llm::{
    ChatRequest, FimRequest, FinishReason, Intent, ProviderError, ToolCall, Usage,
};
use crate::ledger::{Ledger, Spend};
use crate::providers::{EventStream, Provider};

pub use health::{Board, Health};
pub use plan::{BudgetHit, CandidateInfo, Need, Plan, Skip};

/// Longest `retry-after` the router waits for before retrying the last candidate.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);
/// How often budget checks re-read the ledger (other processes spend too).
const SPEND_REFRESH: Duration = Duration::from_secs(5);

/// Which surface a request came from (recorded in the ledger).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Nvim,
    Mcp,
    Cli,
}

impl Surface {
    pub fn as_str(self) -> &'static str {
        match self {
            Surface::Nvim => "nvim",
            Surface::Mcp => "mcp",
            Surface::Cli => "cli",
        }
    }
}

/// How a request is routed.
#[derive(Debug, Clone)]
pub struct RouteRequest {
    pub intent: Intent,
    pub surface: Surface,
    /// A conversation id: the conversation sticks to the provider that answered it last.
    pub conversation: Option<String>,
    /// A provider the caller asks for first (`zeke ask --provider`); others remain fallbacks.
    pub provider: Option<String>,
}

impl RouteRequest {
    pub fn new(intent: Intent, surface: Surface) -> Self {
        RouteRequest {
            intent,
            surface,
            conversation: None,
            provider: None,
        }
    }
}

/// The providers the router may use: the configured ones, built on demand (keys resolved then).
pub trait Pool: Send + Sync {
    fn config(&self) -> &Config;
    /// Every configured provider, as the router sees it before calling.
    fn candidates(&self) -> Vec<CandidateInfo>;
    /// The provider named `name`, built on first use. `Err(ErrorKind::Auth)` when its key is
    /// missing.
    fn provider<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Arc<dyn Provider>, ProviderError>>;
}

/// One provider tried for a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub provider: String,
    pub model: String,
    /// `None` when this attempt answered.
    pub error: Option<ProviderError>,
    /// A hedge that lost the race (its stream was dropped).
    pub hedge_loser: bool,
}

/// How a request went: who answered, what it cost, what was tried.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    pub provider: Option<String>,
    pub model: Option<String>,
    pub attempts: Vec<Attempt>,
    pub usage: Usage,
    pub cost_usd: f64,
    /// The provider reported no usage; `usage` and `cost_usd` are estimates.
    pub cost_estimated: bool,
    pub ttft: Option<Duration>,
    pub total: Duration,
    pub finish: Option<FinishReason>,
    pub hedged: bool,
}

/// One item of a routed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Routed {
    /// A provider starts answering (its first token arrived).
    Answering {
        provider: String,
        model: String,
    },
    Text(String),
    ToolCall(ToolCall),
    /// Forget what was shown of this answer: a fallback provider answered differently, and what
    /// follows replaces it.
    Restart,
    /// `from` failed with `error`; the next candidate takes over with the whole conversation.
    Fallback {
        from: String,
        error: ProviderError,
    },
    /// Something the user should know: a soft budget crossed (once per budget and period), a
    /// cloud provider skipped for a hard budget.
    Notice(String),
    /// The last item of a successful answer.
    Done(Box<Summary>),
}

/// The last item of a failed answer: the final error (naming every provider tried) and the
/// summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub error: ProviderError,
    pub summary: Box<Summary>,
}

pub(crate) type Item = Result<Routed, Failure>;

/// A routed answer. Dropping it cancels the request: the router's task is aborted, which drops
/// the provider streams and so closes their connections.
pub struct RoutedStream {
    rx: mpsc::UnboundedReceiver<Item>,
    task: tokio::task::AbortHandle,
}

impl Stream for RoutedStream {
    type Item = Item;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for RoutedStream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
pub(crate) enum Work {
    Chat(ChatRequest),
    Fim(FimRequest),
}

impl Work {
    pub(crate) fn open(&self, p: &dyn Provider) -> EventStream {
        match self {
            Work::Chat(r) => p.chat(r.clone()),
            Work::Fim(r) => p.fim(r.clone()),
        }
    }
    /// Whether `p` can be asked to continue a partial answer: FIM always (a longer prefix), chat
    /// where the provider continues a trailing assistant message.
    pub(crate) fn can_prefill(&self, p: &dyn Provider) -> bool {
        match self {
            Work::Chat(_) => p.continues_prefill(),
            Work::Fim(_) => true,
        }
    }

    /// The request asking to continue `shown`: chat gets it as a trailing assistant message
    /// (trailing whitespace trimmed: Anthropic refuses it), FIM as the end of the prefix.
    pub(crate) fn with_prefill(&self, shown: &str) -> Work {
        match self {
            Work::Chat(r) => {
                let mut r = r.clone();
                r.messages
                    .push(crate::core::llm::Message::assistant(shown.trim_end()));
                Work::Chat(r)
            }
            Work::Fim(r) => {
                let mut r = r.clone();
                r.prefix.push_str(shown);
                Work::Fim(r)
            }
        }
    }

    pub(crate) fn need(&self, intent: Intent) -> Need {
        match self {
            Work::Chat(r) => Need {
                intent,
                est_tokens: r.estimated_tokens(),
                max_output: r.max_tokens,
                tools: !r.tools.is_empty(),
            },
            Work::Fim(r) => Need {
                intent,
                est_tokens: r.estimated_tokens(),
                max_output: r.max_tokens,
                tools: false,
            },
        }
    }
}

#[derive(Default)]
struct SpendCache {
    read_at: Option<Instant>,
    map: HashMap<String, Spend>,
}

/// The router's state, shared by every request of a process: health, stickiness, the session's
/// pinned provider, the ledger.
pub struct Router {
    pub(crate) board: Mutex<Board>,
    pub(crate) sticky: Mutex<HashMap<String, String>>,
    pinned: RwLock<Option<String>>,
    ledger: RwLock<Slot>,
    spend: Mutex<SpendCache>,
    warned: Mutex<HashSet<String>>,
    pub(crate) last: Mutex<Option<(String, String)>>,
}

/// Where usage rows go: nowhere, an open ledger, or a file opened on first use (an idle editor
/// never loads SQLite).
enum Slot {
    None,
    Open(Arc<Ledger>),
    Lazy(PathBuf, Arc<std::sync::OnceLock<Option<Arc<Ledger>>>>),
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Router {
    /// A router recording to `ledger` (none: nothing recorded, budgets see only this process).
    pub fn new(ledger: Option<Arc<Ledger>>) -> Arc<Router> {
        Arc::new(Router {
            board: Mutex::new(Board::default()),
            sticky: Mutex::new(HashMap::new()),
            pinned: RwLock::new(None),
            ledger: RwLock::new(match ledger {
                Some(l) => Slot::Open(l),
                None => Slot::None,
            }),
            spend: Mutex::new(SpendCache::default()),
            warned: Mutex::new(HashSet::new()),
            last: Mutex::new(None),
        })
    }

    /// A router recording to the ledger at `path`, opened when first needed.
    pub fn with_ledger_at(path: PathBuf) -> Arc<Router> {
        let r = Router::new(None);
        r.set_ledger_path(path);
        r
    }

    /// The ledger rows go to, opened now if it was not (`None`: none, or it cannot be opened —
    /// said once in the log).
    pub fn ledger(&self) -> Option<Arc<Ledger>> {
        let (path, cell) = match &*self.ledger.read().unwrap_or_else(|e| e.into_inner()) {
            Slot::None => return None,
            Slot::Open(l) => return Some(l.clone()),
            Slot::Lazy(p, c) => (p.clone(), c.clone()),
        };
        cell.get_or_init(|| match Ledger::open(&path) {
            Ok(l) => Some(Arc::new(l)),
            Err(e) => {
                tracing::warn!(error = %e, "usage ledger unavailable; usage is not recorded");
                None
            }
        })
        .clone()
    }

    /// The ledger's path (without opening it).
    pub fn ledger_path(&self) -> Option<PathBuf> {
        match &*self.ledger.read().unwrap_or_else(|e| e.into_inner()) {
            Slot::None => None,
            Slot::Open(l) => Some(l.path().to_path_buf()),
            Slot::Lazy(p, _) => Some(p.clone()),
        }
    }

    /// Records to the ledger at `path` from now on (opened on first use; a new configuration
    /// named another file); budgets re-read their spend from it.
    pub fn set_ledger_path(&self, path: PathBuf) {
        if self.ledger_path().as_deref() == Some(path.as_path()) {
            return;
        }
        *self.ledger.write().unwrap_or_else(|e| e.into_inner()) =
            Slot::Lazy(path, Arc::new(std::sync::OnceLock::new()));
        lock(&self.spend).read_at = None;
    }

    /// Pins a provider for this session (`:Zeke provider`): it goes first for every intent.
    /// `None` unpins.
    pub fn pin(&self, provider: Option<String>) {
        *self.pinned.write().unwrap_or_else(|e| e.into_inner()) = provider;
        lock(&self.sticky).clear();
    }

    /// The provider and model of the last answer (for status lines).
    pub fn last_answer(&self) -> Option<(String, String)> {
        lock(&self.last).clone()
    }

    pub fn pinned(&self) -> Option<String> {
        self.pinned
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Every provider's measured record.
    pub fn health(&self) -> HashMap<String, Health> {
        lock(&self.board).snapshot()
    }

    /// Called after a new configuration: bad-key cooldowns are forgotten.
    pub fn reconfigured(&self) {
        lock(&self.board).clear_auth();
    }

    /// Spend per provider today / this month, from the ledger (re-read every 5 s) plus what this
    /// process spent since. Opens the ledger if needed (budget checks).
    pub fn spend(&self) -> HashMap<String, Spend> {
        self.spend_from(self.ledger())
    }

    /// [`Router::spend`] for status lines: reads the ledger only once something opened it (the
    /// first request does), so an idle editor's status never loads SQLite.
    pub fn spend_if_open(&self) -> HashMap<String, Spend> {
        let open = match &*self.ledger.read().unwrap_or_else(|e| e.into_inner()) {
            Slot::None => None,
            Slot::Open(l) => Some(l.clone()),
            Slot::Lazy(_, c) => c.get().cloned().flatten(),
        };
        self.spend_from(open)
    }

    fn spend_from(&self, ledger: Option<Arc<Ledger>>) -> HashMap<String, Spend> {
        let mut c = lock(&self.spend);
        let stale = c.read_at.is_none_or(|t| t.elapsed() >= SPEND_REFRESH);
        if stale && let Some(l) = ledger {
            match l.spend() {
                Ok(rows) => {
                    c.map = rows.into_iter().collect();
                    c.read_at = Some(Instant::now());
                }
                Err(e) => tracing::warn!(error = %e, "cannot read spend from the ledger"),
            }
        }
        c.map.clone()
    }

    pub(crate) fn add_spend(&self, provider: &str, usd: f64) {
        if usd > 0.0 {
            let mut c = lock(&self.spend);
            let s = c.map.entry(provider.to_string()).or_default();
            s.today_usd += usd;
            s.month_usd += usd;
        }
    }

    /// Plans a request (see [`plan`]) with this router's health, stickiness, pin and spend.
    pub fn plan(&self, pool: &dyn Pool, rr: &RouteRequest, need: &Need) -> Plan {
        let cfg = pool.config();
        let candidates = pool.candidates();
        let budgets = cfg.budget.is_some() || candidates.iter().any(|c| c.budget.is_some());
        let spend = if budgets {
            self.spend()
        } else {
            HashMap::new()
        };
        let health = self.health();
        let sticky = rr
            .conversation
            .as_ref()
            .and_then(|k| lock(&self.sticky).get(k).cloned());
        let pinned = rr.provider.clone().or_else(|| self.pinned());
        let job_provider = match rr.intent {
            Intent::Complete => cfg.completion.provider.as_deref(),
            Intent::Explain => cfg
                .explain
                .provider
                .as_deref()
                .or(cfg.completion.provider.as_deref()),
            Intent::Fix | Intent::Test => cfg
                .fix
                .provider
                .as_deref()
                .or(cfg.explain.provider.as_deref())
                .or(cfg.completion.provider.as_deref()),
            Intent::Chat | Intent::Ask => cfg.completion.provider.as_deref(),
        };
        plan::plan(
            &plan::Inputs {
                candidates: &candidates,
                routes: &cfg.routes,
                job_provider,
                pinned: pinned.as_deref(),
                sticky: sticky.as_deref(),
                health: &health,
                spend: &spend,
                total_budget: cfg.budget,
                now: Instant::now(),
            },
            need,
        )
    }

    /// Streams a chat answer (see the module docs).
    pub fn chat(
        self: &Arc<Self>,
        pool: Arc<dyn Pool>,
        rr: RouteRequest,
        req: ChatRequest,
    ) -> RoutedStream {
        self.start(pool, rr, Work::Chat(req))
    }

    /// Streams a fill-in-the-middle answer (see the module docs).
    pub fn fim(
        self: &Arc<Self>,
        pool: Arc<dyn Pool>,
        rr: RouteRequest,
        req: FimRequest,
    ) -> RoutedStream {
        self.start(pool, rr, Work::Fim(req))
    }

    fn start(self: &Arc<Self>, pool: Arc<dyn Pool>, rr: RouteRequest, work: Work) -> RoutedStream {
        let (tx, rx) = mpsc::unbounded_channel();
        let router = self.clone();
        let task = tokio::spawn(async move {
            let mut rec = run::Recorder::new(router.clone(), &rr);
            run::drive(&router, pool, &rr, work, &tx, &mut rec).await;
        });
        RoutedStream {
            rx,
            task: task.abort_handle(),
        }
    }

    pub(crate) fn warn_once(&self, key: String) -> bool {
        lock(&self.warned).insert(key)
    }
}
