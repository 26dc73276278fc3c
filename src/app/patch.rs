//! `:Zeke fix` and `:Zeke test`: ask the model, turn its answer into a patch (hunks against the
//! buffer at one `changedtick`), decide with the policy whether the user must review it, and keep
//! it pending until the editor applies or denies it.
//!
//! Invariants: nothing here changes a buffer or a file — the editor applies the edits it gets from
//! [`Patches::edits`] after approval; every proposal and its outcome go to the audit log with the
//! hunks' line ranges only (no file contents). Answers longer than `fix.max_answer_kb` are cut.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::json;
use tokio::sync::oneshot;

use crate::app::audit::{Outcome, Record};
use crate::app::explain::{ExplainParams, pick_range};
use crate::app::gate::{Gate, How, Step};
use crate::app::grants::GrantScope;
use crate::app::{App, Job, Sink, UiEvent};
use crate::core::llm::{ErrorKind, Intent, ProviderError};
use crate::core::patch::{self, Answer, Edit, Hunk, PatchError};
use crate::core::policy::{Capability, Decision, Rule, Scope};
use crate::core::prompt::{self, Diagnostic, PatchInput};
use crate::core::testfile;
use crate::core::text::BufferText;
use crate::router::{Pool, RouteRequest, Surface};

mod answer;
use answer::{bare_code, collect};

/// The capability a patch needs: it changes the user's files (through their buffers).
pub const CAPABILITY: Capability = Capability::FsWrite;

/// How the user answered a reviewed proposal (from the editor's `resolve`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Review {
    AllowOnce,
    /// Applied, and later proposals in the project auto-approved ([`GrantScope`]).
    AllowAll(GrantScope),
    /// Applied without review because a rule or grant allowed it.
    AllowRule,
    /// Not applied; the reason is kept for the next `:Zeke fix` of that buffer.
    Deny(Option<String>),
    /// Approved, but the editor could not apply it.
    Failed(Option<String>),
}

impl Review {
    /// Parses the editor's `outcome` (`allow_once`, `allow_all` with `scope` `session` or
    /// `project`, `allow_rule`, `deny` with `reason`, `failed` with `error`).
    pub fn parse(
        outcome: &str,
        scope: Option<&str>,
        reason: Option<&str>,
        error: Option<&str>,
    ) -> Result<Review, String> {
        let text = |s: Option<&str>| s.filter(|r| !r.trim().is_empty()).map(str::to_string);
        Ok(match outcome {
            "allow_once" => Review::AllowOnce,
            "allow_all" => Review::AllowAll(GrantScope::parse(scope.unwrap_or("session"))?),
            "allow_rule" => Review::AllowRule,
            "deny" => Review::Deny(text(reason)),
            "failed" => Review::Failed(text(error)),
            other => {
                return Err(format!(
                    "unknown outcome {other:?} (allow_once, allow_all, allow_rule, deny, failed)"
                ));
            }
        })
    }

    /// The editor's spelling, kept in the audit record's arguments.
    fn word(&self) -> String {
        match self {
            Review::AllowOnce => "allow_once".into(),
            Review::AllowAll(s) => format!("allow_all ({})", s.as_str()),
            Review::AllowRule => "allow_rule".into(),
            Review::Deny(_) => "deny".into(),
            Review::Failed(_) => "failed".into(),
        }
    }
}

/// What the editor asked for.
#[derive(Debug, Clone)]
pub struct PatchParams {
    pub id: u64,
    pub job: Job,
    pub buf: i64,
    pub tick: i64,
    pub row: usize,
    pub col: usize,
    /// Rows 0-based, end inclusive.
    pub range: Option<(usize, usize)>,
    pub filetype: String,
    pub path: String,
    /// The project root (policy scope); default: the file's directory.
    pub root: Option<String>,
    pub diagnostics: Vec<Diagnostic>,
    /// Why the user denied the previous proposal (from the editor, or remembered here).
    pub reason: Option<String>,
    /// `:Zeke edit`: what to do to the code.
    pub instruction: Option<String>,
}

