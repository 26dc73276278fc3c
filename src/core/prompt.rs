//! Prompt templates: chat-form FIM (for models without FIM tokens) and explanations.
//!
//! Templates are plain functions of their inputs; the wording is kept short because small local
//! models follow short instructions best.

use crate::core::llm::{ChatRequest, FimRequest, Message};

/// Marks the cursor in chat-form FIM prompts.
pub const CURSOR: &str = "<CURSOR>";

/// A chat request asking for the text at the cursor, for providers without native FIM.
pub fn fim_as_chat(req: &FimRequest) -> ChatRequest {
    let lang = if req.language.is_empty() {
        "text"
    } else {
        &req.language
    };
    let system = format!(
        "You are a {lang} code completion engine. Reply with only the text that replaces {CURSOR}: \
         no explanation, no Markdown fences, do not repeat the code before {CURSOR}."
    );
    let file = if req.path.is_empty() {
        String::new()
    } else {
        format!("File: {}\n", req.path)
    };
    let user = format!("{file}```{lang}\n{}{CURSOR}{}\n```", req.prefix, req.suffix);
    ChatRequest {
        messages: vec![Message::system(system), Message::user(user)],
        max_tokens: req.max_tokens,
        temperature: 0.1,
        stop: req.stop.clone(),
        tools: Default::default(),
    }
}

/// What to explain: the code and where it comes from (rows 0-based, end inclusive).
#[derive(Debug, Clone)]
pub struct ExplainInput<'a> {
    pub code: &'a str,
    pub language: &'a str,
    pub path: &'a str,
    pub start_row: usize,
    pub end_row: usize,
}

/// A chat request that explains a piece of code in short Markdown.
pub fn explain(input: &ExplainInput<'_>, max_tokens: u32) -> ChatRequest {
    let lang = if input.language.is_empty() {
        "code"
    } else {
        input.language
    };
    let system = format!(
        "You are an expert {lang} engineer. Explain what the given code does: its purpose, inputs and \
         outputs, and anything surprising. Be concise; use short Markdown."
    );
    let place = if input.path.is_empty() {
        String::from("the buffer")
    } else {
        input.path.to_string()
    };
    let user = format!(
        "Explain this code from {place}, lines {}-{}:\n```{lang}\n{}\n```",
        input.start_row + 1,
        input.end_row + 1,
        input.code
    );
    ChatRequest {
        messages: vec![Message::system(system), Message::user(user)],
        max_tokens,
        temperature: 0.2,
        stop: vec![],
        tools: Default::default(),
    }
}

/// A diagnostic for the code to fix (rows 0-based, as `vim.diagnostic.get` gives them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub lnum: usize,
    pub end_lnum: usize,
    pub col: usize,
    pub severity: String,
    pub message: String,
    pub source: Option<String>,
}

/// What `:Zeke fix` and `:Zeke test` send the model: the code, where it is, and around it.
#[derive(Debug, Clone)]
pub struct PatchInput<'a> {
    pub code: &'a str,
    pub language: &'a str,
    pub path: &'a str,
    /// Rows of `code` in the buffer (0-based, end inclusive).
    pub start_row: usize,
    pub end_row: usize,
    /// A few lines above the code, for context.
    pub above: &'a str,
    pub diagnostics: &'a [Diagnostic],
    /// Why the user rejected the previous proposal, if they said.
    pub reason: Option<&'a str>,
}

fn fence_lang(language: &str) -> &str {
    if language.is_empty() {
        "text"
    } else {
        language
    }
}

/// A chat request for the corrected version of `input.code`, as one fenced block.
pub fn fix(input: &PatchInput<'_>, max_tokens: u32) -> ChatRequest {
    let lang = fence_lang(input.language);
    let system = format!(
        "You are an expert {lang} engineer fixing code. Reply with the corrected code in one ```{lang} block that replaces \
         exactly the lines you were given, keeping what is not broken unchanged. No explanation."
    );
    let mut user = String::new();
    if !input.path.is_empty() {
        user.push_str(&format!("File: {}\n", input.path));
    }
    if !input.diagnostics.is_empty() {
        user.push_str("Diagnostics:\n");
        for d in input.diagnostics {
            let source = d
                .source
                .as_deref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            user.push_str(&format!(
                "- line {}: {} {}{source}\n",
                d.lnum + 1,
                d.severity,
                d.message
            ));
        }
    }
    if !input.above.trim().is_empty() {
        user.push_str(&format!(
            "Code above (for context, do not repeat it):\n```{lang}\n{}\n```\n",
            input.above
        ));
    }
    user.push_str(&format!(
        "Fix lines {}-{}:\n```{lang}\n{}\n```\n",
        input.start_row + 1,
        input.end_row + 1,
        input.code
    ));
    if let Some(reason) = input.reason.filter(|r| !r.trim().is_empty()) {
        user.push_str(&format!("Your previous proposal was rejected: {reason}\n"));
    }
    user.push_str(&format!(
        "Reply with the fixed lines {}-{} in one ```{lang} block.",
        input.start_row + 1,
        input.end_row + 1
    ));
    ChatRequest {
        messages: vec![Message::system(system), Message::user(user)],
        max_tokens,
        temperature: 0.1,
        stop: vec![],
        tools: Default::default(),
    }
}

