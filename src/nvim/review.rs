//! The patch methods of the Neovim surface (see `doc/rpc.md`, "Patches"): `fix` and `test`
//! notifications start a proposal; `apply`, `resolve`, `test_target`, `grants` and `revoke` are
//! short requests. The backend never edits a buffer: `apply` returns the edits and the editor
//! makes them, after approval, at the `changedtick` the reply names.

use std::time::Duration;

use rmpv::Value;

use crate::app::patch::{Review, TargetBuffer, propose};
use crate::app::{Job, UiEvent};
use crate::core::llm::{ErrorKind, ProviderError};
use crate::core::policy::Capability;
use crate::core::testfile::{TestTarget, test_target};
use crate::nvim::Nvim;
use crate::nvim::handler::NvimHandler;
use crate::nvim::proto::{self, map, params};

/// How long a request for a buffer attached just now waits for its mirror.
const MIRROR_WAIT: Duration = Duration::from_secs(2);

impl NvimHandler {
    /// `fix` / `test`: snapshot the buffer (and the test file's buffer), then propose in a task.
    pub(super) fn on_patch(&self, job: Job, args: Vec<Value>, nvim: Nvim) {
        let p: proto::Patch = match params(job.as_str(), args) {
            Ok(p) => p,
            Err(e) => return self.rpc_error(None, job, e),
        };
        let target_buf = p.target_buf;
        let p = p.from_proto(job);
        self.attach(p.buf, nvim.clone());
        if let Some(t) = target_buf {
            self.attach(t, nvim);
        }
        let (app, sink, buffers, id) = (
            self.app.clone(),
            self.sink.clone(),
            self.buffers.clone(),
            p.id,
        );
        let fail = move |sink: &crate::app::Sink, message: String| {
            let _ = sink.send(UiEvent::Error {
                id: Some(id),
                job,
                error: ProviderError::new(ErrorKind::Invalid, message),
                provider: None,
            });
        };
        let work = async move {
            let Some((text, tick)) = buffers.wait_snapshot(p.buf, MIRROR_WAIT).await else {
                return fail(&sink, format!("buffer {} is not attached to zeke", p.buf));
            };
            if tick != p.tick {
                return fail(
                    &sink,
                    "the buffer changed before the request was read; run it again".into(),
                );
            }
            let target = match target_buf {
                None => None,
                Some(t) => match buffers.wait_snapshot(t, MIRROR_WAIT).await {
                    Some((text, tick)) => Some(TargetBuffer {
                        buf: t,
                        tick,
                        path: String::new(),
                        text,
                    }),
                    None => {
                        return fail(
                            &sink,
                            format!("test file buffer {t} is not attached to zeke"),
                        );
                    }
                },
            };
            let target = target.map(|mut t| {
                if let TestTarget::File(path) = test_target(&p.path, &p.filetype) {
                    t.path = path;
                }
                t
            });
            propose(app, p, text, target, sink).await;
        };
        // One proposal of a kind at a time: a new `:Zeke fix` replaces the one being asked.
        self.app.tasks.spawn(job, id, true, work);
    }

    /// `apply {patch, accepted, tick}` → `{tick, rebased, edits}` or an error naming the hunk.
    pub(super) async fn apply(&self, args: Vec<Value>) -> Result<Value, Value> {
        let p: proto::Apply = params("apply", args)?;
        let buf = match self.app.patches.buffer_of(p.patch) {
            None => {
                return Err(Value::from(format!(
                    "no pending proposal {} (already applied, denied or withdrawn)",
                    p.patch
                )));
            }
            // a proposal for a file: the editor names the buffer it loaded the file into
            Some(0) => p.buf.filter(|b| *b > 0).ok_or_else(|| {
                Value::from(format!(
                    "proposal {} is for a file: apply needs the buffer (`buf`) showing it",
                    p.patch
                ))
            })?,
            Some(b) => b,
        };
        let text = self
            .buffers
            .wait_tick(buf, p.tick, MIRROR_WAIT)
            .await
            .ok_or_else(|| {
                Value::from(format!(
                    "buffer {buf} is not in step with zeke (changedtick {}); try again",
                    p.tick
                ))
            })?;
        let approved = self
            .app
            .patches
            .edits(p.patch, &p.accepted, &text.lines(), p.tick)
            .map_err(Value::from)?;
        let edits = approved
            .edits
            .iter()
            .map(|e| {
                let lines = Value::Array(e.lines.iter().map(|l| Value::from(l.as_str())).collect());
                map(vec![
                    ("start", (e.start as u64).into()),
                    ("end", (e.end as u64).into()),
                    ("lines", lines),
                ])
            })
            .collect();
        Ok(map(vec![
            ("tick", approved.tick.into()),
            ("rebased", approved.rebased.into()),
            ("edits", Value::Array(edits)),
        ]))
    }

    /// `resolve {patch, outcome, scope?, reason?, applied, error?}` → `{}`.
    pub(super) fn resolve(&self, args: Vec<Value>) -> Result<Value, Value> {
        let p: proto::Resolve = params("resolve", args)?;
        let applied: Vec<usize> = p.applied.iter().map(|&i| i as usize).collect();
        let review = Review::parse(
            &p.outcome,
            p.scope.as_deref(),
            p.reason.as_deref(),
            p.error.as_deref(),
        )
        .map_err(Value::from)?;
        self.app
            .patches
            .resolve(p.patch, review, &applied)
            .map_err(Value::from)?;
        Ok(Value::Map(vec![]))
    }

    /// `test_target {path, filetype}` → `{same_file}` or `{same_file = false, path}`.
    pub(super) fn test_target(&self, args: Vec<Value>) -> Result<Value, Value> {
        let p: proto::TestTarget = params("test_target", args)?;
        Ok(match test_target(&p.path, &p.filetype) {
            TestTarget::SameFile => map(vec![("same_file", true.into())]),
            TestTarget::File(path) => map(vec![("same_file", false.into()), ("path", path.into())]),
        })
    }

    /// `grants {}` → `[{capability, root, scope}]` (the same grants `zeke mcp` honours).
    pub(super) fn grants(&self) -> Value {
        Value::Array(
            self.app
                .gate
                .grants()
                .into_iter()
                .map(|g| {
                    map(vec![
                        ("capability", g.capability.as_str().into()),
                        ("root", g.root.display().to_string().into()),
                        ("scope", g.scope.as_str().into()),
                    ])
                })
                .collect(),
        )
    }

    /// `revoke {capability?, root?}` → how many grants were forgotten.
    pub(super) fn revoke(&self, args: Vec<Value>) -> Result<Value, Value> {
        let p: proto::Revoke = params("revoke", args)?;
        let capability = p
            .capability
            .as_deref()
            .map(Capability::parse)
            .transpose()
            .map_err(Value::from)?;
        let root = p
            .root
            .map(|r| std::fs::canonicalize(&r).unwrap_or_else(|_| r.into()));
        Ok((self.app.gate.revoke(capability, root.as_deref()) as u64).into())
    }
}
