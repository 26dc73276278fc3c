//! Configuration: the TOML file (`$ZEKE_CONFIG`, else `$XDG_CONFIG_HOME/zeke/config.toml`, else
//! `~/.config/zeke/config.toml`) merged with the table Neovim sends (`setup{}` / `vim.g.zeke`, the
//! same schema), validated into a [`Config`].
//!
//! Raw input is untyped JSON (TOML and msgpack both convert to it), deserialized with
//! `deny_unknown_fields` through `serde_path_to_error`, so every message names the bad key
//! (`completion.debounce_ms: invalid type: string "x", expected u64`). Secrets are never stored
//! here: a provider names where its key comes from ([`KeySource`]); `app` resolves it when needed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::core::llm::Intent;
use crate::core::policy::Policy;
pub use crate::logging::LogLevel;
pub use lsp::{LspConfig, LspServerConfig};

pub mod limits;
mod lsp;
mod provider;
mod raw;
mod tables;
use provider::{budget, provider};
use raw::*;
use tables::{merge, normalize, policy};

/// Which wire protocol and defaults a provider uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// api.openai.com (chat completions, SSE).
    Openai,
    /// Anthropic Messages API (SSE), also llama-server's `/v1/messages`.
    Anthropic,
    /// Google Gemini (`:streamGenerateContent?alt=sse`).
    Gemini,
    /// Azure OpenAI: deployment URLs with `api-version`, or the v1 API; `api-key` header.
    Azure,
    /// llama.cpp's llama-server: OpenAI chat + native `/infill` FIM when the model supports it.
    Llamacpp,
    /// Ollama's native API (`/api/chat`, `/api/generate` with `suffix`), NDJSON.
    Ollama,
    /// xAI (OpenAI-compatible).
    Xai,
    /// Groq (OpenAI-compatible).
    Groq,
    /// Mistral (OpenAI-compatible chat, FIM at `/v1/fim/completions`).
    Mistral,
    /// DeepSeek (OpenAI-compatible chat, FIM at `/beta/completions`).
    Deepseek,
    /// OpenRouter (OpenAI-compatible).
    Openrouter,
    /// LM Studio's OpenAI-compatible server.
    Lmstudio,
    /// vLLM's OpenAI-compatible server.
    Vllm,
    /// Deterministic canned replies; only in builds with the `test-support` feature.
    Fake,
}

