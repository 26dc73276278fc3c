//! The OpenAI stream decoder: SSE `data` payloads of chat-completion chunks (and the legacy
//! completion chunks of DeepSeek FIM) to `core::llm` events, tool calls assembled from their
//! pieces. The wire types stay private here.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use crate::core::llm::{ErrorKind, Event, FinishReason, ProviderError, ToolCall, Usage};
use crate::providers::http;

#[derive(Deserialize)]
struct Chunk {
    choices: Option<Vec<Choice>>,
    usage: Option<WireUsage>,
    error: Option<Value>,
    /// Groq's older place for usage.
    x_groq: Option<XGroq>,
}

#[derive(Deserialize)]
struct XGroq {
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct Choice {
    index: Option<u32>,
    delta: Option<Delta>,
    /// Legacy completions (DeepSeek FIM).
    text: Option<String>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    content: Option<String>,
    tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Deserialize)]
struct ToolCallDelta {
    index: Option<u32>,
    id: Option<String>,
    function: Option<FunctionDelta>,
}

#[derive(Deserialize)]
struct FunctionDelta {
    name: Option<String>,
    /// A piece of the JSON text (some compatible servers send the whole object instead).
    arguments: Option<Value>,
}

#[derive(Deserialize)]
struct WireUsage {
    prompt_tokens: Option<u32>,
    completion_tokens: Option<u32>,
    prompt_tokens_details: Option<PromptDetails>,
    /// DeepSeek's prompt-cache hits (part of `prompt_tokens`).
    prompt_cache_hit_tokens: Option<u32>,
}

#[derive(Deserialize)]
struct PromptDetails {
    cached_tokens: Option<u32>,
}

impl WireUsage {
    fn to_usage(&self) -> Usage {
        let cached = self
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
            .or(self.prompt_cache_hit_tokens)
            .unwrap_or(0);
        Usage {
            cached_input_tokens: cached,
            ..Usage::new(
                self.prompt_tokens.unwrap_or(0),
                self.completion_tokens.unwrap_or(0),
            )
        }
    }
}

/// A tool call being assembled.
#[derive(Debug)]
struct Pending {
    /// The wire `index`.
    index: u32,
    id: String,
    name: String,
    arguments: String,
    emitted: bool,
}

/// Maps the SSE `data` payloads of one streamed answer to events, assembling tool calls from their
/// pieces. Handles chat-completion chunks (`choices[].delta`) and legacy completion chunks
/// (`choices[].text`), usage chunks with empty `choices`, and Azure's annotation chunks (empty
/// `choices` with `prompt_filter_results`, choices without `delta`), which map to nothing.
#[derive(Debug, Default)]
pub struct Decoder {
    calls: Vec<Pending>,
    /// Wire index → the slot in `calls` its pieces go to.
    slots: HashMap<u32, usize>,
    finished: bool,
    /// `[DONE]` came.
    done: bool,
    emitted_calls: bool,
}

impl Decoder {
    pub fn new() -> Self {
        Decoder::default()
    }

