//! Wire DTOs of the Neovim protocol (see `doc/rpc.md`) and their hand-written conversion to app
//! types (`from_proto`) and from app events (`to_proto`). Only this file knows the field names.

use std::time::Instant;

use rmpv::Value;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::app::complete::CompleteParams;
use crate::app::explain::ExplainParams;
use crate::app::patch::PatchParams;
use crate::app::{Job, UiEvent};
use crate::core::prompt::Diagnostic;

/// The Lua call that receives every backend event.
pub const DISPATCH: &str = "return require('zeke.rpc').dispatch(...)";

#[derive(Deserialize)]
pub struct Buf {
    pub buf: i64,
}

#[derive(Deserialize)]
pub struct Complete {
    pub id: u64,
    pub buf: i64,
    pub tick: i64,
    pub row: u64,
    pub col: u64,
    #[serde(default)]
    pub filetype: String,
    #[serde(default)]
    pub path: String,
}

#[derive(Deserialize)]
pub struct Cancel {
    pub id: Option<u64>,
}

#[derive(Deserialize)]
pub struct Explain {
    pub id: u64,
    pub buf: i64,
    #[serde(default)]
    pub row: u64,
    #[serde(default)]
    pub col: u64,
    pub range: Option<(u64, u64)>,
    #[serde(default)]
    pub filetype: String,
    #[serde(default)]
    pub path: String,
}

#[derive(Deserialize)]
pub struct Configure {
    pub config: Option<serde_json::Value>,
    #[allow(dead_code)]
    pub nvim_version: Option<String>,
}

/// Decodes the single map argument of a call. `nil`, a missing argument and an empty array (how
/// Lua sends `{}`) all count as an empty map. Errors name the method and the problem.
pub fn params<T: DeserializeOwned>(method: &str, args: Vec<Value>) -> Result<T, String> {
    let arg = args.into_iter().next().unwrap_or(Value::Nil);
    let arg = match arg {
        Value::Nil => Value::Map(vec![]),
        Value::Array(a) if a.is_empty() => Value::Map(vec![]),
        v => v,
    };
    if !arg.is_map() {
        return Err(format!("zeke: {method} expects one table argument"));
    }
    rmpv::ext::from_value(arg).map_err(|e| format!("zeke: bad parameters for {method}: {e}"))
}

impl Complete {
    pub fn from_proto(self, received: Instant) -> CompleteParams {
        CompleteParams {
            id: self.id,
            buf: self.buf,
            tick: self.tick,
            row: self.row as usize,
            col: self.col as usize,
            filetype: self.filetype,
            path: self.path,
            received,
        }
    }
}

impl Explain {
    pub fn from_proto(self) -> ExplainParams {
        ExplainParams {
            id: self.id,
            row: self.row as usize,
            col: self.col as usize,
            range: self.range.map(|(s, e)| (s as usize, e as usize)),
            filetype: self.filetype,
            path: self.path,
        }
    }
}

