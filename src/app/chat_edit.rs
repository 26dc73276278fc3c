//! The chat agent's `write_file` and `edit_file`: never a direct write. The call's arguments
//! (the MCP tools' shapes) are checked like the tools check them — confined to the project root,
//! protected files refused, `fs.write = "deny"` refused — then turned into a patch for the file
//! (hunks against its text on disk) that the editor reviews per hunk like `:Zeke fix`; the turn
//! waits for the answer and tells the model what happened.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::app::chat::{ChatParams, ToolStatus, review_result};
use crate::app::patch::Proposal;
use crate::app::tools::catalog::{EditFile, WriteFile};
use crate::app::tools::{self, Roots};
use crate::app::{App, Job, Sink, UiEvent};
use crate::core::edit;
use crate::core::llm::ToolCall;
use crate::core::patch;
use crate::core::policy::{Capability, Decision, Scope};
use crate::workspace::{Must, files};

/// A withdrawn proposal when the turn is dropped before the user answered.
struct Withdraw<'a> {
    app: &'a App,
    patch: Option<u64>,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.patch {
            self.app.patches.withdraw(p);
        }
    }
}

/// Proposes the change of `write_file` / `edit_file` call `c` and waits for the review.
pub async fn propose(
    app: &Arc<App>,
    p: &ChatParams,
    c: &ToolCall,
    args: Map<String, Value>,
    roots: &Roots,
    sink: &Sink,
) -> (ToolStatus, String, String) {
    let fail = |m: String| (ToolStatus::Error, m.chars().take(120).collect(), m);
    let (path, change): (String, Change) = match c.name.as_str() {
        "write_file" => match tools::parse::<WriteFile>(&c.name, Value::Object(args)) {
            Ok(a) => (a.path, Change::Write(a.content)),
            Err(e) => return fail(e.to_string()),
        },
        _ => match tools::parse::<EditFile>(&c.name, Value::Object(args)) {
            Ok(a) => (
                a.path,
                Change::Edit(
                    a.edits
                        .into_iter()
                        .map(|e| edit::Edit {
                            old: e.old_text,
                            new: e.new_text,
                        })
                        .collect(),
                ),
            ),
            Err(e) => return fail(e.to_string()),
        },
    };
    let must = match change {
        Change::Write(_) => Must::BeCreatable,
        Change::Edit(_) => Must::Exist,
    };
    let real = match roots.resolve(&path, must) {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    if let Err(e) = roots.check_writable(&real, &path) {
        return fail(e.to_string());
    }
    let scope = Scope::new(tools::project_root(roots, &real));
    let (verdict, _) = app.gate.decide(Capability::FsWrite, &scope);
    if verdict.decision == Decision::Deny {
        let m = format!(
            "changing files is denied by the policy (fs.write = \"deny\" in {}); nothing was asked or changed",
            verdict.rule
        );
        return (ToolStatus::Denied, m.clone(), m);
    }
    // the file's text and the changed text: blocking I/O and matching on the blocking pool
    let (r, shown, rel) = (roots.clone(), real.display().to_string(), path.clone());
    let computed = tokio::task::spawn_blocking(move || -> Result<(String, String), String> {
        let base = match files::read_utf8(&r, &rel) {
            Ok((_, text)) => text,
            Err(_)
                if matches!(change, Change::Write(_)) && !std::path::Path::new(&shown).exists() =>
            {
                String::new()
            }
            Err(e) => return Err(e.to_string()),
        };
        let new = match change {
            Change::Write(content) => content,
            Change::Edit(edits) => {
                edit::apply(&base, &edits, &shown)
                    .map_err(|e| format!("{rel}: {e}; nothing was proposed"))?
                    .text
            }
        };
        Ok((base, new))
    })
    .await;
    let (base, new) = match computed {
        Ok(Ok(x)) => x,
        Ok(Err(m)) => return fail(m),
        Err(e) => return fail(format!("internal error: {e}")),
    };
    let (base, new) = (patch::lines(&base), patch::lines(&new));
    let hunks = patch::diff(&base, &new);
    if hunks.is_empty() {
        let m = format!("{path} already has this content; nothing to change");
        return (ToolStatus::Ok, m.clone(), m);
    }
    let (provider, model) = app.router.last_answer().unwrap_or_default();
    let rule = (verdict.decision == Decision::Allow)
        .then(|| format!("fs.write = \"allow\" in {}", verdict.rule));
    let n = hunks.len();
    let real_s = real.display().to_string();
    let (patch_id, waiter) = app.patches.propose_file(
        Job::Chat,
        real_s.clone(),
        scope,
        (verdict.decision, verdict.rule),
        base,
        hunks.clone(),
        provider.clone(),
    );
    let mut guard = Withdraw {
        app: app.as_ref(),
        patch: Some(patch_id),
    };
    let _ = sink.send(UiEvent::Patch(Box::new(Proposal {
        id: p.id,
        patch: patch_id,
        job: Job::Chat,
        buf: 0,
        path: real_s,
        tick: -1,
        hunks,
        provider,
        model,
        decision: verdict.decision,
        rule,
        note: Some(format!("proposed by the chat agent ({})", c.name)),
    })));
    let answer = waiter.await;
    guard.patch = None;
    match answer {
        Ok((review, applied)) => {
            let (status, text) = review_result(&path, &review, &applied, n);
            (status, text.chars().take(120).collect(), text)
        }
        Err(_) => fail(format!(
            "the proposal for {path} was dropped before an answer"
        )),
    }
}

enum Change {
    Write(String),
    Edit(Vec<edit::Edit>),
}
