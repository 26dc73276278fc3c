//! Provider adapters: one file per wire protocol, each a pure request mapper and a pure event
//! mapper around one streaming HTTP call (see `http`). Vendor JSON stays private to its file;
//! everything above sees [`Provider`], `core::llm` events and [`ProviderError`].
//!
//! Streams are lazy and cancel-safe: dropping an [`EventStream`] drops the HTTP response, which
//! closes the connection so the server stops generating.

pub mod anthropic;
pub mod azure;
#[cfg(feature = "test-support")]
pub mod fake;
pub mod gemini;
pub mod http;
pub mod llamacpp;
pub mod ollama;
pub mod openai;

use std::sync::{Arc, RwLock};

use futures_util::stream::BoxStream;

use crate::config::{ProviderConfig, ProviderKind};
use crate::core::llm::{ChatRequest, Event, FimRequest, ProviderError};

/// A streamed answer: text deltas, then usage/finish; ends after the last event or the first error.
pub type EventStream = BoxStream<'static, Result<Event, ProviderError>>;

/// A secret (API key). Its `Debug` never shows the value.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(value)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// What a provider is, for status lines, health and logs.
#[derive(Debug)]
pub struct ProviderInfo {
    pub name: String,
    pub kind: ProviderKind,
    /// Base URL as configured (no trailing slash).
    pub url: String,
    model: RwLock<Option<String>>,
}

impl ProviderInfo {
    pub fn new(cfg: &ProviderConfig) -> Self {
        ProviderInfo {
            name: cfg.name.clone(),
            kind: cfg.kind,
            url: cfg.url.clone(),
            model: RwLock::new(cfg.model.clone()),
        }
    }

    /// The model id, configured or learned from the server (`None` until known).
    pub fn model(&self) -> Option<String> {
        self.model.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The model for display: a path-like id (llama-server reports the GGUF path) shortened to its
    /// file name.
    pub fn model_label(&self) -> Option<String> {
        self.model().map(|m| label(&m))
    }

    /// Records the model the server reports (only when none was configured).
    pub fn learn_model(&self, model: &str) {
        let mut m = self.model.write().unwrap_or_else(|e| e.into_inner());
        if m.is_none() && !model.is_empty() {
            *m = Some(model.to_string());
        }
    }
}

/// A model id for display: the last path segment of path-like ids.
pub fn label(model: &str) -> String {
    model.rsplit('/').next().unwrap_or(model).to_string()
}

/// A model provider.
pub trait Provider: Send + Sync {
    fn info(&self) -> &ProviderInfo;
    /// Streams a chat completion.
    fn chat(&self, req: ChatRequest) -> EventStream;
    /// Streams a fill-in-the-middle completion (natively where the server supports it, else through
    /// a chat prompt template).
    fn fim(&self, req: FimRequest) -> EventStream;
    /// Checks the server answers and learns its model; `Ok(detail)` names what answered.
    fn probe(&self) -> BoxStream<'static, Result<String, ProviderError>>;
    /// The model's context window in tokens, when the server told (llama-server's `/props`).
    fn context_window(&self) -> Option<u32> {
        None
    }
    /// Whether `fim` uses a native FIM endpoint (else a chat prompt template). May be learned
    /// (llama-server: `/props` or the first `/infill`).
    fn native_fim(&self) -> bool {
        false
    }
    /// Whether a chat ending in an assistant message is continued from there (Anthropic's
    /// prefill, llama-server, Ollama), so a fallback can pick up a cut-off answer.
    fn continues_prefill(&self) -> bool {
        false
    }
}

/// Builds the adapter for a provider entry. `key` is the resolved API key, if any.
pub fn build(
    cfg: &ProviderConfig,
    key: Option<Secret>,
    client: &reqwest::Client,
) -> Arc<dyn Provider> {
    match cfg.kind {
        ProviderKind::Openai
        | ProviderKind::Lmstudio
        | ProviderKind::Vllm
        | ProviderKind::Xai
        | ProviderKind::Groq
        | ProviderKind::Mistral
        | ProviderKind::Deepseek
        | ProviderKind::Openrouter => Arc::new(openai::OpenAi::new(cfg, key, client.clone())),
        ProviderKind::Anthropic => Arc::new(anthropic::Anthropic::new(cfg, key, client.clone())),
        ProviderKind::Gemini => Arc::new(gemini::Gemini::new(cfg, key, client.clone())),
        ProviderKind::Azure => Arc::new(azure::Azure::new(cfg, key, client.clone())),
        ProviderKind::Llamacpp => Arc::new(llamacpp::LlamaCpp::new(cfg, key, client.clone())),
        ProviderKind::Ollama => Arc::new(ollama::Ollama::new(cfg, client.clone())),
        #[cfg(feature = "test-support")]
        ProviderKind::Fake => Arc::new(fake::Fake::new(cfg)),
        #[cfg(not(feature = "test-support"))]
        ProviderKind::Fake => {
            unreachable!("config validation rejects kind = \"fake\" without test-support")
        }
    }
}
