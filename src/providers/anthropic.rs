//! Anthropic Messages API over SSE — api.anthropic.com, and llama.cpp's llama-server, which speaks
//! the same `/v1/messages` (no key needed there).
//!
//! Wire (<https://docs.anthropic.com/en/api/messages-streaming>): `POST {base}/messages` with
//! `stream: true`, headers `x-api-key` (only when a key is set) and `anthropic-version`; `{base}` is
//! the configured URL with `/v1` appended unless it already ends in `/v1`. The stream is
//! `event: NAME` / `data: {"type": NAME, …}` pairs: `message_start` (input usage), per content
//! block `content_block_start` / `content_block_delta`* / `content_block_stop`, `message_delta`
//! (stop reason, cumulative output tokens), `message_stop`; `ping` keep-alives and an `error` event
//! can arrive at any point of a 200 stream. Prompt caching marks the stable prefix with
//! `cache_control` (<https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching>).

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::{ProviderConfig, ProviderKind};
use crate::core::llm::{
    ChatRequest, ErrorKind, Event, FimRequest, FinishReason, Message, ProviderError, Role,
    ToolCall, Usage,
};
use crate::core::prompt;
use crate::providers::{EventStream, Provider, ProviderInfo, Secret, http};

/// The `anthropic-version` header sent with every request.
pub const API_VERSION: &str = "2023-06-01";

/// Below this many characters of cacheable prompt (system text, and the JSON of the tools and of
/// the conversation before the final user turn) no `cache_control` is sent: about 1024 tokens, the
/// smallest prefix Anthropic caches, and not worth a cache write below.
pub const MIN_CACHE_CHARS: usize = 4096;

/// The most `cache_control` markers one request may carry (Anthropic's limit).
pub const MAX_CACHE_MARKERS: usize = 4;

/// The Anthropic Messages adapter (also for llama-server's `/v1/messages`).
pub struct Anthropic {
    info: ProviderInfo,
    key: Option<Secret>,
    client: reqwest::Client,
}

impl Anthropic {
    /// A remote provider with no configured model uses [`ProviderKind::default_model`]; a local
    /// one (llama-server) learns its model from the probe.
    pub fn new(cfg: &ProviderConfig, key: Option<Secret>, client: reqwest::Client) -> Self {
        let info = ProviderInfo::new(cfg);
        if !cfg.local
            && let Some(m) = ProviderKind::Anthropic.default_model()
        {
            info.learn_model(m);
        }
        Anthropic { info, key, client }
    }

    fn headers(&self, stream: bool) -> reqwest::header::HeaderMap {
        let mut pairs = vec![("anthropic-version", API_VERSION)];
        if stream {
            pairs.push(("accept", "text/event-stream"));
        }
        let key = self
            .key
            .as_ref()
            .map(|k| ("x-api-key", k.expose().to_string()));
        http::headers(&pairs, key)
    }

    fn model(&self) -> String {
        self.info
            .model()
            .or_else(|| ProviderKind::Anthropic.default_model().map(String::from))
            .unwrap_or_default()
    }
}

/// `{url}/v1` unless `url` already ends in `/v1`.
pub fn api_base(url: &str) -> String {
    if url.ends_with("/v1") {
        url.to_string()
    } else {
        format!("{url}/v1")
    }
}

