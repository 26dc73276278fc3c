//! The MCP client edge: Zeke speaking MCP (rmcp's client side) to an external server it started
//! itself over the server's pipes ([`crate::sys::spawn_piped`]), behind a plain-Rust API —
//! [`Connection::start`] (spawn + `initialize`), [`Connection::list_tools`] (every page),
//! [`Connection::call`] — so that `app` (which knows no protocol) can offer that server's tools to
//! the chat agent (`app::mcp_client` names them, gates and audits each call).
//!
//! Invariants: every request is time-limited (the server's `timeout_ms`; an abandoned request is
//! cancelled on the wire); the server's stderr goes to Zeke's log at debug, line by line, and its
//! last lines are kept for error messages; dropping a [`Connection`] closes the server's stdin and
//! stops its process group (SIGTERM, then SIGKILL); a server asking for user input (elicitation,
//! `input_required`) is refused, never relayed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ClientCapabilities, ContentBlock, Implementation,
    InitializeRequestParams, ResourceContents,
};
use rmcp::service::{RunningService, ServiceError};
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Map, Value};
use tokio::io::AsyncReadExt;

/// How to start one server.
pub struct Launch<'a> {
    /// Its name, for the log and messages.
    pub label: &'a str,
    pub program: &'a str,
    pub args: &'a [String],
    /// Variables set for it.
    pub env: &'a [(&'a str, &'a str)],
    /// Inherited variables it must not see (Zeke's API keys).
    pub hide_env: fn(&std::ffi::OsStr) -> bool,
    /// Limit of the handshake and of every request.
    pub timeout: Duration,
}

/// Why a server could not be started or did not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// It could not be started or the handshake failed.
    #[error("{0}")]
    Start(String),
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The server exited (or closed its pipes); its last stderr lines, if any.
    #[error("the server exited{0}")]
    Closed(String),
    /// An MCP error answer, or an answer Zeke does not take.
    #[error("{0}")]
    Protocol(String),
}

/// One tool as the server lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteTool {
    pub name: String,
    pub description: String,
    /// Its JSON Schema (an object).
    pub input_schema: Value,
}

/// A `tools/call` result: its content as text, and whether the server flagged it `isError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub text: String,
    pub is_error: bool,
}

/// The last bytes a server wrote to stderr.
type Tail = Arc<Mutex<String>>;

const TAIL_CHARS: usize = 2000;
/// Longest stderr line logged whole; the rest of a longer one is logged as further lines.
const LINE_CAP: usize = 4096;

/// A running server and the MCP session with it.
pub struct Connection {
    service: RunningService<RoleClient, InitializeRequestParams>,
    process: crate::sys::Piped,
    tail: Tail,
    timeout: Duration,
}

impl Connection {
    /// Starts the server and runs the MCP handshake (`initialize`), within `launch.timeout`.
    pub async fn start(launch: Launch<'_>) -> Result<Connection, ClientError> {
        let s = crate::sys::spawn_piped(
            launch.program,
            launch.args,
            launch.env,
            launch.hide_env,
            None,
        )
        .map_err(|e| ClientError::Start(e.to_string()))?;
        let tail = Tail::default();
        let drained = tokio::spawn(forward_stderr(
            launch.label.to_string(),
            s.stderr,
            tail.clone(),
        ));
        let info = InitializeRequestParams::new(
            ClientCapabilities::default(),
            Implementation::new("zeke", env!("CARGO_PKG_VERSION")),
        );
        let why = match tokio::time::timeout(launch.timeout, info.serve((s.stdout, s.stdin))).await
        {
            Ok(Ok(service)) => {
                return Ok(Connection {
                    service,
                    process: s.process,
                    tail,
                    timeout: launch.timeout,
                });
            }
            Ok(Err(e)) => format!("the MCP handshake failed: {e}"),
            Err(_) => format!(
                "no answer to initialize within {} ms",
                launch.timeout.as_millis()
            ),
        };
        // a server that exited says why on stderr: let it finish writing
        let _ = tokio::time::timeout(Duration::from_millis(300), drained).await;
        Err(ClientError::Start(format!("{why}{}", said(&tail))))
    }

    /// Every tool the server offers (all pages of `tools/list`).
    pub async fn list_tools(&self) -> Result<Vec<RemoteTool>, ClientError> {
        let tools = self.timed(self.service.peer().list_all_tools()).await?;
        Ok(tools
            .into_iter()
            .map(|t| RemoteTool {
                name: t.name.into_owned(),
                description: t.description.map(|d| d.into_owned()).unwrap_or_default(),
                input_schema: Value::Object((*t.input_schema).clone()),
            })
            .collect())
    }

