//! Azure OpenAI: OpenAI's chat-completions wire (see `openai`: the body mapper and [`Decoder`]
//! are shared) at Azure's URLs, with the key in an `api-key` header (never `Authorization`).
//!
//! Two URL styles, chosen by the config:
//! - `api_version` set: deployment style. `url` is `https://RES.openai.azure.com/openai/deployments/
//!   DEPLOYMENT`; requests go to `{url}/chat/completions?api-version=V`; the deployment picks the
//!   model.
//! - no `api_version`: the v1 API. `url` is `https://RES.openai.azure.com/openai/v1` (a bare
//!   resource URL gets `/openai/v1`); requests go to `{url}/chat/completions` and `model` (the
//!   deployment name) is required.
//!
//! Streams open with a chunk whose `choices` is empty and which carries `prompt_filter_results`,
//! and may carry content-filter annotation chunks (choices without `delta`) anywhere, also after
//! the finish; those map to nothing. `finish_reason: "content_filter"` maps to
//! `FinishReason::Other`.
//!
//! [`Decoder`]: crate::providers::openai::Decoder

use futures_util::StreamExt;
use serde_json::json;

use crate::config::ProviderConfig;
use crate::core::llm::{ChatRequest, ErrorKind, FimRequest, ProviderError};
use crate::core::prompt;
use crate::providers::openai::{self, Preset};
use crate::providers::{EventStream, Provider, ProviderInfo, Secret, http};

pub struct Azure {
    info: ProviderInfo,
    key: Option<Secret>,
    client: reqwest::Client,
    api_version: Option<String>,
}

impl Azure {
    pub fn new(cfg: &ProviderConfig, key: Option<Secret>, client: reqwest::Client) -> Self {
        Azure {
            info: ProviderInfo::new(cfg),
            key,
            client,
            api_version: cfg.api_version.clone(),
        }
    }

    fn headers(&self) -> reqwest::header::HeaderMap {
        http::headers(
            &[("accept", "text/event-stream")],
            self.key
                .as_ref()
                .map(|k| ("api-key", k.expose().to_string())),
        )
    }

    /// The configuration problem that stops every request, if any.
    fn config_error(&self) -> Option<ProviderError> {
        let name = &self.info.name;
        match &self.api_version {
            None if deployment_name(&self.info.url).is_some() => Some(ProviderError::new(
                ErrorKind::Invalid,
                format!(
                    "providers.{name}.api_version: required with a deployment URL (…/openai/\
                     deployments/NAME), e.g. \"2024-10-21\"; or use the v1 API URL \
                     https://RESOURCE.openai.azure.com/openai/v1 with providers.{name}.model"
                ),
            )),
            None if self.info.model().is_none() => Some(ProviderError::new(
                ErrorKind::Invalid,
                format!(
                    "providers.{name}.model: required for the Azure v1 API (the name of the \
                     deployment to use)"
                ),
            )),
            _ => None,
        }
    }
}

/// The chat-completions URL: `{url}/chat/completions?api-version=V` for a deployment URL (with
/// `api_version`), `{v1 base}/chat/completions` for the v1 API.
pub fn chat_url(url: &str, api_version: Option<&str>) -> String {
    let url = url.trim_end_matches('/');
    match api_version {
        Some(v) => format!("{url}/chat/completions?api-version={v}"),
        None => format!("{}/chat/completions", v1_base(url)),
    }
}

/// The v1 API base: `url` as given when it ends in `/openai/v1` or another path, with `/openai/v1`
/// (or `/v1` after `/openai`) added to a bare resource URL.
pub fn v1_base(url: &str) -> String {
    let url = url.trim_end_matches('/');
    let path = url.splitn(4, '/').nth(3).unwrap_or("");
    if path.is_empty() {
        format!("{url}/openai/v1")
    } else if url.ends_with("/openai") {
        format!("{url}/v1")
    } else {
        url.to_string()
    }
}