/// Another buffer the patch goes to (a test file), as mirrored now.
#[derive(Debug, Clone)]
pub struct TargetBuffer {
    pub buf: i64,
    pub tick: i64,
    pub path: String,
    pub text: BufferText,
}

/// A patch shown to the user.
#[derive(Debug, Clone)]
pub struct Proposal {
    pub id: u64,
    pub patch: u64,
    pub job: Job,
    pub buf: i64,
    pub path: String,
    pub tick: i64,
    pub hunks: Vec<Hunk>,
    pub provider: String,
    pub model: String,
    /// `prompt`: review it; `allow`: auto-approved by `rule`.
    pub decision: Decision,
    pub rule: Option<String>,
    pub note: Option<String>,
}

struct Pending {
    job: Job,
    buf: i64,
    path: String,
    tick: i64,
    scope: Scope,
    /// How the policy decided when the patch was proposed (a rule or grant, or prompt).
    verdict: (Decision, Rule),
    base: Vec<String>,
    hunks: Vec<Hunk>,
    provider: String,
    created: Instant,
}

/// The edits for an approved patch, for the buffer at `tick`.
#[derive(Debug, Clone)]
pub struct Approved {
    pub tick: i64,
    pub rebased: bool,
    pub edits: Vec<Edit>,
}

/// Pending proposals and remembered denial reasons of this backend; decisions, grants and audit
/// records go through the one [`Gate`].
pub struct Patches {
    next: AtomicU64,
    pending: Mutex<HashMap<u64, Pending>>,
    denials: Mutex<HashMap<i64, String>>,
    /// Proposals replaced by a newer one for the same buffer (already audited as superseded).
    superseded: Mutex<BTreeSet<u64>>,
    /// Agent proposals whose turn waits for the answer.
    waiters: Mutex<HashMap<u64, oneshot::Sender<Reviewed>>>,
    gate: Arc<Gate>,
}

/// How a proposal was answered: the review and the hunks applied (0-based).
pub type Reviewed = (Review, Vec<usize>);

/// What the chat agent waits on for one of its proposals.
pub type Waiter = oneshot::Receiver<Reviewed>;

