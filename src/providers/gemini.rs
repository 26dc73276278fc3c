//! Google Gemini (Generative Language API) over SSE.
//!
//! Wire (<https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent>):
//! `POST {url}/models/{model}:streamGenerateContent?alt=sse` with the key in `x-goog-api-key`;
//! `{url}` defaults to `https://generativelanguage.googleapis.com/v1beta`. Each SSE `data` is a
//! whole `GenerateContentResponse`: `candidates[0].content.parts[]` (text, `thought` text, or a
//! `functionCall {name, args}`), `candidates[0].finishReason` on the last one and `usageMetadata`
//! (token counts so far); there is no end marker. An `{"error": {code, message, status}}` object can
//! arrive inside a 200 stream. Function declarations take an OpenAPI subset of JSON Schema
//! (<https://ai.google.dev/api/caching#Schema>), see [`gemini_schema`].

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::config::{ProviderConfig, ProviderKind};
use crate::core::llm::{
    ChatRequest, ErrorKind, Event, FimRequest, FinishReason, ProviderError, Role, ToolCall, Usage,
};
use crate::core::prompt;
use crate::providers::{EventStream, Provider, ProviderInfo, Secret, http};

/// Schema keys Gemini accepts in function parameters; everything else is dropped.
const SCHEMA_KEYS: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
];

/// How deep local `$ref`s are inlined before giving up (recursive schemas).
const MAX_REF_DEPTH: usize = 8;

/// The Gemini `streamGenerateContent` adapter.
pub struct Gemini {
    info: ProviderInfo,
    key: Option<Secret>,
    client: reqwest::Client,
}

impl Gemini {
    /// Without a configured model, [`ProviderKind::default_model`] is used (the probe's list is
    /// not a choice: its first entry may be any model).
    pub fn new(cfg: &ProviderConfig, key: Option<Secret>, client: reqwest::Client) -> Self {
        let info = ProviderInfo::new(cfg);
        if let Some(m) = ProviderKind::Gemini.default_model() {
            info.learn_model(m);
        }
        Gemini { info, key, client }
    }

    fn headers(&self) -> reqwest::header::HeaderMap {
        http::headers(
            &[],
            self.key
                .as_ref()
                .map(|k| ("x-goog-api-key", k.expose().to_string())),
        )
    }
}

/// The streaming URL for `model` (`gemini-2.5-flash` or `models/gemini-2.5-flash`).
pub fn stream_url(base: &str, model: &str) -> String {
    let model = model.strip_prefix("models/").unwrap_or(model);
    format!("{base}/models/{model}:streamGenerateContent?alt=sse")
}