/// A msgpack map from string keys.
pub fn map(pairs: Vec<(&str, Value)>) -> Value {
    Value::Map(
        pairs
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

fn opt<T: Into<Value>>(v: Option<T>) -> Value {
    v.map(Into::into).unwrap_or(Value::Nil)
}

/// JSON → msgpack (config echo).
pub fn json(v: &serde_json::Value) -> Value {
    rmpv::ext::to_value(v).unwrap_or(Value::Nil)
}

/// msgpack → JSON (the config table from Lua).
pub fn to_json(v: Value) -> Result<serde_json::Value, String> {
    rmpv::ext::from_value(v).map_err(|e| format!("zeke: config is not a plain table: {e}"))
}

/// The buffer number in a `nvim_buf_*_event` (an EXT value holding an integer) or a plain integer.
pub fn buffer_handle(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => i.as_i64(),
        Value::Ext(_, data) => match rmpv::decode::read_value(&mut &data[..]).ok()? {
            Value::Integer(i) => i.as_i64(),
            _ => None,
        },
        _ => None,
    }
}

/// `fix` / `test` params (see doc/rpc.md): where, as for `explain`, and more.
#[derive(Deserialize)]
pub struct Patch {
    #[serde(flatten)]
    pub at: Explain,
    pub tick: i64,
    pub root: Option<String>,
    #[serde(default, deserialize_with = "list")]
    pub diagnostics: Vec<Diag>,
    pub reason: Option<String>,
    pub target_buf: Option<i64>,
    /// `edit` only: what the user wants done to the code.
    #[serde(default)]
    pub instruction: Option<String>,
}

/// One `vim.diagnostic` entry as the plugin sends it.
#[derive(Deserialize)]
pub struct Diag {
    pub lnum: u64,
    pub end_lnum: Option<u64>,
    #[serde(default)]
    pub col: u64,
    #[serde(default)]
    pub severity: String,
    #[serde(default)]
    pub message: String,
    pub source: Option<String>,
}

/// Lua sends an empty table `{}` for an empty list; msgpack makes that an empty map.
fn list<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrMap<T> {
        List(Vec<T>),
        Map(#[allow(dead_code)] std::collections::BTreeMap<String, serde::de::IgnoredAny>),
    }
    Ok(match ListOrMap::deserialize(d)? {
        ListOrMap::List(v) => v,
        ListOrMap::Map(_) => Vec::new(),
    })
}

impl Patch {
    pub fn from_proto(self, job: Job) -> PatchParams {
        let at = self.at;
        PatchParams {
            id: at.id,
            job,
            buf: at.buf,
            tick: self.tick,
            row: at.row as usize,
            col: at.col as usize,
            range: at.range.map(|(a, b)| (a as usize, b as usize)),
            filetype: at.filetype,
            path: at.path,
            root: self.root,
            instruction: self.instruction.filter(|i| !i.trim().is_empty()),
            diagnostics: self
                .diagnostics
                .into_iter()
                .map(|d| Diagnostic {
                    lnum: d.lnum as usize,
                    end_lnum: d.end_lnum.unwrap_or(d.lnum) as usize,
                    col: d.col as usize,
                    severity: d.severity,
                    message: d.message,
                    source: d.source,
                })
                .collect(),
            reason: self.reason,
        }
    }
}

/// `apply` params.
#[derive(Deserialize)]
pub struct Apply {
    pub patch: u64,
    #[serde(default, deserialize_with = "list")]
    pub accepted: Vec<bool>,
    pub tick: i64,
    /// The buffer the editor applies a file proposal to (one made for a path, not a buffer: the
    /// chat agent's); ignored for buffer proposals.
    #[serde(default)]
    pub buf: Option<i64>,
}

/// `resolve` params.
#[derive(Deserialize)]
pub struct Resolve {
    pub patch: u64,
    pub outcome: String,
    pub scope: Option<String>,
    pub reason: Option<String>,
    #[serde(default, deserialize_with = "list")]
    pub applied: Vec<u64>,
    pub error: Option<String>,
}

/// `test_target` params.
#[derive(Deserialize)]
pub struct TestTarget {
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub filetype: String,
}

/// `revoke` params.
#[derive(Deserialize)]
pub struct Revoke {
    pub capability: Option<String>,
    pub root: Option<String>,
}

fn lines_value(lines: &[String]) -> Value {
    Value::Array(lines.iter().map(|l| Value::from(l.as_str())).collect())
}

/// `chat {id, session?, message, context?, root, agent?}`.
#[derive(Debug, Deserialize)]
pub struct Chat {
    pub id: u64,
    #[serde(default)]
    pub session: Option<String>,
    pub message: String,
    #[serde(default, deserialize_with = "list")]
    pub context: Vec<ChatAttachment>,
    pub root: String,
    #[serde(default = "yes")]
    pub agent: bool,
}

fn yes() -> bool {
    true
}

/// `{label, text}` of a chat attachment.
#[derive(Debug, Deserialize)]
pub struct ChatAttachment {
    pub label: String,
    pub text: String,
}

/// `answer {ask, choice, scope?, reason?}`.
#[derive(Debug, Deserialize)]
pub struct AnswerParams {
    pub ask: u64,
    pub choice: String,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// `chat_compact {id, root, session}`.
#[derive(Debug, Deserialize)]
pub struct ChatCompact {
    pub id: u64,
    pub root: String,
    pub session: String,
}

/// `chat_sessions {root}` / `chat_load {root, session}`.
#[derive(Debug, Deserialize)]
pub struct ChatSessions {
    pub root: String,
    #[serde(default)]
    pub session: Option<String>,
}

/// An app event as `(event name, payload)` for `zeke.rpc.dispatch`.
pub fn to_proto(ev: &UiEvent) -> (&'static str, Value) {
    match ev {
        UiEvent::Completion {
            id,
            buf,
            tick,
            row,
            col,
            text,
            done,
            ..
        } => (
            "completion",
            map(vec![
                ("id", (*id).into()),
                ("buf", (*buf).into()),
                ("tick", (*tick).into()),
                ("row", (*row as u64).into()),
                ("col", (*col as u64).into()),
                ("text", text.as_str().into()),
                ("done", (*done).into()),
            ]),
        ),
        UiEvent::Explain {
            id,
            delta,
            restart,
            done,
            provider,
            model,
            range,
        } => (
            "explain",
            map(vec![
                ("id", (*id).into()),
                ("delta", delta.as_str().into()),
                ("restart", (*restart).into()),
                ("done", (*done).into()),
                ("provider", provider.as_str().into()),
                ("model", model.as_str().into()),
                (
                    "range",
                    Value::Array(vec![(range.0 as u64).into(), (range.1 as u64).into()]),
                ),
            ]),
        ),
        UiEvent::ChatContext {
            id,
            session,
            items,
            rules,
        } => (
            "chat_context",
            map(vec![
                ("id", (*id).into()),
                ("session", session.as_str().into()),
                (
                    "items",
                    Value::Array(
                        items
                            .iter()
                            .map(|(l, t)| {
                                map(vec![("label", l.as_str().into()), ("tokens", (*t).into())])
                            })
                            .collect(),
                    ),
                ),
                (
                    "rules",
                    rules
                        .as_ref()
                        .map(|(n, t)| {
                            map(vec![("name", n.as_str().into()), ("tokens", (*t).into())])
                        })
                        .unwrap_or(Value::Nil),
                ),
            ]),
        ),
        UiEvent::ChatDelta {
            id,
            session,
            delta,
            restart,
            provider,
            model,
        } => (
            "chat_delta",
            map(vec![
                ("id", (*id).into()),
                ("session", session.as_str().into()),
                ("delta", delta.as_str().into()),
                ("restart", (*restart).into()),
                ("provider", provider.as_str().into()),
                ("model", model.as_str().into()),
            ]),
        ),
        UiEvent::ChatTool {
            id,
            session,
            call_id,
            name,
            arguments,
            status,
            summary,
        } => (
            "chat_tool",
            map(vec![
                ("id", (*id).into()),
                ("session", session.as_str().into()),
                ("call_id", call_id.as_str().into()),
                ("name", name.as_str().into()),
                ("arguments", arguments.as_str().into()),
                ("status", status.as_str().into()),
                ("summary", summary.as_str().into()),
            ]),
        ),
        UiEvent::ChatDone {
            id,
            session,
            provider,
            model,
            input_tokens,
            output_tokens,
            context_window,
            cost_usd,
            steps,
        } => (
            "chat_done",
            map(vec![
                ("id", (*id).into()),
                ("session", session.as_str().into()),
                ("provider", provider.as_str().into()),
                ("model", model.as_str().into()),
                ("input_tokens", (*input_tokens).into()),
                ("output_tokens", (*output_tokens).into()),
                ("context_window", opt(*context_window)),
                ("cost_usd", (*cost_usd).into()),
                ("steps", (*steps).into()),
            ]),
        ),
        UiEvent::ChatCompacted {
            id,
            session,
            before_tokens,
            after_tokens,
        } => (
            "chat_compacted",
            map(vec![
                ("id", (*id).into()),
                ("session", session.as_str().into()),
                ("before_tokens", (*before_tokens).into()),
                ("after_tokens", (*after_tokens).into()),
            ]),
        ),
        UiEvent::Ask {
            ask,
            capability,
            tool,
            what,
            root,
        } => (
            "ask",
            map(vec![
                ("ask", (*ask).into()),
                ("capability", capability.as_str().into()),
                ("tool", tool.as_str().into()),
                ("what", what.as_str().into()),
                ("root", root.as_str().into()),
            ]),
        ),
        UiEvent::Notice { job, message } => (
            "notice",
            map(vec![
                ("job", job.as_str().into()),
                ("message", message.as_str().into()),
            ]),
        ),
        UiEvent::Error {
            id,
            job,
            error,
            provider,
        } => (
            "error",
            map(vec![
                ("id", opt(*id)),
                ("job", job.as_str().into()),
                ("kind", error.kind.as_str().into()),
                ("message", error.message.as_str().into()),
                ("status", opt(error.status.map(u64::from))),
                ("provider", opt(provider.as_deref())),
                (
                    "retry_after_ms",
                    opt(error.retry_after.map(|d| d.as_millis() as u64)),
                ),
            ]),
        ),
        UiEvent::Patch(p) => (
            "patch",
            map(vec![
                ("id", p.id.into()),
                ("patch", p.patch.into()),
                ("job", p.job.as_str().into()),
                ("buf", p.buf.into()),
                ("path", p.path.as_str().into()),
                ("tick", p.tick.into()),
                (
                    "hunks",
                    Value::Array(
                        p.hunks
                            .iter()
                            .map(|h| {
                                map(vec![
                                    ("start", (h.start as u64).into()),
                                    ("old", lines_value(&h.old)),
                                    ("new", lines_value(&h.new)),
                                ])
                            })
                            .collect(),
                    ),
                ),
                ("provider", p.provider.as_str().into()),
                ("model", p.model.as_str().into()),
                ("decision", p.decision.as_str().into()),
                ("rule", opt(p.rule.as_deref())),
                ("note", opt(p.note.as_deref())),
            ]),
        ),
        UiEvent::Progress { id, job, chars } => (
            "progress",
            map(vec![
                ("id", (*id).into()),
                ("job", job.as_str().into()),
                ("chars", (*chars as u64).into()),
            ]),
        ),
        UiEvent::Provider {
            name,
            kind,
            url,
            model,
            reachable,
            detail,
        } => (
            "provider",
            map(vec![
                ("name", name.as_str().into()),
                ("kind", kind.as_str().into()),
                ("url", url.as_str().into()),
                ("model", opt(model.as_deref())),
                ("reachable", (*reachable).into()),
                ("detail", detail.as_str().into()),
            ]),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_accepts_map_and_empty_table() {
        let c: Cancel = params("cancel", vec![Value::Array(vec![])]).unwrap();
        assert!(c.id.is_none());
        let c: Cancel = params("cancel", vec![map(vec![("id", 7.into())])]).unwrap();
        assert_eq!(c.id, Some(7));
        let e = params::<Complete>("complete", vec![map(vec![("id", 1.into())])])
            .err()
            .unwrap();
        assert!(e.starts_with("zeke: bad parameters for complete: "), "{e}");
        assert!(params::<Cancel>("cancel", vec![Value::from(3)]).is_err());
    }

    #[test]
    fn buffer_handles() {
        assert_eq!(buffer_handle(&Value::from(3)), Some(3));
        assert_eq!(buffer_handle(&Value::Ext(0, vec![0x05])), Some(5));
        assert_eq!(
            buffer_handle(&Value::Ext(0, vec![0xcd, 0x01, 0x00])),
            Some(256)
        );
        assert_eq!(buffer_handle(&Value::from("x")), None);
    }
}
