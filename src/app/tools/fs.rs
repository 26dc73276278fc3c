//! The filesystem tools: argument struct → confinement (`workspace`) → the gate → the operation
//! (on a blocking thread) → text and structured output in the reference server's formats.
//!
//! Invariant: every path is resolved and checked before the gate is asked, and the gate is asked
//! before anything is read or written; `edit_file` writes nothing unless every edit applies.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::catalog::{self as tools, SortBy};
use super::{Call, Media, Output, ToolError, obj, parse};
use crate::core::edit::{self, Edit};
use crate::core::policy::Capability;
use crate::workspace::files::{self, Kind, WalkControl};
use crate::workspace::{FsError, Must, Roots};

/// Runs `f(roots)` on the blocking pool.
async fn blocking<T: Send + 'static>(
    roots: &Roots,
    f: impl FnOnce(&Roots) -> Result<T, FsError> + Send + 'static,
) -> Result<T, ToolError> {
    let roots = roots.clone();
    tokio::task::spawn_blocking(move || f(&roots))
        .await
        .map_err(|e| ToolError::Failed(format!("internal error: {e}")))?
        .map_err(ToolError::from)
}

/// Resolves `path` and passes the gate for the tool's capability in its project scope; a path a
/// writing tool names must not be protected.
async fn admit(call: &Call<'_>, path: &str, must: Must, what: &str) -> Result<PathBuf, ToolError> {
    let real = call.roots.resolve(path, must)?;
    if call.spec.cap == Capability::FsWrite {
        call.roots.check_writable(&real, path)?;
    }
    call.allow(&call.scope_for(&real), what).await?;
    Ok(real)
}

pub async fn run(call: &Call<'_>, name: &str, args: Value) -> Result<Output, ToolError> {
    match name {
        "read_text_file" | "read_file" => read_text_file(call, parse(name, args)?).await,
        "read_media_file" => read_media_file(call, parse(name, args)?).await,
        "read_multiple_files" => read_multiple_files(call, parse(name, args)?).await,
        "write_file" => write_file(call, parse(name, args)?).await,
        "edit_file" => edit_file(call, parse(name, args)?).await,
        "create_directory" => create_directory(call, parse(name, args)?).await,
        "list_directory" => list_directory(call, parse(name, args)?, false, SortBy::Name).await,
        "list_directory_with_sizes" => {
            let a: tools::ListWithSizes = parse(name, args)?;
            list_directory(call, tools::PathOnly { path: a.path }, true, a.sort_by).await
        }
        "directory_tree" => directory_tree(call, parse(name, args)?).await,
        "move_file" => move_file(call, parse(name, args)?).await,
        "search_files" => search_files(call, parse(name, args)?).await,
        "get_file_info" => get_file_info(call, parse(name, args)?).await,
        "list_allowed_directories" => {
            let _: tools::NoArgs = parse(name, args)?;
            let dirs: Vec<String> = call
                .roots
                .dirs()
                .iter()
                .map(|d| d.display().to_string())
                .collect();
            call.text(
                format!("Allowed directories:\n{}", dirs.join("\n")),
                obj(vec![("directories", json!(dirs))]),
            )
        }
        other => Err(ToolError::Failed(format!("no handler for {other}"))),
    }
}

async fn read_text_file(call: &Call<'_>, a: tools::ReadTextFile) -> Result<Output, ToolError> {
    if a.head.is_some() && a.tail.is_some() {
        return Err(ToolError::Failed(
            "Cannot specify both head and tail parameters simultaneously".into(),
        ));
    }
    admit(call, &a.path, Must::Exist, &format!("read {}", a.path)).await?;
    let path = a.path.clone();
    let (_, text) = blocking(&call.roots, move |r| files::read_text(r, &path)).await?;
    let text = match (a.head, a.tail) {
        (Some(n), _) => text.split_inclusive('\n').take(n as usize).collect(),
        (_, Some(n)) => {
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            lines[lines.len().saturating_sub(n as usize)..].concat()
        }
        _ => text,
    };
    call.text(text, Default::default())
}

/// The largest file `read_media_file` returns: base64 makes it a third larger, and one reply must
/// stay under the 16 MiB line the MCP stdio transports accept.
pub const MAX_MEDIA_BYTES: u64 = 8 * 1024 * 1024;