/// The `streamGenerateContent` body: `contents` (User → role `user` with a text part; Assistant →
/// role `model` with a text part when not blank and a `functionCall {name, args}` part per call;
/// Tool → role `user` with `functionResponse {name, response: {"content": text}}` — `{"error": text}`
/// when the tool failed — named after the call with that id earlier in the conversation;
/// consecutive contents of one role merge), `systemInstruction` (all System messages joined, when
/// any), `generationConfig {maxOutputTokens, temperature, stopSequences}` and `tools:
/// [{functionDeclarations}]` (when any; parameters through [`gemini_schema`]). The model goes in
/// the URL, not the body.
pub fn chat_body(req: &ChatRequest, _model: &str) -> Value {
    let mut names: HashMap<&str, &str> = HashMap::new();
    let mut contents: Vec<(&'static str, Vec<Value>)> = Vec::new();
    let mut system = Vec::new();
    for m in &req.messages {
        let blank = m.content.trim().is_empty();
        let (role, parts) = match m.role {
            Role::System => {
                if !blank {
                    system.push(m.content.as_str());
                }
                continue;
            }
            Role::User if blank => continue,
            Role::User => ("user", vec![json!({"text": m.content})]),
            Role::Assistant => {
                let mut parts = Vec::new();
                if !blank {
                    parts.push(json!({"text": m.content}));
                }
                for c in &m.tool_calls {
                    names.insert(c.id.as_str(), c.name.as_str());
                    parts.push(
                        json!({"functionCall": {"name": c.name, "args": args(&c.arguments)}}),
                    );
                }
                ("model", parts)
            }
            Role::Tool => {
                let id = m.tool_call_id.as_deref().unwrap_or_default();
                let name = names.get(id).copied().unwrap_or(id);
                let key = if m.is_error { "error" } else { "content" };
                let response = json!({"name": name, "response": {key: m.content}});
                ("user", vec![json!({ "functionResponse": response })])
            }
        };
        if parts.is_empty() {
            continue;
        }
        match contents.last_mut() {
            Some((r, prev)) if *r == role => prev.extend(parts),
            _ => contents.push((role, parts)),
        }
    }
    let contents: Vec<Value> = contents
        .into_iter()
        .map(|(role, parts)| json!({"role": role, "parts": parts}))
        .collect();
    let mut config = json!({"maxOutputTokens": req.max_tokens, "temperature": req.temperature});
    if !req.stop.is_empty() {
        // Gemini takes at most 5 stop sequences (more is a 400)
        config["stopSequences"] = json!(req.stop.iter().take(5).collect::<Vec<_>>());
    }
    let mut body = json!({"contents": contents, "generationConfig": config});
    if !system.is_empty() {
        body["systemInstruction"] = json!({"parts": [{"text": system.join("\n\n")}]});
    }
    if !req.tools.is_empty() {
        let decls: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                let mut d = json!({"name": t.name, "description": t.description});
                let params = gemini_schema(&t.parameters);
                // an object without properties is rejected; a function without arguments has none
                if params["properties"]
                    .as_object()
                    .is_some_and(|p| !p.is_empty())
                {
                    d["parameters"] = params;
                }
                d
            })
            .collect();
        body["tools"] = json!([{ "functionDeclarations": decls }]);
    }
    body
}

/// A tool call's argument text as the `args` object: `{}` when blank, the parsed JSON, or
/// `{"_raw": text}` when it is not a JSON object.
fn args(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v) if v.is_object() => v,
        _ => json!({"_raw": arguments}),
    }
}

/// A JSON Schema reduced to the OpenAPI subset Gemini's function declarations accept, recursively:
/// local `$ref`s (`#/$defs/…`, `#/definitions/…`) are inlined, `oneOf` becomes `anyOf`, a type list
/// like `["string", "null"]` becomes `type` + `nullable`, and every other key (`$schema`,
/// `additionalProperties`, `$defs`, `const`, …) is dropped. Property names are kept as they are.
pub fn gemini_schema(schema: &Value) -> Value {
    strip(schema, schema, 0)
}

