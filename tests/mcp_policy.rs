//! The policy gate through the real server: `deny` refuses, `prompt` without elicitation fails
//! closed naming the config key, `prompt` with elicitation applies on Allow and not on Deny,
//! "Allow all" stops the asking for that scope, scopes match whole names, and the audit log has
//! a record for every call.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::mcp::{Mcp, Opts, Responder, git_env, repo};

/// A responder answering every elicitation with the next of `answers` and counting the asks.
fn answering(answers: &[&str]) -> (Responder, Arc<Mutex<Vec<String>>>) {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = asked.clone();
    let mut queue: Vec<String> = answers.iter().rev().map(|s| s.to_string()).collect();
    let r: Responder = Box::new(move |method, params| {
        assert_eq!(method, "elicitation/create");
        log.lock()
            .unwrap()
            .push(params["message"].as_str().unwrap_or("").to_string());
        let schema = &params["requestedSchema"]["properties"]["decision"];
        assert!(
            schema.to_string().contains("allow_once") && schema.to_string().contains("allow_all"),
            "{params}"
        );
        match queue.pop().as_deref() {
            Some("decline") => json!({"action": "decline"}),
            Some(choice) => json!({"action": "accept", "content": {"decision": choice}}),
            None => panic!("asked more often than expected"),
        }
    });
    (r, asked)
}

#[test]
fn deny_refuses_and_names_the_rule() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let mut m = Mcp::start(
        t.path(),
        Opts {
            roots: vec![&root],
            config: "[capabilities]\n\"fs.write\" = \"deny\"\n",
            ..Opts::default()
        },
    );
    let (err, body, _) = m.call("write_file", json!({"path": "a.txt", "content": "x"}));
    assert!(
        err && body.contains("(rule policy-deny)") && body.contains("[capabilities]"),
        "{body}"
    );
    assert!(!root.join("a.txt").exists());
    let (err, _, _) = m.call("list_directory", json!({"path": "."}));
    assert!(!err, "fs.read is still allowed");
}

#[test]
fn prompt_without_elicitation_fails_closed_with_the_config_key() {
    let t = tempfile::tempdir().unwrap();
    let root = repo(&t.path().join("proj"));
    let mut m = Mcp::start(
        t.path(),
        Opts {
            roots: vec![&root],
            config: "",
            env: git_env(),
            ..Opts::default()
        },
    );
    let (err, body, _) = m.call("write_file", json!({"path": "b.txt", "content": "x"}));
    assert!(err && body.contains("(rule policy-prompt)"), "{body}");
    assert!(
        body.contains(&format!(
            "[scopes.\"root:{}\"]\n\"fs.write\" = \"allow\"",
            root.display()
        )),
        "{body}"
    );
    assert!(!root.join("b.txt").exists());
    let (err, body, _) = m.call(
        "git_create_branch",
        json!({"repo_path": root.display().to_string(), "branch_name": "feature"}),
    );
    assert!(err && body.contains("\"git.write\" = \"allow\""), "{body}");
    let (err, body, _) = m.call("git_log", json!({"repo_path": root.display().to_string()}));
    assert!(
        !err && body.contains("Message: first"),
        "git.read allowed by default: {body}"
    );
}

