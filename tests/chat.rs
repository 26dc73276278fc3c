//! The chat agent in-process against a scripted OpenAI-compatible model on 127.0.0.1 (the fault
//! server's `/script/NAME/` mode streams tool calls): tools run through the tool layer, an
//! `edit_file` becomes a reviewed proposal (the backend never writes), the review's answer goes
//! back to the model as the tool result, cancelling withdraws the proposal, `fs.write = "deny"`
//! refuses without asking, and the conversation persists.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use zeke::app::chat::{self, ChatParams, ToolStatus};
use zeke::app::patch::Review;
use zeke::app::{App, UiEvent};
use zeke::config::Config;

use crate::common::{fault_url, rt};

static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn tag() -> String {
    format!(
        "chat-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

struct Project {
    dir: tempfile::TempDir,
    app: Arc<App>,
    tag: String,
}

async fn project(script: &str, extra: Value) -> Project {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("calc.py"),
        "def add(a, b):\n    return a - b\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("AGENTS.md"), "Use four spaces.\n").unwrap();
    let tag = tag();
    let mut table = json!({
        "providers": {"model": {"kind": "openai", "url": format!("{}/t/{tag}/script/{script}", fault_url()),
                                "api_key_env": "ZEKE_TEST_CHAT_KEY"}},
        "router": {"ledger": dir.path().join("usage.sqlite3").display().to_string()},
    });
    if let (Value::Object(t), Value::Object(e)) = (&mut table, extra) {
        t.extend(e);
    }
    // SAFETY: the same value in every test; set before any request reads it
    unsafe { std::env::set_var("ZEKE_TEST_CHAT_KEY", "sk-chat-test") };
    unsafe {
        std::env::set_var(
            "XDG_STATE_HOME",
            std::env::temp_dir().join("zeke-chat-tests"),
        )
    };
    let config = Config::from_value(table).unwrap();
    let app = App::new(config.clone());
    app.configure(config).await;
    Project { dir, app, tag }
}

async fn requests(tag: &str) -> Vec<Value> {
    let r = reqwest::get(format!("{}/t/{tag}/stats", fault_url()))
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    v["requests"].as_array().cloned().unwrap_or_default()
}

fn params(p: &Project, message: &str) -> ChatParams {
    ChatParams {
        id: 7,
        session: None,
        message: message.into(),
        context: vec![],
        root: std::fs::canonicalize(p.dir.path())
            .unwrap()
            .display()
            .to_string(),
        agent: true,
    }
}

/// Runs a turn, answering every proposal with `review`; returns the events.
async fn turn(p: &Project, params: ChatParams, review: Review) -> Vec<UiEvent> {
    turn_asked(
        p,
        params,
        review,
        zeke::app::gate::Answer::Deny("not in this test".into()),
    )
    .await
}

/// [`turn`], answering the policy's questions (`ask`) with `answer`.
async fn turn_asked(
    p: &Project,
    params: ChatParams,
    review: Review,
    answer: zeke::app::gate::Answer,
) -> Vec<UiEvent> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(chat::turn(p.app.clone(), params, tx));
    let mut events = Vec::new();
    while let Some(ev) = rx.recv().await {
        if let UiEvent::Ask { ask, .. } = &ev {
            assert!(
                p.app.asks.answer(*ask, answer.clone()),
                "someone waits for the answer"
            );
        }
        if let UiEvent::Patch(pr) = &ev {
            let applied: Vec<usize> = match review {
                Review::Deny(_) => vec![],
                _ => (0..pr.hunks.len()).collect(),
            };
            p.app
                .patches
                .resolve(pr.patch, review.clone(), &applied)
                .unwrap();
        }
        events.push(ev);
    }
    task.await.unwrap();
    events
}

fn tools(events: &[UiEvent]) -> Vec<(String, ToolStatus, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            UiEvent::ChatTool {
                name,
                status,
                summary,
                ..
            } if *status != ToolStatus::Running => Some((name.clone(), *status, summary.clone())),
            _ => None,
        })
        .collect()
}