fn strip(node: &Value, root: &Value, depth: usize) -> Value {
    let Some(obj) = node.as_object() else {
        return node.clone();
    };
    if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
        let target = r
            .strip_prefix("#/$defs/")
            .map(|n| &root["$defs"][n])
            .or_else(|| {
                r.strip_prefix("#/definitions/")
                    .map(|n| &root["definitions"][n])
            });
        return match target {
            Some(t) if t.is_object() && depth < MAX_REF_DEPTH => strip(t, root, depth + 1),
            _ => json!({"type": "object"}),
        };
    }
    let mut out = Map::new();
    for (k, v) in obj {
        let k = if k == "oneOf" { "anyOf" } else { k.as_str() };
        if !SCHEMA_KEYS.contains(&k) {
            continue;
        }
        let v = match k {
            "properties" => Value::Object(
                v.as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, s)| (name.clone(), strip(s, root, depth)))
                    .collect(),
            ),
            "items" => strip(v, root, depth),
            "anyOf" => Value::Array(
                v.as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| strip(s, root, depth))
                    .collect(),
            ),
            "type" if v.is_array() => {
                let types: Vec<&str> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                if types.contains(&"null") {
                    out.insert("nullable".into(), json!(true));
                }
                match types.iter().find(|t| **t != "null") {
                    Some(t) => json!(t),
                    None => continue,
                }
            }
            _ => v.clone(),
        };
        if k == "properties" && v.as_object().is_some_and(Map::is_empty) {
            continue;
        }
        out.insert(k.to_string(), v);
    }
    Value::Object(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    #[serde(default)]
    candidates: Vec<Candidate>,
    usage_metadata: Option<UsageMetadata>,
    prompt_feedback: Option<PromptFeedback>,
    error: Option<WireError>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    content: Option<Content>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part {
    text: Option<String>,
    #[serde(default)]
    thought: bool,
    function_call: Option<FunctionCall>,
}

#[derive(Deserialize)]
struct FunctionCall {
    name: String,
    #[serde(default)]
    args: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    block_reason: Option<String>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: u32,
    #[serde(default)]
    cached_content_token_count: u32,
    #[serde(default)]
    candidates_token_count: u32,
    #[serde(default)]
    thoughts_token_count: u32,
}

#[derive(Deserialize)]
struct WireError {
    code: Option<u16>,
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
}

/// The stateful decoder of one `streamGenerateContent` stream: feed it each SSE `data` payload in
/// order. Text parts become [`Event::Text`] (thought parts are skipped); each `functionCall`
/// becomes a whole [`Event::ToolCall`] with a made-up id (`call_N`, N counting up across every
/// stream of the process, so that a conversation carried to another provider never has two calls
/// with one id — Anthropic refuses that)
/// and its `args` as JSON text. When `finishReason` arrives come one [`Event::Usage`] from the
/// latest `usageMetadata` (input = promptTokenCount, which includes the cached
/// cachedContentTokenCount; output = candidates + thoughts tokens) and one [`Event::Finish`]
/// (`STOP` → Stop, or ToolCalls when the stream made a call; `MAX_TOKENS` → Length; others Other).
#[derive(Default)]
pub struct Decoder {
    /// The id number of this stream's first call.
    base: u64,
    calls: u32,
    usage: Option<UsageMetadata>,
    done: bool,
}

impl Decoder {
    /// A decoder for a new stream.
    pub fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Decoder {
            // room for 1024 calls per stream
            base: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) * 1024,
            ..Decoder::default()
        }
    }

    /// Maps one `data` payload to events. Errors: an `error` object → its kind by `status`
    /// (RESOURCE_EXHAUSTED → RateLimited, UNAVAILABLE → Overloaded, DEADLINE_EXCEEDED → Timeout,
    /// INVALID_ARGUMENT → Invalid, PERMISSION_DENIED/UNAUTHENTICATED → Auth, others Unavailable);
    /// JSON that is not a response → Malformed.
    pub fn map(&mut self, data: &str) -> Result<Vec<Event>, ProviderError> {
        let data = data.trim();
        if data.is_empty() {
            return Ok(vec![]);
        }
        let r: Response = serde_json::from_str(data).map_err(|e| {
            ProviderError::new(
                ErrorKind::Malformed,
                format!(
                    "unexpected Gemini response ({e}): {}",
                    data.chars().take(120).collect::<String>()
                ),
            )
        })?;
        if let Some(err) = r.error {
            return Err(stream_error(err));
        }
        if r.usage_metadata.is_some() {
            self.usage = r.usage_metadata;
        }
        let mut out = Vec::new();
        let mut finish = None;
        if let Some(c) = r.candidates.into_iter().next() {
            for part in c.content.map(|c| c.parts).unwrap_or_default() {
                if let Some(f) = part.function_call {
                    let arguments = f.args.map_or_else(|| "{}".into(), |a| a.to_string());
                    out.push(Event::ToolCall(ToolCall {
                        id: format!("call_{}", self.base + u64::from(self.calls)),
                        name: f.name,
                        arguments,
                    }));
                    self.calls += 1;
                } else if let Some(text) = part.text.filter(|t| !t.is_empty() && !part.thought) {
                    out.push(Event::Text(text));
                }
            }
            finish = c.finish_reason.map(|r| match r.as_str() {
                "STOP" if self.calls > 0 => FinishReason::ToolCalls,
                "STOP" => FinishReason::Stop,
                "MAX_TOKENS" => FinishReason::Length,
                _ => FinishReason::Other,
            });
        } else if r.prompt_feedback.and_then(|p| p.block_reason).is_some() {
            finish = Some(FinishReason::Other); // the prompt itself was blocked
        }
        if let Some(f) = finish.filter(|_| !self.done) {
            self.done = true;
            if let Some(u) = self.usage {
                out.push(Event::Usage(Usage {
                    input_tokens: u.prompt_token_count,
                    cached_input_tokens: u.cached_content_token_count,
                    cache_write_tokens: 0,
                    output_tokens: u.candidates_token_count + u.thoughts_token_count,
                }));
            }
            out.push(Event::Finish(f));
        }
        Ok(out)
    }

    /// At the end of the response: `Err(Malformed)` when it stopped before a `finishReason`.
    pub fn end(&mut self) -> Result<Vec<Event>, ProviderError> {
        match self.done {
            true => Ok(vec![]),
            false => Err(ProviderError::new(
                ErrorKind::Malformed,
                "the Gemini stream was cut off before its finishReason",
            )),
        }
    }
}

