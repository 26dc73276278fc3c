//! Robustness of `zeke mcp` against inputs that are not what a tool expects (issue "hardening"):
//! files that are not UTF-8 are never rewritten lossily, edits keep every other byte (CRLF, BOM,
//! no final newline), and the audit log never holds the file text a call carried.

use serde_json::json;

use crate::mcp::{Mcp, Opts};

fn server(base: &std::path::Path, root: &std::path::Path) -> Mcp {
    Mcp::start(
        base,
        Opts {
            roots: vec![root],
            ..Opts::default()
        },
    )
}

#[test]
fn edit_file_refuses_text_that_is_not_utf8_and_writes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().canonicalize().unwrap().join("root");
    std::fs::create_dir_all(&root).unwrap();
    // Latin-1 "café = 1\n" and a binary blob holding an ASCII word to match
    let latin1: &[u8] = b"caf\xe9 = 1\nname = x\n";
    let mut binary: Vec<u8> = (0u8..=255).collect();
    binary.extend_from_slice(b"\nname = x\n");
    std::fs::write(root.join("latin1.txt"), latin1).unwrap();
    std::fs::write(root.join("blob.bin"), &binary).unwrap();
    let mut m = server(t.path(), &root);
    for (file, bytes) in [
        ("latin1.txt", latin1.to_vec()),
        ("blob.bin", binary.clone()),
    ] {
        for dry in [true, false] {
            let (err, body, _) = m.call(
                "edit_file",
                json!({"path": file, "edits": [{"oldText": "name = x", "newText": "name = y"}], "dryRun": dry}),
            );
            assert!(
                err && body.contains("is not UTF-8 text") && body.contains("nothing was written"),
                "{file} (dryRun {dry}): {body}"
            );
            assert_eq!(
                std::fs::read(root.join(file)).unwrap(),
                bytes,
                "{file} unchanged, byte for byte"
            );
        }
    }
}

#[test]
fn edits_keep_every_other_byte_crlf_bom_and_no_final_newline() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().canonicalize().unwrap().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let original = "\u{feff}first\r\nsecond line\r\nthird\r\nlast, no newline";
    std::fs::write(root.join("win.txt"), original).unwrap();
    let mut m = server(t.path(), &root);
    let (err, diff, _) = m.call(
        "edit_file",
        json!({"path": "win.txt", "edits": [{"oldText": "second line\nthird", "newText": "2nd\nthird"}], "dryRun": true}),
    );
    assert!(!err, "{diff}");
    assert!(
        diff.contains("-second line\n+2nd\n"),
        "the dry run shows the change: {diff}"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("win.txt")).unwrap(),
        original,
        "dry run writes nothing"
    );
    let (err, applied, _) = m.call(
        "edit_file",
        json!({"path": "win.txt", "edits": [{"oldText": "second line\nthird", "newText": "2nd\nthird"}]}),
    );
    assert!(!err, "{applied}");
    assert_eq!(applied, diff, "what was written is what the dry run showed");
    assert_eq!(
        std::fs::read(root.join("win.txt")).unwrap(),
        "\u{feff}first\r\n2nd\r\nthird\r\nlast, no newline".as_bytes(),
        "BOM, CRLF and the missing final newline survive; only the edited bytes changed"
    );
}

#[test]
fn a_failed_edit_leaves_no_file_text_in_the_audit_log() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().canonicalize().unwrap().join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("env.txt"), "API_KEY=sk-live-0000\n").unwrap();
    let mut m = server(t.path(), &root);
    let (err, body, _) = m.call(
        "edit_file",
        json!({"path": "env.txt", "edits": [{"oldText": "API_KEY=sk-live-1234-SECRET", "newText": "x"}]}),
    );
    assert!(err && body.contains("was not found"), "{body}");
    let log = std::fs::read_to_string(&m.audit).unwrap();
    assert!(
        !log.contains("SECRET") && !log.contains("sk-live"),
        "no file text in the audit log: {log}"
    );
    assert!(log.contains("env.txt"), "the path is recorded: {log}");
}