impl ProviderKind {
    /// Every kind a config may name (`fake` only in test builds).
    pub const ALL: [ProviderKind; 14] = [
        ProviderKind::Openai,
        ProviderKind::Anthropic,
        ProviderKind::Gemini,
        ProviderKind::Azure,
        ProviderKind::Llamacpp,
        ProviderKind::Ollama,
        ProviderKind::Xai,
        ProviderKind::Groq,
        ProviderKind::Mistral,
        ProviderKind::Deepseek,
        ProviderKind::Openrouter,
        ProviderKind::Lmstudio,
        ProviderKind::Vllm,
        ProviderKind::Fake,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
            ProviderKind::Azure => "azure",
            ProviderKind::Llamacpp => "llamacpp",
            ProviderKind::Ollama => "ollama",
            ProviderKind::Xai => "xai",
            ProviderKind::Groq => "groq",
            ProviderKind::Mistral => "mistral",
            ProviderKind::Deepseek => "deepseek",
            ProviderKind::Openrouter => "openrouter",
            ProviderKind::Lmstudio => "lmstudio",
            ProviderKind::Vllm => "vllm",
            ProviderKind::Fake => "fake",
        }
    }

    /// The base URL used when the config gives none. Azure has none: its URL names the resource.
    pub fn default_url(self) -> Option<&'static str> {
        Some(match self {
            ProviderKind::Openai => "https://api.openai.com/v1",
            ProviderKind::Anthropic => "https://api.anthropic.com",
            ProviderKind::Gemini => "https://generativelanguage.googleapis.com/v1beta",
            ProviderKind::Azure => return None,
            ProviderKind::Llamacpp => "http://127.0.0.1:8080",
            ProviderKind::Ollama => "http://127.0.0.1:11434",
            ProviderKind::Xai => "https://api.x.ai/v1",
            ProviderKind::Groq => "https://api.groq.com/openai/v1",
            ProviderKind::Mistral => "https://api.mistral.ai/v1",
            ProviderKind::Deepseek => "https://api.deepseek.com",
            ProviderKind::Openrouter => "https://openrouter.ai/api/v1",
            ProviderKind::Lmstudio => "http://127.0.0.1:1234/v1",
            ProviderKind::Vllm => "http://127.0.0.1:8000/v1",
            ProviderKind::Fake => "fake://",
        })
    }

    /// The environment variable read for the API key when the config names none.
    pub fn default_key_env(self) -> Option<&'static str> {
        match self {
            ProviderKind::Openai => Some("OPENAI_API_KEY"),
            ProviderKind::Anthropic => Some("ANTHROPIC_API_KEY"),
            ProviderKind::Gemini => Some("GEMINI_API_KEY"),
            ProviderKind::Azure => Some("AZURE_OPENAI_API_KEY"),
            ProviderKind::Xai => Some("XAI_API_KEY"),
            ProviderKind::Groq => Some("GROQ_API_KEY"),
            ProviderKind::Mistral => Some("MISTRAL_API_KEY"),
            ProviderKind::Deepseek => Some("DEEPSEEK_API_KEY"),
            ProviderKind::Openrouter => Some("OPENROUTER_API_KEY"),
            _ => None,
        }
    }

    /// Whether a request without a key is rejected by this kind of provider (the cloud vendors).
    pub fn needs_key(self) -> bool {
        self.default_key_env().is_some()
    }

    /// Whether the provider runs on this machine or the LAN by default (free; preferred for short
    /// hops). A configured URL on a loopback address also counts as local, see
    /// [`ProviderConfig::local`].
    pub fn is_local(self) -> bool {
        matches!(
            self,
            ProviderKind::Llamacpp
                | ProviderKind::Ollama
                | ProviderKind::Lmstudio
                | ProviderKind::Vllm
                | ProviderKind::Fake
        )
    }

    /// The default model when the config names none and the server cannot be asked (the cloud
    /// vendors; local servers report the loaded model).
    pub fn default_model(self) -> Option<&'static str> {
        match self {
            ProviderKind::Openai => Some("gpt-4o-mini"),
            ProviderKind::Anthropic => Some("claude-sonnet-4-5"),
            ProviderKind::Gemini => Some("gemini-2.5-flash"),
            ProviderKind::Xai => Some("grok-3-mini"),
            ProviderKind::Groq => Some("llama-3.3-70b-versatile"),
            ProviderKind::Mistral => Some("codestral-latest"),
            ProviderKind::Deepseek => Some("deepseek-chat"),
            ProviderKind::Openrouter => Some("openrouter/auto"),
            _ => None,
        }
    }
}

/// Where a provider's API key comes from. The value itself is never kept in `Config` or logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    None,
    /// An environment variable's name.
    Env(String),
    /// A shell command whose first output line is the key (e.g. `pass show openai`).
    Cmd(String),
}

/// A validated provider entry (`[providers.NAME]`).
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderConfig {
    pub name: String,
    pub kind: ProviderKind,
    /// Base URL without a trailing slash.
    pub url: String,
    /// Model id; `None` lets the server choose (llama-server) or is resolved from the server's list.
    pub model: Option<String>,
    pub key: KeySource,
    /// Fake provider only: the canned reply and the pause between streamed chunks.
    pub reply: Option<String>,
    pub delay: Duration,
    /// Azure only: the `api-version` query parameter of deployment URLs (none for the v1 API).
    pub api_version: Option<String>,
    /// Ollama only: how long the server keeps the model loaded after a request (`"5m"`, `"-1"`).
    pub keep_alive: Option<String>,
    /// Whether this provider runs on this machine (free, preferred for short hops): the config's
    /// `local`, else true for the local kinds and for URLs on a loopback address.
    pub local: bool,
    /// Overrides of the bundled price table and context window for this provider's model.
    pub overrides: ModelOverrides,
    /// `[providers.NAME.budget]`.
    pub budget: Option<Budget>,
}