    /// Calls `tool` with `args`: its text content (an `isError` result too, flagged).
    pub async fn call(&self, tool: &str, args: Map<String, Value>) -> Result<Reply, ClientError> {
        let params = CallToolRequestParams::new(tool.to_string()).with_arguments(args);
        match self
            .timed(self.service.peer().call_tool_once(params))
            .await?
        {
            CallToolResponse::Complete(r) => Ok(Reply {
                text: text_of(&r.content, r.structured_content.as_ref()),
                is_error: r.is_error == Some(true),
            }),
            CallToolResponse::InputRequired(_) => Err(ClientError::Protocol(
                "the server asked for the user's input, which Zeke does not relay to an external \
                 server"
                    .into(),
            )),
            _ => Err(ClientError::Protocol(
                "the server answered with a task, which Zeke does not poll".into(),
            )),
        }
    }

    /// Whether the server still runs and the session is open.
    pub fn alive(&self) -> bool {
        !self.process.exited()
            && !self.service.is_closed()
            && !self.service.peer().is_transport_closed()
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.process.id()
    }

    async fn timed<T>(
        &self,
        request: impl Future<Output = Result<T, ServiceError>>,
    ) -> Result<T, ClientError> {
        match tokio::time::timeout(self.timeout, request).await {
            Err(_) => Err(ClientError::Timeout(self.timeout)),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(ServiceError::TransportClosed | ServiceError::TransportSend(_))) => {
                Err(ClientError::Closed(said(&self.tail)))
            }
            Ok(Err(ServiceError::McpError(e))) => Err(ClientError::Protocol(format!(
                "the server answered with error {}: {}",
                e.code.0, e.message
            ))),
            Ok(Err(e)) if !self.alive() => {
                tracing::debug!("request to an exited server: {e}");
                Err(ClientError::Closed(said(&self.tail)))
            }
            Ok(Err(e)) => Err(ClientError::Protocol(e.to_string())),
        }
    }
}

/// `"; it said: …"` with the server's last stderr lines, or nothing.
fn said(tail: &Tail) -> String {
    let t = tail.lock().unwrap_or_else(|e| e.into_inner());
    let t = t.trim();
    if t.is_empty() {
        String::new()
    } else {
        format!("; its stderr ended: {t}")
    }
}

/// Logs the server's stderr at debug, a line at a time, keeping the last [`TAIL_CHARS`].
async fn forward_stderr(label: String, mut stderr: tokio::process::ChildStderr, tail: Tail) {
    let mut line = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stderr.read(&mut chunk).await.unwrap_or(0);
        let emit = |bytes: &[u8]| {
            let text = String::from_utf8_lossy(bytes);
            tracing::debug!(server = label.as_str(), "mcp server stderr: {text}");
            let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
            t.push_str(&text);
            t.push('\n');
            let over = t.chars().count().saturating_sub(TAIL_CHARS);
            if over > 0 {
                let cut = t.char_indices().nth(over).map_or(t.len(), |(i, _)| i);
                t.drain(..cut);
            }
        };
        if n == 0 {
            if !line.is_empty() {
                emit(&line);
            }
            return;
        }
        for &b in &chunk[..n] {
            if b == b'\n' || line.len() >= LINE_CAP {
                emit(&line);
                line.clear();
            }
            if b != b'\n' {
                line.push(b);
            }
        }
    }
}

/// A result's content as text: text blocks (and text resources) joined by newlines, other blocks
/// named; with no content, the structured result as JSON.
fn text_of(content: &[ContentBlock], structured: Option<&Value>) -> String {
    let parts: Vec<String> = content
        .iter()
        .map(|c| match c {
            ContentBlock::Text(t) => t.text.clone(),
            ContentBlock::Image(i) => format!("[image: {}]", i.mime_type),
            ContentBlock::Audio(a) => format!("[audio: {}]", a.mime_type),
            ContentBlock::Resource(r) => match &r.resource {
                ResourceContents::TextResourceContents { text, .. } => text.clone(),
                ResourceContents::BlobResourceContents { uri, .. } => format!("[resource: {uri}]"),
                _ => "[resource]".into(),
            },
            ContentBlock::ResourceLink(l) => format!("[resource link: {}]", l.uri),
            _ => "[content of an unknown kind]".into(),
        })
        .collect();
    match (parts.is_empty(), structured) {
        (true, Some(v)) => v.to_string(),
        _ => parts.join("\n"),
    }
}
