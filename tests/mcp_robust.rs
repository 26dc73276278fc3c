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
    let (t, root) = root();
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
    let (t, root) = root();
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
    let (t, root) = root();
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

/// `zeke mcp` spoken to byte by byte: raw lines in, parsed replies out.
struct Raw {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    replies: std::sync::mpsc::Receiver<serde_json::Value>,
}

fn next_reply(replies: &std::sync::mpsc::Receiver<serde_json::Value>) -> serde_json::Value {
    replies
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("a reply")
}

impl Raw {
    fn start(root: &std::path::Path) -> Raw {
        use std::io::BufRead;
        let mut child = std::process::Command::new(crate::common::zeke_bin())
            .args(["mcp", "--root"])
            .arg(root)
            .env("ZEKE_CONFIG", "/nonexistent")
            .env("ZEKE_AUDIT_LOG", root.join("../audit.jsonl"))
            .env("ZEKE_LOG", "error")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, replies) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let v = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("stdout is not JSON-RPC ({e}): {line}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Raw {
            child,
            stdin,
            replies,
        }
    }

    fn line(&mut self, bytes: &[u8]) {
        use std::io::Write;
        self.stdin.write_all(bytes).unwrap();
        self.stdin.write_all(b"\n").unwrap();
        self.stdin.flush().unwrap();
    }

    fn reply(&self) -> serde_json::Value {
        next_reply(&self.replies)
    }

    fn initialize(&mut self) {
        self.line(br#"{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#);
        let r = self.reply();
        assert_eq!(r["id"], "init", "{r}");
        assert!(r["result"]["serverInfo"].is_object(), "{r}");
        self.line(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    }

    fn alive(&mut self, id: u64) {
        self.line(format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#).as_bytes());
        let r = self.reply();
        assert_eq!(
            (r["id"].as_u64(), r["result"].is_object()),
            (Some(id), true),
            "{r}"
        );
    }
}

/// A temporary directory holding `root/a.txt`.
fn root() -> (tempfile::TempDir, std::path::PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().canonicalize().unwrap().join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("a.txt"), "one\n").unwrap();
    (t, root)
}

#[test]
fn messages_before_initialize_are_never_fatal() {
    let (_t, root) = root();
    let mut s = Raw::start(&root);
    s.line(br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}"#);
    s.line(br#"{"jsonrpc":"2.0","id":99,"result":{}}"#);
    s.alive(1); // ping before initialize is answered
    s.initialize();
    s.alive(2);
    assert!(s.child.try_wait().unwrap().is_none(), "still running");
}

#[test]
fn every_request_gets_one_reply_even_when_its_text_is_bad() {
    let (_t, root) = root();
    let mut s = Raw::start(&root);
    s.initialize();
    // a lone surrogate in a path: refused, never run with a "repaired" path
    s.line(br#"{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":"read_text_file","arguments":{"path":"a.txt\ud800"}}}"#);
    let r = s.reply();
    assert_eq!(r["id"], 10, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("lone UTF-16 surrogate"),
        "{r}"
    );
    // bytes that are not UTF-8
    let mut bad = br#"{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"read_text_file","arguments":{"path":"a"#.to_vec();
    bad.extend([0xff, 0xfe]);
    bad.extend(br#""}}}"#);
    s.line(&bad);
    let r = s.reply();
    assert_eq!(r["id"], 11, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not UTF-8"),
        "{r}"
    );
    // not JSON, with an id that can be read
    s.line(br#"{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"#);
    let r = s.reply();
    assert_eq!(
        (r["id"].as_u64(), r["error"]["code"].as_i64()),
        (Some(12), Some(-32700)),
        "{r}"
    );
    // a line over 16 MiB: dropped as it streams, answered with its id
    let mut big = br#"{"jsonrpc":"2.0","id":13,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"big.txt","content":""#.to_vec();
    big.resize(big.len() + 17 * 1024 * 1024, b'x');
    big.extend(br#""}}}"#);
    s.line(&big);
    let r = s.reply();
    assert_eq!(r["id"], 13, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("too large"),
        "{r}"
    );
    assert!(!root.join("big.txt").exists());
    s.alive(14);
    // each is in the audit log as a protocol error: its size and why, never its text
    let log = std::fs::read_to_string(root.join("../audit.jsonl")).unwrap();
    let protocol: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["tool"] == "(protocol)")
        .collect();
    assert_eq!(protocol.len(), 4, "{log}");
    assert!(
        protocol.iter().all(|r| r["arguments"]["bytes"].is_u64()),
        "{log}"
    );
    assert!(
        !log.contains("big.txt") && !log.contains("xxxx"),
        "no request text in the log"
    );
}

#[test]
fn a_duplicate_id_in_flight_is_refused_and_the_first_still_answered() {
    let (_t, root) = root();
    let mut s = Raw::start(&root);
    s.line(br#"{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"elicitation":{}},"clientInfo":{"name":"raw","version":"1"}}}"#);
    assert_eq!(s.reply()["id"], "init");
    s.line(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    // a write that needs approval: the server asks (elicitation/create) and waits
    let call = br#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"w.txt","content":"x"}}}"#;
    s.line(call);
    let ask = s.reply();
    assert_eq!(ask["method"], "elicitation/create", "{ask}");
    // the same id again while the first waits
    s.line(call);
    let dup = s.reply();
    assert_eq!(dup["id"], 5, "{dup}");
    assert!(
        dup["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already in flight"),
        "{dup}"
    );
    // answering the question completes the first call, once
    let answer = serde_json::json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"action": "accept", "content": {"decision": "allow_once"}}});
    s.line(answer.to_string().as_bytes());
    let done = s.reply();
    assert_eq!(
        (done["id"].as_u64(), done["result"]["isError"].as_bool()),
        (Some(5), Some(false)),
        "{done}"
    );
    assert_eq!(std::fs::read_to_string(root.join("w.txt")).unwrap(), "x");
    s.alive(6);
}

/// The resident memory of `pid` in KiB, from `/proc`.
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_client_that_writes_without_reading_cannot_grow_the_server() {
    let (_t, root) = root();
    let mut s = Raw::start(&root);
    s.initialize();
    s.alive(1);
    let pid = s.child.id();
    let before = rss_kb(pid);
    // 20,000 requests whose replies nobody reads for now: without back-pressure the server queues
    // them all (~2.4 KB each, ~48 MB); with it, reading stops at 64 in flight
    let Raw {
        child: _child,
        mut stdin,
        replies,
    } = s;
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        for id in 100..20_100u64 {
            let line = format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"list_allowed_directories","arguments":{{}}}}}}"#
            );
            if writeln!(stdin, "{line}").is_err() {
                break;
            }
        }
        stdin
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    let during = rss_kb(pid);
    // now read: every request gets exactly one reply
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 20_000 {
        let r = next_reply(&replies);
        let id = r["id"].as_u64().unwrap();
        assert!(seen.insert(id), "one reply per id ({id} twice)");
    }
    let _stdin = writer.join().unwrap();
    assert!(
        during < before + 16 * 1024,
        "the server grew from {before} kB to {during} kB while its replies went unread"
    );
}

