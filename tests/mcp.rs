//! `zeke mcp` spoken to directly: the real binary over stdio, JSON-RPC lines. A small client
//! ([`Mcp`]) answers the server's own requests (elicitation, roots) through a callback.
//! The security suite lives in `mcp_security.rs`, the policy tests in `mcp_policy.rs`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::zeke_bin;

/// Answers a server→client request (method, params) with a result.
pub type Responder = Box<dyn FnMut(&str, &Value) -> Value + Send>;

pub struct Mcp {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    /// Responses read while waiting for another id.
    early: std::collections::HashMap<u64, Value>,
    next_id: u64,
    responder: Option<Responder>,
    /// Server→client requests seen (method names), in order.
    pub server_requests: Vec<String>,
    /// Notifications seen.
    pub notifications: Vec<Value>,
    pub audit: PathBuf,
}

/// Options for one server process.
pub struct Opts<'a> {
    pub roots: Vec<&'a Path>,
    /// Config TOML written to a temp file and passed as `ZEKE_CONFIG`.
    pub config: &'a str,
    /// Client capabilities sent in `initialize`.
    pub capabilities: Value,
    pub responder: Option<Responder>,
    pub env: Vec<(&'a str, String)>,
    /// The protocol version asked for in `initialize`.
    pub protocol: &'a str,
}

impl Default for Opts<'_> {
    fn default() -> Self {
        Opts {
            roots: vec![],
            config: "[capabilities]\n\"fs.write\" = \"allow\"\n\"git.write\" = \"allow\"\n",
            capabilities: json!({}),
            responder: None,
            env: vec![],
            protocol: "2025-11-25",
        }
    }
}

impl Mcp {
    /// Starts `zeke mcp` and completes the handshake.
    pub fn start(dir: &Path, opts: Opts) -> Mcp {
        let config = dir.join(format!("config-{}.toml", rand_suffix()));
        std::fs::write(&config, opts.config).unwrap();
        let audit = dir.join(format!("audit-{}.jsonl", rand_suffix()));
        let mut cmd = Command::new(zeke_bin());
        cmd.arg("mcp");
        for r in &opts.roots {
            cmd.arg("--root").arg(r);
        }
        cmd.env("ZEKE_CONFIG", &config)
            .env("ZEKE_AUDIT_LOG", &audit)
            .env("ZEKE_LOG", "warn");
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("zeke mcp starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut m = Mcp {
            child,
            stdin,
            lines: rx,
            early: Default::default(),
            next_id: 0,
            responder: opts.responder,
            server_requests: vec![],
            notifications: vec![],
            audit,
        };
        let init = m.request("initialize", json!({"protocolVersion": opts.protocol, "capabilities": opts.capabilities, "clientInfo": {"name": "zeke-tests", "version": "1"}}));
        assert_eq!(init["result"]["serverInfo"]["name"], "zeke", "{init}");
        assert_eq!(
            init["result"]["protocolVersion"], opts.protocol,
            "the requested version is negotiated"
        );
        m.notify("notifications/initialized", json!({}));
        m
    }

