//! Ollama's native API over NDJSON: `POST /api/chat` for chat, `POST /api/generate` with `suffix`
//! for FIM, `GET /api/tags` to probe and learn a model.
//!
//! Each line is a JSON object: `{"message": {"content": …}, "done": false}` (chat) or
//! `{"response": …, "done": false}` (generate); the last has `"done": true`, `done_reason`,
//! `prompt_eval_count` and `eval_count` (durations are nanoseconds); an `{"error": …}` line ends the
//! stream with an error. A full queue answers HTTP 503.

use std::time::Duration;

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::ProviderConfig;
use crate::core::llm::{
    ChatRequest, ErrorKind, Event, FimRequest, FinishReason, ProviderError, Usage,
};
use crate::providers::{EventStream, Provider, ProviderInfo, http};

pub struct Ollama {
    info: ProviderInfo,
    client: reqwest::Client,
}

impl Ollama {
    pub fn new(cfg: &ProviderConfig, client: reqwest::Client) -> Self {
        Ollama {
            info: ProviderInfo::new(cfg),
            client,
        }
    }

    fn model_or_err(&self) -> Result<String, ProviderError> {
        self.info.model().ok_or_else(|| {
            ProviderError::new(ErrorKind::Invalid, format!("no model for Ollama at {}: set providers.{}.model or pull one (`ollama pull …`)", self.info.url, self.info.name))
        })
    }

    fn stream(&self, path: &str, body: Result<Value, ProviderError>) -> EventStream {
        let body = match body {
            Ok(b) => b,
            Err(e) => return futures_util::stream::iter([Err(e)]).boxed(),
        };
        let url = format!("{}{path}", self.info.url);
        let client = self.client.clone();
        http::stream_events(
            async move { http::post_json(&client, &url, http::headers(&[], None), &body).await },
            http::ndjson_lines,
            map_line,
        )
    }
}

fn options(max_tokens: u32, temperature: f32, stop: &[String]) -> Value {
    let mut o = json!({"num_predict": max_tokens, "temperature": temperature});
    if !stop.is_empty() {
        o["stop"] = json!(stop);
    }
    o
}

/// The `/api/chat` request body.
pub fn chat_body(req: &ChatRequest, model: &str) -> Value {
    let messages: Vec<Value> = req
        .messages
        .iter()
        .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
        .collect();
    json!({"model": model, "messages": messages, "stream": true, "options": options(req.max_tokens, req.temperature, &req.stop)})
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
}

/// Maps one NDJSON line of `/api/chat` or `/api/generate` to events.
pub fn map_line(line: &str) -> Result<Vec<Event>, ProviderError> {
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
    let text = l
        .message
        .map(|m| m.content)
        .or(l.response)
        .unwrap_or_default();
    if !text.is_empty() {
        ev.push(Event::Text(text));
    }
    if l.done {
        if l.prompt_eval_count.is_some() || l.eval_count.is_some() {
            ev.push(Event::Usage(Usage::new(l.prompt_eval_count.unwrap_or(0), l.eval_count.unwrap_or(0))));
        }
        ev.push(Event::Finish(match l.done_reason.as_deref() {
            Some("stop") | None => FinishReason::Stop,
            Some("length") => FinishReason::Length,
            Some(_) => FinishReason::Other,
        }));
    }
    Ok(ev)
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
