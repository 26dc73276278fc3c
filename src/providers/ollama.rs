//! Ollama's native API over NDJSON: `POST /api/chat` for chat (with tools), `POST /api/generate`
//! with `suffix` for FIM, `GET /api/tags` to probe and learn a model, `GET /api/ps` for the loaded
//! models.
//!
//! Each line is a JSON object: `{"message": {"content": …}, "done": false}` (chat) or
//! `{"response": …, "done": false}` (generate); the last has `"done": true`, `done_reason`,
//! `prompt_eval_count` and `eval_count` (durations are nanoseconds); an `{"error": …}` line ends the
//! stream with an error. A full queue answers HTTP 503.
//!
//! Tool calls arrive whole, in a line's `message.tool_calls[].function{name, arguments}` with the
//! arguments as a JSON object (not text); the wire has no call id in older servers, so the adapter
//! makes one up (`call_N`). Tools, and the assistant's calls replayed in a conversation, are sent
//! the same way; tool results are `{"role": "tool", "content", "tool_name"}`. `done_reason` stays
//! `"stop"` after tool calls; the adapter reports `FinishReason::ToolCalls`.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::ProviderConfig;
use crate::core::llm::{
    ChatRequest, ErrorKind, Event, FimRequest, FinishReason, ProviderError, Role, ToolCall, Usage,
};
use crate::providers::{EventStream, Provider, ProviderInfo, http};

pub struct Ollama {
    info: ProviderInfo,
    client: reqwest::Client,
    keep_alive: Option<Value>,
}

impl Ollama {
    pub fn new(cfg: &ProviderConfig, client: reqwest::Client) -> Self {
        Ollama {
            info: ProviderInfo::new(cfg),
            client,
            keep_alive: cfg.keep_alive.as_deref().map(keep_alive),
        }
    }

    fn model_or_err(&self) -> Result<String, ProviderError> {
        self.info.model().ok_or_else(|| {
            ProviderError::new(
                ErrorKind::Invalid,
                format!(
                    "no model for Ollama at {}: set providers.{}.model or pull one (`ollama pull …`)",
                    self.info.url, self.info.name
                ),
            )
        })
    }

    fn stream(&self, path: &str, body: Result<Value, ProviderError>) -> EventStream {
        let mut body = match body {
            Ok(b) => b,
            Err(e) => return futures_util::stream::iter([Err(e)]).boxed(),
        };
        if let Some(k) = &self.keep_alive {
            body["keep_alive"] = k.clone();
        }
        let url = format!("{}{path}", self.info.url);
        let client = self.client.clone();
        http::stream_decoded(
            async move { http::post_json(&client, &url, http::headers(&[], None), &body).await },
            http::ndjson_lines,
            LineDecoder::new(),
        )
    }

    /// The models loaded in memory now (`GET /api/ps`), largest first as Ollama lists them.
    pub async fn loaded_models(&self) -> Result<Vec<LoadedModel>, ProviderError> {
        let url = format!("{}/api/ps", self.info.url);
        let resp = http::get(
            &self.client,
            &url,
            http::headers(&[], None),
            Duration::from_secs(3),
        )
        .await?;
        let ps: Ps = http::read_json(resp).await?;
        Ok(ps.loaded())
    }
}

/// A model Ollama holds in memory: its total size and the part of it in GPU memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedModel {
    pub name: String,
    pub size_bytes: u64,
    pub size_vram_bytes: u64,
}

#[derive(Deserialize)]
struct Ps {
    #[serde(default)]
    models: Vec<PsModel>,
}

impl Ps {
    fn loaded(self) -> Vec<LoadedModel> {
        self.models
            .into_iter()
            .map(|m| LoadedModel {
                name: m.name,
                size_bytes: m.size,
                size_vram_bytes: m.size_vram,
            })
            .collect()
    }
}

#[derive(Deserialize)]
struct PsModel {
    name: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    size_vram: u64,
}

/// The config's `keep_alive` on the wire: a number of seconds (`"-1"`: keep loaded for ever) as a
/// JSON number, a duration (`"5m"`) as a string; Ollama rejects a unitless string.
pub fn keep_alive(s: &str) -> Value {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        json!(n)
    } else if let Ok(f) = s.parse::<f64>()
        && f.is_finite()
    {
        json!(f)
    } else {
        json!(s)
    }
}

fn options(max_tokens: u32, temperature: f32, stop: &[String]) -> Value {
    let mut o = json!({"num_predict": max_tokens, "temperature": temperature});
    if !stop.is_empty() {
        o["stop"] = json!(stop);
    }
    o
}

