#![no_main]
//! The NDJSON/JSON event mappers of Ollama (`/api/chat`, `/api/generate`) and llama.cpp
//! (`/infill`), fed arbitrary text.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = zeke::providers::ollama::map_line(s);
        let _ = zeke::providers::llamacpp::map_infill(s);
    }
});