fn stream_error(err: WireError) -> ProviderError {
    let kind = match err.status.as_str() {
        "RESOURCE_EXHAUSTED" => ErrorKind::RateLimited,
        "UNAVAILABLE" => ErrorKind::Overloaded,
        "DEADLINE_EXCEEDED" => ErrorKind::Timeout,
        "INVALID_ARGUMENT" => ErrorKind::Invalid,
        "PERMISSION_DENIED" | "UNAUTHENTICATED" => ErrorKind::Auth,
        _ => ErrorKind::Unavailable,
    };
    let mut e = ProviderError::new(
        kind,
        format!("Gemini stream error: {}: {}", err.status, err.message),
    );
    e.status = err.code;
    e
}

#[derive(Deserialize)]
struct Models {
    #[serde(default)]
    models: Vec<ModelEntry>,
}

#[derive(Deserialize)]
struct ModelEntry {
    name: String,
}

impl Provider for Gemini {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }

    fn chat(&self, req: ChatRequest) -> EventStream {
        let model = self.info.model().unwrap_or_default();
        let url = stream_url(&self.info.url, &model);
        let body = chat_body(&req, &model);
        let client = self.client.clone();
        let headers = self.headers();
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

    /// `GET {url}/models`: `Ok("model-id")` of the first model listed, without `models/`.
    fn probe(&self) -> futures_util::stream::BoxStream<'static, Result<String, ProviderError>> {
        let url = format!("{}/models", self.info.url);
        let client = self.client.clone();
        let headers = self.headers();
        futures_util::stream::once(async move {
            let resp = http::get(&client, &url, headers, Duration::from_secs(3)).await?;
            let models: Models = http::read_json(resp).await?;
            Ok(models
                .models
                .into_iter()
                .next()
                .map(|m| {
                    m.name
                        .strip_prefix("models/")
                        .unwrap_or(&m.name)
                        .to_string()
                })
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
mod tests {
    use super::*;
    use crate::core::llm::{Message, ToolSpec};
    use expect_test::expect;

    fn call(id: &str, name: &str, args: &str) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: name.into(),
            arguments: args.into(),
        }
    }

    fn render(body: &Value) -> String {
        let mut s = String::new();
        for (k, v) in body.as_object().unwrap() {
            let lines = v
                .as_array()
                .filter(|_| k == "contents")
                .map(|items| items.iter().map(|m| format!("\n  {m}")).collect::<String>());
            s += &format!("{k}:{}\n", lines.unwrap_or_else(|| format!(" {v}")));
        }
        s
    }

    #[test]
    fn body_shape_merges_roles_and_names_function_responses() {
        let req = ChatRequest {
            messages: vec![
                Message::system("Be brief."),
                Message::user("Weather in Paris and Rome?"),
                Message::assistant_calls(
                    "Checking.",
                    vec![
                        call("call_0", "get_weather", r#"{"city":"Paris"}"#),
                        call("call_1", "get_time", ""),
                    ],
                ),
                Message::tool_result("call_0", "18C", false),
                Message::tool_result("call_1", "timeout", true),
                Message::user("Thanks"),
            ],
            max_tokens: 100,
            temperature: 0.5,
            stop: vec!["END".into()],
            tools: vec![
                ToolSpec {
                    name: "get_weather".into(),
                    description: "Weather for a city".into(),
                    parameters: json!({"$schema": "https://json-schema.org/draft/2020-12/schema",
                        "type": "object", "additionalProperties": false, "required": ["city"],
                        "properties": {"city": {"type": "string", "description": "City"}}}),
                },
                ToolSpec {
                    name: "get_time".into(),
                    description: "Time now".into(),
                    parameters: json!({"type": "object", "properties": {}}),
                },
            ]
            .into(),
        };
        expect![[r#"
            contents:
              {"parts":[{"text":"Weather in Paris and Rome?"}],"role":"user"}
              {"parts":[{"text":"Checking."},{"functionCall":{"args":{"city":"Paris"},"name":"get_weather"}},{"functionCall":{"args":{},"name":"get_time"}}],"role":"model"}
              {"parts":[{"functionResponse":{"name":"get_weather","response":{"content":"18C"}}},{"functionResponse":{"name":"get_time","response":{"error":"timeout"}}},{"text":"Thanks"}],"role":"user"}
            generationConfig: {"maxOutputTokens":100,"stopSequences":["END"],"temperature":0.5}
            systemInstruction: {"parts":[{"text":"Be brief."}]}
            tools: [{"functionDeclarations":[{"description":"Weather for a city","name":"get_weather","parameters":{"properties":{"city":{"description":"City","type":"string"}},"required":["city"],"type":"object"}},{"description":"Time now","name":"get_time"}]}]
        "#]]
        .assert_eq(&render(&chat_body(&req, "m")));
        let plain = chat_body(&ChatRequest::new(vec![Message::user("hi")], 5, 0.0), "m");
        assert!(plain.get("tools").is_none() && plain.get("systemInstruction").is_none());
        assert!(plain["generationConfig"].get("stopSequences").is_none());
    }

    #[test]
    fn schema_is_stripped_recursively() {
        let schema = json!({
            "$schema": "x", "type": "object", "additionalProperties": false,
            "$defs": {"Pt": {"type": "object", "properties": {"x": {"type": "number", "default": 0}},
                             "additionalProperties": false}},
            "properties": {
                "additionalProperties": {"type": ["string", "null"], "const": "a"},
                "points": {"type": "array", "items": {"$ref": "#/$defs/Pt"}},
                "mode": {"oneOf": [{"type": "string", "enum": ["a", "b"]}, {"type": "integer",
                         "exclusiveMinimum": 0}], "format": "x"},
                "opts": {"type": "object", "properties": {}}
            },
            "required": ["points"]
        });
        expect![[r#"{"properties":{"additionalProperties":{"nullable":true,"type":"string"},"mode":{"anyOf":[{"enum":["a","b"],"type":"string"},{"type":"integer"}],"format":"x"},"opts":{"type":"object"},"points":{"items":{"properties":{"x":{"default":0,"type":"number"}},"type":"object"},"type":"array"}},"required":["points"],"type":"object"}"#]]
            .assert_eq(&gemini_schema(&schema).to_string());
        let recursive = json!({"$defs": {"N": {"type": "object", "properties": {"next": {"$ref": "#/$defs/N"}}}},
                               "$ref": "#/$defs/N"});
        assert!(
            gemini_schema(&recursive).to_string().len() < 2000,
            "recursion is cut"
        );
    }

    #[test]
    fn url_does_not_double_models() {
        let base = "https://generativelanguage.googleapis.com/v1beta";
        let want = format!("{base}/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
        assert_eq!(stream_url(base, "gemini-2.5-flash"), want);
        assert_eq!(stream_url(base, "models/gemini-2.5-flash"), want);
    }

    fn decode(frames: &[&str]) -> (Vec<Event>, Option<ProviderError>) {
        let (mut d, mut out) = (Decoder::default(), Vec::new());
        let err = frames
            .iter()
            .find_map(|f| d.map(f).map(|evs| out.extend(evs)).err());
        (out, err)
    }

    #[test]
    fn decodes_text_thoughts_calls_usage_and_finish() {
        let (events, err) = decode(&[
            r#"{"candidates":[{"content":{"parts":[{"text":"plan quietly","thought":true}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":40,"totalTokenCount":40}}"#,
            r#"{"candidates":[{"content":{"parts":[{"text":"Let me check"}],"role":"model"},"index":0}]}"#,
            r#"{"candidates":[{"content":{"parts":[{"text":" both."},{"functionCall":{"name":"get_weather","args":{"city":"Paris"}}},{"functionCall":{"name":"now"}}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":40,"cachedContentTokenCount":32,"candidatesTokenCount":12,"thoughtsTokenCount":7,"totalTokenCount":59}}"#,
        ]);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(
            events,
            vec![
                Event::Text("Let me check".into()),
                Event::Text(" both.".into()),
                Event::ToolCall(call("call_0", "get_weather", r#"{"city":"Paris"}"#)),
                Event::ToolCall(call("call_1", "now", "{}")),
                Event::Usage(Usage {
                    input_tokens: 40,
                    cached_input_tokens: 32,
                    cache_write_tokens: 0,
                    output_tokens: 19,
                }),
                Event::Finish(FinishReason::ToolCalls),
            ]
        );
        for (reason, want) in [
            ("STOP", FinishReason::Stop),
            ("MAX_TOKENS", FinishReason::Length),
            ("SAFETY", FinishReason::Other),
            ("RECITATION", FinishReason::Other),
        ] {
            let f = format!(
                r#"{{"candidates":[{{"content":{{"parts":[{{"text":"x"}}]}},"finishReason":"{reason}"}}]}}"#
            );
            assert_eq!(decode(&[&f]).0[1], Event::Finish(want), "{reason}");
        }
        let blocked =
            r#"{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":5}}"#;
        assert_eq!(decode(&[blocked]).0[1], Event::Finish(FinishReason::Other));
        assert_eq!(Decoder::new().end().unwrap_err().kind, ErrorKind::Malformed);
    }

    #[test]
    fn errors_in_the_stream_map_by_status() {
        for (status, kind) in [
            ("RESOURCE_EXHAUSTED", ErrorKind::RateLimited),
            ("UNAVAILABLE", ErrorKind::Overloaded),
            ("DEADLINE_EXCEEDED", ErrorKind::Timeout),
            ("INVALID_ARGUMENT", ErrorKind::Invalid),
            ("PERMISSION_DENIED", ErrorKind::Auth),
            ("UNAUTHENTICATED", ErrorKind::Auth),
            ("INTERNAL", ErrorKind::Unavailable),
        ] {
            let f = format!(r#"{{"error":{{"code":503,"message":"m","status":"{status}"}}}}"#);
            let e = decode(&[&f]).1.unwrap();
            assert_eq!((e.kind, e.status), (kind, Some(503)), "{status}");
        }
        let (events, e) = decode(&[
            r#"{"candidates":[{"content":{"parts":[{"text":"Hi"}]}}]}"#,
            "[{not json",
        ]);
        assert_eq!(events, vec![Event::Text("Hi".into())]);
        assert_eq!(e.unwrap().kind, ErrorKind::Malformed);
    }
}
