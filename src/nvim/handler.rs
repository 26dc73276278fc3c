//! The RPC handler: maps each method to an app call. Notifications are handled in order on the
//! I/O loop (so buffer events apply before the `complete` that follows them) and must return
//! quickly: model work is spawned through `app.tasks`, editor calls in their own tasks. Requests
//! are spawned by nvim-rs. Replies to the editor go through [`forward`], the one task that calls
//! `zeke.rpc.dispatch`; it is never aborted, so no editor request is left half-answered.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use nvim_rs::{Handler, Neovim};
use rmpv::Value;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::app::complete::complete;
use crate::app::explain::explain;
use crate::app::{App, Job, Sink, Stats, UiEvent};
use crate::config::Config;
use crate::core::llm::{ErrorKind, ProviderError};
use crate::nvim::coalesce;
use crate::nvim::proto::{self, map, params};
use crate::nvim::session::Buffers;
use crate::nvim::{Nvim, Out};

type Writer = tokio_util::compat::Compat<Out>;

/// How long a request for a buffer attached just now waits for its first lines event.
const FIRST_MIRROR_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The `done` event with no text that ends a completion request which produced nothing.
fn empty_completion(p: &crate::app::complete::CompleteParams) -> UiEvent {
    UiEvent::Completion {
        id: p.id,
        buf: p.buf,
        tick: p.tick,
        row: p.row,
        col: p.col,
        text: String::new(),
        done: true,
        received: p.received,
        provider_ttft: None,
    }
}

#[derive(Clone)]
pub struct NvimHandler {
    pub(super) app: Arc<App>,
    pub(super) buffers: Arc<Buffers>,
    pub(super) sink: Sink,
    /// The one task that calls `nvim_buf_attach` / `nvim_buf_detach`, in the order asked.
    attacher: Arc<std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<Attachment>>>,
}

/// A change of which buffers Neovim sends events for. Applied strictly in order by one task:
/// a detach and a re-attach of the same buffer (`:enew` reusing it) must not overtake each other.
#[derive(Debug)]
enum Attachment {
    Attach(i64),
    Detach(i64),
}

impl NvimHandler {
    pub fn new(app: Arc<App>, sink: Sink) -> Self {
        NvimHandler {
            app,
            buffers: Arc::new(Buffers::default()),
            sink,
            attacher: Default::default(),
        }
    }

    pub(super) fn rpc_error(&self, id: Option<u64>, job: Job, message: String) {
        tracing::warn!(%message, "bad notification");
        let _ = self.sink.send(UiEvent::Error {
            id,
            job,
            error: ProviderError::new(ErrorKind::Invalid, message),
            provider: None,
        });
    }

    fn attachments(&self, nvim: Nvim) -> &tokio::sync::mpsc::UnboundedSender<Attachment> {
        self.attacher.get_or_init(|| {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Attachment>();
            tokio::spawn(async move {
                while let Some(op) = rx.recv().await {
                    let result = match op {
                        Attachment::Attach(buf) => {
                            nvim.call(
                                "nvim_buf_attach",
                                vec![buf.into(), true.into(), Value::Map(vec![])],
                            )
                            .await
                        }
                        Attachment::Detach(buf) => {
                            nvim.call("nvim_buf_detach", vec![buf.into()]).await
                        }
                    };
                    match result {
                        Ok(Ok(Value::Boolean(true))) => tracing::debug!(?op, "done"),
                        other => tracing::debug!(?op, ?other, "not done (buffer gone?)"),
                    }
                }
            });
            tx
        })
    }

    pub(super) fn attach(&self, buf: i64, nvim: Nvim) {
        if !self.buffers.contains(buf) {
            let _ = self.attachments(nvim).send(Attachment::Attach(buf));
        }
    }

    fn detach(&self, buf: i64, nvim: Nvim) {
        self.buffers.remove(buf);
        let _ = self.attachments(nvim).send(Attachment::Detach(buf));
    }

    /// Re-reads a buffer whose mirror fell out of step: detach, then attach (which resends it).
    fn resync(&self, buf: i64, nvim: Nvim) {
        self.detach(buf, nvim.clone());
        let _ = self.attachments(nvim).send(Attachment::Attach(buf));
    }