/// The peak resident memory of `pid` in KiB (`VmHWM`).
fn peak_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn one_call_reads_at_most_its_budget_however_often_a_file_is_named() {
    let (t, root) = root();
    std::fs::write(root.join("ten.txt"), "0123456789\n".repeat(1024 * 1024)).unwrap(); // 11 MiB
    let mut m = server(t.path(), &root);
    let (err, page, _) = m.call("read_multiple_files", json!({"paths": vec!["ten.txt"; 40]}));
    assert!(!err, "{}", &page[..200.min(page.len())]);
    // the last page says which files were skipped
    let pages: u32 = page
        .rsplit("page 1 of ")
        .next()
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("a paged answer");
    let (_, last, _) = m.call(
        "read_multiple_files",
        json!({"paths": vec!["ten.txt"; 40], "page": pages}),
    );
    let read = 5 * 11 * 1024 * 1024;
    assert!(
        last.contains(&format!(
            "Error - skipped: this call has read {read} bytes and this file has"
        )),
        "5 × 11 MiB fit the 64 MiB budget, the rest are skipped: {}",
        &last[last.len().saturating_sub(600)..]
    );
    assert!(
        page.len() + last.len() < 200_000,
        "pages stay small whatever was read"
    );
    let peak = peak_kb(m.pid());
    assert!(
        peak < 400 * 1024,
        "peak memory {peak} kB for a 64 MiB budget (was ~1 GB unbounded)"
    );
}

