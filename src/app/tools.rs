//! The tool layer: the filesystem and git tools (and the coming `lsp_*` and agent tools) as
//! app-level operations, below every surface. `zeke mcp` maps them to the protocol (schemas,
//! `structuredContent`, paging); the chat agent calls the very same operations in-process.
//!
//! One call goes: [`run`] → [`catalog::find`] → argument parsing → the tool's operation ([`fs`],
//! [`git`], [`net`]), which resolves paths through `workspace` (confinement) and passes the gate
//! ([`Call::allow`]: decide, ask through the surface's [`Asker`], remember) before it reads or
//! writes → one audit record with every decision, written before [`run`] returns (a writing
//! call also leaves a `started` record just before it changes anything: [`Call::begin`]).
//!
//! Invariants: every path is resolved and checked before the gate is asked, and the gate is asked
//! before anything is read or written; a refusal is an `Err` naming its rule, never a panic; a
//! read-only call stops at once when cancelled, a writing one finishes what it started; every
//! call is audited, including unknown tools, refusals and cancellations.

pub mod catalog;
pub mod cmd;
pub mod fs;
pub mod git;
pub mod lsp;
pub mod net;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::audit::{self, Outcome, Record};
use super::gate::{Asker, Gate, Question, Refusal, Step};
use crate::core::policy::{Capability, Scope};
use crate::workspace::FsError;
pub use crate::workspace::{Protected, Roots};
pub use catalog::{Spec, TOOLS};

/// Why a call did not succeed; shown to the model as an error result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// No tool of that name.
    #[error("Unknown tool: {0}")]
    Unknown(String),
    /// A confinement rule refused (a path outside the roots, a protected file).
    #[error("refused (rule {rule}): {message}")]
    Refused { rule: &'static str, message: String },
    /// The policy or the user said no (the message names the rule and how to allow).
    #[error("{0}")]
    Denied(String),
    /// Bad arguments, an I/O or git error.
    #[error("{0}")]
    Failed(String),
    #[error("cancelled by the client")]
    Cancelled,
    /// The user is being asked through the surface (MCP `InputRequiredResult`); the call comes
    /// again with the answer.
    #[error("waiting for the user's answer")]
    NeedsInput,
}

impl ToolError {
    /// The audit outcome.
    pub fn outcome(&self) -> Outcome {
        match self {
            ToolError::Unknown(_) | ToolError::Failed(_) => Outcome::Error,
            ToolError::Refused { .. } => Outcome::Refused,
            ToolError::Denied(_) => Outcome::Denied,
            ToolError::Cancelled => Outcome::Cancelled,
            ToolError::NeedsInput => Outcome::InputRequired,
        }
    }
}

impl From<FsError> for ToolError {
    fn from(e: FsError) -> ToolError {
        match e {
            FsError::Refused { rule, message } => ToolError::Refused { rule, message },
            FsError::Cancelled => ToolError::Cancelled,
            FsError::Failed(m) => ToolError::Failed(m),
        }
    }
}

/// A file's bytes returned whole (`read_media_file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub bytes: Vec<u8>,
    /// e.g. `image/png`.
    pub mime: String,
    /// The file's `file://` URL.
    pub uri: String,
}

/// A tool's result: its text in the reference server's format, structured fields (the
/// `outputSchema` of the tool describes them with the text as `content`), or media.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Output {
    pub text: String,
    /// Fields besides `content`; a surface that pages the text drops them from all but a
    /// one-page result.
    pub structured: Map<String, Value>,
    pub media: Option<Media>,
}

impl Output {
    pub fn text(text: String, structured: Map<String, Value>) -> Output {
        Output {
            text,
            structured,
            media: None,
        }
    }
}

/// Per-process settings of the tools, from the config.
#[derive(Debug, Clone)]
pub struct Settings {
    pub fetch: crate::config::FetchConfig,
    /// `[lsp]`: the language servers of the `lsp_*` tools.
    pub lsp: crate::config::LspConfig,
}

impl Settings {
    pub fn from_config(config: &crate::config::Config) -> Settings {
        Settings {
            fetch: config.fetch.clone(),
            lsp: config.lsp.clone(),
        }
    }
}

