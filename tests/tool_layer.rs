//! The tool layer called in-process, as the chat agent will call it: the same operations, names
//! and argument shapes as `zeke mcp`, through the same gate, with the surface's own way of asking
//! (here a scripted asker standing in for the editor's review).

use std::sync::Mutex;

use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use zeke::app::audit::Audit;
use zeke::app::gate::{Answer, Asked, Asker, Gate, Question};
use zeke::app::grants::{GrantScope, GrantStore};
use zeke::app::tools::{self, Invocation, Roots, Settings, ToolError};
use zeke::config::Config;

/// Answers each question with the next of its answers, remembering what it was asked.
struct Scripted {
    answers: Mutex<Vec<Answer>>,
    asked: Mutex<Vec<String>>,
}

impl Asker for Scripted {
    fn ask<'a>(&'a self, q: &'a Question) -> BoxFuture<'a, Asked> {
        Box::pin(async move {
            self.asked
                .lock()
                .unwrap()
                .push(format!("{} {} {}", q.tool, q.capability, q.what));
            match self.answers.lock().unwrap().pop() {
                Some(a) => Asked::Answer(a),
                None => Asked::NoAnswer("no more scripted answers".into()),
            }
        })
    }
}

async fn call(
    gate: &Gate,
    roots: &Roots,
    asker: &Scripted,
    settings: &Settings,
    name: &str,
    args: Value,
) -> Result<String, ToolError> {
    tools::run(
        gate,
        Invocation {
            name,
            args: args.as_object().unwrap().clone(),
            roots: roots.clone(),
            ct: Default::default(),
            progress: None,
            asker,
            settings,
            client: Some("agent-test"),
            refused: None,
        },
    )
    .await
    .map(|o| o.text)
}

#[tokio::test]
async fn in_process_calls_pass_the_same_gate_and_ask_through_the_surface() {
    let t = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(t.path()).unwrap().join("proj");
    std::fs::create_dir_all(root.join(".git")).unwrap();
    let config = Config::from_value(json!({})).unwrap();
    let gate = Gate::new(
        config.policy.clone(),
        GrantStore::load(t.path().join("grants.json")),
        Audit::new(t.path().join("audit.jsonl")),
        None,
    );
    let roots = Roots::new(std::slice::from_ref(&root)).unwrap();
    let settings = Settings::from_config(&config);
    // answers are popped from the end: Deny, then Allow all for the session
    let asker = Scripted {
        answers: Mutex::new(vec![
            Answer::AllowAll(GrantScope::Session),
            Answer::Deny("not now".into()),
        ]),
        asked: Mutex::new(Vec::new()),
    };
    let write = |name: &str| json!({"path": root.join(name).display().to_string(), "content": "x"});
    let e = call(
        &gate,
        &roots,
        &asker,
        &settings,
        "write_file",
        write("a.txt"),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ToolError::Denied(_)), "{e}");
    assert!(!root.join("a.txt").exists(), "denied: nothing written");
    let ok = call(
        &gate,
        &roots,
        &asker,
        &settings,
        "write_file",
        write("b.txt"),
    )
    .await
    .unwrap();
    assert_eq!(
        ok,
        format!("Successfully wrote to {}", root.join("b.txt").display())
    );
    // Allow all was remembered: no third question
    call(
        &gate,
        &roots,
        &asker,
        &settings,
        "write_file",
        write("c.txt"),
    )
    .await
    .unwrap();
    assert_eq!(asker.asked.lock().unwrap().len(), 2);
    assert!(asker.asked.lock().unwrap()[0].starts_with("write_file fs.write write "));
    // reads need no question; confinement holds in-process too
    let text = call(
        &gate,
        &roots,
        &asker,
        &settings,
        "read_text_file",
        json!({"path": root.join("b.txt")}),
    )
    .await
    .unwrap();
    assert_eq!(text, "x");
    let e = call(
        &gate,
        &roots,
        &asker,
        &settings,
        "read_text_file",
        json!({"path": "/etc/passwd"}),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            e,
            ToolError::Refused {
                rule: "outside-roots",
                ..
            }
        ),
        "{e}"
    );
    // the one audit log got one record per call, with the agent as client
    gate.audit().flush();
    let log = std::fs::read_to_string(t.path().join("audit.jsonl")).unwrap();
    let outcomes: Vec<String> = log
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["outcome"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        outcomes,
        ["denied", "started", "ok", "started", "ok", "ok", "refused"]
    );
}

