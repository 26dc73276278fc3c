#![no_main]
//! The OpenAI SSE `data:` mapper, fed arbitrary text.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = zeke::providers::openai::map_chunk(s);
    }
});
