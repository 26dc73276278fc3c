//! The chat panel's conversations and their agent: one turn = the user's message (with the
//! context they attached and the project's rules file) sent through the router with the whole
//! conversation; when the model calls tools, they run in-process through the tool layer (the same
//! names and argument shapes as `zeke mcp`, confined to the project root, gated by the one
//! policy), and the results go back to the model, up to `chat.max_steps` times.
//!
//! Writes never happen directly: `write_file` and `edit_file` from the model become a patch
//! proposal reviewed in the editor like `:Zeke fix` (per hunk); the tool result tells the model
//! what was applied or the user's reason for denying. Other prompts (`run_command`, `fetch`) are
//! asked through the editor ([`EditorAsker`]). A turn is one task: cancelling it drops its
//! pending proposal (nothing half-applied) and kills a running command.

mod compact;
mod prompt;
mod saver;
pub mod store;

pub use compact::compact;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use serde_json::{Map, Value};
use tokio::sync::oneshot;

use crate::app::gate::{Answer, Asked, Asker, Question};
use crate::app::grants::GrantScope;
use crate::app::patch::Review;
use crate::app::tools::{self, Invocation, Roots};
use crate::app::{App, Job, Sink, UiEvent};
use crate::core::llm::{
    ChatRequest, ErrorKind, Intent, Message, ProviderError, ToolCall, ToolSpec, Usage,
};
use crate::router::{Pool, RouteRequest, Routed, Surface};

pub use prompt::{RULES_FILES, tool_specs, tool_specs_without_lsp};
use prompt::{rules, system_prompt};
use saver::Saver;
use store::{Session, Stored};

/// Most characters of one tool result sent to the model.
const MAX_RESULT_CHARS: usize = 24_000;

/// Something the user attached to a message (`#buffer`, `#selection`, `#file:PATH`, …).
#[derive(Debug, Clone, PartialEq)]
pub struct Attachment {
    /// What the panel shows, e.g. `#file:src/a.rs`.
    pub label: String,
    pub text: String,
}

/// A chat request from the editor.
#[derive(Debug, Clone)]
pub struct ChatParams {
    pub id: u64,
    /// The conversation to continue; `None` starts one.
    pub session: Option<String>,
    pub message: String,
    pub context: Vec<Attachment>,
    /// The project root: tools are confined to it, sessions are kept per root.
    pub root: String,
    /// Whether the model gets tools.
    pub agent: bool,
}

/// A tool call's progress, as the panel shows it (one folded line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolStatus {
    Running,
    Ok,
    Error,
    Denied,
}

impl ToolStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ToolStatus::Running => "running",
            ToolStatus::Ok => "ok",
            ToolStatus::Error => "error",
            ToolStatus::Denied => "denied",
        }
    }
}

/// Questions waiting for the editor's answer (`answer {ask, choice}`).
#[derive(Default)]
pub struct Asks {
    next: std::sync::atomic::AtomicU64,
    waiting: Mutex<HashMap<u64, oneshot::Sender<Answer>>>,
}

impl Asks {
    /// Delivers the editor's answer to question `ask`; `false` when nothing waits for it.
    pub fn answer(&self, ask: u64, a: Answer) -> bool {
        let tx = self
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&ask);
        tx.is_some_and(|tx| tx.send(a).is_ok())
    }
}

/// Asks the user in the editor (an `ask` event; the answer comes back as `answer`), waiting up to
/// `mcp.prompt_timeout_ms`. A question nobody answers is a denial.
pub struct EditorAsker {
    pub app: Arc<App>,
    pub sink: Sink,
    pub timeout: Duration,
}

