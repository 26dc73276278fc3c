//! `/compact`: a summary the model writes replaces a conversation's older turns.

use std::sync::Arc;

use futures_util::StreamExt;

use super::store::Stored;
use crate::app::{App, Job, Sink, UiEvent};
use crate::core::llm::{ChatRequest, ErrorKind, Intent, Message, ProviderError};
use crate::router::{Pool, RouteRequest, Routed, Surface};

/// `/compact`: the conversation's older turns are replaced by a summary the model writes (the
/// last two user turns stay as they are), freeing the context window. Sends `ChatCompacted` (or
/// an `Error`); the session is saved.
pub async fn compact(app: Arc<App>, id: u64, root: String, session: String, sink: Sink) {
    let fail = |m: String| UiEvent::Error {
        id: Some(id),
        job: Job::Chat,
        error: ProviderError::new(ErrorKind::Invalid, m),
        provider: None,
    };
    let mut s = match app.chats.load(&root, &session) {
        Ok(s) => s,
        Err(e) => {
            let _ = sink.send(fail(format!("chat session {session}: {e}")));
            return;
        }
    };
    let base = s.revision;
    let users: Vec<usize> = (0..s.messages.len())
        .filter(|&i| s.messages[i].role == "user")
        .collect();
    let Some(&keep_from) = users.len().checked_sub(2).and_then(|k| users.get(k)) else {
        let _ = sink.send(fail(
            "nothing to compact yet (fewer than three turns)".into(),
        ));
        return;
    };
    if keep_from == 0 {
        let _ = sink.send(fail(
            "nothing to compact yet (fewer than three turns)".into(),
        ));
        return;
    }
    let tokens = |ms: &[Stored]| {
        ms.iter()
            .map(|m| {
                (m.content.len()
                    + m.tool_calls
                        .iter()
                        .map(|c| c.arguments.len())
                        .sum::<usize>())
                    / 4
            })
            .sum::<usize>() as u64
    };
    let before = tokens(&s.messages);
    let mut messages = vec![Message::system(
        "Summarise the conversation so far so that it can be continued without it: the user's goals, \
         decisions made, files and functions involved, what was changed, and what is still open. \
         At most 250 words, plain Markdown.",
    )];
    let old: Vec<Message> = s.messages[..keep_from]
        .iter()
        .filter_map(Stored::to_message)
        .map(|m| match m.role {
            // as plain text: a summary needs no tool protocol
            crate::core::llm::Role::Tool => Message::user(format!("(tool result) {}", m.content)),
            _ => Message {
                tool_calls: Vec::new(),
                ..m
            },
        })
        .collect();
    let transcript: String = old
        .iter()
        .map(|m| format!("{}: {}\n", m.role.as_str(), m.content))
        .collect();
    messages.push(Message::user(transcript));
    let setup = app.setup();
    let pool: Arc<dyn Pool> = setup.clone();
    let rr = RouteRequest {
        conversation: Some(session.clone()),
        ..RouteRequest::new(Intent::Chat, Surface::Nvim)
    };
    let mut stream = app.router.chat(
        pool,
        rr,
        ChatRequest::new(messages, setup.config.chat.max_tokens.min(1024), 0.2),
    );
    let mut summary = String::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(Routed::Text(t)) => summary.push_str(&t),
            Ok(Routed::Restart) => summary.clear(),
            Ok(_) => {}
            Err(f) => {
                let _ = sink.send(UiEvent::Error {
                    id: Some(id),
                    job: Job::Chat,
                    error: f.error,
                    provider: None,
                });
                return;
            }
        }
    }
    if summary.trim().is_empty() {
        let _ = sink.send(fail(
            "the model wrote no summary; nothing was changed".into(),
        ));
        return;
    }
    let mut kept = vec![
        Stored::from_message(
            &Message::user(format!(
                "Summary of the earlier conversation:\n{}",
                summary.trim()
            )),
            None,
            None,
        ),
        Stored::from_message(&Message::assistant("Understood."), None, None),
    ];
    kept.extend(s.messages.drain(keep_from..));
    s.messages = kept;
    s.updated_ms = crate::ledger::now_ms();
    let after = tokens(&s.messages);
    if after >= before {
        let _ = sink.send(fail(format!(
            "the summary (~{after} tokens with the kept turns) is not shorter than the conversation (~{before}); nothing was changed"
        )));
        return;
    }
    match app.chats.replace(&mut s, base) {
        Ok(true) => {}
        Ok(false) => {
            let _ = sink.send(fail(format!(
                "chat session {session} changed while it was being summarised (another Neovim?); nothing was changed, try /compact again"
            )));
            return;
        }
        Err(e) => {
            let _ = sink.send(fail(format!("chat session {session} not saved: {e}")));
            return;
        }
    }
    let _ = sink.send(UiEvent::ChatCompacted {
        id,
        session,
        before_tokens: before,
        after_tokens: after,
    });
}