/// The `POST /v1/messages` body for a streamed answer: `model`, `max_tokens`, `temperature`,
/// `stream`, `stop_sequences` (when any), `system` (all System messages joined into one text block,
/// when any), `messages` (strictly alternating user/assistant; see [`messages`]) and `tools`
/// (`{name, description, input_schema}`, when any). `cache_control` marks the last system block and
/// the last block before the final user turn when the cacheable prompt has at least
/// [`MIN_CACHE_CHARS`] characters.
pub fn chat_body(req: &ChatRequest, model: &str) -> Value {
    let system_text = req
        .messages
        .iter()
        .filter(|m| m.role == Role::System && !m.content.trim().is_empty())
        .map(|m| m.content.as_str())
        .collect::<Vec<_>>()
        .join("\n\n");
    let mut system: Vec<Value> = Vec::new();
    if !system_text.is_empty() {
        system.push(json!({"type": "text", "text": system_text}));
    }
    let mut msgs = messages(&req.messages);
    let tools: Vec<Value> = req
        .tools
        .iter()
        .map(|t| {
            let object = Some(&t.parameters).filter(|p| p.is_object()).cloned();
            let schema = object.unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            json!({"name": t.name, "description": t.description, "input_schema": schema})
        })
        .collect();

    // The stable prefix: everything before the final user turn.
    let prefix_end = msgs.iter().rposition(|m| m["role"] == "user").unwrap_or(0);
    let cacheable = system_text.len()
        + tools.iter().map(|t| t.to_string().len()).sum::<usize>()
        + msgs[..prefix_end]
            .iter()
            .map(|m| m.to_string().len())
            .sum::<usize>();
    if cacheable >= MIN_CACHE_CHARS {
        let mut targets: Vec<&mut Value> = Vec::new();
        targets.extend(system.last_mut());
        let prefix_last = msgs[..prefix_end].last_mut();
        targets.extend(prefix_last.and_then(|m| m["content"].as_array_mut()?.last_mut()));
        for block in targets.into_iter().take(MAX_CACHE_MARKERS) {
            block["cache_control"] = json!({"type": "ephemeral"});
        }
    }

    let mut body = json!({"model": model, "max_tokens": req.max_tokens,
        "temperature": req.temperature, "stream": true, "messages": msgs});
    if !system.is_empty() {
        body["system"] = json!(system);
    }
    if !req.stop.is_empty() {
        body["stop_sequences"] = json!(req.stop);
    }
    if !tools.is_empty() {
        body["tools"] = json!(tools);
    }
    body
}

/// The conversation (System messages left out) as Anthropic `messages`, each
/// `{"role": "user"|"assistant", "content": [block…]}`: User → a `text` block; Assistant → a `text`
/// block (when not blank) and a `tool_use` block per call; Tool → a `tool_result` block in a user
/// message. Consecutive messages of one role merge into one (tool results and the user text after
/// them become one user message), as Anthropic requires strict alternation; a message with no
/// blocks is dropped, and no text block is ever empty.
pub fn messages(conversation: &[Message]) -> Vec<Value> {
    let mut out: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for m in conversation {
        let text = || json!({"type": "text", "text": m.content});
        let blank = m.content.trim().is_empty();
        let (role, blocks) = match m.role {
            Role::System => continue,
            Role::User => ("user", if blank { vec![] } else { vec![text()] }),
            Role::Assistant => {
                let mut b = if blank { vec![] } else { vec![text()] };
                b.extend(m.tool_calls.iter().map(|c| {
                    json!({"type": "tool_use", "id": wire_id(&c.id), "name": c.name,
                           "input": tool_input(&c.arguments)})
                }));
                ("assistant", b)
            }
            Role::Tool => {
                let id = m.tool_call_id.as_deref().unwrap_or_default();
                let mut b = json!({"type": "tool_result", "tool_use_id": wire_id(id),
                                   "content": m.content});
                if m.is_error {
                    b["is_error"] = json!(true);
                }
                ("user", vec![b])
            }
        };
        if blocks.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some((r, prev)) if *r == role => prev.extend(blocks),
            _ => out.push((role, blocks)),
        }
    }
    out.into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect()
}

/// A tool call's argument text as the `input` object Anthropic requires: `{}` when blank, the
/// parsed object, or `{"_raw": text}` when it is not a JSON object.
fn tool_input(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v) if v.is_object() => v,
        _ => json!({"_raw": arguments}),
    }
}

/// A tool call id as Anthropic accepts it (`[A-Za-z0-9_-]+`): other characters become `_`, so ids
/// made by other providers still pair up.
fn wire_id(id: &str) -> String {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let id: String = id.chars().map(|c| if ok(c) { c } else { '_' }).collect();
    if id.is_empty() {
        "toolu_none".into()
    } else {
        id
    }
}

