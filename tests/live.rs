//! Live tests against a real llama-server with SmolLM2-135M-Instruct (`ZEKE_TEST_LLAMA_URL`),
//! through its OpenAI-compatible endpoints. They assert behaviour (text streamed, usage reported,
//! FIM answered, errors classified), never the model's wording.

use futures_util::StreamExt;
use serde_json::json;
use zeke::config::Config;
use zeke::core::llm::{ChatRequest, ErrorKind, Event, FimRequest, Message};
use zeke::providers;

use crate::common::{llama_url, rt};

fn llama(url: &str) -> std::sync::Arc<dyn providers::Provider> {
    let cfg =
        Config::from_value(json!({"providers": {"l": {"kind": "llamacpp", "url": url}}})).unwrap();
    providers::build(&cfg.providers["l"], None, &providers::http::client())
}

#[test]
fn live_chat_streams_text_and_usage() {
    let Some(url) = llama_url("live_chat_streams_text_and_usage") else {
        return;
    };
    rt().block_on(async {
        let p = llama(&url);
        let req = ChatRequest {
            messages: vec![Message::user("Name a colour.")],
            max_tokens: 8,
            temperature: 0.0,
            stop: vec![],
        };
        let mut s = p.chat(req);
        let (mut pieces, mut usage) = (0, None);
        while let Some(ev) = s.next().await {
            match ev.expect("no error from a healthy server") {
                Event::Text(t) => pieces += usize::from(!t.is_empty()),
                Event::Usage(u) => usage = Some(u),
                Event::Finish(_) => {}
            }
        }
        assert!(pieces >= 2, "streamed in several pieces");
        let u = usage.expect("usage reported");
        assert!(u.output_tokens >= 1 && u.output_tokens <= 8, "{u:?}");
    });
}

#[test]
fn live_fim_answers_through_the_fallback() {
    let Some(url) = llama_url("live_fim_answers_through_the_fallback") else {
        return;
    };
    rt().block_on(async {
        let p = llama(&url);
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

#[test]
fn live_context_overflow_is_context_too_large() {
    let Some(url) = llama_url("live_context_overflow_is_context_too_large") else {
        return;
    };
    rt().block_on(async {
        let p = llama(&url);
        let req = ChatRequest {
            messages: vec![Message::user("word ".repeat(12_000))],
            max_tokens: 4,
            temperature: 0.0,
            stop: vec![],
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

#[test]
fn live_probe_names_the_model() {
    let Some(url) = llama_url("live_probe_names_the_model") else {
        return;
    };
    rt().block_on(async {
        let p = llama(&url);
        let (ok, detail) = zeke::app::providers::probe(p.as_ref()).await;
        assert!(ok, "{detail}");
        assert!(p.info().model_label().unwrap().ends_with(".gguf"));
    });
}
