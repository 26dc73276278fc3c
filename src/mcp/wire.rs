//! A guard between the client's stdio and rmcp: line framing with a size limit, text checks,
//! the session order, duplicate ids and back-pressure — the JSON-RPC edges rmcp's stdio
//! transport does not handle (it ends the session on a notification before `initialize`, and
//! never answers a line that is not valid text or too long).
//!
//! Rules, for every line from the client:
//! - over [`MAX_LINE`] bytes: dropped as it streams (never buffered whole); a request is answered
//!   `-32600` with the id found at its start;
//! - not UTF-8, or a string with a lone surrogate (`"\ud800"`): a request is answered `-32600`
//!   ("invalid text") and not run — a repaired path could name another file; text that is not
//!   JSON at all gets `-32700` with the id when one can be read, else `null`;
//! - before the session has started (an `initialize`, or a request of the stateless 2026-07-28
//!   lifecycle, answered with a result): notifications and responses are dropped (logged);
//!   requests go to rmcp, which answers `ping` and `server/discover` and refuses the rest;
//! - a request whose id is still in flight gets `-32600` (the first one's reply is unaffected);
//! - at most [`MAX_IN_FLIGHT`] requests run at once; more wait (up to [`MAX_WAITING_BYTES`]),
//!   and past that reading stops until replies have been written — a client that writes but does
//!   not read cannot grow the server. Responses and notifications never wait behind requests.
//!
//! Everything else passes to rmcp byte for byte, and every line rmcp writes reaches the client.
//! Each line answered or dropped here is recorded in the audit log as tool `(protocol)` with its
//! size and reason (never its text).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::app::audit::{Audit, Outcome, Record};
use crate::app::gate::Gate;

/// The longest line passed on: rmcp's own limit (`DEFAULT_MAX_LINE_LENGTH`, 16 MiB).
pub const MAX_LINE: usize = 16 * 1024 * 1024;
/// Requests running at once before reading pauses.
pub const MAX_IN_FLIGHT: usize = 64;

/// A request in flight: its back-pressure permit, and whether its success starts the session.
struct Pending {
    /// `None` while the request waits for a slot.
    _permit: Option<OwnedSemaphorePermit>,
    starts: bool,
}

/// The request ids in flight.
type InFlight = Arc<Mutex<HashMap<String, Pending>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn error_reply(id: &Value, code: i64, message: &str) -> String {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}).to_string()
}

/// The `"id"` near the start of a line that is not JSON (or too long): a number or a string.
fn sniff_id(head: &[u8]) -> Value {
    let text = String::from_utf8_lossy(&head[..head.len().min(64 * 1024)]);
    let mut rest = text.as_ref();
    while let Some(i) = rest.find("\"id\"") {
        let after = rest[i + 4..].trim_start();
        if let Some(v) = after.strip_prefix(':').map(str::trim_start) {
            if v.starts_with('"') {
                let mut de = serde_json::Deserializer::from_str(v).into_iter::<String>();
                if let Some(Ok(s)) = de.next() {
                    return Value::String(s);
                }
            } else {
                let num: String = v
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '-')
                    .collect();
                if let Ok(n) = num.parse::<i64>() {
                    return json!(n);
                }
            }
        }
        rest = &rest[i + 4..];
    }
    Value::Null
}

/// `text` with every lone UTF-16 surrogate escape (`\ud800` not followed by a low surrogate, or a
/// low one alone) replaced by `\ufffd`; `None` when there was none.
fn repair_surrogates(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let hex = |i: usize| -> Option<u16> {
        let s = text.get(i..i + 4)?;
        u16::from_str_radix(s, 16).ok()
    };
    let mut out = String::with_capacity(text.len());
    let (mut i, mut last, mut changed) = (0, 0, false);
    while i + 1 < b.len() {
        if b[i] == b'\\' {
            if b[i + 1] == b'u'
                && let Some(u) = hex(i + 2)
            {
                let high = (0xd800..0xdc00).contains(&u);
                let low = (0xdc00..0xe000).contains(&u);
                let paired = high
                    && b.get(i + 6) == Some(&b'\\')
                    && b.get(i + 7) == Some(&b'u')
                    && hex(i + 8).is_some_and(|l| (0xdc00..0xe000).contains(&l));
                if paired {
                    i += 12;
                    continue;
                }
                if high || low {
                    out.push_str(&text[last..i]);
                    out.push_str("\\ufffd");
                    i += 6;
                    last = i;
                    changed = true;
                    continue;
                }
                i += 6;
                continue;
            }
            i += 2; // any other escape, `\\` included
            continue;
        }
        i += 1;
    }
    changed.then(|| {
        out.push_str(&text[last..]);
        out
    })
}