/// The usage keys Anthropic reports, in the order [`Decoder`] keeps them.
const USAGE_KEYS: [&str; 4] = [
    "input_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "output_tokens",
];

/// A tool_use block being streamed: its JSON arguments arrive in `input_json_delta` pieces.
struct PendingCall {
    id: String,
    name: String,
    json: String,
    /// The `input` of `content_block_start` (used when no pieces follow).
    input: Value,
}

/// The stateful decoder of one Messages stream: feed it each SSE `data` payload in order.
/// Tool calls are emitted whole at their `content_block_stop`; at `message_stop` come one
/// [`Event::Usage`] (normalized: `input_tokens` = input + cache reads + cache writes, output the
/// last cumulative count of `message_delta`) and one [`Event::Finish`]. Thinking blocks and their
/// deltas are dropped.
#[derive(Default)]
pub struct Decoder {
    /// [`USAGE_KEYS`] as last reported (`message_delta` repeats them cumulatively).
    usage: Option<[u32; 4]>,
    stop: Option<FinishReason>,
    calls: HashMap<u64, PendingCall>,
    done: bool,
}

impl Decoder {
    /// A decoder for a new stream.
    pub fn new() -> Self {
        Decoder::default()
    }

    /// Maps one `data` payload (`{"type": …}`) to events. Errors: an `error` event → its kind
    /// (`overloaded_error` → Overloaded, `rate_limit_error` → RateLimited, `invalid_request_error`
    /// → Invalid or ContextTooLarge, `authentication_error`/`permission_error` → Auth, others
    /// Unavailable); a payload that is not a JSON object with a `type` → Malformed. Unknown event
    /// types give no events.
    pub fn map(&mut self, data: &str) -> Result<Vec<Event>, ProviderError> {
        let data = data.trim();
        if data.is_empty() {
            return Ok(vec![]);
        }
        let malformed = |e: &dyn std::fmt::Display| {
            let head: String = data.chars().take(120).collect();
            ProviderError::new(
                ErrorKind::Malformed,
                format!("unexpected Anthropic event ({e}): {head}"),
            )
        };
        let v: Value = serde_json::from_str(data).map_err(|e| malformed(&e))?;
        let kind = v["type"].as_str().ok_or_else(|| malformed(&"no type"))?;
        let index = v["index"].as_u64().unwrap_or(0);
        let text = |x: &Value| {
            x["text"]
                .as_str()
                .filter(|t| !t.is_empty())
                .map(String::from)
        };
        let mut out = Vec::new();
        match kind {
            "message_start" => self.update_usage(&v["message"]["usage"]),
            "content_block_start" => {
                let b = &v["content_block"];
                match b["type"].as_str() {
                    Some("text") => out.extend(text(b).map(Event::Text)),
                    Some("tool_use") => {
                        let call = PendingCall {
                            id: b["id"].as_str().unwrap_or_default().to_string(),
                            name: b["name"].as_str().unwrap_or_default().to_string(),
                            json: String::new(),
                            input: b["input"].clone(),
                        };
                        self.calls.insert(index, call);
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let d = &v["delta"];
                match d["type"].as_str() {
                    Some("text_delta") => out.extend(text(d).map(Event::Text)),
                    Some("input_json_delta") => {
                        if let Some(c) = self.calls.get_mut(&index) {
                            c.json
                                .push_str(d["partial_json"].as_str().unwrap_or_default());
                        }
                    }
                    _ => {} // thinking_delta, signature_delta, …: never kept
                }
            }
            "content_block_stop" => {
                if let Some(c) = self.calls.remove(&index) {
                    let arguments = if !c.json.trim().is_empty() {
                        c.json
                    } else if c.input.as_object().is_some_and(|o| !o.is_empty()) {
                        c.input.to_string()
                    } else {
                        "{}".into()
                    };
                    let (id, name) = (c.id, c.name);
                    out.push(Event::ToolCall(ToolCall {
                        id,
                        name,
                        arguments,
                    }));
                }
            }
            "message_delta" => {
                if let Some(r) = v["delta"]["stop_reason"].as_str() {
                    self.stop = Some(finish_reason(r));
                }
                self.update_usage(&v["usage"]);
            }
            "message_stop" if !self.done => {
                self.done = true;
                if let Some([input, read, write, output]) = self.usage {
                    out.push(Event::Usage(Usage {
                        input_tokens: input.saturating_add(read).saturating_add(write),
                        cached_input_tokens: read,
                        cache_write_tokens: write,
                        output_tokens: output,
                    }));
                }
                out.push(Event::Finish(self.stop.unwrap_or(FinishReason::Stop)));
            }
            "error" => return Err(stream_error(&v["error"])),
            _ => {} // ping, a repeated message_stop, event types added later
        }
        Ok(out)
    }

    /// At the end of the response: `Err(Malformed)` when it stopped before `message_stop`.
    pub fn end(&mut self) -> Result<Vec<Event>, ProviderError> {
        match self.done {
            true => Ok(vec![]),
            false => Err(ProviderError::new(
                ErrorKind::Malformed,
                "the Anthropic stream was cut off before message_stop",
            )),
        }
    }

    /// Takes the counts present in a `usage` object; absent ones keep their earlier value.
    fn update_usage(&mut self, u: &Value) {
        if !u.is_object() {
            return;
        }
        let kept = self.usage.get_or_insert_default();
        for (slot, key) in kept.iter_mut().zip(USAGE_KEYS) {
            if let Some(n) = u[key].as_u64() {
                *slot = u32::try_from(n).unwrap_or(u32::MAX);
            }
        }
    }
}

fn finish_reason(r: &str) -> FinishReason {
    match r {
        "end_turn" | "stop_sequence" => FinishReason::Stop,
        "max_tokens" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        _ => FinishReason::Other,
    }
}

fn stream_error(err: &Value) -> ProviderError {
    let etype = err["type"].as_str().unwrap_or_default();
    let message = err["message"].as_str().unwrap_or_default();
    let kind = match etype {
        "overloaded_error" => ErrorKind::Overloaded,
        "rate_limit_error" => ErrorKind::RateLimited,
        "authentication_error" | "permission_error" => ErrorKind::Auth,
        "request_too_large" => ErrorKind::ContextTooLarge,
        "invalid_request_error" if message.to_ascii_lowercase().contains("prompt is too long") => {
            ErrorKind::ContextTooLarge
        }
        "invalid_request_error" | "not_found_error" => ErrorKind::Invalid,
        _ => ErrorKind::Unavailable,
    };
    ProviderError::new(kind, format!("Anthropic stream error: {etype}: {message}"))
}

#[derive(Deserialize)]
struct Models {
    #[serde(default)]
    data: Vec<ModelEntry>,
}

#[derive(Deserialize)]
struct ModelEntry {
    id: String,
}

impl Provider for Anthropic {
    fn continues_prefill(&self) -> bool {
        true
    }

    fn info(&self) -> &ProviderInfo {
        &self.info
    }

    fn chat(&self, req: ChatRequest) -> EventStream {
        let url = format!("{}/messages", api_base(&self.info.url));
        let body = chat_body(&req, &self.model());
        let client = self.client.clone();
        let headers = self.headers(true);
        let decoder = Decoder::new();
        http::stream_decoded(
            async move { http::post_json(&client, &url, headers, &body).await },
            http::sse_data,
            decoder,
        )
    }

    fn fim(&self, req: FimRequest) -> EventStream {
        self.chat(prompt::fim_as_chat(&req))
    }

    /// `GET {base}/models`: `Ok("model-id")` of the first model listed.
    fn probe(&self) -> futures_util::stream::BoxStream<'static, Result<String, ProviderError>> {
        let url = format!("{}/models", api_base(&self.info.url));
        let client = self.client.clone();
        let headers = self.headers(false);
        futures_util::stream::once(async move {
            let resp = http::get(&client, &url, headers, Duration::from_secs(3)).await?;
            let models: Models = http::read_json(resp).await?;
            Ok(models
                .data
                .into_iter()
                .next()
                .map(|m| m.id)
                .unwrap_or_default())
        })
        .boxed()
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

#[cfg(test)]
mod tests;
