//! The model vocabulary shared by every provider adapter, the router and the app layer:
//! requests, streamed events, usage and the one error vocabulary ([`ProviderError`]).
//!
//! Vendor wire types never appear here; adapters map to and from these types.

use std::fmt;
use std::time::Duration;

/// Who speaks a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    /// The role's name as OpenAI, Ollama and Anthropic spell it (`"system"`, `"user"`, `"assistant"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One chat message (plain text content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Self {
        Message {
            role: Role::System,
            content: content.into(),
        }
    }
    pub fn user(content: impl Into<String>) -> Self {
        Message {
            role: Role::User,
            content: content.into(),
        }
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Message {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// A streamed chat request. `max_tokens` counts generated tokens; `temperature` is 0.0–2.0.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    pub max_tokens: u32,
    pub temperature: f32,
    pub stop: Vec<String>,
}

/// A fill-in-the-middle request: generate the text that belongs between `prefix` and `suffix`.
#[derive(Debug, Clone, PartialEq)]
pub struct FimRequest {
    pub prefix: String,
    pub suffix: String,
    /// Neovim `filetype` of the buffer (may be empty).
    pub language: String,
    /// File path as Neovim names it (may be empty for scratch buffers).
    pub path: String,
    pub max_tokens: u32,
    pub stop: Vec<String>,
}

/// Token counts as the provider reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: u32,
    pub output_tokens: u32,
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    Length,
    Other,
}

/// One event of a streamed answer, in arrival order: text deltas, then usage and finish (either may
/// be missing when the provider does not send them).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Text(String),
    Usage(Usage),
    Finish(FinishReason),
}

/// The category of a provider failure, independent of vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Missing or rejected credentials (HTTP 401/403).
    Auth,
    /// Too many requests or quota exhausted (HTTP 429); see `retry_after`.
    RateLimited,
    /// The provider is overloaded (HTTP 529, 503 with an overload body, Anthropic `overloaded_error`).
    Overloaded,
    /// The prompt does not fit the model's context window.
    ContextTooLarge,
    /// The request was rejected as malformed or unsupported (HTTP 400/404/422, 501).
    Invalid,
    /// No answer within the time limit.
    Timeout,
    /// The provider cannot be reached or failed (connection refused, DNS, HTTP 5xx).
    Unavailable,
    /// The provider answered, but its stream could not be parsed.
    Malformed,
    /// The policy refuses the action (a capability set to `deny`); nothing was attempted.
    Denied,
}

impl ErrorKind {
    /// snake_case name used on the wire to Lua and in logs (`"rate_limited"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Auth => "auth",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::ContextTooLarge => "context_too_large",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Malformed => "malformed",
            ErrorKind::Denied => "denied",
        }
    }

    /// Whether retrying the same request later can succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimited
                | ErrorKind::Overloaded
                | ErrorKind::Timeout
                | ErrorKind::Unavailable
        )
    }
}

/// A provider failure: category, HTTP status when there was one, `retry_after` from the
/// `retry-after` header when sent, and a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    pub kind: ErrorKind,
    pub status: Option<u16>,
    pub retry_after: Option<Duration>,
    pub message: String,
}

impl ProviderError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ProviderError {
            kind,
            status: None,
            retry_after: None,
            message: message.into(),
        }
    }

    /// Classifies an HTTP error answer. `body` is the (possibly truncated) response body, used to
    /// tell context-window and overload errors from other 4xx/5xx.
    pub fn from_status(status: u16, retry_after: Option<Duration>, body: &str) -> Self {
        let lower = body.to_ascii_lowercase();
        let context = [
            "context_length_exceeded",
            "context length",
            "context window",
            "exceeds the available context",
            "prompt is too long",
            "too many tokens",
        ]
        .iter()
        .any(|n| lower.contains(n));
        let kind = match status {
            401 | 403 => ErrorKind::Auth,
            429 => ErrorKind::RateLimited,
            529 => ErrorKind::Overloaded,
            413 => ErrorKind::ContextTooLarge,
            _ if context => ErrorKind::ContextTooLarge,
            503 if lower.contains("overload") => ErrorKind::Overloaded,
            408 | 504 => ErrorKind::Timeout,
            400..=499 | 501 => ErrorKind::Invalid,
            _ => ErrorKind::Unavailable,
        };
        let detail = summarize_body(body);
        let message = if detail.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {detail}")
        };
        ProviderError {
            kind,
            status: Some(status),
            retry_after,
            message,
        }
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.kind.as_str())?;
        if let Some(r) = self.retry_after {
            write!(f, "; retry after {} s", r.as_secs_f32())?;
        }
        Ok(())
    }
}

impl std::error::Error for ProviderError {}

/// The human part of an error body: the `message` of a JSON error object when one is visible,
/// else the first 200 characters on one line.
fn summarize_body(body: &str) -> String {
    let body = body.trim();
    if let Some(i) = body.find("\"message\"") {
        let rest = &body[i + "\"message\"".len()..];
        if let Some(start) = rest.find('"') {
            let rest = &rest[start + 1..];
            let mut out = String::new();
            let mut escaped = false;
            for c in rest.chars() {
                match (escaped, c) {
                    (true, _) => {
                        out.push(c);
                        escaped = false
                    }
                    (false, '\\') => escaped = true,
                    (false, '"') => return out,
                    (false, _) => out.push(c),
                }
            }
        }
    }
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    one_line.chars().take(200).collect()
}

/// Parses an HTTP `retry-after` header value given in seconds (`"12"`, `"1.5"`); HTTP-date forms
/// give `None`.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_statuses() {
        let k = |s, b| ProviderError::from_status(s, None, b).kind;
        assert_eq!(k(401, ""), ErrorKind::Auth);
        assert_eq!(k(429, ""), ErrorKind::RateLimited);
        assert_eq!(k(529, ""), ErrorKind::Overloaded);
        assert_eq!(
            k(503, "{\"error\":{\"type\":\"overloaded_error\"}}"),
            ErrorKind::Overloaded
        );
        assert_eq!(k(503, "busy"), ErrorKind::Unavailable);
        assert_eq!(
            k(400, "{\"error\":{\"code\":\"context_length_exceeded\"}}"),
            ErrorKind::ContextTooLarge
        );
        assert_eq!(
            k(400, "the request exceeds the available context size"),
            ErrorKind::ContextTooLarge
        );
        assert_eq!(k(400, "bad"), ErrorKind::Invalid);
        assert_eq!(
            k(501, "Infill is not supported by this model"),
            ErrorKind::Invalid
        );
        assert_eq!(k(500, ""), ErrorKind::Unavailable);
        assert_eq!(k(504, ""), ErrorKind::Timeout);
    }

    #[test]
    fn message_prefers_json_message() {
        let e = ProviderError::from_status(
            401,
            None,
            r#"{"error":{"message":"Incorrect API key \"sk\" provided","type":"invalid_request_error"}}"#,
        );
        assert_eq!(e.message, "HTTP 401: Incorrect API key \"sk\" provided");
        let e = ProviderError::from_status(500, None, "  upstream\n  exploded ");
        assert_eq!(e.message, "HTTP 500: upstream exploded");
    }

    #[test]
    fn retry_after_seconds() {
        assert_eq!(parse_retry_after("12"), Some(Duration::from_secs(12)));
        assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }
}
