//! Reading a fix/test/edit answer: the routed stream collected (capped, with progress and the
//! router's notices), and code without a fence told from prose.

use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::PatchParams;
use crate::app::{Sink, UiEvent};
use crate::core::llm::{ErrorKind, ProviderError};
use crate::core::patch::Answer;
use crate::router::{Routed, RoutedStream};

/// An answer with no fence that is plainly code (no sentence-like first line) is taken whole.
pub(super) fn bare_code(answer: &str) -> Option<Answer> {
    let t = answer.trim();
    let first = t.lines().next()?;
    let prose = first.ends_with('.')
        || first.ends_with(':')
        || first.split_whitespace().count() > 8 && !first.contains(['(', '{', '=', ';']);
    (!t.is_empty() && !prose).then(|| Answer::Code {
        lang: None,
        text: t.to_string(),
    })
}

/// Reads the routed answer, up to `max` bytes (then stops the stream: `capped`), sending a
/// `Progress` event at most every 150 ms and the router's notices. Returns the answer, whether it
/// was capped, and the provider and model that wrote it.
pub(super) async fn collect(
    mut stream: RoutedStream,
    max: usize,
    p: &PatchParams,
    sink: &Sink,
) -> Result<(String, bool, String, String), ProviderError> {
    let mut answer = String::new();
    let (mut name, mut model) = (String::new(), String::new());
    let mut last = Instant::now();
    while let Some(item) = stream.next().await {
        match item.map_err(|f| f.error)? {
            Routed::Answering { provider, model: m } => {
                name = provider;
                model = m;
            }
            Routed::Restart => answer.clear(),
            Routed::Text(t) => {
                answer.push_str(&t);
                if answer.len() >= max {
                    // Cut at the last whole line that fits: half a line is not code.
                    let cut = crate::core::text::floor_char_boundary(&answer, max);
                    let cut = answer[..cut].rfind('\n').unwrap_or(cut);
                    answer.truncate(cut);
                    return Ok((answer, true, name, model));
                }
                if last.elapsed() >= Duration::from_millis(150) {
                    last = Instant::now();
                    let _ = sink.send(UiEvent::Progress {
                        id: p.id,
                        job: p.job,
                        chars: answer.chars().count(),
                    });
                }
            }
            Routed::Fallback { from, error } => {
                let _ = sink.send(UiEvent::Notice {
                    job: p.job,
                    message: format!("{from} failed ({error}); the next provider takes over"),
                });
            }
            Routed::Notice(message) => {
                let _ = sink.send(UiEvent::Notice {
                    job: p.job,
                    message,
                });
            }
            Routed::ToolCall(_) => {}
            Routed::Done(_) => break,
        }
    }
    if answer.trim().is_empty() {
        return Err(ProviderError::new(
            ErrorKind::Malformed,
            "the model returned an empty answer",
        ));
    }
    Ok((answer, false, name, model))
}