#[test]
fn a_client_gone_during_git_add_leaves_no_index_lock() {
    let t = tempfile::tempdir().unwrap();
    let root = crate::mcp::repo(&t.path().join("proj"));
    incompressible(&root.join("big.bin"), 96, 0x9e3779b97f4a7c15);
    let mut m = Mcp::start(
        t.path(),
        Opts {
            roots: vec![&root],
            env: crate::mcp::git_env(),
            ..Opts::default()
        },
    );
    let lock = root.join(".git/index.lock");
    m.start_request(
        "tools/call",
        json!({"name": "git_add", "arguments": {"repo_path": root.display().to_string(), "files": ["big.bin"]}}),
    );
    // wait until git holds the lock, then the client goes away
    let mut held = false;
    for _ in 0..400 {
        if lock.exists() {
            held = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(held, "git add took the index lock");
    m.close();
    // git was asked to stop (SIGTERM) and removed its lock; a SIGKILL would leave it for good
    let mut gone = false;
    for _ in 0..200 {
        if !lock.exists() {
            gone = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        gone,
        "{} is still there after the server went",
        lock.display()
    );
}

/// A client with fs.write and git.write fills a directory with what git takes for a repository
/// (HEAD, objects/, refs/, a config naming a filter program and a work tree): no git tool may
/// treat it as one, so the program never runs.
#[test]
fn a_repository_made_of_ordinary_files_is_never_used() {
    let t = tempfile::tempdir().unwrap();
    let base = t.path().canonicalize().unwrap();
    let root = crate::mcp::repo(&base.join("root"));
    let marker = base.join("marker");
    let mut m = Mcp::start(
        &base,
        Opts {
            roots: vec![&root],
            env: crate::mcp::git_env(),
            ..Opts::default()
        },
    );
    let r = root.display().to_string();
    let config = format!(
        "[core]\n\trepositoryformatversion = 0\n\tbare = false\n\tworktree = {r}/w\n\
         [filter \"x\"]\n\tclean = touch {}\n\tsmudge = cat\n",
        marker.display()
    );
    for (path, content) in [
        ("evil/HEAD", "ref: refs/heads/main\n"),
        ("evil/config", config.as_str()),
        ("evil/objects/.keep", ""),
        ("evil/refs/heads/.keep", ""),
        ("w/.gitattributes", "* filter=x\n"),
        ("w/a.txt", "data\n"),
    ] {
        if let Some(dir) = std::path::Path::new(path).parent() {
            m.call(
                "create_directory",
                json!({"path": dir.display().to_string()}),
            );
        }
        let (err, body, _) = m.call("write_file", json!({"path": path, "content": content}));
        assert!(!err, "{path}: {body}");
    }
    for (tool, args) in [
        (
            "git_add",
            json!({"repo_path": format!("{r}/evil"), "files": ["a.txt"]}),
        ),
        ("git_status", json!({"repo_path": format!("{r}/evil")})),
        (
            "git_diff_unstaged",
            json!({"repo_path": format!("{r}/evil")}),
        ),
        ("git_log", json!({"repo_path": format!("{r}/evil")})),
    ] {
        let (err, body, _) = m.call(tool, args);
        assert!(err, "{tool} used the made-up repository: {body}");
        assert!(!marker.exists(), "{tool} ran the filter program");
    }
    // the real repository around it still works
    let (err, body, _) = m.call("git_status", json!({"repo_path": r}));
    assert!(!err && body.contains("Repository status"), "{body}");
    assert!(!marker.exists());
}

#[test]
fn temp_files_of_a_killed_write_are_swept_by_the_next_write_there() {
    let (t, root) = root();
    // a pid that does not run (beyond pid_max), and one that does (this test)
    let dead = root.join(".notes.txt.zeke-99999999-3.tmp");
    let live = root.join(format!(".notes.txt.zeke-{}-1.tmp", std::process::id()));
    let unrelated = root.join(".notes.txt.zeke-backup.tmp");
    for f in [&dead, &live, &unrelated] {
        std::fs::write(f, "half").unwrap();
    }
    let mut m = server(t.path(), &root);
    let (err, body, _) = m.call(
        "write_file",
        json!({"path": "notes.txt", "content": "whole"}),
    );
    assert!(!err, "{body}");
    assert!(!dead.exists(), "the dead writer's temp file is gone");
    assert!(live.exists(), "a running process's temp file is left alone");
    assert!(
        unrelated.exists(),
        "a file that is not a Zeke temp file is left alone"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("notes.txt")).unwrap(),
        "whole"
    );
}

#[test]
fn a_media_file_too_large_for_one_reply_is_refused_with_the_limit() {
    let (t, root) = root();
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.resize(9 * 1024 * 1024, 0);
    std::fs::write(root.join("huge.png"), &png).unwrap();
    let mut m = server(t.path(), &root);
    let (err, body, _) = m.call("read_media_file", json!({"path": "huge.png"}));
    assert!(
        err && body.contains("returns at most 8388608 bytes"),
        "{body}"
    );
}

/// Every way a repository's own config can name a program (or borrow another repository's
/// objects), planted in a repository made of ordinary files through the tools, tried through
/// every git tool that could reach it: no marker file ever appears, and no content of the outside
/// repository comes back.
#[test]
fn no_config_a_client_writes_makes_git_run_a_program_or_read_outside() {
    let t = tempfile::tempdir().unwrap();
    let base = t.path().canonicalize().unwrap();
    let root = crate::mcp::repo(&base.join("root"));
    let outside = crate::mcp::repo(&base.join("outside"));
    std::fs::write(outside.join("secret.txt"), "OUTSIDE SECRET\n").unwrap();
    let git = |dir: &std::path::Path, args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .envs(crate::mcp::git_env())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    git(&outside, &["add", "secret.txt"]);
    git(&outside, &["commit", "-q", "-m", "secret"]);
    let secret_commit = git(&outside, &["rev-parse", "HEAD"]);
    let marker = base.join("marker");
    let run = format!("touch {}", marker.display());
    let r = root.display().to_string();
    // (what, config lines for the made-up repository)
    let cases: Vec<(&str, String)> = vec![
        ("filter clean", format!("[filter \"x\"]\n\tclean = {run}\n")),
        (
            "filter process",
            format!("[filter \"x\"]\n\tprocess = {run}\n"),
        ),
        ("fsmonitor", format!("[core]\n\tfsmonitor = {run}\n")),
        ("hooks path", format!("[core]\n\thooksPath = {r}/hooks\n")),
        ("pager", format!("[core]\n\tpager = {run}\n")),
        ("editor", format!("[core]\n\teditor = {run}\n")),
        ("external diff", format!("[diff]\n\texternal = {run}\n")),
        ("diff driver", format!("[diff \"x\"]\n\tcommand = {run}\n")),
        ("textconv", format!("[diff \"x\"]\n\ttextconv = {run}\n")),
        (
            "gpg program",
            format!("[gpg]\n\tprogram = {run}\n[commit]\n\tgpgSign = true\n"),
        ),
        ("ssh command", format!("[core]\n\tsshCommand = {run}\n")),
        (
            "credential helper",
            format!("[credential]\n\thelper = !{run}\n"),
        ),
        ("askpass", format!("[core]\n\taskPass = {run}\n")),
        (
            "include of a planted file",
            format!("[include]\n\tpath = {r}/planted.cfg\n"),
        ),
        ("alternates", String::new()),
    ];
    let mut m = Mcp::start(
        &base,
        Opts {
            roots: vec![&root],
            env: crate::mcp::git_env(),
            ..Opts::default()
        },
    );
    let write = |m: &mut Mcp, path: &str, content: &str| {
        if let Some(dir) = std::path::Path::new(path).parent()
            && !dir.as_os_str().is_empty()
        {
            m.call(
                "create_directory",
                json!({"path": dir.display().to_string()}),
            );
        }
        let (err, body, _) = m.call("write_file", json!({"path": path, "content": content}));
        assert!(!err, "{path}: {body}");
    };
    write(
        &mut m,
        "planted.cfg",
        &format!("[core]\n\tfsmonitor = {run}\n"),
    );
    write(&mut m, "hooks/pre-commit", &format!("#!/bin/sh\n{run}\n"));
    write(&mut m, "w/.gitattributes", "* filter=x diff=x\n");
    write(&mut m, "w/a.txt", "data\n");
    for (i, (what, config)) in cases.iter().enumerate() {
        let repo = format!("fake{i}");
        let header =
            format!("[core]\n\trepositoryformatversion = 0\n\tbare = false\n\tworktree = {r}/w\n");
        write(&mut m, &format!("{repo}/HEAD"), "ref: refs/heads/main\n");
        write(
            &mut m,
            &format!("{repo}/config"),
            &format!("{header}{config}"),
        );
        write(&mut m, &format!("{repo}/refs/heads/.keep"), "");
        let alternates = format!("{}\n", outside.join(".git/objects").display());
        write(
            &mut m,
            &format!("{repo}/objects/info/alternates"),
            if *what == "alternates" {
                &alternates
            } else {
                ""
            },
        );
        let rp = format!("{r}/{repo}");
        for (tool, args) in [
            ("git_status", json!({"repo_path": rp})),
            ("git_diff_unstaged", json!({"repo_path": rp})),
            ("git_add", json!({"repo_path": rp, "files": ["a.txt"]})),
            ("git_commit", json!({"repo_path": rp, "message": "x"})),
            ("git_log", json!({"repo_path": rp})),
            (
                "git_show",
                json!({"repo_path": rp, "revision": secret_commit}),
            ),
            (
                "git_diff",
                json!({"repo_path": rp, "target": secret_commit}),
            ),
        ] {
            let (err, body, _) = m.call(tool, args);
            assert!(err, "{what}: {tool} used the made-up repository: {body}");
            assert!(
                !body.contains("OUTSIDE SECRET"),
                "{what}: {tool} read outside: {body}"
            );
            assert!(!marker.exists(), "{what}: {tool} ran a program");
        }
    }
    // the user's own repository keeps working
    let (err, body, _) = m.call("git_status", json!({"repo_path": r}));
    assert!(!err && body.contains("Repository status"), "{body}");
    assert!(!marker.exists());
}

/// Every slot taken by calls that wait for the user's answer: the answers still get through
/// (responses never wait behind requests), and every call completes.
#[test]
fn answers_get_through_when_every_slot_waits_for_one() {
    let (_t, root) = root();
    let mut s = Raw::start(&root);
    s.line(br#"{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"elicitation":{}},"clientInfo":{"name":"raw","version":"1"}}}"#);
    assert_eq!(s.reply()["id"], "init");
    s.line(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    let n = 80u64; // more than the 64 slots
    for id in 0..n {
        s.line(
            format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"write_file","arguments":{{"path":"f{id}.txt","content":"x"}}}}}}"#
            )
            .as_bytes(),
        );
    }
    let mut done = std::collections::BTreeSet::new();
    while done.len() < n as usize {
        let msg = s.reply();
        if msg["method"] == "elicitation/create" {
            let answer = json!({"jsonrpc": "2.0", "id": msg["id"], "result": {"action": "accept", "content": {"decision": "allow_once"}}});
            s.line(answer.to_string().as_bytes());
        } else {
            assert_eq!(msg["result"]["isError"], false, "{msg}");
            assert!(
                done.insert(msg["id"].as_u64().unwrap()),
                "one reply per call"
            );
        }
    }
    assert!((0..n).all(|id| root.join(format!("f{id}.txt")).exists()));
}