    /// Kills the server with SIGKILL and reaps it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The server's process id (for memory readings from `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn send(&mut self, msg: &Value) {
        writeln!(self.stdin, "{msg}").unwrap();
        self.stdin.flush().unwrap();
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Sends a request without waiting; returns its id.
    pub fn start_request(&mut self, method: &str, params: Value) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    /// Reads messages until the response to `id`, answering server requests on the way.
    pub fn wait(&mut self, id: u64) -> Value {
        if let Some(msg) = self.early.remove(&id) {
            return msg;
        }
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(60))
                .expect("a reply from zeke mcp within 60 s");
            let msg: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout carries only JSON-RPC, got {line:?}: {e}"));
            if msg.get("method").is_some() && msg.get("id").is_some() {
                let method = msg["method"].as_str().unwrap().to_string();
                self.server_requests.push(method.clone());
                let result = match self.responder.as_mut() {
                    Some(r) => r(&method, &msg["params"]),
                    None => panic!("unexpected server request {msg}"),
                };
                self.send(&json!({"jsonrpc": "2.0", "id": msg["id"], "result": result}));
                continue;
            }
            if msg.get("method").is_some() {
                self.notifications.push(msg);
                continue;
            }
            if msg["id"] == json!(id) {
                return msg;
            }
            if let Some(other) = msg["id"].as_u64() {
                self.early.insert(other, msg);
            }
        }
    }

    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.start_request(method, params);
        self.wait(id)
    }

    /// Calls a tool; returns `(is_error, text of the first content block, whole result)`.
    pub fn call(&mut self, tool: &str, args: Value) -> (bool, String, Value) {
        let r = self.request("tools/call", json!({"name": tool, "arguments": args}));
        let result = r
            .get("result")
            .cloned()
            .unwrap_or_else(|| panic!("{tool}: protocol error {r}"));
        let text = result["content"][0]["text"]
            .as_str()
            .unwrap_or("")
            .to_string();
        (result["isError"] == json!(true), text, result)
    }

    /// The audit records so far.
    pub fn audit_records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.audit)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Closes stdin and waits for a clean exit.
    pub fn close(mut self) -> std::process::ExitStatus {
        drop(self.stdin);
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("zeke mcp did not exit within 5 s of stdin closing");
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `git args` in `dir` with a fixed author, committer and date.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Zeke Test")
        .env("GIT_AUTHOR_EMAIL", "test@zeke.invalid")
        .env("GIT_COMMITTER_NAME", "Zeke Test")
        .env("GIT_COMMITTER_EMAIL", "test@zeke.invalid")
        .env("GIT_AUTHOR_DATE", "2024-01-15T14:30:25Z")
        .env("GIT_COMMITTER_DATE", "2024-01-15T14:30:25Z")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A throwaway repository with one commit of `a.txt`.
pub fn repo(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join("a.txt"), "one\n").unwrap();
    git(dir, &["add", "a.txt"]);
    git(dir, &["commit", "-q", "-m", "first"]);
    dir.canonicalize().unwrap()
}