/// The `/api/chat` request body: the whole conversation and the tools when there are any.
pub fn chat_body(req: &ChatRequest, model: &str) -> Value {
    // the name of each call, by id, for the `tool_name` of the result answering it
    let mut names: HashMap<&str, &str> = HashMap::new();
    let mut messages = Vec::with_capacity(req.messages.len());
    for m in &req.messages {
        let mut msg = json!({"role": m.role.as_str(), "content": m.content});
        match m.role {
            Role::Assistant if !m.tool_calls.is_empty() => {
                let calls: Vec<Value> = m
                    .tool_calls
                    .iter()
                    .map(|c| {
                        names.insert(&c.id, &c.name);
                        json!({"function": {"name": c.name, "arguments": arguments_object(&c.arguments)}})
                    })
                    .collect();
                msg["tool_calls"] = json!(calls);
            }
            Role::Tool => {
                if let Some(name) = m.tool_call_id.as_deref().and_then(|id| names.get(id)) {
                    msg["tool_name"] = json!(name);
                }
            }
            _ => {}
        }
        messages.push(msg);
    }
    let mut body = json!({"model": model, "messages": messages, "stream": true, "options": options(req.max_tokens, req.temperature, &req.stop)});
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                }})
            })
            .collect();
    }
    body
}

/// A call's argument text as the JSON object Ollama wants (`{}` for text that is not an object).
fn arguments_object(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({}),
    }
}

/// The `/api/generate` FIM request body (`prompt` = prefix, `suffix` = suffix).
pub fn fim_body(req: &FimRequest, model: &str) -> Value {
    json!({"model": model, "prompt": req.prefix, "suffix": req.suffix, "stream": true, "options": options(req.max_tokens, 0.1, &req.stop)})
}

#[derive(Deserialize)]
struct Line {
    message: Option<LineMessage>,
    response: Option<String>,
    #[serde(default)]
    done: bool,
    done_reason: Option<String>,
    prompt_eval_count: Option<u32>,
    eval_count: Option<u32>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct LineMessage {
    #[serde(default)]
    content: String,
    tool_calls: Option<Vec<WireCall>>,
}

#[derive(Deserialize)]
struct WireCall {
    /// Sent by newer servers.
    id: Option<String>,
    function: WireFunction,
}

#[derive(Deserialize)]
struct WireFunction {
    name: String,
    #[serde(default)]
    arguments: Value,
}

/// Maps the NDJSON lines of one `/api/chat` or `/api/generate` answer to events, numbering the
/// tool calls that come without an id.
#[derive(Debug, Default)]
pub struct LineDecoder {
    calls: usize,
    /// The `done: true` line came.
    done: bool,
}

impl LineDecoder {
    pub fn new() -> Self {
        LineDecoder::default()
    }

    /// Maps one line.
    pub fn map(&mut self, line: &str) -> Result<Vec<Event>, ProviderError> {
        let l: Line = serde_json::from_str(line.trim()).map_err(|e| {
            ProviderError::new(
                ErrorKind::Malformed,
                format!(
                    "unexpected Ollama line ({e}): {}",
                    line.chars().take(120).collect::<String>()
                ),
            )
        })?;
        if let Some(err) = l.error {
            let lower = err.to_ascii_lowercase();
            let kind = if lower.contains("not found") {
                ErrorKind::Invalid
            } else if lower.contains("context") {
                ErrorKind::ContextTooLarge
            } else {
                ErrorKind::Unavailable
            };
            return Err(ProviderError::new(kind, format!("Ollama: {err}")));
        }
        let mut ev = Vec::new();
        let (text, calls) = match l.message {
            Some(m) => (m.content, m.tool_calls.unwrap_or_default()),
            None => (l.response.unwrap_or_default(), Vec::new()),
        };
        if !text.is_empty() {
            ev.push(Event::Text(text));
        }
        for c in calls {
            let id =
                c.id.filter(|id| !id.is_empty())
                    .unwrap_or_else(|| format!("call_{}", self.calls));
            self.calls += 1;
            let arguments = match c.function.arguments {
                Value::Null => "{}".to_string(),
                Value::String(s) if s.trim().is_empty() => "{}".to_string(),
                Value::String(s) => s,
                v => v.to_string(),
            };
            ev.push(Event::ToolCall(ToolCall {
                id,
                name: c.function.name,
                arguments,
            }));
        }
        if l.done {
            self.done = true;
            if l.prompt_eval_count.is_some() || l.eval_count.is_some() {
                ev.push(Event::Usage(Usage::new(
                    l.prompt_eval_count.unwrap_or(0),
                    l.eval_count.unwrap_or(0),
                )));
            }
            ev.push(Event::Finish(match l.done_reason.as_deref() {
                Some("stop") | None if self.calls > 0 => FinishReason::ToolCalls,
                Some("stop") | None => FinishReason::Stop,
                Some("length") => FinishReason::Length,
                Some(_) => FinishReason::Other,
            }));
        }
        Ok(ev)
    }
}

impl LineDecoder {
    /// At the end of the response: `Err(Malformed)` when it stopped before the `done: true` line.
    pub fn end(&mut self) -> Result<Vec<Event>, ProviderError> {
        match self.done {
            true => Ok(vec![]),
            false => Err(http::cut_off("the Ollama stream")),
        }
    }
}

impl http::Decode for LineDecoder {
    fn map(&mut self, frame: &str) -> Result<Vec<Event>, ProviderError> {
        LineDecoder::map(self, frame)
    }
    fn end(&mut self) -> Result<Vec<Event>, ProviderError> {
        LineDecoder::end(self)
    }
}

/// Maps one NDJSON line to events with a fresh [`LineDecoder`].
pub fn map_line(line: &str) -> Result<Vec<Event>, ProviderError> {
    LineDecoder::new().map(line)
}

#[derive(Deserialize)]
struct Tags {
    #[serde(default)]
    models: Vec<Tag>,
}

#[derive(Deserialize)]
struct Tag {
    name: String,
}

impl Provider for Ollama {
    fn continues_prefill(&self) -> bool {
        true
    }

