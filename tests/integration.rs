//! All integration tests in one binary (as ripgrep and rust-analyzer do): the source-tree tidy
//! checks, provider adapters against a fault-injecting server and recorded transcripts, the
//! msgpack-RPC surface spoken to directly, the MCP server (`zeke mcp`) with its security and policy suites, and live tests against a real llama-server (skipped,
//! with a printed reason, when `ZEKE_TEST_LLAMA_URL` is unset).

mod common;
mod live;
mod mcp;
mod mcp_policy;
mod mcp_security;
mod nvim_rpc;
mod providers;
mod tidy;
