//! The `lsp_*` tools whose answers are edits — rename and code actions: the server's workspace
//! edit applied to the files' text in memory and shown as unified diffs; nothing is written.

use super::*;

/// A byte offset in `text` of an LSP position (clamped to the text).
pub(super) fn offset(text: &str, p: Position, enc: Encoding) -> usize {
    let mut start = 0usize;
    for _ in 0..p.line {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => return text.len(),
        }
    }
    let line = line_of(&text[start..], 0);
    let chars = to_chars(line, p.character, enc);
    start
        + line
            .char_indices()
            .nth(chars)
            .map(|(i, _)| i)
            .unwrap_or(line.len())
}

/// The unified diff of every file a workspace edit changes (files are read, never written), and
/// lines for its file operations (create, rename, delete).
pub(super) fn edit_diffs(
    files: &mut Files<'_>,
    edit: WorkspaceEdit,
    enc: Encoding,
) -> Result<(Vec<FileDiff>, Vec<String>), ToolError> {
    let mut per_file: Vec<(Url, Vec<lsp_types::TextEdit>)> = Vec::new();
    let mut ops = Vec::new();
    if let Some(changes) = edit.changes {
        per_file.extend(changes);
    }
    let add_doc = |e: lsp_types::TextDocumentEdit,
                   per_file: &mut Vec<(Url, Vec<lsp_types::TextEdit>)>| {
        let edits = e.edits.into_iter().map(|x| match x {
            lsp_types::OneOf::Left(t) => t,
            lsp_types::OneOf::Right(a) => a.text_edit,
        });
        per_file.push((e.text_document.uri, edits.collect()));
    };
    match edit.document_changes {
        Some(lsp_types::DocumentChanges::Edits(v)) => {
            v.into_iter().for_each(|e| add_doc(e, &mut per_file))
        }
        Some(lsp_types::DocumentChanges::Operations(v)) => {
            for op in v {
                match op {
                    lsp_types::DocumentChangeOperation::Edit(e) => add_doc(e, &mut per_file),
                    lsp_types::DocumentChangeOperation::Op(o) => ops.push(format!("{o:?}")),
                }
            }
        }
        None => {}
    }
    let mut out = Vec::new();
    for (url, mut edits) in per_file {
        let path = url
            .to_file_path()
            .map_err(|()| ToolError::Failed(format!("not a file: {url}")))?;
        let shown = files.shown(&path);
        let Some(old) = files.text(&path).map(str::to_string) else {
            return Err(ToolError::Refused {
                rule: "outside-roots",
                message: format!(
                    "the edit changes {}, which is outside the roots",
                    path.display()
                ),
            });
        };
        edits.sort_by_key(|e| std::cmp::Reverse((e.range.start.line, e.range.start.character)));
        let mut new = old.clone();
        for e in edits {
            let (a, b) = (
                offset(&new, e.range.start, enc),
                offset(&new, e.range.end, enc),
            );
            new.replace_range(a..b.max(a), &e.new_text);
        }
        out.push(FileDiff {
            path: shown.clone(),
            diff: crate::core::edit::unified_diff(&old, &new, &shown),
        });
    }
    Ok((out, ops))
}

pub(super) fn patch_output(head: String, diffs: Vec<FileDiff>) -> Output {
    let mut text = head;
    for d in &diffs {
        text.push_str(&d.diff);
        if !d.diff.ends_with('\n') {
            text.push('\n');
        }
    }
    Output::text(text, obj(vec![("files", json!(diffs))]))
}

pub(super) async fn rename(call: &Call<'_>, a: LspRename) -> Result<Output, ToolError> {
    let r = ready(call, &a.at.path).await?;
    let pos = position(&r, &a.at).await?;
    let edit = r
        .client
        .request::<req::Rename>(lsp_types::RenameParams {
            text_document_position: TextDocumentPositionParams::new(doc(&r), pos),
            new_name: a.new_name.clone(),
            work_done_progress_params: Default::default(),
        })
        .await
        .map_err(lsp_err)?
        .ok_or_else(|| ToolError::Failed("nothing to rename at that position".into()))?;
    let mut files = Files::new(call, Some(&r));
    let (diffs, ops) = edit_diffs(&mut files, edit, r.client.encoding)?;
    let mut head = format!(
        "Renaming to {:?} changes {} file{} (not applied; apply with edit_file or write_file):\n",
        a.new_name,
        diffs.len(),
        if diffs.len() == 1 { "" } else { "s" }
    );
    for o in ops {
        head.push_str(&format!("file operation: {o}\n"));
    }
    Ok(patch_output(head, diffs))
}

pub(super) async fn code_actions(call: &Call<'_>, at: LspAt) -> Result<Output, ToolError> {
    let r = ready(call, &at.path).await?;
    let pos = position(&r, &at).await?;
    let (published, _) = r
        .client
        .diagnostics(&r.url, r.version, std::time::Duration::ZERO)
        .await;
    let here: Vec<_> = published
        .into_iter()
        .filter(|d| d.range.start.line <= pos.line && pos.line <= d.range.end.line)
        .collect();
    let actions = r
        .client
        .request::<req::CodeActionRequest>(lsp_types::CodeActionParams {
            text_document: doc(&r),
            range: Range::new(pos, pos),
            context: lsp_types::CodeActionContext {
                diagnostics: here,
                only: None,
                trigger_kind: Some(lsp_types::CodeActionTriggerKind::INVOKED),
            },
            work_done_progress_params: Default::default(),
            partial_result_params: Default::default(),
        })
        .await
        .map_err(lsp_err)?
        .unwrap_or_default();
    let mut files = Files::new(call, Some(&r));
    let mut text = String::new();
    let mut all = Vec::new();
    for (i, a) in actions.into_iter().enumerate().take(30) {
        let CodeActionOrCommand::CodeAction(mut a) = a else {
            continue;
        };
        if a.edit.is_none()
            && a.data.is_some()
            && let Ok(resolved) = r
                .client
                .request::<req::CodeActionResolveRequest>(a.clone())
                .await
        {
            a = resolved;
        }
        let kind = a
            .kind
            .as_ref()
            .map(|k| format!(" ({})", k.as_str()))
            .unwrap_or_default();
        text.push_str(&format!("{}. {}{kind}\n", i + 1, a.title));
        if let Some(edit) = a.edit {
            let (diffs, _) = edit_diffs(&mut files, edit, r.client.encoding)?;
            for d in &diffs {
                text.push_str(&d.diff);
            }
            all.extend(diffs);
        } else {
            text.push_str("   (a command of the server, without an edit to show)\n");
        }
    }
    if text.is_empty() {
        text = "No code actions at that position.".into();
    }
    Ok(Output::text(text, obj(vec![("files", json!(all))])))
}
