//! One-shot commands for humans and scripts: `doctor`, `ask`, `config`. The only module besides
//! `main` that prints to stdout.

use std::io::{Read, Write};
use std::path::PathBuf;

mod usage;
pub use usage::{ask, models, usage};

use crate::app::App;
use crate::config::{self, Config};
use crate::logging::{Choice, LogArgs, LogLevel};

fn load() -> anyhow::Result<Config> {
    Ok(Config::load(config::default_path().as_deref(), None)?)
}

/// Loads the config and sets up logging to stderr (or `--log`) at the level it says, `warn` by
/// default: a person reads this stderr.
fn start(log: &LogArgs) -> anyhow::Result<(anyhow::Result<Config>, Choice)> {
    let config = load();
    let choice = log.init(config.as_ref().ok().map(|c| c.log_level), LogLevel::Warn)?;
    Ok((config, choice))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// `zeke config`: where the file is and what it says, validated.
pub fn config(log: LogArgs, schema: bool) -> anyhow::Result<i32> {
    if schema {
        println!(
            "{}",
            serde_json::to_string_pretty(&config::limits::schema())?
        );
        return Ok(0);
    }
    let (loaded, _) = start(&log)?;
    let path = config::default_path();
    println!(
        "config file: {}",
        path.as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(none)".into())
    );
    match loaded {
        Ok(c) => {
            let servers = crate::logging::choose(
                log.level,
                std::env::var("ZEKE_LOG").ok().as_deref(),
                Some(c.log_level),
                LogLevel::Info,
            );
            println!(
                "log level of zeke nvim / zeke mcp: {} (from {})",
                servers.directives,
                servers.source.describe()
            );
            println!(
                "valid: {}",
                if c.source.is_some() {
                    "yes"
                } else {
                    "no file; defaults apply"
                }
            );
            println!("{}", serde_json::to_string_pretty(&c.raw)?);
            Ok(0)
        }
        Err(e) => {
            println!("invalid: {e}");
            Ok(1)
        }
    }
}

/// `zeke doctor`: config validity, provider reachability and keys. Exit 1 on any problem.
pub fn doctor(log: LogArgs) -> anyhow::Result<i32> {
    let (loaded, _) = start(&log)?;
    let rt = runtime()?;
    rt.block_on(async {
        let mut problems = 0;
        println!("zeke {}", env!("CARGO_PKG_VERSION"));
        let path = config::default_path();
        let config = match loaded {
            Ok(c) => {
                println!(
                    "ok    config: {}",
                    c.source
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "no file, defaults".into())
                );
                c
            }
            Err(e) => {
                problems += 1;
                println!(
                    "FAIL  config {}: {e}",
                    path.map(|p| p.display().to_string()).unwrap_or_default()
                );
                Config::from_value(serde_json::json!({}))?
            }
        };
        let app = App::new(config.clone());
        let set = app.configure(config).await;
        if let Some(d) = &set.detection {
            println!(
                "{}  {}",
                if d.reachable { "ok  " } else { "WARN" },
                d.detail
            );
        }
        for h in set.health().await {
            let ok = h.reachable && h.key != "missing";
            if !ok {
                problems += 1;
            }
            println!(
                "{}  provider {} ({}, {}): {}; key {}",
                if ok { "ok  " } else { "FAIL" },
                h.selected.name,
                h.selected.kind.as_str(),
                h.selected.url,
                h.detail,
                h.key
            );
        }
        // budgets: spend today / this month against each limit (the ledger of every process)
        let spend = app.router.spend();
        let show = |who: &str, b: &crate::config::Budget, today: f64, month: f64| {
            let part = |period: &str, limit: Option<f64>, spent: f64| {
                limit.map(|l| {
                    let mark = if spent >= l {
                        " SPENT"
                    } else if spent >= 0.8 * l {
                        " near"
                    } else {
                        ""
                    };
                    format!("{period} ${spent:.4} of ${l:.2}{mark}")
                })
            };
            let parts: Vec<String> = [
                part("today", b.daily_usd, today),
                part("this month", b.monthly_usd, month),
            ]
            .into_iter()
            .flatten()
            .collect();
            let spent = b.daily_usd.is_some_and(|l| today >= l)
                || b.monthly_usd.is_some_and(|l| month >= l);
            println!(
                "{}  budget {who} ({}): {}",
                if spent { "WARN" } else { "ok  " },
                match b.mode {
                    crate::config::BudgetMode::Soft => "soft: warns",
                    crate::config::BudgetMode::Hard => "hard: cloud calls refused when spent",
                },
                parts.join(", ")
            );
        };
        if let Some(b) = &set.config.budget {
            let today = spend.values().map(|s| s.today_usd).sum::<f64>() + 0.0;
            let month = spend.values().map(|s| s.month_usd).sum::<f64>() + 0.0;
            show("total", b, today, month);
        }
        for (name, p) in &set.config.providers {
            if let Some(b) = &p.budget {
                let s = spend.get(name).copied().unwrap_or_default();
                show(name, b, s.today_usd, s.month_usd);
            }
        }
        // the language servers of the lsp_* tools (a missing one is not a failure: its language
        // just has no lsp_* answers)
        for f in crate::app::lsp::found(&set.config.lsp).await {
            match (&f.path, &f.version) {
                (Some(p), v) => println!(
                    "ok    language server for {}: {} ({})",
                    f.languages.join(", "),
                    v.as_deref().unwrap_or("version unknown"),
                    p.display()
                ),
                (None, _) => println!(
                    "info  language server for {}: {} not found on PATH",
                    f.languages.join(", "),
                    f.command
                ),
            }
        }
        match app.router.ledger() {
            Some(l) => println!("ok    usage ledger: {}", l.path().display()),
            None => println!(
                "WARN  usage ledger {}: cannot be opened; usage is not recorded",
                crate::app::ledger_path(&set.config).display()
            ),
        }
        // the order the router would try now, per intent (a short prompt)
        for intent in crate::core::llm::Intent::ALL {
            let need = crate::router::Need {
                intent,
                est_tokens: 500,
                max_output: 256,
                tools: false,
            };
            let rr = crate::router::RouteRequest::new(intent, crate::router::Surface::Cli);
            let plan = app.router.plan(set.as_ref(), &rr, &need);
            let skipped: Vec<String> = plan
                .skipped
                .iter()
                .map(|(n, why)| format!("{n}: {why}"))
                .collect();
            println!(
                "      {:<10} → {}{}",
                intent.as_str(),
                if plan.order.is_empty() {
                    "nothing can answer".to_string()
                } else {
                    plan.order.join(", ")
                },
                if skipped.is_empty() {
                    String::new()
                } else {
                    format!(" (skipped: {})", skipped.join("; "))
                }
            );
        }
        // the programs Zeke starts, by the absolute path it will use (never a relative PATH entry)
        match crate::sys::resolve("git") {
            Ok(git) => println!(
                "ok    git: {} (the git tools run this binary)",
                git.display()
            ),
            Err(e) => println!("WARN  git: {e}; the git tools will fail"),
        }
        Ok(if problems == 0 { 0 } else { 1 })
    })
}