    fn on_lines(&self, args: &[Value], nvim: Nvim) {
        let (Some(buf), Some(first), Some(last), Some(Value::Array(data))) = (
            args.first().and_then(proto::buffer_handle),
            args.get(2).and_then(Value::as_i64),
            args.get(3).and_then(Value::as_i64),
            args.get(4),
        ) else {
            tracing::warn!(?args, "malformed nvim_buf_lines_event");
            return;
        };
        let started = Instant::now();
        let tick = args.get(1).and_then(Value::as_i64);
        let lines: Vec<String> = data
            .iter()
            .map(|l| {
                l.as_str().map(str::to_owned).unwrap_or_else(|| {
                    String::from_utf8_lossy(l.as_slice().unwrap_or(&[])).into_owned()
                })
            })
            .collect();
        let applied = self.buffers.on_lines(buf, tick, first, last, &lines);
        Stats::bump(&self.app.stats.mirror_events, 1);
        Stats::bump(
            &self.app.stats.mirror_ns,
            started.elapsed().as_nanos() as u64,
        );
        if let Err(e) = applied {
            tracing::warn!(buf, %e, "buffer mirror out of step; re-attaching");
            Stats::bump(&self.app.stats.mirror_resyncs, 1);
            self.resync(buf, nvim);
        }
    }

    fn on_complete(&self, args: Vec<Value>, nvim: Nvim) {
        let received = Instant::now();
        let p: proto::Complete = match params("complete", args) {
            Ok(p) => p,
            Err(e) => return self.rpc_error(None, Job::Rpc, e),
        };
        let p = p.from_proto(received);
        if let Some((text, tick)) = self.buffers.snapshot(p.buf) {
            if tick != p.tick {
                tracing::debug!(
                    id = p.id,
                    want = p.tick,
                    have = tick,
                    "stale completion request dropped"
                );
                return self.finish_empty(&p);
            }
            let (app, sink, id) = (self.app.clone(), self.sink.clone(), p.id);
            let aborted =
                self.app
                    .tasks
                    .spawn(Job::Complete, id, true, complete(app, p, text, sink));
            return Stats::bump(&self.app.stats.completions_cancelled, aborted as u64);
        }
        // Not mirrored yet (first request in this buffer): attach, and let the job wait for the
        // first lines event; the next keystroke cancels the wait like any completion.
        self.attach(p.buf, nvim);
        let (app, sink, buffers, id) = (
            self.app.clone(),
            self.sink.clone(),
            self.buffers.clone(),
            p.id,
        );
        let job = async move {
            match buffers.wait_snapshot(p.buf, FIRST_MIRROR_WAIT).await {
                Some((text, tick)) if tick == p.tick => complete(app, p, text, sink).await,
                _ => {
                    let _ = sink.send(empty_completion(&p));
                }
            }
        };
        let aborted = self.app.tasks.spawn(Job::Complete, id, true, job);
        Stats::bump(&self.app.stats.completions_cancelled, aborted as u64);
    }

    /// Tells the editor a request produced nothing, so it stops waiting for it.
    fn finish_empty(&self, p: &crate::app::complete::CompleteParams) {
        let _ = self.sink.send(empty_completion(p));
    }

    fn on_explain(&self, args: Vec<Value>, nvim: Nvim) {
        let p: proto::Explain = match params("explain", args) {
            Ok(p) => p,
            Err(e) => return self.rpc_error(None, Job::Explain, e),
        };
        let buf = p.buf;
        let p = p.from_proto();
        self.attach(buf, nvim);
        let (app, sink, buffers, id) = (
            self.app.clone(),
            self.sink.clone(),
            self.buffers.clone(),
            p.id,
        );
        let job = async move {
            match buffers.wait_snapshot(buf, FIRST_MIRROR_WAIT).await {
                Some((text, _)) => explain(app, p, text, sink).await,
                None => {
                    let message = format!(
                        "buffer {buf} is not attached to zeke (no buffer events within {} ms)",
                        FIRST_MIRROR_WAIT.as_millis()
                    );
                    let _ = sink.send(UiEvent::Error {
                        id: Some(id),
                        job: Job::Explain,
                        error: ProviderError::new(ErrorKind::Invalid, message),
                        provider: None,
                    });
                }
            }
        };
        self.app.tasks.spawn(Job::Explain, id, false, job);
    }

