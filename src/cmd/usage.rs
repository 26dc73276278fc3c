//! `zeke ask`, `zeke usage` and `zeke models`: the router and the ledger from a shell.

use std::io::{Read, Write};
use std::sync::Arc;

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::app::{App, report};
use crate::core::llm::{ChatRequest, Intent, Message, ProviderError, Usage};
use crate::logging::LogArgs;
use crate::router::pricing;
use crate::router::{Attempt, Pool, RouteRequest, Routed, Summary, Surface};

use super::{runtime, start};

fn usage_json(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input_tokens,
        "cached_input_tokens": u.cached_input_tokens,
        "cache_write_tokens": u.cache_write_tokens,
        "output_tokens": u.output_tokens,
    })
}

fn error_json(e: &ProviderError) -> Value {
    json!({
        "kind": e.kind.as_str(),
        "message": e.message,
        "status": e.status,
        "retry_after_ms": e.retry_after.map(|d| d.as_millis() as u64),
    })
}

fn attempts_json(a: &[Attempt]) -> Value {
    Value::Array(
        a.iter()
            .map(|a| {
                json!({
                    "provider": a.provider,
                    "model": a.model,
                    "error": a.error.as_ref().map(|e| e.kind.as_str()),
                    "message": a.error.as_ref().map(|e| e.message.clone()),
                    "hedge_loser": a.hedge_loser,
                })
            })
            .collect(),
    )
}

fn summary_json(s: &Summary, error: Option<&ProviderError>) -> Value {
    json!({
        "done": true,
        "provider": s.provider,
        "model": s.model,
        "attempts": attempts_json(&s.attempts),
        "usage": usage_json(&s.usage),
        "cost_usd": s.cost_usd,
        "cost_estimated": s.cost_estimated,
        "ttft_ms": s.ttft.map(|d| d.as_secs_f64() * 1e3),
        "total_ms": s.total.as_secs_f64() * 1e3,
        "finish": s.finish.map(|f| format!("{f:?}").to_ascii_lowercase()),
        "hedged": s.hedged,
        "error": error.map(error_json),
    })
}

/// `zeke ask`: streams the routed answer to stdout (text, or JSON lines with `--json`); notices
/// and errors go to stderr in text mode. Exit 1 when every candidate failed.
pub fn ask(
    log: LogArgs,
    provider: Option<String>,
    intent: String,
    json_out: bool,
    max_tokens: u32,
    prompt: Vec<String>,
) -> anyhow::Result<i32> {
    let (loaded, _) = start(&log)?;
    let Some(intent) = Intent::parse(&intent) else {
        anyhow::bail!(
            "--intent: one of {} (got {intent:?})",
            Intent::ALL.map(Intent::as_str).join(", ")
        );
    };
    let mut text = prompt.join(" ");
    if text.is_empty() || text == "-" {
        text.clear();
        std::io::stdin().read_to_string(&mut text)?;
    }
    if text.trim().is_empty() {
        anyhow::bail!("nothing to ask: give a prompt or pipe one on stdin");
    }
    let config = loaded?;
    if let Some(p) = &provider
        && !config.providers.contains_key(p)
    {
        anyhow::bail!("no provider named {p:?} in the config");
    }
    let rt = runtime()?;
    let code = rt.block_on(async {
        let app: Arc<App> = App::new(config.clone());
        let set = app.configure(config).await;
        let req = ChatRequest::new(vec![Message::user(text)], max_tokens, 0.3);
        let rr = RouteRequest {
            provider,
            ..RouteRequest::new(intent, Surface::Cli)
        };
        let pool: Arc<dyn Pool> = set;
        let mut stream = app.router.chat(pool, rr, req);
        let mut out = std::io::stdout().lock();
        let line = |out: &mut std::io::StdoutLock<'_>, v: Value| -> std::io::Result<()> {
            writeln!(out, "{v}")?;
            out.flush()
        };
        let mut code = 1;
        let mut at_line_start = true;
        while let Some(item) = stream.next().await {
            match item {
                Ok(Routed::Text(t)) => {
                    if json_out {
                        line(&mut out, json!({ "text": t }))?;
                    } else {
                        out.write_all(t.as_bytes())?;
                        out.flush()?;
                        at_line_start = t.ends_with('\n');
                    }
                }
                Ok(Routed::Answering { provider, model }) => {
                    if json_out {
                        line(&mut out, json!({ "answering": {"provider": provider, "model": model} }))?;
                    }
                }
                Ok(Routed::Restart) => {
                    if json_out {
                        line(&mut out, json!({ "restart": true }))?;
                    } else {
                        if !at_line_start {
                            writeln!(out)?;
                        }
                        eprintln!("zeke: the answer restarts (the next provider answered differently)");
                    }
                }
                Ok(Routed::ToolCall(c)) => {
                    if json_out {
                        line(&mut out, json!({ "tool_call": {"id": c.id, "name": c.name, "arguments": c.arguments} }))?;
                    }
                }
                Ok(Routed::Fallback { from, error }) => {
                    if json_out {
                        line(&mut out, json!({ "fallback": {"from": from, "error": error_json(&error)} }))?;
                    } else {
                        eprintln!("zeke: {from} failed: {error}; the next provider takes over");
                    }
                }
                Ok(Routed::Notice(m)) => {
                    if json_out {
                        line(&mut out, json!({ "notice": m }))?;
                    } else {
                        eprintln!("zeke: {m}");
                    }
                }
                Ok(Routed::Done(s)) => {
                    if json_out {
                        line(&mut out, summary_json(&s, None))?;
                    } else if !at_line_start {
                        writeln!(out)?;
                    }
                    code = 0;
                }
                Err(f) => {
                    if json_out {
                        line(&mut out, summary_json(&f.summary, Some(&f.error)))?;
                    } else {
                        if !at_line_start {
                            writeln!(out)?;
                        }
                        eprintln!("zeke: {}", f.error);
                    }
                    code = 1;
                }
            }
        }
        drop(stream);
        if let Some(l) = app.router.ledger() {
            l.flush();
        }
        anyhow::Ok(code)
    })?;
    Ok(code)
}

