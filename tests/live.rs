//! Live tests against a real llama-server with SmolLM2-135M-Instruct (`ZEKE_TEST_LLAMA_URL`),
//! through its OpenAI-compatible endpoints. They assert behaviour (text streamed, usage reported,
//! FIM answered, errors classified), never the model's wording.
//!
//! A test binary of its own with a libtest-compatible harness (libtest-mimic), because whether
//! these can run is known only at run time: without a server each says `ignored (skipped: …)` and
//! counts as ignored in the closing line, never as passed. With `ZEKE_TEST_NO_SKIP=1` (set by
//! `make test`) a missing server is a failure instead.

#[allow(dead_code)]
mod common;

use futures_util::StreamExt;
use libtest_mimic::{Arguments, Completion, Trial};
use serde_json::json;
use zeke::config::Config;
use zeke::core::llm::{
    ChatRequest, ErrorKind, Event, FimRequest, FinishReason, Message, ToolCall, ToolSpec,
};
use zeke::providers;

use crate::common::rt;

/// Why a live test is skipped.
pub const LLAMA_SKIP: &str = "skipped: ZEKE_TEST_LLAMA_URL is not set (run via `make test`)";

/// The live llama-server URL (`ZEKE_TEST_LLAMA_URL`); `Ok(None)` when it is not set, so the test
/// reports itself skipped — or `Err` when `ZEKE_TEST_NO_SKIP=1` says nothing may be skipped.
pub fn needs_llama() -> Result<Option<String>, libtest_mimic::Failed> {
    match std::env::var("ZEKE_TEST_LLAMA_URL") {
        Ok(u) if !u.is_empty() => Ok(Some(u)),
        _ if no_skip() => {
            Err(format!("{LLAMA_SKIP}, and ZEKE_TEST_NO_SKIP=1 forbids skipping").into())
        }
        _ => Ok(None),
    }
}

/// `ZEKE_TEST_NO_SKIP=1` (set by `make test`): a test that would be skipped fails instead.
pub fn no_skip() -> bool {
    std::env::var("ZEKE_TEST_NO_SKIP").is_ok_and(|v| v == "1")
}

/// A live test: gets the server's base URL.
type LiveTest = fn(&str);

