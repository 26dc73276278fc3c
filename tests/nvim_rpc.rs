//! The `zeke nvim` surface spoken to directly over msgpack-RPC, with this test playing Neovim on a
//! Unix socket pair (as `jobstart(…, {rpc = true})` hands one): requests get replies, bad input
//! gets error replies or `error` events and the backend keeps serving (malformed frames included), the buffer mirror follows
//! `nvim_buf_lines_event`s, stale requests are dropped, stdout carries nothing but msgpack, and the
//! process exits when its stdin closes.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use rmpv::Value;

use crate::common::zeke_bin;

struct FakeNvim {
    child: Child,
    sock: UnixStream,
    rx: Receiver<Value>,
    next_id: u64,
    events: Vec<(String, Value)>,
}

fn field<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.as_map()
        .and_then(|m| {
            m.iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v)
        })
        .unwrap_or(&Value::Nil)
}

fn map(pairs: &[(&str, Value)]) -> Value {
    Value::Map(
        pairs
            .iter()
            .map(|(k, v)| (Value::from(*k), v.clone()))
            .collect(),
    )
}

impl FakeNvim {
    fn start() -> FakeNvim {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let dir =
            std::env::temp_dir().join(format!("zeke-rpc-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new(zeke_bin())
            .args(["nvim", "--log", dir.join("zeke.log").to_str().unwrap()])
            .env("ZEKE_CONFIG", "/nonexistent")
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(
                theirs.try_clone().unwrap(),
            )))
            .stdout(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let mut reader = ours.try_clone().unwrap();
        std::thread::spawn(move || {
            // Every byte on stdout must be msgpack: a decode error ends the stream and fails the test.
            while let Ok(v) = rmpv::decode::read_value(&mut reader) {
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        FakeNvim {
            child,
            sock: ours,
            rx,
            next_id: 1,
            events: Vec::new(),
        }
    }

    fn send(&mut self, v: Value) {
        let mut buf = Vec::new();
        rmpv::encode::write_value(&mut buf, &v).unwrap();
        self.sock.write_all(&buf).unwrap();
    }

    fn notify(&mut self, method: &str, arg: Value) {
        self.send(Value::Array(vec![
            2.into(),
            method.into(),
            Value::Array(vec![arg]),
        ]));
    }

    /// Sends a request and waits for its reply, answering the backend's own calls meanwhile.
    fn request(&mut self, method: &str, arg: Value) -> Result<Value, Value> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(Value::Array(vec![
            0.into(),
            id.into(),
            method.into(),
            Value::Array(vec![arg]),
        ]));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let msg = self.recv(deadline).expect("reply in time");
            let a = msg.as_array().unwrap();
            if a[0].as_u64() == Some(1) && a[1].as_u64() == Some(id) {
                return if a[2].is_nil() {
                    Ok(a[3].clone())
                } else {
                    Err(a[2].clone())
                };
            }
        }
    }

    /// Receives one message; backend requests (`nvim_exec_lua` dispatches, `nvim_buf_attach`) are
    /// answered and dispatched events recorded.
    fn recv(&mut self, deadline: Instant) -> Option<Value> {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = match self.rx.recv_timeout(left) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => return None,
        };
        let a = msg.as_array().unwrap().clone();
        if a[0].as_u64() == Some(0) {
            let method = a[2].as_str().unwrap().to_string();
            let result = match method.as_str() {
                "nvim_exec_lua" => {
                    let args = a[3].as_array().unwrap()[1].as_array().unwrap();
                    self.events
                        .push((args[0].as_str().unwrap().to_string(), args[1].clone()));
                    Value::Nil
                }
                "nvim_buf_attach" | "nvim_buf_detach" => Value::Boolean(true),
                _ => Value::Nil,
            };
            self.send(Value::Array(vec![
                1.into(),
                a[1].clone(),
                Value::Nil,
                result,
            ]));
        }
        Some(msg)
    }

    /// Waits until an event satisfies `pred`; returns it.
    fn wait_event(&mut self, what: &str, pred: impl Fn(&str, &Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some((_, v)) = self.events.iter().find(|(n, v)| pred(n, v)) {
                return v.clone();
            }
            assert!(
                self.recv(deadline).is_some(),
                "no {what} event; got {:?}",
                self.events
            );
        }
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn lines_event(buf: i64, tick: i64, first: i64, last: i64, lines: &[&str]) -> Value {
    Value::Array(vec![
        2.into(),
        "nvim_buf_lines_event".into(),
        Value::Array(vec![
            Value::Ext(0, vec![buf as u8]),
            tick.into(),
            first.into(),
            last.into(),
            Value::Array(lines.iter().map(|l| Value::from(*l)).collect()),
            false.into(),
        ]),
    ])
}

#[test]
fn requests_errors_and_bad_input() {
    let mut nvim = FakeNvim::start();
    assert_eq!(nvim.request("ping", "x".into()), Ok("x".into()));
    let err = nvim.request("frobnicate", Value::Nil).unwrap_err();
    assert_eq!(err.as_str(), Some("zeke: unknown method \"frobnicate\""));
    // malformed params on the model path: an error event, and the backend keeps serving
    nvim.notify("complete", map(&[("id", 1.into())]));
    let e = nvim.wait_event("error", |n, _| n == "error");
    assert_eq!(field(&e, "job").as_str(), Some("rpc"));
    assert!(
        field(&e, "message")
            .as_str()
            .unwrap()
            .starts_with("zeke: bad parameters for complete"),
        "{e}"
    );
    nvim.notify("frobnicate", Value::Nil);
    nvim.wait_event("error", |_, v| {
        field(v, "message")
            .as_str()
            .is_some_and(|m| m.contains("unknown notification"))
    });
    let bad = nvim
        .request(
            "configure",
            map(&[(
                "config",
                map(&[("completion", map(&[("debouce_ms", 5.into())]))]),
            )]),
        )
        .unwrap_err();
    assert!(
        bad.as_str()
            .unwrap()
            .contains("completion.debouce_ms: unknown field"),
        "{bad}"
    );
    assert_eq!(
        nvim.request("ping", 7.into()),
        Ok(7.into()),
        "still serving"
    );
    // frames that are not msgpack-RPC: bytes that are not msgpack, a map, an array of the wrong
    // shape, a request whose method is not a string — each skipped, none ends the backend
    let mut junk = vec![0xc1, 0xc1, 0xff];
    for v in [
        map(&[("a", 1.into())]),
        Value::Array(vec![7.into(), 1.into()]),
        Value::Array(vec![0.into(), 99.into(), 5.into(), Value::Array(vec![])]),
    ] {
        rmpv::encode::write_value(&mut junk, &v).unwrap();
    }
    nvim.sock.write_all(&junk).unwrap();
    assert_eq!(
        nvim.request("ping", 8.into()),
        Ok(8.into()),
        "a malformed frame is skipped, not fatal"
    );
    drop(nvim.sock.shutdown(std::net::Shutdown::Both));
    let t = Instant::now();
    loop {
        if let Some(status) = nvim.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "zeke nvim outlived its editor"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
#[cfg_attr(
    not(feature = "test-support"),
    ignore = "skipped: needs --features test-support (the fake provider), as `make test` builds"
)]
fn mirror_follows_buffer_events_and_stale_requests_are_dropped() {
    let mut nvim = FakeNvim::start();
    let cfg = map(&[
        (
            "providers",
            map(&[(
                "fake",
                map(&[
                    ("kind", "fake".into()),
                    ("reply", "in() {}".into()),
                    ("delay_ms", 1.into()),
                ]),
            )]),
        ),
        ("completion", map(&[("provider", "fake".into())])),
    ]);
    let info = nvim.request("configure", map(&[("config", cfg)])).unwrap();
    assert_eq!(field(&info, "pid").as_u64(), Some(nvim.child.id() as u64));
    nvim.wait_event("provider", |n, v| {
        n == "provider" && field(v, "reachable") == &Value::Boolean(true)
    });
    nvim.send(lines_event(1, 5, 0, -1, &["", "fn ma"]));
    nvim.send(lines_event(1, 6, 0, 1, &[]));
    nvim.notify(
        "complete",
        map(&[
            ("id", 2.into()),
            ("buf", 1.into()),
            ("tick", 6.into()),
            ("row", 0.into()),
            ("col", 5.into()),
        ]),
    );
    let done = nvim.wait_event("completion", |n, v| {
        n == "completion"
            && field(v, "id").as_u64() == Some(2)
            && field(v, "done") == &Value::Boolean(true)
    });
    assert_eq!(field(&done, "text").as_str(), Some("in() {}"));
    assert_eq!(field(&done, "tick").as_u64(), Some(6));
    // a request for an older changedtick gets an empty answer, not a completion of other text
    nvim.notify(
        "complete",
        map(&[
            ("id", 3.into()),
            ("buf", 1.into()),
            ("tick", 5.into()),
            ("row", 0.into()),
            ("col", 5.into()),
        ]),
    );
    let stale = nvim.wait_event("completion", |n, v| {
        n == "completion" && field(v, "id").as_u64() == Some(3)
    });
    assert_eq!(
        (field(&stale, "text").as_str(), field(&stale, "done")),
        (Some(""), &Value::Boolean(true))
    );
    let status = nvim.request("status", Value::Nil).unwrap();
    let counts = field(&status, "counts");
    assert_eq!(field(counts, "completions_finished").as_u64(), Some(1));
    assert_eq!(field(&status, "buffers").as_u64(), Some(1));
    assert!(field(&status, "rss_kb").as_u64().unwrap() > 0);
    let _ = nvim.child.kill();
}