    async fn configure(&self, args: Vec<Value>) -> Result<Value, Value> {
        let p: proto::Configure = params("configure", args)?;
        let overrides = p.config.filter(|c| !c.is_null());
        let config = Config::load(crate::config::default_path().as_deref(), overrides)
            .map_err(|e| Value::from(e.to_string()))?;
        let source = config.source.as_ref().map(|p| p.display().to_string());
        let raw = proto::json(&config.raw);
        let set = self.app.configure(config).await;
        let mut warnings = Vec::new();
        if let Some(d) = &set.detection {
            tracing::info!(detail = %d.detail, "local provider detection");
            if !d.reachable {
                warnings.push(Value::from(d.detail.as_str()));
            }
        }
        // Probe the completion provider in the background and tell the editor what answers.
        let (sink, s2) = (self.sink.clone(), set.clone());
        tokio::spawn(async move {
            let (reachable, detail) = match s2.provider(Job::Complete).await {
                Ok(p) => crate::app::providers::probe(p.as_ref()).await,
                Err(e) => (false, e.to_string()),
            };
            if let Some(sel) = s2.selected(Job::Complete) {
                let _ = sink.send(UiEvent::Provider {
                    name: sel.name,
                    kind: sel.kind.as_str().into(),
                    url: sel.url,
                    model: sel.model,
                    reachable,
                    detail,
                });
            }
        });
        Ok(map(vec![
            ("pid", std::process::id().into()),
            ("version", env!("CARGO_PKG_VERSION").into()),
            ("config_path", source.map(Value::from).unwrap_or(Value::Nil)),
            ("effective", raw),
            ("warnings", Value::Array(warnings)),
        ]))
    }

    fn status(&self) -> Value {
        let s = &self.app.stats;
        let set = self.app.setup();
        let provider = set
            .selected(Job::Complete)
            .map(|p| {
                map(vec![
                    ("name", p.name.into()),
                    ("kind", p.kind.as_str().into()),
                    ("url", p.url.into()),
                    ("model", p.model.map(Value::from).unwrap_or(Value::Nil)),
                ])
            })
            .unwrap_or(Value::Nil);
        let last = s
            .last()
            .map(|l| {
                map(vec![
                    ("ttft_ms", l.ttft_ms.into()),
                    ("total_ms", l.total_ms.into()),
                    ("overhead_ms", l.overhead_ms.into()),
                ])
            })
            .unwrap_or(Value::Nil);
        let counts = map(vec![
            (
                "completions_started",
                Stats::get(&s.completions_started).into(),
            ),
            (
                "completions_finished",
                Stats::get(&s.completions_finished).into(),
            ),
            (
                "completions_cancelled",
                Stats::get(&s.completions_cancelled).into(),
            ),
            (
                "completions_failed",
                Stats::get(&s.completions_failed).into(),
            ),
            (
                "completions_running",
                (self.app.tasks.running(Job::Complete) as u64).into(),
            ),
            ("explains_started", Stats::get(&s.explains_started).into()),
            ("explains_finished", Stats::get(&s.explains_finished).into()),
        ]);
        map(vec![
            ("pid", std::process::id().into()),
            ("version", env!("CARGO_PKG_VERSION").into()),
            ("provider", provider),
            (
                "router",
                json_value(&crate::app::report::router_status(&self.app, &set)),
            ),
            ("last", last),
            ("counts", counts),
            ("buffers", (self.buffers.len() as u64).into()),
            ("buffer_bytes", (self.buffers.bytes() as u64).into()),
            (
                "audit_log",
                self.app.gate.audit().path().display().to_string().into(),
            ),
            (
                "mirror",
                map(vec![
                    ("events", Stats::get(&s.mirror_events).into()),
                    ("resyncs", Stats::get(&s.mirror_resyncs).into()),
                    ("total_us", (Stats::get(&s.mirror_ns) / 1000).into()),
                ]),
            ),
            (
                "rss_kb",
                crate::sys::rss_kb().map(Value::from).unwrap_or(Value::Nil),
            ),
        ])
    }

