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
use zeke::core::llm::{ChatRequest, ErrorKind, Event, FimRequest, Message};
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
            tools: Vec::new(),
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
            tools: Vec::new(),
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
