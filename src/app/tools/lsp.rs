//! The `lsp_*` tools (catalog in `catalog::lsp`): each resolves its file inside the roots, passes
//! the gate (`fs.read` for reading the code; `cmd.exec` for starting the project's language
//! server — allowed when no rule is configured for it, since the servers are the configured
//! ones), waits for the server to settle (else a "still indexing, retry in N s" error, never a
//! wrong empty answer), makes the server see the file as it is on disk, asks, and turns the
//! answer into compact text (locations with the lines around them) plus structured content.
//! Edits (rename, code actions) come back as unified diffs; nothing here writes a file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lsp_types::request as req;
use lsp_types::{
    CallHierarchyItem, CallHierarchyPrepareParams, CodeActionOrCommand, DocumentSymbol,
    DocumentSymbolResponse, GotoDefinitionResponse, Hover, HoverContents, MarkedString, Position,
    Range, SymbolKind, TextDocumentIdentifier, TextDocumentPositionParams, Url, WorkspaceEdit,
};
use serde_json::{Value, json};

use super::catalog::{
    DiagnosticOut, FileDiff, LocationOut, LspAt, LspDiagnostics, LspQuery, LspReferences, LspRename,
};
use super::{Call, Output, ToolError, obj, parse};
use crate::app::lsp::{POOL, StartError, language_of_root};
use crate::core::policy::{Capability, Decision, Scope};
use crate::lsp::position::{line_of, to_chars, to_units};
use crate::lsp::{Client, Encoding, LspError};
use crate::workspace::Must;

mod edit;
mod out;
mod query;
use edit::*;
use out::*;
use query::*;

/// Most locations a result lists.
const MAX_LOCATIONS: usize = 100;

fn lsp_err(e: LspError) -> ToolError {
    ToolError::Failed(e.to_string())
}

/// A file the server has seen as it is now.
struct Ready {
    client: Arc<Client>,
    path: PathBuf,
    url: Url,
    text: String,
    version: i32,
}

/// Runs the `lsp_*` tool `name`; a server that exits during the call (crashed, killed) is
/// started again and the call made once more.
pub async fn run(call: &Call<'_>, name: &str, args: Value) -> Result<Output, ToolError> {
    match once(call, name, args.clone()).await {
        Err(ToolError::Failed(m)) if m.starts_with(EXITED) => once(call, name, args).await,
        r => r,
    }
}

/// How [`LspError::Exited`] reads.
const EXITED: &str = "the language server ";

async fn once(call: &Call<'_>, name: &str, args: Value) -> Result<Output, ToolError> {
    match name {
        "lsp_definition" => goto::<req::GotoDefinition>(call, parse(name, args)?).await,
        "lsp_type_definition" => goto::<req::GotoTypeDefinition>(call, parse(name, args)?).await,
        "lsp_implementation" => goto::<req::GotoImplementation>(call, parse(name, args)?).await,
        "lsp_references" => references(call, parse(name, args)?).await,
        "lsp_hover" => hover(call, parse(name, args)?).await,
        "lsp_diagnostics" => diagnostics(call, parse(name, args)?).await,
        "lsp_document_symbols" => document_symbols(call, parse(name, args)?).await,
        "lsp_workspace_symbols" => workspace_symbols(call, parse(name, args)?).await,
        "lsp_incoming_calls" => calls(call, parse(name, args)?, true).await,
        "lsp_outgoing_calls" => calls(call, parse(name, args)?, false).await,
        "lsp_code_actions" => code_actions(call, parse(name, args)?).await,
        "lsp_rename" => rename(call, parse(name, args)?).await,
        other => Err(ToolError::Failed(format!("no handler for {other}"))),
    }
}

