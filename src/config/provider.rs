//! Validation of one `[providers.NAME]` entry and of budgets (`[budget]`,
//! `[providers.NAME.budget]`).

use std::time::Duration;

use super::raw::{RawBudget, RawProvider};
use super::{
    Budget, BudgetMode, ConfigError, KeySource, ModelOverrides, ProviderConfig, ProviderKind, err,
    ranged,
};

pub(super) fn provider(name: &str, p: RawProvider) -> Result<ProviderConfig, ConfigError> {
    let key_path = |k: &str| format!("providers.{name}.{k}");
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(err(format!(
            "providers.{name}: a provider name uses letters, digits, '_' and '-'"
        )));
    }
    if p.kind == ProviderKind::Fake && !cfg!(feature = "test-support") {
        return Err(err(format!(
            "{}: \"fake\" needs a zeke built with --features test-support",
            key_path("kind")
        )));
    }
    let Some(url) = p.url.or_else(|| p.kind.default_url().map(str::to_string)) else {
        return Err(err(format!(
            "{}: required for kind = \"{}\" (e.g. https://RESOURCE.openai.azure.com/openai/v1, or \
             …/openai/deployments/NAME with api_version)",
            key_path("url"),
            p.kind.as_str()
        )));
    };
    let url = url.trim_end_matches('/').to_string();
    if p.kind != ProviderKind::Fake && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(err(format!(
            "{}: must start with http:// or https:// (got {url:?})",
            key_path("url")
        )));
    }
    if p.api_key_env.is_some() && p.api_key_cmd.is_some() {
        return Err(err(format!(
            "{}: give api_key_env or api_key_cmd, not both",
            key_path("api_key_cmd")
        )));
    }
    if p.kind != ProviderKind::Fake && (p.reply.is_some() || p.delay_ms.is_some()) {
        return Err(err(format!(
            "{}: only the fake provider takes reply/delay_ms",
            key_path("reply")
        )));
    }
    let key = match (p.api_key_env, p.api_key_cmd) {
        (Some(env), None) => KeySource::Env(env),
        (None, Some(cmd)) => KeySource::Cmd(cmd),
        _ => p
            .kind
            .default_key_env()
            .map(|e| KeySource::Env(e.into()))
            .unwrap_or(KeySource::None),
    };
    if p.api_version.is_some() && p.kind != ProviderKind::Azure {
        return Err(err(format!(
            "{}: only kind = \"azure\" takes api_version",
            key_path("api_version")
        )));
    }
    if p.keep_alive.is_some() && p.kind != ProviderKind::Ollama {
        return Err(err(format!(
            "{}: only kind = \"ollama\" takes keep_alive",
            key_path("keep_alive")
        )));
    }
    let mut problems = Vec::new();
    let mut cost = |k: &str, v: Option<f64>| -> Option<f64> {
        match v {
            Some(x) if !(x.is_finite() && (0.0..=10_000.0).contains(&x)) => {
                problems.push(format!(
                    "{}: must be between 0 and 10000 USD per million tokens (got {x})",
                    key_path(k)
                ));
                None
            }
            other => other,
        }
    };
    let overrides = ModelOverrides {
        input_cost_per_mtok: cost("input_cost_per_mtok", p.input_cost_per_mtok),
        output_cost_per_mtok: cost("output_cost_per_mtok", p.output_cost_per_mtok),
        cached_input_cost_per_mtok: cost(
            "cached_input_cost_per_mtok",
            p.cached_input_cost_per_mtok,
        ),
        cache_write_cost_per_mtok: cost("cache_write_cost_per_mtok", p.cache_write_cost_per_mtok),
        context_window: p.context_window.map(|w| {
            ranged(
                &mut problems,
                &key_path("context_window"),
                Some(w),
                0,
                256,
                100_000_000,
            ) as u32
        }),
    };
    let budget = p
        .budget
        .and_then(|b| budget(&key_path("budget"), b, &mut problems));
    if !problems.is_empty() {
        return Err(ConfigError { messages: problems });
    }
    let loopback = url::Url::parse(&url).ok().is_some_and(|u| match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    });
    Ok(ProviderConfig {
        name: name.to_string(),
        kind: p.kind,
        local: p.local.unwrap_or(p.kind.is_local() || loopback),
        url,
        model: p.model.filter(|m| !m.is_empty()),
        key,
        reply: p.reply,
        delay: Duration::from_millis(p.delay_ms.unwrap_or(5).min(10_000)),
        api_version: p.api_version.filter(|v| !v.is_empty()),
        keep_alive: p.keep_alive,
        overrides,
        budget,
    })
}

/// `[budget]` / `[providers.NAME.budget]` → a [`Budget`] (`None` with a problem when invalid).
pub(super) fn budget(key: &str, b: RawBudget, problems: &mut Vec<String>) -> Option<Budget> {
    let mode = match b.mode.as_deref() {
        None | Some("soft") => BudgetMode::Soft,
        Some("hard") => BudgetMode::Hard,
        Some(m) => {
            problems.push(format!(
                "{key}.mode: must be \"soft\" or \"hard\" (got {m:?})"
            ));
            return None;
        }
    };
    for (k, v) in [("daily_usd", b.daily_usd), ("monthly_usd", b.monthly_usd)] {
        if let Some(v) = v
            && !(v.is_finite() && v >= 0.0)
        {
            problems.push(format!("{key}.{k}: must be a number of USD ≥ 0 (got {v})"));
            return None;
        }
    }
    Some(Budget {
        daily_usd: b.daily_usd,
        monthly_usd: b.monthly_usd,
        mode,
    })
}
