//! One routed request, run as a task: plan, then try candidates in order (hedging the first for
//! latency-critical intents), stream the winner with the dedupe rules of the module docs of
//! [`super`], fall back on failure, and record one ledger row (also when dropped).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::splice::{Out, Splice};
use super::{
    Attempt, Failure, Health, Item, MAX_RETRY_WAIT, Pool, RouteRequest, Routed, Router, Skip,
    Summary, Surface, Work, health, lock, pricing,
};
use crate::core::llm::{ErrorKind, Event, Intent, ProviderError, Usage};
use crate::ledger;

/// Most conversations whose provider is remembered.
const MAX_STICKY: usize = 4096;
use crate::providers::{EventStream, Provider};

/// Writes the ledger row when the request ends — normally or because its task was aborted.
pub(super) struct Recorder {
    router: Arc<Router>,
    surface: Surface,
    intent: Intent,
    started: Instant,
    ts_ms: i64,
    s: Summary,
    price: Option<pricing::Price>,
    local: bool,
    est_input: u32,
    chars_out: usize,
    outcome: Option<String>,
    written: bool,
}

impl Recorder {
    pub(super) fn new(router: Arc<Router>, rr: &RouteRequest) -> Self {
        Recorder {
            router,
            surface: rr.surface,
            intent: rr.intent,
            started: Instant::now(),
            ts_ms: ledger::now_ms(),
            s: Summary::default(),
            price: None,
            local: true,
            est_input: 0,
            chars_out: 0,
            outcome: None,
            written: false,
        }
    }

    /// Cost from the reported usage, else an estimate (prompt estimate + output chars / 4).
    fn settle(&mut self) {
        let reported = self.s.usage != Usage::default();
        if !reported && self.s.provider.is_some() {
            self.s.usage = Usage::new(self.est_input, (self.chars_out / 4) as u32);
            self.s.cost_estimated = true;
        }
        self.s.cost_usd = match (&self.price, self.local) {
            (Some(p), false) => pricing::cost_usd(p, &self.s.usage),
            _ => 0.0,
        };
        self.s.total = self.started.elapsed();
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.write();
    }
}

impl Recorder {
    /// Queues the ledger row (once): before the last item is sent, or when the request is dropped.
    fn write(&mut self) {
        if self.written {
            return;
        }
        self.written = true;
        if self.outcome.is_none() {
            // dropped by the caller: an answer it stopped reading, or one it gave up on
            self.settle();
            self.outcome = Some(
                if self.chars_out > 0 {
                    "ok"
                } else {
                    "cancelled"
                }
                .into(),
            );
        }
        let s = &self.s;
        let Some(ledger) = self.router.ledger() else {
            return;
        };
        let fallbacks = s
            .attempts
            .iter()
            .filter(|a| a.error.is_some() && !a.hedge_loser)
            .count() as u32;
        let provider = s
            .provider
            .clone()
            .or_else(|| s.attempts.last().map(|a| a.provider.clone()))
            .unwrap_or_else(|| "(none)".into());
        let model = s
            .model
            .clone()
            .or_else(|| s.attempts.last().map(|a| a.model.clone()))
            .unwrap_or_default();
        self.router.add_spend(&provider, s.cost_usd);
        ledger.record(ledger::Row {
            ts_ms: self.ts_ms,
            surface: self.surface.as_str().into(),
            intent: self.intent.as_str().into(),
            provider,
            model,
            input_tokens: s.usage.input_tokens,
            cached_input_tokens: s.usage.cached_input_tokens,
            output_tokens: s.usage.output_tokens,
            cost_usd: s.cost_usd,
            cost_estimated: s.cost_estimated,
            ttft_ms: s.ttft.map(|d| d.as_secs_f64() * 1e3),
            total_ms: s.total.as_secs_f64() * 1e3,
            outcome: self.outcome.clone().unwrap_or_default(),
            fallbacks,
            hedged: s.hedged,
        });
    }
}

