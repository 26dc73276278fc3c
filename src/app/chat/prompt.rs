//! What the model is given besides the conversation: the agent's tools (the catalog's, as
//! `zeke mcp` lists them, with or without the `lsp_*` ones), the project's rules file and the
//! system prompt.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use crate::app::tools;
use crate::core::llm::ToolSpec;

/// The project's rules files, in order: the first found is included.
pub const RULES_FILES: [&str; 5] = [
    "AGENTS.md",
    "CLAUDE.md",
    ".cursorrules",
    ".github/copilot-instructions.md",
    ".zeke/rules.md",
];
/// Most bytes of a rules file included.
const MAX_RULES_BYTES: usize = 32 * 1024;
/// The tools the agent gets: every catalog tool except `list_allowed_directories` (the root is in
/// the system prompt) — the same names and schemas `zeke mcp` lists.
pub fn tool_specs() -> Arc<[ToolSpec]> {
    // built once: the schemas are generated, and a turn should not pay for that (nor for a copy)
    static SPECS: std::sync::LazyLock<Arc<[ToolSpec]>> = std::sync::LazyLock::new(|| {
        tools::TOOLS
            .iter()
            .filter(|t| t.name != "list_allowed_directories")
            .map(|t| ToolSpec {
                name: t.name.into(),
                description: t.description.into(),
                parameters: Value::Object((*(t.input)()).clone()),
            })
            .collect()
    });
    SPECS.clone()
}

/// [`tool_specs`] less the `lsp_*` tools (a project no language server answers for).
pub fn tool_specs_without_lsp() -> Arc<[ToolSpec]> {
    static SPECS: std::sync::LazyLock<Arc<[ToolSpec]>> = std::sync::LazyLock::new(|| {
        (tool_specs().iter())
            .filter(|t| !t.name.starts_with("lsp_"))
            .cloned()
            .collect()
    });
    SPECS.clone()
}

/// The first rules file of the project, as (name, text).
pub(super) fn rules(root: &str) -> Option<(String, String)> {
    RULES_FILES.iter().find_map(|name| {
        let path = PathBuf::from(root).join(name);
        let text = std::fs::read_to_string(&path).ok()?;
        let cut = crate::core::text::floor_char_boundary(&text, MAX_RULES_BYTES);
        Some((name.to_string(), text[..cut].to_string()))
    })
}

pub(super) fn system_prompt(root: &str, agent: bool, rules: Option<&(String, String)>) -> String {
    let mut s = format!(
        "You are Zeke, a coding assistant inside Neovim. The project is at {root}. Answer in \
         Markdown; keep code in fenced blocks with their language."
    );
    if agent {
        s.push_str(
            " You can call tools to look at the project (paths relative to the project root or \
             absolute inside it). write_file and edit_file do not write directly: the user reviews \
             each change and the result tells you what was applied or why it was refused. Read a \
             file before you edit it; make small, exact edits.",
        );
    }
    if let Some((name, text)) = rules {
        s.push_str(&format!("\n\nThe project's instructions ({name}):\n{text}"));
    }
    s
}