    /// Maps one SSE `data` payload. `[DONE]` emits the tool calls not yet emitted.
    pub fn map(&mut self, data: &str) -> Result<Vec<Event>, ProviderError> {
        let data = data.trim();
        if data.is_empty() {
            return Ok(vec![]);
        }
        if data == "[DONE]" {
            self.done = true;
            return Ok(self.flush());
        }
        let chunk: Chunk = serde_json::from_str(data).map_err(|e| {
            ProviderError::new(
                ErrorKind::Malformed,
                format!(
                    "unexpected stream chunk ({e}): {}",
                    data.chars().take(120).collect::<String>()
                ),
            )
        })?;
        if let Some(err) = chunk.error.filter(|e| !e.is_null()) {
            return Err(stream_error(&err));
        }
        let mut events = Vec::new();
        let choice = chunk
            .choices
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.index.unwrap_or(0) == 0);
        if let Some(choice) = choice {
            let mut text = choice.text.unwrap_or_default();
            if let Some(delta) = choice.delta {
                text.push_str(&delta.content.unwrap_or_default());
                for (pos, piece) in delta.tool_calls.unwrap_or_default().into_iter().enumerate() {
                    self.add_piece(pos as u32, piece);
                }
            }
            if !text.is_empty() {
                events.push(Event::Text(text));
            }
            if let Some(reason) = choice.finish_reason.filter(|r| !r.is_empty()) {
                events.extend(self.flush());
                if !self.finished {
                    self.finished = true;
                    let mut reason = finish_reason(&reason);
                    if reason == FinishReason::Stop && self.emitted_calls {
                        // compatible servers that answer tool calls with "stop"
                        reason = FinishReason::ToolCalls;
                    }
                    events.push(Event::Finish(reason));
                }
            }
        }
        if let Some(u) = chunk.usage.or(chunk.x_groq.and_then(|x| x.usage)) {
            events.push(Event::Usage(u.to_usage()));
        }
        Ok(events)
    }

    /// The end of the response: the tool calls not yet emitted (each call is emitted once), or
    /// `Err(Malformed)` when the stream stopped before both a finish reason and `[DONE]`.
    pub fn end(&mut self) -> Result<Vec<Event>, ProviderError> {
        if !self.done && !self.finished {
            return Err(http::cut_off("the OpenAI-compatible stream"));
        }
        Ok(self.flush())
    }

    fn add_piece(&mut self, pos: u32, piece: ToolCallDelta) {
        let index = piece.index.unwrap_or(pos);
        let id = piece.id.filter(|s| !s.is_empty());
        let (name, args) = match piece.function {
            Some(f) => (
                f.name.filter(|s| !s.is_empty()),
                match f.arguments {
                    Some(Value::String(s)) => s,
                    Some(Value::Null) | None => String::new(),
                    Some(v) => v.to_string(),
                },
            ),
            None => (None, String::new()),
        };
        let current = self.slots.get(&index).map(|&s| &self.calls[s]);
        // A piece continues the call at its index unless it names another call by id or function
        // name (servers that reuse index 0 for parallel calls tell them apart so; Azure repeats
        // the id on every piece, some servers the name) or that call was already emitted.
        let continues = current.is_some_and(|c| {
            !c.emitted
                && id.as_ref().is_none_or(|id| c.id.is_empty() || *id == c.id)
                && name
                    .as_ref()
                    .is_none_or(|n| c.name.is_empty() || *n == c.name)
        });
        if !continues {
            if id.is_none() && name.is_none() && current.is_some() {
                tracing::debug!("tool-call piece for a call already emitted, ignored");
                return;
            }
            self.slots.insert(index, self.calls.len());
            self.calls.push(Pending {
                index,
                id: String::new(),
                name: String::new(),
                arguments: String::new(),
                emitted: false,
            });
        }
        let slot = self.slots[&index];
        let call = &mut self.calls[slot];
        if let Some(id) = id {
            call.id = id;
        }
        if let Some(name) = name
            && call.name.is_empty()
        {
            call.name = name;
        }
        call.arguments.push_str(&args);
    }

    /// The calls not yet emitted, in index order, marked emitted.
    fn flush(&mut self) -> Vec<Event> {
        let mut ready: Vec<usize> = (0..self.calls.len())
            .filter(|&i| !self.calls[i].emitted)
            .collect();
        ready.sort_by_key(|&i| (self.calls[i].index, i));
        let mut events = Vec::new();
        for i in ready {
            let c = &mut self.calls[i];
            c.emitted = true;
            if c.name.is_empty() && c.arguments.is_empty() {
                continue;
            }
            let arguments = if c.arguments.trim().is_empty() {
                "{}".to_string()
            } else {
                std::mem::take(&mut c.arguments)
            };
            let id = if c.id.is_empty() {
                format!("call_{i}") // unique within the answer
            } else {
                std::mem::take(&mut c.id)
            };
            events.push(Event::ToolCall(ToolCall {
                id,
                name: std::mem::take(&mut c.name),
                arguments,
            }));
            self.emitted_calls = true;
        }
        events
    }
}

impl http::Decode for Decoder {
    fn map(&mut self, frame: &str) -> Result<Vec<Event>, ProviderError> {
        Decoder::map(self, frame)
    }
    fn end(&mut self) -> Result<Vec<Event>, ProviderError> {
        Decoder::end(self)
    }
}

/// Maps one SSE `data` payload to events with a fresh [`Decoder`]: for payloads that stand alone
/// (text, finish, usage, errors). Tool calls need the stream's [`Decoder`].
pub fn map_chunk(data: &str) -> Result<Vec<Event>, ProviderError> {
    Decoder::new().map(data)
}

fn finish_reason(r: &str) -> FinishReason {
    match r {
        "stop" | "end_turn" => FinishReason::Stop,
        "length" | "max_tokens" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        // "content_filter" (Azure, OpenAI), "error" (OpenRouter), …
        _ => FinishReason::Other,
    }
}

