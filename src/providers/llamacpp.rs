//! llama.cpp's llama-server: OpenAI-compatible chat (see `openai`) plus native FIM through
//! `POST /infill` when the loaded model has FIM tokens.
//!
//! Support for `/infill` is learned, not assumed: the first FIM request tries it; a 501 ("Infill is
//! not supported by this model") or 404 marks it unsupported for this provider and FIM requests
//! then go to `POST /completion` as a plain continuation of the prefix (the template for a model
//! without FIM tokens: small chat models continue raw code far better than they follow a chat
//! instruction; the suffix still trims the result, see `core::suggestion`). Both endpoints stream
//! SSE `data: {"content": …, "stop": bool, "tokens_evaluated", "tokens_predicted"}`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;

use crate::config::ProviderConfig;
use crate::core::llm::{
    ChatRequest, ErrorKind, Event, FimRequest, FinishReason, ProviderError, Usage,
};
use crate::providers::openai::{self, OpenAi};
use crate::providers::{EventStream, Provider, ProviderInfo, Secret, http};

const UNKNOWN: u8 = 0;
const SUPPORTED: u8 = 1;
const UNSUPPORTED: u8 = 2;

pub struct LlamaCpp {
    chat: Arc<OpenAi>,
    infill: Arc<AtomicU8>,
    client: reqwest::Client,
    key: Option<Secret>,
}

impl LlamaCpp {
    pub fn new(cfg: &ProviderConfig, key: Option<Secret>, client: reqwest::Client) -> Self {
        LlamaCpp {
            chat: Arc::new(OpenAi::new(cfg, key.clone(), client.clone())),
            infill: Arc::new(AtomicU8::new(UNKNOWN)),
            client,
            key,
        }
    }

    fn auth(&self) -> reqwest::header::HeaderMap {
        http::headers(
            &[],
            self.key
                .as_ref()
                .map(|k| ("authorization", format!("Bearer {}", k.expose()))),
        )
    }

    /// Whether `/infill` is known to work (`Some(true)`), known not to (`Some(false)`), or untried.
    pub fn infill_supported(&self) -> Option<bool> {
        match self.infill.load(Ordering::Relaxed) {
            SUPPORTED => Some(true),
            UNSUPPORTED => Some(false),
            _ => None,
        }
    }
}

/// The `/infill` request body.
pub fn infill_body(req: &FimRequest) -> serde_json::Value {
    json!({
        "input_prefix": req.prefix,
        "input_suffix": req.suffix,
        "n_predict": req.max_tokens,
        "stream": true,
        "cache_prompt": true,
        "temperature": 0.1,
        "stop": req.stop,
    })
}

#[derive(Deserialize)]
struct InfillChunk {
    #[serde(default)]
    content: String,
    #[serde(default)]
    stop: bool,
    tokens_evaluated: Option<u32>,
    tokens_predicted: Option<u32>,
    stopped_limit: Option<bool>,
}

/// The `/completion` body: continue `prefix` as plain text.
pub fn continuation_body(req: &FimRequest) -> serde_json::Value {
    json!({
        "prompt": req.prefix,
        "n_predict": req.max_tokens,
        "stream": true,
        "cache_prompt": true,
        "temperature": 0.1,
        "stop": req.stop,
    })
}

/// Maps one `/infill` or `/completion` SSE payload to events.
pub fn map_infill(data: &str) -> Result<Vec<Event>, ProviderError> {
    let c: InfillChunk = serde_json::from_str(data.trim()).map_err(|e| {
        ProviderError::new(
            ErrorKind::Malformed,
            format!(
                "unexpected infill chunk ({e}): {}",
                data.chars().take(120).collect::<String>()
            ),
        )
    })?;
    let mut ev = Vec::new();
    if !c.content.is_empty() {
        ev.push(Event::Text(c.content));
    }
    if c.stop {
        if let (Some(i), Some(o)) = (c.tokens_evaluated, c.tokens_predicted) {
            ev.push(Event::Usage(Usage::new(i, o)));
        }
        ev.push(Event::Finish(if c.stopped_limit == Some(true) {
            FinishReason::Length
        } else {
            FinishReason::Stop
        }));
    }
    Ok(ev)
}

impl Provider for LlamaCpp {
    fn info(&self) -> &ProviderInfo {
        self.chat.info()
    }

    fn chat(&self, req: ChatRequest) -> EventStream {
        self.chat.chat(req)
    }

    fn fim(&self, req: FimRequest) -> EventStream {
        if self.infill.load(Ordering::Relaxed) == UNSUPPORTED {
            return continuation(&self.client, &self.chat.info().url, self.auth(), &req);
        }
        let url = format!("{}/infill", self.chat.info().url);
        let body = infill_body(&req);
        let client = self.client.clone();
        let headers = self.auth();
        let state = self.infill.clone();
        let base = self.chat.info().url.clone();
        let fallback_headers = self.auth();
        futures_util::stream::once(async move {
            match http::post_json(&client, &url, headers, &body).await {
                Ok(resp) => {
                    state.store(SUPPORTED, Ordering::Relaxed);
                    http::stream_events(async move { Ok(resp) }, http::sse_data, map_infill)
                }
                Err(e) if matches!(e.status, Some(501) | Some(404)) => {
                    tracing::info!("llama-server has no FIM for this model ({}); continuing the prefix via /completion", e.message);
                    state.store(UNSUPPORTED, Ordering::Relaxed);
                    continuation(&client, &base, fallback_headers, &req)
                }
                Err(e) => futures_util::stream::iter([Err(e)]).boxed(),
            }
        })
        .flatten()
        .boxed()
    }

    fn probe(&self) -> futures_util::stream::BoxStream<'static, Result<String, ProviderError>> {
        openai::probe_models(&self.client, &self.chat.info().url, self.auth())
    }
}

fn continuation(
    client: &reqwest::Client,
    base: &str,
    headers: reqwest::header::HeaderMap,
    req: &FimRequest,
) -> EventStream {
    let url = format!("{base}/completion");
    let body = continuation_body(req);
    let client = client.clone();
    http::stream_events(
        async move { http::post_json(&client, &url, headers, &body).await },
        http::sse_data,
        map_infill,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_infill_chunks() {
        assert_eq!(
            map_infill(r#"{"content":"ab","stop":false}"#).unwrap(),
            vec![Event::Text("ab".into())]
        );
        assert_eq!(
            map_infill(r#"{"content":"","stop":true,"tokens_evaluated":10,"tokens_predicted":4,"stopped_limit":true}"#).unwrap(),
            vec![Event::Usage(Usage::new(10, 4)), Event::Finish(FinishReason::Length)]
        );
    }
}