/// `zeke usage [--json] [--last N]`: today's and this month's usage by provider and model, the
/// budgets, and the newest rows of the ledger.
pub fn usage(log: LogArgs, json_out: bool, last: usize) -> anyhow::Result<i32> {
    let (loaded, _) = start(&log)?;
    let config = loaded?;
    let path = crate::app::ledger_path(&config);
    let ledger = crate::ledger::Ledger::open(&path)?;
    let s = ledger.summary(last)?;
    let total = |ls: &[crate::ledger::Line]| ls.iter().map(|l| l.cost_usd).sum::<f64>();
    if json_out {
        let v = report::usage(&config, &path, &s);
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    println!("ledger: {}", path.display());
    for (title, lines) in [("today (UTC)", &s.today), ("this month (UTC)", &s.month)] {
        println!("{title}: ${:.4}", total(lines));
        for l in lines {
            println!(
                "  {:<14} {:<28} {:>5} req  {:>8} in ({} cached) {:>7} out  ${:.4}{}",
                l.provider,
                crate::providers::label(&l.model),
                l.requests,
                l.input_tokens,
                l.cached_input_tokens,
                l.output_tokens,
                l.cost_usd,
                if l.failures > 0 {
                    format!("  {} failed", l.failures)
                } else {
                    String::new()
                }
            );
        }
    }
    if let Some(b) = config.budget {
        let limit = |v: Option<f64>| {
            v.map(|v| format!("${v:.2}"))
                .unwrap_or_else(|| "none".into())
        };
        println!(
            "budget ({:?}): daily {} · monthly {}",
            b.mode,
            limit(b.daily_usd),
            limit(b.monthly_usd)
        );
    }
    if !s.last.is_empty() {
        println!("last {}:", s.last.len());
    }
    for r in &s.last {
        let secs = r.ts_ms / 1000;
        println!(
            "  {} {:<4} {:<10} {:<14} {:<24} {:>6}/{:<6} ${:.5}{} ttft {} total {:.0} ms {}{}",
            format_utc(secs),
            r.surface,
            r.intent,
            r.provider,
            crate::providers::label(&r.model),
            r.input_tokens,
            r.output_tokens,
            r.cost_usd,
            if r.cost_estimated { "~" } else { "" },
            r.ttft_ms
                .map(|t| format!("{t:.0} ms"))
                .unwrap_or_else(|| "-".into()),
            r.total_ms,
            r.outcome,
            if r.fallbacks > 0 {
                format!(
                    " ({} fallback{})",
                    r.fallbacks,
                    if r.fallbacks == 1 { "" } else { "s" }
                )
            } else {
                String::new()
            }
        );
    }
    Ok(0)
}

/// `YYYY-MM-DD HH:MM` (UTC) of Unix seconds.
fn format_utc(secs: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64);
    crate::workspace::files::iso8601(t)[..16].replace('T', " ")
}

/// `zeke models [--json] [--probe]`: every candidate with what the router knows of it.
pub fn models(log: LogArgs, json_out: bool, probe: bool) -> anyhow::Result<i32> {
    let (loaded, _) = start(&log)?;
    let config = loaded?;
    let rt = runtime()?;
    rt.block_on(async {
        let app = App::new(config.clone());
        let set = app.configure(config).await;
        let health = if probe {
            set.health().await
        } else {
            Vec::new()
        };
        let rows = report::models(&app, &set, &health);
        if json_out {
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &json!({"providers": rows, "prices": pricing::table_source()})
                )?
            );
            return anyhow::Ok(0);
        }
        for r in &rows {
            let price = match &r["price_per_mtok"] {
                Value::Null if r["local"] == true => "free (local)".to_string(),
                Value::Null => "price unknown".to_string(),
                p => format!("${}/${} per Mtok in/out", p["input"], p["output"]),
            };
            println!(
                "{:<14} {:<10} {:<30} ctx {:<9} {:<28} tools {:<5} fim {:<5}{}{}",
                r["provider"].as_str().unwrap_or(""),
                r["kind"].as_str().unwrap_or(""),
                r["model"].as_str().unwrap_or("(server default)"),
                r["context_window"]
                    .as_u64()
                    .map(|w| w.to_string())
                    .unwrap_or_else(|| "?".into()),
                price,
                r["tools"],
                r["native_fim"],
                match r["reachable"].as_bool() {
                    Some(true) => "  reachable".to_string(),
                    Some(false) => format!("  UNREACHABLE: {}", r["detail"].as_str().unwrap_or("")),
                    None => String::new(),
                },
                r["key"]
                    .as_str()
                    .map(|k| format!(" · key {k}"))
                    .unwrap_or_default(),
            );
        }
        println!("prices: {}", pricing::table_source());
        anyhow::Ok(0)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::format_utc(0), "1970-01-01 00:00");
        assert_eq!(super::format_utc(1_796_083_200), "2026-12-01 00:00");
        assert_eq!(super::format_utc(951_782_400 + 3_723), "2000-02-29 01:02");
    }
}