fn stream_error(err: &Value) -> ProviderError {
    let field = |k: &str| match err.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    };
    let message = match err {
        Value::String(s) => s.clone(),
        _ => field("message"),
    };
    let text = format!("{} {} {message}", field("type"), field("code")).to_ascii_lowercase();
    let kind = if text.contains("overload") {
        ErrorKind::Overloaded
    } else if text.contains("rate") && text.contains("limit") {
        ErrorKind::RateLimited
    } else if text.contains("context") {
        ErrorKind::ContextTooLarge
    } else {
        ErrorKind::Unavailable
    };
    ProviderError::new(kind, format!("provider error in stream: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::openai::test_call as call;
    use serde_json::json;

    #[test]
    fn maps_chunks() {
        assert_eq!(map_chunk("[DONE]").unwrap(), vec![]);
        assert_eq!(
            map_chunk(r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#)
                .unwrap(),
            vec![Event::Text("Hi".into())]
        );
        assert_eq!(
            map_chunk(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#).unwrap(),
            vec![Event::Finish(FinishReason::Length), Event::Usage(Usage::new(3, 2))]
        );
        let e = map_chunk(r#"{"error":{"message":"Overloaded","type":"overloaded_error"}}"#)
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Overloaded);
        let e = map_chunk(r#"{"error":"rate limit reached"}"#).unwrap_err();
        assert_eq!(e.kind, ErrorKind::RateLimited);
        assert_eq!(
            map_chunk("{not json").unwrap_err().kind,
            ErrorKind::Malformed
        );
        // nulls where fields may be absent (api.openai.com sends them)
        assert_eq!(
            map_chunk(r#"{"choices":[{"index":0,"delta":{"content":null,"role":"assistant","tool_calls":null},"finish_reason":null}],"usage":null,"error":null}"#).unwrap(),
            vec![]
        );
        // legacy completions (DeepSeek FIM)
        assert_eq!(
            map_chunk(r#"{"object":"text_completion","choices":[{"text":"    if","index":0,"logprobs":null,"finish_reason":null}]}"#).unwrap(),
            vec![Event::Text("    if".into())]
        );
        // a content filter stops the answer
        assert_eq!(
            map_chunk(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"content_filter"}]}"#)
                .unwrap(),
            vec![Event::Finish(FinishReason::Other)]
        );
    }

    #[test]
    fn cached_tokens_are_part_of_input() {
        let u = |s: &str| map_chunk(s).unwrap();
        let cached = Usage {
            cached_input_tokens: 1920,
            ..Usage::new(2006, 300)
        };
        assert_eq!(
            u(
                r#"{"choices":[],"usage":{"prompt_tokens":2006,"completion_tokens":300,"total_tokens":2306,"prompt_tokens_details":{"cached_tokens":1920,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}"#
            ),
            vec![Event::Usage(cached)]
        );
        // DeepSeek
        assert_eq!(
            u(
                r#"{"choices":[],"usage":{"prompt_tokens":2006,"completion_tokens":300,"prompt_cache_hit_tokens":1920,"prompt_cache_miss_tokens":86}}"#
            ),
            vec![Event::Usage(cached)]
        );
        // Groq's x_groq.usage
        assert_eq!(
            u(
                r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"x_groq":{"usage":{"prompt_tokens":4,"completion_tokens":2}}}"#
            ),
            vec![
                Event::Finish(FinishReason::Stop),
                Event::Usage(Usage::new(4, 2))
            ]
        );
    }

    fn piece(index: u32, id: Option<&str>, name: Option<&str>, args: &str) -> String {
        let mut tc = json!({"index": index, "function": {"arguments": args}});
        if let Some(id) = id {
            tc["id"] = json!(id);
            tc["type"] = json!("function");
        }
        if let Some(name) = name {
            tc["function"]["name"] = json!(name);
        }
        json!({"choices": [{"index": 0, "delta": {"tool_calls": [tc]}, "finish_reason": null}]})
            .to_string()
    }

    fn run(dec: &mut Decoder, frames: &[String]) -> Vec<Event> {
        frames.iter().flat_map(|f| dec.map(f).unwrap()).collect()
    }

    #[test]
    fn assembles_parallel_tool_calls_from_pieces() {
        let frames = vec![
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]}"#.to_string(),
            piece(0, Some("call_P"), Some("get_weather"), ""),
            piece(0, None, None, r#"{"ci"#),
            piece(1, Some("call_O"), Some("get_weather"), r#"{"#),
            piece(0, None, None, r#"ty": "Pa"#),
            piece(1, None, None, r#""city": "Os"#),
            piece(0, None, None, r#"ris"}"#),
            piece(1, None, None, r#"lo"}"#),
        ];
        let mut dec = Decoder::new();
        assert_eq!(run(&mut dec, &frames), vec![], "nothing before the finish");
        let tail = [
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#.to_string(),
            r#"{"choices":[],"usage":{"prompt_tokens":80,"completion_tokens":40,"prompt_tokens_details":{"cached_tokens":64}}}"#.to_string(),
            "[DONE]".to_string(),
        ];
        assert_eq!(
            run(&mut dec, &tail),
            vec![
                Event::ToolCall(call("call_P", "get_weather", r#"{"city": "Paris"}"#)),
                Event::ToolCall(call("call_O", "get_weather", r#"{"city": "Oslo"}"#)),
                Event::Finish(FinishReason::ToolCalls),
                Event::Usage(Usage {
                    cached_input_tokens: 64,
                    ..Usage::new(80, 40)
                }),
            ]
        );
        assert_eq!(dec.end().unwrap(), vec![], "each call is emitted once");
    }

    #[test]
    fn tool_calls_are_emitted_at_done_and_a_cut_stream_is_malformed() {
        // index order even when index 1 started first
        let frames = vec![
            piece(1, Some("b"), Some("second"), r#"{"x":1}"#),
            piece(0, Some("a"), Some("first"), ""),
        ];
        let mut dec = Decoder::new();
        run(&mut dec, &frames);
        assert_eq!(
            dec.map("[DONE]").unwrap(),
            vec![
                Event::ToolCall(call("a", "first", "{}")),
                Event::ToolCall(call("b", "second", r#"{"x":1}"#)),
            ]
        );
        assert_eq!(dec.end().unwrap(), vec![]);
        // cut before a finish reason or [DONE]: no half-assembled calls, an error
        let mut dec = Decoder::new();
        run(&mut dec, &frames);
        assert_eq!(dec.end().unwrap_err().kind, ErrorKind::Malformed);
        // a finish reason without [DONE] is a complete answer; calls after it come at the end
        let mut dec = Decoder::new();
        let late = piece(1, Some("c"), Some("late"), "{}");
        let frames = [
            r#"{"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}]}"#
                .to_string(),
            late,
        ];
        assert_eq!(
            run(&mut dec, &frames),
            vec![Event::Text("x".into()), Event::Finish(FinishReason::Stop)]
        );
        assert_eq!(
            dec.end().unwrap(),
            vec![Event::ToolCall(call("c", "late", "{}"))]
        );
    }

    #[test]
    fn repeated_and_reused_indexes() {
        // Azure repeats the id on every piece; some servers reuse index 0 for parallel calls and
        // tell them apart by id; a server may send whole calls, each with a finish_reason.
        let frames = vec![
            piece(0, Some("t-0"), Some("f"), ""),
            piece(0, Some("t-0"), None, r#"{"a""#),
            piece(0, Some("t-0"), None, ":1}"),
            piece(0, Some("t-1"), Some("g"), "{}"),
            r#"{"choices":[{"index":0,"delta":{"content":"ok","tool_calls":[{"index":1,"id":"t-2","type":"function","function":{"name":"h","arguments":{"k":"v"}}}]},"finish_reason":"tool_calls"}]}"#.to_string(),
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":2,"id":"t-3","type":"function","function":{"name":"i","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}"#.to_string(),
            "[DONE]".to_string(),
        ];
        assert_eq!(
            run(&mut Decoder::new(), &frames),
            vec![
                Event::Text("ok".into()),
                Event::ToolCall(call("t-0", "f", r#"{"a":1}"#)),
                Event::ToolCall(call("t-1", "g", "{}")),
                Event::ToolCall(call("t-2", "h", r#"{"k":"v"}"#)),
                Event::Finish(FinishReason::ToolCalls),
                Event::ToolCall(call("t-3", "i", "{}")),
            ]
        );
        // no ids, index 0 reused, names repeated on every piece
        let frames = vec![
            piece(0, None, Some("f"), r#"{"a":"#),
            piece(0, None, Some("f"), "1}"),
            piece(0, None, Some("g"), "{}"),
            "[DONE]".to_string(),
        ];
        assert_eq!(
            run(&mut Decoder::new(), &frames),
            vec![
                Event::ToolCall(call("call_0", "f", r#"{"a":1}"#)),
                Event::ToolCall(call("call_1", "g", "{}")),
            ]
        );
        // "stop" after tool calls (compatible servers) reads as ToolCalls
        let frames = vec![
            piece(0, Some("c"), Some("f"), "{}"),
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#.to_string(),
        ];
        assert_eq!(
            run(&mut Decoder::new(), &frames),
            vec![
                Event::ToolCall(call("c", "f", "{}")),
                Event::Finish(FinishReason::ToolCalls)
            ]
        );
    }
}
