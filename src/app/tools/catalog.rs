//! The tool catalog: names, descriptions, argument structs (their JSON Schemas are the tools'
//! `inputSchema`), output schemas, annotations and the policy capability each tool needs.
//!
//! Names and argument shapes are the reference servers' (`@modelcontextprotocol/server-filesystem`
//! and `mcp-server-git`), so Zeke is a drop-in replacement; the chat agent offers the same tools
//! with the same schemas. The MCP surface adds an optional `page` argument to every tool.

use std::sync::Arc;

use schemars::JsonSchema;

use crate::core::policy::Capability;
use serde::Deserialize;

/// A JSON Schema as a JSON object.
pub type JsonObject = serde_json::Map<String, serde_json::Value>;

/// One tool's static description.
#[derive(Clone, Copy)]
pub struct Spec {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    /// The capability the tool needs; the gate checks it (more than once for a tool that acts
    /// in two projects, e.g. `move_file`).
    pub cap: Capability,
    /// (destructive, idempotent) for tools that change things; `None` for read-only tools.
    pub writes: Option<(bool, bool)>,
    pub input: fn() -> Arc<JsonObject>,
    pub output: Option<fn() -> Arc<JsonObject>>,
}

// ---- argument structs (camelCase where the reference uses it) ----

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReadTextFile {
    pub path: String,
    /// If provided, returns only the last N lines of the file
    pub tail: Option<u64>,
    /// If provided, returns only the first N lines of the file
    pub head: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct PathOnly {
    pub path: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReadMultipleFiles {
    /// Array of file paths to read. Each path must be a string pointing to a valid file within allowed directories.
    #[schemars(length(min = 1))]
    pub paths: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct WriteFile {
    pub path: String,
    pub content: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EditOperation {
    /// Text to search for - must match exactly (and exactly once)
    pub old_text: String,
    /// Text to replace with
    pub new_text: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EditFile {
    pub path: String,
    pub edits: Vec<EditOperation>,
    /// Preview changes using git-style diff format
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Deserialize, JsonSchema, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SortBy {
    #[default]
    Name,
    Size,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListWithSizes {
    pub path: String,
    /// Sort entries by name or size
    #[serde(default)]
    pub sort_by: SortBy,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryTree {
    pub path: String,
    /// Glob patterns to leave out; a pattern without '/' matches a name at any depth
    #[serde(default)]
    pub exclude_patterns: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct MoveFile {
    pub source: String,
    pub destination: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchFiles {
    pub path: String,
    /// Glob relative to `path` ('**/*.rs'); a pattern without '/' matches file names at any depth
    pub pattern: String,
    #[serde(default)]
    pub exclude_patterns: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct NoArgs {}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RepoPath {
    pub repo_path: String,
}

fn three() -> u32 {
    3
}

fn ten() -> u32 {
    10
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GitDiffLocal {
    pub repo_path: String,
    #[serde(default = "three")]
    pub context_lines: u32,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GitDiff {
    pub repo_path: String,
    pub target: String,
    #[serde(default = "three")]
    pub context_lines: u32,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GitCommit {
    pub repo_path: String,
    pub message: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GitAdd {
    pub repo_path: String,
    #[schemars(length(min = 1))]
    pub files: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GitLog {
    pub repo_path: String,
    #[serde(default = "ten")]
    pub max_count: u32,
    /// Start timestamp for filtering commits. Accepts: ISO 8601 format (e.g., '2024-01-15T14:30:25'), relative dates (e.g., '2 weeks ago', 'yesterday'), or absolute dates (e.g., '2024-01-15', 'Jan 15 2024')
    pub start_timestamp: Option<String>,
    /// End timestamp for filtering commits. Same formats as start_timestamp.
    pub end_timestamp: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GitCreateBranch {
    pub repo_path: String,
    pub branch_name: String,
    pub base_branch: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GitCheckout {
    pub repo_path: String,
    pub branch_name: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GitShow {
    pub repo_path: String,
    pub revision: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GitBranch {
    /// The path to the Git repository.
    pub repo_path: String,
    /// Whether to list local branches ('local'), remote branches ('remote') or all branches('all').
    pub branch_type: String,
    /// The commit sha that branch should contain. Do not pass anything to this param if no commit sha is specified
    pub contains: Option<String>,
    /// The commit sha that branch should NOT contain. Do not pass anything to this param if no commit sha is specified
    pub not_contains: Option<String>,
}

// ---- output schemas ----

/// Plain text output, the reference servers' `{content: string}` (plus paging fields).
#[derive(JsonSchema)]
#[allow(dead_code)]
pub struct TextOut {
    /// The tool's text output (one page of it when `pages` > 1)
    content: String,
    /// The page returned, from 1, when the output was split
    #[serde(skip_serializing_if = "Option::is_none")]
    page: Option<u32>,
    /// How many pages the whole output has, when it was split
    #[serde(skip_serializing_if = "Option::is_none")]
    pages: Option<u32>,
}

#[derive(JsonSchema)]
#[allow(dead_code)]
pub struct EntryOut {
    name: String,
    /// file, directory, symlink or other
    r#type: String,
    /// Bytes (0 for directories)
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
}

#[derive(JsonSchema)]
#[allow(dead_code)]
#[schemars(rename_all = "camelCase")]
pub struct ListingOut {
    content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    page: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pages: Option<u32>,
    /// Present when the listing fits in one page
    #[serde(skip_serializing_if = "Option::is_none")]
    entries: Option<Vec<EntryOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_files: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_dirs: Option<u64>,
    /// Sum of file sizes, bytes
    #[serde(skip_serializing_if = "Option::is_none")]
    total_size: Option<u64>,
}

#[derive(JsonSchema)]
#[allow(dead_code)]
pub struct SearchOut {
    content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    page: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pages: Option<u32>,
    /// Absolute paths, present when the result fits in one page
    #[serde(skip_serializing_if = "Option::is_none")]
    matches: Option<Vec<String>>,
}

#[derive(JsonSchema)]
#[allow(dead_code)]
#[schemars(rename_all = "camelCase")]
pub struct InfoOut {
    content: String,
    size: u64,
    /// ISO 8601, UTC
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    modified: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accessed: Option<String>,
    is_directory: bool,
    is_file: bool,
    is_symlink: bool,
    /// Octal permission bits, e.g. "644"
    permissions: String,
}

#[derive(JsonSchema)]
#[allow(dead_code)]
pub struct EditOut {
    /// The unified diff in a Markdown fence
    content: String,
    /// Whether the file was changed (false for dryRun)
    applied: bool,
}

#[derive(JsonSchema)]
#[allow(dead_code)]
pub struct RootsOut {
    content: String,
    /// Canonical absolute paths
    directories: Vec<String>,
}

/// The `inputSchema`: JSON Schema 2020-12 of what the argument struct accepts, root `type:
/// object`, top-level title and description stripped (as the MCP SDKs do), plus `page`.
fn input<T: JsonSchema + 'static>() -> Arc<JsonObject> {
    let mut s = schema::<T>(schemars::generate::SchemaSettings::draft2020_12());
    if s.get("type").and_then(serde_json::Value::as_str) != Some("object") {
        s = JsonObject::new();
        s.insert("type".into(), serde_json::json!("object"));
        s.insert("properties".into(), serde_json::json!({}));
    }
    Arc::new(s)
}

fn schema<T: JsonSchema + 'static>(settings: schemars::generate::SchemaSettings) -> JsonObject {
    let root = settings.into_generator().into_root_schema_for::<T>();
    let mut object = match serde_json::to_value(root) {
        Ok(serde_json::Value::Object(o)) => o,
        _ => JsonObject::new(),
    };
    object.remove("title");
    object.remove("description");
    object
}

/// The `outputSchema`: what the result's `structuredContent` serializes to.
fn output<T: JsonSchema + 'static>() -> Arc<JsonObject> {
    Arc::new(schema::<T>(
        schemars::generate::SchemaSettings::draft2020_12().for_serialize(),
    ))
}

macro_rules! spec {
    ($name:literal, $title:literal, $cap:ident, $writes:expr, $args:ty, $out:expr, $desc:expr) => {
        Spec {
            name: $name,
            title: $title,
            description: $desc,
            cap: Capability::$cap,
            writes: $writes,
            input: input::<$args>,
            output: $out,
        }
    };
}

mod lsp;
pub use lsp::{
    DiagnosticOut, FileDiff, LocationOut, LspAt, LspDiagnostics, LspQuery, LspReferences, LspRename,
};

/// The catalog, in the order `tools/list` returns it: the filesystem, git, `fetch` and
/// `run_command` tools, then the language-server ones.
pub static TOOLS: std::sync::LazyLock<Vec<Spec>> =
    std::sync::LazyLock::new(|| FILES_AND_GIT.iter().chain(lsp::TOOLS).copied().collect());

static FILES_AND_GIT: &[Spec] = &[
    spec!(
        "read_text_file",
        "Read Text File",
        FsRead,
        None,
        ReadTextFile,
        Some(output::<TextOut>),
        "Read the complete contents of a file from the file system as text. Use the 'head' parameter to read only the first N lines of a file, or the 'tail' parameter to read only the last N lines. Long files are returned in pages (see the marker at the end). Only works within allowed directories."
    ),
    spec!(
        "read_file",
        "Read File (Deprecated)",
        FsRead,
        None,
        ReadTextFile,
        Some(output::<TextOut>),
        "Read the complete contents of a file as text. DEPRECATED: Use read_text_file instead."
    ),
    spec!(
        "read_media_file",
        "Read Media File",
        FsRead,
        None,
        PathOnly,
        None,
        "Read a file and return it as a base64-encoded content block with its MIME type. Image and audio files are returned as image/audio content; any other file type is returned as an embedded resource. Files over 8 MiB are refused. Only works within allowed directories."
    ),
    spec!(
        "read_multiple_files",
        "Read Multiple Files",
        FsRead,
        None,
        ReadMultipleFiles,
        Some(output::<TextOut>),
        "Read the contents of multiple files simultaneously. Each file's content is returned with its path as a reference. Failed reads for individual files won't stop the entire operation. One call reads at most 64 MiB in all; files past that are reported as skipped. Only works within allowed directories."
    ),
    spec!(
        "write_file",
        "Write File",
        FsWrite,
        Some((true, true)),
        WriteFile,
        Some(output::<TextOut>),
        "Create a new file or completely overwrite an existing file with new content (atomically: temp file + rename). Use with caution as it will overwrite existing files without warning. Only works within allowed directories."
    ),
    spec!(
        "edit_file",
        "Edit File",
        FsWrite,
        Some((true, false)),
        EditFile,
        Some(output::<EditOut>),
        "Make exact-match edits to a text file. Each edit's oldText must occur exactly once (after the previous edits); an edit that matches zero or several times is refused and nothing is written. Line endings (LF or CRLF), a BOM and a missing final newline are preserved; a file that is not UTF-8 text is refused. Returns a git-style diff; dryRun previews without writing. Only works within allowed directories."
    ),
    spec!(
        "create_directory",
        "Create Directory",
        FsWrite,
        Some((false, true)),
        PathOnly,
        Some(output::<TextOut>),
        "Create a new directory or ensure a directory exists. Can create multiple nested directories in one operation. If the directory already exists, this operation will succeed silently. Only works within allowed directories."
    ),
    spec!(
        "list_directory",
        "List Directory",
        FsRead,
        None,
        PathOnly,
        Some(output::<ListingOut>),
        "Get a detailed listing of all files and directories in a specified path. Results distinguish files, directories and symlinks with [FILE], [DIR] and [LINK] prefixes. Only works within allowed directories."
    ),
    spec!(
        "list_directory_with_sizes",
        "List Directory with Sizes",
        FsRead,
        None,
        ListWithSizes,
        Some(output::<ListingOut>),
        "Get a detailed listing of all files and directories in a specified path, including sizes. Results distinguish files and directories with [FILE] and [DIR] prefixes. Only works within allowed directories."
    ),
    spec!(
        "directory_tree",
        "Directory Tree",
        FsRead,
        None,
        DirectoryTree,
        Some(output::<TextOut>),
        "Get a recursive tree view of files and directories as a JSON structure. Each entry includes 'name', 'type' (file/directory), and 'children' for directories. Honours .gitignore and skips .git; excludePatterns leave out more. Only works within allowed directories."
    ),
    spec!(
        "move_file",
        "Move File",
        FsWrite,
        Some((true, false)),
        MoveFile,
        Some(output::<TextOut>),
        "Move or rename files and directories. If the destination exists, the operation will fail. Both source and destination must be within allowed directories."
    ),
    spec!(
        "search_files",
        "Search Files",
        FsRead,
        None,
        SearchFiles,
        Some(output::<SearchOut>),
        "Recursively search for files and directories matching a glob pattern relative to 'path' ('**/*.rs'; a pattern without '/' such as '*.rs' matches names at any depth). Honours .gitignore and skips .git. Returns full paths to all matching items. Only searches within allowed directories."
    ),
    spec!(
        "get_file_info",
        "Get File Info",
        FsRead,
        None,
        PathOnly,
        Some(output::<InfoOut>),
        "Retrieve detailed metadata about a file or directory: size, creation, modification and access times, permissions and type, without reading the content. Only works within allowed directories."
    ),
    spec!(
        "list_allowed_directories",
        "List Allowed Directories",
        FsRead,
        None,
        NoArgs,
        Some(output::<RootsOut>),
        "Returns the list of directories that this server is allowed to access (the configured roots, narrowed by the client's roots when it offers them). Subdirectories within these allowed directories are also accessible."
    ),
    spec!(
        "git_status",
        "Git Status",
        GitRead,
        None,
        RepoPath,
        None,
        "Shows the working tree status"
    ),
    spec!(
        "git_diff_unstaged",
        "Git Diff Unstaged",
        GitRead,
        None,
        GitDiffLocal,
        None,
        "Shows changes in the working directory that are not yet staged"
    ),
    spec!(
        "git_diff_staged",
        "Git Diff Staged",
        GitRead,
        None,
        GitDiffLocal,
        None,
        "Shows changes that are staged for commit"
    ),
    spec!(
        "git_diff",
        "Git Diff",
        GitRead,
        None,
        GitDiff,
        None,
        "Shows differences between branches or commits"
    ),
    spec!(
        "git_commit",
        "Git Commit",
        GitWrite,
        Some((false, false)),
        GitCommit,
        None,
        "Records changes to the repository"
    ),
    spec!(
        "git_add",
        "Git Add",
        GitWrite,
        Some((false, true)),
        GitAdd,
        None,
        "Adds file contents to the staging area"
    ),
    spec!(
        "git_reset",
        "Git Reset",
        GitWrite,
        Some((true, true)),
        RepoPath,
        None,
        "Unstages all staged changes"
    ),
    spec!(
        "git_log",
        "Git Log",
        GitRead,
        None,
        GitLog,
        None,
        "Shows the commit logs"
    ),
    spec!(
        "git_create_branch",
        "Git Create Branch",
        GitWrite,
        Some((false, false)),
        GitCreateBranch,
        None,
        "Creates a new branch from an optional base branch"
    ),
    spec!(
        "git_checkout",
        "Git Checkout",
        GitWrite,
        Some((false, false)),
        GitCheckout,
        None,
        "Switches branches"
    ),
    spec!(
        "git_show",
        "Git Show",
        GitRead,
        None,
        GitShow,
        None,
        "Shows the contents of a commit, or of a file or directory given as <revision>:<path>"
    ),
    spec!(
        "git_branch",
        "Git Branch",
        GitRead,
        None,
        GitBranch,
        None,
        "List Git branches"
    ),
    spec!(
        "fetch",
        "Fetch",
        NetHttp,
        None,
        super::net::Fetch,
        None,
        "Fetches a URL from the internet and optionally extracts its contents as markdown. HTML pages are simplified to Markdown unless raw is true; long pages come in pieces of max_length characters (call again with start_index). Needs the net.http capability; addresses on this machine or its private network are refused unless the config allows them."
    ),
    spec!(
        "run_command",
        "Run Command",
        CmdExec,
        Some((true, false)),
        super::cmd::RunCommand,
        Some(output::<super::cmd::CommandOut>),
        "Run a shell command line with /bin/sh -c in a directory inside the allowed directories (cwd; default: the first of them). Needs the cmd.exec capability, which is refused unless the Zeke config allows it or asks the user (who then sees the exact command and directory). stdin is /dev/null; the environment is inherited except *_API_KEY variables. Returns the exit code (or the signal), the wall time, stdout and stderr (each cut to its first and last 8 KiB when longer: redirect to a file and read it for all of it). After timeout_ms (default 30000, at most 600000) the command's processes are stopped (SIGTERM, then SIGKILL) and the result says it timed out; processes it leaves in the background are stopped when it exits. Do not ask for another page: that would run the command again."
    ),
];

pub fn find(name: &str) -> Option<&'static Spec> {
    let all: &'static [Spec] = &TOOLS;
    all.iter().find(|s| s.name == name)
}
