//! How `lsp_*` answers are shown: locations as `path:line:column` with the lines around them
//! (files outside the roots are named, never read), symbol kinds by name, hover text,
//! diagnostics.

use super::*;

pub(super) fn kind_name(k: SymbolKind) -> &'static str {
    const NAMES: [&str; 26] = [
        "file",
        "module",
        "namespace",
        "package",
        "class",
        "method",
        "property",
        "field",
        "constructor",
        "enum",
        "interface",
        "function",
        "variable",
        "constant",
        "string",
        "number",
        "boolean",
        "array",
        "object",
        "key",
        "null",
        "enum member",
        "struct",
        "event",
        "operator",
        "type parameter",
    ];
    let n: i32 = serde_json::to_value(k)
        .ok()
        .and_then(|v| v.as_i64())
        .unwrap_or(0) as i32;
    NAMES
        .get((n - 1).max(0) as usize)
        .copied()
        .unwrap_or("symbol")
}

/// Files read for snippets and column conversion, per call (only inside the roots).
pub(super) struct Files<'a> {
    call: &'a Call<'a>,
    texts: HashMap<PathBuf, Option<String>>,
}

impl<'a> Files<'a> {
    pub(super) fn new(call: &'a Call<'a>, r: Option<&Ready>) -> Files<'a> {
        let mut texts = HashMap::new();
        if let Some(r) = r {
            texts.insert(r.path.clone(), Some(r.text.clone()));
        }
        Files { call, texts }
    }

    /// The text of `path` when the roots admit it — resolved like every file tool's path
    /// (symlinks followed, whole components), so a link inside a root that points out of it is
    /// never read; `None` otherwise.
    pub(super) fn text(&mut self, path: &Path) -> Option<&str> {
        let call = self.call;
        self.texts
            .entry(path.to_path_buf())
            .or_insert_with(|| {
                let real = call.roots.resolve(path.to_str()?, Must::Exist).ok()?;
                std::fs::read_to_string(real).ok()
            })
            .as_deref()
    }

    pub(super) fn shown(&self, path: &Path) -> String {
        let root = self.call.roots.scope_root(path);
        match root.and_then(|r| path.strip_prefix(r).ok()) {
            Some(rel) => rel.display().to_string(),
            None => path.display().to_string(),
        }
    }

    /// A location as the tools show it; `name`/`kind` for symbols and calls.
    pub(super) fn location(
        &mut self,
        url: &Url,
        range: Range,
        enc: Encoding,
        name: Option<String>,
        kind: Option<String>,
    ) -> LocationOut {
        let path = url
            .to_file_path()
            .unwrap_or_else(|()| PathBuf::from(url.as_str()));
        let shown = self.shown(&path);
        let (mut line, mut col, mut eline, mut ecol) = (
            range.start.line + 1,
            range.start.character + 1,
            range.end.line + 1,
            range.end.character + 1,
        );
        let mut snippet = String::from("(outside the roots: not shown)");
        if let Some(text) = self.text(&path) {
            let c = |p: Position| to_chars(line_of(text, p.line), p.character, enc) as u32 + 1;
            (col, ecol) = (c(range.start), c(range.end));
            let all: Vec<&str> = text.split('\n').collect();
            let from = range.start.line.saturating_sub(1) as usize;
            let to = ((range.start.line + 1) as usize).min(all.len().saturating_sub(1));
            snippet = (from..=to)
                .filter_map(|i| {
                    all.get(i)
                        .map(|l| format!("{:>5} | {}", i + 1, l.trim_end_matches('\r')))
                })
                .collect::<Vec<_>>()
                .join("\n");
        }
        (line, eline) = (line.max(1), eline.max(line));
        LocationOut {
            path: shown,
            line,
            column: col,
            end_line: eline,
            end_column: ecol,
            name,
            kind,
            snippet,
        }
    }
}

pub(super) fn locations_output(what: &str, locs: Vec<LocationOut>) -> Output {
    let total = locs.len();
    let locs: Vec<LocationOut> = locs.into_iter().take(MAX_LOCATIONS).collect();
    let mut text = match total {
        0 => format!("No {what} found."),
        1 => format!("1 {what}:\n"),
        n => format!("{n} {what}s:\n"),
    };
    for l in &locs {
        let label = match (&l.kind, &l.name) {
            (Some(k), Some(n)) => format!(" — {k} {n}"),
            (None, Some(n)) => format!(" — {n}"),
            _ => String::new(),
        };
        text.push_str(&format!(
            "\n{}:{}:{}{label}\n{}\n",
            l.path, l.line, l.column, l.snippet
        ));
    }
    if total > locs.len() {
        text.push_str(&format!("\n({} more not listed)\n", total - locs.len()));
    }
    let structured = obj(vec![("locations", json!(locs))]);
    Output::text(text, structured)
}

pub(super) fn hover_text(h: Hover) -> String {
    let marked = |m: MarkedString| match m {
        MarkedString::String(s) => s,
        MarkedString::LanguageString(l) => format!("```{}\n{}\n```", l.language, l.value),
    };
    match h.contents {
        HoverContents::Markup(m) => m.value,
        HoverContents::Scalar(m) => marked(m),
        HoverContents::Array(v) => v.into_iter().map(marked).collect::<Vec<_>>().join("\n\n"),
    }
}

pub(super) fn severity(s: Option<lsp_types::DiagnosticSeverity>) -> &'static str {
    match s {
        Some(lsp_types::DiagnosticSeverity::WARNING) => "warning",
        Some(lsp_types::DiagnosticSeverity::INFORMATION) => "information",
        Some(lsp_types::DiagnosticSeverity::HINT) => "hint",
        _ => "error",
    }
}

pub(super) fn diagnostic_out(
    files: &mut Files<'_>,
    url: &Url,
    d: &lsp_types::Diagnostic,
    enc: Encoding,
) -> DiagnosticOut {
    let l = files.location(url, d.range, enc, None, None);
    DiagnosticOut {
        path: l.path,
        line: l.line,
        column: l.column,
        severity: severity(d.severity).into(),
        message: d.message.clone(),
        source: d.source.clone(),
        code: d.code.as_ref().map(|c| match c {
            lsp_types::NumberOrString::Number(n) => n.to_string(),
            lsp_types::NumberOrString::String(s) => s.clone(),
        }),
    }
}
