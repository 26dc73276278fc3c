#![no_main]
//! One line from an MCP client, as the wire guard judges it (before and after the session
//! started).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    zeke::mcp::wire::fuzz_judge(data, false);
    zeke::mcp::wire::fuzz_judge(data, true);
});