fn main() {
    let args = Arguments::from_args();
    let tests: &[(&str, LiveTest)] = &[
        (
            "live_chat_streams_text_and_usage",
            live_chat_streams_text_and_usage,
        ),
        (
            "live_fim_answers_through_the_fallback",
            live_fim_answers_through_the_fallback,
        ),
        (
            "live_context_overflow_is_context_too_large",
            live_context_overflow_is_context_too_large,
        ),
        ("live_probe_names_the_model", live_probe_names_the_model),
        (
            "live_anthropic_messages_endpoint_streams_text_and_usage",
            live_anthropic_messages_endpoint_streams_text_and_usage,
        ),
        (
            "live_tool_conversations_are_accepted_by_both_endpoints",
            live_tool_conversations_are_accepted_by_both_endpoints,
        ),
        (
            "live_llama_server_continues_an_answer_cut_off_elsewhere",
            live_llama_server_continues_an_answer_cut_off_elsewhere,
        ),
        (
            "live_chat_two_turns_stream_and_continue_one_session",
            live_chat_two_turns_stream_and_continue_one_session,
        ),
        (
            "live_zeke_ask_json_falls_back_to_llama_server",
            live_zeke_ask_json_falls_back_to_llama_server,
        ),
    ];
    let trials = tests
        .iter()
        .map(|&(name, f)| {
            Trial::ignorable_test(name, move || {
                needs_llama().map(|url| match url {
                    Some(url) => {
                        f(&url);
                        Completion::Completed
                    }
                    None => Completion::ignored_with(LLAMA_SKIP),
                })
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

fn llama(url: &str) -> std::sync::Arc<dyn providers::Provider> {
    let cfg =
        Config::from_value(json!({"providers": {"l": {"kind": "llamacpp", "url": url}}})).unwrap();
    providers::build(&cfg.providers["l"], None, &providers::http::client())
}

fn live_chat_streams_text_and_usage(url: &str) {
    rt().block_on(async {
        let p = llama(url);
        let req = ChatRequest {
            messages: vec![Message::user("Name a colour.")],
            max_tokens: 8,
            temperature: 0.0,
            stop: vec![],
            tools: Default::default(),
        };
        let mut s = p.chat(req);
        let (mut pieces, mut usage) = (0, None);
        while let Some(ev) = s.next().await {
            match ev.expect("no error from a healthy server") {
                Event::Text(t) => pieces += usize::from(!t.is_empty()),
                Event::Usage(u) => usage = Some(u),
                Event::Finish(_) | Event::ToolCall(_) => {}
            }
        }
        assert!(pieces >= 2, "streamed in several pieces");
        let u = usage.expect("usage reported");
        assert!(u.output_tokens >= 1 && u.output_tokens <= 8, "{u:?}");
    });
}

fn live_fim_answers_through_the_fallback(url: &str) {
    rt().block_on(async {
        let p = llama(url);
        let req = FimRequest {
            prefix: "fn add(a: i32, b: i32) -> i32 {\n    ".into(),
            suffix: "\n}".into(),
            language: "rust".into(),
            path: "a.rs".into(),
            max_tokens: 12,
            stop: vec![],
        };
        let mut s = p.fim(req);
        let mut text = String::new();
        while let Some(ev) = s.next().await {
            if let Event::Text(t) = ev.expect("FIM works without FIM tokens") {
                text.push_str(&t);
            }
        }
        assert!(!text.trim().is_empty());
    });
}

fn live_context_overflow_is_context_too_large(url: &str) {
    rt().block_on(async {
        let p = llama(url);
        let req = ChatRequest {
            messages: vec![Message::user("word ".repeat(12_000))],
            max_tokens: 4,
            temperature: 0.0,
            stop: vec![],
            tools: Default::default(),
        };
        let first = p.chat(req).next().await.unwrap();
        let err = first.expect_err("too long a prompt is refused");
        assert_eq!(
            (err.kind, err.status),
            (ErrorKind::ContextTooLarge, Some(400)),
            "{err}"
        );
    });
}

fn live_probe_names_the_model(url: &str) {
    rt().block_on(async {
        let p = llama(url);
        let (ok, detail) = zeke::app::providers::probe(p.as_ref()).await;
        assert!(ok, "{detail}");
        assert!(p.info().model_label().unwrap().ends_with(".gguf"));
    });
}

/// An adapter of `kind` pointed at llama-server (which speaks OpenAI chat and Anthropic Messages).
fn at_llama(kind: &str, url: &str) -> std::sync::Arc<dyn providers::Provider> {
    let cfg = Config::from_value(
        json!({"providers": {"l": {"kind": kind, "url": url, "api_key_env": "ZEKE_LIVE_UNUSED_KEY"}}}),
    )
    .unwrap();
    // llama-server runs without --api-key: any key is accepted
    providers::build(
        &cfg.providers["l"],
        Some(providers::Secret::new("sk-live-unused".into())),
        &providers::http::client(),
    )
}

async fn drain(mut s: providers::EventStream) -> (String, Vec<Event>) {
    let (mut text, mut other) = (String::new(), Vec::new());
    while let Some(ev) = s.next().await {
        match ev.expect("no error from a healthy server") {
            Event::Text(t) => text.push_str(&t),
            e => other.push(e),
        }
    }
    (text, other)
}

fn live_anthropic_messages_endpoint_streams_text_and_usage(url: &str) {
    rt().block_on(async {
        let p = at_llama("anthropic", url);
        let req = ChatRequest::new(
            vec![
                Message::system("Answer briefly."),
                Message::user("Name a colour."),
            ],
            8,
            0.0,
        );
        let (text, other) = drain(p.chat(req)).await;
        assert!(!text.trim().is_empty(), "text streamed from /v1/messages");
        let usage = other.iter().find_map(|e| match e {
            Event::Usage(u) => Some(*u),
            _ => None,
        });
        let u = usage.expect("usage from message_start/message_delta");
        assert!(
            u.input_tokens > 0 && (1..=8).contains(&u.output_tokens),
            "{u:?}"
        );
        assert!(
            other.contains(&Event::Finish(FinishReason::Length))
                || other.contains(&Event::Finish(FinishReason::Stop))
        );
    });
}

/// SmolLM2-135M never emits a tool call (even with tool_choice required), so what can be checked
/// live is the other half: tool definitions, an assistant tool call and its result in the
/// conversation are accepted by both endpoints, and the model answers after them.
fn live_tool_conversations_are_accepted_by_both_endpoints(url: &str) {
    rt().block_on(async {
        let call = ToolCall {
            id: "call_1".into(),
            name: "read_text_file".into(),
            arguments: r#"{"path":"src/a.py"}"#.into(),
        };
        let mut req = ChatRequest::new(
            vec![
                Message::system("You are a coding assistant."),
                Message::user("What is in src/a.py?"),
                Message::assistant_calls("", vec![call]),
                Message::tool_result("call_1", "def add(a, b):\n    return a + b\n", false),
            ],
            12,
            0.0,
        );
        req.tools = vec![ToolSpec {
            name: "read_text_file".into(),
            description: "Read a text file".into(),
            parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}),
        }]
        .into();
        for kind in ["llamacpp", "anthropic"] {
            let (text, other) = drain(at_llama(kind, url).chat(req.clone())).await;
            assert!(
                !text.trim().is_empty() || other.iter().any(|e| matches!(e, Event::ToolCall(_))),
                "{kind}: an answer after the tool result"
            );
        }
    });
}

/// `zeke ask --json` end to end: a provider that is down, then llama-server; one JSON object per
/// line, the final one naming who answered, what was tried, the usage and the cost (0: local).
fn live_zeke_ask_json_falls_back_to_llama_server(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[providers.down]\nkind = \"llamacpp\"\nurl = \"http://127.0.0.1:{closed}\"\n\
             [providers.llama]\nkind = \"llamacpp\"\nurl = \"{url}\"\n\
             [routes]\nask = [\"down\", \"llama\"]\n"
        ),
    )
    .unwrap();
    let out = std::process::Command::new(common::zeke_bin())
        .args(["ask", "--json", "--max-tokens", "8", "Name a colour."])
        .env("ZEKE_CONFIG", &cfg)
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    assert!(lines.iter().any(|l| l["text"].is_string()), "text deltas");
    let last = lines.last().unwrap();
    assert_eq!(last["done"], true);
    assert_eq!(last["provider"], "llama");
    assert!(last["model"].as_str().unwrap().ends_with(".gguf"));
    assert_eq!(last["attempts"][0]["provider"], "down");
    assert_eq!(last["attempts"][0]["error"], "unavailable");
    assert_eq!(last["attempts"][1]["error"], serde_json::Value::Null);
    assert!(last["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert!(last["usage"]["output_tokens"].as_u64().unwrap() >= 1);
    assert!(last["usage"]["cached_input_tokens"].is_u64());
    assert_eq!(last["cost_usd"], 0.0);
    // and the ledger has the row
    let usage = std::process::Command::new(common::zeke_bin())
        .args(["usage", "--json"])
        .env("ZEKE_CONFIG", &cfg)
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&usage.stdout).unwrap();
    assert_eq!(v["last"][0]["provider"], "llama");
    assert_eq!(v["last"][0]["fallbacks"], 1);
}

/// A stream cut mid-answer (the fault server, after 3 chunks) falls back to llama-server, which
/// is asked to continue the shown text (prefill): the user sees one answer that goes on, no
/// restart, nothing twice.
fn live_llama_server_continues_an_answer_cut_off_elsewhere(url: &str) {
    use zeke::router::{Pool, RouteRequest, Routed, Surface};
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::from_value(json!({
            "providers": {
                "cut": {"kind": "llamacpp", "url": format!("{}/cutafter/3", common::fault_url())},
                "llama": {"kind": "llamacpp", "url": url},
            },
            "routes": {"chat": ["cut", "llama"]},
            "router": {"ledger": dir.path().join("u.sqlite3").display().to_string()},
        }))
        .unwrap();
        let app = zeke::app::App::new(config.clone());
        let set = app.configure(config).await;
        let pool: std::sync::Arc<dyn Pool> = set;
        let req = ChatRequest::new(vec![Message::user("Write a Python function add.")], 12, 0.0);
        let mut s = app.router.chat(
            pool,
            RouteRequest::new(zeke::core::llm::Intent::Chat, Surface::Cli),
            req,
        );
        let (mut text, mut before, mut restarts, mut done) = (String::new(), None, 0, None);
        while let Some(item) = s.next().await {
            match item.expect("llama-server answers") {
                Routed::Text(t) => text.push_str(&t),
                Routed::Fallback { .. } => before = Some(text.clone()),
                Routed::Restart => restarts += 1,
                Routed::Done(d) => done = Some(d),
                _ => {}
            }
        }
        let before = before.expect("the cut stream fell back");
        assert_eq!(before, "def add(a,");
        assert_eq!(restarts, 0);
        assert!(
            text.starts_with(&before) && text.len() > before.len(),
            "{text:?}"
        );
        assert!(
            !text[before.len()..].starts_with("def add(a,"),
            "not shown twice: {text:?}"
        );
        assert_eq!(done.unwrap().provider.as_deref(), Some("llama"));
    });
}

