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