async fn read_media_file(call: &Call<'_>, a: tools::PathOnly) -> Result<Output, ToolError> {
    admit(call, &a.path, Must::Exist, &format!("read {}", a.path)).await?;
    let path = a.path.clone();
    let size = blocking(&call.roots, move |r| files::info(r, &path))
        .await?
        .size;
    if size > MAX_MEDIA_BYTES {
        return Err(ToolError::Failed(format!(
            "{} is {size} bytes; read_media_file returns at most {MAX_MEDIA_BYTES} bytes \
             (one reply must fit the transport)",
            a.path
        )));
    }
    let path = a.path.clone();
    let (real, bytes) = blocking(&call.roots, move |r| files::read(r, &path)).await?;
    if bytes.len() as u64 > MAX_MEDIA_BYTES {
        return Err(ToolError::Failed(format!(
            "{} grew past {MAX_MEDIA_BYTES} bytes while it was read",
            a.path
        )));
    }
    let uri = url::Url::from_file_path(&real)
        .map(|u| u.to_string())
        .unwrap_or_else(|_| format!("file://{}", real.display()));
    Ok(Output {
        media: Some(Media {
            bytes,
            mime: files::mime_type(&real).to_string(),
            uri,
        }),
        ..Output::default()
    })
}

async fn read_multiple_files(
    call: &Call<'_>,
    a: tools::ReadMultipleFiles,
) -> Result<Output, ToolError> {
    if a.paths.is_empty() {
        return Err(ToolError::Failed(
            "paths must name at least one file".into(),
        ));
    }
    let mut parts = Vec::new();
    let mut asked = BTreeSet::new();
    // one budget for the whole call: the same file named many times counts each time
    let budget = files::MAX_READ_BYTES;
    let mut used = 0u64;
    for p in &a.paths {
        let one = async {
            let real = call.roots.resolve(p, Must::Exist)?;
            let scope = call.scope_for(&real);
            if asked.insert(scope.clone()) {
                call.allow(&scope, &format!("read files in {}", scope.root.display()))
                    .await?;
            }
            let path = p.clone();
            let size = blocking(&call.roots, move |r| files::info(r, &path))
                .await?
                .size;
            if used + size > budget {
                return Err(ToolError::Failed(format!(
                    "skipped: this call has read {used} bytes and this file has {size}, over the \
                     {budget}-byte budget of one call; read it in another call"
                )));
            }
            let path = p.clone();
            blocking(&call.roots, move |r| files::read_text(r, &path)).await
        };
        match one.await {
            Ok((_, text)) => {
                used += text.len() as u64;
                parts.push(format!("{p}:\n{text}\n"))
            }
            Err(ToolError::Cancelled) => return Err(ToolError::Cancelled),
            Err(e) => parts.push(format!("{p}: Error - {e}")),
        }
    }
    call.text(parts.join("\n---\n"), Default::default())
}

async fn write_file(call: &Call<'_>, a: tools::WriteFile) -> Result<Output, ToolError> {
    admit(
        call,
        &a.path,
        Must::BeCreatable,
        &format!("write {} ({} bytes)", a.path, a.content.len()),
    )
    .await?;
    let (path, content) = (a.path.clone(), a.content);
    call.begin().await;
    blocking(&call.roots, move |r| {
        files::write(r, &path, content.as_bytes())
    })
    .await?;
    call.text(
        format!("Successfully wrote to {}", a.path),
        Default::default(),
    )
}

async fn edit_file(call: &Call<'_>, a: tools::EditFile) -> Result<Output, ToolError> {
    let real = call.roots.resolve(&a.path, Must::Exist)?;
    if !a.dry_run {
        call.roots.check_writable(&real, &a.path)?;
    }
    let scope = call.scope_for(&real);
    call.allow_as(Capability::FsRead, &scope, &format!("read {}", a.path))
        .await?;
    let edits: Vec<Edit> = a
        .edits
        .into_iter()
        .map(|e| Edit {
            old: e.old_text,
            new: e.new_text,
        })
        .collect();
    let count = edits.len();
    // reading, matching and diffing are CPU work: on the blocking pool, never an async worker
    let (path, shown) = (a.path.clone(), real.display().to_string());
    let (original, edited) = blocking(&call.roots, move |r| {
        let (_, original) = files::read_utf8(r, &path)?;
        let edited = edit::apply(&original, &edits, &shown)
            .map_err(|e| FsError::failed(format!("{path}: {e}; nothing was written")))?;
        Ok((original, edited))
    })
    .await?;
    let fenced = edit::fenced(&edited.diff);
    if !a.dry_run {
        call.allow(&scope, &format!("edit {} ({count} edit(s))", a.path))
            .await?;
        let path = a.path.clone();
        let text = edited.text;
        call.begin().await;
        blocking(&call.roots, move |r| {
            // the file must still hold what the edits were computed against
            let (_, now) = files::read_utf8(r, &path)?;
            if now != original {
                return Err(FsError::failed(format!(
                    "{path} changed while it was being edited; nothing was written, try again"
                )));
            }
            files::write(r, &path, text.as_bytes())
        })
        .await?;
    }
    call.text(fenced, obj(vec![("applied", json!(!a.dry_run))]))
}

