//! Inline completion: build the FIM context from a buffer snapshot, stream the provider's answer,
//! shape it into ghost text and send it to the editor as it grows.
//!
//! The request carries the `changedtick` it was computed for; every event echoes it so the editor
//! can drop stale results. Stops reading (and so closes the connection) once the suggestion is
//! complete (`max_lines` reached, or one line when the cursor is mid-line).

use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;

use crate::app::{App, Job, Sink, Stats, UiEvent};
use crate::core::context::fim_context;
use crate::core::llm::{ErrorKind, FimRequest, Intent, ProviderError};
use crate::core::suggestion::{Shape, shape};
use crate::core::text::BufferText;
use crate::router::{Pool, RouteRequest, Routed, Surface};

/// A completion request as the editor sends it. Positions are 0-based (row, byte col).
#[derive(Debug, Clone)]
pub struct CompleteParams {
    pub id: u64,
    pub buf: i64,
    pub tick: i64,
    pub row: usize,
    pub col: usize,
    pub filetype: String,
    pub path: String,
    /// When the surface received it.
    pub received: Instant,
}

/// Runs one completion to its end, sending `UiEvent::Completion`s (or one `UiEvent::Error`).
/// Time-limited by `completion.timeout`; cancelled by aborting its task.
pub async fn complete(app: Arc<App>, p: CompleteParams, text: BufferText, sink: Sink) {
    Stats::bump(&app.stats.completions_started, 1);
    let setup = app.setup();
    let cfg = &setup.config.completion;
    let timeout = cfg.timeout;
    let result = tokio::time::timeout(timeout, run(&app, &p, &text, &sink)).await;
    let outcome = match result {
        Ok(r) => r,
        Err(_) => Err(ProviderError::new(
            ErrorKind::Timeout,
            format!(
                "no completion within {} ms (completion.timeout_ms)",
                timeout.as_millis()
            ),
        )),
    };
    match outcome {
        Ok(()) => Stats::bump(&app.stats.completions_finished, 1),
        Err(error) => {
            Stats::bump(&app.stats.completions_failed, 1);
            let provider = setup.selected(Job::Complete).map(|s| s.name);
            tracing::warn!(id = p.id, %error, "completion failed");
            let _ = sink.send(UiEvent::Error {
                id: Some(p.id),
                job: Job::Complete,
                error,
                provider,
            });
        }
    }
}

async fn run(
    app: &App,
    p: &CompleteParams,
    text: &BufferText,
    sink: &Sink,
) -> Result<(), ProviderError> {
    let setup = app.setup();
    let cfg = &setup.config.completion;
    let Some(ctx) = fim_context(text, p.row, p.col, cfg.max_context_tokens) else {
        return Err(ProviderError::new(
            ErrorKind::Invalid,
            format!(
                "cursor row {} is outside the buffer ({} lines)",
                p.row,
                text.line_count()
            ),
        ));
    };
    let single_line = !ctx.line_after.trim().is_empty();
    let next_line = ctx
        .suffix
        .split('\n')
        .skip(1)
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .to_string();
    let limits = Shape {
        max_lines: cfg.max_lines,
        single_line,
    };
    let req = FimRequest {
        prefix: ctx.prefix,
        suffix: ctx.suffix,
        language: p.filetype.clone(),
        path: p.path.clone(),
        max_tokens: cfg.max_tokens,
        stop: if single_line {
            vec!["\n".into()]
        } else {
            vec!["\n\n\n".into()]
        },
    };
    let pool: Arc<dyn Pool> = setup.clone();
    let sent = Instant::now();
    let mut stream = app.router.fim(
        pool,
        RouteRequest::new(Intent::Complete, Surface::Nvim),
        req,
    );
    let mut raw = String::new();
    let mut shown = String::new();
    let mut first_sent = false;
    let event = |text: &str, done: bool, provider_ttft| UiEvent::Completion {
        id: p.id,
        buf: p.buf,
        tick: p.tick,
        row: p.row,
        col: p.col,
        text: text.to_string(),
        done,
        received: p.received,
        provider_ttft,
    };
    while let Some(item) = stream.next().await {
        match item.map_err(|f| f.error)? {
            Routed::Text(t) => {
                raw.push_str(&t);
                let next = shape(&raw, &ctx.line_before, &ctx.line_after, &next_line, limits);
                if next != shown {
                    shown = next;
                    let ttft = (!first_sent).then(|| sent.elapsed());
                    first_sent = true;
                    let _ = sink.send(event(&shown, false, ttft));
                }
                let lines = raw.split('\n').count();
                // stop reading once the shaped text can no longer grow
                if (single_line && lines > 1)
                    || lines > limits.max_lines + 1
                    || (lines > 2 && shown.split('\n').count() < lines - 1)
                {
                    break; // enough: dropping the stream closes the connection
                }
            }
            // a fallback answered differently: the suggestion is rebuilt from its text
            Routed::Restart => raw.clear(),
            Routed::Done(s) => tracing::debug!(
                id = p.id,
                provider = s.provider.as_deref().unwrap_or(""),
                input = s.usage.input_tokens,
                output = s.usage.output_tokens,
                hedged = s.hedged,
                "completion usage"
            ),
            Routed::Fallback { from, error } => {
                tracing::info!(id = p.id, %from, %error, "completion falls back")
            }
            Routed::Answering { .. } | Routed::ToolCall(_) | Routed::Notice(_) => {}
        }
    }
    tracing::debug!(
        id = p.id,
        chars = shown.len(),
        ms = p.received.elapsed().as_secs_f64() * 1e3,
        "completion done"
    );
    let _ = sink.send(event(&shown, true, None));
    Ok(())
}
