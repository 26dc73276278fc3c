//! One tool call's context ([`Call`]), its results ([`Done`], [`Fail`]) and the policy gate:
//! [`Call::allow`] decides a capability in a scope and, for `prompt`, asks the user through MCP
//! elicitation (Allow once / Allow all / Deny) when the client can be asked.
//!
//! Invariants: `prompt` without a way to ask fails closed, with the exact config lines that would
//! allow it; a declined, cancelled, timed-out or malformed answer is a denial; "Allow all" is kept
//! in memory for this server's lifetime, per (scope, capability); every decision is recorded for the
//! audit log; an `InputRequiredResult` answer counts only for the question this server asked
//! ([`super::questions`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rmcp::model::{
    CallToolResult, ContentBlock, ElicitRequest, ElicitRequestParams, ElicitResult,
    ElicitationAction, ElicitationSchema, EnumSchema, InputRequest, InputRequests,
    InputRequiredResult, ProgressNotificationParam, ProgressToken,
};
use rmcp::service::RequestContext;
use rmcp::{Peer, RoleServer};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::output;
use super::questions::{Answers, Question};
use super::tools::{Cap, Spec};
use crate::core::policy::{Decision, Policy, Scope};
use crate::workspace::{FsError, Roots};

/// Why a call did not succeed; shown to the model as an `isError` result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Fail {
    /// A confinement rule refused (rule id in the message).
    #[error("refused (rule {rule}): {message}")]
    Refused { rule: &'static str, message: String },
    /// The policy or the user said no.
    #[error("{0}")]
    Denied(String),
    #[error("{0}")]
    Failed(String),
    #[error("cancelled by the client")]
    Cancelled,
    /// 2026-07-28 clients: the user must be asked first; answered with an `InputRequiredResult`
    /// holding this elicitation under `key`, and the call is retried with the answer.
    #[error("waiting for the user's answer ({key})")]
    NeedsInput {
        key: String,
        request: Box<ElicitRequest>,
    },
}

impl Fail {
    /// The audit outcome: `refused`, `denied`, `error` or `cancelled`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Fail::Refused { .. } => "refused",
            Fail::Denied(_) => "denied",
            Fail::Failed(_) => "error",
            Fail::Cancelled => "cancelled",
            Fail::NeedsInput { .. } => "input-required",
        }
    }
}

impl From<FsError> for Fail {
    fn from(e: FsError) -> Fail {
        match e {
            FsError::Refused { rule, message } => Fail::Refused { rule, message },
            FsError::Failed(m) if m == "cancelled" => Fail::Cancelled,
            FsError::Failed(m) => Fail::Failed(m),
        }
    }
}

/// A successful result: the text (already paged), structured fields, or explicit content blocks.
#[derive(Debug, Clone, Default)]
pub struct Done {
    pub text: String,
    /// `structuredContent` (for tools with an `outputSchema`).
    pub structured: Map<String, Value>,
    /// Content blocks to return instead of the text (media).
    pub blocks: Option<Vec<ContentBlock>>,
}

impl Done {
    pub fn into_result(self, structured: bool) -> CallToolResult {
        let mut r = CallToolResult::success(
            self.blocks
                .unwrap_or_else(|| vec![ContentBlock::text(self.text)]),
        );
        if structured {
            r.structured_content = Some(Value::Object(self.structured));
        }
        r
    }
}

/// Everything a handler needs for one call.
pub struct Call {
    pub spec: &'static Spec,
    pub roots: Roots,
    pub ct: CancellationToken,
    pub peer: Peer<RoleServer>,
    progress: Option<ProgressToken>,
    pub page: u32,
    shared: Arc<Shared>,
    decisions: Mutex<Vec<String>>,
    /// Whether the request uses the 2026-07-28 lifecycle (no server→client requests: prompts go
    /// through `InputRequiredResult`).
    modern: bool,
    /// Whether the client declared elicitation (at `initialize` or in the request's `_meta`).
    can_elicit: bool,
    /// Answers to earlier `InputRequiredResult`s, each tied to the question this server asked
    /// ([`super::questions`]).
    answers: Answers,
}