    async fn health(&self) -> Value {
        let set = self.app.setup();
        let checks = set.health().await;
        let providers = checks
            .into_iter()
            .map(|h| {
                map(vec![
                    ("name", h.selected.name.into()),
                    ("kind", h.selected.kind.as_str().into()),
                    ("url", h.selected.url.into()),
                    (
                        "model",
                        h.selected.model.map(Value::from).unwrap_or(Value::Nil),
                    ),
                    ("reachable", h.reachable.into()),
                    ("detail", h.detail.into()),
                    ("key", h.key.into()),
                ])
            })
            .collect();
        let config_file = crate::config::default_path();
        let (config_ok, errors) = match Config::load(config_file.as_deref(), None) {
            Ok(_) => (true, vec![]),
            Err(e) => (false, e.messages.into_iter().map(Value::from).collect()),
        };
        map(vec![
            (
                "config_path",
                config_file
                    .map(|p| Value::from(p.display().to_string()))
                    .unwrap_or(Value::Nil),
            ),
            ("config_ok", config_ok.into()),
            ("config_errors", Value::Array(errors)),
            (
                "selected",
                set.selected(Job::Complete)
                    .map(|s| Value::from(s.name))
                    .unwrap_or(Value::Nil),
            ),
            (
                "detection",
                set.detection
                    .as_ref()
                    .map(|d| Value::from(d.detail.as_str()))
                    .unwrap_or(Value::Nil),
            ),
            ("providers", Value::Array(providers)),
        ])
    }
}

#[async_trait]
impl Handler for NvimHandler {
    type Writer = Writer;

    async fn handle_request(
        &self,
        name: String,
        args: Vec<Value>,
        _nvim: Neovim<Writer>,
    ) -> Result<Value, Value> {
        tracing::debug!(method = %name, "request");
        match name.as_str() {
            "configure" => self.configure(args).await,
            "status" => Ok(self.status()),
            "health" => Ok(self.health().await),
            "ping" => Ok(args.into_iter().next().unwrap_or(Value::Nil)),
            "apply" => self.apply(args).await,
            "resolve" => self.resolve(args),
            "test_target" => self.test_target(args),
            "grants" => Ok(self.grants()),
            "usage" => self.usage(args),
            "chat_sessions" => self.chat_sessions(args),
            "chat_load" => self.chat_load(args),
            "models" => Ok(self.models(args).await),
            "mcp_servers" => Ok(self.mcp_servers().await),
            "lsp_servers" => Ok(self.lsp_servers().await),
            "pin" => self.pin(args),
            "revoke" => self.revoke(args),
            other => Err(Value::from(format!("zeke: unknown method {other:?}"))),
        }
    }

