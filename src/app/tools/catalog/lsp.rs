//! The `lsp_*` tools: a language server's answers about the code (definitions, references, hover,
//! diagnostics, symbols, calls, code actions, renames) for agents. Positions are 1-based line
//! and column, the column counted in characters; a `symbol` name path (`Shape/area`, resolved
//! through the file's document symbols) may stand for the position.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Capability, Spec, input, output};

/// Where in a file: `line` + `column`, or `symbol`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct LspAt {
    /// The file (relative to the root, or absolute inside it)
    pub path: String,
    /// 1-based line number
    #[schemars(range(min = 1))]
    pub line: Option<u32>,
    /// 1-based column, counted in characters (default 1)
    #[schemars(range(min = 1))]
    pub column: Option<u32>,
    /// Instead of line/column: the symbol's name path in this file, e.g. `Shape/area`,
    /// `Circle`, `total_area` (a trailing `/` segment picks a member)
    pub symbol: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct LspReferences {
    #[serde(flatten)]
    pub at: LspAt,
    /// Also list the declaration itself (default true)
    pub include_declaration: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct LspRename {
    #[serde(flatten)]
    pub at: LspAt,
    /// The symbol's new name
    pub new_name: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct LspDiagnostics {
    /// A file: its diagnostics, fresh (after the server has seen the file as it is now). Absent:
    /// every file's diagnostics the project's running servers have published
    pub path: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct LspQuery {
    /// Symbol name to search for (fuzzy, as the server matches it)
    pub query: String,
    /// A file or directory whose language server answers (default: the project's running one,
    /// else the language its marker files say, e.g. Cargo.toml → rust)
    pub path: Option<String>,
}

/// One location in a result.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LocationOut {
    /// Relative to the root when inside it
    pub path: String,
    /// 1-based
    pub line: u32,
    /// 1-based, in characters
    pub column: u32,
    pub end_line: u32,
    pub end_column: u32,
    /// The symbol's name and kind (symbol and call results)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The lines around it, numbered
    pub snippet: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct LocationsOut {
    pub content: String,
    pub locations: Vec<LocationOut>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DiagnosticOut {
    pub path: String,
    pub line: u32,
    pub column: u32,
    /// error, warning, information or hint
    pub severity: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DiagnosticsOut {
    pub content: String,
    pub diagnostics: Vec<DiagnosticOut>,
    /// Whether the server had seen the file as it is now (false: what it published last)
    pub fresh: bool,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FileDiff {
    pub path: String,
    /// A unified diff of the file
    pub diff: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PatchOut {
    pub content: String,
    pub files: Vec<FileDiff>,
}

/// What every description ends with (the position rules are in the arguments' schema).
macro_rules! pos {
    () => {
        " While the server is still indexing, the answer says so and when to retry."
    };
}

macro_rules! lsp_spec {
    ($name:literal, $title:literal, $args:ty, $out:ty, $desc:literal) => {
        spec!(
            $name,
            $title,
            FsRead,
            None,
            $args,
            Some(output::<$out>),
            concat!($desc, pos!())
        )
    };
}

/// The language-server tools, in `tools/list` order.
pub(super) static TOOLS: &[Spec] = &[
    lsp_spec!(
        "lsp_definition",
        "Go to Definition",
        LspAt,
        LocationsOut,
        "Where the symbol at a position is defined (across files and crates), with the lines around it."
    ),
    lsp_spec!(
        "lsp_type_definition",
        "Go to Type Definition",
        LspAt,
        LocationsOut,
        "Where the type of the expression or symbol at a position is defined."
    ),
    lsp_spec!(
        "lsp_implementation",
        "Find Implementations",
        LspAt,
        LocationsOut,
        "The implementations of the trait, interface or method at a position."
    ),
    lsp_spec!(
        "lsp_references",
        "Find References",
        LspReferences,
        LocationsOut,
        "Every use of the symbol at a position in the workspace."
    ),
    lsp_spec!(
        "lsp_hover",
        "Hover",
        LspAt,
        LocationsOut,
        "The signature, type and documentation of the symbol at a position (markdown)."
    ),
    lsp_spec!(
        "lsp_diagnostics",
        "Diagnostics",
        LspDiagnostics,
        DiagnosticsOut,
        "The compiler's and the language server's errors and warnings for a file — fresh: after an edit it waits for the server's diagnostics of the file as it is now — or for the whole project."
    ),
    lsp_spec!(
        "lsp_document_symbols",
        "Document Symbols",
        LspDiagnostics,
        LocationsOut,
        "The symbols of a file as a tree (kind, name, line)."
    ),
    lsp_spec!(
        "lsp_workspace_symbols",
        "Workspace Symbols",
        LspQuery,
        LocationsOut,
        "Symbols matching a name anywhere in the project."
    ),
    lsp_spec!(
        "lsp_incoming_calls",
        "Incoming Calls",
        LspAt,
        LocationsOut,
        "The functions that call the function at a position, with where."
    ),
    lsp_spec!(
        "lsp_outgoing_calls",
        "Outgoing Calls",
        LspAt,
        LocationsOut,
        "The functions the function at a position calls."
    ),
    lsp_spec!(
        "lsp_code_actions",
        "Code Actions",
        LspAt,
        PatchOut,
        "The code actions (quick fixes, refactorings) offered at a position, each with its edit as a unified diff. Nothing is applied: apply one with edit_file or write_file (gated by fs.write)."
    ),
    lsp_spec!(
        "lsp_rename",
        "Rename Symbol",
        LspRename,
        PatchOut,
        "Renames the symbol at a position everywhere: returns the workspace edit as a unified diff per file. Nothing is applied: apply it with edit_file or write_file (gated by fs.write)."
    ),
];
