//! `zeke nvim`: the msgpack-RPC backend Neovim starts with `jobstart({bin, 'nvim'}, {rpc = true})`.
//!
//! stdout carries only msgpack-RPC; logs go to the file given by `--log` (Lua passes one under
//! `stdpath('log')`), else stderr. The process exits when Neovim closes stdin. Neovim hands a job's
//! stdio as Unix sockets; those are used directly as non-blocking tokio sockets (lower latency than
//! the blocking-pool stdin nvim-rs uses by default), with plain stdio as the fallback. Incoming
//! bytes pass [`frames::guard`] first, so a malformed frame is skipped with a log line instead of
//! ending the backend.

mod coalesce;
pub mod frames;
pub mod handler;
pub mod proto;
mod requests;
pub mod review;
pub mod session;

use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;
use std::os::unix::fs::FileTypeExt;
use std::sync::Arc;

use nvim_rs::Neovim;
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

use crate::app::App;
use crate::config::Config;
use crate::logging::{LogArgs, LogLevel};

/// The writer half of the RPC channel.
pub type Out = Box<dyn tokio::io::AsyncWrite + Send + Unpin>;
type In = Box<dyn tokio::io::AsyncRead + Send + Unpin>;
/// The Neovim handle type used throughout the surface.
pub type Nvim = Neovim<tokio_util::compat::Compat<Out>>;

/// Serves Neovim on stdin/stdout until stdin closes. `log` names the log file (appended to; the
/// plugin passes one under `stdpath('log')`) and the level from the command line.
pub fn serve(log: LogArgs) -> anyhow::Result<()> {
    let config = Config::load(crate::config::default_path().as_deref(), None);
    log.init(config.as_ref().ok().map(|c| c.log_level), LogLevel::Info)?;
    tracing::info!(
        pid = std::process::id(),
        version = env!("CARGO_PKG_VERSION"),
        "zeke nvim starting"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        let r = run(config).await;
        // the language servers the chat agent's lsp_* tools started
        crate::app::lsp::shutdown_all().await;
        r
    });
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    tracing::info!("zeke nvim exiting");
    result
}

async fn run(config: Result<Config, crate::config::ConfigError>) -> anyhow::Result<()> {
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(%e, "config file invalid; starting with defaults until the editor sends its config");
            Config::from_value(serde_json::json!({})).expect("empty config is valid")
        }
    };
    let app = App::new(config);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let handler = handler::NvimHandler::new(app.clone(), tx);
    let (raw, writer) = stdio()?;
    // nvim-rs ends its loop on a frame it cannot decode: only well-formed messages reach it
    let (guarded, reader) = tokio::io::duplex(256 * 1024);
    let guard = tokio::spawn(async move {
        if let Err(e) = frames::guard(raw, guarded).await {
            tracing::info!(%e, "reading from the editor ended");
        }
    });
    let (nvim, io) = Neovim::new(reader.compat(), writer.compat_write(), handler);
    let forwarder = tokio::spawn(handler::forward(nvim.clone(), rx, app.clone()));
    let result = io.await;
    let cancelled = app.tasks.cancel_all();
    forwarder.abort();
    guard.abort();
    // the last answers' records (the editor's `resolve`s) reach the disk before the process ends
    let gate = app.gate.clone();
    let _ = tokio::task::spawn_blocking(move || gate.audit().flush()).await;
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.is_channel_closed() || e.is_reader_error() => {
            tracing::info!(cancelled, "editor closed the channel");
            Ok(())
        }
        Err(e) => Err(anyhow::anyhow!("RPC loop failed: {e}")),
    }
}

fn is_socket(fd: i32) -> bool {
    // SAFETY: fd 0/1 are open for the whole process; ManuallyDrop keeps them from being closed.
    let f = ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
    f.metadata()
        .map(|m| m.file_type().is_socket())
        .unwrap_or(false)
}

fn stdio() -> anyhow::Result<(In, Out)> {
    if is_socket(0) && is_socket(1) {
        // SAFETY: this process owns fds 0 and 1 and hands them to tokio exactly once.
        let (r, w) = unsafe {
            (
                std::os::unix::net::UnixStream::from_raw_fd(0),
                std::os::unix::net::UnixStream::from_raw_fd(1),
            )
        };
        r.set_nonblocking(true)?;
        w.set_nonblocking(true)?;
        let r = tokio::net::UnixStream::from_std(r)?;
        let w = tokio::net::UnixStream::from_std(w)?;
        tracing::debug!("stdio are sockets");
        Ok((Box::new(r), Box::new(w)))
    } else {
        Ok((Box::new(tokio::io::stdin()), Box::new(tokio::io::stdout())))
    }
}

/// The app shared by the handler and the forwarder.
pub type SharedApp = Arc<App>;