    async fn handle_notify(&self, name: String, args: Vec<Value>, nvim: Neovim<Writer>) {
        match name.as_str() {
            "nvim_buf_lines_event" => self.on_lines(&args, nvim),
            "nvim_buf_changedtick_event" => {
                if let (Some(buf), Some(tick)) = (
                    args.first().and_then(proto::buffer_handle),
                    args.get(1).and_then(Value::as_i64),
                ) && let Err(e) = self.buffers.on_tick(buf, tick)
                {
                    tracing::warn!(buf, %e, "buffer mirror out of step; re-attaching");
                    Stats::bump(&self.app.stats.mirror_resyncs, 1);
                    self.resync(buf, nvim);
                }
            }
            "nvim_buf_detach_event" => {
                if let Some(buf) = args.first().and_then(proto::buffer_handle) {
                    self.buffers.remove(buf);
                    tracing::debug!(buf, "detached");
                }
            }
            "attach" => match params::<proto::Buf>("attach", args) {
                Ok(p) => self.attach(p.buf, nvim),
                Err(e) => self.rpc_error(None, Job::Rpc, e),
            },
            "detach" => match params::<proto::Buf>("detach", args) {
                Ok(p) => self.detach(p.buf, nvim),
                Err(e) => self.rpc_error(None, Job::Rpc, e),
            },
            "complete" => self.on_complete(args, nvim),
            "chat" => match params::<proto::Chat>("chat", args) {
                Ok(p) => {
                    let (app, sink) = (self.app.clone(), self.sink.clone());
                    let id = p.id;
                    let params = crate::app::chat::ChatParams {
                        id: p.id,
                        session: p.session,
                        message: p.message,
                        context: p
                            .context
                            .into_iter()
                            .map(|a| crate::app::chat::Attachment {
                                label: a.label,
                                text: a.text,
                            })
                            .collect(),
                        root: p.root,
                        agent: p.agent,
                    };
                    self.app.tasks.spawn(
                        Job::Chat,
                        id,
                        false,
                        crate::app::chat::turn(app, params, sink),
                    );
                }
                Err(e) => self.rpc_error(None, Job::Chat, e),
            },
            "chat_compact" => match params::<proto::ChatCompact>("chat_compact", args) {
                Ok(p) => {
                    let (app, sink) = (self.app.clone(), self.sink.clone());
                    self.app.tasks.spawn(
                        Job::Chat,
                        p.id,
                        false,
                        crate::app::chat::compact(app, p.id, p.root, p.session, sink),
                    );
                }
                Err(e) => self.rpc_error(None, Job::Chat, e),
            },
            "answer" => match params::<proto::AnswerParams>("answer", args) {
                Ok(p) => match crate::app::chat::parse_answer(
                    &p.choice,
                    p.scope.as_deref(),
                    p.reason.as_deref(),
                ) {
                    Ok(a) => {
                        if !self.app.asks.answer(p.ask, a) {
                            tracing::warn!(ask = p.ask, "answer for a question nobody waits on");
                        }
                    }
                    Err(e) => self.rpc_error(None, Job::Rpc, e),
                },
                Err(e) => self.rpc_error(None, Job::Rpc, e),
            },
            "cancel" => match params::<proto::Cancel>("cancel", args) {
                Ok(p) => {
                    let n = self.app.tasks.cancel(Job::Complete, p.id);
                    Stats::bump(&self.app.stats.completions_cancelled, n as u64);
                    if let Some(id) = p.id {
                        self.app.tasks.cancel(Job::Chat, Some(id));
                        self.app.tasks.cancel(Job::Explain, Some(id));
                    }
                }
                Err(e) => self.rpc_error(None, Job::Rpc, e),
            },
            "explain" => self.on_explain(args, nvim),
            "fix" => self.on_patch(Job::Fix, args, nvim),
            "test" => self.on_patch(Job::Test, args, nvim),
            "edit" => self.on_patch(Job::Edit, args, nvim),
            "stop" => {
                let n = self.app.tasks.cancel_all();
                tracing::info!(n, "stopped all jobs");
            }
            other => self.rpc_error(
                None,
                Job::Rpc,
                format!("zeke: unknown notification {other:?}"),
            ),
        }
    }
}

/// Delivers app events to the editor in order, one `zeke.rpc.dispatch` call each. Events queued
/// while the editor was busy are coalesced (`nvim::coalesce`): one dispatch carries what many
/// would have.
pub async fn forward(nvim: Nvim, mut rx: UnboundedReceiver<UiEvent>, app: Arc<App>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while let Ok(ev) = rx.try_recv() {
            batch.push(ev);
        }
        for ev in coalesce::coalesce(batch) {
            // Zeke's time ends when the reply is handed to the RPC writer; what the editor then
            // spends running the dispatch (drawing extmarks) is the editor's, not ours.
            if let UiEvent::Completion {
                received,
                provider_ttft,
                done,
                text,
                ..
            } = &ev
            {
                let elapsed = received.elapsed().as_secs_f64() * 1e3;
                if let Some(ttft) = provider_ttft {
                    app.stats
                        .record_first(elapsed, (elapsed - ttft.as_secs_f64() * 1e3).max(0.0));
                }
                if *done && !text.is_empty() {
                    app.stats.record_total(elapsed);
                }
            }
            let (name, payload) = proto::to_proto(&ev);
            match nvim
                .exec_lua(proto::DISPATCH, vec![Value::from(name), payload])
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_channel_closed() => return,
                Err(e) => tracing::warn!(%e, event = name, "dispatch failed"),
            }
        }
    }
}

/// A JSON value as msgpack (for replies built by `app::report`).
pub(super) fn json_value(v: &serde_json::Value) -> Value {
    proto::json(v)
}

/// The value of `key` in a msgpack map argument.
pub(super) fn field<'a>(a: &'a Value, key: &str) -> Option<&'a Value> {
    a.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}