/// Reports how many entries a long walk has seen (MCP progress notifications).
pub type Progress = Arc<dyn Fn(&'static str, u64) + Send + Sync>;

/// One call of a tool, as a surface hands it in.
pub struct Invocation<'a> {
    pub name: &'a str,
    pub args: Map<String, Value>,
    /// The roots in force for this call (narrowed by the client's roots).
    pub roots: Roots,
    pub ct: CancellationToken,
    pub progress: Option<Progress>,
    /// How this surface asks the user when the policy says prompt.
    pub asker: &'a dyn Asker,
    pub settings: &'a Settings,
    /// The client's name (`initialize`), or `nvim`, for the audit log.
    pub client: Option<&'a str>,
    /// A refusal the surface made before the call could start (a bad `page`, a forged answer):
    /// audited like any other outcome, and nothing runs.
    pub refused: Option<ToolError>,
}

/// Everything an operation needs for one call.
pub struct Call<'a> {
    pub spec: &'static Spec,
    pub roots: Roots,
    pub ct: CancellationToken,
    progress: Option<Progress>,
    pub settings: &'a Settings,
    gate: &'a Gate,
    asker: &'a dyn Asker,
    steps: Mutex<Vec<Step>>,
    /// The arguments as the audit log shows them, and who called (for [`Call::begin`]).
    redacted: Value,
    client: Option<&'a str>,
}

impl Call<'_> {
    /// The project root that scopes an action on canonical `path`: the nearest enclosing git work
    /// tree inside the configured roots, else the configured root containing it.
    pub fn scope_for(&self, path: &Path) -> Scope {
        Scope::new(project_root(&self.roots, path))
    }

    /// Passes the gate for the tool's own capability in `scope`; `what` describes the action for
    /// the user ("write /r/a.txt (12 bytes)").
    pub async fn allow(&self, scope: &Scope, what: &str) -> Result<(), ToolError> {
        self.allow_as(self.spec.cap, scope, what).await
    }

    /// Passes the gate for `capability` (a tool that also reads before it writes).
    pub async fn allow_as(
        &self,
        capability: Capability,
        scope: &Scope,
        what: &str,
    ) -> Result<(), ToolError> {
        self.allow_with(capability, scope, what, None).await
    }

    /// Passes the gate for `capability`, deciding `default` when no rule is configured for it
    /// (starting one of the configured language servers is `cmd.exec`, allowed unless a rule
    /// says otherwise).
    pub async fn allow_default(
        &self,
        capability: Capability,
        scope: &Scope,
        what: &str,
        default: crate::core::policy::Decision,
    ) -> Result<(), ToolError> {
        self.allow_with(capability, scope, what, Some(default))
            .await
    }

    async fn allow_with(
        &self,
        capability: Capability,
        scope: &Scope,
        what: &str,
        default: Option<crate::core::policy::Decision>,
    ) -> Result<(), ToolError> {
        let q = Question {
            capability,
            scope: scope.clone(),
            tool: self.spec.name,
            what: what.to_string(),
        };
        let mut steps = Vec::new();
        let r = self
            .gate
            .check_with(&q, default, self.asker, &mut steps)
            .await;
        self.steps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(steps);
        r.map_err(|r| match r {
            Refusal::Denied(m) => ToolError::Denied(m),
            Refusal::Cancelled => ToolError::Cancelled,
            Refusal::Pending => ToolError::NeedsInput,
        })
    }

    /// Records that a writing call passed the gate and is about to change something (outcome
    /// `started`, with its decisions so far), written before this returns; the call's own record
    /// follows when it ends. A call killed mid-write so still leaves a record.
    pub async fn begin(&self) {
        let steps = self.steps.lock().unwrap_or_else(|e| e.into_inner()).clone();
        self.gate
            .audit()
            .append(&Record {
                tool: self.spec.name,
                arguments: self.redacted.clone(),
                decisions: &steps,
                outcome: Outcome::Started,
                message: None,
                duration_ms: 0,
                client: self.client,
            })
            .written()
            .await;
    }

    /// A progress reporter usable from a blocking thread (no-op when the surface wants none).
    pub fn progress_fn(&self, what: &'static str) -> impl Fn(u64) + Send + Sync + 'static {
        let p = self.progress.clone();
        move |n| {
            if let Some(p) = &p {
                p(what, n)
            }
        }
    }

    /// A text result (no media).
    pub fn text(&self, text: String, structured: Map<String, Value>) -> Result<Output, ToolError> {
        Ok(Output::text(text, structured))
    }
}