/// Per-model overrides of the bundled price table (USD per million tokens) and context window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ModelOverrides {
    pub context_window: Option<u32>,
    pub input_cost_per_mtok: Option<f64>,
    pub output_cost_per_mtok: Option<f64>,
    pub cached_input_cost_per_mtok: Option<f64>,
    pub cache_write_cost_per_mtok: Option<f64>,
}

/// What happens when a budget is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetMode {
    /// Warn once (per period), keep calling.
    Soft,
    /// Refuse cloud calls; a local candidate answers instead (and the user is told).
    Hard,
}

/// A spending limit in USD, per day (UTC) and per month (UTC); `None` = no limit for that period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    pub daily_usd: Option<f64>,
    pub monthly_usd: Option<f64>,
    pub mode: BudgetMode,
}

/// Chat panel and agent settings (`[chat]`).
#[derive(Debug, Clone, PartialEq)]
pub struct ChatConfig {
    /// Most model calls per turn (each tool round is one).
    pub max_steps: usize,
    /// Most tokens the model may write per call.
    pub max_tokens: u32,
    /// Most tokens a turn may spend, prompts and answers of all its steps summed: no further
    /// step starts once they are reached.
    pub max_turn_tokens: u64,
    /// The whole turn's time limit (tool calls and reviews included).
    pub timeout: Duration,
}

/// Router settings (`[router]`).
#[derive(Debug, Clone, PartialEq)]
pub struct RouterConfig {
    /// Hedge latency-critical requests (completions): start the next candidate when the first has
    /// not sent a token by its recent p95 time to first token.
    pub hedge: bool,
    /// Hedge delay used until a model has enough measured TTFTs for a p95.
    pub hedge_after: Duration,
    /// How long a failing model is skipped (a `retry-after` longer than this wins).
    pub cooldown: Duration,
    /// A stream with no first event in this time counts as failed and falls back.
    pub first_token_timeout: Duration,
    /// Most providers tried for one request.
    pub max_attempts: usize,
    /// The usage ledger (SQLite); default `$XDG_STATE_HOME/zeke/usage.sqlite3`.
    pub ledger: Option<PathBuf>,
}

/// Settings of inline completion (`[completion]`).
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionConfig {
    pub provider: Option<String>,
    /// Text before + after the cursor, in estimated tokens (see `core::context`).
    pub max_context_tokens: usize,
    pub max_tokens: u32,
    pub max_lines: usize,
    pub timeout: Duration,
}

/// Settings of `:Zeke explain` (`[explain]`).
#[derive(Debug, Clone, PartialEq)]
pub struct ExplainConfig {
    pub provider: Option<String>,
    pub max_tokens: u32,
    pub timeout: Duration,
}

/// Settings of `:Zeke fix` and `:Zeke test` (`[fix]`).
#[derive(Debug, Clone, PartialEq)]
pub struct FixConfig {
    /// Default: `explain.provider`, then `completion.provider`.
    pub provider: Option<String>,
    pub max_tokens: u32,
    pub timeout: Duration,
    /// Longest model answer read, in bytes; the rest is cut (and the user told).
    pub max_answer_bytes: usize,
}

/// Settings of `zeke mcp` (`[mcp]`).
#[derive(Debug, Clone, PartialEq)]
pub struct McpConfig {
    /// Allowed roots from the config (`--root` adds to them); `~/` expanded, not yet canonical.
    pub roots: Vec<PathBuf>,
    /// Audit log path (`$ZEKE_AUDIT_LOG` wins; default under the state dir, see `app::audit`).
    pub audit_log: Option<PathBuf>,
    /// Tool outputs longer than this many characters are paged.
    pub max_output_chars: usize,
    /// Tools per `tools/list` page.
    pub tools_page_size: usize,
    /// How long to wait for the user's answer to a policy prompt.
    pub prompt_timeout: Duration,
}

