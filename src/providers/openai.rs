//! OpenAI chat completions over SSE — api.openai.com, and the OpenAI-compatible servers
//! (llama.cpp's llama-server, LM Studio, vLLM).
//!
//! Wire: `POST {base}/chat/completions` with `stream: true` and `stream_options.include_usage`;
//! events are `data: {chunk}` lines ending with `data: [DONE]`; the usage chunk has empty
//! `choices`; an `{"error": …}` object can arrive inside a 200 stream. `{base}` is the configured
//! URL with `/v1` appended when it does not already end in a version segment.

use std::time::Duration;

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::{ProviderConfig, ProviderKind};
use crate::core::llm::{
    ChatRequest, ErrorKind, Event, FimRequest, FinishReason, ProviderError, Usage,
};
use crate::core::prompt;
use crate::providers::{EventStream, Provider, ProviderInfo, Secret, http};

/// Default model for api.openai.com when the config names none.
const DEFAULT_OPENAI_MODEL: &str = "gpt-4o-mini";

pub struct OpenAi {
    info: ProviderInfo,
    key: Option<Secret>,
    client: reqwest::Client,
}

impl OpenAi {
    pub fn new(cfg: &ProviderConfig, key: Option<Secret>, client: reqwest::Client) -> Self {
        let info = ProviderInfo::new(cfg);
        if cfg.kind == ProviderKind::Openai {
            info.learn_model(DEFAULT_OPENAI_MODEL);
        }
        OpenAi { info, key, client }
    }

    fn headers(&self) -> reqwest::header::HeaderMap {
        http::headers(
            &[("accept", "text/event-stream")],
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

/// The request body for a streamed chat completion.
pub fn chat_body(req: &ChatRequest, model: Option<&str>) -> Value {
    let messages: Vec<Value> = req
        .messages
        .iter()
        .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
        .collect();
    let mut body = json!({
        "messages": messages,
        "max_tokens": req.max_tokens,
        "temperature": req.temperature,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if let Some(model) = model {
        body["model"] = json!(model);
    }
    if !req.stop.is_empty() {
        body["stop"] = json!(req.stop);
    }
    body
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<WireUsage>,
    error: Option<WireError>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Delta,
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct Delta {
    content: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u32,
    #[serde(default)]
    completion_tokens: u32,
}

#[derive(Deserialize)]
struct WireError {
    #[serde(default)]
    message: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    code: Option<Value>,
}

/// Maps one SSE `data` payload to events. `[DONE]` maps to no events (the stream then ends).
pub fn map_chunk(data: &str) -> Result<Vec<Event>, ProviderError> {
    let data = data.trim();
    if data == "[DONE]" || data.is_empty() {
        return Ok(vec![]);
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
    if let Some(err) = chunk.error {
        return Err(stream_error(err));
    }
    let mut events = Vec::new();
    for choice in chunk.choices.into_iter().take(1) {
        if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
            events.push(Event::Text(text));
        }
        if let Some(reason) = choice.finish_reason {
            events.push(Event::Finish(finish_reason(&reason)));
        }
    }
    if let Some(u) = chunk.usage {
        events.push(Event::Usage(Usage::new(u.prompt_tokens, u.completion_tokens)));
    }
    Ok(events)
}

fn finish_reason(r: &str) -> FinishReason {
    match r {
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        _ => FinishReason::Other,
    }
}

fn stream_error(err: WireError) -> ProviderError {
    let kind_s = err.kind.unwrap_or_default();
    let code = err.code.map(|c| c.to_string()).unwrap_or_default();
    let text = format!("{kind_s} {code} {}", err.message).to_ascii_lowercase();
    let kind = if text.contains("overload") {
        ErrorKind::Overloaded
    } else if text.contains("rate") && text.contains("limit") {
        ErrorKind::RateLimited
    } else if text.contains("context") {
        ErrorKind::ContextTooLarge
    } else {
        ErrorKind::Unavailable
    };
    ProviderError::new(kind, format!("provider error in stream: {}", err.message))
}

impl Provider for OpenAi {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }

    fn chat(&self, req: ChatRequest) -> EventStream {
        let url = format!("{}/chat/completions", versioned_base(&self.info.url));
        let body = chat_body(&req, self.info.model().as_deref());
        let client = self.client.clone();
        let headers = self.headers();
        http::stream_events(
            async move { http::post_json(&client, &url, headers, &body).await },
            http::sse_data,
            map_chunk,
        )
    }

    fn fim(&self, req: FimRequest) -> EventStream {
        self.chat(prompt::fim_as_chat(&req))
    }

    fn probe(&self) -> futures_util::stream::BoxStream<'static, Result<String, ProviderError>> {
        probe_models(&self.client, &self.info.url, self.headers())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::llm::Message;

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
            tools: Vec::new(),
        };
        let b = chat_body(&req, Some("m"));
        assert_eq!(b["messages"][0]["role"], "user");
        assert_eq!(b["stream"], true);
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert_eq!(b["stop"][0], "\n\n");
        assert_eq!(b["model"], "m");
        assert!(chat_body(&req, None).get("model").is_none());
    }

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
        assert_eq!(
            map_chunk("{not json").unwrap_err().kind,
            ErrorKind::Malformed
        );
    }
}
