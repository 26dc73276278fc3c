//! The raw configuration schema: what the TOML file and the editor's table may contain, every
//! field optional, unknown keys rejected (`deny_unknown_fields`). `config` validates it into
//! [`super::Config`].

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::{McpServerConfig, ProviderKind};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    /// Lua only: path of the zeke binary.
    #[allow(dead_code)]
    pub(super) bin: Option<String>,
    pub(super) log_level: Option<String>,
    #[serde(default)]
    pub(super) completion: RawCompletion,
    #[serde(default)]
    pub(super) explain: RawExplain,
    #[serde(default)]
    pub(super) fix: RawFix,
    #[allow(dead_code)]
    pub(super) keymaps: Option<RawKeymaps>,
    #[allow(dead_code)]
    pub(super) ui: Option<RawUi>,
    #[serde(default)]
    pub(super) providers: BTreeMap<String, RawProvider>,
    #[serde(default)]
    pub(super) mcp: RawMcp,
    #[serde(default)]
    pub(super) mcp_servers: BTreeMap<String, RawMcpServer>,
    #[serde(default)]
    pub(super) fetch: RawFetch,
    #[serde(default)]
    pub(super) routes: BTreeMap<String, Vec<String>>,
    pub(super) budget: Option<RawBudget>,
    #[serde(default)]
    pub(super) router: RawRouter,
    #[serde(default)]
    pub(super) chat: RawChat,
    #[serde(default)]
    pub(super) lsp: super::lsp::RawLsp,
    #[serde(default)]
    pub(super) capabilities: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) scopes: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFetch {
    pub(super) allow_private: Option<bool>,
    pub(super) timeout_ms: Option<u64>,
    pub(super) max_kb: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMcp {
    pub(super) roots: Option<Vec<String>>,
    pub(super) audit_log: Option<String>,
    pub(super) max_output_chars: Option<u64>,
    pub(super) tools_page_size: Option<u64>,
    pub(super) prompt_timeout_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMcpServer {
    pub(super) command: String,
    pub(super) args: Option<Vec<String>>,
    pub(super) env: Option<BTreeMap<String, String>>,
    pub(super) timeout_ms: Option<u64>,
}

impl RawMcpServer {
    /// The validated `[mcp_servers.NAME]`; `None` with the problems pushed (each naming its key).
    pub(super) fn validate(
        self,
        name: String,
        problems: &mut Vec<String>,
    ) -> Option<McpServerConfig> {
        let before = problems.len();
        let key = format!("mcp_servers.{name}");
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            problems.push(format!("{key}: a server name may hold only A-Z, a-z, 0-9, _ and - (its tools are named NAME__TOOL)"));
        }
        if self.command.trim().is_empty() {
            problems.push(format!("{key}.command: must not be empty"));
        }
        let args = self.args.unwrap_or_default();
        let env = self.env.unwrap_or_default();
        for (what, bad) in [
            ("command", self.command.contains('\0')),
            ("args", args.iter().any(|a| a.contains('\0'))),
            (
                "env",
                env.iter()
                    .any(|(k, v)| k.is_empty() || k.contains(['=', '\0']) || v.contains('\0')),
            ),
        ] {
            if bad {
                problems.push(format!(
                    "{key}.{what}: no NUL bytes (and no empty or '='-holding variable names)"
                ));
            }
        }
        let ms = super::ranged(
            problems,
            &format!("{key}.timeout_ms"),
            self.timeout_ms,
            30_000,
            100,
            3_600_000,
        );
        (problems.len() == before).then(|| McpServerConfig {
            name,
            command: self.command,
            args,
            env,
            timeout: std::time::Duration::from_millis(ms),
        })
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCompletion {
    #[allow(dead_code)]
    pub(super) enabled: Option<bool>,
    pub(super) provider: Option<String>,
    #[allow(dead_code)]
    pub(super) debounce_ms: Option<u64>,
    pub(super) max_context_tokens: Option<u64>,
    pub(super) max_tokens: Option<u64>,
    pub(super) max_lines: Option<u64>,
    pub(super) timeout_ms: Option<u64>,
    #[allow(dead_code)]
    pub(super) filetypes: Option<BTreeMap<String, bool>>,
    #[allow(dead_code)]
    pub(super) hide_during_completion: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFix {
    pub(super) provider: Option<String>,
    pub(super) max_tokens: Option<u64>,
    pub(super) timeout_ms: Option<u64>,
    pub(super) max_answer_kb: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExplain {
    pub(super) provider: Option<String>,
    pub(super) max_tokens: Option<u64>,
    pub(super) timeout_ms: Option<u64>,
}

/// A key, or `false` for "no mapping".
#[derive(Deserialize)]
#[serde(untagged)]
#[allow(dead_code)]
pub(super) enum RawKey {
    Key(String),
    Off(bool),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(super) struct RawKeymaps {
    pub(super) accept: Option<RawKey>,
    pub(super) accept_word: Option<RawKey>,
    pub(super) accept_line: Option<RawKey>,
    pub(super) dismiss: Option<RawKey>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(super) struct RawUi {
    pub(super) border: Option<Value>,
    pub(super) max_width: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProvider {
    pub(super) kind: ProviderKind,
    pub(super) url: Option<String>,
    pub(super) model: Option<String>,
    pub(super) api_key_env: Option<String>,
    pub(super) api_key_cmd: Option<String>,
    pub(super) reply: Option<String>,
    pub(super) delay_ms: Option<u64>,
    pub(super) api_version: Option<String>,
    pub(super) keep_alive: Option<String>,
    pub(super) local: Option<bool>,
    pub(super) context_window: Option<u64>,
    pub(super) input_cost_per_mtok: Option<f64>,
    pub(super) output_cost_per_mtok: Option<f64>,
    pub(super) cached_input_cost_per_mtok: Option<f64>,
    pub(super) cache_write_cost_per_mtok: Option<f64>,
    pub(super) budget: Option<RawBudget>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBudget {
    pub(super) daily_usd: Option<f64>,
    pub(super) monthly_usd: Option<f64>,
    pub(super) mode: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawChat {
    pub(super) max_steps: Option<u64>,
    pub(super) max_tokens: Option<u64>,
    pub(super) max_turn_tokens: Option<u64>,
    pub(super) timeout_ms: Option<u64>,
    /// Lua only: how the transcript is highlighted.
    #[allow(dead_code)]
    pub(super) highlight: Option<String>,
    /// Lua only: the panel's layout.
    #[allow(dead_code)]
    pub(super) layout: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRouter {
    pub(super) hedge: Option<bool>,
    pub(super) hedge_after_ms: Option<u64>,
    pub(super) cooldown_ms: Option<u64>,
    pub(super) first_token_timeout_ms: Option<u64>,
    pub(super) max_attempts: Option<u64>,
    pub(super) ledger: Option<String>,
}
