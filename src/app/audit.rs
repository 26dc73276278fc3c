//! The audit log: one JSON object per line, appended for every tool call or reviewed proposal of
//! every surface.
//!
//! Location: `$ZEKE_AUDIT_LOG`, else the config's `[mcp] audit_log`, else
//! `$XDG_STATE_HOME/zeke/audit.jsonl`, else `~/.local/state/zeke/audit.jsonl` ([`default_path`]).
//! The file is created `0600`. Records are written by one writer thread per log (never on an async
//! worker), in the order they were appended, each with one `write` on an `O_APPEND` file so
//! concurrent writers (several processes) do not interleave lines. [`Audit::append`] returns a
//! [`Receipt`] an async caller awaits before it answers, so a reply is never seen before its record.
//!
//! Invariant: no file contents and no secrets: [`redact`] replaces `content`, `oldText`, `newText`
//! (and any string over 4 KiB) with their length in bytes.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc;

use serde_json::{Value, json};

use crate::app::gate::Step;

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// It failed (bad arguments, I/O error, a patch that no longer applies).
    Error,
    /// A confinement rule refused it (a path outside the roots, a protected file).
    Refused,
    /// The policy or the user said no.
    Denied,
    Cancelled,
    /// A Neovim patch shown for review; its outcome follows in a later record.
    Proposed,
    /// An MCP call answered with a question for the user; the call comes again with the answer.
    InputRequired,
    /// A writing call passed the gate and is about to change something; its outcome follows in
    /// a later record (a call killed mid-write still leaves this one).
    Started,
}

impl Outcome {
    /// The spelling in the log: `ok`, `error`, `refused`, `denied`, `cancelled`, `proposed`,
    /// `input-required`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Refused => "refused",
            Outcome::Denied => "denied",
            Outcome::Cancelled => "cancelled",
            Outcome::Proposed => "proposed",
            Outcome::InputRequired => "input-required",
            Outcome::Started => "started",
        }
    }
}

/// One audited action.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    /// The tool or action name, e.g. `write_file`, `fix`.
    pub tool: &'a str,
    /// Arguments, already passed through [`redact`].
    pub arguments: Value,
    /// Policy decisions taken, in order.
    pub decisions: &'a [Step],
    pub outcome: Outcome,
    /// The error or refusal message, if any (capped at 1000 characters).
    pub message: Option<&'a str>,
    pub duration_ms: u64,
    /// The client's name from `initialize` (`nvim` for the editor), when known.
    pub client: Option<&'a str>,
}

/// Who waits for a record (or a flush barrier): an async caller or a blocked thread.
enum Waiter {
    Task(tokio::sync::oneshot::Sender<()>),
    Thread(mpsc::Sender<()>),
}

type Job = (Vec<u8>, Waiter);

/// An append-only JSON-lines file; writing failures are logged, never fatal.
pub struct Audit {
    path: PathBuf,
    /// The writer thread's queue, started on first use.
    queue: Mutex<Option<mpsc::Sender<Job>>>,
}

/// Tells when a queued record is on disk; dropping it is fine for callers that need not wait.
pub struct Receipt(Option<tokio::sync::oneshot::Receiver<()>>);

impl Receipt {
    /// Resolves when the record is written (or its write failed and was logged).
    pub async fn written(self) {
        if let Some(rx) = self.0 {
            let _ = rx.await;
        }
    }
}

