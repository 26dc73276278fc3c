#![no_main]
//! The config loader: arbitrary TOML, validated.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(table) = toml::from_str::<toml::Table>(s) else {
        return;
    };
    let Ok(value) = serde_json::to_value(table) else {
        return;
    };
    let _ = zeke::config::Config::from_value(value);
});
