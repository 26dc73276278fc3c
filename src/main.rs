//! `zeke` entry point: parse argv, run the surface (`nvim`, `mcp`) or command, map errors to exit codes
//! (0 ok, 1 failure reported by a command, 2 error). A closed stdout (broken pipe) exits 0.

use clap::Parser;
use zeke::cli::{Cli, Command};

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let log = zeke::logging::LogArgs {
        file: cli.log,
        level: cli.log_level,
    };
    let result = match cli.command {
        Command::Nvim => zeke::nvim::serve(log).map(|()| 0),
        Command::Mcp { roots } => zeke::mcp::serve(roots, log).map(|()| 0),
        Command::Doctor => zeke::cmd::doctor(log),
        Command::Ask {
            provider,
            intent,
            json,
            max_tokens,
            prompt,
        } => zeke::cmd::ask(log, provider, intent, json, max_tokens, prompt),
        Command::Usage { json, last } => zeke::cmd::usage(log, json, last),
        Command::Models { json, probe } => zeke::cmd::models(log, json, probe),
        Command::Config { schema } => zeke::cmd::config(log, schema),
        Command::Grants { action } => zeke::cmd::grants(log, action),
        Command::Tool { name, args, roots } => zeke::cmd::tool(log, name, args, roots),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            {
                std::process::exit(0);
            }
            eprintln!("zeke: {e:#}");
            std::process::exit(2);
        }
    }
}