/// `zeke tool [NAME [ARGS]] [--root DIR]…`: runs one tool of the tool layer through the gate (with
/// an asker that cannot ask: a prompt is refused naming the config line), prints its text (or a
/// media file's bytes) to stdout. Exit 0 ok, 1 when the tool failed or was refused (the message
/// on stderr), 2 for bad usage. Audited like every other surface, client `cli`.
pub fn tool(
    log: LogArgs,
    name: Option<String>,
    args: Option<String>,
    roots: Vec<PathBuf>,
) -> anyhow::Result<i32> {
    use crate::app::gate::{Gate, NoAsker};
    use crate::app::tools::{self, Invocation, Roots, ToolError};
    let (loaded, _) = start(&log)?;
    let Some(name) = name else {
        for t in tools::TOOLS.iter() {
            println!("{:<26} {:<10} {}", t.name, t.cap.as_str(), t.title);
        }
        return Ok(0);
    };
    let config = loaded?;
    let mut text = args.unwrap_or_else(|| "{}".into());
    if text == "-" {
        text.clear();
        std::io::stdin().read_to_string(&mut text)?;
    }
    let args = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(m)) => m,
        Ok(other) => anyhow::bail!("the arguments must be a JSON object (got {other})"),
        Err(e) => anyhow::bail!("the arguments are not JSON: {e}"),
    };
    let dirs = if roots.is_empty() {
        vec![std::env::current_dir()?]
    } else {
        roots
    };
    let rt = runtime()?;
    rt.block_on(async {
        let gate = Gate::from_config(&config);
        let protected = crate::app::protected::discover(
            config.source.clone().or_else(config::default_path).as_deref(),
            gate.audit().path(),
        )
        .await;
        let roots = Roots::new(&dirs)
            .map_err(|e| anyhow::anyhow!(e))?
            .with_protected(protected);
        let asker = NoAsker("the command line cannot ask (run it from Neovim or an MCP client that can, or allow it in the config)");
        let result = tools::run(
            &gate,
            Invocation {
                name: &name,
                args,
                roots,
                ct: tokio_util::sync::CancellationToken::new(),
                progress: None,
                asker: &asker,
                settings: &tools::Settings::from_config(&config),
                client: Some("cli"),
                refused: None,
            },
        )
        .await;
        match result {
            Ok(out) => {
                let mut stdout = std::io::stdout().lock();
                match out.media {
                    Some(m) => stdout.write_all(&m.bytes)?,
                    None => {
                        stdout.write_all(out.text.as_bytes())?;
                        if !out.text.ends_with('\n') {
                            stdout.write_all(b"\n")?;
                        }
                    }
                }
                Ok(0)
            }
            Err(e @ ToolError::Unknown(_)) => {
                eprintln!("zeke: {e} (zeke tool lists them)");
                Ok(2)
            }
            Err(e) => {
                eprintln!("zeke: {name}: {e}");
                Ok(1)
            }
        }
    })
}

/// `zeke grants`: the project grants on file; `zeke grants revoke …` removes some. Session grants
/// live only inside each running process (`:Zeke grants` in the editor).
pub fn grants(log: LogArgs, action: Option<crate::cli::GrantsAction>) -> anyhow::Result<i32> {
    let _ = start(&log)?;
    let mut store = crate::app::grants::GrantStore::open_default();
    match action {
        None => {
            let list = store.list();
            if list.is_empty() {
                println!("no project grants ({})", store.file().display());
            }
            for g in list {
                println!(
                    "allow all {} in {} ({})",
                    g.capability,
                    g.root.display(),
                    g.scope.as_str()
                );
            }
            println!(
                "session grants live in each running editor or server: see :Zeke grants there"
            );
            Ok(0)
        }
        Some(crate::cli::GrantsAction::Revoke {
            root,
            capability,
            all,
        }) => {
            if root.is_none() && !all {
                anyhow::bail!("name a project root to revoke, or give --all");
            }
            let capability = capability
                .as_deref()
                .map(crate::core::policy::Capability::parse)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--capability: {e}"))?;
            let root = root.map(|r| std::fs::canonicalize(&r).unwrap_or(r));
            let n = store.revoke(capability, root.as_deref());
            println!("revoked {n} project grant{}", if n == 1 { "" } else { "s" });
            Ok(if n > 0 { 0 } else { 1 })
        }
    }
}