/// The chat panel's backend against llama-server: two turns of one conversation (the agent's
/// tools offered, as the panel does), both streamed, the second carrying the first.
fn live_chat_two_turns_stream_and_continue_one_session(url: &str) {
    use zeke::app::UiEvent;
    use zeke::app::chat::{self, ChatParams};
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.py"),
            "def add(a, b):\n    return a + b\n",
        )
        .unwrap();
        let config = Config::from_value(json!({
            "providers": {"llama": {"kind": "llamacpp", "url": url}},
            "router": {"ledger": dir.path().join("u.sqlite3").display().to_string()},
            "chat": {"max_tokens": 24, "max_steps": 2},
        }))
        .unwrap();
        let app = zeke::app::App::new(config.clone());
        app.configure(config).await;
        let root = std::fs::canonicalize(dir.path())
            .unwrap()
            .display()
            .to_string();
        let mut session = None;
        for msg in ["What is Python?", "And in one word?"] {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let p = ChatParams {
                id: 1,
                session: session.clone(),
                message: msg.into(),
                context: vec![],
                root: root.clone(),
                agent: true,
            };
            let task = tokio::spawn(chat::turn(app.clone(), p, tx));
            let (mut deltas, mut done) = (0, None);
            while let Some(ev) = rx.recv().await {
                match ev {
                    UiEvent::ChatDelta { delta, .. } if !delta.is_empty() => deltas += 1,
                    UiEvent::ChatDone {
                        session, provider, ..
                    } => done = Some((session, provider)),
                    UiEvent::Error { error, .. } => panic!("chat failed: {error}"),
                    _ => {}
                }
            }
            task.await.unwrap();
            let (s, provider) = done.expect("the turn finished");
            assert!(deltas >= 1, "streamed");
            assert_eq!(provider, "llama");
            if let Some(prev) = &session {
                assert_eq!(&s, prev, "the same conversation");
            }
            session = Some(s);
        }
        let stored = app.chats.load(&root, session.as_deref().unwrap()).unwrap();
        assert!(stored.messages.iter().filter(|m| m.role == "user").count() == 2);
    });
}
