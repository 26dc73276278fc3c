//! OpenAI chat completions over SSE — api.openai.com, the cloud presets that speak it (xAI, Groq,
//! Mistral, DeepSeek, OpenRouter), the local OpenAI-compatible servers (LM Studio, vLLM, and
//! llama.cpp's llama-server, see `llamacpp`), and Azure OpenAI's wire (see `azure`).
//!
//! Wire: `POST {base}/chat/completions` with `stream: true` and `stream_options.include_usage`;
//! events are `data: {chunk}` lines ending with `data: [DONE]`; the usage chunk has empty
//! `choices`; an `{"error": …}` object can arrive inside a 200 stream. `{base}` is the configured
//! URL with `/v1` appended when it does not already end in a version segment.
//!
//! Tool calls stream in pieces keyed by `index`: the first piece of a call carries its `id` and
//! `function.name`, later ones append to `function.arguments`. [`Decoder`] assembles them and
//! emits each call once, in index order, when the choice's `finish_reason` arrives (or at
//! `[DONE]` / the end of the stream, whichever comes first).
//!
//! The presets differ in a few request details; those are data, in [`PRESETS`]. FIM is native for
//! Mistral (`POST {base}/fim/completions`, chat-shaped chunks) and DeepSeek (`POST
//! {host}/beta/completions`, legacy completion chunks with `choices[].text`); the other kinds ask
//! for the middle through a chat prompt (`prompt::fim_as_chat`).

use std::time::Duration;

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::{ProviderConfig, ProviderKind};
use crate::core::llm::{ChatRequest, FimRequest, Message, ProviderError, Role};
use crate::core::prompt;
use crate::providers::{EventStream, Provider, ProviderInfo, Secret, http};

mod decode;
pub use decode::{Decoder, map_chunk};

/// Where FIM requests go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fim {
    /// Through a chat prompt (`prompt::fim_as_chat`).
    Chat,
    /// Mistral's `POST {base}/fim/completions` (Codestral).
    Mistral,
    /// DeepSeek's `POST {host}/beta/completions` (legacy completions with `suffix`).
    DeepSeek,
}

/// The request details in which an OpenAI-compatible provider departs from api.openai.com's
/// defaults. Plain data: one row per kind in [`PRESETS`]; Azure builds its own (see `azure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    /// Send `stream_options.include_usage` (Mistral rejects the field with HTTP 422 and reports
    /// usage in its last chunk anyway).
    pub stream_usage: bool,
    /// The name of the generated-token limit: `max_tokens`, or `max_completion_tokens` where the
    /// former is deprecated (api.openai.com: reasoning models reject `max_tokens`).
    pub max_tokens_field: &'static str,
    /// Headers sent with every request (lowercase names); pairs with an empty value are skipped.
    pub headers: &'static [(&'static str, &'static str)],
    /// Tool-call ids must be 9 ASCII letters or digits (Mistral rejects others with HTTP 400), so
    /// ids made by other providers are mapped to such ids, the same id always to the same one.
    pub short_tool_ids: bool,
    pub fim: Fim,
}

impl Preset {
    /// The defaults: api.openai.com's chat completions as the compatible servers implement them.
    pub const DEFAULT: Preset = Preset {
        stream_usage: true,
        max_tokens_field: "max_tokens",
        headers: &[],
        short_tool_ids: false,
        fim: Fim::Chat,
    };
}

/// The repository URL from Cargo.toml, sent to OpenRouter as `HTTP-Referer` (its app ranking keys
/// on it); skipped while Cargo.toml names none.
const ZEKE_REFERER: &str = env!("CARGO_PKG_REPOSITORY");

/// Every OpenAI-compatible kind that departs from [`Preset::DEFAULT`]; URLs and key variables come
/// from `ProviderKind::default_url` / `default_key_env`, models from `default_model`.
pub const PRESETS: &[(ProviderKind, Preset)] = &[
    (
        ProviderKind::Openai,
        Preset {
            max_tokens_field: "max_completion_tokens",
            ..Preset::DEFAULT
        },
    ),
    (
        ProviderKind::Mistral,
        Preset {
            stream_usage: false,
            short_tool_ids: true,
            fim: Fim::Mistral,
            ..Preset::DEFAULT
        },
    ),
    (
        ProviderKind::Deepseek,
        Preset {
            fim: Fim::DeepSeek,
            ..Preset::DEFAULT
        },
    ),
    (
        ProviderKind::Openrouter,
        Preset {
            headers: &[("http-referer", ZEKE_REFERER), ("x-title", "Zeke")],
            ..Preset::DEFAULT
        },
    ),
];