impl Patches {
    /// Proposals decided, granted and audited by `gate`.
    pub fn new(gate: Arc<Gate>) -> Self {
        Patches {
            next: AtomicU64::new(1),
            pending: Mutex::default(),
            denials: Mutex::default(),
            superseded: Mutex::default(),
            waiters: Mutex::default(),
            gate,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Patches {
    /// The edits for the accepted hunks of pending patch `patch` (missing marks = rejected),
    /// against `current` (the buffer's lines at `tick`). When the buffer moved on since the
    /// proposal, the hunks are rebased; a hunk whose text was edited gives an error naming it and
    /// nothing is applied.
    pub fn edits(
        &self,
        patch: u64,
        accepted: &[bool],
        current: &[String],
        tick: i64,
    ) -> Result<Approved, String> {
        let map = lock(&self.pending);
        let p = map
            .get(&patch)
            .ok_or_else(|| format!("no pending proposal {patch} (already applied or denied)"))?;
        let stale =
            |e: PatchError| format!("{e}; run :Zeke {} again for a new proposal", p.job.as_str());
        let rebased = tick != p.tick;
        let hunks = if rebased {
            patch::rebase(&p.hunks, &p.base, current).map_err(stale)?
        } else {
            p.hunks.clone()
        };
        let accepted: Vec<bool> = accepted.iter().copied().take(hunks.len()).collect();
        patch::apply(current, &hunks, &accepted).map_err(stale)?;
        Ok(Approved {
            tick,
            rebased,
            edits: patch::edits(&hunks, &accepted),
        })
    }

    /// The buffer a pending patch is for.
    pub fn buffer_of(&self, patch: u64) -> Option<i64> {
        lock(&self.pending).get(&patch).map(|p| p.buf)
    }

    /// Records how the user answered proposal `patch`; `applied` are the hunks applied (0-based).
    /// "Allow all" grants `fs.write` in the proposal's project through the gate — the same grant
    /// `zeke mcp` honours. `Err` for an unknown patch.
    pub fn resolve(&self, patch: u64, review: Review, applied: &[usize]) -> Result<(), String> {
        let Some(p) = lock(&self.pending).remove(&patch) else {
            // The editor answering for a proposal that a newer one replaced: already recorded.
            if lock(&self.superseded).remove(&patch) {
                return Ok(());
            }
            return Err(format!("no pending proposal {patch}"));
        };
        if let Review::AllowAll(how) = review {
            self.gate.grant(CAPABILITY, &p.scope, how);
        }
        if let Review::Deny(Some(r)) = &review {
            lock(&self.denials).insert(p.buf, r.clone());
        }
        let how = match &review {
            Review::AllowOnce => Some(How::AllowedOnce),
            Review::AllowAll(s) => Some(How::AllowedAll(*s)),
            Review::AllowRule => Some(How::Ruled(p.verdict.0, p.verdict.1.clone())),
            Review::Deny(r) => Some(How::UserDenied(r.clone().unwrap_or_else(|| "deny".into()))),
            Review::Failed(_) => None,
        };
        let (outcome, message) = match &review {
            Review::Deny(r) => (Outcome::Denied, r.as_deref()),
            Review::Failed(e) => (Outcome::Error, e.as_deref()),
            _ => (Outcome::Ok, None),
        };
        self.record(patch, &p, &review.word(), how, outcome, message, applied);
        if let Some(tx) = lock(&self.waiters).remove(&patch) {
            let _ = tx.send((review, applied.to_vec()));
        }
        Ok(())
    }

    /// Proposes a change to the file `path` (not tied to a buffer: the editor applies it to the
    /// buffer showing the file, or loads, changes and writes the file) for the chat agent, whose
    /// turn waits on the returned [`Waiter`]. `base` are the file's lines the hunks were computed
    /// against; the editor's buffer may differ (unsaved edits): the hunks are rebased on apply.
    #[allow(clippy::too_many_arguments)]
    pub fn propose_file(
        &self,
        job: Job,
        path: String,
        scope: Scope,
        verdict: (Decision, Rule),
        base: Vec<String>,
        hunks: Vec<Hunk>,
        provider: String,
    ) -> (u64, Waiter) {
        let id = self.propose(Pending {
            job,
            buf: 0,
            path,
            tick: -1,
            scope,
            verdict,
            base,
            hunks,
            provider,
            created: Instant::now(),
        });
        let (tx, rx) = oneshot::channel();
        lock(&self.waiters).insert(id, tx);
        (id, rx)
    }

    /// Takes back a proposal nobody will answer (its chat turn was cancelled): a later `apply`
    /// for it is refused, so nothing is half-applied. Audited as cancelled.
    pub fn withdraw(&self, patch: u64) {
        lock(&self.waiters).remove(&patch);
        if let Some(p) = lock(&self.pending).remove(&patch) {
            self.record(
                patch,
                &p,
                "cancelled",
                None,
                Outcome::Cancelled,
                Some("the chat turn was cancelled"),
                &[],
            );
        }
    }

    /// Appends one audit record for proposal `patch`: its line ranges (1-based first line, lines
    /// removed and added), never its text.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        patch: u64,
        p: &Pending,
        word: &str,
        how: Option<How>,
        outcome: Outcome,
        message: Option<&str>,
        applied: &[usize],
    ) {
        let ranges: Vec<serde_json::Value> = p
            .hunks
            .iter()
            .map(|h| json!({"line": h.start + 1, "removed": h.old.len(), "added": h.new.len()}))
            .collect();
        let steps: Vec<Step> = how
            .into_iter()
            .map(|how| Step {
                capability: CAPABILITY,
                root: p.scope.root.clone(),
                how,
            })
            .collect();
        self.gate.audit().append(&Record {
            tool: p.job.as_str(),
            arguments: json!({
                "surface": "nvim", "patch": patch, "path": p.path, "root": p.scope.root, "provider": p.provider,
                "hunks": ranges, "applied": applied, "outcome": word,
            }),
            decisions: &steps,
            outcome,
            message,
            duration_ms: p.created.elapsed().as_millis() as u64,
            client: Some("nvim"),
        });
    }

    fn take_denial(&self, buf: i64) -> Option<String> {
        lock(&self.denials).remove(&buf)
    }

    /// Keeps a new proposal pending (replacing an older one for the same buffer) and records it.
    fn propose(&self, pending: Pending) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let how = match pending.verdict {
            (Decision::Prompt, _) => How::Proposed,
            (d, ref rule) => How::Ruled(d, rule.clone()),
        };
        self.record(
            id,
            &pending,
            "proposed",
            Some(how),
            Outcome::Proposed,
            None,
            &[],
        );
        let old: Vec<u64> = {
            let mut map = lock(&self.pending);
            // the same buffer, or (proposals for a file, not a buffer) the same file
            let old = map
                .iter()
                .filter(|(_, p)| {
                    p.buf == pending.buf && (pending.buf != 0 || p.path == pending.path)
                })
                .map(|(k, _)| *k)
                .collect::<Vec<_>>();
            for k in &old {
                if let Some(tx) = lock(&self.waiters).remove(k) {
                    let _ = tx.send((
                        Review::Deny(Some("superseded by a newer proposal".into())),
                        vec![],
                    ));
                }
                if let Some(p) = map.remove(k) {
                    self.record(
                        *k,
                        &p,
                        "deny",
                        Some(How::UserDenied("superseded by a newer proposal".into())),
                        Outcome::Denied,
                        Some("superseded by a newer proposal"),
                        &[],
                    );
                }
            }
            map.insert(id, pending);
            old
        };
        lock(&self.superseded).extend(old);
        id
    }

    fn refuse(&self, job: Job, path: &str, scope: &Scope, rule: Rule, message: &str) {
        self.gate.audit().append(&Record {
            tool: job.as_str(),
            arguments: json!({"surface": "nvim", "path": path, "root": scope.root}),
            decisions: &[Step {
                capability: CAPABILITY,
                root: scope.root.clone(),
                how: How::Ruled(Decision::Deny, rule),
            }],
            outcome: Outcome::Denied,
            message: Some(message),
            duration_ms: 0,
            client: Some("nvim"),
        });
    }
}

/// The policy scope of a request: its project root, canonical when it exists.
fn scope_of(p: &PatchParams) -> Scope {
    let root = p
        .root
        .clone()
        .filter(|r| !r.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(&p.path)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default()
        });
    Scope::new(std::fs::canonicalize(&root).unwrap_or(root))
}