/// What to do with one line.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// Pass it on; `Some(id)` for a request (tracked in flight), with whether its success starts
    /// the session (anything but `ping` and `server/discover`).
    Pass(Option<String>, bool),
    /// Answer it ourselves and do not pass it on.
    Reply(String),
    /// Drop it (logged).
    Drop(&'static str),
}

/// Decides about one line (without its `\n`).
fn judge(line: &[u8], initialized: bool, in_flight: &InFlight) -> Verdict {
    let (text, valid_utf8) = match std::str::from_utf8(line) {
        Ok(t) => (std::borrow::Cow::Borrowed(t), true),
        Err(_) => (String::from_utf8_lossy(line), false),
    };
    let (value, repaired) = match serde_json::from_str::<Value>(&text) {
        Ok(v) => (v, false),
        Err(e) => match repair_surrogates(&text).and_then(|t| serde_json::from_str(&t).ok()) {
            Some(v) => (v, true),
            None => {
                let id = sniff_id(line);
                if id.is_null() && !text.contains("\"id\"") {
                    // nothing to answer: a broken notification, or noise
                    return Verdict::Drop("a line that is not JSON");
                }
                return Verdict::Reply(error_reply(&id, -32700, &format!("parse error: {e}")));
            }
        },
    };
    let Some(obj) = value.as_object() else {
        return Verdict::Reply(error_reply(
            &Value::Null,
            -32600,
            "invalid request: a JSON-RPC message is an object",
        ));
    };
    let id = obj.get("id").filter(|v| !v.is_null()).cloned();
    let method = obj.get("method").and_then(Value::as_str);
    if !valid_utf8 || repaired {
        let why = if valid_utf8 {
            "a string holds a lone UTF-16 surrogate"
        } else {
            "the line is not UTF-8"
        };
        return match (id, method) {
            (Some(id), Some(_)) => Verdict::Reply(error_reply(
                &id,
                -32600,
                &format!("invalid text: {why}; nothing was run"),
            )),
            _ => Verdict::Drop("a notification or response with invalid text"),
        };
    }
    match (id, method) {
        (None, Some(_)) if !initialized => {
            Verdict::Drop("a notification before the session started")
        }
        (Some(_), None) | (None, None) if !initialized => {
            Verdict::Drop("a response before the session started")
        }
        (Some(id), Some(m)) => {
            let key = id.to_string();
            if lock(in_flight).contains_key(&key) {
                Verdict::Reply(error_reply(
                    &id,
                    -32600,
                    &format!("request id {key} is already in flight; use a new id"),
                ))
            } else {
                Verdict::Pass(Some(key), !matches!(m, "ping" | "server/discover"))
            }
        }
        _ => Verdict::Pass(None, false),
    }
}

/// [`judge`] for the fuzz targets (`fuzz/`): decides about one line, with a fresh in-flight set.
#[doc(hidden)]
pub fn fuzz_judge(line: &[u8], started: bool) {
    let f: InFlight = Arc::default();
    let _ = judge(line, started, &f);
    let _ = repair_surrogates(&String::from_utf8_lossy(line));
    let _ = sniff_id(line);
}

/// The id a cancellation names, to stop tracking it (rmcp need not answer a cancelled request).
fn cancelled_id(line: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(line).ok()?;
    (v.get("method")?.as_str()? == "notifications/cancelled")
        .then(|| v.get("params")?.get("requestId").map(Value::to_string))
        .flatten()
}

/// The id of a response rmcp wrote (an object with `result` or `error`), and whether it is a
/// result.
fn response_id(line: &[u8]) -> Option<(String, bool)> {
    #[derive(serde::Deserialize)]
    struct Head {
        id: Option<Value>,
        result: Option<serde::de::IgnoredAny>,
        error: Option<serde::de::IgnoredAny>,
    }
    let h: Head = serde_json::from_slice(line).ok()?;
    let ok = h.result.is_some();
    (ok || h.error.is_some())
        .then_some(h.id)
        .flatten()
        .map(|v| (v.to_string(), ok))
}