#[test]
fn prompt_with_elicitation_applies_on_allow_only() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let (responder, asked) = answering(&["allow_once", "deny", "decline", "allow_all"]);
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
    let (err, body, _) = m.call("write_file", json!({"path": "once.txt", "content": "1"}));
    assert!(!err, "{body}");
    assert_eq!(std::fs::read_to_string(root.join("once.txt")).unwrap(), "1");
    let (err, body, _) = m.call("write_file", json!({"path": "denied.txt", "content": "2"}));
    assert!(err && body.contains("denied by the user"), "{body}");
    assert!(!root.join("denied.txt").exists());
    let (err, _, _) = m.call(
        "edit_file",
        json!({"path": "once.txt", "edits": [{"oldText": "1", "newText": "3"}]}),
    );
    assert!(err, "a declined prompt denies");
    assert_eq!(std::fs::read_to_string(root.join("once.txt")).unwrap(), "1");
    let (err, _, _) = m.call("create_directory", json!({"path": "d"}));
    assert!(!err && root.join("d").is_dir());
    // allow_all: no more questions for fs.write in this root
    let (err, _, _) = m.call("write_file", json!({"path": "d/x.txt", "content": "4"}));
    assert!(!err && root.join("d/x.txt").exists());
    let asked = asked.lock().unwrap();
    assert_eq!(asked.len(), 4, "{asked:?}");
    assert!(
        asked[0].contains("write once.txt") && asked[0].contains("fs.write"),
        "{}",
        asked[0]
    );
    drop(asked);
    // dry runs only read, so they never ask
    let (err, _, _) = m.call(
        "edit_file",
        json!({"path": "once.txt", "edits": [{"oldText": "1", "newText": "5"}], "dryRun": true}),
    );
    assert!(!err);
    let records = m.audit_records();
    let outcomes: Vec<(String, String)> = records
        .iter()
        .map(|r| {
            (
                r["tool"].as_str().unwrap().to_string(),
                r["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // a write that passed the gate leaves a `started` record before it writes, then its outcome
    assert_eq!(
        outcomes,
        [
            ("write_file", "started"),
            ("write_file", "ok"),
            ("write_file", "denied"),
            ("edit_file", "denied"),
            ("create_directory", "started"),
            ("create_directory", "ok"),
            ("write_file", "started"),
            ("write_file", "ok"),
            ("edit_file", "ok")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(
        records[6]["decisions"], records[7]["decisions"],
        "the started record carries the decisions taken"
    );
    assert!(
        records[7]["decisions"][0]
            .as_str()
            .unwrap()
            .contains("allow-all grant"),
        "{}",
        records[7]
    );
    assert_eq!(
        records[0]["arguments"]["content"],
        json!({"bytes": 1}),
        "no file contents in the audit log"
    );
    assert!(records.iter().all(|r| r["duration_ms"].is_u64()));
}

#[test]
fn scopes_match_whole_repository_names() {
    let t = tempfile::tempdir().unwrap();
    let zeke = repo(&t.path().join("zeke"));
    let zeke2 = repo(&t.path().join("zeke2"));
    let config = "[scopes.\"repo:zeke\"]\n\"fs.write\" = \"allow\"\n\"git.write\" = \"allow\"\n";
    let mut m = Mcp::start(
        t.path(),
        Opts {
            roots: vec![t.path()],
            config,
            env: git_env(),
            ..Opts::default()
        },
    );
    let (err, body, _) = m.call(
        "write_file",
        json!({"path": zeke.join("new.txt").display().to_string(), "content": "z"}),
    );
    assert!(!err, "{body}");
    let (err, body, _) = m.call(
        "write_file",
        json!({"path": zeke2.join("new.txt").display().to_string(), "content": "z"}),
    );
    assert!(
        err && body.contains("(rule policy-prompt)"),
        "repo:zeke must not govern zeke2: {body}"
    );
    let rp = zeke.display().to_string();
    let (err, body, _) = m.call("git_add", json!({"repo_path": rp, "files": ["new.txt"]}));
    assert!(!err, "{body}");
    let (err, body, _) = m.call("git_commit", json!({"repo_path": rp, "message": "add new"}));
    assert!(
        !err && body.starts_with("Changes committed successfully with hash "),
        "{body}"
    );
    let (err, body, _) = m.call("git_log", json!({"repo_path": rp, "max_count": 1}));
    assert!(
        !err && body.contains("Message: add new")
            && body.contains("Author: Zeke Test <test@zeke.invalid>"),
        "{body}"
    );
    let (err, body, _) = m.call("git_commit", json!({"repo_path": rp, "message": "empty"}));
    assert!(
        err && body.contains("git commit failed"),
        "no empty commits: {body}"
    );
    let ended = m
        .audit_records()
        .iter()
        .filter(|r| r["outcome"] != "started")
        .count();
    assert_eq!(ended, 6, "one closing audit record per call");
}

#[test]
fn every_git_tool_runs() {
    let t = tempfile::tempdir().unwrap();
    let root = repo(&t.path().join("r"));
    let mut m = Mcp::start(
        t.path(),
        Opts {
            roots: vec![&root],
            env: git_env(),
            ..Opts::default()
        },
    );
    let rp = root.display().to_string();
    std::fs::write(root.join("a.txt"), "one\ntwo\n").unwrap();
    let mut call = |tool: &str, extra: Value| {
        let mut args = json!({"repo_path": rp});
        args.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (err, body, _) = m.call(tool, args);
        assert!(!err, "{tool}: {body}");
        body
    };
    assert!(call("git_diff_unstaged", json!({})).contains("+two"));
    call("git_add", json!({"files": ["a.txt"]}));
    assert!(call("git_diff_staged", json!({"context_lines": 0})).contains("+two"));
    call("git_reset", json!({}));
    assert_eq!(call("git_diff_staged", json!({})), "Staged changes:\n");
    call("git_add", json!({"files": ["."]}));
    call("git_commit", json!({"message": "second"}));
    assert!(call("git_diff", json!({"target": "HEAD~1"})).contains("+two"));
    assert!(call("git_show", json!({"revision": "HEAD~1:a.txt"})).contains("one"));
    assert!(
        call(
            "git_log",
            json!({"start_timestamp": "2024-01-01", "end_timestamp": "2024-02-01"})
        )
        .matches("Commit: ")
        .count()
            == 2
    );
    assert!(
        call("git_log", json!({"start_timestamp": "2030-01-01"}))
            .matches("Commit: ")
            .count()
            == 0
    );
    assert!(
        call("git_create_branch", json!({"branch_name": "feature"}))
            .contains("Created branch 'feature' from 'main'")
    );
    assert!(
        call("git_checkout", json!({"branch_name": "feature"}))
            .contains("Switched to branch 'feature'")
    );
    assert!(call("git_branch", json!({"branch_type": "local"})).contains("* feature"));
    assert!(call("git_status", json!({})).contains("On branch feature"));
}

/// Every capability a tool here needs, on the MCP surface: `deny` refuses naming the rule,
/// `prompt` asks (here: a client that cannot be asked is refused with the config line), `allow`
/// runs — one representative tool per capability, one fresh server per (capability, decision).
#[test]
fn each_capability_deny_refuses_prompt_asks_allow_runs() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { break };
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let _ = c.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\nConnection: close\r\n\r\nserved",
            );
        }
    });
    let t = tempfile::tempdir().unwrap();
    let root = repo(&t.path().join("proj"));
    let rp = root.display().to_string();
    // (capability, tool, arguments, text of a successful result)
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        ("fs.read", "read_text_file", json!({"path": "a.txt"}), "one"),
        (
            "fs.write",
            "create_directory",
            json!({"path": "made"}),
            "Successfully created",
        ),
        (
            "git.read",
            "git_status",
            json!({"repo_path": rp}),
            "Repository status",
        ),
        (
            "git.write",
            "git_create_branch",
            json!({"repo_path": rp, "branch_name": "topic"}),
            "Created branch",
        ),
        ("net.http", "fetch", json!({"url": url}), "served"),
        (
            "cmd.exec",
            "run_command",
            json!({"command": "touch cmd-marker && echo ran"}),
            "ran",
        ),
    ];
    for (cap, tool, args, ok_text) in cases {
        for decision in ["deny", "prompt", "allow"] {
            let config = format!(
                "[fetch]\nallow_private = true\n[capabilities]\n\"{cap}\" = \"{decision}\"\n"
            );
            let mut m = Mcp::start(
                t.path(),
                Opts {
                    roots: vec![&root],
                    config: &config,
                    env: git_env(),
                    ..Opts::default()
                },
            );
            let (err, body, _) = m.call(tool, args.clone());
            let what = format!("{cap} = {decision}: {tool}: {body}");
            assert_eq!(
                root.join("cmd-marker").exists(),
                cap == "cmd.exec" && decision == "allow",
                "a command runs only when allowed: {what}"
            );
            match decision {
                "deny" => assert!(
                    err && body.contains("(rule policy-deny)")
                        && body.contains(&format!("{cap} is denied")),
                    "{what}"
                ),
                "prompt" => assert!(
                    err && body.contains("(rule policy-prompt)")
                        && body.contains(&format!("\"{cap}\" = \"allow\"")),
                    "{what}"
                ),
                _ => assert!(!err && body.contains(ok_text), "{what}"),
            }
        }
    }
    assert!(root.join("made").is_dir(), "the allowed write happened");
}