/// kill -9 in the middle of writes: a file is either as it was or wholly written (never half),
/// each write that began is in the audit log, and the temp files left behind are swept by the next
/// server's next write there.
#[test]
fn kill_9_during_writes_leaves_whole_files_and_a_record() {
    let (t, root) = root();
    let old = "old\n".repeat(1000);
    let new = "n".repeat(12 * 1024 * 1024);
    for round in 0..3 {
        let target = root.join(format!("big{round}.txt"));
        std::fs::write(&target, &old).unwrap();
        let mut m = server(t.path(), &root);
        let audit = m.audit.clone();
        m.start_request(
            "tools/call",
            json!({"name": "write_file", "arguments": {"path": target.display().to_string(), "content": new}}),
        );
        // kill as soon as the write has begun (its started record is on disk)
        for _ in 0..2000 {
            if std::fs::read_to_string(&audit).is_ok_and(|l| l.contains("\"started\"")) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        m.kill();
        let now = std::fs::read_to_string(&target).unwrap();
        assert!(
            now == old || now == new,
            "round {round}: a half-written file ({} bytes)",
            now.len()
        );
        let log = std::fs::read_to_string(&audit).unwrap();
        assert!(
            log.contains("\"started\"") && log.contains(&format!("big{round}.txt")),
            "{log}"
        );
    }
    // the next server's next write in that directory sweeps what the killed ones left
    let mut m = server(t.path(), &root);
    let (err, body, _) = m.call("write_file", json!({"path": "after.txt", "content": "ok"}));
    assert!(!err, "{body}");
    let left: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "temp files left: {left:?}");
}