/// One line from the client: whole, or the head of one over [`MAX_LINE`] bytes (the rest was
/// dropped as it streamed, never buffered).
enum Line {
    Whole(Vec<u8>),
    TooLong(Vec<u8>),
}

/// Reads lines with the size limit. Cancel-safe: a line read in part stays in `self` when the
/// future of [`Lines::next`] is dropped (the guard `select!`s it against free slots).
struct Lines<R> {
    r: tokio::io::BufReader<R>,
    line: Vec<u8>,
    too_long: bool,
}

impl<R: AsyncRead + Unpin> Lines<R> {
    fn new(input: R) -> Self {
        Lines {
            r: tokio::io::BufReader::with_capacity(256 * 1024, input),
            line: Vec::new(),
            too_long: false,
        }
    }

    /// The next non-blank line, without its `\n` (and `\r`); `None` at end of input.
    async fn next(&mut self) -> std::io::Result<Option<Line>> {
        loop {
            let buf = self.r.fill_buf().await?;
            if buf.is_empty() {
                let line = std::mem::take(&mut self.line);
                let whole = !line.is_empty() && !std::mem::take(&mut self.too_long);
                return Ok(whole.then_some(Line::Whole(line)));
            }
            let (take, end) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (i, true),
                None => (buf.len(), false),
            };
            if !self.too_long {
                if self.line.len() + take > MAX_LINE {
                    self.too_long = true;
                    let room = (64 * 1024usize).saturating_sub(self.line.len());
                    self.line.extend_from_slice(&buf[..take.min(room)]);
                } else {
                    self.line.extend_from_slice(&buf[..take]);
                }
            }
            self.r.consume(take + usize::from(end));
            if end {
                let mut line = std::mem::take(&mut self.line);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if std::mem::take(&mut self.too_long) {
                    return Ok(Some(Line::TooLong(line)));
                }
                if !line.iter().all(u8::is_ascii_whitespace) {
                    return Ok(Some(Line::Whole(line)));
                }
            }
        }
    }
}

/// The client's side: judge each line, answer or drop it, or pass it to rmcp (a request only once
/// a slot is free).
/// Records a line this guard answered or dropped: its size and why, never its text.
async fn audit_line(audit: Option<&Audit>, bytes: usize, why: &str) {
    if let Some(a) = audit {
        a.append(&Record {
            tool: "(protocol)",
            arguments: json!({"bytes": bytes}),
            decisions: &[],
            outcome: Outcome::Error,
            message: Some(why),
            duration_ms: 0,
            client: None,
        })
        .written()
        .await;
    }
}

/// Requests read while every slot is taken wait here, at most this many bytes in all; past that,
/// reading stops. Responses and notifications never wait, so the answers to the server's own
/// questions (elicitation) still get through when every slot is taken by calls waiting on them.
pub const MAX_WAITING_BYTES: usize = 32 * 1024 * 1024;

