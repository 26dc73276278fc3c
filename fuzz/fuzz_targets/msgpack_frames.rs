#![no_main]
//! Bytes from "Neovim" through the frame guard in front of nvim-rs: it must end, and hand on only
//! well-formed messages.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut out = Vec::new();
    rt.block_on(zeke::nvim::frames::guard(data, &mut out))
        .unwrap();
    assert!(out.len() <= data.len());
});