/// An external MCP server whose tools the chat agent may call (`[mcp_servers.NAME]`), started on
/// first use by `app::mcp_client`; each call needs the `mcp.call` capability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpServerConfig {
    /// The table's name (`[A-Za-z0-9_-]+`): its tools are offered as `NAME__TOOL`.
    pub name: String,
    /// The program: an absolute path, or a bare name found in an absolute `$PATH` entry.
    pub command: String,
    pub args: Vec<String>,
    /// Variables set for the server, over Zeke's environment less its `*_API_KEY` variables.
    pub env: BTreeMap<String, String>,
    /// Time limit of the start (handshake), of listing its tools and of each call.
    pub timeout: Duration,
}

/// Settings of the `fetch` tool (`[fetch]`); whether it may run at all is the `net.http`
/// capability.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchConfig {
    /// Whether URLs may reach loopback, private, link-local and other non-public addresses
    /// (default false: a prompt-injected model must not read services on this machine or the LAN).
    pub allow_private: bool,
    /// Whole-request time limit (connect, redirects, body).
    pub timeout: Duration,
    /// Most bytes of a response body read; the rest is dropped.
    pub max_bytes: usize,
}

/// The validated configuration. There is deliberately no `Default`: build it with [`Config::load`]
/// or [`Config::from_value`] so that validation always runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The TOML file that was read, if any.
    pub source: Option<PathBuf>,
    /// `log_level`; `info` when unset. See [`crate::logging`] for what overrides it.
    pub log_level: LogLevel,
    pub completion: CompletionConfig,
    pub explain: ExplainConfig,
    pub fix: FixConfig,
    pub fetch: FetchConfig,
    /// Configured providers by name; empty means "find a local server".
    pub providers: BTreeMap<String, ProviderConfig>,
    /// `[routes]`: the candidate providers per intent, in order of preference.
    pub routes: BTreeMap<Intent, Vec<String>>,
    /// `[budget]`: the total over every provider.
    pub budget: Option<Budget>,
    pub router: RouterConfig,
    pub chat: ChatConfig,
    pub mcp: McpConfig,
    /// `[mcp_servers.NAME]`: external MCP servers for the chat agent, by name.
    pub mcp_servers: BTreeMap<String, McpServerConfig>,
    /// `[lsp]`: the language servers of the `lsp_*` tools.
    pub lsp: LspConfig,
    /// `[capabilities]` and `[scopes."…"]`: what needs asking (shared by every surface).
    pub policy: Policy,
    /// The merged raw table (file + editor), echoed to Lua so it sees TOML-only settings.
    pub raw: Value,
}

/// Invalid configuration: one message per problem, each naming its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub messages: Vec<String>,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid zeke config: {}", self.messages.join("; "))
    }
}

impl std::error::Error for ConfigError {}

fn err(msg: impl Into<String>) -> ConfigError {
    ConfigError {
        messages: vec![msg.into()],
    }
}

// ---- raw schema (every field optional; unknown keys rejected) ----