impl Asker for EditorAsker {
    fn ask<'a>(&'a self, q: &'a Question) -> BoxFuture<'a, Asked> {
        Box::pin(async move {
            let asks = &self.app.asks;
            let id = asks.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            let (tx, rx) = oneshot::channel();
            asks.waiting
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, tx);
            let _ = self.sink.send(UiEvent::Ask {
                ask: id,
                capability: q.capability.as_str().into(),
                tool: q.tool.into(),
                what: q.what.clone(),
                root: q.scope.root.display().to_string(),
            });
            let answer = match tokio::time::timeout(self.timeout, rx).await {
                Ok(Ok(a)) => a,
                _ => {
                    asks.waiting
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&id);
                    Answer::Deny("no answer in time".into())
                }
            };
            Asked::Answer(answer)
        })
    }
}

fn user_message(p: &ChatParams) -> String {
    if p.context.is_empty() {
        return p.message.clone();
    }
    let mut s = String::from("Context:\n");
    for a in &p.context {
        s.push_str(&format!("\n### {}\n```\n{}\n```\n", a.label, a.text));
    }
    s.push('\n');
    s.push_str(&p.message);
    s
}

fn title_of(message: &str) -> String {
    let line = message.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let mut t: String = line.trim().chars().take(60).collect();
    if line.trim().chars().count() > 60 {
        t.push('…');
    }
    t
}

/// Runs one chat turn, sending `Chat*` events (or one `Error`).
pub async fn turn(app: Arc<App>, p: ChatParams, sink: Sink) {
    let timeout = app.setup().config.chat.timeout;
    let session = p.session.clone();
    match tokio::time::timeout(timeout, run(&app, &p, &sink)).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            let _ = sink.send(UiEvent::Error {
                id: Some(p.id),
                job: Job::Chat,
                error,
                provider: None,
            });
        }
        Err(_) => {
            let _ = sink.send(UiEvent::Error {
                id: Some(p.id),
                job: Job::Chat,
                error: ProviderError::new(
                    ErrorKind::Timeout,
                    format!(
                        "the turn did not finish within {} s (chat.timeout_ms){}",
                        timeout.as_secs(),
                        session
                            .map(|s| format!("; session {s} keeps what was done"))
                            .unwrap_or_default()
                    ),
                ),
                provider: None,
            });
        }
    }
}

