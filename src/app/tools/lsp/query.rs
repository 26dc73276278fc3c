//! The read-only `lsp_*` queries: definitions, references, hover, diagnostics, symbols, calls.

use super::*;

pub(super) async fn goto<R>(call: &Call<'_>, at: LspAt) -> Result<Output, ToolError>
where
    R: lsp_types::request::Request<
            Params = lsp_types::GotoDefinitionParams,
            Result = Option<GotoDefinitionResponse>,
        >,
{
    let r = ready(call, &at.path).await?;
    let pos = position(&r, &at).await?;
    let answer = r
        .client
        .request::<R>(lsp_types::GotoDefinitionParams {
            text_document_position_params: TextDocumentPositionParams::new(doc(&r), pos),
            work_done_progress_params: Default::default(),
            partial_result_params: Default::default(),
        })
        .await
        .map_err(lsp_err)?;
    let targets: Vec<(Url, Range)> = match answer {
        None => vec![],
        Some(GotoDefinitionResponse::Scalar(l)) => vec![(l.uri, l.range)],
        Some(GotoDefinitionResponse::Array(v)) => v.into_iter().map(|l| (l.uri, l.range)).collect(),
        Some(GotoDefinitionResponse::Link(v)) => v
            .into_iter()
            .map(|l| (l.target_uri, l.target_selection_range))
            .collect(),
    };
    let mut files = Files::new(call, Some(&r));
    let enc = r.client.encoding;
    let locs = targets
        .into_iter()
        .map(|(u, range)| files.location(&u, range, enc, None, None))
        .collect();
    let what = match R::METHOD {
        "textDocument/typeDefinition" => "type definition",
        "textDocument/implementation" => "implementation",
        _ => "definition",
    };
    Ok(locations_output(what, locs))
}

pub(super) async fn references(call: &Call<'_>, a: LspReferences) -> Result<Output, ToolError> {
    let r = ready(call, &a.at.path).await?;
    let pos = position(&r, &a.at).await?;
    let answer = r
        .client
        .request::<req::References>(lsp_types::ReferenceParams {
            text_document_position: TextDocumentPositionParams::new(doc(&r), pos),
            work_done_progress_params: Default::default(),
            partial_result_params: Default::default(),
            context: lsp_types::ReferenceContext {
                include_declaration: a.include_declaration.unwrap_or(true),
            },
        })
        .await
        .map_err(lsp_err)?
        .unwrap_or_default();
    let mut files = Files::new(call, Some(&r));
    let enc = r.client.encoding;
    let locs = answer
        .into_iter()
        .map(|l| files.location(&l.uri, l.range, enc, None, None))
        .collect();
    Ok(locations_output("reference", locs))
}

pub(super) async fn hover(call: &Call<'_>, at: LspAt) -> Result<Output, ToolError> {
    let r = ready(call, &at.path).await?;
    let pos = position(&r, &at).await?;
    let answer = r
        .client
        .request::<req::HoverRequest>(lsp_types::HoverParams {
            text_document_position_params: TextDocumentPositionParams::new(doc(&r), pos),
            work_done_progress_params: Default::default(),
        })
        .await
        .map_err(lsp_err)?;
    let Some(h) = answer else {
        return Ok(Output::text(
            "Nothing to show at that position (no symbol there).".into(),
            obj(vec![("locations", json!([]))]),
        ));
    };
    let range = h.range;
    let text = hover_text(h);
    let mut files = Files::new(call, Some(&r));
    let locs: Vec<LocationOut> = range
        .map(|rg| files.location(&r.url, rg, r.client.encoding, None, None))
        .into_iter()
        .collect();
    Ok(Output::text(text, obj(vec![("locations", json!(locs))])))
}

pub(super) async fn diagnostics(call: &Call<'_>, a: LspDiagnostics) -> Result<Output, ToolError> {
    let (list, fresh) = match &a.path {
        Some(p) => {
            let r = ready(call, p).await?;
            let (d, fresh) = r
                .client
                .diagnostics(&r.url, r.version, call.settings.lsp.wait)
                .await;
            let mut files = Files::new(call, Some(&r));
            let enc = r.client.encoding;
            (
                d.iter()
                    .map(|d| diagnostic_out(&mut files, &r.url, d, enc))
                    .collect::<Vec<_>>(),
                fresh,
            )
        }
        None => {
            let mut out = Vec::new();
            for root in call.roots.dirs() {
                let scope = call.scope_for(root);
                call.allow(
                    &scope,
                    &format!("ask the language servers about {}", root.display()),
                )
                .await?;
                let mut running = POOL.running(&scope.root);
                if running.is_empty()
                    && let Some(conf) = language_of_root(&scope.root)
                        .and_then(|l| call.settings.lsp.servers.get(l))
                        .filter(|s| s.enabled)
                {
                    let c = server(call, &scope.root, conf).await?;
                    running.push((conf.language.clone(), c));
                }
                let mut files = Files::new(call, None);
                for (_, c) in running {
                    c.wait_ready(call.settings.lsp.wait)
                        .await
                        .map_err(lsp_err)?;
                    for (url, ds) in c.all_diagnostics() {
                        out.extend(
                            ds.iter()
                                .map(|d| diagnostic_out(&mut files, &url, d, c.encoding)),
                        );
                    }
                }
            }
            (out, true)
        }
    };
    let mut text = if list.is_empty() {
        "No diagnostics.".to_string()
    } else {
        format!(
            "{} diagnostic{}:\n",
            list.len(),
            if list.len() == 1 { "" } else { "s" }
        )
    };
    for d in &list {
        let tail = match (&d.source, &d.code) {
            (Some(s), Some(c)) => format!(" [{s} {c}]"),
            (Some(s), None) => format!(" [{s}]"),
            (None, Some(c)) => format!(" [{c}]"),
            (None, None) => String::new(),
        };
        text.push_str(&format!(
            "{}:{}:{}: {}: {}{tail}\n",
            d.path, d.line, d.column, d.severity, d.message
        ));
    }
    if !fresh {
        text.push_str("\n(the server had not yet published diagnostics for the file as it is now; these are its latest)\n");
    }
    Ok(Output::text(
        text,
        obj(vec![("diagnostics", json!(list)), ("fresh", json!(fresh))]),
    ))
}

pub(super) async fn document_symbols(
    call: &Call<'_>,
    a: LspDiagnostics,
) -> Result<Output, ToolError> {
    let Some(path) = a.path else {
        return Err(ToolError::Failed("give the file's path".into()));
    };
    let r = ready(call, &path).await?;
    let answer = r
        .client
        .request::<req::DocumentSymbolRequest>(lsp_types::DocumentSymbolParams {
            text_document: doc(&r),
            work_done_progress_params: Default::default(),
            partial_result_params: Default::default(),
        })
        .await
        .map_err(lsp_err)?;
    let mut files = Files::new(call, Some(&r));
    let enc = r.client.encoding;
    let mut locs = Vec::new();
    let mut tree = String::new();
    match answer {
        Some(DocumentSymbolResponse::Nested(v)) => {
            fn walk(
                nodes: &[DocumentSymbol],
                depth: usize,
                r: &Ready,
                files: &mut Files<'_>,
                enc: Encoding,
                tree: &mut String,
                locs: &mut Vec<LocationOut>,
            ) {
                for n in nodes {
                    let l = files.location(
                        &r.url,
                        n.selection_range,
                        enc,
                        Some(n.name.clone()),
                        Some(kind_name(n.kind).into()),
                    );
                    tree.push_str(&format!(
                        "{}{} {} (line {})\n",
                        "  ".repeat(depth),
                        kind_name(n.kind),
                        n.name,
                        l.line
                    ));
                    locs.push(l);
                    walk(
                        n.children.as_deref().unwrap_or(&[]),
                        depth + 1,
                        r,
                        files,
                        enc,
                        tree,
                        locs,
                    );
                }
            }
            walk(&v, 0, &r, &mut files, enc, &mut tree, &mut locs);
        }
        Some(DocumentSymbolResponse::Flat(v)) => {
            for s in v {
                let l = files.location(
                    &s.location.uri,
                    s.location.range,
                    enc,
                    Some(s.name.clone()),
                    Some(kind_name(s.kind).into()),
                );
                tree.push_str(&format!(
                    "{} {} (line {})\n",
                    kind_name(s.kind),
                    s.name,
                    l.line
                ));
                locs.push(l);
            }
        }
        None => {}
    }
    if tree.is_empty() {
        tree = "No symbols.".into();
    }
    Ok(Output::text(tree, obj(vec![("locations", json!(locs))])))
}

pub(super) async fn workspace_symbols(call: &Call<'_>, a: LspQuery) -> Result<Output, ToolError> {
    // the server: the language of `path` when it is a file, else the root's
    let base = match &a.path {
        Some(p) => call.roots.resolve(p, Must::Exist)?,
        None => call
            .roots
            .dirs()
            .first()
            .cloned()
            .ok_or_else(|| ToolError::Failed("no roots".into()))?,
    };
    let scope = call.scope_for(&base);
    call.allow(
        &scope,
        &format!("search the symbols of {}", scope.root.display()),
    )
    .await?;
    let cfg = &call.settings.lsp;
    let conf = if base.is_file() {
        cfg.server_for(&base)
    } else {
        POOL.running(&scope.root)
            .first()
            .and_then(|(l, _)| cfg.servers.get(l))
            .or_else(|| language_of_root(&scope.root).and_then(|l| cfg.servers.get(l)))
    }
    .filter(|s| s.enabled)
    .ok_or_else(|| {
        ToolError::Failed(format!(
            "no language server found for {} (give a source file as path)",
            base.display()
        ))
    })?;
    let client = server(call, &scope.root, conf).await?;
    let answer = client
        .request::<req::WorkspaceSymbolRequest>(lsp_types::WorkspaceSymbolParams {
            query: a.query.clone(),
            work_done_progress_params: Default::default(),
            partial_result_params: Default::default(),
        })
        .await
        .map_err(lsp_err)?;
    let mut files = Files::new(call, None);
    let enc = client.encoding;
    let locs = match answer {
        None => vec![],
        Some(lsp_types::WorkspaceSymbolResponse::Flat(v)) => v
            .into_iter()
            .map(|s| {
                files.location(
                    &s.location.uri,
                    s.location.range,
                    enc,
                    Some(s.name),
                    Some(kind_name(s.kind).into()),
                )
            })
            .collect(),
        Some(lsp_types::WorkspaceSymbolResponse::Nested(v)) => v
            .into_iter()
            .map(|s| {
                let (uri, range) = match s.location {
                    lsp_types::OneOf::Left(l) => (l.uri, l.range),
                    lsp_types::OneOf::Right(w) => (w.uri, Range::default()),
                };
                files.location(
                    &uri,
                    range,
                    enc,
                    Some(s.name),
                    Some(kind_name(s.kind).into()),
                )
            })
            .collect(),
    };
    Ok(locations_output("symbol", locs))
}

pub(super) async fn calls(call: &Call<'_>, at: LspAt, incoming: bool) -> Result<Output, ToolError> {
    let r = ready(call, &at.path).await?;
    let pos = position(&r, &at).await?;
    let items: Vec<CallHierarchyItem> = r
        .client
        .request::<req::CallHierarchyPrepare>(CallHierarchyPrepareParams {
            text_document_position_params: TextDocumentPositionParams::new(doc(&r), pos),
            work_done_progress_params: Default::default(),
        })
        .await
        .map_err(lsp_err)?
        .unwrap_or_default();
    let mut files = Files::new(call, Some(&r));
    let enc = r.client.encoding;
    let mut locs = Vec::new();
    for item in items {
        if incoming {
            let v = r
                .client
                .request::<req::CallHierarchyIncomingCalls>(
                    lsp_types::CallHierarchyIncomingCallsParams {
                        item,
                        work_done_progress_params: Default::default(),
                        partial_result_params: Default::default(),
                    },
                )
                .await
                .map_err(lsp_err)?
                .unwrap_or_default();
            for c in v {
                let at = c
                    .from_ranges
                    .first()
                    .copied()
                    .unwrap_or(c.from.selection_range);
                locs.push(files.location(
                    &c.from.uri,
                    at,
                    enc,
                    Some(c.from.name),
                    Some(kind_name(c.from.kind).into()),
                ));
            }
        } else {
            let v = r
                .client
                .request::<req::CallHierarchyOutgoingCalls>(
                    lsp_types::CallHierarchyOutgoingCallsParams {
                        item,
                        work_done_progress_params: Default::default(),
                        partial_result_params: Default::default(),
                    },
                )
                .await
                .map_err(lsp_err)?
                .unwrap_or_default();
            for c in v {
                locs.push(files.location(
                    &c.to.uri,
                    c.to.selection_range,
                    enc,
                    Some(c.to.name),
                    Some(kind_name(c.to.kind).into()),
                ));
            }
        }
    }
    Ok(locations_output(
        if incoming { "caller" } else { "callee" },
        locs,
    ))
}