fn answer(events: &[UiEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            UiEvent::ChatDelta { delta, .. } => Some(delta.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn an_agent_edit_is_a_reviewed_proposal_and_the_answer_goes_back_to_the_model() {
    rt().block_on(async {
        let p = project("agent_edit", json!({})).await;
        let events = turn(&p, params(&p, "fix add"), Review::AllowOnce).await;
        let t = tools(&events);
        assert_eq!(t.len(), 2, "{t:?}");
        assert_eq!(
            (t[0].0.as_str(), t[0].1),
            ("read_text_file", ToolStatus::Ok)
        );
        assert!(t[0].2.contains("def add"), "the file was read: {t:?}");
        assert_eq!((t[1].0.as_str(), t[1].1), ("edit_file", ToolStatus::Ok));
        let proposal = events
            .iter()
            .find_map(|e| match e {
                UiEvent::Patch(pr) => Some(pr.clone()),
                _ => None,
            })
            .expect("a proposal");
        assert_eq!(proposal.buf, 0, "for the file, not a buffer");
        assert!(proposal.path.ends_with("calc.py"));
        assert_eq!(proposal.hunks[0].new, vec!["    return a + b".to_string()]);
        // the backend never writes: the editor applies an approved proposal
        assert_eq!(
            std::fs::read_to_string(p.dir.path().join("calc.py")).unwrap(),
            "def add(a, b):\n    return a - b\n"
        );
        assert_eq!(answer(&events), "I fixed add in calc.py.");
        // the model saw the result of each tool, and the project's rules
        let reqs = requests(&p.tag).await;
        assert_eq!(reqs.len(), 3);
        let msgs = reqs[2]["body"]["messages"].as_array().unwrap();
        assert!(
            msgs[0]["content"]
                .as_str()
                .unwrap()
                .contains("Use four spaces.")
        );
        let last = msgs.last().unwrap();
        assert_eq!(last["role"], "tool");
        assert!(
            last["content"].as_str().unwrap().contains("approved"),
            "{last}"
        );
        let offered: Vec<&str> = reqs[0]["body"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["function"]["name"].as_str().unwrap())
            .collect();
        assert!(offered.contains(&"edit_file") && offered.contains(&"git_status"));
        // the conversation was saved and can be resumed
        let session = events
            .iter()
            .find_map(|e| match e {
                UiEvent::ChatDone { session, .. } => Some(session.clone()),
                _ => None,
            })
            .unwrap();
        let root = params(&p, "").root;
        let listed = p.app.chats.list(&root);
        assert_eq!(listed[0].id, session);
        assert_eq!(listed[0].title, "fix add");
        let stored = p.app.chats.load(&root, &session).unwrap();
        let roles: Vec<&str> = stored.messages.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(
            roles,
            [
                "user",
                "assistant",
                "tool",
                "assistant",
                "tool",
                "assistant"
            ]
        );
    });
}

#[test]
fn a_denied_edit_sends_the_reason_to_the_model() {
    rt().block_on(async {
        let p = project("agent_edit", json!({})).await;
        let events = turn(
            &p,
            params(&p, "fix add"),
            Review::Deny(Some("use operator.add".into())),
        )
        .await;
        let t = tools(&events);
        assert_eq!((t[1].0.as_str(), t[1].1), ("edit_file", ToolStatus::Denied));
        let reqs = requests(&p.tag).await;
        let last = reqs[2]["body"]["messages"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(
            last["content"],
            "The user denied the change to calc.py: use operator.add"
        );
    });
}

#[test]
fn fs_write_deny_refuses_without_a_proposal() {
    rt().block_on(async {
        let p = project("agent_edit", json!({"capabilities": {"fs.write": "deny"}})).await;
        let events = turn(&p, params(&p, "fix add"), Review::AllowOnce).await;
        assert!(!events.iter().any(|e| matches!(e, UiEvent::Patch(_))));
        let t = tools(&events);
        assert_eq!(t[1].1, ToolStatus::Denied);
        assert!(t[1].2.contains("fs.write = \"deny\""), "{t:?}");
    });
}

#[test]
fn cancelling_a_turn_withdraws_its_proposal() {
    rt().block_on(async {
        let p = project("agent_edit", json!({})).await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(chat::turn(p.app.clone(), params(&p, "fix add"), tx));
        let patch = loop {
            match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
                Ok(Some(UiEvent::Patch(pr))) => break pr.patch,
                Ok(Some(_)) => continue,
                other => panic!("no proposal: {}", other.is_ok()),
            }
        };
        assert!(p.app.patches.buffer_of(patch).is_some(), "pending");
        task.abort();
        let _ = task.await;
        assert!(
            p.app.patches.buffer_of(patch).is_none(),
            "withdrawn: a late apply is refused, nothing half-applied"
        );
        assert!(
            p.app
                .patches
                .resolve(patch, Review::AllowOnce, &[0])
                .is_err()
        );
        // the saved conversation answers the call that never finished, so it can go on
        let root = params(&p, "").root;
        let sid = p.app.chats.list(&root)[0].id.clone();
        let s = p.app.chats.load(&root, &sid).unwrap();
        let last = s.messages.last().unwrap();
        assert_eq!(last.role, "tool");
        assert!(
            last.is_error && last.content.starts_with("not run"),
            "{last:?}"
        );
    });
}

/// The ids of the tool calls in the assistant messages of `req`'s body, and the ids the tool
/// results answer.
fn call_ids(req: &Value) -> (Vec<String>, Vec<String>) {
    let msgs = req["body"]["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let calls = msgs
        .iter()
        .flat_map(|m| m["tool_calls"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["id"].as_str().map(String::from))
        .collect();
    let answered = msgs
        .iter()
        .filter_map(|m| m["tool_call_id"].as_str().map(String::from))
        .collect();
    (calls, answered)
}

#[test]
fn a_turn_stops_at_its_token_and_step_limits_and_the_next_one_is_valid() {
    rt().block_on(async {
        // the scripted model calls a tool at every step; each step reports 50 + 10 tokens
        for (limits, steps, why) in [
            (
                json!({"max_turn_tokens": 100}),
                2,
                "chat.max_turn_tokens = 100",
            ),
            (json!({"max_steps": 3}), 3, "chat.max_steps"),
        ] {
            let p = project("agent_loop", json!({ "chat": limits })).await;
            let events = turn(&p, params(&p, "look around"), Review::AllowOnce).await;
            assert_eq!(requests(&p.tag).await.len(), steps, "{why}");
            let notice = events.iter().find_map(|e| match e {
                UiEvent::Notice { message, .. } if message.contains("stopped after") => {
                    Some(message.clone())
                }
                _ => None,
            });
            assert!(
                notice.as_deref().is_some_and(|m| m.contains(why)),
                "{notice:?}"
            );
            let t = tools(&events);
            assert_eq!(t.len(), steps, "{t:?}");
            assert_eq!(t.last().unwrap().1, ToolStatus::Error);
            assert!(t.last().unwrap().2.starts_with("not run"), "{t:?}");
            let (session, done_steps) = events
                .iter()
                .find_map(|e| match e {
                    UiEvent::ChatDone { session, steps, .. } => Some((session.clone(), *steps)),
                    _ => None,
                })
                .expect("the turn ends normally");
            assert_eq!(done_steps, steps as u64);
            // "go on": the next request answers every call of the conversation
            let mut prm = params(&p, "go on");
            prm.session = Some(session);
            turn(&p, prm, Review::AllowOnce).await;
            let reqs = requests(&p.tag).await;
            let (calls, answered) = call_ids(&reqs[steps]);
            assert_eq!(calls.len(), steps);
            assert_eq!(calls, answered, "every call has its result");
        }
    });
}

#[test]
fn compact_replaces_older_turns_with_a_summary() {
    rt().block_on(async {
        let p = project("agent_edit", json!({})).await;
        // a plain model: every answer is the fault server's reply
        let config = Config::from_value(json!({
            "providers": {"m": {"kind": "llamacpp", "url": format!("{}/t/{}/ok", fault_url(), p.tag)}},
            "router": {"ledger": p.dir.path().join("u.sqlite3").display().to_string()},
        }))
        .unwrap();
        p.app.configure(config).await;
        let mut session = None;
        let long = format!("one {}", "context ".repeat(400));
        for msg in [long.as_str(), "two", "three"] {
            let mut prm = params(&p, msg);
            prm.agent = false;
            prm.session = session.clone();
            let events = turn(&p, prm, Review::AllowOnce).await;
            session = events.iter().find_map(|e| match e {
                UiEvent::ChatDone { session, .. } => Some(session.clone()),
                _ => None,
            });
        }
        let session = session.unwrap();
        let root = params(&p, "").root;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        chat::compact(p.app.clone(), 9, root.clone(), session.clone(), tx).await;
        let ev = rx.recv().await.unwrap();
        let UiEvent::ChatCompacted { before_tokens, after_tokens, .. } = ev else {
            panic!("not compacted: {ev:?}")
        };
        assert!(after_tokens < before_tokens, "{before_tokens} → {after_tokens}");
        let s = p.app.chats.load(&root, &session).unwrap();
        let firsts: Vec<&str> = s.messages.iter().map(|m| m.content.as_str()).collect();
        assert!(firsts[0].starts_with("Summary of the earlier conversation:"), "{firsts:?}");
        assert_eq!(firsts[2], "two", "the last two turns stay as they were");
        assert_eq!(s.messages.len(), 2 + 4);
        // compacting again gains nothing: refused, the session stays as it is
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        chat::compact(p.app.clone(), 10, root.clone(), session.clone(), tx).await;
        assert!(matches!(rx.recv().await, Some(UiEvent::Error { .. })));
        assert_eq!(p.app.chats.load(&root, &session).unwrap().messages.len(), 6);
    });
}

/// Two editors of one project saving the same session at once (two stores on one directory, as
/// two processes would have): a reader never sees a half-written file.
#[test]
fn concurrent_saves_never_leave_a_corrupt_session() {
    use zeke::app::chat::store::{Session, Store, Stored};
    use zeke::core::llm::Message;
    let dir = tempfile::tempdir().unwrap();
    let mk = |n: usize| Session {
        id: "20261201-000000-abcdef".into(),
        root: "/p".into(),
        title: format!("writer {n}"),
        created_ms: 1,
        updated_ms: n as i64,
        revision: 0,
        messages: (0..200)
            .map(|i| {
                Stored::from_message(
                    &Message::user(format!("{n} {i} {}", "x".repeat(500))),
                    None,
                    None,
                )
            })
            .collect(),
    };
    let writers: Vec<_> = (0..2)
        .map(|n| {
            let store = Store::new(dir.path().to_path_buf());
            let s = mk(n);
            std::thread::spawn(move || {
                for _ in 0..60 {
                    store.save(&s).unwrap();
                }
            })
        })
        .collect();
    let reader = Store::new(dir.path().to_path_buf());
    let mut seen = 0;
    while writers.iter().any(|w| !w.is_finished()) {
        if let Ok(s) = reader.load("/p", "20261201-000000-abcdef") {
            assert_eq!(s.messages.len(), 200, "a whole file, never a torn one");
            seen += 1;
        }
    }
    for w in writers {
        w.join().unwrap();
    }
    assert!(seen > 0);
    assert_eq!(reader.list("/p").len(), 1, "no temporary file is listed");
}

#[test]
fn run_command_from_the_agent_is_gated_by_cmd_exec() {
    use zeke::app::gate::Answer;
    rt().block_on(async {
        // default: cmd.exec = deny — refused, nothing runs, nobody is asked
        let p = project("agent_command", json!({})).await;
        let events = turn(&p, params(&p, "run it"), Review::AllowOnce).await;
        assert!(!events.iter().any(|e| matches!(e, UiEvent::Ask { .. })));
        assert_eq!(tools(&events)[0].1, ToolStatus::Denied);
        assert!(!p.dir.path().join("ran.marker").exists());
        // prompt: the editor is asked with the exact command; a denial runs nothing
        let p = project(
            "agent_command",
            json!({"capabilities": {"cmd.exec": "prompt"}}),
        )
        .await;
        let events = turn_asked(
            &p,
            params(&p, "run it"),
            Review::AllowOnce,
            Answer::Deny("no".into()),
        )
        .await;
        let what = events.iter().find_map(|e| match e {
            UiEvent::Ask {
                what, capability, ..
            } => Some((what.clone(), capability.clone())),
            _ => None,
        });
        let (what, cap) = what.expect("asked");
        assert_eq!(cap, "cmd.exec");
        assert!(what.contains("touch ran.marker && echo hello"), "{what}");
        assert!(!p.dir.path().join("ran.marker").exists());
        // …and Allow once runs it in the project root; its output goes back to the model
        let p = project(
            "agent_command",
            json!({"capabilities": {"cmd.exec": "prompt"}}),
        )
        .await;
        let events = turn_asked(
            &p,
            params(&p, "run it"),
            Review::AllowOnce,
            Answer::AllowOnce,
        )
        .await;
        assert_eq!(tools(&events)[0].1, ToolStatus::Ok, "{:?}", tools(&events));
        assert!(p.dir.path().join("ran.marker").exists());
        let reqs = requests(&p.tag).await;
        let last = reqs[1]["body"]["messages"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert!(
            last["content"].as_str().unwrap().contains("hello"),
            "{last}"
        );
    });
}

#[test]
fn an_external_mcp_servers_tools_are_offered_and_gated_by_mcp_call() {
    use zeke::app::gate::Answer;
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let servers = json!({"mcp_servers": {"self": {
            "command": crate::common::zeke_bin(),
            "args": ["mcp", "--root", root.display().to_string()],
        }}});
        let p = project("agent_mcp", servers.clone()).await;
        std::fs::write(root.join("calc.py"), "print('external')\n").unwrap();
        // mcp.call defaults to prompt: the editor is asked; Allow once → the server's answer
        let events = turn_asked(
            &p,
            params(&p, "read it"),
            Review::AllowOnce,
            Answer::AllowOnce,
        )
        .await;
        let t = tools(&events);
        assert_eq!(
            (t[0].0.as_str(), t[0].1),
            ("self__read_text_file", ToolStatus::Ok),
            "{t:?}"
        );
        assert!(t[0].2.contains("print('external')"), "{t:?}");
        let asked = events.iter().find_map(|e| match e {
            UiEvent::Ask {
                capability, what, ..
            } => Some((capability.clone(), what.clone())),
            _ => None,
        });
        let (cap, what) = asked.expect("asked through the editor");
        assert_eq!(cap, "mcp.call");
        assert!(what.contains("self.read_text_file"), "{what}");
        let reqs = requests(&p.tag).await;
        let offered: Vec<&str> = reqs[0]["body"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["function"]["name"].as_str().unwrap())
            .collect();
        assert!(offered.contains(&"self__read_text_file"), "{offered:?}");
        // denied by the policy: refused, nothing asked
        let mut cfg = servers;
        cfg["capabilities"] = json!({"mcp.call": "deny"});
        let p = project("agent_mcp", cfg).await;
        let events = turn(&p, params(&p, "read it"), Review::AllowOnce).await;
        assert!(!events.iter().any(|e| matches!(e, UiEvent::Ask { .. })));
        assert_eq!(tools(&events)[0].1, ToolStatus::Denied);
    });
}

/// The names of the tools a request offered the model.
fn offered(req: &Value) -> Vec<String> {
    req["body"]["tools"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|t| t["function"]["name"].as_str().map(String::from))
        .collect()
}

#[test]
fn lsp_tools_are_offered_only_where_a_language_server_answers() {
    rt().block_on(async {
        // a Cargo project: the lsp_* tools iff rust-analyzer is found (make deps installs it)
        let ra = zeke::sys::resolve("rust-analyzer").is_ok_and(|p| p.is_file());
        for (enabled, want) in [(true, ra), (false, false)] {
            let p = project(
                "agent_edit",
                json!({"lsp": {"servers": {"rust": {"enabled": enabled}}}}),
            )
            .await;
            std::fs::write(p.dir.path().join("Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
            let mut prm = params(&p, "hello");
            prm.agent = true;
            turn(&p, prm, Review::Deny(Some("no".into()))).await;
            let names = offered(&requests(&p.tag).await[0]);
            assert!(names.contains(&"read_text_file".to_string()), "{names:?}");
            assert_eq!(
                names.iter().any(|n| n == "lsp_definition"),
                want,
                "rust enabled = {enabled}, rust-analyzer found = {ra}: {names:?}"
            );
        }
    });
}
