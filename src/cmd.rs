//! One-shot commands for humans and scripts: `doctor`, `ask`, `config`. The only module besides
//! `main` that prints to stdout.

use std::io::{Read, Write};
use std::sync::Arc;

use futures_util::StreamExt;

use crate::app::{App, Job};
use crate::config::{self, Config};
use crate::core::llm::{ChatRequest, Event, Message};
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
pub fn config(log: LogArgs) -> anyhow::Result<i32> {
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
        if let Some(s) = set.selected(Job::Complete) {
            println!("      completions use {}", s.name);
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

/// `zeke ask`: streams the answer to stdout; errors go to stderr with exit 1.
pub fn ask(
    log: LogArgs,
    provider: Option<String>,
    max_tokens: u32,
    prompt: Vec<String>,
) -> anyhow::Result<i32> {
    let (loaded, _) = start(&log)?;
    let mut text = prompt.join(" ");
    if text.is_empty() || text == "-" {
        text.clear();
        std::io::stdin().read_to_string(&mut text)?;
    }
    if text.trim().is_empty() {
        anyhow::bail!("nothing to ask: give a prompt or pipe one on stdin");
    }
    let mut config = loaded?;
    if let Some(p) = provider {
        if !config.providers.contains_key(&p) {
            anyhow::bail!("no provider named {p:?} in the config");
        }
        config.completion.provider = Some(p);
    }
    let rt = runtime()?;
    rt.block_on(async {
        let app: Arc<App> = App::new(config.clone());
        let set = app.configure(config).await;
        let provider = set.provider(Job::Complete).await?;
        let req = ChatRequest {
            messages: vec![Message::user(text)],
            max_tokens,
            temperature: 0.3,
            stop: vec![],
        };
        let mut stream = provider.chat(req);
        let mut out = std::io::stdout().lock();
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(Event::Text(t)) => {
                    out.write_all(t.as_bytes())?;
                    out.flush()?;
                }
                Ok(_) => {}
                Err(e) => {
                    writeln!(out)?;
                    eprintln!("zeke: {} failed: {e}", provider.info().name);
                    return Ok(1);
                }
            }
        }
        writeln!(out)?;
        Ok(0)
    })
}

/// `zeke grants`: the project grants on file; `zeke grants revoke …` removes some. Session grants
/// live only inside each running editor (`:Zeke grants` there).
pub fn grants(log: LogArgs, action: Option<crate::cli::GrantsAction>) -> anyhow::Result<i32> {
    let _ = start(&log)?;
    let mut store =
        crate::app::grants::GrantStore::load(crate::app::grants::state_dir().join("grants.json"));
    match action {
        None => {
            if store.project.is_empty() {
                println!("no project grants ({})", store.file().display());
            }
            for (root, job) in &store.project {
                println!("allow all {job} patches in {} (project)", root.display());
            }
            println!("session grants live in each running editor: see :Zeke grants there");
            Ok(0)
        }
        Some(crate::cli::GrantsAction::Revoke { root, job, all }) => {
            if root.is_none() && !all {
                anyhow::bail!("name a project root to revoke, or give --all");
            }
            if let Some(j) = job.as_deref()
                && !["fix", "test"].contains(&j)
            {
                anyhow::bail!("--job must be fix or test (got {j:?})");
            }
            let root = root.map(|r| std::fs::canonicalize(&r).unwrap_or(r));
            let n = store.revoke(job.as_deref(), root.as_deref());
            println!("revoked {n} project grant{}", if n == 1 { "" } else { "s" });
            Ok(if n > 0 { 0 } else { 1 })
        }
    }
}
