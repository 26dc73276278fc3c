//! A deterministic provider for UI tests (`kind = "fake"`, only with `--features test-support`):
//! streams its configured `reply` in 4-character chunks, `delay_ms` apart, for chat and FIM alike.
//! The reply `"<fail:KIND>"` answers with that error kind instead (e.g. `<fail:unavailable>`).
//! With `$ZEKE_FAKE_DUMP` set to a path, each FIM request's `prefix` and `suffix` are written
//! there as JSON, so a test can check the exact text the model would have been given.

use futures_util::StreamExt;

use crate::config::ProviderConfig;
use crate::core::llm::{ChatRequest, ErrorKind, Event, FimRequest, FinishReason, ProviderError};
use crate::providers::{EventStream, Provider, ProviderInfo};

pub struct Fake {
    info: ProviderInfo,
    reply: String,
    delay: std::time::Duration,
}

impl Fake {
    pub fn new(cfg: &ProviderConfig) -> Self {
        let info = ProviderInfo::new(cfg);
        info.learn_model("fake-model");
        Fake {
            info,
            reply: cfg.reply.clone().unwrap_or_else(|| "fake reply".into()),
            delay: cfg.delay,
        }
    }

    fn stream(&self) -> EventStream {
        if let Some(kind) = self
            .reply
            .strip_prefix("<fail:")
            .and_then(|r| r.strip_suffix('>'))
        {
            let kind = match kind {
                "auth" => ErrorKind::Auth,
                "rate_limited" => ErrorKind::RateLimited,
                "timeout" => ErrorKind::Timeout,
                "malformed" => ErrorKind::Malformed,
                _ => ErrorKind::Unavailable,
            };
            return futures_util::stream::iter([Err(ProviderError::new(kind, "fake failure"))])
                .boxed();
        }
        let chars: Vec<char> = self.reply.chars().collect();
        let chunks: Vec<String> = chars.chunks(4).map(|c| c.iter().collect()).collect();
        let delay = self.delay;
        futures_util::stream::iter(chunks)
            .then(move |c| async move {
                tokio::time::sleep(delay).await;
                Ok(Event::Text(c))
            })
            .chain(futures_util::stream::iter([Ok(Event::Finish(
                FinishReason::Stop,
            ))]))
            .boxed()
    }
}

impl Provider for Fake {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }
    fn chat(&self, _req: ChatRequest) -> EventStream {
        self.stream()
    }
    fn fim(&self, req: FimRequest) -> EventStream {
        if let Some(path) = std::env::var_os("ZEKE_FAKE_DUMP") {
            let dump = serde_json::json!({"prefix": req.prefix, "suffix": req.suffix});
            if let Err(e) = std::fs::write(&path, dump.to_string()) {
                tracing::warn!(%e, "ZEKE_FAKE_DUMP");
            }
        }
        self.stream()
    }
    fn probe(&self) -> futures_util::stream::BoxStream<'static, Result<String, ProviderError>> {
        futures_util::stream::iter([Ok("fake-model".to_string())]).boxed()
    }
}