/// The user's own repository config includes a file inside the worktree (which the tools can
/// write): the git tools refuse that repository instead of running what a client puts there.
#[test]
fn a_repository_whose_config_includes_a_writable_file_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let base = t.path().canonicalize().unwrap();
    let root = crate::mcp::repo(&base.join("root"));
    let marker = base.join("marker");
    // written by the user (not through the tools): .git/config includes ../planted.cfg
    let cfg = root.join(".git/config");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("[include]\n\tpath = ../planted.cfg\n");
    std::fs::write(&cfg, text).unwrap();
    let mut m = Mcp::start(
        &base,
        Opts {
            roots: vec![&root],
            env: crate::mcp::git_env(),
            ..Opts::default()
        },
    );
    for (path, content) in [
        (
            "planted.cfg",
            format!("[filter \"x\"]\n\tclean = touch {}\n", marker.display()),
        ),
        (".gitattributes", "* filter=x\n".to_string()),
        ("b.txt", "data\n".to_string()),
    ] {
        let (err, body, _) = m.call("write_file", json!({"path": path, "content": content}));
        assert!(!err, "{path}: {body}");
    }
    let rp = root.display().to_string();
    for (tool, args) in [
        ("git_add", json!({"repo_path": rp, "files": ["b.txt"]})),
        ("git_status", json!({"repo_path": rp})),
        ("git_diff_unstaged", json!({"repo_path": rp})),
    ] {
        let (err, body, _) = m.call(tool, args);
        assert!(
            err && body.contains("(rule repo-config-include)"),
            "{tool}: {body}"
        );
        assert!(!marker.exists(), "{tool} ran the planted filter");
    }
}