async fn create_directory(call: &Call<'_>, a: tools::PathOnly) -> Result<Output, ToolError> {
    admit(
        call,
        &a.path,
        Must::BeCreatable,
        &format!("create the directory {}", a.path),
    )
    .await?;
    let path = a.path.clone();
    call.begin().await;
    blocking(&call.roots, move |r| files::create_dir(r, &path)).await?;
    call.text(
        format!("Successfully created directory {}", a.path),
        Default::default(),
    )
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::File => "file",
        Kind::Dir => "directory",
        Kind::Symlink => "symlink",
        Kind::Other => "other",
    }
}

fn size_text(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    if bytes == 0 {
        return "0 B".into();
    }
    let i = ((bytes as f64).ln() / 1024f64.ln()).floor() as usize;
    if i == 0 {
        return format!("{bytes} B");
    }
    let i = i.min(UNITS.len() - 1);
    format!("{:.2} {}", bytes as f64 / 1024f64.powi(i as i32), UNITS[i])
}

async fn list_directory(
    call: &Call<'_>,
    a: tools::PathOnly,
    sizes: bool,
    sort: SortBy,
) -> Result<Output, ToolError> {
    admit(call, &a.path, Must::Exist, &format!("list {}", a.path)).await?;
    let path = a.path.clone();
    let (_, mut entries) = blocking(&call.roots, move |r| files::list(r, &path)).await?;
    if sort == SortBy::Size {
        entries.sort_by(|x, y| y.size.cmp(&x.size).then_with(|| x.name.cmp(&y.name)));
    }
    let tag = |k: Kind| match k {
        Kind::Dir => "[DIR]",
        Kind::Symlink => "[LINK]",
        _ => "[FILE]",
    };
    let mut lines: Vec<String> = entries
        .iter()
        .map(|e| {
            if sizes {
                format!(
                    "{} {:<30} {}",
                    tag(e.kind),
                    e.name,
                    if e.kind == Kind::Dir {
                        String::new()
                    } else {
                        format!("{:>10}", size_text(e.size))
                    }
                )
            } else {
                format!("{} {}", tag(e.kind), e.name)
            }
        })
        .collect();
    let files_n = entries.iter().filter(|e| e.kind != Kind::Dir).count() as u64;
    let dirs_n = entries.len() as u64 - files_n;
    let total: u64 = entries
        .iter()
        .filter(|e| e.kind != Kind::Dir)
        .map(|e| e.size)
        .sum();
    if sizes {
        lines.extend([
            "".to_string(),
            format!("Total: {files_n} files, {dirs_n} directories"),
            format!("Combined size: {}", size_text(total)),
        ]);
    }
    let items: Vec<Value> = entries
        .iter()
        .map(|e| {
            if sizes {
                json!({"name": e.name, "type": kind_name(e.kind), "size": e.size})
            } else {
                json!({"name": e.name, "type": kind_name(e.kind)})
            }
        })
        .collect();
    let mut extra = obj(vec![("entries", Value::Array(items))]);
    if sizes {
        extra.extend(obj(vec![
            ("totalFiles", json!(files_n)),
            ("totalDirs", json!(dirs_n)),
            ("totalSize", json!(total)),
        ]));
    }
    call.text(lines.join("\n"), extra)
}

async fn directory_tree(call: &Call<'_>, a: tools::DirectoryTree) -> Result<Output, ToolError> {
    admit(
        call,
        &a.path,
        Must::Exist,
        &format!("list the tree under {}", a.path),
    )
    .await?;
    let ex = files::excludes(&a.exclude_patterns)?;
    let ct = call.ct.clone();
    let progress = call.progress_fn("directory_tree");
    let path = a.path.clone();
    let nodes = blocking(&call.roots, move |r| {
        let mut nodes: Vec<(usize, String, Kind)> = Vec::new();
        let cancelled = move || ct.is_cancelled();
        let ctl = WalkControl {
            cancelled: &cancelled,
            progress: &progress,
        };
        files::walk(r, &path, &ex, &ctl, |rel, depth, kind| {
            nodes.push((
                depth,
                rel.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                kind,
            ));
            true
        })?;
        Ok(nodes)
    })
    .await?;
    let mut i = 0;
    let tree = build_tree(&nodes, &mut i, 1);
    call.text(
        serde_json::to_string_pretty(&tree).unwrap_or_default(),
        Default::default(),
    )
}

