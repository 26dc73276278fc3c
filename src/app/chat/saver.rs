//! The end of a chat turn on disk: the session saved from the revision the turn started at (a
//! turn run meanwhile by another process is kept too), with every tool call the model asked for
//! answered, so the conversation stays valid for every provider.

use super::store::{Saved, Session, Stored};
use crate::app::{App, Job, Sink, UiEvent};
use crate::core::llm::Message;

/// Saves the session when the turn ends: `commit` before its last event, or on drop when it
/// failed or was cancelled. The save is [`Store::save_turn`](super::store::Store::save_turn) from the revision loaded, so
/// a turn run at the same time in another Neovim instance is kept too (and said so).
pub(super) struct Saver<'a> {
    pub(super) app: &'a App,
    pub(super) session: Session,
    /// The revision and message count the turn started from.
    pub(super) base: (u64, usize),
    pub(super) sink: Sink,
    pub(super) saved: bool,
}

impl Saver<'_> {
    pub(super) fn commit(&mut self) {
        if std::mem::replace(&mut self.saved, true) {
            return;
        }
        self.session.updated_ms = crate::ledger::now_ms();
        close_open_calls(&mut self.session.messages);
        let (base, len) = self.base;
        match self.app.chats.save_turn(&mut self.session, base, len) {
            Ok(Saved::Written) => {}
            Ok(Saved::Merged { others }) => {
                let _ = self.sink.send(UiEvent::Notice {
                    job: Job::Chat,
                    message: format!(
                        "session {} was continued elsewhere meanwhile ({others} messages, another Neovim?); this turn is saved after them, both are kept",
                        self.session.id
                    ),
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, session = %self.session.id, "chat session not saved");
                let _ = self.sink.send(UiEvent::Notice {
                    job: Job::Chat,
                    message: format!("chat session {} not saved: {e}", self.session.id),
                });
            }
        }
    }
}

impl Drop for Saver<'_> {
    fn drop(&mut self) {
        self.commit();
    }
}

/// What a tool call the model asked for, but that was never run, answers in the conversation.
const NOT_RUN: &str = "not run: the turn ended before this call (a limit was reached, or the user cancelled); ask again if it is still needed";

/// Gives every tool call of the last assistant message that has no result a "not run" result:
/// providers reject a conversation with a call left unanswered (OpenAI, Anthropic), so a turn
/// stopped at a limit or cancelled between a call and its result must not leave one.
fn close_open_calls(messages: &mut Vec<Stored>) {
    let Some(at) = messages.iter().rposition(|m| m.role == "assistant") else {
        return;
    };
    let answered: std::collections::HashSet<String> = messages[at + 1..]
        .iter()
        .filter_map(|m| m.tool_call_id.clone())
        .collect();
    let open: Vec<String> = messages[at]
        .tool_calls
        .iter()
        .filter(|c| !answered.contains(&c.id))
        .map(|c| c.id.clone())
        .collect();
    for id in open {
        messages.push(Stored::from_message(
            &Message::tool_result(&id, NOT_RUN, true),
            None,
            None,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::llm::ToolCall;

    #[test]
    fn calls_left_without_a_result_get_a_not_run_one() {
        let call = |id: &str| ToolCall {
            id: id.into(),
            name: "read_text_file".into(),
            arguments: "{}".into(),
        };
        let mut m = vec![
            Stored::from_message(&Message::user("look"), None, None),
            Stored::from_message(
                &Message::assistant_calls(String::new(), vec![call("a"), call("b")]),
                None,
                None,
            ),
            Stored::from_message(&Message::tool_result("a", "text", false), None, None),
        ];
        close_open_calls(&mut m);
        assert_eq!(m.len(), 4);
        assert_eq!(m[3].tool_call_id.as_deref(), Some("b"));
        assert!(m[3].is_error && m[3].content.starts_with("not run"));
        close_open_calls(&mut m);
        assert_eq!(m.len(), 4, "answered calls stay as they are");
    }
}