async fn run(app: &Arc<App>, p: &ChatParams, sink: &Sink) -> Result<(), ProviderError> {
    let setup = app.setup();
    let cfg = setup.config.chat.clone();
    let now = crate::ledger::now_ms();
    let session = match &p.session {
        Some(id) => app.chats.load(&p.root, id).map_err(|e| {
            ProviderError::new(ErrorKind::Invalid, format!("chat session {id}: {e}"))
        })?,
        None => Session {
            id: store::new_id(now),
            root: p.root.clone(),
            title: title_of(&p.message),
            created_ms: now,
            updated_ms: now,
            revision: 0,
            messages: Vec::new(),
        },
    };
    let sid = session.id.clone();
    let base = (session.revision, session.messages.len());
    let mut saver = Saver {
        app: app.as_ref(),
        session,
        base,
        sink: sink.clone(),
        saved: false,
    };
    let rules = rules(&p.root);
    let user = Message::user(user_message(p));
    saver
        .session
        .messages
        .push(Stored::from_message(&user, None, None));
    let _ = sink.send(UiEvent::ChatContext {
        id: p.id,
        session: sid.clone(),
        items: p
            .context
            .iter()
            .map(|a| (a.label.clone(), (a.text.len() / 4) as u64))
            .collect(),
        rules: rules
            .as_ref()
            .map(|(n, t)| (n.clone(), (t.len() / 4) as u64)),
    });
    let roots = Roots::new(&[PathBuf::from(&p.root)])
        .map_err(|e| ProviderError::new(ErrorKind::Invalid, format!("project root: {e}")))?
        .with_protected(app.protected().await);
    let settings = tools::Settings::from_config(&setup.config);
    let asker = EditorAsker {
        app: app.clone(),
        sink: sink.clone(),
        timeout: setup.config.mcp.prompt_timeout,
    };
    let clients = app.mcp_clients();
    let mut specs = if !p.agent {
        Arc::default()
    } else if crate::app::lsp::available(Path::new(&p.root), &setup.config.lsp) {
        tool_specs()
    } else {
        tool_specs_without_lsp()
    };
    if p.agent && !clients.is_empty() {
        // the external servers' tools, namespaced NAME__TOOL (a server that fails is logged and
        // left out)
        let mut all = specs.to_vec();
        all.extend(clients.tools().await.into_iter().map(|t| ToolSpec {
            name: t.name,
            description: t.description,
            parameters: t.input_schema,
        }));
        specs = all.into();
    }
    let mut total = Usage::default();
    let mut cost = 0.0;
    // tokens spent by the turn so far: every step's prompt and answer
    let mut spent: u64 = 0;
    for step in 1..=cfg.max_steps {
        let mut messages = vec![Message::system(system_prompt(
            &p.root,
            p.agent,
            rules.as_ref(),
        ))];
        messages.extend(saver.session.messages.iter().filter_map(Stored::to_message));
        let req = ChatRequest {
            tools: specs.clone(),
            ..ChatRequest::new(messages, cfg.max_tokens, 0.2)
        };
        let pool: Arc<dyn Pool> = setup.clone();
        let rr = RouteRequest {
            conversation: Some(sid.clone()),
            ..RouteRequest::new(Intent::Chat, Surface::Nvim)
        };
        let mut stream = app.router.chat(pool, rr, req);
        let (mut text, mut calls) = (String::new(), Vec::<ToolCall>::new());
        let (mut provider, mut model) = (String::new(), String::new());
        let mut done = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(Routed::Answering {
                    provider: pr,
                    model: m,
                }) => {
                    provider = pr;
                    model = m;
                }
                Ok(Routed::Text(t)) => {
                    text.push_str(&t);
                    let _ = sink.send(UiEvent::ChatDelta {
                        id: p.id,
                        session: sid.clone(),
                        delta: t,
                        restart: false,
                        provider: provider.clone(),
                        model: model.clone(),
                    });
                }
                Ok(Routed::Restart) => {
                    text.clear();
                    calls.clear();
                    let _ = sink.send(UiEvent::ChatDelta {
                        id: p.id,
                        session: sid.clone(),
                        delta: String::new(),
                        restart: true,
                        provider: provider.clone(),
                        model: model.clone(),
                    });
                }
                Ok(Routed::ToolCall(c)) => calls.push(c),
                Ok(Routed::Fallback { from, error }) => {
                    let _ = sink.send(UiEvent::Notice {
                        job: Job::Chat,
                        message: format!("{from} failed ({error}); the next provider takes over"),
                    });
                }
                Ok(Routed::Notice(message)) => {
                    let _ = sink.send(UiEvent::Notice {
                        job: Job::Chat,
                        message,
                    });
                }
                Ok(Routed::Done(s)) => done = Some(s),
                Err(f) => return Err(f.error),
            }
        }
        let summary = done.unwrap_or_default();
        total.input_tokens = summary.usage.input_tokens; // the latest prompt: the window in use
        total.output_tokens += summary.usage.output_tokens;
        cost += summary.cost_usd;
        let assistant = Message::assistant_calls(text, calls.clone());
        saver.session.messages.push(Stored::from_message(
            &assistant,
            Some(&provider),
            Some(&model),
        ));
        spent += u64::from(summary.usage.input_tokens) + u64::from(summary.usage.output_tokens);
        let limit = if calls.is_empty() {
            None
        } else if step == cfg.max_steps {
            Some(format!("{} model calls (chat.max_steps)", cfg.max_steps))
        } else if spent >= cfg.max_turn_tokens {
            Some(format!(
                "{spent} tokens this turn (chat.max_turn_tokens = {})",
                cfg.max_turn_tokens
            ))
        } else {
            None
        };
        let last_step = calls.is_empty() || limit.is_some();
        if let Some(limit) = &limit {
            let _ = sink.send(UiEvent::Notice {
                job: Job::Chat,
                message: format!(
                    "stopped after {limit}; its last tool calls were not run; say \"go on\" to continue"
                ),
            });
            for c in &calls {
                let _ = sink.send(UiEvent::ChatTool {
                    id: p.id,
                    session: sid.clone(),
                    call_id: c.id.clone(),
                    name: c.name.clone(),
                    arguments: c.arguments.clone(),
                    status: ToolStatus::Error,
                    summary: "not run: the turn stopped at its limit".into(),
                });
            }
        }
        if !last_step {
            for c in &calls {
                let (status, summary_line, result) =
                    call_tool(app, p, &sid, c, &roots, &settings, &asker, sink).await;
                let _ = sink.send(UiEvent::ChatTool {
                    id: p.id,
                    session: sid.clone(),
                    call_id: c.id.clone(),
                    name: c.name.clone(),
                    arguments: c.arguments.clone(),
                    status,
                    summary: summary_line,
                });
                saver.session.messages.push(Stored::from_message(
                    &Message::tool_result(&c.id, result, status != ToolStatus::Ok),
                    None,
                    None,
                ));
            }
            continue;
        }
        let window = setup
            .candidates()
            .into_iter()
            .find(|c| c.name == provider)
            .and_then(|c| c.context_window);
        saver.commit();
        let _ = sink.send(UiEvent::ChatDone {
            id: p.id,
            session: sid.clone(),
            provider,
            model,
            input_tokens: u64::from(total.input_tokens),
            output_tokens: u64::from(total.output_tokens),
            context_window: window.map(u64::from),
            cost_usd: cost,
            steps: step as u64,
        });
        return Ok(());
    }
    Ok(())
}