/// The gate, roots and settings of one in-process session with `cmd.exec` = `decision`.
struct Session {
    _t: tempfile::TempDir,
    dir: std::path::PathBuf,
    root: std::path::PathBuf,
    gate: Gate,
    roots: Roots,
    settings: Settings,
}

fn session(decision: &str) -> Session {
    let t = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(t.path()).unwrap();
    let root = dir.join("proj");
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::create_dir_all(root.join("sub")).unwrap();
    let config = Config::from_value(json!({"capabilities": {"cmd.exec": decision}})).unwrap();
    Session {
        gate: Gate::new(
            config.policy.clone(),
            GrantStore::load(dir.join("grants.json")),
            Audit::new(dir.join("audit.jsonl")),
            None,
        ),
        roots: Roots::new(std::slice::from_ref(&root)).unwrap(),
        settings: Settings::from_config(&config),
        _t: t,
        dir,
        root,
    }
}

fn scripted(answers: Vec<Answer>) -> Scripted {
    Scripted {
        answers: Mutex::new(answers),
        asked: Mutex::new(Vec::new()),
    }
}

impl Session {
    async fn run_command(
        &self,
        asker: &Scripted,
        args: Value,
        ct: tokio_util::sync::CancellationToken,
    ) -> Result<tools::Output, ToolError> {
        tools::run(
            &self.gate,
            Invocation {
                name: "run_command",
                args: args.as_object().unwrap().clone(),
                roots: self.roots.clone(),
                ct,
                progress: None,
                asker,
                settings: &self.settings,
                client: Some("agent-test"),
                refused: None,
            },
        )
        .await
    }

    async fn run(&self, asker: &Scripted, args: Value) -> Result<tools::Output, ToolError> {
        self.run_command(asker, args, Default::default()).await
    }

