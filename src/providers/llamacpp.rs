//! llama.cpp's llama-server: OpenAI-compatible chat (see `openai`) plus native FIM through
//! `POST /infill` when the loaded model has FIM tokens.
//!
//! Support for `/infill` is learned, not assumed. `GET /props` (read on probe, and before the first
//! FIM request while support is unknown) decides it when it names the model's FIM tokens
//! (`fim_pre_token`, `fim_suf_token`, `fim_mid_token`: a token id, -1 or null for none); the
//! llama-server builds seen so far (e.g. b0-unknown of 2025, see the test) do not list them, so
//! then the first FIM request tries `/infill`: a 501 ("Infill is not supported by this model") or
//! 404 marks it unsupported for this provider and FIM requests then go to `POST /completion` as a
//! plain continuation of the prefix (the template for a model without FIM tokens: small chat
//! models continue raw code far better than they follow a chat instruction; the suffix still
//! trims the result, see `core::suggestion`). Both endpoints stream SSE `data: {"content": …,
//! "stop": bool, "tokens_evaluated", "tokens_predicted"}`. `/props` also tells the context window
//! (`default_generation_settings.n_ctx`, per slot).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::ProviderConfig;
use crate::core::llm::{
    ChatRequest, ErrorKind, Event, FimRequest, FinishReason, ProviderError, Usage,
};
use crate::providers::openai::{self, OpenAi};
use crate::providers::{EventStream, Provider, ProviderInfo, Secret, http};

const UNKNOWN: u8 = 0;
const SUPPORTED: u8 = 1;
const UNSUPPORTED: u8 = 2;

/// How long the `/props` look-up before a first FIM request may take.
const PROPS_TIMEOUT: Duration = Duration::from_secs(1);

pub struct LlamaCpp {
    chat: Arc<OpenAi>,
    state: Arc<State>,
    client: reqwest::Client,
    key: Option<Secret>,
}

/// What this provider learned about the server.
#[derive(Default)]
struct State {
    /// UNKNOWN, SUPPORTED or UNSUPPORTED.
    infill: AtomicU8,
    /// `/props` was asked (answered or not).
    props_read: AtomicBool,
    /// The context window from `/props`; 0 while unknown.
    n_ctx: AtomicU32,
}

impl State {
    fn learn(&self, p: &Props) {
        if let Some(s) = p.infill {
            self.infill
                .store(if s { SUPPORTED } else { UNSUPPORTED }, Ordering::Relaxed);
        }
        if let Some(n) = p.n_ctx {
            self.n_ctx.store(n, Ordering::Relaxed);
        }
    }
}

impl LlamaCpp {
    pub fn new(cfg: &ProviderConfig, key: Option<Secret>, client: reqwest::Client) -> Self {
        LlamaCpp {
            chat: Arc::new(OpenAi::new(cfg, key.clone(), client.clone())),
            state: Arc::new(State::default()),
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
        match self.state.infill.load(Ordering::Relaxed) {
            SUPPORTED => Some(true),
            UNSUPPORTED => Some(false),
            _ => None,
        }
    }

    /// Whether FIM requests are known to go to `/infill` (the model's FIM tokens), for routing.
    pub fn native_fim(&self) -> bool {
        self.infill_supported() == Some(true)
    }

    /// The context window per slot the server reported in `/props`, once known.
    pub fn context_window(&self) -> Option<u32> {
        Some(self.state.n_ctx.load(Ordering::Relaxed)).filter(|&n| n > 0)
    }
}

/// What `/props` tells: infill support when it names the FIM tokens, and the context window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Props {
    pub infill: Option<bool>,
    pub n_ctx: Option<u32>,
}