/// Nested `{name, type, children}` from a depth-first, pre-order list of (depth, name, kind).
fn build_tree(nodes: &[(usize, String, Kind)], i: &mut usize, depth: usize) -> Value {
    let mut out = Vec::new();
    while *i < nodes.len() && nodes[*i].0 == depth {
        let (_, name, kind) = &nodes[*i];
        *i += 1;
        if *kind == Kind::Dir {
            let children = build_tree(nodes, i, depth + 1);
            out.push(json!({"name": name, "type": "directory", "children": children}));
        } else {
            out.push(json!({"name": name, "type": "file"}));
        }
    }
    Value::Array(out)
}

async fn move_file(call: &Call<'_>, a: tools::MoveFile) -> Result<Output, ToolError> {
    let src = call.roots.resolve(&a.source, Must::Exist)?;
    let dst = call.roots.resolve(&a.destination, Must::BeCreatable)?;
    call.roots.check_move(&src, &a.source)?;
    call.roots.check_move(&dst, &a.destination)?;
    let what = format!("move {} to {}", a.source, a.destination);
    let (s1, s2) = (call.scope_for(&src), call.scope_for(&dst));
    call.allow(&s1, &what).await?;
    if s2 != s1 {
        call.allow(&s2, &what).await?;
    }
    let (s, d) = (a.source.clone(), a.destination.clone());
    call.begin().await;
    blocking(&call.roots, move |r| files::rename(r, &s, &d)).await?;
    call.text(
        format!("Successfully moved {} to {}", a.source, a.destination),
        Default::default(),
    )
}

async fn search_files(call: &Call<'_>, a: tools::SearchFiles) -> Result<Output, ToolError> {
    admit(call, &a.path, Must::Exist, &format!("search {}", a.path)).await?;
    let ex = files::excludes(&a.exclude_patterns)?;
    let by_name = !a.pattern.contains('/');
    let glob = globset::GlobBuilder::new(a.pattern.trim_start_matches("./"))
        .literal_separator(true)
        .build()
        .map_err(|e| ToolError::Failed(format!("pattern {:?}: {e}", a.pattern)))?
        .compile_matcher();
    let ct = call.ct.clone();
    let progress = call.progress_fn("search_files");
    let path = a.path.clone();
    let matches = blocking(&call.roots, move |r| {
        let mut rels: Vec<PathBuf> = Vec::new();
        let cancelled = move || ct.is_cancelled();
        let ctl = WalkControl {
            cancelled: &cancelled,
            progress: &progress,
        };
        let base = files::walk(r, &path, &ex, &ctl, |rel, _, _| {
            let hit = if by_name {
                rel.file_name().is_some_and(|n| glob.is_match(Path::new(n)))
            } else {
                glob.is_match(rel)
            };
            if hit {
                rels.push(rel.to_path_buf());
            }
            true
        })?;
        Ok(rels
            .into_iter()
            .map(|p| base.join(p).display().to_string())
            .collect::<Vec<_>>())
    })
    .await?;
    let text = if matches.is_empty() {
        "No matches found".to_string()
    } else {
        matches.join("\n")
    };
    call.text(text, obj(vec![("matches", json!(matches))]))
}

async fn get_file_info(call: &Call<'_>, a: tools::PathOnly) -> Result<Output, ToolError> {
    admit(
        call,
        &a.path,
        Must::Exist,
        &format!("read the metadata of {}", a.path),
    )
    .await?;
    let path = a.path.clone();
    let i = blocking(&call.roots, move |r| files::info(r, &path)).await?;
    let t = |x: Option<std::time::SystemTime>| x.map(files::iso8601);
    let perms = format!("{:03o}", i.mode & 0o777);
    let fields = obj(vec![
        ("size", json!(i.size)),
        ("created", json!(t(i.created))),
        ("modified", json!(t(i.modified))),
        ("accessed", json!(t(i.accessed))),
        ("isDirectory", json!(i.kind == Kind::Dir)),
        ("isFile", json!(i.kind == Kind::File)),
        ("isSymlink", json!(i.kind == Kind::Symlink)),
        ("permissions", json!(perms)),
    ]);
    let text = fields
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}: {}",
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    call.text(text, fields)
}
