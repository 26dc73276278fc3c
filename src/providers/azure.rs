//! SKELETON — being written (issue 11).

use crate::config::ProviderConfig;
use crate::core::llm::{ChatRequest, ErrorKind, FimRequest, ProviderError};
use crate::providers::{EventStream, Provider, ProviderInfo, Secret};

pub struct Azure {
    info: ProviderInfo,
}

impl Azure {
    pub fn new(cfg: &ProviderConfig, _key: Option<Secret>, _client: reqwest::Client) -> Self {
        Azure { info: ProviderInfo::new(cfg) }
    }
}

impl Provider for Azure {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }
    fn chat(&self, _req: ChatRequest) -> EventStream {
        Box::pin(futures_util::stream::iter([Err(ProviderError::new(ErrorKind::Invalid, "not yet"))]))
    }
    fn fim(&self, _req: FimRequest) -> EventStream {
        Box::pin(futures_util::stream::iter([Err(ProviderError::new(ErrorKind::Invalid, "not yet"))]))
    }
    fn probe(&self) -> futures_util::stream::BoxStream<'static, Result<String, ProviderError>> {
        Box::pin(futures_util::stream::iter([Err(ProviderError::new(ErrorKind::Invalid, "not yet"))]))
    }
}