/// Reads a `/props` answer. Infill is decided only when the FIM token fields are present: all
/// three set (an id ≥ 0 or a non-empty text) → supported, any of them -1/null/empty → not.
pub fn parse_props(v: &Value) -> Props {
    let n_ctx = v
        .pointer("/default_generation_settings/n_ctx")
        .or_else(|| v.get("n_ctx"))
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|&n| n > 0);
    const FIM: [&str; 3] = ["fim_pre_token", "fim_suf_token", "fim_mid_token"];
    let fields: Vec<&Value> = FIM.iter().filter_map(|k| v.get(*k)).collect();
    let set = |t: &Value| match t {
        Value::Number(n) => n.as_i64().is_some_and(|n| n >= 0),
        Value::String(s) => !s.is_empty(),
        _ => false,
    };
    let infill =
        (!fields.is_empty()).then(|| fields.len() == FIM.len() && fields.iter().all(|t| set(t)));
    Props { infill, n_ctx }
}

/// `GET {base}/props` within `timeout`; `None` when it fails (old servers, proxies).
async fn read_props(
    client: &reqwest::Client,
    base: &str,
    headers: reqwest::header::HeaderMap,
    timeout: Duration,
) -> Option<Props> {
    let url = format!("{base}/props");
    let resp = match http::get(client, &url, headers, timeout).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!("llama-server /props: {e}");
            return None;
        }
    };
    match http::read_json::<Value>(resp).await {
        Ok(v) => Some(parse_props(&v)),
        Err(e) => {
            tracing::debug!("llama-server /props: {e}");
            None
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

/// Maps the SSE payloads of one `/infill` or `/completion` answer, checking it ends with `stop`.
#[derive(Debug, Default)]
pub struct InfillDecoder {
    stopped: bool,
}

impl http::Decode for InfillDecoder {
    fn map(&mut self, frame: &str) -> Result<Vec<Event>, ProviderError> {
        let ev = map_infill(frame)?;
        self.stopped |= ev.iter().any(|e| matches!(e, Event::Finish(_)));
        Ok(ev)
    }
    fn end(&mut self) -> Result<Vec<Event>, ProviderError> {
        match self.stopped {
            true => Ok(vec![]),
            false => Err(http::cut_off("the llama-server stream")),
        }
    }
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
    fn continues_prefill(&self) -> bool {
        true
    }

    fn info(&self) -> &ProviderInfo {
        self.chat.info()
    }

    fn chat(&self, req: ChatRequest) -> EventStream {
        self.chat.chat(req)
    }

    fn fim(&self, req: FimRequest) -> EventStream {
        let base = self.chat.info().url.clone();
        let client = self.client.clone();
        let state = self.state.clone();
        let (props_headers, headers, fallback_headers) = (self.auth(), self.auth(), self.auth());
        futures_util::stream::once(async move {
            if state.infill.load(Ordering::Relaxed) == UNKNOWN
                && !state.props_read.swap(true, Ordering::Relaxed)
                && let Some(p) = read_props(&client, &base, props_headers, PROPS_TIMEOUT).await
            {
                state.learn(&p);
            }
            if state.infill.load(Ordering::Relaxed) == UNSUPPORTED {
                return continuation(&client, &base, fallback_headers, &req);
            }
            let url = format!("{base}/infill");
            match http::post_json(&client, &url, headers, &infill_body(&req)).await {
                Ok(resp) => {
                    state.infill.store(SUPPORTED, Ordering::Relaxed);
                    http::stream_decoded(
                        async move { Ok(resp) },
                        http::sse_data,
                        InfillDecoder::default(),
                    )
                }
                Err(e) if matches!(e.status, Some(501) | Some(404)) => {
                    tracing::info!("llama-server has no FIM for this model ({}); continuing the prefix via /completion", e.message);
                    state.infill.store(UNSUPPORTED, Ordering::Relaxed);
                    continuation(&client, &base, fallback_headers, &req)
                }
                Err(e) => futures_util::stream::iter([Err(e)]).boxed(),
            }
        })
        .flatten()
        .boxed()
    }

    fn context_window(&self) -> Option<u32> {
        LlamaCpp::context_window(self)
    }

    fn native_fim(&self) -> bool {
        LlamaCpp::native_fim(self)
    }

    /// The model list (`/v1/models`) and, alongside, `/props` (FIM support, context window); only
    /// the model list decides the answer.
    fn probe(&self) -> futures_util::stream::BoxStream<'static, Result<String, ProviderError>> {
        let models = openai::probe_models(&self.client, &self.chat.info().url, self.auth());
        let client = self.client.clone();
        let base = self.chat.info().url.clone();
        let headers = self.auth();
        let state = self.state.clone();
        let props = async move {
            if let Some(p) = read_props(&client, &base, headers, Duration::from_secs(3)).await {
                state.props_read.store(true, Ordering::Relaxed);
                state.learn(&p);
            }
        };
        futures_util::stream::once(async move {
            let (_, answer) = futures_util::future::join(props, models.into_future()).await;
            answer.0.unwrap_or_else(|| {
                Err(ProviderError::new(
                    ErrorKind::Malformed,
                    "no answer from the model list",
                ))
            })
        })
        .boxed()
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
    http::stream_decoded(
        async move { http::post_json(&client, &url, headers, &body).await },
        http::sse_data,
        InfillDecoder::default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infill_stream_must_end_with_stop() {
        use crate::providers::http::Decode;
        let mut d = InfillDecoder::default();
        d.map(r#"{"content":"ab","stop":false}"#).unwrap();
        assert_eq!(d.end().unwrap_err().kind, ErrorKind::Malformed);
        d.map(r#"{"content":"","stop":true}"#).unwrap();
        assert_eq!(d.end().unwrap(), vec![]);
    }

    #[test]
    fn props_of_a_real_server_leave_infill_to_the_trial() {
        // GET /props of the llama-server scripts/deps.sh builds (llama.cpp 11434.0.0, build_info
        // "b0-unknown") serving SmolLM2-135M-Instruct with -c 2048; chat_template and most
        // params left out. It names no FIM tokens (that model has none; no build lists them).
        let v: Value = serde_json::from_str(r#"{"default_generation_settings": {"params": {"seed": 4294967295, "temperature": 0.800000011920929, "dynatemp_range": 0.0}, "n_ctx": 2048}, "total_slots": 4, "model_alias": "SmolLM2-135M-Instruct.Q4_1.gguf", "model_ftype": "Q4_1", "model_path": "SmolLM2-135M-Instruct.Q4_1.gguf", "modalities": {"vision": false, "video": false, "audio": false}, "endpoint_slots": true, "endpoint_props": false, "endpoint_metrics": false, "ui": true, "ui_settings": {}, "chat_template_caps": {"supports_tool_calls": false, "supports_tools": false, "supports_system_role": true}, "bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "build_info": "b0-unknown", "is_sleeping": false, "cors_proxy_enabled": false}"#).unwrap();
        assert_eq!(
            parse_props(&v),
            Props {
                infill: None,
                n_ctx: Some(2048)
            }
        );
    }

    #[test]
    fn props_with_fim_tokens_decide_infill() {
        let p = |s: &str| parse_props(&serde_json::from_str(s).unwrap());
        assert_eq!(
            p(
                r#"{"fim_pre_token":151659,"fim_suf_token":151661,"fim_mid_token":151660,"n_ctx":8192}"#
            ),
            Props {
                infill: Some(true),
                n_ctx: Some(8192)
            }
        );
        assert_eq!(
            p(r#"{"fim_pre_token":-1,"fim_suf_token":-1,"fim_mid_token":-1}"#).infill,
            Some(false)
        );
        assert_eq!(
            p(r#"{"fim_pre_token":"<|fim_prefix|>","fim_suf_token":null}"#).infill,
            Some(false)
        );
        assert_eq!(p("{}"), Props::default());
        let s = State::default();
        s.learn(&Props {
            infill: Some(false),
            n_ctx: Some(4096),
        });
        assert_eq!(s.infill.load(Ordering::Relaxed), UNSUPPORTED);
        assert_eq!(s.n_ctx.load(Ordering::Relaxed), 4096);
        s.learn(&Props::default());
        assert_eq!(
            s.infill.load(Ordering::Relaxed),
            UNSUPPORTED,
            "unknown keeps what was learned"
        );
    }

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
