//! Every numeric setting's default and limits, written once: config validation uses them, `zeke
//! config --schema` prints them for the Lua side (`lua/zeke/schema.json`, checked against this
//! table by a test) and the docs are checked to name every key.

/// One numeric setting: its dotted key, default, inclusive bounds and unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub key: &'static str,
    pub default: u64,
    pub min: u64,
    pub max: u64,
    pub unit: &'static str,
}

const fn l(key: &'static str, default: u64, min: u64, max: u64, unit: &'static str) -> Limit {
    Limit {
        key,
        default,
        min,
        max,
        unit,
    }
}

/// The table.
pub const LIMITS: &[Limit] = &[
    l("completion.max_context_tokens", 1024, 32, 32_768, "tokens"),
    l("completion.max_tokens", 64, 1, 4096, "tokens"),
    l("completion.max_lines", 8, 1, 200, "lines"),
    l("completion.debounce_ms", 75, 0, 5_000, "milliseconds"),
    l("completion.timeout_ms", 8_000, 100, 600_000, "milliseconds"),
    l("explain.max_tokens", 512, 1, 32_768, "tokens"),
    l("explain.timeout_ms", 60_000, 100, 3_600_000, "milliseconds"),
    l("fix.max_tokens", 1024, 1, 32_768, "tokens"),
    l("fix.timeout_ms", 120_000, 100, 3_600_000, "milliseconds"),
    l("fix.max_answer_kb", 64, 1, 4096, "KiB"),
    l(
        "mcp.max_output_chars",
        40_000,
        1_000,
        1_000_000,
        "characters",
    ),
    l("mcp.tools_page_size", 100, 1, 1_000, "tools per page"),
    l(
        "mcp.prompt_timeout_ms",
        300_000,
        1_000,
        3_600_000,
        "milliseconds",
    ),
    l("fetch.timeout_ms", 30_000, 100, 600_000, "milliseconds"),
    l("fetch.max_kb", 5_120, 1, 102_400, "KiB"),
    l("router.hedge_after_ms", 400, 10, 60_000, "milliseconds"),
    l("router.cooldown_ms", 30_000, 0, 3_600_000, "milliseconds"),
    l(
        "router.first_token_timeout_ms",
        20_000,
        100,
        600_000,
        "milliseconds",
    ),
    l("router.max_attempts", 3, 1, 16, "providers"),
    l("chat.max_steps", 12, 1, 100, "model calls per turn"),
    l("chat.max_tokens", 2048, 16, 65_536, "tokens"),
    l(
        "chat.max_turn_tokens",
        200_000,
        100,
        100_000_000,
        "tokens per turn (every step's prompt and answer)",
    ),
    l("chat.timeout_ms", 600_000, 1_000, 7_200_000, "milliseconds"),
    l(
        "lsp.wait_ms",
        20_000,
        0,
        600_000,
        "milliseconds a call waits for indexing",
    ),
    l(
        "lsp.start_timeout_ms",
        60_000,
        1_000,
        600_000,
        "milliseconds",
    ),
];

/// The row of `key`. Panics on a key not in the table: that is a programming error caught by
/// every config test.
pub fn get(key: &str) -> Limit {
    *LIMITS
        .iter()
        .find(|l| l.key == key)
        .unwrap_or_else(|| panic!("no limit for {key}"))
}

/// The schema the Lua side validates `setup{}` with (`zeke config --schema`; a copy is
/// `lua/zeke/schema.json`): `{limits: {KEY: {default, min, max, unit}}, provider_kinds,
/// intents, budget_modes}`.
pub fn schema() -> serde_json::Value {
    let limits: serde_json::Map<String, serde_json::Value> = LIMITS
        .iter()
        .map(|l| {
            (
                l.key.to_string(),
                serde_json::json!({"default": l.default, "min": l.min, "max": l.max, "unit": l.unit}),
            )
        })
        .collect();
    serde_json::json!({
        "limits": limits,
        "provider_kinds": super::ProviderKind::ALL.map(super::ProviderKind::as_str),
        "intents": crate::core::llm::Intent::ALL.map(crate::core::llm::Intent::as_str),
        "budget_modes": ["soft", "hard"],
    })
}
