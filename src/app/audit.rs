//! The audit log: one JSON object per line, appended for every tool call or reviewed proposal.
//!
//! Location: `$ZEKE_AUDIT_LOG`, else the config's path, else `$XDG_STATE_HOME/zeke/audit.jsonl`, else
//! `~/.local/state/zeke/audit.jsonl`. Each record is written with one `write` on an `O_APPEND` file,
//! so concurrent writers (several servers) do not interleave lines.
//!
//! Invariant: no file contents and no secrets: [`redact`] replaces `content`, `oldText`, `newText`
//! (and any string over 4 KiB) with their length in bytes.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{Value, json};

/// One audited action.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    /// The tool or action name, e.g. `write_file`.
    pub tool: &'a str,
    /// Arguments, already passed through [`redact`].
    pub arguments: Value,
    /// Policy decisions taken, e.g. `["fs.write allow ([capabilities])"]`.
    pub decisions: &'a [String],
    /// `ok`, `error`, `refused` (confinement), `denied` (policy or user), `cancelled`, or
    /// `proposed` (a Neovim patch shown for review; its outcome follows in a later record).
    pub outcome: &'a str,
    /// The error or refusal message, if any (capped at 1000 characters).
    pub message: Option<&'a str>,
    pub duration_ms: u64,
    /// The client's name from `initialize`, when known.
    pub client: Option<&'a str>,
}

/// An append-only JSON-lines file; writing failures are logged, never fatal.
pub struct Audit {
    path: PathBuf,
    file: Mutex<Option<std::fs::File>>,
}

impl Audit {
    /// The log at `path` (created `0600`, with its directory, on first write).
    pub fn new(path: PathBuf) -> Audit {
        Audit {
            path,
            file: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record with a UTC timestamp.
    pub fn append(&self, r: &Record) {
        let message = r.message.map(|m| m.chars().take(1000).collect::<String>());
        let line = json!({
            "ts": crate::workspace::files::iso8601(std::time::SystemTime::now()),
            "tool": r.tool,
            "arguments": r.arguments,
            "decisions": r.decisions,
            "outcome": r.outcome,
            "message": message,
            "duration_ms": r.duration_ms,
            "client": r.client,
            "pid": std::process::id(),
        });
        let mut bytes = line.to_string().into_bytes();
        bytes.push(b'\n');
        let mut guard = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            if let Some(dir) = self.path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            // 0600: what was done where is nobody else's business
            match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&self.path)
            {
                Ok(f) => *guard = Some(f),
                Err(e) => {
                    tracing::warn!("audit log {}: {e}", self.path.display());
                    return;
                }
            }
        }
        if let Some(f) = guard.as_mut()
            && let Err(e) = f.write_all(&bytes)
        {
            tracing::warn!("audit log {}: {e}", self.path.display());
        }
    }
}

/// The default audit log path (see the module docs); `configured` is the config's value.
pub fn default_path(configured: Option<&Path>) -> PathBuf {
    if let Some(p) = std::env::var_os("ZEKE_AUDIT_LOG").filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(p) = configured {
        return p.to_path_buf();
    }
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("state")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("zeke").join("audit.jsonl")
}

/// `args` without file contents: `content`, `oldText`, `newText` and strings over 4 KiB become
/// `{"bytes": N}`.
pub fn redact(args: &Value) -> Value {
    match args {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let hidden = matches!(
                        k.as_str(),
                        "content" | "oldText" | "newText" | "old_text" | "new_text"
                    );
                    match v {
                        Value::String(s) if hidden || s.len() > 4096 => {
                            (k.clone(), json!({"bytes": s.len()}))
                        }
                        other => (k.clone(), redact(other)),
                    }
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(redact).collect()),
        Value::String(s) if s.len() > 4096 => json!({"bytes": s.len()}),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_contents_keeps_paths() {
        let a = json!({"path": "/r/a.txt", "content": "secret", "edits": [{"oldText": "abc", "newText": "de"}], "dryRun": true});
        assert_eq!(
            redact(&a),
            json!({"path": "/r/a.txt", "content": {"bytes": 6}, "edits": [{"oldText": {"bytes": 3}, "newText": {"bytes": 2}}], "dryRun": true})
        );
    }

    #[test]
    fn appends_lines() {
        let t = tempfile::tempdir().unwrap();
        let audit = Audit::new(t.path().join("sub/audit.jsonl"));
        for tool in ["a", "b"] {
            audit.append(&Record {
                tool,
                arguments: json!({}),
                decisions: &[],
                outcome: "ok",
                message: None,
                duration_ms: 1,
                client: None,
            });
        }
        let text = std::fs::read_to_string(audit.path()).unwrap();
        let tools: Vec<String> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["tool"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(tools, ["a", "b"]);
    }
}