/// An `index.lock` a killed git left behind is removed before the next git write; one a running
/// git holds, or a fresh one, is left alone (and git's own error says why the write failed).
#[test]
fn a_stale_index_lock_is_cleared_a_held_one_is_not() {
    let t = tempfile::tempdir().unwrap();
    let base = t.path().canonicalize().unwrap();
    let root = crate::mcp::repo(&base.join("root"));
    std::fs::write(root.join("b.txt"), "b\n").unwrap();
    let lock = root.join(".git/index.lock");
    let age = |secs: u64| {
        std::fs::File::options()
            .write(true)
            .open(&lock)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(secs))
            .unwrap();
    };
    let mut m = Mcp::start(
        &base,
        Opts {
            roots: vec![&root],
            env: crate::mcp::git_env(),
            ..Opts::default()
        },
    );
    let add = json!({"repo_path": root.display().to_string(), "files": ["b.txt"]});
    // a fresh lock: some git may be starting; left alone
    std::fs::write(&lock, "").unwrap();
    let (err, body, _) = m.call("git_add", add.clone());
    assert!(err && body.contains("index.lock"), "{body}");
    assert!(lock.exists());
    // held by a running git (a process named git working in the repository): left alone
    age(60);
    let bin = base.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/sleep", bin.join("git")).unwrap();
    let mut holder = std::process::Command::new(bin.join("git"))
        .arg("30")
        .current_dir(&root)
        .spawn()
        .unwrap();
    let (err, body, _) = m.call("git_add", add.clone());
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(err && body.contains("index.lock"), "{body}");
    assert!(lock.exists(), "a lock a git holds is never removed");
    // left behind by a killed git: removed, and the write goes through
    let (err, body, _) = m.call("git_add", add);
    assert!(!err, "{body}");
    assert!(!lock.exists());
}