impl Config {
    /// Reads the TOML file at `path` (if it exists), merges `overrides` (the editor's table) on top
    /// and validates. Errors name the file or the key.
    pub fn load(path: Option<&Path>, overrides: Option<Value>) -> Result<Config, ConfigError> {
        let mut merged = Value::Object(Default::default());
        let mut source = None;
        if let Some(path) = path {
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    let table: toml::Table = toml::from_str(&text).map_err(|e| {
                        err(format!("{}: {}", path.display(), e.to_string().trim()))
                    })?;
                    merged = serde_json::to_value(table)
                        .map_err(|e| err(format!("{}: {e}", path.display())))?;
                    source = Some(path.to_path_buf());
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(err(format!("{}: {e}", path.display()))),
            }
        }
        if let Some(o) = overrides {
            merge(&mut merged, normalize(o));
        }
        let mut config = Config::from_value(merged)?;
        config.source = source;
        Ok(config)
    }

    /// Validates a raw table (the TOML schema as JSON).
    pub fn from_value(raw: Value) -> Result<Config, ConfigError> {
        let raw = normalize(raw);
        let parsed: RawConfig = serde_path_to_error::deserialize(&raw).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            if path == "." {
                err(inner)
            } else {
                err(format!("{path}: {inner}"))
            }
        })?;
        let mut problems = Vec::new();
        let log_level = match parsed.log_level.as_deref() {
            None => LogLevel::Info,
            Some(s) => LogLevel::ALL
                .into_iter()
                .find(|l| l.as_str() == s)
                .unwrap_or_else(|| {
                    problems.push(format!(
                        "log_level: must be one of error, warn, info, debug, trace (got {s:?})"
                    ));
                    LogLevel::Info
                }),
        };
        let mut providers = BTreeMap::new();
        for (name, p) in parsed.providers {
            match provider(&name, p) {
                Ok(p) => {
                    providers.insert(name, p);
                }
                Err(e) => problems.extend(e.messages),
            }
        }
        let c = parsed.completion;
        let e = parsed.explain;
        let f = parsed.fix;
        for (key, name) in [
            ("completion.provider", &c.provider),
            ("explain.provider", &e.provider),
            ("fix.provider", &f.provider),
        ] {
            if let Some(name) = name
                && !providers.contains_key(name)
            {
                let known: Vec<&str> = providers.keys().map(String::as_str).collect();
                problems.push(format!(
                    "{key}: no provider named {name:?} (configured: {})",
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                ));
            }
        }
        let completion = CompletionConfig {
            provider: c.provider,
            max_context_tokens: limited(
                &mut problems,
                "completion.max_context_tokens",
                c.max_context_tokens,
            ) as usize,
            max_tokens: limited(&mut problems, "completion.max_tokens", c.max_tokens) as u32,
            max_lines: limited(&mut problems, "completion.max_lines", c.max_lines) as usize,
            timeout: Duration::from_millis(limited(
                &mut problems,
                "completion.timeout_ms",
                c.timeout_ms,
            )),
        };
        limited(&mut problems, "completion.debounce_ms", c.debounce_ms);
        let explain = ExplainConfig {
            provider: e.provider,
            max_tokens: limited(&mut problems, "explain.max_tokens", e.max_tokens) as u32,
            timeout: Duration::from_millis(limited(
                &mut problems,
                "explain.timeout_ms",
                e.timeout_ms,
            )),
        };
        let fix = FixConfig {
            provider: f.provider,
            max_tokens: limited(&mut problems, "fix.max_tokens", f.max_tokens) as u32,
            timeout: Duration::from_millis(limited(&mut problems, "fix.timeout_ms", f.timeout_ms)),
            max_answer_bytes: limited(&mut problems, "fix.max_answer_kb", f.max_answer_kb) as usize
                * 1024,
        };
        let m = parsed.mcp;
        let mcp = McpConfig {
            roots: m
                .roots
                .unwrap_or_default()
                .iter()
                .map(|r| expand_home(r))
                .collect(),
            audit_log: m.audit_log.map(|p| expand_home(&p)),
            max_output_chars: limited(&mut problems, "mcp.max_output_chars", m.max_output_chars)
                as usize,
            tools_page_size: limited(&mut problems, "mcp.tools_page_size", m.tools_page_size)
                as usize,
            prompt_timeout: Duration::from_millis(limited(
                &mut problems,
                "mcp.prompt_timeout_ms",
                m.prompt_timeout_ms,
            )),
        };
        let f = parsed.fetch;
        let fetch = FetchConfig {
            allow_private: f.allow_private.unwrap_or(false),
            timeout: Duration::from_millis(limited(
                &mut problems,
                "fetch.timeout_ms",
                f.timeout_ms,
            )),
            max_bytes: limited(&mut problems, "fetch.max_kb", f.max_kb) as usize * 1024,
        };
        let mut routes = BTreeMap::new();
        for (intent, names) in parsed.routes {
            let Some(i) = Intent::parse(&intent) else {
                problems.push(format!(
                    "routes.{intent}: not an intent (one of {})",
                    Intent::ALL.map(Intent::as_str).join(", ")
                ));
                continue;
            };
            for n in &names {
                if !providers.contains_key(n) {
                    let known: Vec<&str> = providers.keys().map(String::as_str).collect();
                    problems.push(format!(
                        "routes.{intent}: no provider named {n:?} (configured: {})",
                        if known.is_empty() {
                            "none".into()
                        } else {
                            known.join(", ")
                        }
                    ));
                }
            }
            routes.insert(i, names);
        }
        let budget = parsed
            .budget
            .and_then(|b| budget("budget", b, &mut problems));
        let r = parsed.router;
        let router = RouterConfig {
            hedge: r.hedge.unwrap_or(true),
            hedge_after: Duration::from_millis(limited(
                &mut problems,
                "router.hedge_after_ms",
                r.hedge_after_ms,
            )),
            cooldown: Duration::from_millis(limited(
                &mut problems,
                "router.cooldown_ms",
                r.cooldown_ms,
            )),
            first_token_timeout: Duration::from_millis(limited(
                &mut problems,
                "router.first_token_timeout_ms",
                r.first_token_timeout_ms,
            )),
            max_attempts: limited(&mut problems, "router.max_attempts", r.max_attempts) as usize,
            ledger: r.ledger.map(|p| expand_home(&p)),
        };
        let ch = parsed.chat;
        if let Some(l) = &ch.layout
            && l != "float"
            && l != "split"
        {
            problems.push(format!(
                "chat.layout: must be \"float\" or \"split\" (got {l:?})"
            ));
        }
        if let Some(h) = &ch.highlight
            && !["treesitter", "syntax", "none"].contains(&h.as_str())
        {
            problems.push(format!(
                "chat.highlight: must be \"treesitter\", \"syntax\" or \"none\" (got {h:?})"
            ));
        }
        let chat = ChatConfig {
            max_steps: limited(&mut problems, "chat.max_steps", ch.max_steps) as usize,
            max_tokens: limited(&mut problems, "chat.max_tokens", ch.max_tokens) as u32,
            max_turn_tokens: limited(&mut problems, "chat.max_turn_tokens", ch.max_turn_tokens),
            timeout: Duration::from_millis(limited(
                &mut problems,
                "chat.timeout_ms",
                ch.timeout_ms,
            )),
        };
        let mcp_servers = (parsed.mcp_servers.into_iter())
            .filter_map(|(name, s)| s.validate(name, &mut problems))
            .map(|s| (s.name.clone(), s))
            .collect();
        let lsp = lsp::build(parsed.lsp, &mut problems);
        let policy = policy(parsed.capabilities, parsed.scopes, &mut problems);
        if !problems.is_empty() {
            return Err(ConfigError { messages: problems });
        }
        Ok(Config {
            source: None,
            log_level,
            completion,
            explain,
            fix,
            fetch,
            providers,
            routes,
            budget,
            router,
            chat,
            mcp,
            mcp_servers,
            lsp,
            policy,
            raw,
        })
    }
}

