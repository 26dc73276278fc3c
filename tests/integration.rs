//! All integration tests in one binary (as ripgrep and rust-analyzer do): the source-tree tidy
//! checks, provider adapters against a fault-injecting server and recorded transcripts, the
//! msgpack-RPC surface spoken to directly, the MCP server (`zeke mcp`) with its security and
//! policy suites, the tool layer called in-process (as the chat agent will), and the log level on
//! every surface. The live tests against a real llama-server
//! are a binary of their own (`tests/live.rs`), because they decide at run time to skip.

mod chat;
mod cli;
mod common;
mod logging;
mod mcp;
mod mcp_client;
mod mcp_policy;
mod mcp_robust;
mod mcp_security;
mod nvim_rpc;
mod properties;
mod provider_wire;
mod providers;
mod router;
mod tidy;
mod tool_layer;
