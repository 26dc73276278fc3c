//! Tests of the pure Anthropic mappers: request bodies (alternation, caching) and the decoder.
use super::*;
use crate::core::llm::ToolSpec;
use expect_test::expect;

fn call(id: &str, name: &str, args: &str) -> ToolCall {
    ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: args.into(),
    }
}

fn conversation(system: &str) -> ChatRequest {
    ChatRequest {
        messages: vec![
            Message::system(system),
            Message::user("Read a.rs"),
            Message::assistant_calls(
                "Reading.",
                vec![
                    call("toolu_1", "read_file", r#"{"path":"a.rs"}"#),
                    call("call.2", "list", ""),
                    call("toolu_3", "grep", "not json"),
                ],
            ),
            Message::tool_result("toolu_1", "fn main() {}", false),
            Message::tool_result("call.2", "no such dir", true),
            Message::tool_result("toolu_3", "", false),
            Message::user("Now explain it"),
        ],
        max_tokens: 256,
        temperature: 0.2,
        stop: vec!["\n\nHuman:".into()],
        tools: vec![ToolSpec {
            name: "read_file".into(),
            description: "Reads a file".into(),
            parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
        }]
        .into(),
    }
}

/// One line per top-level key and per message, for readable snapshots.
fn render(body: &Value) -> String {
    let mut s = String::new();
    for (k, v) in body.as_object().unwrap() {
        let lines = v
            .as_array()
            .filter(|_| k == "messages")
            .map(|items| items.iter().map(|m| format!("\n  {m}")).collect::<String>());
        s += &format!("{k}:{}\n", lines.unwrap_or_else(|| format!(" {v}")));
    }
    s
}

fn markers(body: &Value) -> usize {
    body.to_string().matches("cache_control").count()
}

#[test]
fn body_alternates_and_merges_tool_results() {
    let b = chat_body(&conversation("You are terse."), "claude-x");
    expect![[r#"
        max_tokens: 256
        messages:
          {"content":[{"text":"Read a.rs","type":"text"}],"role":"user"}
          {"content":[{"text":"Reading.","type":"text"},{"id":"toolu_1","input":{"path":"a.rs"},"name":"read_file","type":"tool_use"},{"id":"call_2","input":{},"name":"list","type":"tool_use"},{"id":"toolu_3","input":{"_raw":"not json"},"name":"grep","type":"tool_use"}],"role":"assistant"}
          {"content":[{"content":"fn main() {}","tool_use_id":"toolu_1","type":"tool_result"},{"content":"no such dir","is_error":true,"tool_use_id":"call_2","type":"tool_result"},{"content":"","tool_use_id":"toolu_3","type":"tool_result"},{"text":"Now explain it","type":"text"}],"role":"user"}
        model: "claude-x"
        stop_sequences: ["\n\nHuman:"]
        stream: true
        system: [{"text":"You are terse.","type":"text"}]
        temperature: 0.20000000298023224
        tools: [{"description":"Reads a file","input_schema":{"properties":{"path":{"type":"string"}},"type":"object"},"name":"read_file"}]
    "#]]
    .assert_eq(&render(&b));
    assert_eq!(markers(&b), 0, "a short prompt is not worth caching");
}

#[test]
fn cache_control_on_system_and_prefix_above_the_threshold() {
    let long = "x".repeat(MIN_CACHE_CHARS);
    let b = chat_body(&conversation(&long), "m");
    assert_eq!(b["system"][0]["cache_control"]["type"], "ephemeral");
    // the last block before the final user turn: the assistant's last tool_use
    let assistant = &b["messages"][1]["content"];
    assert_eq!(assistant[3]["cache_control"]["type"], "ephemeral");
    assert_eq!(markers(&b), 2);
    assert!(markers(&b) <= MAX_CACHE_MARKERS);

    // a single user turn has no earlier prefix: only the system block is marked
    let mut one = ChatRequest::new(vec![Message::system(&long), Message::user("hi")], 8, 0.0);
    assert_eq!(markers(&chat_body(&one, "m")), 1);
    one.messages[0] = Message::system("short");
    assert_eq!(markers(&chat_body(&one, "m")), 0);
    assert_eq!(Decoder::new().end().unwrap_err().kind, ErrorKind::Malformed);
}

#[test]
fn blank_text_is_never_sent_and_same_roles_merge() {
    let req = ChatRequest::new(
        vec![
            Message::user("a"),
            Message::user("b"),
            Message::assistant_calls("", vec![call("t1", "f", "{}")]),
            Message::assistant(" "),
            Message::user(""),
        ],
        8,
        0.0,
    );
    let b = chat_body(&req, "m");
    expect![[r#"
        [{"content":[{"text":"a","type":"text"},{"text":"b","type":"text"}],"role":"user"},{"content":[{"id":"t1","input":{},"name":"f","type":"tool_use"}],"role":"assistant"}]"#]]
    .assert_eq(&b["messages"].to_string());
    assert!(b.get("system").is_none() && b.get("tools").is_none());
    assert!(b.get("stop_sequences").is_none());
}

#[test]
fn api_base_appends_v1_once() {
    assert_eq!(api_base("http://h:80"), "http://h:80/v1");
    assert_eq!(api_base("http://h:80/v1"), "http://h:80/v1");
}

fn decode(frames: &[&str]) -> (Vec<Event>, Option<ProviderError>) {
    let (mut d, mut out) = (Decoder::new(), Vec::new());
    let err = frames
        .iter()
        .find_map(|f| d.map(f).map(|evs| out.extend(evs)).err());
    (out, err)
}

#[test]
fn decodes_a_whole_tool_use_transcript() {
    let (events, err) = decode(&[
        r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-x","stop_reason":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":100,"cache_read_input_tokens":2000,"output_tokens":1}}}"#,
        r#"{"type":"ping"}"#,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"secret plan"}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQB"}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Let me "}}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"look."}}"#,
        r#"{"type":"content_block_stop","index":1}"#,
        r#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_9","name":"read_file","input":{}}}"#,
        r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}"#,
        r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"pa"}}"#,
        r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"th\": \"a."}}"#,
        r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"rs\"}"}}"#,
        r#"{"type":"content_block_stop","index":2}"#,
        r#"{"type":"some_future_event","x":1}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":30}}"#,
        r#"{"type":"message_delta","delta":{},"usage":{"output_tokens":41}}"#,
        r#"{"type":"message_stop"}"#,
    ]);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        events,
        vec![
            Event::Text("Let me ".into()),
            Event::Text("look.".into()),
            Event::ToolCall(call("toolu_9", "read_file", r#"{"path": "a.rs"}"#)),
            Event::Usage(Usage {
                input_tokens: 2112,
                cached_input_tokens: 2000,
                cache_write_tokens: 100,
                output_tokens: 41,
            }),
            Event::Finish(FinishReason::ToolCalls),
        ]
    );
}

