#![no_main]
//! `edit_file` matching: text, oldText and newText separated by NUL bytes.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = s.split('\0');
    let (Some(text), Some(old), Some(new)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let edits = [zeke::core::edit::Edit {
        old: old.into(),
        new: new.into(),
    }];
    if let Ok(done) = zeke::core::edit::apply(text, &edits, "f") {
        assert!(done.text.len() + old.len() * 2 >= text.len());
    }
});