/// Writes `mib` MiB that do not compress (xorshift from `seed`): `git add` takes a while on them.
fn incompressible(path: &std::path::Path, mib: usize, seed: u64) {
    let mut x = seed;
    let mut big = vec![0u8; mib * 1024 * 1024];
    for chunk in big.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(path, &big).unwrap();
}

/// kill -9 of the server during `git_add`: the write that began is on record, the repository is
/// left with no stale lock, and the next server's git writes work.
#[test]
fn kill_9_during_git_add_leaves_a_record_and_no_stale_lock() {
    let t = tempfile::tempdir().unwrap();
    let root = crate::mcp::repo(&t.path().join("proj"));
    incompressible(&root.join("big.bin"), 48, 0x2545f4914f6cdd1d);
    let opts = || Opts {
        roots: vec![&root],
        env: crate::mcp::git_env(),
        ..Opts::default()
    };
    let mut m = Mcp::start(t.path(), opts());
    let audit = m.audit.clone();
    let lock = root.join(".git/index.lock");
    let rp = root.display().to_string();
    m.start_request(
        "tools/call",
        json!({"name": "git_add", "arguments": {"repo_path": rp, "files": ["big.bin"]}}),
    );
    for _ in 0..400 {
        if lock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    m.kill();
    let log = std::fs::read_to_string(&audit).unwrap();
    assert!(
        log.contains("\"tool\":\"git_add\"") && log.contains("\"started\""),
        "the begun write is on record: {log}"
    );
    // the orphaned git finishes and removes its lock; nothing stale stays behind
    for _ in 0..400 {
        if !lock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!lock.exists(), "a stale index.lock stayed");
    let mut m = Mcp::start(t.path(), opts());
    std::fs::write(root.join("c.txt"), "c\n").unwrap();
    let (err, body, _) = m.call("git_add", json!({"repo_path": rp, "files": ["c.txt"]}));
    assert!(!err, "{body}");
}