/// The preset of `kind` ([`Preset::DEFAULT`] for kinds without a row).
pub fn preset(kind: ProviderKind) -> Preset {
    PRESETS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, p)| *p)
        .unwrap_or(Preset::DEFAULT)
}

/// Whether providers of `kind` answer FIM requests natively (a FIM endpoint, not a chat prompt):
/// Mistral, DeepSeek and Ollama. llama-server's `/infill` depends on the loaded model: see
/// `LlamaCpp::native_fim`, which knows once `/props` or a first FIM request told.
pub fn native_fim(kind: ProviderKind) -> bool {
    match kind {
        ProviderKind::Ollama => true,
        k => preset(k).fim != Fim::Chat,
    }
}

pub struct OpenAi {
    info: ProviderInfo,
    key: Option<Secret>,
    client: reqwest::Client,
    preset: Preset,
}

impl OpenAi {
    pub fn new(cfg: &ProviderConfig, key: Option<Secret>, client: reqwest::Client) -> Self {
        let info = ProviderInfo::new(cfg);
        if let Some(m) = cfg.kind.default_model() {
            info.learn_model(m); // only when none is configured
        }
        // kind = "openai" also names other OpenAI-compatible servers: OpenAI's own quirks
        // (`max_completion_tokens`) only for OpenAI's endpoint
        let official = cfg.kind != ProviderKind::Openai || cfg.url.contains("api.openai.com");
        OpenAi {
            info,
            key,
            client,
            preset: if official {
                preset(cfg.kind)
            } else {
                Preset::DEFAULT
            },
        }
    }

    fn headers(&self) -> reqwest::header::HeaderMap {
        let mut pairs = vec![("accept", "text/event-stream")];
        pairs.extend(self.preset.headers.iter().filter(|(_, v)| !v.is_empty()));
        http::headers(
            &pairs,
            self.key
                .as_ref()
                .map(|k| ("authorization", format!("Bearer {}", k.expose()))),
        )
    }
}

/// `{url}/v1` unless `url` already ends in a version segment like `/v1`.
pub fn versioned_base(url: &str) -> String {
    let last = url.rsplit('/').next().unwrap_or("");
    let versioned =
        last.len() >= 2 && last.starts_with('v') && last[1..].chars().all(|c| c.is_ascii_digit());
    if versioned {
        url.to_string()
    } else {
        format!("{url}/v1")
    }
}

/// The native FIM endpoint of `kind` at `url` (`None` for kinds that FIM through chat):
/// Mistral `{base}/fim/completions`; DeepSeek `{url without /v1 or /beta}/beta/completions`.
pub fn fim_url(kind: ProviderKind, url: &str) -> Option<String> {
    match preset(kind).fim {
        Fim::Chat => None,
        Fim::Mistral => Some(format!("{}/fim/completions", versioned_base(url))),
        Fim::DeepSeek => {
            let url = url.trim_end_matches('/');
            let host = url
                .strip_suffix("/v1")
                .or_else(|| url.strip_suffix("/beta"))
                .unwrap_or(url);
            Some(format!("{host}/beta/completions"))
        }
    }
}