/// Environment for the server so its own commits are deterministic too.
pub fn git_env() -> Vec<(&'static str, String)> {
    [
        ("GIT_AUTHOR_NAME", "Zeke Test"),
        ("GIT_AUTHOR_EMAIL", "test@zeke.invalid"),
        ("GIT_COMMITTER_NAME", "Zeke Test"),
        ("GIT_COMMITTER_EMAIL", "test@zeke.invalid"),
        ("GIT_AUTHOR_DATE", "2024-01-15T14:30:25Z"),
        ("GIT_COMMITTER_DATE", "2024-01-15T14:30:25Z"),
        ("GIT_CONFIG_GLOBAL", "/dev/null"),
        ("GIT_CONFIG_NOSYSTEM", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect()
}

#[test]
fn handshake_tools_list_paging_and_clean_exit() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let mut m = Mcp::start(
        t.path(),
        Opts {
            roots: vec![&root],
            config: "[mcp]\ntools_page_size = 10\n",
            ..Opts::default()
        },
    );
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let params = match &cursor {
            Some(c) => json!({"cursor": c}),
            None => json!({}),
        };
        let r = m.request("tools/list", params);
        pages += 1;
        for t in r["result"]["tools"].as_array().unwrap() {
            names.push(t["name"].as_str().unwrap().to_string());
            let read_only = t["annotations"]["readOnlyHint"] == json!(true);
            let is_write = [
                "write_file",
                "edit_file",
                "create_directory",
                "move_file",
                "git_commit",
                "git_add",
                "git_reset",
                "git_create_branch",
                "git_checkout",
                "run_command",
            ]
            .contains(&t["name"].as_str().unwrap());
            assert_eq!(read_only, !is_write, "honest readOnlyHint on {}", t["name"]);
        }
        match r["result"]["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 4, "40 tools in pages of 10");
    for want in [
        "read_text_file",
        "read_media_file",
        "read_multiple_files",
        "write_file",
        "edit_file",
        "create_directory",
        "list_directory",
        "list_directory_with_sizes",
        "directory_tree",
        "move_file",
        "search_files",
        "get_file_info",
        "list_allowed_directories",
        "git_status",
        "git_diff_unstaged",
        "git_diff_staged",
        "git_diff",
        "git_commit",
        "git_add",
        "git_reset",
        "git_log",
        "git_create_branch",
        "git_checkout",
        "git_show",
        "git_branch",
    ] {
        assert!(
            names.contains(&want.to_string()),
            "{want} missing from {names:?}"
        );
    }
    let bad = m.request("tools/list", json!({"cursor": "nope"}));
    assert!(bad.get("error").is_some(), "{bad}");
    let unknown = m.request("tools/call", json!({"name": "rm_rf", "arguments": {}}));
    assert!(
        unknown["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Unknown tool: rm_rf"),
        "{unknown}"
    );
    assert_eq!(
        m.audit_records().last().unwrap()["tool"],
        "rm_rf",
        "even unknown tools are audited"
    );
    assert!(m.close().success());
}

#[test]
fn older_protocol_versions_still_initialize() {
    let t = tempfile::tempdir().unwrap();
    for protocol in ["2024-11-05", "2025-03-26", "2025-06-18"] {
        let mut m = Mcp::start(
            t.path(),
            Opts {
                roots: vec![t.path()],
                protocol,
                ..Opts::default()
            },
        );
        let (err, body, _) = m.call("list_allowed_directories", json!({}));
        assert!(!err, "{protocol}: {body}");
        assert!(m.close().success());
    }
}

#[test]
fn long_output_is_paged_with_a_marker() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let text: String = (0..3000)
        .map(|i| format!("line {i:05} {}\n", "x".repeat(40)))
        .collect();
    std::fs::write(root.join("big.txt"), &text).unwrap();
    let mut m = Mcp::start(
        t.path(),
        Opts {
            roots: vec![&root],
            config: "[mcp]\nmax_output_chars = 50000\n",
            ..Opts::default()
        },
    );
    let mut all = String::new();
    let mut page = 1;
    loop {
        let (err, body, result) =
            m.call("read_text_file", json!({"path": "big.txt", "page": page}));
        assert!(!err, "{body}");
        let pages = result["structuredContent"]["pages"].as_u64().unwrap() as u32;
        assert!(pages >= 3, "{pages}");
        match body.find("[zeke: ") {
            Some(i) => {
                let marker = &body[i..];
                if page < pages {
                    assert!(
                        marker.contains(&format!("\"page\": {}", page + 1)),
                        "{marker}"
                    );
                }
                all.push_str(&body[..i]);
            }
            None => panic!("page {page} has no marker"),
        }
        if page == pages {
            break;
        }
        page += 1;
    }
    assert_eq!(all, text);
    let (err, body, _) = m.call("read_text_file", json!({"path": "big.txt", "page": 9}));
    assert!(err && body.contains("page 9 does not exist"), "{body}");
}

#[test]
fn concurrent_requests_and_cancellation() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("a.txt"), "A").unwrap();
    // a write that prompts and is never answered, then cancelled
    let (tx, rx) = mpsc::channel::<()>();
    let responder: Responder = Box::new(move |method, _| {
        assert_eq!(method, "elicitation/create");
        let _ = tx.send(());
        std::thread::sleep(Duration::from_millis(10));
        json!({"action": "cancel"})
    });
    let mut m = Mcp::start(
        t.path(),
        Opts {
            roots: vec![&root],
            config: "",
            capabilities: json!({"elicitation": {}}),
            responder: Some(responder),
            ..Opts::default()
        },
    );
    // two requests in flight at once, answered out of order is fine
    let a = m.start_request(
        "tools/call",
        json!({"name": "read_text_file", "arguments": {"path": "a.txt"}}),
    );
    let b = m.start_request(
        "tools/call",
        json!({"name": "list_directory", "arguments": {"path": "."}}),
    );
    let rb = m.wait(b);
    let ra = m.wait(a);
    assert_eq!(ra["result"]["content"][0]["text"], "A");
    assert!(
        rb["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("[FILE] a.txt")
    );
    drop(rx);
    // cancellation: the client cancels a request; the server stays healthy and audits it
    let id = m.start_request(
        "tools/call",
        json!({"name": "search_files", "arguments": {"path": ".", "pattern": "*.txt"}}),
    );
    m.notify(
        "notifications/cancelled",
        json!({"requestId": id, "reason": "test"}),
    );
    let (err, body, _) = m.call("read_text_file", json!({"path": "a.txt"}));
    assert!(!err && body == "A");
    assert!(m.close().success());
}