/// `run_command` on the MCP surface: in the catalog with its schema; `prompt` asks with the whole
/// command line and runs it only on Allow; `deny` runs nothing whatever the model tries; allowed,
/// it reports the exit code and both streams, caps them, hides `*_API_KEY` variables, stops a
/// command at its time limit, and a cancelled call stops its command.
#[test]
fn run_command_through_the_server() {
    let t = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(repo(&t.path().join("proj"))).unwrap();
    let marker = root.join("ran");
    let touch = format!("touch {}", marker.display());

    // deny (the default): the model's retries with variations all refused, nothing runs
    let mut m = Mcp::start(
        t.path(),
        Opts {
            roots: vec![&root],
            config: "",
            ..Opts::default()
        },
    );
    let tools = m.request("tools/list", json!({}));
    let spec = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "run_command")
        .cloned()
        .expect("run_command is listed");
    assert_eq!(
        spec["inputSchema"]["required"],
        json!(["command"]),
        "{spec}"
    );
    assert_eq!(spec["annotations"]["readOnlyHint"], json!(false));
    assert_eq!(spec["annotations"]["destructiveHint"], json!(true));
    for args in [
        json!({"command": touch}),
        json!({"command": touch, "cwd": "."}),
        json!({"command": format!("true\n{touch}"), "timeout_ms": 5}),
        json!({"command": format!("/bin/sh -c '{touch}'")}),
    ] {
        let (err, body, _) = m.call("run_command", args);
        assert!(
            err && body.contains("(rule policy-deny)") && body.contains("cmd.exec is denied"),
            "{body}"
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(!marker.exists(), "deny: nothing ran");
    drop(m);

    // prompt: the question carries every line verbatim; Deny runs nothing, Allow once runs it
    let (responder, asked) = answering(&["deny", "allow_once"]);
    let mut m = Mcp::start(
        t.path(),
        Opts {
            roots: vec![&root],
            config: "[capabilities]\n\"cmd.exec\" = \"prompt\"\n",
            capabilities: json!({"elicitation": {}}),
            responder: Some(responder),
            ..Opts::default()
        },
    );
    let command = format!("echo harmless\n{touch}; echo $(echo sub)");
    let (err, body, _) = m.call("run_command", json!({"command": command}));
    assert!(err && body.contains("denied by the user"), "{body}");
    assert!(!marker.exists(), "prompt + deny: nothing ran");
    let (err, body, r) = m.call("run_command", json!({"command": command}));
    assert!(!err, "{body}");
    assert!(marker.exists(), "prompt + allow once: it ran");
    assert_eq!(
        r["structuredContent"]["stdout"],
        json!("harmless\nsub\n"),
        "{r}"
    );
    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 2);
    for q in &asked {
        assert!(
            q.contains(&format!("in {} (/bin/sh -c", root.display()))
                && q.contains(&format!(":\n{command}\n"))
                && q.contains("2 lines, every one runs"),
            "{q}"
        );
    }
    drop(m);

    // allow
    let mut m = Mcp::start(
        t.path(),
        Opts {
            roots: vec![&root],
            config: "[capabilities]\n\"cmd.exec\" = \"allow\"\n",
            env: vec![
                ("ZEKE_TEST_API_KEY", "sekrit-value".into()),
                ("OPENAI_API_KEY", "sk-sekrit".into()),
                ("ZEKE_TEST_VISIBLE", "seen".into()),
            ],
            ..Opts::default()
        },
    );
    let (err, body, r) = m.call(
        "run_command",
        json!({"command": "env; printf '\\377' >&2; exit 4"}),
    );
    let sc = &r["structuredContent"];
    assert!(!err && sc["exit_code"] == json!(4), "{body}");
    assert!(body.contains("ZEKE_TEST_VISIBLE=seen"), "inherited: {body}");
    assert!(
        !body.contains("sekrit"),
        "no *_API_KEY reaches the command: {body}"
    );
    assert_eq!(sc["stderr"], json!("\u{FFFD}"), "invalid UTF-8 is replaced");
    // capped
    let (err, body, r) = m.call("run_command", json!({"command": "seq 1 100000"}));
    let sc = &r["structuredContent"];
    assert!(!err && sc["stdout_bytes"] == json!(588_895), "{body}");
    assert_eq!(sc["stdout_cut"], json!(588_895 - 16 * 1024));
    assert!(
        body.contains("bytes cut here")
            && body.ends_with("99999\n100000\n--- stderr (0 bytes) ---\n"),
        "{}",
        &body[body.len() - 200..]
    );
    assert!(
        sc.get("pages").is_none(),
        "one page: a second would run it again"
    );
    // timed out: stopped, and says so with what it printed
    let started = std::time::Instant::now();
    let (err, body, r) = m.call(
        "run_command",
        json!({"command": "echo before; sleep 30", "timeout_ms": 300}),
    );
    assert!(!err && started.elapsed().as_secs() < 5, "{body}");
    assert!(
        body.starts_with("timed out after 300 ms") && body.contains("before\n"),
        "{body}"
    );
    assert_eq!(r["structuredContent"]["timed_out"], json!(true));
    // cancelled by the client: its command is stopped, the server carries on
    let late = root.join("late");
    let id = m.start_request(
        "tools/call",
        json!({"name": "run_command", "arguments": {"command": format!("(sleep 1; touch {}) & sleep 30", late.display())}}),
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    m.notify(
        "notifications/cancelled",
        json!({"requestId": id, "reason": "test"}),
    );
    let (err, body, _) = m.call("run_command", json!({"command": "echo still here"}));
    assert!(!err && body.contains("still here"), "{body}");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(!late.exists(), "the cancelled command's group was stopped");
    let records = m.audit_records();
    assert!(
        records
            .iter()
            .all(|r| !r.to_string().contains("ZEKE_TEST_VISIBLE=seen")),
        "no output in the audit log"
    );
    assert!(
        records.iter().any(|r| r["outcome"] == "cancelled"),
        "{records:?}"
    );
}