/// The running (or now started) server of `language` for `root`, then settled.
async fn server(
    call: &Call<'_>,
    root: &Path,
    server: &crate::config::LspServerConfig,
) -> Result<Arc<Client>, ToolError> {
    let cfg = &call.settings.lsp;
    let what = format!(
        "start the language server {} in {} (it may run the project's build scripts and macros)",
        std::iter::once(server.command.as_str())
            .chain(server.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        root.display()
    );
    let scope = Scope::new(root);
    // a server found dead while waiting (it crashed, or was killed) is started again, once
    for attempt in 0..2 {
        let allow = call.allow_default(Capability::CmdExec, &scope, &what, Decision::Allow);
        let client = match POOL.client(root, server, cfg, allow).await {
            Ok((c, _)) => c,
            Err(StartError::Refused(e)) => return Err(e),
            Err(StartError::Lsp(e)) => {
                return Err(ToolError::Failed(format!(
                    "{e}. The {} server's command comes from [lsp.servers.{}] (command, args, enabled = false to turn it off)",
                    server.language, server.language
                )));
            }
        };
        match client.wait_ready(cfg.wait).await {
            Ok(()) => return Ok(client),
            Err(LspError::Exited(_)) if attempt == 0 => continue,
            Err(e) => return Err(lsp_err(e)),
        }
    }
    unreachable!("the loop returns")
}

/// Resolves `path` (a file inside the roots), passes `fs.read`, and gets its server ready with
/// the file as it is on disk.
async fn ready(call: &Call<'_>, path: &str) -> Result<Ready, ToolError> {
    let real = call.roots.resolve(path, Must::Exist)?;
    if real.is_dir() {
        return Err(ToolError::Failed(format!(
            "{path} is a directory; give a file"
        )));
    }
    let scope = call.scope_for(&real);
    call.allow(
        &scope,
        &format!("ask the language server about {}", real.display()),
    )
    .await?;
    let cfg = &call.settings.lsp;
    let Some(conf) = cfg.server_for(&real) else {
        let ext = real.extension().and_then(|e| e.to_str()).unwrap_or("");
        return Err(ToolError::Failed(format!(
            "no language server for .{ext} files (configured for: {}); add one with [lsp.servers.LANG] command = …, extensions = [\"{ext}\"]",
            cfg.servers
                .values()
                .filter(|s| s.enabled)
                .flat_map(|s| s.extensions.iter().map(|e| format!(".{e}")))
                .collect::<Vec<_>>()
                .join(" ")
        )));
    };
    let client = server(call, &scope.root, conf).await?;
    let (url, text, version) = client.sync(&real).await.map_err(lsp_err)?;
    // a file that changed is being analysed again
    client.wait_ready(cfg.wait).await.map_err(lsp_err)?;
    Ok(Ready {
        client,
        path: real,
        url,
        text,
        version,
    })
}

fn doc(r: &Ready) -> TextDocumentIdentifier {
    TextDocumentIdentifier { uri: r.url.clone() }
}

/// The LSP position `at` names: line + column, or a symbol name path.
async fn position(r: &Ready, at: &LspAt) -> Result<Position, ToolError> {
    if let Some(path) = at.symbol.as_deref().filter(|s| !s.trim().is_empty()) {
        let symbols = r
            .client
            .request::<req::DocumentSymbolRequest>(lsp_types::DocumentSymbolParams {
                text_document: doc(r),
                work_done_progress_params: Default::default(),
                partial_result_params: Default::default(),
            })
            .await
            .map_err(lsp_err)?;
        return find_symbol(symbols, path).ok_or_else(|| {
            ToolError::Failed(format!(
                "no symbol {path:?} in {} (lsp_document_symbols lists them)",
                r.path.display()
            ))
        });
    }
    let Some(line) = at.line else {
        return Err(ToolError::Failed(
            "give line (and column), or symbol".into(),
        ));
    };
    let lines = r.text.split('\n').count() as u32;
    if line == 0 || line > lines {
        return Err(ToolError::Failed(format!(
            "line {line} is outside {} (it has {lines} lines; lines count from 1)",
            r.path.display()
        )));
    }
    let col = at.column.unwrap_or(1).max(1) as usize - 1;
    let text = line_of(&r.text, line - 1);
    Ok(Position::new(
        line - 1,
        to_units(text, col, r.client.encoding),
    ))
}

/// Whether the symbol `name` answers to the name-path segment `seg` (`Circle` matches
/// rust-analyzer's `impl Shape for Circle` too).
fn named(name: &str, seg: &str) -> bool {
    name == seg
        || name
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .any(|w| w == seg)
            && (name.starts_with("impl") || name.contains('('))
}

fn find_symbol(symbols: Option<DocumentSymbolResponse>, path: &str) -> Option<Position> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match symbols? {
        DocumentSymbolResponse::Nested(tree) => {
            fn walk(nodes: &[DocumentSymbol], segs: &[&str]) -> Option<Position> {
                let (first, rest) = segs.split_first()?;
                // exact names first, then the looser match, at this level and below
                for exact in [true, false] {
                    for n in nodes {
                        let hit = if exact {
                            n.name == *first
                        } else {
                            named(&n.name, first)
                        };
                        if hit {
                            if rest.is_empty() {
                                return Some(n.selection_range.start);
                            }
                            if let Some(p) = walk(n.children.as_deref().unwrap_or(&[]), rest) {
                                return Some(p);
                            }
                        }
                    }
                }
                nodes
                    .iter()
                    .find_map(|n| walk(n.children.as_deref().unwrap_or(&[]), segs))
            }
            walk(&tree, &segs)
        }
        DocumentSymbolResponse::Flat(flat) => {
            let (last, parents) = segs.split_last()?;
            flat.iter()
                .find(|s| {
                    s.name == *last
                        && parents.last().is_none_or(|p| {
                            s.container_name.as_deref().is_some_and(|c| named(c, p))
                        })
                })
                .map(|s| s.location.range.start)
        }
    }
}