#[test]
fn fs_tools_work_inside_the_roots() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(
        root.join("src/main.rs"),
        "fn main() {\r\n    println!(\"hi\");\r\n}\r\n",
    )
    .unwrap();
    std::fs::write(root.join(".gitignore"), "target/\n").unwrap();
    std::fs::create_dir_all(root.join("target")).unwrap();
    std::fs::write(root.join("target/junk.rs"), "").unwrap();
    let mut m = Mcp::start(
        t.path(),
        Opts {
            roots: vec![&root],
            ..Opts::default()
        },
    );
    let (err, body, r) = m.call("edit_file", json!({"path": "src/main.rs", "edits": [{"oldText": "println!(\"hi\");\n", "newText": "println!(\"hello\");\n"}], "dryRun": true}));
    assert!(!err, "{body}");
    assert!(
        body.contains("-    println!(\"hi\");\n+    println!(\"hello\");"),
        "{body}"
    );
    assert_eq!(r["structuredContent"]["applied"], false);
    assert!(
        std::fs::read_to_string(root.join("src/main.rs"))
            .unwrap()
            .contains("\"hi\""),
        "dryRun wrote nothing"
    );
    let (err, body, _) = m.call("edit_file", json!({"path": "src/main.rs", "edits": [{"oldText": "println!(\"hi\");", "newText": "println!(\"hello\");"}]}));
    assert!(!err, "{body}");
    assert_eq!(
        std::fs::read_to_string(root.join("src/main.rs")).unwrap(),
        "fn main() {\r\n    println!(\"hello\");\r\n}\r\n",
        "CRLF kept"
    );
    let before = std::fs::read(root.join("src/main.rs")).unwrap();
    let (err, body, _) = m.call("edit_file", json!({"path": "src/main.rs", "edits": [{"oldText": "fn", "newText": "pub fn"}, {"oldText": "(", "newText": "["}]}));
    assert!(
        err && body.contains("edit 2: oldText matches 2 times (at lines 1, 2)")
            && body.contains("nothing was written"),
        "{body}"
    );
    let (err, body, _) = m.call(
        "edit_file",
        json!({"path": "src/main.rs", "edits": [{"oldText": "nope", "newText": ""}]}),
    );
    assert!(
        err && body.contains("edit 1: oldText (1 line(s), 4 bytes) was not found"),
        "{body}"
    );
    assert_eq!(
        std::fs::read(root.join("src/main.rs")).unwrap(),
        before,
        "refused edits write nothing"
    );
    let (err, body, _) = m.call("search_files", json!({"path": ".", "pattern": "*.rs"}));
    assert!(
        !err && body.contains("src/main.rs") && !body.contains("junk.rs"),
        ".gitignore honoured: {body}"
    );
    let (err, body, _) = m.call(
        "directory_tree",
        json!({"path": ".", "excludePatterns": ["src"]}),
    );
    assert!(!err, "{body}");
    let tree: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(tree, json!([{"name": ".gitignore", "type": "file"}]));
    let (err, body, _) = m.call("create_directory", json!({"path": "a/b/c"}));
    assert!(!err && root.join("a/b/c").is_dir(), "{body}");
    let (err, body, _) = m.call(
        "move_file",
        json!({"source": "src/main.rs", "destination": "a/b/c/main.rs"}),
    );
    assert!(!err && root.join("a/b/c/main.rs").is_file(), "{body}");
    let (err, body, _) = m.call(
        "move_file",
        json!({"source": "a/b/c/main.rs", "destination": ".gitignore"}),
    );
    assert!(err && body.contains("already exists"), "{body}");
    let (err, body, r) = m.call("get_file_info", json!({"path": "a/b/c/main.rs"}));
    assert!(
        !err && r["structuredContent"]["isFile"] == json!(true),
        "{body}"
    );
    let (err, body, r) = m.call("list_allowed_directories", json!({}));
    assert!(
        !err && r["structuredContent"]["directories"][0]
            == json!(root.canonicalize().unwrap().display().to_string()),
        "{body}"
    );
}
