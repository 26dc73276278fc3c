//! The policy questions asked through `InputRequiredResult` (2026-07-28 clients) and the answers
//! taken for them.
//!
//! Invariants: every question id and every `requestState` is made here from random bytes and
//! remembered. An answer is taken only for a question this server asked, only once, and only for
//! the capability, scope, tool and action it was asked about; a `requestState` only if this server issued
//! it (answers carried from an earlier round of the same call). So a client cannot answer a
//! question never asked (pre-approving a write), replay an old "Allow once", or forge a state.
//! Unanswered questions and unused states expire after the prompt timeout.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rmcp::model::InputResponses;
use serde_json::Value;

use crate::core::policy::Capability;

/// What a question asked: may `tool` use capability `cap` in the scope rooted at `at`, to do
/// `what` (the action in words: the exact command line, the path and size of a write)? An answer
/// counts only for the same action — a retry with other arguments is asked again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub cap: Capability,
    pub at: PathBuf,
    pub tool: &'static str,
    pub what: String,
}

/// The answers a retried call brought, each tied to the question it answers.
#[derive(Debug, Clone, Default)]
pub struct Answers(Vec<(Question, Value)>);

impl Answers {
    /// The answer to the question `q`, if one came.
    pub fn find(&self, q: &Question) -> Option<&Value> {
        self.0.iter().find(|(a, _)| a == q).map(|(_, v)| v)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The questions and states of one server.
#[derive(Debug)]
pub struct Questions {
    asked: Mutex<HashMap<String, (Question, Instant)>>,
    states: Mutex<HashMap<String, (Answers, Instant)>>,
    ttl: Duration,
}

const QUESTION: &str = "zeke-policy:";
const STATE: &str = "zeke-state:";

/// 128 random bits, hex.
fn nonce() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the OS random source works");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Questions {
    /// Questions and states live at most `ttl` (the prompt timeout).
    pub fn new(ttl: Duration) -> Questions {
        Questions {
            asked: Mutex::default(),
            states: Mutex::default(),
            ttl,
        }
    }

    /// Registers question `q`; returns the id its answer must come under.
    pub fn ask(&self, q: Question) -> String {
        let id = format!("{QUESTION}{}", nonce());
        let mut asked = lock(&self.asked);
        asked.retain(|_, (_, t)| t.elapsed() < self.ttl);
        asked.insert(id.clone(), (q, Instant::now()));
        id
    }

    /// The answers of a retried call: those carried in a `requestState` this server issued, plus
    /// `responses` to questions it asked (each taken once). `Err` names what was forged.
    pub fn accept(
        &self,
        state: Option<&str>,
        responses: Option<InputResponses>,
    ) -> Result<Answers, String> {
        let mut out = Answers::default();
        if let Some(s) = state.filter(|s| !s.is_empty()) {
            let mut states = lock(&self.states);
            states.retain(|_, (_, t)| t.elapsed() < self.ttl);
            match states.remove(s) {
                Some((carried, _)) => out = carried,
                None => {
                    return Err(format!(
                        "requestState {} was not issued by this server (or has expired)",
                        short(s)
                    ));
                }
            }
        }
        let mut asked = lock(&self.asked);
        for (id, v) in responses.unwrap_or_default() {
            match asked.remove(&id) {
                Some((q, t)) if t.elapsed() < self.ttl => out.0.push((q, v)),
                _ => {
                    return Err(format!(
                        "an answer for {} came, but this server asked no such question (or it was \
                         answered already, or it expired)",
                        short(&id)
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Keeps `answers` for the next round of the same call; returns the `requestState` naming
    /// them, or `None` when there are none.
    pub fn carry(&self, answers: &Answers) -> Option<String> {
        if answers.is_empty() {
            return None;
        }
        let id = format!("{STATE}{}", nonce());
        lock(&self.states).insert(id.clone(), (answers.clone(), Instant::now()));
        Some(id)
    }
}

/// An id for messages: at most 60 characters of it.
fn short(s: &str) -> String {
    let mut t: String = s.chars().take(60).collect();
    if t.len() < s.len() {
        t.push('…');
    }
    format!("{t:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(cap: &str) -> Question {
        let cap = Capability::parse(cap).unwrap();
        Question {
            cap,
            at: PathBuf::from("/r"),
            tool: "write_file",
            what: "write /r/a.txt (3 bytes)".into(),
        }
    }

    fn responses(pairs: &[(&str, Value)]) -> Option<InputResponses> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn answers_only_to_questions_asked_once_each() {
        let qs = Questions::new(Duration::from_secs(60));
        let yes = json!({"action": "accept", "content": {"decision": "allow_all"}});
        // a made-up id, or one shaped like ours, is refused
        for forged in ["zeke-policy:fs.write:/r", &format!("{QUESTION}{}", nonce())] {
            let e = qs
                .accept(None, responses(&[(forged, yes.clone())]))
                .unwrap_err();
            assert!(e.contains("asked no such question"), "{e}");
        }
        let id = qs.ask(q("fs.write"));
        assert!(id.starts_with(QUESTION) && id.len() == QUESTION.len() + 32);
        let got = qs.accept(None, responses(&[(&id, yes.clone())])).unwrap();
        assert_eq!(got.find(&q("fs.write")), Some(&yes));
        assert_eq!(got.find(&q("git.write")), None, "tied to what was asked");
        // the same answer again: a replay
        assert!(qs.accept(None, responses(&[(&id, yes.clone())])).is_err());
        // carried answers come back once, through a state this server made
        let state = qs.carry(&got).unwrap();
        assert!(qs.accept(Some("zeke-state:feed"), None).is_err());
        assert!(qs.accept(Some(r#"{"zeke-policy:x": {}}"#), None).is_err());
        let again = qs.accept(Some(&state), None).unwrap();
        assert_eq!(again.find(&q("fs.write")), Some(&yes));
        assert!(
            qs.accept(Some(&state), None).is_err(),
            "a state is used once"
        );
        assert_eq!(qs.carry(&Answers::default()), None);
    }

    #[test]
    fn questions_expire() {
        let qs = Questions::new(Duration::ZERO);
        let id = qs.ask(q("fs.write"));
        assert!(qs.accept(None, responses(&[(&id, json!({}))])).is_err());
    }
}