/// Runs one tool call through the gate and records it in the audit log (written before this
/// returns). `Err(ToolError::Unknown)` for a name not in the catalog.
pub async fn run(gate: &Gate, inv: Invocation<'_>) -> Result<Output, ToolError> {
    let started = Instant::now();
    let redacted = audit::redact(&Value::Object(inv.args.clone()));
    let spec = catalog::find(inv.name);
    let call = spec.map(|spec| Call {
        spec,
        roots: inv.roots,
        ct: inv.ct.clone(),
        progress: inv.progress,
        settings: inv.settings,
        gate,
        asker: inv.asker,
        steps: Mutex::new(Vec::new()),
        redacted: redacted.clone(),
        client: inv.client,
    });
    let result = match (&call, inv.refused) {
        (None, _) => Err(ToolError::Unknown(inv.name.to_string())),
        (Some(_), Some(refused)) => Err(refused),
        (Some(call), None) => tokio::select! {
            r = dispatch(call, Value::Object(inv.args)) => r,
            _ = inv.ct.cancelled(), if call.spec.writes.is_none() => Err(ToolError::Cancelled),
        },
    };
    let steps = call
        .map(|c| c.steps.into_inner().unwrap_or_else(|e| e.into_inner()))
        .unwrap_or_default();
    let message = result.as_ref().err().map(ToolError::to_string);
    let outcome = match &result {
        Ok(_) => Outcome::Ok,
        Err(e) => e.outcome(),
    };
    gate.audit()
        .append(&Record {
            tool: inv.name,
            arguments: redacted,
            decisions: &steps,
            outcome,
            message: message.as_deref(),
            duration_ms: started.elapsed().as_millis() as u64,
            client: inv.client,
        })
        .written()
        .await;
    tracing::debug!(
        tool = inv.name,
        outcome = outcome.as_str(),
        ms = started.elapsed().as_millis() as u64,
        "tool call"
    );
    result
}

/// Parses `args` into the tool's argument struct and runs its operation.
async fn dispatch(call: &Call<'_>, args: Value) -> Result<Output, ToolError> {
    let name = call.spec.name;
    if name.starts_with("git_") {
        git::run(call, name, args).await
    } else if name.starts_with("lsp_") {
        lsp::run(call, name, args).await
    } else if name == "fetch" {
        net::run(call, name, args).await
    } else if name == "run_command" {
        cmd::run(call, name, args).await
    } else {
        fs::run(call, name, args).await
    }
}

/// Deserializes tool arguments, with a message naming the tool and the bad field.
pub fn parse<T: serde::de::DeserializeOwned>(tool: &str, args: Value) -> Result<T, ToolError> {
    serde_path_to_error::deserialize(args).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            ToolError::Failed(format!("invalid arguments for {tool}: {inner}"))
        } else {
            ToolError::Failed(format!("invalid arguments for {tool}: {path}: {inner}"))
        }
    })
}

/// A JSON object from pairs, for structured results.
pub fn obj(pairs: Vec<(&str, Value)>) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// The nearest directory at or above `path` (up to its configured root) holding `.git`, else the
/// root. `path` is canonical and inside `roots`.
pub fn project_root(roots: &Roots, path: &Path) -> PathBuf {
    let root = roots
        .scope_root(path)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| path.to_path_buf());
    let start = if path.is_dir() {
        path
    } else {
        path.parent().unwrap_or(path)
    };
    for dir in start.ancestors() {
        if !dir.starts_with(&root) {
            break;
        }
        if dir.join(".git").exists() {
            return dir.to_path_buf();
        }
    }
    root
}