impl Call {
    pub fn new(
        spec: &'static Spec,
        roots: Roots,
        ctx: &RequestContext<RoleServer>,
        page: u32,
        shared: Arc<Shared>,
        answers: Answers,
    ) -> Call {
        let modern = ctx
            .protocol_version()
            .is_some_and(|v| v.as_str() >= "2026-07-28");
        let can_elicit = ctx
            .client_capabilities()
            .is_some_and(|c| c.elicitation.is_some());
        Call {
            modern,
            can_elicit,
            answers,
            spec,
            roots,
            ct: ctx.ct.clone(),
            peer: ctx.peer.clone(),
            progress: ctx.meta.get_progress_token(),
            page,
            shared,
            decisions: Mutex::new(Vec::new()),
        }
    }

    /// The decisions recorded so far, e.g. `fs.write allow in /r ([capabilities])`.
    pub fn decisions(&self) -> Vec<String> {
        self.decisions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn record(&self, s: String) {
        self.decisions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(s);
    }

    /// Pages `text` and builds the result; `extra` structured fields are kept only when the whole
    /// output fits in one page.
    pub fn text(&self, text: String, extra: Map<String, Value>) -> Result<Done, Fail> {
        let p = output::page(
            &text,
            self.spec.name,
            self.page,
            self.shared.max_output_chars,
        )
        .map_err(Fail::Failed)?;
        let mut structured = Map::new();
        structured.insert("content".into(), Value::String(p.text.clone()));
        if p.pages > 1 {
            structured.insert("page".into(), json!(p.page));
            structured.insert("pages".into(), json!(p.pages));
        } else {
            structured.extend(extra);
        }
        Ok(Done {
            text: p.text,
            structured,
            blocks: None,
        })
    }

    /// A progress reporter usable from a blocking thread (no-op when the client sent no token).
    pub fn progress_fn(&self, what: &'static str) -> impl Fn(u64) + Send + Sync + 'static {
        let tx = self.progress.clone().map(|token| {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
            let peer = self.peer.clone();
            tokio::spawn(async move {
                while let Some(n) = rx.recv().await {
                    let p = ProgressNotificationParam::new(token.clone(), n as f64)
                        .with_message(format!("{what}: {n} entries"));
                    let _ = peer.notify_progress(p).await;
                }
            });
            tx
        });
        move |n| {
            if let Some(tx) = &tx {
                let _ = tx.send(n);
            }
        }
    }

    /// The project root that scopes an action on canonical `path`: the nearest enclosing git work
    /// tree inside the configured roots, else the configured root containing it.
    pub fn scope_for(&self, path: &Path) -> Scope {
        Scope::new(project_root(&self.roots, path))
    }

    /// Checks `cap` in `scope`. `what` describes the action for the user ("write /r/a.txt").
    pub async fn allow(&self, cap: Cap, scope: &Scope, what: &str) -> Result<(), Fail> {
        let key = cap.key();
        let verdict = {
            let grants = self.shared.grants.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.policy.decide(key, scope, &grants)
        };
        let at = scope.root.display();
        match verdict.decision {
            Decision::Allow => {
                self.record(format!("{key} allow in {at} ({})", verdict.rule));
                Ok(())
            }
            Decision::Deny => {
                self.record(format!("{key} deny in {at} ({})", verdict.rule));
                Err(Fail::Denied(format!(
                    "refused (rule policy-deny): {key} is denied in {at} by {} in the Zeke config{}. To allow it, set in {}:\n{}",
                    verdict.rule,
                    self.config_note(),
                    self.config_file(),
                    Policy::how_to_allow(key, scope)
                )))
            }
            Decision::Prompt => self.ask(cap, scope, what).await,
        }
    }

    fn config_file(&self) -> String {
        self.shared
            .config_path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "~/.config/zeke/config.toml".into())
    }

    fn config_note(&self) -> String {
        match &self.shared.config_path {
            Some(p) => format!(" ({})", p.display()),
            None => String::new(),
        }
    }

    async fn ask(&self, cap: Cap, scope: &Scope, what: &str) -> Result<(), Fail> {
        let key = cap.key();
        let at = scope.root.display();
        if !self.can_elicit {
            self.record(format!(
                "{key} prompt in {at}: client cannot be asked, refused"
            ));
            return Err(Fail::Denied(format!(
                "refused (rule policy-prompt): {what} needs approval ({key} = \"prompt\" in {at}), and this MCP client cannot ask the user (it did not declare the elicitation capability). To allow it without asking, add to {}:\n{}\nor, for every root:\n[capabilities]\n\"{key}\" = \"allow\"",
                self.config_file(),
                Policy::how_to_allow(key, scope)
            )));
        }
        let message = format!(
            "Zeke: {} wants to {what} ({key} in {at}). Allow?",
            self.spec.name
        );
        let answer = if self.modern {
            let question = Question {
                cap: key,
                at: scope.root.clone(),
                tool: self.spec.name,
            };
            match self.answers.find(&question) {
                Some(v) => serde_json::from_value::<ElicitResult>(v.clone())
                    .map(|r| decision(&r))
                    .map_err(|e| format!("malformed answer: {e}")),
                None => {
                    let params = ask_params(message).map_err(Fail::Failed)?;
                    self.record(format!(
                        "{key} prompt in {at}: asked through input_required"
                    ));
                    return Err(Fail::NeedsInput {
                        key: self.shared.questions.ask(question),
                        request: Box::new(ElicitRequest::new(params)),
                    });
                }
            }
        } else {
            tokio::select! {
            a = elicit(&self.peer, message, self.shared.prompt_timeout) => a,
            _ = self.ct.cancelled() => {
                self.record(format!("{key} prompt in {at}: call cancelled before an answer, refused"));
                return Err(Fail::Cancelled);
            }
            }
        };
        match answer.as_deref() {
            Ok("allow_once") => {
                self.record(format!("{key} prompt in {at}: user allowed once"));
                Ok(())
            }
            Ok("allow_all") => {
                self.shared
                    .grants
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .grant(scope, key);
                self.record(format!("{key} prompt in {at}: user allowed all"));
                Ok(())
            }
            Ok(other) => {
                self.record(format!("{key} prompt in {at}: user denied ({other})"));
                Err(Fail::Denied(format!(
                    "denied by the user: {what} ({key} in {at}) was not allowed"
                )))
            }
            Err(e) => {
                self.record(format!("{key} prompt in {at}: no answer ({e}), refused"));
                Err(Fail::Denied(format!(
                    "refused (rule policy-prompt): {what} needs approval ({key} in {at}) and no answer came: {e}"
                )))
            }
        }
    }

    /// The `InputRequiredResult` asking for `request` under `key`; earlier answers stay with the
    /// server, named by the `requestState` it returns, so a call that asks twice (a move across
    /// projects) does not loop and the client cannot rewrite them.
    pub fn input_required(&self, key: String, request: ElicitRequest) -> InputRequiredResult {
        let mut requests = InputRequests::new();
        requests.insert(key, InputRequest::Elicitation(request));
        let state = self.shared.questions.carry(&self.answers);
        InputRequiredResult::new(Some(requests), state)
    }
}

/// `allow_once`, `allow_all`, or why not (`deny`, `declined`, `dismissed`).
fn decision(r: &ElicitResult) -> String {
    match r.action {
        ElicitationAction::Accept => {
            let d = r
                .content
                .as_ref()
                .and_then(|c| c.get("decision"))
                .and_then(Value::as_str)
                .unwrap_or("deny");
            if ["allow_once", "allow_all"].contains(&d) {
                d.to_string()
            } else {
                "deny".to_string()
            }
        }
        ElicitationAction::Decline => "declined".into(),
        _ => "dismissed".into(),
    }
}

/// The form asking for `allow_once`, `allow_all` or `deny`.
fn ask_params(message: String) -> Result<ElicitRequestParams, String> {
    let choice = EnumSchema::builder(vec!["allow_once".into(), "allow_all".into(), "deny".into()])
        .enum_titles(vec![
            "Allow once".into(),
            "Allow all (this project, until the server stops)".into(),
            "Deny".into(),
        ])
        .map_err(|e| e.to_string())?
        .description("Your decision")
        .build();
    let schema: ElicitationSchema = ElicitationSchema::builder()
        .required_enum_schema("decision", choice)
        .build()
        .map_err(|e| e.to_string())?;
    Ok(ElicitRequestParams::FormElicitationParams {
        meta: None,
        message,
        requested_schema: schema,
    })
}

/// Asks the user through an `elicitation/create` request (pre-2026-07-28 sessions).
async fn elicit(
    peer: &Peer<RoleServer>,
    message: String,
    timeout: std::time::Duration,
) -> Result<String, String> {
    let params = ask_params(message)?;
    let result = peer
        .create_elicitation_with_timeout(params, Some(timeout))
        .await
        .map_err(|e| e.to_string())?;
    Ok(decision(&result))
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