#[test]
fn tool_use_without_input_is_empty_object_and_finish_reasons_map() {
    let (events, _) = decode(&[
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"now","input":{}}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"message_stop"}"#,
    ]);
    let want = [
        Event::ToolCall(call("t", "now", "{}")),
        Event::Finish(FinishReason::Stop),
    ];
    assert_eq!(events, want);
    for (reason, want) in [
        ("end_turn", FinishReason::Stop),
        ("stop_sequence", FinishReason::Stop),
        ("max_tokens", FinishReason::Length),
        ("tool_use", FinishReason::ToolCalls),
        ("refusal", FinishReason::Other),
    ] {
        let delta = format!(r#"{{"type":"message_delta","delta":{{"stop_reason":"{reason}"}}}}"#);
        let (events, _) = decode(&[&delta, r#"{"type":"message_stop"}"#]);
        assert_eq!(events, vec![Event::Finish(want)], "{reason}");
    }
}

#[test]
fn error_events_after_200_map_to_kinds() {
    let err = |t: &str, msg: &str| {
        let f = format!(r#"{{"type":"error","error":{{"type":"{t}","message":"{msg}"}}}}"#);
        decode(&[&f]).1.unwrap()
    };
    let e = err("overloaded_error", "Overloaded");
    assert_eq!(e.kind, ErrorKind::Overloaded);
    assert_eq!(
        e.message,
        "Anthropic stream error: overloaded_error: Overloaded"
    );
    for (t, msg, kind) in [
        ("rate_limit_error", "slow down", ErrorKind::RateLimited),
        ("api_error", "boom", ErrorKind::Unavailable),
        ("invalid_request_error", "bad", ErrorKind::Invalid),
        (
            "invalid_request_error",
            "prompt is too long: 9 > 8",
            ErrorKind::ContextTooLarge,
        ),
        ("authentication_error", "invalid x-api-key", ErrorKind::Auth),
        ("permission_error", "no", ErrorKind::Auth),
        ("mystery_error", "?", ErrorKind::Unavailable),
    ] {
        assert_eq!(err(t, msg).kind, kind, "{t}: {msg}");
    }
    let (events, e) = decode(&[
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
        "{not json",
    ]);
    assert_eq!(events, vec![Event::Text("Hi".into())]);
    assert_eq!(e.unwrap().kind, ErrorKind::Malformed);
}