/// A chat request for `input.code` rewritten as `instruction` says (`:Zeke edit`), as one fenced
/// block replacing exactly the given lines.
pub fn edit(input: &PatchInput<'_>, instruction: &str, max_tokens: u32) -> ChatRequest {
    let lang = fence_lang(input.language);
    let system = format!(
        "You are an expert {lang} engineer editing code as instructed. Reply with the rewritten code in one ```{lang} \
         block that replaces exactly the lines you were given. No explanation."
    );
    let mut user = String::new();
    if !input.path.is_empty() {
        user.push_str(&format!("File: {}\n", input.path));
    }
    if !input.above.trim().is_empty() {
        user.push_str(&format!(
            "Code above (for context, do not repeat it):\n```{lang}\n{}\n```\n",
            input.above
        ));
    }
    user.push_str(&format!(
        "Lines {}-{}:\n```{lang}\n{}\n```\nInstruction: {instruction}\n",
        input.start_row + 1,
        input.end_row + 1,
        input.code
    ));
    if let Some(reason) = input.reason.filter(|r| !r.trim().is_empty()) {
        user.push_str(&format!("Your previous proposal was rejected: {reason}\n"));
    }
    user.push_str(&format!(
        "Reply with the rewritten lines {}-{} in one ```{lang} block.",
        input.start_row + 1,
        input.end_row + 1
    ));
    ChatRequest::new(
        vec![Message::system(system), Message::user(user)],
        max_tokens,
        0.2,
    )
}

/// A chat request for unit tests of `input.code`, as one fenced block. For Rust the tests go into
/// the file's `#[cfg(test)] mod tests` (so: test functions only); otherwise a whole test file.
pub fn tests(input: &PatchInput<'_>, max_tokens: u32) -> ChatRequest {
    let lang = fence_lang(input.language);
    let how = if input.language == "rust" {
        "Write #[test] functions only (they go inside the file's `mod tests` with `use super::*;`)."
    } else {
        "Write a complete test file using the language's usual test framework, importing the code under test."
    };
    let system = format!(
        "You are an expert {lang} engineer writing unit tests. {how} Reply with the tests in one ```{lang} block. No explanation."
    );
    let place = if input.path.is_empty() {
        String::from("the buffer")
    } else {
        input.path.to_string()
    };
    let mut user = format!(
        "Write unit tests for this code from {place}:\n```{lang}\n{}\n```\n",
        input.code
    );
    if let Some(reason) = input.reason.filter(|r| !r.trim().is_empty()) {
        user.push_str(&format!("Your previous proposal was rejected: {reason}\n"));
    }
    ChatRequest {
        messages: vec![Message::system(system), Message::user(user)],
        max_tokens,
        temperature: 0.2,
        stop: vec![],
        tools: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fix_prompt_has_diagnostics_range_and_reason() {
        let d = [Diagnostic {
            lnum: 4,
            end_lnum: 4,
            col: 2,
            severity: "ERROR".into(),
            message: "mismatched types".into(),
            source: Some("rustc".into()),
        }];
        let input = PatchInput {
            code: "fn f() -> u8 { \"x\" }",
            language: "rust",
            path: "src/a.rs",
            start_row: 4,
            end_row: 4,
            above: "use x;",
            diagnostics: &d,
            reason: Some("keep the name"),
        };
        let user = &fix(&input, 100).messages[1].content;
        for want in [
            "File: src/a.rs",
            "- line 5: ERROR mismatched types (rustc)",
            "Fix lines 5-5:",
            "```rust\nfn f()",
            "rejected: keep the name",
            "use x;",
        ] {
            assert!(user.contains(want), "{want:?} missing from {user}");
        }
        let t = &tests(
            &PatchInput {
                reason: None,
                ..input
            },
            100,
        )
        .messages[0]
            .content;
        assert!(t.contains("#[test] functions only"));
    }

    #[test]
    fn fim_prompt_marks_cursor_between_prefix_and_suffix() {
        let req = FimRequest {
            prefix: "fn ma".into(),
            suffix: "\n}".into(),
            language: "rust".into(),
            path: "src/main.rs".into(),
            max_tokens: 32,
            stop: vec![],
        };
        let chat = fim_as_chat(&req);
        assert_eq!(chat.messages.len(), 2);
        assert!(chat.messages[1].content.contains("fn ma<CURSOR>\n}"));
        assert!(
            chat.messages[1]
                .content
                .starts_with("File: src/main.rs\n```rust\n")
        );
        assert_eq!(chat.max_tokens, 32);
    }

    #[test]
    fn explain_names_lines_one_based() {
        let chat = explain(
            &ExplainInput {
                code: "x",
                language: "lua",
                path: "",
                start_row: 0,
                end_row: 2,
            },
            100,
        );
        assert!(chat.messages[1].content.contains("lines 1-3"));
        assert!(chat.messages[1].content.contains("```lua\nx\n```"));
    }
}