    fn info(&self) -> &ProviderInfo {
        &self.info
    }

    fn chat(&self, req: ChatRequest) -> EventStream {
        let body = self.model_or_err().map(|m| chat_body(&req, &m));
        self.stream("/api/chat", body)
    }

    fn fim(&self, req: FimRequest) -> EventStream {
        let body = self.model_or_err().map(|m| fim_body(&req, &m));
        self.stream("/api/generate", body)
    }

    fn probe(&self) -> futures_util::stream::BoxStream<'static, Result<String, ProviderError>> {
        let url = format!("{}/api/tags", self.info.url);
        let client = self.client.clone();
        futures_util::stream::once(async move {
            let resp = http::get(
                &client,
                &url,
                http::headers(&[], None),
                Duration::from_secs(3),
            )
            .await?;
            let tags: Tags = http::read_json(resp).await?;
            Ok(tags
                .models
                .into_iter()
                .next()
                .map(|t| t.name)
                .unwrap_or_default())
        })
        .boxed()
    }

    fn native_fim(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::openai::tool_conversation;
    use expect_test::expect;

    #[test]
    fn maps_lines() {
        assert_eq!(
            map_line(r#"{"model":"m","message":{"role":"assistant","content":"Hi"},"done":false}"#)
                .unwrap(),
            vec![Event::Text("Hi".into())]
        );
        assert_eq!(
            map_line(r#"{"model":"m","response":"x","done":false}"#).unwrap(),
            vec![Event::Text("x".into())]
        );
        assert_eq!(
            map_line(r#"{"response":"","done":true,"done_reason":"length","prompt_eval_count":7,"eval_count":3,"total_duration":123}"#).unwrap(),
            vec![Event::Usage(Usage::new(7, 3)), Event::Finish(FinishReason::Length)]
        );
        assert_eq!(
            map_line(r#"{"error":"model 'x' not found"}"#)
                .unwrap_err()
                .kind,
            ErrorKind::Invalid
        );
        assert_eq!(map_line("nope").unwrap_err().kind, ErrorKind::Malformed);
    }

    #[test]
    fn maps_tool_calls() {
        let mut d = LineDecoder::new();
        let lines = [
            r#"{"model":"qwen3","created_at":"2025-05-27T22:54:58.100509Z","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_current_weather","arguments":{"format":"celsius","location":"Toronto"}}},{"function":{"name":"now","arguments":{}}}]},"done":false}"#,
            r#"{"model":"qwen3","message":{"role":"assistant","content":"","tool_calls":[{"id":"call_xyz","function":{"index":0,"name":"again","arguments":{"n":1}}}]},"done":false}"#,
            r#"{"model":"qwen3","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":2000000000,"prompt_eval_count":200,"eval_count":31}"#,
        ];
        assert_eq!(
            d.end().unwrap_err().kind,
            ErrorKind::Malformed,
            "cut before done"
        );
        let events: Vec<Event> = lines.iter().flat_map(|l| d.map(l).unwrap()).collect();
        assert_eq!(d.end().unwrap(), vec![]);
        let call = |id: &str, name: &str, args: &str| {
            Event::ToolCall(ToolCall {
                id: id.into(),
                name: name.into(),
                arguments: args.into(),
            })
        };
        assert_eq!(
            events,
            vec![
                call(
                    "call_0",
                    "get_current_weather",
                    r#"{"format":"celsius","location":"Toronto"}"#
                ),
                call("call_1", "now", "{}"),
                call("call_xyz", "again", r#"{"n":1}"#),
                Event::Usage(Usage::new(200, 31)),
                Event::Finish(FinishReason::ToolCalls),
            ]
        );
    }

    #[test]
    fn tool_conversation_body() {
        let b = chat_body(&tool_conversation(), "qwen2.5-coder");
        expect![[r#"
            {
              "messages": [
                {
                  "content": "Be brief.",
                  "role": "system"
                },
                {
                  "content": "Weather in Paris and Oslo?",
                  "role": "user"
                },
                {
                  "content": "",
                  "role": "assistant",
                  "tool_calls": [
                    {
                      "function": {
                        "arguments": {
                          "city": "Paris"
                        },
                        "name": "get_weather"
                      }
                    },
                    {
                      "function": {
                        "arguments": {},
                        "name": "get_weather"
                      }
                    }
                  ]
                },
                {
                  "content": "18 C, sunny",
                  "role": "tool",
                  "tool_name": "get_weather"
                },
                {
                  "content": "no such city",
                  "role": "tool",
                  "tool_name": "get_weather"
                },
                {
                  "content": "Paris is sunny.",
                  "role": "assistant"
                }
              ],
              "model": "qwen2.5-coder",
              "options": {
                "num_predict": 64,
                "temperature": 0.20000000298023224
              },
              "stream": true,
              "tools": [
                {
                  "function": {
                    "description": "Current weather of a city",
                    "name": "get_weather",
                    "parameters": {
                      "properties": {
                        "city": {
                          "type": "string"
                        }
                      },
                      "required": [
                        "city"
                      ],
                      "type": "object"
                    }
                  },
                  "type": "function"
                }
              ]
            }"#]]
        .assert_eq(&serde_json::to_string_pretty(&b).unwrap());
    }

    #[test]
    fn loaded_models_from_api_ps() {
        // the example answer of GET /api/ps in Ollama's API docs (docs/api.md)
        let ps: Ps = serde_json::from_str(r#"{"models":[{"name":"mistral:latest","model":"mistral:latest","size":5137025024,"digest":"2ae6f6dd7a3dd734790bbbf58b8909a606e0e7e97e94b7604e0aa7ae4490e6d8","details":{"parent_model":"","format":"gguf","family":"llama","families":["llama"],"parameter_size":"7.2B","quantization_level":"Q4_0"},"expires_at":"2024-06-04T14:38:31.83753-07:00","size_vram":5137025024}]}"#).unwrap();
        assert_eq!(
            ps.loaded(),
            vec![LoadedModel {
                name: "mistral:latest".into(),
                size_bytes: 5_137_025_024,
                size_vram_bytes: 5_137_025_024,
            }]
        );
        let none: Ps = serde_json::from_str(r#"{"models":[]}"#).unwrap();
        assert!(none.loaded().is_empty());
    }

    #[test]
    fn keep_alive_values() {
        assert_eq!(keep_alive("-1"), json!(-1));
        assert_eq!(keep_alive("300"), json!(300));
        assert_eq!(keep_alive("1.5"), json!(1.5));
        assert_eq!(keep_alive("5m"), json!("5m"));
        assert_eq!(keep_alive(" 1h "), json!("1h"));
        let cfg = crate::config::Config::from_value(json!({"providers": {"o": {
            "kind": "ollama", "model": "qwen2.5-coder", "keep_alive": "-1"}}}))
        .unwrap();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let o = Ollama::new(&cfg.providers["o"], reqwest::Client::new());
        assert_eq!(o.keep_alive, Some(json!(-1)));
    }

    #[test]
    fn fim_body_has_suffix() {
        let req = FimRequest {
            prefix: "a".into(),
            suffix: "b".into(),
            language: String::new(),
            path: String::new(),
            max_tokens: 9,
            stop: vec![],
        };
        let b = fim_body(&req, "qwen2.5-coder");
        assert_eq!(b["prompt"], "a");
        assert_eq!(b["suffix"], "b");
        assert_eq!(b["options"]["num_predict"], 9);
    }
}
