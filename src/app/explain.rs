//! `:Zeke explain`: pick the code (the given rows, else the function around the cursor by
//! tree-sitter, else the block of non-blank lines around it), stream an explanation to the editor.

use std::sync::Arc;

use futures_util::StreamExt;

use crate::app::{App, Job, Sink, Stats, UiEvent};
use crate::core::llm::{ErrorKind, Intent, ProviderError};
use crate::core::prompt::{self, ExplainInput};
use crate::core::syntax;
use crate::core::text::BufferText;
use crate::router::{Pool, RouteRequest, Routed, Surface};

/// Most bytes of code sent for one explanation.
const MAX_CODE_BYTES: usize = 24 * 1024;
/// Most lines taken around the cursor when no syntax item is found.
const BLOCK_LINES: usize = 60;

/// An explain request. Rows are 0-based; `range` is end-inclusive.
#[derive(Debug, Clone)]
pub struct ExplainParams {
    pub id: u64,
    pub row: usize,
    pub col: usize,
    pub range: Option<(usize, usize)>,
    pub filetype: String,
    pub path: String,
}

/// Which rows to explain.
pub fn pick_range(text: &BufferText, p: &ExplainParams) -> Option<(usize, usize)> {
    let count = text.line_count();
    if count == 0 {
        return None;
    }
    if let Some((s, e)) = p.range {
        let (s, e) = (s.min(e), s.max(e));
        return (s < count).then_some((s, e.min(count - 1)));
    }
    if syntax::has_grammar(&p.filetype)
        && let Some(r) = syntax::enclosing_item(&p.filetype, &text.text(), p.row, p.col)
    {
        return Some(r);
    }
    let row = p.row.min(count - 1);
    let blank = |r: usize| text.line(r).is_none_or(|l| l.trim().is_empty());
    let (mut s, mut e) = (row, row);
    while s > 0 && !blank(s - 1) && e - s < BLOCK_LINES {
        s -= 1;
    }
    while e + 1 < count && !blank(e + 1) && e - s < BLOCK_LINES {
        e += 1;
    }
    Some((s, e))
}

/// Streams an explanation of the picked code as `UiEvent::Explain` deltas (or one error).
pub async fn explain(app: Arc<App>, p: ExplainParams, text: BufferText, sink: Sink) {
    Stats::bump(&app.stats.explains_started, 1);
    let setup = app.setup();
    let timeout = setup.config.explain.timeout;
    let outcome = match tokio::time::timeout(timeout, run(&app, &p, text, &sink)).await {
        Ok(r) => r,
        Err(_) => Err(ProviderError::new(
            ErrorKind::Timeout,
            format!(
                "no complete explanation within {} ms (explain.timeout_ms)",
                timeout.as_millis()
            ),
        )),
    };
    match outcome {
        Ok(()) => Stats::bump(&app.stats.explains_finished, 1),
        Err(error) => {
            tracing::warn!(id = p.id, %error, "explain failed");
            let provider = setup.selected(Job::Explain).map(|s| s.name);
            let _ = sink.send(UiEvent::Error {
                id: Some(p.id),
                job: Job::Explain,
                error,
                provider,
            });
        }
    }
}

async fn run(
    app: &App,
    p: &ExplainParams,
    text: BufferText,
    sink: &Sink,
) -> Result<(), ProviderError> {
    let setup = app.setup();
    let pp = p.clone();
    // tree-sitter parsing is CPU work: keep it off the async workers.
    let (range, code) = tokio::task::spawn_blocking(move || {
        let range = pick_range(&text, &pp)?;
        Some((range, text.lines_text(range.0, range.1)))
    })
    .await
    .ok()
    .flatten()
    .ok_or_else(|| {
        ProviderError::new(
            ErrorKind::Invalid,
            "nothing to explain here (empty buffer or range outside it)",
        )
    })?;
    let mut code = code;
    if code.len() > MAX_CODE_BYTES {
        let cut = crate::core::text::floor_char_boundary(&code, MAX_CODE_BYTES);
        code.truncate(cut);
        code.push_str("\n… (truncated)");
    }
    let req = prompt::explain(
        &ExplainInput {
            code: &code,
            language: &p.filetype,
            path: &p.path,
            start_row: range.0,
            end_row: range.1,
        },
        setup.config.explain.max_tokens,
    );
    let pool: Arc<dyn Pool> = setup.clone();
    let mut stream = app
        .router
        .chat(pool, RouteRequest::new(Intent::Explain, Surface::Nvim), req);
    let (mut name, mut model) = (String::new(), String::new());
    let mut sent_any = false;
    let mut restart = false;
    while let Some(item) = stream.next().await {
        match item {
            Ok(Routed::Answering { provider, model: m }) => {
                name = provider;
                model = m;
            }
            Ok(Routed::Text(delta)) => {
                sent_any = true;
                let _ = sink.send(UiEvent::Explain {
                    id: p.id,
                    delta,
                    restart: std::mem::take(&mut restart),
                    done: false,
                    provider: name.clone(),
                    model: model.clone(),
                    range,
                });
            }
            Ok(Routed::Restart) => restart = true,
            Ok(Routed::Fallback { from, error }) => {
                let _ = sink.send(UiEvent::Notice {
                    job: Job::Explain,
                    message: format!("{from} failed ({error}); the next provider takes over"),
                });
            }
            Ok(Routed::Notice(message)) => {
                let _ = sink.send(UiEvent::Notice {
                    job: Job::Explain,
                    message,
                });
            }
            Ok(Routed::ToolCall(_)) => {}
            Ok(Routed::Done(_)) => break,
            Err(f) => return Err(f.error),
        }
    }
    if !sent_any {
        return Err(ProviderError::new(
            ErrorKind::Malformed,
            "the model returned an empty explanation",
        ));
    }
    let _ = sink.send(UiEvent::Explain {
        id: p.id,
        delta: String::new(),
        restart: false,
        done: true,
        provider: name,
        model,
        range,
    });
    Ok(())
}