/// The request body for a streamed chat completion: the whole conversation (assistant tool calls
/// with `content: null` when the turn has no text, tool results as `role: "tool"` messages) and
/// the tools when there are any.
pub fn chat_body(req: &ChatRequest, model: Option<&str>, preset: &Preset) -> Value {
    let id = |id: &str| {
        if preset.short_tool_ids {
            short_tool_id(id)
        } else {
            id.to_string()
        }
    };
    let messages: Vec<Value> = req.messages.iter().map(|m| message(m, &id)).collect();
    let mut body = json!({
        "messages": messages,
        "temperature": req.temperature,
        "stream": true,
    });
    body[preset.max_tokens_field] = json!(req.max_tokens);
    if preset.stream_usage {
        body["stream_options"] = json!({"include_usage": true});
    }
    if let Some(model) = model {
        body["model"] = json!(model);
    }
    if !req.stop.is_empty() {
        body["stop"] = json!(req.stop);
    }
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

fn message(m: &Message, id: &dyn Fn(&str) -> String) -> Value {
    match m.role {
        Role::Assistant if !m.tool_calls.is_empty() => {
            let calls: Vec<Value> = m
                .tool_calls
                .iter()
                .map(|c| {
                    let args = if c.arguments.trim().is_empty() {
                        "{}"
                    } else {
                        &c.arguments
                    };
                    json!({"id": id(&c.id), "type": "function",
                           "function": {"name": c.name, "arguments": args}})
                })
                .collect();
            let content = if m.content.is_empty() {
                Value::Null
            } else {
                json!(m.content)
            };
            json!({"role": "assistant", "content": content, "tool_calls": calls})
        }
        Role::Tool => json!({
            "role": "tool",
            "tool_call_id": id(m.tool_call_id.as_deref().unwrap_or("")),
            "content": m.content,
        }),
        role => json!({"role": role.as_str(), "content": m.content}),
    }
}

/// A tool-call id of 9 ASCII letters and digits (Mistral's rule): such ids are kept, any other is
/// mapped by a hash, so a call and the result answering it map alike.
pub fn short_tool_id(id: &str) -> String {
    if id.len() == 9 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return id.to_string();
    }
    const DIGITS: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    // FNV-1a, 64 bit: stable across runs and builds (unlike std's RandomState)
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (0..9)
        .map(|_| {
            let c = DIGITS[(h % 62) as usize] as char;
            h /= 62;
            c
        })
        .collect()
}

/// The body for Mistral's `POST /v1/fim/completions` (chat-completion-shaped stream chunks).
pub fn mistral_fim_body(req: &FimRequest, model: Option<&str>) -> Value {
    let mut body = json!({
        "prompt": req.prefix,
        "suffix": req.suffix,
        "max_tokens": req.max_tokens,
        "temperature": 0.1,
        "stream": true,
    });
    if let Some(m) = model {
        body["model"] = json!(m);
    }
    if !req.stop.is_empty() {
        body["stop"] = json!(req.stop);
    }
    body
}

/// DeepSeek FIM answers at most this many tokens.
const DEEPSEEK_FIM_MAX_TOKENS: u32 = 4096;

/// The body for DeepSeek's `POST /beta/completions` (legacy completion stream chunks).
pub fn deepseek_fim_body(req: &FimRequest, model: Option<&str>) -> Value {
    let mut body = json!({
        "prompt": req.prefix,
        "suffix": req.suffix,
        "max_tokens": req.max_tokens.min(DEEPSEEK_FIM_MAX_TOKENS),
        "temperature": 0.1,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if let Some(m) = model {
        body["model"] = json!(m);
    }
    if !req.stop.is_empty() {
        body["stop"] = json!(req.stop);
    }
    body
}

/// POSTs `body` and streams the SSE answer through a [`Decoder`]. Shared with `azure`.
pub fn stream_chat(
    client: &reqwest::Client,
    url: String,
    headers: reqwest::header::HeaderMap,
    body: Value,
) -> EventStream {
    let client = client.clone();
    http::stream_decoded(
        async move { http::post_json(&client, &url, headers, &body).await },
        http::sse_data,
        Decoder::new(),
    )
}

impl Provider for OpenAi {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }

    fn chat(&self, req: ChatRequest) -> EventStream {
        let url = format!("{}/chat/completions", versioned_base(&self.info.url));
        let body = chat_body(&req, self.info.model().as_deref(), &self.preset);
        stream_chat(&self.client, url, self.headers(), body)
    }

    fn fim(&self, req: FimRequest) -> EventStream {
        let model = self.info.model();
        let body = match self.preset.fim {
            Fim::Chat => return self.chat(prompt::fim_as_chat(&req)),
            Fim::Mistral => mistral_fim_body(&req, model.as_deref()),
            Fim::DeepSeek => deepseek_fim_body(&req, model.as_deref()),
        };
        let url = fim_url(self.info.kind, &self.info.url).expect("native FIM has a URL");
        stream_chat(&self.client, url, self.headers(), body)
    }

    fn probe(&self) -> futures_util::stream::BoxStream<'static, Result<String, ProviderError>> {
        probe_models(&self.client, &self.info.url, self.headers())
    }

    fn native_fim(&self) -> bool {
        self.preset.fim != Fim::Chat
    }
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

/// `GET {base}/models`: `Ok("model-id")` of the first model listed. Shared by OpenAI-compatible
/// adapters.
pub fn probe_models(
    client: &reqwest::Client,
    url: &str,
    headers: reqwest::header::HeaderMap,
) -> futures_util::stream::BoxStream<'static, Result<String, ProviderError>> {
    let url = format!("{}/models", versioned_base(url));
    let client = client.clone();
    futures_util::stream::once(async move { first_model(&client, &url, headers).await }).boxed()
}

