//! Zeke: an AI coding companion for Neovim and an MCP tool server, in one binary.
//!
//! Data flows one way (see README, "Architecture"):
//!
//! ```text
//! surfaces (nvim/, mcp/, cli + cmd)  →  app (features, app::tools, app::gate)  →  providers/* (HTTP)
//!                                        │                                          →  core (pure)
//!                                        └────→  config, workspace, git, sys (the only process spawner)
//! ```
//!
//! The surfaces only map their protocol: `mcp` turns `tools/call` into [`app::tools::run`] and
//! asks the user through elicitation when [`app::gate`] says prompt; `nvim` turns review answers
//! into [`app::patch`] calls; `cmd` runs one tool from a shell. Every decision goes through the one
//! gate (policy, grants shared by all surfaces, audit log).
//!
//! Modules in reading order: [`core`] (vocabulary and pure algorithms: text mirror, FIM context,
//! suggestion shaping, prompts, tree-sitter queries, the policy's decisions), [`config`],
//! [`providers`] (one file per wire protocol), [`workspace`] and [`git`] (confined filesystem and
//! git edges), [`app`] (one async function per feature, the tool layer, the gate, grants, audit
//! log, tasks, stats), [`nvim`] (the msgpack-RPC surface), [`mcp`] (the MCP tool server), [`cli`]
//! and [`cmd`] (argv and one-shot commands), [`sys`], [`logging`]. The layering is checked by
//! `tests/tidy.rs`.

pub mod core;

pub mod config;
pub mod providers;

pub mod ledger;
pub mod router;

pub mod git;
pub mod lsp;
pub mod workspace;

pub mod app;

pub mod cli;
pub mod cmd;
pub mod mcp;
pub mod mcp_client;
pub mod nvim;

pub mod logging;
pub mod sys;