/// Runs one tool call; returns its status, a one-line summary for the panel, and the text for the
/// model.
#[allow(clippy::too_many_arguments)]
async fn call_tool(
    app: &Arc<App>,
    p: &ChatParams,
    sid: &str,
    c: &ToolCall,
    roots: &Roots,
    settings: &tools::Settings,
    asker: &EditorAsker,
    sink: &Sink,
) -> (ToolStatus, String, String) {
    let _ = sink.send(UiEvent::ChatTool {
        id: p.id,
        session: sid.to_string(),
        call_id: c.id.clone(),
        name: c.name.clone(),
        arguments: c.arguments.clone(),
        status: ToolStatus::Running,
        summary: String::new(),
    });
    let args: Map<String, Value> =
        match serde_json::from_str::<Value>(if c.arguments.trim().is_empty() {
            "{}"
        } else {
            &c.arguments
        }) {
            Ok(Value::Object(m)) => m,
            _ => {
                let m = format!(
                    "the arguments of {} are not a JSON object: {}",
                    c.name, c.arguments
                );
                return (ToolStatus::Error, m.clone(), m);
            }
        };
    if matches!(c.name.as_str(), "write_file" | "edit_file") {
        return crate::app::chat_edit::propose(app, p, c, args, roots, sink).await;
    }
    let ct = tokio_util::sync::CancellationToken::new();
    // a cancelled turn drops this future: the token fires, a running command is killed
    let _cancel = ct.clone().drop_guard();
    if tools::catalog::find(&c.name).is_none() && c.name.contains("__") {
        // an external MCP server's tool, gated by mcp.call
        let root = PathBuf::from(&p.root);
        let r = app
            .mcp_clients()
            .call(
                &app.gate,
                crate::app::mcp_client::McpCall {
                    name: &c.name,
                    args,
                    scope_root: &root,
                    asker,
                    ct,
                    client: Some("nvim"),
                },
            )
            .await;
        return match r {
            Ok(text) => {
                let first = text.lines().next().unwrap_or("").chars().take(80).collect();
                (ToolStatus::Ok, first, text)
            }
            Err(e) => failed(&e),
        };
    }
    let result = tools::run(
        &app.gate,
        Invocation {
            name: &c.name,
            args,
            roots: roots.clone(),
            ct,
            progress: None,
            asker,
            settings,
            client: Some("nvim"),
            refused: None,
        },
    )
    .await;
    match result {
        Ok(out) => {
            let mut text = out.text;
            if text.chars().count() > MAX_RESULT_CHARS {
                let cut = crate::core::text::floor_char_boundary(&text, MAX_RESULT_CHARS);
                text.truncate(cut);
                text.push_str("\n… (cut: ask for a smaller part)");
            }
            let first = text.lines().next().unwrap_or("").chars().take(80).collect();
            (ToolStatus::Ok, first, text)
        }
        Err(e) => failed(&e),
    }
}