/// `GET url` (an OpenAI-style model list): the first model's id, `""` when the list is empty.
pub async fn first_model(
    client: &reqwest::Client,
    url: &str,
    headers: reqwest::header::HeaderMap,
) -> Result<String, ProviderError> {
    let resp = http::get(client, url, headers, Duration::from_secs(3)).await?;
    let models: Models = http::read_json(resp).await?;
    Ok(models
        .data
        .into_iter()
        .next()
        .map(|m| m.id)
        .unwrap_or_default())
}

#[cfg(test)]
fn test_call(id: &str, name: &str, args: &str) -> crate::core::llm::ToolCall {
    crate::core::llm::ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: args.into(),
    }
}

/// A conversation with a tool round trip: the shapes every adapter maps.
#[cfg(test)]
pub(crate) fn tool_conversation() -> ChatRequest {
    ChatRequest {
        messages: vec![
            Message::system("Be brief."),
            Message::user("Weather in Paris and Oslo?"),
            Message::assistant_calls(
                "",
                vec![
                    test_call("call_a1", "get_weather", r#"{"city":"Paris"}"#),
                    test_call("call_b2", "get_weather", ""),
                ],
            ),
            Message::tool_result("call_a1", "18 C, sunny", false),
            Message::tool_result("call_b2", "no such city", true),
            Message::assistant("Paris is sunny."),
        ],
        max_tokens: 64,
        temperature: 0.2,
        stop: vec![],
        tools: vec![crate::core::llm::ToolSpec {
            name: "get_weather".into(),
            description: "Current weather of a city".into(),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}},
                               "required": ["city"]}),
        }]
        .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    #[test]
    fn versioned_base_appends_v1_once() {
        assert_eq!(
            versioned_base("http://127.0.0.1:8080"),
            "http://127.0.0.1:8080/v1"
        );
        assert_eq!(
            versioned_base("https://api.openai.com/v1"),
            "https://api.openai.com/v1"
        );
        assert_eq!(versioned_base("https://x/api/v2"), "https://x/api/v2");
        assert_eq!(
            versioned_base("http://h/status/500"),
            "http://h/status/500/v1"
        );
    }

    #[test]
    fn body_shape() {
        let req = ChatRequest {
            messages: vec![Message::user("hi")],
            max_tokens: 5,
            temperature: 0.5,
            stop: vec!["\n\n".into()],
            tools: Default::default(),
        };
        let b = chat_body(&req, Some("m"), &Preset::DEFAULT);
        assert_eq!(b["messages"][0]["role"], "user");
        assert_eq!(b["stream"], true);
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert_eq!(b["stop"][0], "\n\n");
        assert_eq!(b["model"], "m");
        assert_eq!(b["max_tokens"], 5);
        assert!(b.get("tools").is_none(), "no empty tools array");
        assert!(
            chat_body(&req, None, &Preset::DEFAULT)
                .get("model")
                .is_none()
        );
    }

    #[test]
    fn tool_conversation_body() {
        let b = chat_body(
            &tool_conversation(),
            Some("gpt-4o-mini"),
            &preset(ProviderKind::Openai),
        );
        expect![[r#"
            {
              "max_completion_tokens": 64,
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
                  "content": null,
                  "role": "assistant",
                  "tool_calls": [
                    {
                      "function": {
                        "arguments": "{\"city\":\"Paris\"}",
                        "name": "get_weather"
                      },
                      "id": "call_a1",
                      "type": "function"
                    },
                    {
                      "function": {
                        "arguments": "{}",
                        "name": "get_weather"
                      },
                      "id": "call_b2",
                      "type": "function"
                    }
                  ]
                },
                {
                  "content": "18 C, sunny",
                  "role": "tool",
                  "tool_call_id": "call_a1"
                },
                {
                  "content": "no such city",
                  "role": "tool",
                  "tool_call_id": "call_b2"
                },
                {
                  "content": "Paris is sunny.",
                  "role": "assistant"
                }
              ],
              "model": "gpt-4o-mini",
              "stream": true,
              "stream_options": {
                "include_usage": true
              },
              "temperature": 0.20000000298023224,
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
    fn presets_are_data() {
        let req = tool_conversation();
        // Mistral: no stream_options, 9-character tool ids, the same for a call and its result
        let b = chat_body(&req, None, &preset(ProviderKind::Mistral));
        assert!(b.get("stream_options").is_none());
        assert_eq!(b["max_tokens"], 64);
        let id = b["messages"][2]["tool_calls"][0]["id"].as_str().unwrap();
        assert_eq!(id.len(), 9);
        assert!(id.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(b["messages"][3]["tool_call_id"], id);
        assert_ne!(b["messages"][4]["tool_call_id"], id);
        assert_eq!(short_tool_id("Ab3dE6gH9"), "Ab3dE6gH9");
        // the others keep ids
        for kind in [
            ProviderKind::Xai,
            ProviderKind::Groq,
            ProviderKind::Deepseek,
        ] {
            let b = chat_body(&req, None, &preset(kind));
            assert_eq!(b["messages"][2]["tool_calls"][0]["id"], "call_a1");
            assert_eq!(b["stream_options"]["include_usage"], true);
            assert_eq!(b["max_tokens"], 64);
        }
        let or = preset(ProviderKind::Openrouter);
        assert!(or.headers.contains(&("x-title", "Zeke")));
        assert!(or.headers.iter().any(|(k, _)| *k == "http-referer"));
        assert!(native_fim(ProviderKind::Mistral) && native_fim(ProviderKind::Deepseek));
        assert!(native_fim(ProviderKind::Ollama));
        assert!(!native_fim(ProviderKind::Openai) && !native_fim(ProviderKind::Groq));
    }

    #[test]
    fn fim_urls_and_bodies() {
        assert_eq!(
            fim_url(ProviderKind::Mistral, "https://api.mistral.ai/v1").as_deref(),
            Some("https://api.mistral.ai/v1/fim/completions")
        );
        assert_eq!(
            fim_url(ProviderKind::Mistral, "https://codestral.mistral.ai").as_deref(),
            Some("https://codestral.mistral.ai/v1/fim/completions")
        );
        for url in [
            "https://api.deepseek.com",
            "https://api.deepseek.com/",
            "https://api.deepseek.com/v1",
            "https://api.deepseek.com/beta",
        ] {
            assert_eq!(
                fim_url(ProviderKind::Deepseek, url).as_deref(),
                Some("https://api.deepseek.com/beta/completions"),
                "{url}"
            );
        }
        assert_eq!(
            fim_url(ProviderKind::Openai, "https://api.openai.com/v1"),
            None
        );
        let req = FimRequest {
            prefix: "def fib(a):".into(),
            suffix: "    return fib(a-1) + fib(a-2)".into(),
            language: "python".into(),
            path: "f.py".into(),
            max_tokens: 9000,
            stop: vec!["\n\n".into()],
        };
        expect![[r#"{"max_tokens":9000,"model":"codestral-latest","prompt":"def fib(a):","stop":["\n\n"],"stream":true,"suffix":"    return fib(a-1) + fib(a-2)","temperature":0.1}"#]]
            .assert_eq(&mistral_fim_body(&req, Some("codestral-latest")).to_string());
        expect![[r#"{"max_tokens":4096,"model":"deepseek-chat","prompt":"def fib(a):","stop":["\n\n"],"stream":true,"stream_options":{"include_usage":true},"suffix":"    return fib(a-1) + fib(a-2)","temperature":0.1}"#]]
            .assert_eq(&deepseek_fim_body(&req, Some("deepseek-chat")).to_string());
    }
}
