#![no_main]
//! A model's answer (code fences, unified diffs with wrong counts) parsed and applied to lines.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (answer, file) = s.split_once('\0').unwrap_or((s, "fn main() {\n}\n"));
    let lines: Vec<String> = file.lines().map(str::to_string).collect();
    let _ = zeke::core::patch::extract(answer);
    if let Ok(hunks) = zeke::core::patch::parse_unified(answer) {
        let _ = zeke::core::patch::apply_unified(&lines, &hunks);
    }
});
