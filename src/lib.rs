//! Zeke: an AI coding companion for Neovim and an MCP tool server, in one binary.
//!
//! Data flows one way (see README, "Architecture"):
//!
//! ```text
//! surfaces (nvim/, cli + cmd)  →  app  →  providers/* (HTTP)  →  core (pure)
//!                                  └────→  config, sys (the only process spawner)
//! ```
//!
//! Modules in reading order: [`core`] (vocabulary and pure algorithms: text mirror, FIM context,
//! suggestion shaping, prompts, tree-sitter queries), [`config`], [`providers`] (one file per wire
//! protocol), [`app`] (one async function per feature, tasks, stats), [`nvim`] (the msgpack-RPC
//! surface), [`cli`] and [`cmd`] (argv and one-shot commands), [`sys`], [`logging`].
//! The layering is checked by `tests/tidy.rs`.

pub mod core;

pub mod config;
pub mod providers;

pub mod app;

pub mod cli;
pub mod cmd;
pub mod nvim;

pub mod logging;
pub mod sys;