/// `v` checked against the [`limits::LIMITS`] row of `key` (its default when absent).
fn limited(problems: &mut Vec<String>, key: &str, v: Option<u64>) -> u64 {
    let l = limits::get(key);
    ranged(problems, key, v, l.default, l.min, l.max)
}

fn ranged(
    problems: &mut Vec<String>,
    key: &str,
    v: Option<u64>,
    default: u64,
    min: u64,
    max: u64,
) -> u64 {
    match v {
        None => default,
        Some(v) if (min..=max).contains(&v) => v,
        Some(v) => {
            problems.push(format!("{key}: must be between {min} and {max} (got {v})"));
            default
        }
    }
}

/// `~` and `~/…` → `$HOME/…`.
fn expand_home(p: &str) -> PathBuf {
    match (
        p.strip_prefix("~/")
            .or(if p == "~" { Some("") } else { None }),
        std::env::var_os("HOME"),
    ) {
        (Some(rest), Some(h)) => PathBuf::from(h).join(rest),
        _ => PathBuf::from(p),
    }
}

/// The config file path: `$ZEKE_CONFIG`, else `$XDG_CONFIG_HOME/zeke/config.toml`, else
/// `$HOME/.config/zeke/config.toml`.
pub fn default_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ZEKE_CONFIG") {
        return Some(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("zeke").join("config.toml"))
}

#[cfg(test)]
mod tests;