impl Audit {
    /// The log at `path` (created `0600`, with its directory, on first write).
    pub fn new(path: PathBuf) -> Audit {
        Audit {
            path,
            queue: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues one record (with a UTC timestamp) for the writer thread. Await the receipt to know
    /// it is written; dropping it is fine for callers that need not wait.
    pub fn append(&self, r: &Record) -> Receipt {
        let message = r.message.map(|m| m.chars().take(1000).collect::<String>());
        let decisions: Vec<String> = r.decisions.iter().map(Step::to_string).collect();
        let line = json!({
            "ts": crate::workspace::files::iso8601(std::time::SystemTime::now()),
            "tool": r.tool,
            "arguments": r.arguments,
            "decisions": decisions,
            "outcome": r.outcome.as_str(),
            "message": message,
            "duration_ms": r.duration_ms,
            "client": r.client,
            "pid": std::process::id(),
        });
        let mut bytes = line.to_string().into_bytes();
        bytes.push(b'\n');
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let sender = queue.get_or_insert_with(|| writer(self.path.clone()));
        match sender.send((bytes, Waiter::Task(tx))) {
            Ok(()) => Receipt(Some(rx)),
            Err(_) => {
                tracing::warn!("audit log {}: writer thread gone", self.path.display());
                Receipt(None)
            }
        }
    }

    /// Blocks until every record appended so far is written (at shutdown; from async code, on a
    /// blocking thread).
    pub fn flush(&self) {
        let sender = self.queue.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(sender) = sender {
            let (tx, rx) = mpsc::channel();
            if sender.send((Vec::new(), Waiter::Thread(tx))).is_ok() {
                let _ = rx.recv();
            }
        }
    }
}

/// Starts the thread that owns the file and writes queued records in order.
fn writer(path: PathBuf) -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel::<Job>();
    let shown = path.clone();
    let spawned = std::thread::Builder::new()
        .name("zeke-audit".into())
        .spawn(move || {
            let mut file: Option<std::fs::File> = None;
            for (bytes, done) in rx {
                if !bytes.is_empty() {
                    write_one(&path, &mut file, &bytes);
                }
                match done {
                    Waiter::Task(tx) => {
                        let _ = tx.send(());
                    }
                    Waiter::Thread(tx) => {
                        let _ = tx.send(());
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(
            "audit log {}: cannot start its writer: {e}",
            shown.display()
        );
    }
    tx
}

fn write_one(path: &Path, file: &mut Option<std::fs::File>, bytes: &[u8]) {
    if file.is_none() {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        // 0600: what was done where is nobody else's business
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
        {
            Ok(f) => *file = Some(f),
            Err(e) => {
                tracing::warn!("audit log {}: {e}", path.display());
                return;
            }
        }
    }
    if let Some(f) = file.as_mut()
        && let Err(e) = f.write_all(bytes)
    {
        tracing::warn!("audit log {}: {e}", path.display());
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

/// `args` without file contents: `content`, `oldText`, `newText` become `{"bytes": N}`; any other
/// string over 4 KiB (a path, say) is kept shortened around its end — its first 256 and last 1024
/// characters around `…[N bytes]…` — so the record still says which file it was.
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
                        Value::String(s) if hidden => (k.clone(), json!({"bytes": s.len()})),
                        other => (k.clone(), redact(other)),
                    }
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(redact).collect()),
        Value::String(s) if s.len() > 4096 => Value::String(shorten(s)),
        other => other.clone(),
    }
}

/// `s` as its first 256 and last 1024 characters around `…[N bytes]…`.
fn shorten(s: &str) -> String {
    let head: String = s.chars().take(256).collect();
    let tail: Vec<char> = s.chars().rev().take(1024).collect();
    let tail: String = tail.into_iter().rev().collect();
    format!("{head}…[{} bytes]…{tail}", s.len())
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
    fn a_long_path_is_shortened_around_its_end_never_dropped() {
        let long = format!("/r/{}/secret-name.txt", "d/".repeat(3000));
        let r = redact(&json!({"path": long, "content": "x".repeat(5000)}));
        let path = r["path"].as_str().unwrap();
        assert!(path.starts_with("/r/d/d/"), "{path}");
        assert!(path.ends_with("/secret-name.txt"), "{path}");
        assert!(
            path.contains(&format!("…[{} bytes]…", long.len())),
            "{path}"
        );
        assert!(path.len() < 1500);
        assert_eq!(r["content"], json!({"bytes": 5000}));
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
                outcome: Outcome::Ok,
                message: None,
                duration_ms: 1,
                client: None,
            });
        }
        audit.flush();
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
