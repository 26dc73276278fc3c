//! Joining a fallback's answer onto what the user already saw of a failed one (pure), so nothing
//! is shown twice.
//!
//! The next provider either got the conversation plus the shown text as a trailing assistant
//! message to continue ("prefilled", for providers that continue one: Anthropic, llama.cpp,
//! Ollama; FIM always, as a longer prefix), or the conversation alone. Its text is held while it
//! repeats what was shown (some servers echo the prefill, others answer from the start). Then:
//! an **echo** that goes past the shown text sends only the rest; a prefilled **continuation**
//! is sent as is, appended; an answer that says something else **diverges**: the surface is told
//! to replace what it showed ([`Out::Replace`]).

/// What to send the surface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// Append.
    Text(String),
    /// Forget what was shown of this answer; show this instead.
    Replace(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Holding,
    Echo,
    Continuation,
    Diverged,
}

/// The splice of one attempt onto `base` (what the user saw before it).
#[derive(Debug, Clone)]
pub struct Splice {
    base: String,
    prefilled: bool,
    fresh: String,
    mode: Mode,
}

impl Splice {
    pub fn new(base: String, prefilled: bool) -> Self {
        let mode = if base.is_empty() {
            Mode::Echo
        } else {
            Mode::Holding
        };
        Splice {
            base,
            prefilled,
            fresh: String::new(),
            mode,
        }
    }

    /// One text delta of the attempt (moved through when it goes out as is).
    pub fn push(&mut self, t: String) -> Option<Out> {
        self.fresh.push_str(&t);
        match self.mode {
            Mode::Echo | Mode::Continuation | Mode::Diverged => Some(Out::Text(t)),
            Mode::Holding => {
                if self.base.starts_with(self.fresh.as_str()) {
                    None
                } else if self.fresh.starts_with(self.base.as_str()) {
                    self.mode = Mode::Echo;
                    Some(Out::Text(self.fresh[self.base.len()..].to_string()))
                } else if self.prefilled {
                    self.mode = Mode::Continuation;
                    Some(Out::Text(self.fresh.clone()))
                } else {
                    self.mode = Mode::Diverged;
                    Some(Out::Replace(self.fresh.clone()))
                }
            }
        }
    }

    /// A tool call arrived: calls shown before cannot be continued, so what follows replaces them.
    pub fn restart(&mut self) -> Option<Out> {
        let prev = self.mode;
        self.mode = Mode::Diverged;
        match prev {
            Mode::Diverged => None,
            Mode::Continuation => {
                self.fresh = format!("{}{}", self.base, self.fresh);
                Some(Out::Replace(self.fresh.clone()))
            }
            _ => Some(Out::Replace(self.fresh.clone())),
        }
    }

    /// The attempt ended well: a held answer that only repeated part of what was shown.
    pub fn finish(&mut self) -> Option<Out> {
        if self.mode != Mode::Holding || self.fresh == self.base {
            return None;
        }
        if self.prefilled {
            // a continuation that happens to read like the start of the shown text
            self.mode = Mode::Continuation;
            return (!self.fresh.is_empty()).then(|| Out::Text(self.fresh.clone()));
        }
        self.mode = Mode::Diverged;
        Some(Out::Replace(self.fresh.clone()))
    }

    /// What the user sees now (the base for a further fallback).
    pub fn shown(&self) -> String {
        match self.mode {
            Mode::Holding => self.base.clone(),
            Mode::Echo | Mode::Diverged => self.fresh.clone(),
            Mode::Continuation => format!("{}{}", self.base, self.fresh),
        }
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    fn check(base: &str, prefilled: bool, chunks: &[&str], e: Expect) {
        let mut s = Splice::new(base.into(), prefilled);
        let mut out = String::new();
        for c in chunks {
            if let Some(o) = s.push(c.to_string()) {
                out.push_str(&format!("{o:?} "));
            }
        }
        if let Some(o) = s.finish() {
            out.push_str(&format!("end:{o:?} "));
        }
        out.push_str(&format!("| shown {:?}\n", s.shown()));
        e.assert_eq(&out);
    }

    #[test]
    fn splices() {
        // nothing shown before: everything goes out
        check(
            "",
            false,
            &["def", " add"],
            expect![[r#"
            Text("def") Text(" add") | shown "def add"
        "#]],
        );
        // the fallback repeats the shown text, then continues: only the rest is sent
        check(
            "def add(a,",
            false,
            &["def", " add(a,", " b):"],
            expect![[r#"
            Text(" b):") | shown "def add(a, b):"
        "#]],
        );
        // …with the boundary inside a chunk
        check(
            "def add(a,",
            false,
            &["def add(a, b", "):"],
            expect![[r#"
            Text(" b") Text("):") | shown "def add(a, b):"
        "#]],
        );
        // a different answer replaces what was shown
        check(
            "def add(a,",
            false,
            &["def", " sum(x"],
            expect![[r#"
            Replace("def sum(x") | shown "def sum(x"
        "#]],
        );
        // a prefilled provider continues: appended as is
        check(
            "one, two,",
            true,
            &[" three,", " four"],
            expect![[r#"
            Text(" three,") Text(" four") | shown "one, two, three, four"
        "#]],
        );
        // a prefilled server that echoes the prefill (llama-server does): only the rest
        check(
            "one, two,",
            true,
            &["one, two", ", three"],
            expect![[r#"
            Text(" three") | shown "one, two, three"
        "#]],
        );
        // an answer shorter than what was shown, then the end: it replaces it
        check(
            "def add(a, b):",
            false,
            &["def add"],
            expect![[r#"
            end:Replace("def add") | shown "def add"
        "#]],
        );
        // the same answer exactly: nothing to send
        check(
            "def add",
            false,
            &["def", " add"],
            expect![[r#"
            | shown "def add"
        "#]],
        );
    }

    #[test]
    fn a_tool_call_after_shown_calls_restarts() {
        let mut s = Splice::new("Let me look.".into(), true);
        assert_eq!(
            s.push(" Reading".into()),
            Some(Out::Text(" Reading".into()))
        );
        assert_eq!(
            s.restart(),
            Some(Out::Replace("Let me look. Reading".into()))
        );
        assert_eq!(s.restart(), None);
    }
}
