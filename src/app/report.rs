//! What the router and the ledger know, as JSON for every surface: `zeke usage --json`,
//! `zeke models --json`, and Neovim's `usage`, `models` and `status` requests (the same shapes).

use std::path::Path;

use serde_json::{Value, json};

use crate::app::providers::ProviderHealth;
use crate::app::{App, ProviderSet};
use crate::config::Config;
use crate::ledger::{Line, Summary};
use crate::router::{Health, Pool};

fn line(l: &Line) -> Value {
    json!({
        "provider": l.provider, "model": l.model, "requests": l.requests,
        "input_tokens": l.input_tokens, "cached_input_tokens": l.cached_input_tokens,
        "output_tokens": l.output_tokens, "cost_usd": l.cost_usd, "failures": l.failures,
    })
}

fn budget(b: &crate::config::Budget) -> Value {
    json!({
        "daily_usd": b.daily_usd,
        "monthly_usd": b.monthly_usd,
        "mode": match b.mode { crate::config::BudgetMode::Soft => "soft", crate::config::BudgetMode::Hard => "hard" },
    })
}

/// `{ledger, today: {cost_usd, by_model}, month: {…}, budget, last: [rows]}`; costs in USD, times
/// in ms, `ts_ms` since the Unix epoch.
pub fn usage(config: &Config, path: &Path, s: &Summary) -> Value {
    let total = |ls: &[Line]| ls.iter().map(|l| l.cost_usd).sum::<f64>();
    json!({
        "ledger": path.display().to_string(),
        "today": {"cost_usd": total(&s.today), "by_model": s.today.iter().map(line).collect::<Vec<_>>()},
        "month": {"cost_usd": total(&s.month), "by_model": s.month.iter().map(line).collect::<Vec<_>>()},
        "budget": config.budget.as_ref().map(budget),
        "last": s.last.iter().map(|r| json!({
            "ts_ms": r.ts_ms, "surface": r.surface, "intent": r.intent, "provider": r.provider,
            "model": r.model, "input_tokens": r.input_tokens, "cached_input_tokens": r.cached_input_tokens,
            "output_tokens": r.output_tokens, "cost_usd": r.cost_usd, "cost_estimated": r.cost_estimated,
            "ttft_ms": r.ttft_ms, "total_ms": r.total_ms, "outcome": r.outcome,
            "fallbacks": r.fallbacks, "hedged": r.hedged,
        })).collect::<Vec<_>>(),
    })
}

fn cooling_s(h: Option<&Health>) -> Option<u64> {
    h.and_then(|h| h.cooling(std::time::Instant::now()))
        .map(|u| {
            u.saturating_duration_since(std::time::Instant::now())
                .as_secs()
                .max(1)
        })
}

/// One object per configured provider: `{provider, kind, model, local, context_window,
/// price_per_mtok: {input, output, cached_input, cache_write} | null, tools, native_fim,
/// reachable, detail, key, ttft_ms, p95_ttft_ms, cooling_s, last_error, budget,
/// spent_today_usd, spent_month_usd, pinned}`. `health` holds
/// probe results when the caller probed (else those fields are null).
pub fn models(app: &App, set: &ProviderSet, health: &[ProviderHealth]) -> Vec<Value> {
    let measured = app.router.health();
    let pinned = app.router.pinned();
    let spend = app.router.spend();
    set.candidates()
        .into_iter()
        .map(|c| {
            let h = health.iter().find(|h| h.selected.name == c.name);
            let m = measured.get(&c.name);
            json!({
                "provider": c.name,
                "kind": c.kind.as_str(),
                "model": c.model,
                "local": c.local,
                "context_window": c.context_window,
                "price_per_mtok": c.price.map(|p| json!({
                    "input": p.input_per_mtok, "output": p.output_per_mtok,
                    "cached_input": p.cached_input_per_mtok, "cache_write": p.cache_write_per_mtok,
                })),
                "tools": c.tools,
                "native_fim": c.native_fim,
                "reachable": h.map(|h| h.reachable),
                "detail": h.map(|h| h.detail.clone()),
                "key": h.map(|h| h.key),
                "ttft_ms": m.and_then(|m| m.ewma_ttft_ms),
                "p95_ttft_ms": m.and_then(|m| m.p95_ttft()).map(|d| d.as_secs_f64() * 1e3),
                "cooling_s": cooling_s(m),
                "last_error": m.and_then(|m| m.last_error.as_ref()).map(|(k, msg)| json!({"kind": k.as_str(), "message": msg})),
                "budget": c.budget.as_ref().map(budget),
                "spent_today_usd": spend.get(&c.name).map_or(0.0, |s| s.today_usd),
                "spent_month_usd": spend.get(&c.name).map_or(0.0, |s| s.month_usd),
                "pinned": pinned.as_deref() == Some(c.name.as_str()),
            })
        })
        .collect()
}

/// For status lines: `{pinned, last: {provider, model} | null, spend_today_usd, spend_month_usd,
/// budget: {…} | null, budget_near: bool}` — near = 80 % of a daily or monthly total budget, or
/// of a provider's own.
pub fn router_status(app: &App, set: &ProviderSet) -> Value {
    let cfg = Pool::config(set);
    let budgets = cfg.budget.is_some() || cfg.providers.values().any(|p| p.budget.is_some());
    // with budgets the spend matters now; else the ledger is read once a request opened it
    let spend = if budgets {
        app.router.spend()
    } else {
        app.router.spend_if_open()
    };
    let today: f64 = spend.values().map(|s| s.today_usd).sum::<f64>() + 0.0;
    let month: f64 = spend.values().map(|s| s.month_usd).sum::<f64>() + 0.0;
    let near = |b: &crate::config::Budget, t: f64, m: f64| {
        b.daily_usd.is_some_and(|d| t >= 0.8 * d) || b.monthly_usd.is_some_and(|l| m >= 0.8 * l)
    };
    let mut budget_near = cfg.budget.as_ref().is_some_and(|b| near(b, today, month));
    for (name, p) in &cfg.providers {
        if let Some(b) = &p.budget {
            let s = spend.get(name).copied().unwrap_or_default();
            budget_near |= near(b, s.today_usd, s.month_usd);
        }
    }
    json!({
        "pinned": app.router.pinned(),
        "last": app.router.last_answer().map(|(p, m)| json!({"provider": p, "model": m})),
        "spend_today_usd": today,
        "spend_month_usd": month,
        "budget": cfg.budget.as_ref().map(budget),
        "budget_near": budget_near,
    })
}
