//! Logging set-up: `tracing` to an append-only file, or to stderr — never stdout, which is the
//! protocol in `zeke nvim` and `zeke mcp`. The level comes from the argument, else `ZEKE_LOG`, else
//! `info`.

use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Fails only when the log file cannot be opened.
pub fn init(file: Option<&Path>, level: Option<&str>) -> anyhow::Result<()> {
    let filter = level
        .map(|l| EnvFilter::new(format!("zeke={l},warn")))
        .or_else(|| std::env::var("ZEKE_LOG").ok().map(EnvFilter::new))
        .unwrap_or_else(|| EnvFilter::new("zeke=info,warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_target(false);
    let result = match file {
        Some(path) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            builder.with_writer(Mutex::new(f)).try_init()
        }
        None => builder.with_writer(std::io::stderr).try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}
