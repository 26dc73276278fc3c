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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