/// The deployment named by a deployment-style URL (`…/openai/deployments/NAME`).
pub fn deployment_name(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("/deployments/")?;
    rest.split(['/', '?']).next().filter(|n| !n.is_empty())
}

/// The request details for an API version: the v1 API and versions from 2024-09-01 on take
/// `max_completion_tokens` (which reasoning deployments require) and `stream_options`; older
/// versions reject both.
pub fn preset(api_version: Option<&str>) -> Preset {
    let modern = api_version.is_none_or(|v| v >= "2024-09-01");
    Preset {
        stream_usage: modern,
        max_tokens_field: if modern {
            "max_completion_tokens"
        } else {
            "max_tokens"
        },
        ..Preset::DEFAULT
    }
}

impl Provider for Azure {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }

    fn chat(&self, req: ChatRequest) -> EventStream {
        if let Some(e) = self.config_error() {
            return futures_util::stream::iter([Err(e)]).boxed();
        }
        let v = self.api_version.as_deref();
        let body = openai::chat_body(&req, self.info.model().as_deref(), &preset(v));
        openai::stream_chat(
            &self.client,
            chat_url(&self.info.url, v),
            self.headers(),
            body,
        )
    }

    fn fim(&self, req: FimRequest) -> EventStream {
        self.chat(prompt::fim_as_chat(&req))
    }

    /// v1 API: `GET {base}/models` (checks the key), answering the configured model. Deployment
    /// style: the data-plane deployment lookup is retired after api-version 2023-03-15-preview, so
    /// it POSTs an empty chat (`messages: []`) to the deployment: Azure checks the key, the
    /// api-version and the deployment before the body, so the expected 400 proves all three
    /// without generating a token (401: bad key, 404: no such deployment or api-version).
    fn probe(&self) -> futures_util::stream::BoxStream<'static, Result<String, ProviderError>> {
        let client = self.client.clone();
        let headers = self.headers();
        let model = self.info.model();
        match self.api_version.clone() {
            None => {
                let url = format!("{}/models", v1_base(&self.info.url));
                let config = self.config_error();
                futures_util::stream::once(async move {
                    if let Some(e) = config {
                        return Err(e);
                    }
                    let first = openai::first_model(&client, &url, headers).await?;
                    Ok(model.unwrap_or(first))
                })
                .boxed()
            }
            Some(v) => {
                let url = chat_url(&self.info.url, Some(&v));
                let name = deployment_name(&self.info.url)
                    .map(str::to_string)
                    .or(model)
                    .unwrap_or_else(|| crate::providers::label(&self.info.url));
                futures_util::stream::once(async move {
                    let body = json!({"messages": []});
                    match http::post_json(&client, &url, headers, &body).await {
                        Ok(_) => Ok(name),
                        Err(e) if e.status == Some(400) => Ok(name),
                        Err(e) => Err(e),
                    }
                })
                .boxed()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::core::llm::{Event, FinishReason, Usage};
    use crate::providers::openai::{Decoder, tool_conversation};
    use expect_test::expect;

    #[test]
    fn urls_for_both_styles() {
        let dep = "https://res.openai.azure.com/openai/deployments/gpt4o";
        assert_eq!(
            chat_url(dep, Some("2024-10-21")),
            "https://res.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(
            chat_url("https://res.openai.azure.com/openai/v1", None),
            "https://res.openai.azure.com/openai/v1/chat/completions"
        );
        assert_eq!(
            chat_url("https://res.openai.azure.com/", None),
            "https://res.openai.azure.com/openai/v1/chat/completions"
        );
        assert_eq!(
            chat_url("https://res.cognitiveservices.azure.com/openai", None),
            "https://res.cognitiveservices.azure.com/openai/v1/chat/completions"
        );
        assert_eq!(deployment_name(dep), Some("gpt4o"));
        assert_eq!(
            deployment_name("https://res.openai.azure.com/openai/v1"),
            None
        );
    }

    #[test]
    fn body_follows_the_api_version() {
        let req = tool_conversation();
        let b = openai::chat_body(&req, None, &preset(Some("2024-02-01")));
        assert_eq!(b["max_tokens"], 64);
        assert!(b.get("stream_options").is_none());
        assert!(b.get("model").is_none());
        let b = openai::chat_body(&req, Some("gpt-4o"), &preset(Some("2025-04-01-preview")));
        assert_eq!(b["max_completion_tokens"], 64);
        assert_eq!(b["stream_options"]["include_usage"], true);
        let b = openai::chat_body(&req, Some("my-gpt-4o"), &preset(None));
        expect![[r#"{"content":null,"role":"assistant","tool_calls":[{"function":{"arguments":"{\"city\":\"Paris\"}","name":"get_weather"},"id":"call_a1","type":"function"},{"function":{"arguments":"{}","name":"get_weather"},"id":"call_b2","type":"function"}]}"#]]
            .assert_eq(&b["messages"][2].to_string());
        assert_eq!(b["model"], "my-gpt-4o");
        assert_eq!(b["max_completion_tokens"], 64);
        assert_eq!(b["tools"][0]["type"], "function");
    }

    #[test]
    fn empty_choices_and_annotations_map_to_nothing() {
        let mut d = Decoder::new();
        let frames = [
            r#"{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"jailbreak":{"filtered":false,"detected":false}}}]}"#,
            r#"{"choices":[{"delta":{"content":"","role":"assistant"},"finish_reason":null,"index":0,"logprobs":null,"content_filter_results":{}}],"id":"chatcmpl-1","object":"chat.completion.chunk"}"#,
            r#"{"choices":[{"delta":{"content":"Hi"},"finish_reason":null,"index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}],"id":"chatcmpl-1"}"#,
            r#"{"choices":[{"delta":{},"finish_reason":"content_filter","index":0}],"id":"chatcmpl-1"}"#,
            r#"{"choices":[{"content_filter_offsets":{"check_offset":0,"start_offset":0,"end_offset":2},"content_filter_results":{"protected_material_code":{"filtered":false,"detected":false}},"finish_reason":null,"index":0}],"created":0,"id":"","model":"","object":""}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10,"prompt_tokens_details":{"cached_tokens":0}}}"#,
            "[DONE]",
        ];
        let events: Vec<Event> = frames.iter().flat_map(|f| d.map(f).unwrap()).collect();
        assert_eq!(
            events,
            vec![
                Event::Text("Hi".into()),
                Event::Finish(FinishReason::Other),
                Event::Usage(Usage::new(9, 1)),
            ]
        );
    }

    fn azure(extra: serde_json::Value) -> Azure {
        let mut p = json!({"kind": "azure", "url": "https://res.openai.azure.com/openai/v1"});
        p.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let cfg = Config::from_value(json!({"providers": {"az": p}})).unwrap();
        let _ = rustls::crypto::ring::default_provider().install_default();
        Azure::new(
            &cfg.providers["az"],
            Some(Secret::new("k3y".into())),
            reqwest::Client::new(),
        )
    }

    #[test]
    fn config_errors_name_the_key() {
        let e = azure(json!({})).config_error().unwrap();
        assert_eq!(e.kind, ErrorKind::Invalid);
        assert!(
            e.message.starts_with("providers.az.model: required"),
            "{}",
            e.message
        );
        assert!(azure(json!({"model": "gpt"})).config_error().is_none());
        let dep = json!({"url": "https://res.openai.azure.com/openai/deployments/gpt"});
        let e = azure(dep).config_error().unwrap();
        assert!(
            e.message.starts_with("providers.az.api_version"),
            "{}",
            e.message
        );
        let dep = json!({"url": "https://res.openai.azure.com/openai/deployments/gpt",
                         "api_version": "2024-10-21"});
        assert!(azure(dep).config_error().is_none());
    }

    #[test]
    fn key_goes_in_api_key_header() {
        let h = azure(json!({"model": "gpt"})).headers();
        assert_eq!(h["api-key"], "k3y");
        assert!(h["api-key"].is_sensitive());
        assert!(h.get("authorization").is_none());
    }
}
