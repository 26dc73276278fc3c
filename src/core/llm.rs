//! The model vocabulary shared by every provider adapter, the router and the app layer:
//! requests, streamed events, usage and the one error vocabulary ([`ProviderError`]).
//!
//! Vendor wire types never appear here; adapters map to and from these types.

use std::fmt;
use std::time::Duration;

/// What a request is for: how Zeke was invoked. The router picks candidates per intent
/// (`[routes]`), hedges the latency-critical ones and records it in the usage ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Intent {
    /// Inline ghost-text completion (FIM): short, latency-critical.
    Complete,
    Explain,
    Fix,
    Test,
    Chat,
    /// `zeke ask` from a shell.
    Ask,
}

impl Intent {
    pub const ALL: [Intent; 6] = [
        Intent::Complete,
        Intent::Explain,
        Intent::Fix,
        Intent::Test,
        Intent::Chat,
        Intent::Ask,
    ];

    /// The name used in `[routes]`, the ledger and `--intent` (`"completion"`, `"explain"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Intent::Complete => "completion",
            Intent::Explain => "explain",
            Intent::Fix => "fix",
            Intent::Test => "test",
            Intent::Chat => "chat",
            Intent::Ask => "ask",
        }
    }

    /// The inverse of [`Intent::as_str`].
    pub fn parse(s: &str) -> Option<Intent> {
        Intent::ALL.into_iter().find(|i| i.as_str() == s)
    }

    /// Whether the user waits on every keystroke for it: hedged, local first.
    pub fn latency_critical(self) -> bool {
        self == Intent::Complete
    }
}

/// Who speaks a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
    /// The result of a tool call, answering the assistant message that made it
    /// (`tool_call_id` names the call).
    Tool,
}

impl Role {
    /// The role's name as OpenAI spells it (`"system"`, `"user"`, `"assistant"`, `"tool"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// A tool the model may call: its name, what it does, and a JSON Schema (an object schema) for its
/// arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: serde_json::Value,
}

/// A tool call the model made, assembled from the streamed pieces: `arguments` is the JSON text of
/// the argument object exactly as the model wrote it (`"{}"` when it gave none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    /// The provider's id for the call (made up by the adapter when the wire has none, as in Gemini
    /// and Ollama), echoed in the [`Role::Tool`] message that answers it.
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// One message of a conversation. Every adapter maps the whole conversation, so a conversation can
/// move from one provider to another: plain text, the assistant's tool calls and the tool results.
/// Private reasoning (Anthropic `thinking`, OpenAI reasoning items) is never kept here, so it is
/// never replayed to another provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    /// Text; for a [`Role::Tool`] message the tool's output.
    pub content: String,
    /// Assistant only: the calls it made, in order.
    pub tool_calls: Vec<ToolCall>,
    /// Tool only: the [`ToolCall::id`] answered.
    pub tool_call_id: Option<String>,
    /// Tool only: whether the tool failed (Anthropic `is_error`).
    pub is_error: bool,
}

impl Message {
    fn text(role: Role, content: String) -> Self {
        Message {
            role,
            content,
            tool_calls: Vec::new(),
            tool_call_id: None,
            is_error: false,
        }
    }
    pub fn system(content: impl Into<String>) -> Self {
        Message::text(Role::System, content.into())
    }
    pub fn user(content: impl Into<String>) -> Self {
        Message::text(Role::User, content.into())
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Message::text(Role::Assistant, content.into())
    }
    /// An assistant turn that called tools (its text may be empty).
    pub fn assistant_calls(content: impl Into<String>, calls: Vec<ToolCall>) -> Self {
        Message {
            tool_calls: calls,
            ..Message::text(Role::Assistant, content.into())
        }
    }
    /// The result of the call `call_id`.
    pub fn tool_result(
        call_id: impl Into<String>,
        content: impl Into<String>,
        is_error: bool,
    ) -> Self {
        Message {
            tool_call_id: Some(call_id.into()),
            is_error,
            ..Message::text(Role::Tool, content.into())
        }
    }
}

/// A streamed chat request. `max_tokens` counts generated tokens; `temperature` is 0.0–2.0.
/// `tools` empty means the model gets none; they are shared (`Arc`), so a request is cheap to
/// clone for a fallback or the next step of an agent turn.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    pub max_tokens: u32,
    pub temperature: f32,
    pub stop: Vec<String>,
    pub tools: std::sync::Arc<[ToolSpec]>,
}

impl ChatRequest {
    /// A request with no tools and no stop strings.
    pub fn new(messages: Vec<Message>, max_tokens: u32, temperature: f32) -> Self {
        ChatRequest {
            messages,
            max_tokens,
            temperature,
            stop: Vec::new(),
            tools: std::sync::Arc::default(),
        }
    }

    /// A rough count of the prompt's tokens (characters / 4 of every message and tool schema, plus
    /// a few per message), for routing by context window and budget checks before the call.
    pub fn estimated_tokens(&self) -> u32 {
        let chars: usize = self
            .messages
            .iter()
            .map(|m| {
                m.content.len()
                    + m.tool_calls
                        .iter()
                        .map(|c| c.name.len() + c.arguments.len())
                        .sum::<usize>()
                    + 16
            })
            .sum::<usize>()
            + self
                .tools
                .iter()
                .map(|t| t.name.len() + t.description.len() + t.parameters.to_string().len())
                .sum::<usize>();
        (chars / 4).min(u32::MAX as usize) as u32
    }
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

impl FimRequest {
    /// A rough count of the prompt's tokens (characters / 4).
    pub fn estimated_tokens(&self) -> u32 {
        ((self.prefix.len() + self.suffix.len()) / 4).min(u32::MAX as usize) as u32
    }
}

/// Token counts as the provider reported them, normalized across vendors: `input_tokens` counts
/// every prompt token, including the `cached_input_tokens` read from the provider's prompt cache
/// and the `cache_write_tokens` written to it (Anthropic reports those apart; they are added in).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: u32,
    pub cached_input_tokens: u32,
    pub cache_write_tokens: u32,
    pub output_tokens: u32,
}

impl Usage {
    /// Input and output only (no prompt cache).
    pub fn new(input_tokens: u32, output_tokens: u32) -> Self {
        Usage {
            input_tokens,
            output_tokens,
            ..Usage::default()
        }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    Length,
    /// The model stopped to have its tool calls run.
    ToolCalls,
    Other,
}

/// One event of a streamed answer, in arrival order: text deltas and whole tool calls (an
/// adapter assembles a call's argument pieces and emits it once complete), then usage and finish
/// (either may be missing when the provider does not send them).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Text(String),
    ToolCall(ToolCall),
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