/// Runs `:Zeke fix` or `:Zeke test` (`p.job`) on `text` (the buffer at `p.tick`); `target` is the
/// test file's buffer when tests go to another file. Sends `Progress` while the model answers,
/// then one `Patch` or one `Error`.
pub async fn propose(
    app: Arc<App>,
    mut p: PatchParams,
    text: BufferText,
    target: Option<TargetBuffer>,
    sink: Sink,
) {
    let setup = app.setup();
    let timeout = setup.config.fix.timeout;
    // The reason the user gave when denying the last proposal for this buffer, sent once: the
    // editor's copy wins, the remembered one is used up either way.
    let remembered = app.patches.take_denial(p.buf);
    if p.reason.is_none() {
        p.reason = remembered;
    }
    let outcome = match tokio::time::timeout(timeout, run(&app, &p, text, target, &sink)).await {
        Ok(r) => r,
        Err(_) => Err(ProviderError::new(
            ErrorKind::Timeout,
            format!(
                "no complete answer within {} ms (fix.timeout_ms)",
                timeout.as_millis()
            ),
        )),
    };
    if let Err(error) = outcome {
        tracing::warn!(id = p.id, job = p.job.as_str(), %error, "proposal failed");
        let provider = setup.selected(p.job).map(|s| s.name);
        let _ = sink.send(UiEvent::Error {
            id: Some(p.id),
            job: p.job,
            error,
            provider,
        });
    }
}