/// A provider stream that has produced its first event.
struct Started {
    name: String,
    model: String,
    stream: EventStream,
    first: Option<Event>,
    ttft: Duration,
    /// Asked to continue the shown text (a trailing assistant message / a longer FIM prefix).
    prefilled: bool,
}

fn model_of(p: &dyn Provider) -> String {
    p.info()
        .model_label()
        .unwrap_or_else(|| "server default".into())
}

enum Race {
    Won(Started),
    /// Every stream raced failed before a first event.
    Lost,
}

/// Opens `name` and waits for its first event, hedging with `backup` after `hedge_after`.
#[allow(clippy::too_many_arguments)]
async fn first_event(
    router: &Router,
    pool: &dyn Pool,
    work: &Work,
    prefill: Option<&str>,
    name: &str,
    backup: Option<(&str, Duration)>,
    timeout: Duration,
    cooldown: Duration,
    rec: &mut Recorder,
    tx: &mpsc::UnboundedSender<Item>,
) -> (Race, usize) {
    struct Live {
        name: String,
        model: String,
        stream: EventStream,
        sent: Instant,
        prefilled: bool,
    }
    let open = |name: String| async move {
        let p = pool.provider(&name).await.map_err(|e| (name.clone(), e))?;
        let model = model_of(p.as_ref());
        // what the user saw goes to a provider that can continue it
        let (stream, prefilled) = match prefill {
            Some(t) if work.can_prefill(p.as_ref()) => {
                (work.with_prefill(t).open(p.as_ref()), true)
            }
            _ => (work.open(p.as_ref()), false),
        };
        Ok::<Live, (String, ProviderError)>(Live {
            stream,
            sent: Instant::now(),
            model,
            name,
            prefilled,
        })
    };
    let fail = |name: &str, model: &str, e: ProviderError, rec: &mut Recorder| {
        lock(&router.board).failure(name, &e, cooldown, Instant::now());
        rec.s.attempts.push(Attempt {
            provider: name.to_string(),
            model: model.to_string(),
            error: Some(e),
            hedge_loser: false,
        });
    };
    let mut a = match open(name.to_string()).await {
        Ok(l) => l,
        Err((n, e)) => {
            fail(&n, "", e, rec);
            return (Race::Lost, 1);
        }
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let hedge_at = backup.map(|(_, d)| tokio::time::Instant::now() + d);
    // phase 1: the primary alone, until the hedge delay passes
    let first = tokio::select! {
        ev = a.stream.next() => Some(ev),
        _ = tokio::time::sleep_until(hedge_at.unwrap_or(deadline)) => None,
    };
    let settle_one = |l: Live, ev: Option<Result<Event, ProviderError>>| match ev {
        Some(Ok(e)) => Ok(Started {
            ttft: l.sent.elapsed(),
            first: Some(e),
            stream: l.stream,
            name: l.name,
            model: l.model,
            prefilled: l.prefilled,
        }),
        None => Ok(Started {
            ttft: l.sent.elapsed(),
            first: None,
            stream: l.stream,
            name: l.name,
            model: l.model,
            prefilled: l.prefilled,
        }),
        Some(Err(e)) => Err((l.name, l.model, e)),
    };
    if let Some(ev) = first {
        return match settle_one(a, ev) {
            Ok(s) => (Race::Won(s), 1),
            Err((n, m, e)) => {
                fail(&n, &m, e, rec);
                (Race::Lost, 1)
            }
        };
    }
    let Some((bname, _)) = backup else {
        let e = ProviderError::new(
            ErrorKind::Timeout,
            format!(
                "{} sent nothing within {} ms (router.first_token_timeout_ms)",
                a.name,
                timeout.as_millis()
            ),
        );
        fail(&a.name.clone(), &a.model.clone(), e, rec);
        return (Race::Lost, 1);
    };
    // phase 2: hedge — both race; the first event wins, the loser is dropped
    rec.s.hedged = true;
    let _ = tx;
    tracing::debug!(primary = %a.name, backup = bname, "hedging");
    let mut b = match open(bname.to_string()).await {
        Ok(l) => Some(l),
        Err((n, e)) => {
            fail(&n, "", e, rec);
            None
        }
    };
    let mut a = Some(a);
    loop {
        let timeout_err = |l: &Live| {
            ProviderError::new(
                ErrorKind::Timeout,
                format!(
                    "{} sent nothing within {} ms (router.first_token_timeout_ms)",
                    l.name,
                    timeout.as_millis()
                ),
            )
        };
        match (a.as_mut(), b.as_mut()) {
            (None, None) => return (Race::Lost, 2),
            (Some(x), None) | (None, Some(x)) => {
                let ev = tokio::select! {
                    ev = x.stream.next() => Some(ev),
                    _ = tokio::time::sleep_until(deadline) => None,
                };
                let l = if a.is_some() { a.take() } else { b.take() }.expect("one is live");
                return match ev {
                    None => {
                        let e = timeout_err(&l);
                        fail(&l.name, &l.model, e, rec);
                        (Race::Lost, 2)
                    }
                    Some(ev) => match settle_one(l, ev) {
                        Ok(s) => (Race::Won(s), 2),
                        Err((n, m, e)) => {
                            fail(&n, &m, e, rec);
                            (Race::Lost, 2)
                        }
                    },
                };
            }
            (Some(x), Some(y)) => {
                let which = tokio::select! {
                    ev = x.stream.next() => Some((true, ev)),
                    ev = y.stream.next() => Some((false, ev)),
                    _ = tokio::time::sleep_until(deadline) => None,
                };
                let Some((is_a, ev)) = which else {
                    for l in [a.take(), b.take()].into_iter().flatten() {
                        let e = timeout_err(&l);
                        fail(&l.name, &l.model, e, rec);
                    }
                    return (Race::Lost, 2);
                };
                let (won, other) = if is_a {
                    (a.take().expect("a"), &mut b)
                } else {
                    (b.take().expect("b"), &mut a)
                };
                match settle_one(won, ev) {
                    Ok(s) => {
                        if let Some(loser) = other.take() {
                            rec.s.attempts.push(Attempt {
                                provider: loser.name.clone(),
                                model: loser.model.clone(),
                                error: Some(ProviderError::new(
                                    ErrorKind::Timeout,
                                    format!("lost the hedge race to {}", s.name),
                                )),
                                hedge_loser: true,
                            });
                            drop(loser); // closes its connection
                        }
                        return (Race::Won(s), 2);
                    }
                    Err((n, m, e)) => fail(&n, &m, e, rec),
                }
            }
        }
    }
}

pub(super) async fn drive(
    router: &Arc<Router>,
    pool: Arc<dyn Pool>,
    rr: &RouteRequest,
    work: Work,
    tx: &mpsc::UnboundedSender<Item>,
    rec: &mut Recorder,
) {
    let cfg = pool.config().router.clone();
    let need = work.need(rr.intent);
    rec.est_input = need.est_tokens;
    let plan = router.plan(pool.as_ref(), rr, &need);
    for w in &plan.warnings {
        let day = rec.ts_ms / 86_400_000;
        let period = if w.period == "daily" { day } else { day / 31 };
        let key = format!("{:?}/{}/{}/{period}", w.provider, w.period, w.limit_usd);
        if router.warn_once(key) {
            let _ = tx.send(Ok(Routed::Notice(format!(
                "{w}: soft budget, calls continue"
            ))));
        }
    }
    for (n, s) in &plan.skipped {
        if let Skip::Budget(b) = s {
            let _ = tx.send(Ok(Routed::Notice(format!(
                "{n} not used: {b} (hard budget); {}",
                if plan.order.is_empty() {
                    "no local model can answer instead"
                } else {
                    "a local model answers instead"
                }
            ))));
        }
    }
    let candidates = pool.candidates();
    let info = |n: &str| candidates.iter().find(|c| c.name == n).cloned();
    let fail_all = |error: ProviderError, rec: &mut Recorder| {
        rec.settle();
        rec.outcome = Some(error.kind.as_str().into());
        rec.write();
        let _ = tx.send(Err(Failure {
            error,
            summary: Box::new(rec.s.clone()),
        }));
    };
    if plan.order.is_empty() {
        let only_budget = plan.skipped.iter().all(
            |(_, s)| matches!(s, Skip::Budget(b) if b.mode == crate::config::BudgetMode::Hard),
        );
        let kind = if only_budget && !plan.skipped.is_empty() {
            ErrorKind::Denied
        } else {
            ErrorKind::Unavailable
        };
        return fail_all(
            ProviderError::new(
                kind,
                format!("no provider can take this request: {}", plan.why_empty()),
            ),
            rec,
        );
    }
    let order: Vec<String> = plan.order.into_iter().take(cfg.max_attempts).collect();
    let mut shown = String::new();
    let mut shown_calls = 0usize;
    let mut i = 0;
    let mut retried = false;
    while i < order.len() {
        let name = order[i].clone();
        let hedge = (cfg.hedge && rr.intent.latency_critical() && i + 1 < order.len()).then(|| {
            let after = router
                .health()
                .get(&name)
                .and_then(Health::p95_ttft)
                .map(|p| p.max(Duration::from_millis(20)))
                .unwrap_or(cfg.hedge_after);
            (order[i + 1].as_str(), after)
        });
        let prefill = (!shown.is_empty() && shown_calls == 0).then(|| shown.clone());
        let (race, used) = first_event(
            router,
            pool.as_ref(),
            &work,
            prefill.as_deref(),
            &name,
            hedge,
            cfg.first_token_timeout,
            cfg.cooldown,
            rec,
            tx,
        )
        .await;
        let mut st = match race {
            Race::Won(s) => s,
            Race::Lost => {
                let last = rec.s.attempts.last().and_then(|a| a.error.clone());
                // the last candidate asked for a short wait: honour it once
                if let Some(e) = &last
                    && i + used >= order.len()
                    && !retried
                    && used == 1
                    && matches!(e.kind, ErrorKind::RateLimited | ErrorKind::Overloaded)
                    && !health::is_quota_exhausted(e)
                    && let Some(wait) = e.retry_after.filter(|w| *w <= MAX_RETRY_WAIT)
                {
                    retried = true;
                    let _ = tx.send(Ok(Routed::Notice(format!(
                        "{name}: {e}; retrying in {:.1} s",
                        wait.as_secs_f32()
                    ))));
                    tokio::time::sleep(wait).await;
                    continue;
                }
                i += used;
                // announced only when someone takes over (else the final error says it all)
                if let Some(e) = last
                    && i < order.len()
                {
                    let _ = tx.send(Ok(Routed::Fallback {
                        from: name,
                        error: e,
                    }));
                }
                continue;
            }
        };
        let won = order.iter().position(|n| *n == st.name).unwrap_or(i);
        lock(&router.board).first_token(&st.name, st.ttft);
        if let Some(c) = info(&st.name) {
            rec.price = c.price;
            rec.local = c.local;
        }
        rec.s.provider = Some(st.name.clone());
        rec.s.model = Some(st.model.clone());
        rec.s.ttft.get_or_insert(rec.started.elapsed());
        let _ = tx.send(Ok(Routed::Answering {
            provider: st.name.clone(),
            model: st.model.clone(),
        }));
        // join this answer onto what the user saw of a failed one (see `splice`)
        let base_calls = shown_calls;
        let mut splice = Splice::new(std::mem::take(&mut shown), st.prefilled);
        let mut calls = 0usize;
        let send = |o: Option<Out>| match o {
            Some(Out::Text(t)) => {
                let _ = tx.send(Ok(Routed::Text(t)));
            }
            Some(Out::Replace(t)) => {
                let _ = tx.send(Ok(Routed::Restart));
                if !t.is_empty() {
                    let _ = tx.send(Ok(Routed::Text(t)));
                }
            }
            None => {}
        };
        let mut next = st.first.take().map(Ok);
        let outcome: Result<(), ProviderError> = loop {
            let ev = match next.take() {
                Some(ev) => Some(ev),
                None => match tokio::time::timeout(cfg.first_token_timeout, st.stream.next()).await
                {
                    Ok(ev) => ev,
                    Err(_) => Some(Err(ProviderError::new(
                        ErrorKind::Timeout,
                        format!(
                            "{} stalled for {} ms mid-answer (router.first_token_timeout_ms)",
                            st.name,
                            cfg.first_token_timeout.as_millis()
                        ),
                    ))),
                },
            };
            match ev {
                None => break Ok(()),
                Some(Err(e)) => break Err(e),
                Some(Ok(Event::Text(t))) => {
                    if !t.is_empty() {
                        rec.chars_out += t.len();
                        send(splice.push(t));
                    }
                }
                Some(Ok(Event::ToolCall(c))) => {
                    if base_calls > 0 {
                        send(splice.restart());
                    }
                    calls += 1;
                    let _ = tx.send(Ok(Routed::ToolCall(c)));
                }
                Some(Ok(Event::Usage(u))) => rec.s.usage = u,
                Some(Ok(Event::Finish(f))) => rec.s.finish = Some(f),
            }
        };
        match outcome {
            Ok(()) => {
                send(splice.finish());
                lock(&router.board).success(&st.name);
                *lock(&router.last) = Some((st.name.clone(), st.model.clone()));
                if let Some(k) = &rr.conversation {
                    let mut sticky = lock(&router.sticky);
                    if sticky.len() >= MAX_STICKY && !sticky.contains_key(k) {
                        // bounded: forgetting old conversations costs a cache miss, nothing more
                        sticky.clear();
                    }
                    sticky.insert(k.clone(), st.name.clone());
                }
                rec.s.attempts.push(Attempt {
                    provider: st.name.clone(),
                    model: st.model.clone(),
                    error: None,
                    hedge_loser: false,
                });
                rec.settle();
                rec.outcome = Some("ok".into());
                rec.write();
                let _ = tx.send(Ok(Routed::Done(Box::new(rec.s.clone()))));
                return;
            }
            Err(e) => {
                shown = splice.shown();
                shown_calls = base_calls.max(calls);
                lock(&router.board).failure(&st.name, &e, cfg.cooldown, Instant::now());
                rec.s.attempts.push(Attempt {
                    provider: st.name.clone(),
                    model: st.model.clone(),
                    error: Some(e.clone()),
                    hedge_loser: false,
                });
                rec.s.provider = None;
                rec.s.model = None;
                rec.s.usage = Usage::default();
                // after the one that failed (a primary that lost the hedge race is tried again
                // only when it comes later in the order)
                i = won + 1;
                if i < order.len() {
                    let _ = tx.send(Ok(Routed::Fallback {
                        from: st.name.clone(),
                        error: e,
                    }));
                }
            }
        }
    }
    let tried: Vec<String> = rec
        .s
        .attempts
        .iter()
        .filter(|a| !a.hedge_loser)
        .map(|a| {
            format!(
                "{}: {}",
                a.provider,
                a.error.as_ref().map(|e| e.to_string()).unwrap_or_default()
            )
        })
        .collect();
    let last_kind = rec
        .s
        .attempts
        .iter()
        .rev()
        .find_map(|a| a.error.as_ref().map(|e| e.kind))
        .unwrap_or(ErrorKind::Unavailable);
    let mut error = ProviderError::new(
        last_kind,
        if tried.len() == 1 {
            tried[0].clone()
        } else {
            format!("every provider failed — {}", tried.join("; "))
        },
    );
    error.retry_after = rec
        .s
        .attempts
        .iter()
        .filter_map(|a| a.error.as_ref().and_then(|e| e.retry_after))
        .min();
    error.status = rec
        .s
        .attempts
        .iter()
        .rev()
        .find_map(|a| a.error.as_ref().and_then(|e| e.status));
    fail_all(error, rec);
}