    fn audit(&self) -> Vec<Value> {
        self.gate.audit().flush();
        std::fs::read_to_string(self.dir.join("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// `cmd.exec` is refused by default, and no variation of the call gets a command run: not another
/// command, directory, time limit or spelling; the user is never asked.
#[tokio::test]
async fn run_command_never_runs_under_deny() {
    let s = session("deny");
    let asker = scripted(vec![]);
    let marker = s.root.join("ran");
    let touch = format!("touch {}", marker.display());
    let variations = [
        json!({"command": touch}),
        json!({"command": touch, "cwd": "sub"}),
        json!({"command": touch, "cwd": s.root.join("sub").display().to_string()}),
        json!({"command": touch, "timeout_ms": 1}),
        json!({"command": format!("  {touch}\n")}),
        json!({"command": format!("true; {touch}")}),
        json!({"command": format!("sh -c '{touch}'")}),
        json!({"command": format!("echo $({touch})")}),
    ];
    for args in &variations {
        let e = s.run(&asker, args.clone()).await.unwrap_err();
        let ToolError::Denied(m) = &e else {
            panic!("{args}: {e}")
        };
        assert!(
            m.contains("(rule policy-deny)") && m.contains("\"cmd.exec\" = \"allow\""),
            "{m}"
        );
    }
    // with no config at all, the built-in default refuses too
    let config = Config::from_value(json!({})).unwrap();
    let default = Gate::new(
        config.policy.clone(),
        GrantStore::load(s.dir.join("grants2.json")),
        Audit::new(s.dir.join("audit2.jsonl")),
        None,
    );
    let e = tools::run(
        &default,
        Invocation {
            name: "run_command",
            args: json!({"command": touch}).as_object().unwrap().clone(),
            roots: s.roots.clone(),
            ct: Default::default(),
            progress: None,
            asker: &asker,
            settings: &s.settings,
            client: None,
            refused: None,
        },
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("by built-in default"), "{e}");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!marker.exists(), "nothing ran");
    assert!(asker.asked.lock().unwrap().is_empty(), "deny never asks");
    let outcomes: Vec<Value> = s.audit().iter().map(|r| r["outcome"].clone()).collect();
    assert_eq!(outcomes, vec![json!("denied"); variations.len()]);
}

/// `prompt` asks with the exact command line and directory; Deny runs nothing, Allow once runs it
/// once (and asks again next time).
#[tokio::test]
async fn run_command_prompt_shows_the_exact_command_and_directory() {
    let s = session("prompt");
    let marker = s.root.join("sub/ran");
    // looks harmless on its first line; the second does the work
    let command = format!(
        "echo hello   \ntouch {}; echo $(echo done)",
        marker.display()
    );
    let args = json!({"command": command, "cwd": "sub"});
    let asker = scripted(vec![Answer::AllowOnce, Answer::Deny("no".into())]);
    let e = s.run(&asker, args.clone()).await.unwrap_err();
    assert!(
        matches!(&e, ToolError::Denied(m) if m.starts_with("denied by the user")),
        "{e}"
    );
    assert!(!marker.exists(), "denied: nothing ran");
    let out = s.run(&asker, args).await.unwrap();
    assert!(marker.exists(), "allowed once: it ran");
    assert!(out.text.contains("\nhello\ndone\n"), "{}", out.text);
    let asked = asker.asked.lock().unwrap().clone();
    let sub = s.root.join("sub");
    let want = format!(
        "run_command cmd.exec run this shell command in {} (/bin/sh -c, time limit 30000 ms; 2 \
         lines, every one runs):\n{command}\n(escaped, on one line: {command:?})",
        sub.display()
    );
    assert_eq!(asked, [want.clone(), want], "both asks showed all of it");
    let outcomes: Vec<Value> = s.audit().iter().map(|r| r["outcome"].clone()).collect();
    assert_eq!(outcomes, [json!("denied"), json!("started"), json!("ok")]);
}

/// Allowed: the exit code, both streams (invalid UTF-8 replaced), the wall time; the line goes to
/// the shell untouched; the directory is confined; the output never reaches the audit log.
#[tokio::test]
async fn run_command_allowed_runs_in_the_root_and_reports() {
    let s = session("allow");
    let asker = scripted(vec![]);
    let command =
        r#"pwd; echo '$HOME' "a  b;c"; printf 'bad \377\376 bytes\n' >&2; echo $((6*7))zz; exit 3"#;
    let out = s.run(&asker, json!({"command": command})).await.unwrap();
    let f = &out.structured;
    assert_eq!(f["exit_code"], json!(3), "{}", out.text);
    assert_eq!(f["signal"], Value::Null);
    assert_eq!(f["timed_out"], json!(false));
    assert_eq!(
        f["stdout"],
        json!(format!("{}\n$HOME a  b;c\n42zz\n", s.root.display())),
        "run by sh in the first root, the line not re-interpreted by Zeke"
    );
    assert_eq!(f["stderr"], json!("bad \u{FFFD}\u{FFFD} bytes\n"), "lossy");
    assert_eq!(f["stderr_bytes"], json!(13));
    assert_eq!(f["cwd"], json!(s.root.display().to_string()));
    assert!(f["duration_ms"].is_u64());
    assert!(
        out.text.starts_with("exit code 3\nwall time ")
            && out.text.contains("--- stderr (13 bytes) ---\nbad"),
        "{}",
        out.text
    );
    // a relative cwd inside the roots
    let out = s
        .run(&asker, json!({"command": "pwd", "cwd": "sub"}))
        .await
        .unwrap();
    assert_eq!(
        out.structured["stdout"],
        json!(format!("{}/sub\n", s.root.display()))
    );
    // cwd outside the roots, through a symlink out, or not a directory: refused, nothing runs
    let outside = s.dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, s.root.join("link")).unwrap();
    std::fs::write(s.root.join("file.txt"), "x").unwrap();
    let marker = outside.join("ran");
    let touch = format!("touch {}", marker.display());
    for (cwd, rule) in [
        (outside.display().to_string(), Some("outside-roots")),
        ("link".to_string(), Some("symlink-escape")),
        (
            s.root.join("link").display().to_string(),
            Some("symlink-escape"),
        ),
        ("../outside".to_string(), Some("dotdot-escape")),
        ("file.txt".to_string(), None),
        ("missing".to_string(), None),
    ] {
        let e = s
            .run(&asker, json!({"command": touch, "cwd": cwd}))
            .await
            .unwrap_err();
        match rule {
            Some(rule) => assert!(
                matches!(&e, ToolError::Refused { rule: r, .. } if *r == rule),
                "{cwd}: {e}"
            ),
            None => assert!(matches!(&e, ToolError::Failed(_)), "{cwd}: {e}"),
        }
    }
    // bad arguments are refused before anything runs
    for args in [
        json!({"command": ""}),
        json!({"command": touch, "timeout_ms": 0}),
        json!({"command": touch, "timeout_ms": 600_001}),
        json!({"command": touch, "workdir": "/"}),
        json!({"command": ["touch", "x"]}),
    ] {
        let e = s.run(&asker, args.clone()).await.unwrap_err();
        assert!(matches!(e, ToolError::Failed(_)), "{args}: {e}");
    }
    assert!(!marker.exists(), "nothing ran outside");
    let log = s.audit();
    assert_eq!(log[0]["outcome"], "started");
    assert_eq!(log[1]["outcome"], "ok");
    assert_eq!(
        log[1]["arguments"]["command"],
        json!(command),
        "the line is audited"
    );
    let text = serde_json::to_string(&log).unwrap();
    assert!(!text.contains("42zz"), "the output is not: {text}");
}

/// Output is capped per stream (its first and last 8 KiB), saying how much was cut.
#[tokio::test]
async fn run_command_output_is_capped() {
    let s = session("allow");
    let asker = scripted(vec![]);
    let out = s
        .run(
            &asker,
            json!({"command": "head -c 300000 /dev/zero | tr '\\0' a; echo; echo END; seq 1 3 >&2"}),
        )
        .await
        .unwrap();
    let f = &out.structured;
    assert_eq!(f["stdout_bytes"], json!(300_005));
    assert_eq!(f["stdout_cut"], json!(300_005 - 16 * 1024));
    assert_eq!(
        (f["stderr"].clone(), f["stderr_cut"].clone()),
        (json!("1\n2\n3\n"), json!(0))
    );
    let stdout = f["stdout"].as_str().unwrap();
    assert!(stdout.starts_with(&"a".repeat(8192)), "the head is kept");
    assert!(stdout.ends_with("a\nEND\n"), "the tail is kept");
    assert!(
        stdout.contains("[zeke: 283621 bytes cut here; 300005 bytes in all"),
        "{}",
        &stdout[8000..8400]
    );
    assert!(
        out.text.chars().count() < 40_000,
        "fits one MCP page by default"
    );
}

/// The time limit and a cancellation stop the whole process group: a background job it started
/// never gets to run its next step.
#[tokio::test]
async fn run_command_timeout_and_cancellation_stop_the_process_group() {
    let s = session("allow");
    let asker = scripted(vec![]);
    let late = s.root.join("late");
    let command = format!(
        "echo early; (sleep 1; touch {}) & sleep 30; echo never",
        late.display()
    );
    let started = std::time::Instant::now();
    let out = s
        .run(&asker, json!({"command": command, "timeout_ms": 300}))
        .await
        .unwrap();
    assert!(started.elapsed().as_secs() < 5, "stopped promptly");
    let f = &out.structured;
    assert_eq!(f["timed_out"], json!(true));
    assert_eq!(f["stdout"], json!("early\n"), "what it printed so far");
    assert_eq!(f["signal"], json!(15), "ended by SIGTERM: {}", out.text);
    assert!(
        out.text
            .starts_with("timed out after 300 ms: its processes were stopped"),
        "{}",
        out.text
    );
    // a command that ignores SIGTERM is killed after the grace
    let out = s
        .run(
            &asker,
            json!({"command": "trap '' TERM; echo stubborn; sleep 30", "timeout_ms": 200}),
        )
        .await
        .unwrap();
    assert_eq!(out.structured["signal"], json!(9), "{}", out.text);
    // cancelled by the caller: Cancelled, and the group is stopped the same way
    let ct = tokio_util::sync::CancellationToken::new();
    let cancel = ct.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        cancel.cancel();
    });
    let started = std::time::Instant::now();
    let e = s
        .run_command(&asker, json!({"command": command}), ct)
        .await
        .unwrap_err();
    assert_eq!(e, ToolError::Cancelled);
    assert!(started.elapsed().as_secs() < 5);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(
        !late.exists(),
        "the background job was stopped with its group"
    );
    let outcomes: Vec<Value> = s.audit().iter().map(|r| r["outcome"].clone()).collect();
    assert_eq!(outcomes.last(), Some(&json!("cancelled")));
}