#[allow(clippy::too_many_arguments)]
async fn read_client<I: AsyncRead + Unpin>(
    input: I,
    to_rmcp: &mut tokio::io::DuplexStream,
    in_flight: &InFlight,
    permits: &Arc<Semaphore>,
    ours: &mpsc::UnboundedSender<String>,
    started: &AtomicBool,
    audit: Option<&Audit>,
) -> std::io::Result<()> {
    let mut lines = Lines::new(input);
    // requests waiting for a slot: (id, line)
    let mut waiting: std::collections::VecDeque<(String, Vec<u8>)> = Default::default();
    let mut waiting_bytes = 0usize;
    let mut input_open = true;
    loop {
        if !input_open && waiting.is_empty() {
            return Ok(());
        }
        let line = tokio::select! {
            permit = permits.clone().acquire_owned(), if !waiting.is_empty() => {
                let permit = permit.map_err(std::io::Error::other)?;
                let (id, line) = waiting.pop_front().expect("not empty");
                waiting_bytes -= line.len();
                let known = match lock(in_flight).get_mut(&id) {
                    Some(p) => {
                        p._permit = Some(permit);
                        true
                    }
                    None => false,
                };
                if !known {
                    continue; // cancelled while it waited
                }
                to_rmcp.write_all(&line).await?;
                to_rmcp.write_all(b"\n").await?;
                continue;
            }
            next = lines.next(), if input_open && waiting_bytes < MAX_WAITING_BYTES => {
                match next? {
                    Some(l) => l,
                    None => {
                        input_open = false;
                        continue;
                    }
                }
            }
        };
        let line = match line {
            Line::Whole(l) => l,
            Line::TooLong(head) => {
                tracing::warn!("a line over {MAX_LINE} bytes was dropped");
                audit_line(audit, MAX_LINE + 1, "a line over 16 MiB, dropped").await;
                let id = sniff_id(&head);
                if !id.is_null() {
                    let _ = ours.send(error_reply(
                        &id,
                        -32600,
                        &format!("request too large: a line may hold {MAX_LINE} bytes"),
                    ));
                }
                continue;
            }
        };
        match judge(&line, started.load(Ordering::SeqCst), in_flight) {
            Verdict::Reply(r) => {
                let why = serde_json::from_str::<Value>(&r)
                    .ok()
                    .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                    .unwrap_or_default();
                audit_line(audit, line.len(), &why).await;
                let _ = ours.send(r);
            }
            Verdict::Drop(why) => {
                tracing::warn!("dropped {why}");
                audit_line(audit, line.len(), &format!("dropped {why}")).await;
            }
            Verdict::Pass(Some(id), starts) => {
                // back-pressure: a request runs when a slot is free, else waits its turn
                let permit = if waiting.is_empty() {
                    permits.clone().try_acquire_owned().ok()
                } else {
                    None
                };
                let run = permit.is_some();
                lock(in_flight).insert(
                    id.clone(),
                    Pending {
                        _permit: permit,
                        starts,
                    },
                );
                if run {
                    to_rmcp.write_all(&line).await?;
                    to_rmcp.write_all(b"\n").await?;
                } else {
                    waiting_bytes += line.len();
                    waiting.push_back((id, line));
                }
            }
            Verdict::Pass(None, _) => {
                if let Some(done) = cancelled_id(&line) {
                    lock(in_flight).remove(&done);
                    let before = waiting.len();
                    waiting.retain(|(id, _)| *id != done);
                    if waiting.len() < before {
                        // never reached rmcp: nothing more to say about it
                        waiting_bytes = waiting.iter().map(|(_, l)| l.len()).sum();
                        continue;
                    }
                }
                to_rmcp.write_all(&line).await?;
                to_rmcp.write_all(b"\n").await?;
            }
        }
    }
}

