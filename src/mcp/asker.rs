//! How `zeke mcp` asks the user when the policy says prompt: an `elicitation/create` request to a
//! client that declared elicitation (pre-2026-07-28 sessions), or an `InputRequiredResult` whose
//! answer comes back with the retried call (2026-07-28 sessions, [`super::questions`]). A client
//! that can do neither gets a refusal naming the config lines that would allow the action.
//!
//! The choices are Allow once, Allow all (this project, until the server stops: a session grant)
//! and Allow all, saved for the project (a project grant, honoured by every Zeke process and
//! revocable with `zeke grants revoke`), and Deny.

use std::sync::Mutex;

use futures_util::future::BoxFuture;
use rmcp::model::{
    ElicitRequest, ElicitRequestParams, ElicitResult, ElicitationAction, ElicitationSchema,
    EnumSchema, InputRequest, InputRequests, InputRequiredResult,
};
use rmcp::service::RequestContext;
use rmcp::{Peer, RoleServer};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::questions::{Answers, Question as Asked_q, Questions};
use crate::app::gate::{Answer, Asked, Asker, Question};
use crate::app::grants::GrantScope;

/// The asker of one MCP call.
pub struct McpAsker<'a> {
    peer: Peer<RoleServer>,
    ct: CancellationToken,
    /// Whether the request uses the 2026-07-28 lifecycle (no server→client requests: prompts go
    /// through `InputRequiredResult`).
    modern: bool,
    /// Whether the client declared elicitation (at `initialize` or in the request's `_meta`).
    can_elicit: bool,
    /// Answers to earlier `InputRequiredResult`s, each tied to the question this server asked.
    answers: Answers,
    questions: &'a Questions,
    timeout: std::time::Duration,
    /// The question sent out as an input-required result, under its key.
    pending: Mutex<Option<(String, ElicitRequest)>>,
}

impl<'a> McpAsker<'a> {
    pub fn new(
        ctx: &RequestContext<RoleServer>,
        answers: Answers,
        questions: &'a Questions,
        timeout: std::time::Duration,
    ) -> McpAsker<'a> {
        McpAsker {
            peer: ctx.peer.clone(),
            ct: ctx.ct.clone(),
            modern: ctx
                .protocol_version()
                .is_some_and(|v| v.as_str() >= "2026-07-28"),
            can_elicit: ctx
                .client_capabilities()
                .is_some_and(|c| c.elicitation.is_some()),
            answers,
            questions,
            timeout,
            pending: Mutex::new(None),
        }
    }

    /// The `InputRequiredResult` for the question the call ended on, if it ended on one. Earlier
    /// answers stay with the server, named by the `requestState` it returns, so a call that asks
    /// twice (a move across projects) does not loop and the client cannot rewrite them.
    pub fn input_required(&self) -> Option<InputRequiredResult> {
        let (key, request) = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()?;
        let mut requests = InputRequests::new();
        requests.insert(key, InputRequest::Elicitation(request));
        let state = self.questions.carry(&self.answers);
        Some(InputRequiredResult::new(Some(requests), state))
    }
}

impl Asker for McpAsker<'_> {
    fn ask<'b>(&'b self, q: &'b Question) -> BoxFuture<'b, Asked> {
        Box::pin(async move {
            if !self.can_elicit {
                return Asked::CannotAsk(
                    "this MCP client cannot ask the user (it did not declare the elicitation capability)"
                        .into(),
                );
            }
            let message = format!(
                "Zeke: {} wants to {} ({} in {}). Allow?",
                q.tool,
                q.what,
                q.capability,
                q.scope.root.display()
            );
            let answer = if self.modern {
                let question = Asked_q {
                    cap: q.capability,
                    at: q.scope.root.clone(),
                    tool: q.tool,
                    what: q.what.clone(),
                };
                match self.answers.find(&question) {
                    Some(v) => serde_json::from_value::<ElicitResult>(v.clone())
                        .map(|r| decision(&r))
                        .map_err(|e| format!("malformed answer: {e}")),
                    None => {
                        let params = match ask_params(message) {
                            Ok(p) => p,
                            Err(e) => return Asked::NoAnswer(e),
                        };
                        let key = self.questions.ask(question);
                        *self.pending.lock().unwrap_or_else(|e| e.into_inner()) =
                            Some((key, ElicitRequest::new(params)));
                        return Asked::Pending;
                    }
                }
            } else {
                tokio::select! {
                    a = elicit(&self.peer, message, self.timeout) => a,
                    _ = self.ct.cancelled() => return Asked::Cancelled,
                }
            };
            match answer {
                Ok(a) => Asked::Answer(a),
                Err(e) => Asked::NoAnswer(e),
            }
        })
    }
}

/// The answer in an elicitation result: `allow_once`, `allow_all`, `allow_project`; anything else
/// (and `decline` / `cancel`) is a denial.
fn decision(r: &ElicitResult) -> Answer {
    match r.action {
        ElicitationAction::Accept => {
            match r
                .content
                .as_ref()
                .and_then(|c| c.get("decision"))
                .and_then(Value::as_str)
            {
                Some("allow_once") => Answer::AllowOnce,
                Some("allow_all") => Answer::AllowAll(GrantScope::Session),
                Some("allow_project") => Answer::AllowAll(GrantScope::Project),
                _ => Answer::Deny("deny".into()),
            }
        }
        ElicitationAction::Decline => Answer::Deny("declined".into()),
        _ => Answer::Deny("dismissed".into()),
    }
}

/// The form asking for `allow_once`, `allow_all`, `allow_project` or `deny`.
fn ask_params(message: String) -> Result<ElicitRequestParams, String> {
    let choice = EnumSchema::builder(vec![
        "allow_once".into(),
        "allow_all".into(),
        "allow_project".into(),
        "deny".into(),
    ])
    .enum_titles(vec![
        "Allow once".into(),
        "Allow all (this project, until the server stops)".into(),
        "Allow all, saved for this project (every Zeke; zeke grants revoke ends it)".into(),
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
) -> Result<Answer, String> {
    let params = ask_params(message)?;
    let result = peer
        .create_elicitation_with_timeout(params, Some(timeout))
        .await
        .map_err(|e| e.to_string())?;
    Ok(decision(&result))
}