async fn run(
    app: &App,
    p: &PatchParams,
    text: BufferText,
    target: Option<TargetBuffer>,
    sink: &Sink,
) -> Result<(), ProviderError> {
    let setup = app.setup();
    let cfg = &setup.config.fix;
    let scope = scope_of(p);
    let (verdict, _) = app.gate.decide(CAPABILITY, &scope);
    if verdict.decision == Decision::Deny {
        let message = format!(
            "changing files is denied by the policy ({CAPABILITY} = \"deny\" in {}); nothing was asked or changed",
            verdict.rule
        );
        app.patches
            .refuse(p.job, &p.path, &scope, verdict.rule.clone(), &message);
        return Err(ProviderError::new(ErrorKind::Denied, message));
    }
    let lines = text.lines();
    let (start, end) = target_rows(&text, p).ok_or_else(|| {
        ProviderError::new(
            ErrorKind::Invalid,
            "nothing to work on here (empty buffer or range outside it)",
        )
    })?;
    let code = text.lines_text(start, end);
    let above = text.lines_text(start.saturating_sub(15), start.saturating_sub(1));
    let above = if start == 0 { String::new() } else { above };
    let diagnostics: Vec<Diagnostic> = p
        .diagnostics
        .iter()
        .filter(|d| d.end_lnum >= start && d.lnum <= end)
        .cloned()
        .collect();
    let input = PatchInput {
        code: &code,
        language: &p.filetype,
        path: &p.path,
        start_row: start,
        end_row: end,
        above: &above,
        diagnostics: &diagnostics,
        reason: p.reason.as_deref(),
    };
    let req = match (p.job, p.instruction.as_deref()) {
        (Job::Test, _) => prompt::tests(&input, cfg.max_tokens),
        (Job::Edit, Some(instruction)) => prompt::edit(&input, instruction, cfg.max_tokens),
        (Job::Edit, None) => {
            return Err(ProviderError::new(
                ErrorKind::Invalid,
                "nothing to do: :Zeke edit needs an instruction",
            ));
        }
        _ => prompt::fix(&input, cfg.max_tokens),
    };
    let intent = if p.job == Job::Test {
        Intent::Test
    } else {
        Intent::Fix
    };
    let pool: Arc<dyn Pool> = setup.clone();
    let stream = app
        .router
        .chat(pool, RouteRequest::new(intent, Surface::Nvim), req);
    let (answer, capped, name, model) = collect(stream, cfg.max_answer_bytes, p, sink).await?;
    let no_code = |what: &str| {
        let said: String = answer.trim().chars().take(80).collect();
        ProviderError::new(
            ErrorKind::Invalid,
            format!("the model's answer has no {what} to apply (it said: {said:?})"),
        )
    };
    let extracted = patch::extract(&answer)
        .or_else(|| bare_code(&answer))
        .ok_or_else(|| no_code("code block or diff"))?;
    let invalid = |e: PatchError| ProviderError::new(ErrorKind::Invalid, e.to_string());
    let (buf, path, tick, base, new) = match (p.job, target) {
        (Job::Test, Some(t)) => {
            let Answer::Code { text: code, .. } = extracted else {
                return Err(no_code("test code"));
            };
            let base = t.text.lines();
            let new = testfile::add_to_test_file(&base, &code);
            (t.buf, t.path, t.tick, base, new)
        }
        (Job::Test, None) => {
            let Answer::Code { text: code, .. } = extracted else {
                return Err(no_code("test code"));
            };
            let new = if p.filetype == "rust" {
                testfile::add_rust_tests(&lines, &code)
            } else {
                testfile::add_to_test_file(&lines, &code)
            };
            (p.buf, p.path.clone(), p.tick, lines, new)
        }
        (_, _) => {
            let new = match extracted {
                Answer::Diff(d) => {
                    patch::apply_unified(&lines, &patch::parse_unified(&d).map_err(invalid)?)
                        .map_err(invalid)?
                }
                Answer::Code { text: code, .. } => {
                    let (s, e, replacement) = patch::fit_replacement(&lines, start, end + 1, &code);
                    if replacement.is_empty() {
                        return Err(no_code("code"));
                    }
                    let mut new = lines[..s].to_vec();
                    new.extend(replacement);
                    new.extend_from_slice(&lines[e..]);
                    new
                }
            };
            (p.buf, p.path.clone(), p.tick, lines, new)
        }
    };
    // the diff is the CPU-heavy step (a large buffer): on the blocking pool, not an async worker
    let (base, hunks) = tokio::task::spawn_blocking(move || {
        let hunks = patch::diff(&base, &new);
        (base, hunks)
    })
    .await
    .map_err(|e| ProviderError::new(ErrorKind::Invalid, format!("internal error: {e}")))?;
    if hunks.is_empty() {
        return Err(invalid(PatchError::NoChange));
    }
    // decided again now: a grant may have come (or gone) while the model was answering
    let (verdict, grant) = app.gate.decide(CAPABILITY, &scope);
    let rule = match (verdict.decision, grant) {
        (Decision::Allow, Some(how)) => Some(format!(
            "Allow all ({CAPABILITY}) in {} ({})",
            scope.root.display(),
            how.as_str()
        )),
        (Decision::Allow, None) => Some(format!("{CAPABILITY} = \"allow\" in {}", verdict.rule)),
        _ => None,
    };
    if verdict.decision == Decision::Deny {
        let message = format!(
            "changing files is denied by the policy ({CAPABILITY} = \"deny\" in {}); nothing was changed",
            verdict.rule
        );
        return Err(ProviderError::new(ErrorKind::Denied, message));
    }
    let decision = verdict.decision;
    let note = capped.then(|| {
        format!(
            "the answer was cut at {} KiB (fix.max_answer_kb)",
            cfg.max_answer_bytes / 1024
        )
    });
    let patch = app.patches.propose(Pending {
        job: p.job,
        buf,
        path: path.clone(),
        tick,
        scope,
        verdict: (verdict.decision, verdict.rule),
        base,
        hunks: hunks.clone(),
        provider: name.clone(),
        created: Instant::now(),
    });
    let _ = sink.send(UiEvent::Patch(Box::new(Proposal {
        id: p.id,
        patch,
        job: p.job,
        buf,
        path,
        tick,
        hunks,
        provider: name,
        model,
        decision,
        rule,
        note,
    })));
    Ok(())
}

/// The rows the request is about (0-based, inclusive): the range; else for `fix` the diagnostic
/// under the cursor widened to its function; else the function around the cursor.
fn target_rows(text: &BufferText, p: &PatchParams) -> Option<(usize, usize)> {
    let row = p
        .diagnostics
        .iter()
        .find(|d| d.lnum <= p.row && p.row <= d.end_lnum)
        .map_or(p.row, |d| d.lnum);
    let ep = ExplainParams {
        id: p.id,
        row,
        col: p.col,
        range: p.range,
        filetype: p.filetype.clone(),
        path: p.path.clone(),
    };
    pick_range(text, &ep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_code_versus_prose() {
        assert!(bare_code("fn f() -> u8 { 1 }").is_some());
        assert!(bare_code("I am sorry, I cannot do that.").is_none());
        assert!(bare_code("Here is the fixed code:").is_none());
    }
}