/// Serves `service` (rmcp's transport: the two ends given to it) between the client's `input`
/// and `output` under the rules in the module docs; returns when the client's input ends and
/// rmcp's output is drained.
pub async fn guard<I, O>(
    input: I,
    mut output: O,
    to_rmcp: tokio::io::DuplexStream,
    from_rmcp: tokio::io::DuplexStream,
    gate: Option<Arc<Gate>>,
) -> std::io::Result<()>
where
    I: AsyncRead + Unpin + Send + 'static,
    O: AsyncWrite + Unpin,
{
    let in_flight: InFlight = Arc::default();
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let started = Arc::new(AtomicBool::new(false));
    let (ours_tx, mut ours_rx) = mpsc::unbounded_channel::<String>();
    let reader = {
        let (in_flight, permits, started) = (in_flight.clone(), permits.clone(), started.clone());
        let mut to_rmcp = to_rmcp;
        tokio::spawn(async move {
            let audit = gate.as_ref().map(|g| g.audit());
            let r = read_client(
                input,
                &mut to_rmcp,
                &in_flight,
                &permits,
                &ours_tx,
                &started,
                audit,
            )
            .await;
            let _ = to_rmcp.shutdown().await;
            r
        })
    };
    let mut from_rmcp = tokio::io::BufReader::new(from_rmcp);
    let mut line = Vec::new();
    loop {
        tokio::select! {
            n = from_rmcp.read_until(b'\n', &mut line) => {
                if n? == 0 {
                    break;
                }
                if let Some((id, ok)) = response_id(&line) {
                    // the session starts before the client can see the reply that starts it
                    if lock(&in_flight).remove(&id).is_some_and(|p| p.starts) && ok {
                        started.store(true, Ordering::SeqCst);
                    }
                }
                output.write_all(&line).await?;
                output.flush().await?;
                line.clear();
            }
            Some(ours) = ours_rx.recv() => {
                output.write_all(ours.as_bytes()).await?;
                output.write_all(b"\n").await?;
                output.flush().await?;
            }
        }
    }
    while let Ok(ours) = ours_rx.try_recv() {
        output.write_all(ours.as_bytes()).await?;
        output.write_all(b"\n").await?;
    }
    output.flush().await?;
    reader.abort();
    let _ = from_rmcp.read_to_end(&mut Vec::new()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_found_in_text_that_is_not_json() {
        assert_eq!(
            sniff_id(br#"{"jsonrpc":"2.0","id": 17, "method":"x", oops"#),
            json!(17)
        );
        assert_eq!(sniff_id(br#"{"id":"a\"b","method"#), json!("a\"b"));
        assert_eq!(sniff_id(b"garbage"), Value::Null);
    }

    #[test]
    fn lone_surrogates_are_found_pairs_are_kept() {
        assert_eq!(
            repair_surrogates(r#""\ud83d\ude00""#),
            None,
            "a pair is valid"
        );
        assert_eq!(
            repair_surrogates(r#""a\ud800b""#).as_deref(),
            Some(r#""a\ufffdb""#)
        );
        assert_eq!(
            repair_surrogates(r#""\udc00""#).as_deref(),
            Some(r#""\ufffd""#)
        );
        assert_eq!(
            repair_surrogates(r#""\\ud800""#),
            None,
            "an escaped backslash, not an escape"
        );
    }

    #[test]
    fn judging_lines() {
        let f: InFlight = Arc::default();
        let req = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        assert_eq!(
            judge(
                br#"{"jsonrpc":"2.0","method":"notifications/x"}"#,
                false,
                &f
            ),
            Verdict::Drop("a notification before the session started")
        );
        assert_eq!(
            judge(req, false, &f),
            Verdict::Pass(Some("1".into()), true),
            "rmcp answers it"
        );
        let ping = br#"{"jsonrpc":"2.0","id":9,"method":"ping"}"#;
        assert_eq!(
            judge(ping, false, &f),
            Verdict::Pass(Some("9".into()), false)
        );
        assert_eq!(judge(req, true, &f), Verdict::Pass(Some("1".into()), true));
        let permit = Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap();
        lock(&f).insert(
            "1".into(),
            Pending {
                _permit: Some(permit),
                starts: true,
            },
        );
        assert!(
            matches!(judge(req, true, &f), Verdict::Reply(r) if r.contains("already in flight"))
        );
        let lone = br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_text_file","arguments":{"path":"a\ud800"}}}"#;
        assert!(
            matches!(judge(lone, true, &f), Verdict::Reply(r) if r.contains("lone UTF-16 surrogate") && r.contains("\"id\":2"))
        );
        let mut bad = br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"x","arguments":{"path":"a"#.to_vec();
        bad.extend([0xff, 0xfe]);
        bad.extend(br#""}}}"#);
        assert!(
            matches!(judge(&bad, true, &f), Verdict::Reply(r) if r.contains("not UTF-8") && r.contains("\"id\":3"))
        );
        assert!(
            matches!(judge(br#"{"id": 4, "method": "#, true, &f), Verdict::Reply(r) if r.contains("-32700") && r.contains("\"id\":4"))
        );
    }

    use proptest::prelude::*;

    proptest! {
        // Any line: judging never panics, and a reply is always a JSON-RPC error object.
        #[test]
        fn any_line_is_judged(line in prop::collection::vec(any::<u8>(), 0..300), started: bool) {
            let f: InFlight = Arc::default();
            if let Verdict::Reply(r) = judge(&line, started, &f) {
                let v: Value = serde_json::from_str(&r).unwrap();
                prop_assert!(v["error"]["code"].is_i64());
                prop_assert_eq!(&v["jsonrpc"], "2.0");
            }
        }

        // A request whose text is broken in any way after its id still gets an answer with that id.
        #[test]
        fn a_broken_request_is_answered_with_its_id(id in 0u32..1_000_000, tail in "[ -~]{0,40}") {
            let f: InFlight = Arc::default();
            let line = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"x":"{tail}"#);
            match judge(line.as_bytes(), true, &f) {
                Verdict::Reply(r) => {
                    let v: Value = serde_json::from_str(&r).unwrap();
                    prop_assert_eq!(v["id"].as_u64(), Some(id as u64));
                }
                Verdict::Pass(Some(key), _) => prop_assert_eq!(key, id.to_string()),
                other => prop_assert!(false, "{other:?}"),
            }
        }

        #[test]
        fn surrogate_repair_never_panics(text in "\\PC{0,60}") {
            let _ = repair_surrogates(&text);
        }
    }
}
