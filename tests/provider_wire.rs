//! The Anthropic and Gemini adapters replay recorded wire transcripts (tests/fixtures/wire, in
//! the vendors' documented streaming formats) over HTTP from the fault server: text in order, tool
//! calls assembled whole, usage normalized, finish mapped, and an error event after HTTP 200 ends
//! the stream with one error of the right kind after the text that came before it.

use futures_util::StreamExt;
use serde_json::json;
use zeke::config::Config;
use zeke::core::llm::{
    ChatRequest, ErrorKind, Event, FinishReason, Message, ProviderError, ToolCall, Usage,
};
use zeke::providers::{self, Provider, Secret};

use crate::common::{fault_url, rt};

fn provider(kind: &str, fixture: &str) -> std::sync::Arc<dyn Provider> {
    let url = format!("{}/replay/{fixture}", fault_url());
    let cfg = Config::from_value(json!({"providers": {"p": {
        "kind": kind, "url": url, "model": "m", "api_key_env": "ZEKE_TEST_FAKE_KEY"}}}))
    .unwrap();
    providers::build(
        &cfg.providers["p"],
        Some(Secret::new("sk-test".into())),
        &providers::http::client(),
    )
}

fn chat() -> ChatRequest {
    ChatRequest::new(
        vec![
            Message::system("Be brief."),
            Message::user("What does add do?"),
        ],
        64,
        0.0,
    )
}

/// Text pieces, the other events, and the error that ended the stream (at most one).
async fn collect(
    mut s: providers::EventStream,
) -> (Vec<String>, Vec<Event>, Option<ProviderError>) {
    let (mut text, mut other, mut err) = (Vec::new(), Vec::new(), None);
    while let Some(ev) = s.next().await {
        match ev {
            Ok(Event::Text(t)) => text.push(t),
            Ok(e) => other.push(e),
            Err(e) => {
                assert!(err.is_none(), "a stream ends after its first error");
                err = Some(e)
            }
        }
    }
    (text, other, err)
}

fn tool_call(events: &[Event]) -> &ToolCall {
    let calls: Vec<&ToolCall> = events
        .iter()
        .filter_map(|e| match e {
            Event::ToolCall(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(calls.len(), 1, "{events:?}");
    calls[0]
}

fn args(c: &ToolCall) -> serde_json::Value {
    serde_json::from_str(&c.arguments).unwrap_or_else(|e| panic!("{e}: {}", c.arguments))
}

#[test]
fn anthropic_tool_use_transcript() {
    rt().block_on(async {
        let p = provider("anthropic", "anthropic_tool_use.sse");
        let (text, other, err) = collect(p.chat(chat())).await;
        assert_eq!(err, None);
        assert_eq!(
            text.concat(),
            "I'll read the file to see how `add` is defined."
        );
        let call = tool_call(&other);
        assert_eq!(
            (call.id.as_str(), call.name.as_str()),
            ("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "read_file")
        );
        assert_eq!(
            args(call),
            json!({"path": "src/math.rs", "start_line": 1, "end_line": 40})
        );
        assert_eq!(
            other[1..],
            [
                Event::Usage(Usage {
                    input_tokens: 14 + 2310,
                    cached_input_tokens: 2310,
                    cache_write_tokens: 0,
                    output_tokens: 87,
                }),
                Event::Finish(FinishReason::ToolCalls),
            ]
        );
    });
}

#[test]
fn anthropic_text_transcript() {
    rt().block_on(async {
        let p = provider("anthropic", "anthropic_text.sse");
        let (text, other, err) = collect(p.chat(chat())).await;
        assert_eq!(err, None);
        assert_eq!(
            text,
            ["`add` returns", " the sum of its", " two arguments", "."]
        );
        assert_eq!(
            other,
            [
                Event::Usage(Usage::new(25, 12)),
                Event::Finish(FinishReason::Stop)
            ]
        );
    });
}

#[test]
fn anthropic_error_after_200_ends_the_stream_with_one_error() {
    rt().block_on(async {
        let p = provider("anthropic", "anthropic_error_after_200.sse");
        let (text, other, err) = collect(p.chat(chat())).await;
        assert_eq!(text.concat(), "Hello there, let me");
        assert_eq!(other, [], "no usage or finish after an error");
        let err = err.expect("the error event becomes an error");
        assert_eq!(err.kind, ErrorKind::Overloaded, "{err}");
        assert!(err.message.contains("Overloaded"), "{}", err.message);
    });
}

#[test]
fn gemini_function_call_transcript() {
    rt().block_on(async {
        let p = provider("gemini", "gemini_function_call.sse");
        let (text, other, err) = collect(p.chat(chat())).await;
        assert_eq!(err, None);
        assert_eq!(text, ["I'll look up the weather in Paris."]);
        let call = tool_call(&other);
        assert_eq!(call.name, "get_weather");
        assert!(call.id.starts_with("call_"), "{}", call.id);
        assert_eq!(args(call), json!({"city": "Paris", "unit": "celsius"}));
        assert_eq!(
            other[1..],
            [
                Event::Usage(Usage::new(96, 22 + 48)),
                Event::Finish(FinishReason::ToolCalls),
            ]
        );
    });
}

#[test]
fn gemini_text_transcript() {
    rt().block_on(async {
        let p = provider("gemini", "gemini_text.sse");
        let (text, other, err) = collect(p.chat(chat())).await;
        assert_eq!(err, None);
        assert_eq!(
            text,
            ["The `add`", " function returns the sum", " of `a` and `b`."]
        );
        assert_eq!(
            other,
            [
                Event::Usage(Usage {
                    input_tokens: 1540,
                    cached_input_tokens: 1024,
                    cache_write_tokens: 0,
                    output_tokens: 14,
                }),
                Event::Finish(FinishReason::Stop),
            ]
        );
    });
}