/// A failed tool call as the panel and the model see it: `denied` when the policy or the user
/// refused it, else `error`; a one-line summary and the whole message.
fn failed(e: &tools::ToolError) -> (ToolStatus, String, String) {
    use crate::app::audit::Outcome;
    let status = match e.outcome() {
        Outcome::Denied | Outcome::Refused => ToolStatus::Denied,
        _ => ToolStatus::Error,
    };
    let m = e.to_string();
    (status, m.chars().take(120).collect(), m)
}

/// The editor's answer to an `ask`: `allow_once`, `allow_all` (`scope` session | project) or
/// `deny` (with `reason`).
pub fn parse_answer(
    choice: &str,
    scope: Option<&str>,
    reason: Option<&str>,
) -> Result<Answer, String> {
    match choice {
        "allow_once" => Ok(Answer::AllowOnce),
        "allow_all" => Ok(Answer::AllowAll(GrantScope::parse(
            scope.unwrap_or("session"),
        )?)),
        "deny" => Ok(Answer::Deny(
            reason
                .filter(|r| !r.trim().is_empty())
                .unwrap_or("denied")
                .to_string(),
        )),
        other => Err(format!(
            "unknown choice {other:?} (allow_once, allow_all, deny)"
        )),
    }
}

/// How a reviewed agent edit went, for the model.
pub fn review_result(
    path: &str,
    review: &Review,
    applied: &[usize],
    hunks: usize,
) -> (ToolStatus, String) {
    match review {
        Review::AllowOnce | Review::AllowAll(_) | Review::AllowRule => (
            ToolStatus::Ok,
            if applied.len() == hunks {
                format!("The user approved the change: {path} was updated ({hunks} hunk(s)).")
            } else {
                format!(
                    "The user approved {} of {hunks} hunk(s) of the change to {path}; the others were not applied.",
                    applied.len()
                )
            },
        ),
        Review::Deny(reason) => (
            ToolStatus::Denied,
            match reason {
                Some(r) => format!("The user denied the change to {path}: {r}"),
                None => format!("The user denied the change to {path}."),
            },
        ),
        Review::Failed(e) => (
            ToolStatus::Error,
            format!(
                "The change to {path} could not be applied: {}",
                e.as_deref().unwrap_or("unknown error")
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_gets_the_mcp_tools() {
        let names: Vec<String> = tool_specs().iter().map(|t| t.name.clone()).collect();
        for n in [
            "read_text_file",
            "edit_file",
            "write_file",
            "search_files",
            "git_status",
        ] {
            assert!(names.iter().any(|x| x == n), "{n} in {names:?}");
        }
        assert!(!names.iter().any(|x| x == "list_allowed_directories"));
    }

    #[test]
    fn context_goes_before_the_message() {
        let p = ChatParams {
            id: 1,
            session: None,
            message: "why?".into(),
            context: vec![Attachment {
                label: "#selection".into(),
                text: "x = 1".into(),
            }],
            root: "/r".into(),
            agent: true,
        };
        assert_eq!(
            user_message(&p),
            "Context:\n\n### #selection\n```\nx = 1\n```\n\nwhy?"
        );
        assert_eq!(
            title_of("\n  fix the parser please  \n"),
            "fix the parser please"
        );
    }
}
