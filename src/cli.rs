//! Command-line definitions (clap). Parsing only; `main` dispatches to `nvim::serve` or `cmd`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::logging::LogLevel;

#[derive(Parser, Debug)]
#[command(
    name = "zeke",
    version,
    about = "AI coding companion for Neovim, and an MCP tool server"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log level (overrides $ZEKE_LOG, which overrides the config's `log_level`).
    #[arg(long, global = true, value_enum, value_name = "LEVEL")]
    pub log_level: Option<LogLevel>,
    /// Append logs to this file instead of stderr.
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve Neovim over msgpack-RPC on stdin/stdout (started by the plugin).
    Nvim,
    /// Serve MCP tools (filesystem + git) on stdin/stdout, confined to the roots.
    Mcp {
        /// A directory the tools may touch (repeatable; `[mcp] roots` in the config adds more).
        #[arg(long = "root", value_name = "DIR")]
        roots: Vec<PathBuf>,
    },
    /// Check the configuration and every provider; exit 1 when something needs fixing.
    Doctor,
    /// Ask a question; the router picks the model (`[routes] ask`, or `--intent`'s route) and the
    /// answer streams to stdout.
    Ask {
        /// A provider from the config to try first (the others stay fallbacks).
        #[arg(long)]
        provider: Option<String>,
        /// Route as this intent: completion, explain, fix, test, chat, ask.
        #[arg(long, default_value = "ask")]
        intent: String,
        /// One JSON object per line: `{"text": …}` deltas, notices, then a final object with
        /// provider, model, attempts, usage and cost_usd.
        #[arg(long)]
        json: bool,
        /// Most tokens to generate.
        #[arg(long, default_value_t = 512)]
        max_tokens: u32,
        /// The question; `-` or nothing reads it from stdin.
        prompt: Vec<String>,
    },
    /// Print the config file path and the validated configuration; `--schema` prints every
    /// numeric setting's default and limits, the provider kinds and intents as JSON (what
    /// `lua/zeke/schema.json` holds).
    Config {
        #[arg(long)]
        schema: bool,
    },
    /// Usage and spend from the ledger: today and this month by provider and model, and the last
    /// requests.
    Usage {
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// How many recent requests to list.
        #[arg(long, default_value_t = 10)]
        last: usize,
    },
    /// Every provider the router may use: model, context window, price, capabilities, health and
    /// measured TTFT (`--probe` asks each server first).
    Models {
        #[arg(long)]
        json: bool,
        /// Probe every provider (reachability, the loaded model) before listing.
        #[arg(long)]
        probe: bool,
    },
    /// Run one tool of the tool layer (the same as `zeke mcp` offers) and print its output; with
    /// no NAME, list the tools. The policy applies; a tool that needs approval is refused with the
    /// config line that would allow it (the command line cannot ask).
    Tool {
        /// The tool, e.g. `read_text_file`, `git_status`.
        name: Option<String>,
        /// Its arguments as a JSON object (`-` reads them from stdin; default `{}`).
        args: Option<String>,
        /// A directory the tool may touch (repeatable; default: the current directory).
        #[arg(long = "root", value_name = "DIR")]
        roots: Vec<PathBuf>,
    },
    /// List the "Allow all" grants saved for projects (Neovim's `:Zeke allow all project`, the MCP
    /// "Allow all, saved for this project"), honoured by every Zeke process.
    Grants {
        #[command(subcommand)]
        action: Option<GrantsAction>,
    },
}

#[derive(Subcommand, Debug)]
pub enum GrantsAction {
    /// Revoke project grants: those of ROOT (a project directory), or every one with --all;
    /// --capability narrows to one (e.g. `fs.write`). Running editors and MCP servers stop using
    /// them at once.
    Revoke {
        /// The project root the grant is for.
        root: Option<PathBuf>,
        /// Only grants of this capability (fs.write, git.write, cmd.exec, net.http, mcp.call, …).
        #[arg(long)]
        capability: Option<String>,
        /// Every project grant.
        #[arg(long, conflicts_with = "root")]
        all: bool,
    },
}
