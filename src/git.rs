//! The git edge: the reference git server's operations, run through the `git` CLI via [`sys`].
//!
//! Invariants:
//! - A repository is opened only when its `repo_path` resolves inside the roots and its work-tree
//!   top level does too (rule `repo-outside-roots`), so git never walks up into a repository that
//!   encloses a root; and only when its config includes no file the tools could write (rule
//!   `repo-config-include`).
//! - No caller value can become a git option: values starting with `-` are refused (rule
//!   `git-option`), and revisions/paths are placed after `--end-of-options` or `--`.
//! - `git_add` paths must resolve inside the repository (rule `outside-repo`); symlinks are staged
//!   as links (only their parent directory is resolved).
//! - git runs with hooks, fsmonitor and commit signing disabled (each could run a program named in
//!   the repository's config), with `safe.bareRepository=explicit` (a directory a client filled
//!   with `HEAD`, `objects/`, `refs/` and a `config` is not a repository), no external diff or textconv, no pager or prompt, `LC_ALL=C`, and
//!   without inherited `GIT_DIR`-style location variables. The file tools refuse writes inside
//!   `.git`, so a client cannot plant such config (`workspace::Roots::check_writable`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::sys;
use crate::workspace::{FsError, Must, Roots};

/// How long one git command may run.
const TIMEOUT: Duration = Duration::from_secs(60);

const SAFE: &[&str] = &[
    "-c",
    "core.fsmonitor=false",
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "color.ui=false",
    "-c",
    "core.pager=cat",
    "-c",
    "advice.detachedHead=false",
    "-c",
    "commit.gpgSign=false",
    "-c",
    "tag.gpgSign=false",
    // a directory that merely looks like a repository (HEAD, objects/, refs/, config — files any
    // client may write) is never taken for one: only real `.git` directories count, so a client
    // cannot make a repository whose config names programs or borrows another's objects
    "-c",
    "safe.bareRepository=explicit",
];

const ENV: sys::Env<'static> = sys::Env {
    remove: &[
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_COMMON_DIR",
        "GIT_NAMESPACE",
        "GIT_EXTERNAL_DIFF",
        "GIT_CEILING_DIRECTORIES",
    ],
    set: &[
        ("LC_ALL", "C"),
        ("GIT_TERMINAL_PROMPT", "0"),
        ("GIT_PAGER", "cat"),
        ("GIT_EDITOR", "true"),
        ("GIT_OPTIONAL_LOCKS", "0"),
    ],
};

/// The git config files that live outside any repository and so outside `.git`: the system file
/// (`$GIT_CONFIG_SYSTEM`, else `/etc/gitconfig`), `$GIT_CONFIG_GLOBAL` (else `~/.gitconfig`), `$XDG_CONFIG_HOME/git/config` (else
/// `~/.config/git/config`), and every file they include (`include.path`, `includeIf.*.path`,
/// relative to the including file, `~/` expanded; followed 10 levels deep), as git reads them
/// (`git config --file F --get-regexp`). Listed whether or not they exist: creating one counts.
pub async fn config_files_outside_repos() -> Vec<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let env_path = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let mut todo: Vec<(PathBuf, u32)> = Vec::new();
    todo.push((
        env_path("GIT_CONFIG_SYSTEM").unwrap_or_else(|| PathBuf::from("/etc/gitconfig")),
        0,
    ));
    match env_path("GIT_CONFIG_GLOBAL") {
        Some(p) => todo.push((p, 0)),
        None => todo.extend(home.iter().map(|h| (h.join(".gitconfig"), 0))),
    }
    if let Some(base) =
        env_path("XDG_CONFIG_HOME").or_else(|| home.as_ref().map(|h| h.join(".config")))
    {
        todo.push((base.join("git").join("config"), 0));
    }
    with_includes(todo.into_iter().map(|(f, _)| f).collect()).await
}

/// `files` and every file they include (`include.path`, `includeIf.*.path`, relative to the
/// including file, `~/` expanded; followed 10 levels deep), as git reads them.
async fn with_includes(files: Vec<PathBuf>) -> Vec<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut todo: Vec<(PathBuf, u32)> = files.into_iter().map(|f| (f, 0)).collect();
    let mut out: Vec<PathBuf> = Vec::new();
    while let Some((file, depth)) = todo.pop() {
        if out.contains(&file) || file == Path::new("/dev/null") {
            continue;
        }
        out.push(file.clone());
        if depth >= 10 || !file.is_file() {
            continue;
        }
        let f = file.display().to_string();
        // --null: records are `key\nvalue\0`, since an includeIf condition may hold spaces
        let args = [
            "config",
            "--null",
            "--file",
            f.as_str(),
            "--get-regexp",
            r"^include(if\..*)?\.path$",
        ];
        let Ok(o) = sys::run_env("git", &args, None, &ENV, TIMEOUT).await else {
            continue;
        };
        for record in o.stdout.split('\0') {
            let Some((_, value)) = record.split_once('\n') else {
                continue;
            };
            let inc = match (value.strip_prefix("~/"), &home) {
                (Some(rest), Some(h)) => h.join(rest),
                _ => PathBuf::from(value),
            };
            let inc = if inc.is_absolute() {
                inc
            } else {
                file.parent().unwrap_or(Path::new("/")).join(inc)
            };
            todo.push((inc, depth + 1));
        }
    }
    out
}

/// An opened repository: its canonical work-tree top level, inside the roots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    pub top: PathBuf,
}

/// Refuses a caller value that git could read as an option.
pub fn no_option(what: &str, value: &str) -> Result<(), FsError> {
    if value.starts_with('-') {
        return Err(FsError::refused(
            "git-option",
            format!("{what} {value:?} starts with '-', which git would read as an option"),
        ));
    }
    Ok(())
}

/// Runs `git SAFE… args…` in `cwd`; a non-zero exit is an error carrying git's stderr.
async fn git(cwd: &Path, args: &[&str]) -> Result<String, FsError> {
    let mut all: Vec<&str> = SAFE.to_vec();
    all.extend_from_slice(args);
    let out = sys::run_env("git", &all, Some(cwd), &ENV, TIMEOUT)
        .await
        .map_err(|e| FsError::failed(e.to_string()))?;
    if out.status != Some(0) {
        let msg = if out.stderr.trim().is_empty() {
            out.stdout.trim()
        } else {
            out.stderr.trim()
        };
        return Err(FsError::failed(format!(
            "git {} failed: {msg}",
            args.first().copied().unwrap_or("")
        )));
    }
    Ok(out.stdout)
}

/// Opens the repository at `repo_path` (see the module invariants).
pub async fn open(roots: &Roots, repo_path: &str) -> Result<Repo, FsError> {
    let real = roots.resolve(repo_path, Must::Exist)?;
    if !real.is_dir() {
        return Err(FsError::failed(format!("{repo_path} is not a directory")));
    }
    let found = git(&real, &["rev-parse", "--show-toplevel", "--git-common-dir"])
        .await
        .map_err(|_| FsError::failed(format!("{repo_path} is not inside a git repository")))?;
    let mut lines = found.lines();
    let top = lines.next().unwrap_or("").trim().to_string();
    let common = lines.next().unwrap_or("").trim().to_string();
    let top = std::fs::canonicalize(&top).map_err(|e| FsError::io(Path::new(&top), e))?;
    if roots.containing(&top).is_none() {
        return Err(FsError::refused(
            "repo-outside-roots",
            format!(
                "{repo_path} belongs to the repository at {}, which is outside the allowed roots ({})",
                top.display(),
                roots.list()
            ),
        ));
    }
    let common = if Path::new(&common).is_absolute() {
        PathBuf::from(&common)
    } else {
        real.join(&common)
    };
    refuse_writable_includes(roots, &common.join("config")).await?;
    Ok(Repo { top })
}

/// Whether a process named `git` has its working directory in (or under) `top`.
fn git_running_in(top: &Path) -> bool {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return true; // cannot tell: assume one does
    };
    procs.flatten().any(|p| {
        let dir = p.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        comm.trim() == "git"
            && std::fs::read_link(dir.join("cwd")).is_ok_and(|cwd| cwd.starts_with(top))
    })
}

/// Includes of repository configs already checked, by config file and its modification time.
static CHECKED: std::sync::Mutex<
    Option<std::collections::HashMap<PathBuf, std::time::SystemTime>>,
> = std::sync::Mutex::new(None);

/// Refuses a repository whose config includes a file the tools could write (inside the roots,
/// outside `.git`): a client could put a filter or other program there for git to run
/// (rule `repo-config-include`). The user's own config outside the roots is theirs to include.
async fn refuse_writable_includes(roots: &Roots, config: &Path) -> Result<(), FsError> {
    let stamp = std::fs::metadata(config).and_then(|m| m.modified()).ok();
    let key = std::fs::canonicalize(config).unwrap_or_else(|_| config.to_path_buf());
    if let Some(t) = stamp
        && CHECKED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(|m| m.get(&key))
            == Some(&t)
    {
        return Ok(());
    }
    for inc in with_includes(vec![key.clone()]).await.into_iter().skip(1) {
        let real = std::fs::canonicalize(&inc).unwrap_or_else(|_| inc.clone());
        let in_git = real.components().any(|c| c.as_os_str() == ".git");
        if roots.containing(&real).is_some() && !in_git {
            return Err(FsError::refused(
                "repo-config-include",
                format!(
                    "the repository's config ({}) includes {}, a file inside the roots that tools can write; git would take programs from it. Move that file outside the roots or drop the include",
                    key.display(),
                    real.display()
                ),
            ));
        }
    }
    if let Some(t) = stamp {
        CHECKED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(Default::default)
            .insert(key, t);
    }
    Ok(())
}

/// How old an `index.lock` must be before Zeke may call it stale.
const STALE_LOCK_AGE: Duration = Duration::from_secs(10);

impl Repo {
    async fn run(&self, args: &[&str]) -> Result<String, FsError> {
        git(&self.top, args).await
    }

    /// Before a git write: removes `.git/index.lock` when a git that was killed left it behind —
    /// it is older than [`STALE_LOCK_AGE`] and no `git` process on this machine works in this
    /// repository (`/proc/*/comm` and `/proc/*/cwd`). A lock some git still holds (the user's own
    /// `git commit` waiting for an editor, say) is left alone, and git's own error says so.
    async fn clear_stale_lock(&self) {
        let top = self.top.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let lock = top.join(".git").join("index.lock");
            let Ok(meta) = std::fs::symlink_metadata(&lock) else {
                return;
            };
            let old = meta
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|age| age >= STALE_LOCK_AGE);
            if !meta.is_file() || !old || git_running_in(&top) {
                return;
            }
            match std::fs::remove_file(&lock) {
                Ok(()) => tracing::warn!(lock = %lock.display(), "removed a stale index.lock (no git runs in this repository)"),
                Err(e) => tracing::warn!(lock = %lock.display(), %e, "cannot remove a stale index.lock"),
            }
        })
        .await;
    }

    pub async fn status(&self) -> Result<String, FsError> {
        self.run(&["status"]).await
    }

    pub async fn diff_unstaged(&self, context: u32) -> Result<String, FsError> {
        self.run(&[
            "diff",
            "--no-ext-diff",
            "--no-textconv",
            &format!("--unified={context}"),
        ])
        .await
    }

    pub async fn diff_staged(&self, context: u32) -> Result<String, FsError> {
        self.run(&[
            "diff",
            "--no-ext-diff",
            "--no-textconv",
            "--cached",
            &format!("--unified={context}"),
        ])
        .await
    }

    pub async fn diff(&self, target: &str, context: u32) -> Result<String, FsError> {
        no_option("target", target)?;
        self.run(&[
            "diff",
            "--no-ext-diff",
            "--no-textconv",
            &format!("--unified={context}"),
            "--end-of-options",
            target,
            "--",
        ])
        .await
    }

    /// Commits what is staged; refuses an empty commit (git's own check).
    pub async fn commit(&self, message: &str) -> Result<String, FsError> {
        self.clear_stale_lock().await;
        if message.trim().is_empty() {
            return Err(FsError::failed("the commit message is empty"));
        }
        self.run(&[
            "commit",
            "--no-verify",
            "--quiet",
            &format!("--message={message}"),
        ])
        .await?;
        let sha = self.run(&["rev-parse", "HEAD"]).await?;
        Ok(format!(
            "Changes committed successfully with hash {}",
            sha.trim()
        ))
    }

    /// Stages `files` (relative to the repository top or absolute, each inside the repository);
    /// `["."]` stages everything.
    pub async fn add(&self, roots: &Roots, files: &[String]) -> Result<String, FsError> {
        self.clear_stale_lock().await;
        if files.is_empty() {
            return Err(FsError::failed(
                "no files given; pass one or more paths, or [\".\"] to stage everything",
            ));
        }
        let mut rels = Vec::new();
        for f in files {
            no_option("file", f)?;
            if f == "." {
                rels.push(".".to_string());
                continue;
            }
            rels.push(self.check_inside(roots, f)?);
        }
        let mut args = vec!["add", "--"];
        args.extend(rels.iter().map(String::as_str));
        self.run(&args).await?;
        Ok(format!("Files staged successfully: {}", rels.join(", ")))
    }

    /// `f` relative to the top level, after checking that its parent resolves inside the repo
    /// (rule `outside-repo` otherwise).
    pub fn check_inside(&self, roots: &Roots, f: &str) -> Result<String, FsError> {
        let abs = if Path::new(f).is_absolute() {
            PathBuf::from(f)
        } else {
            self.top.join(f)
        };
        let abs = PathBuf::from(abs.to_string_lossy().trim_end_matches('/'));
        let outside = || {
            FsError::refused(
                "outside-repo",
                format!("{f} is outside the repository {}", self.top.display()),
            )
        };
        let (Some(parent), Some(name)) = (abs.parent(), abs.file_name()) else {
            return Err(outside());
        };
        if !matches!(
            abs.components().next_back(),
            Some(std::path::Component::Normal(_))
        ) {
            return Err(outside());
        }
        let real_parent = match roots.resolve(&parent.to_string_lossy(), Must::Exist) {
            Ok(p) => p,
            Err(FsError::Refused { .. }) => return Err(outside()),
            Err(e) => return Err(e),
        };
        let rel = real_parent
            .strip_prefix(&self.top)
            .map_err(|_| outside())?
            .join(name);
        if rel
            .components()
            .next()
            .is_some_and(|c| c.as_os_str() == ".git")
        {
            return Err(FsError::refused(
                "outside-repo",
                format!("{f} is inside .git"),
            ));
        }
        Ok(rel.to_string_lossy().into_owned())
    }

    /// Unstages everything (the index goes back to HEAD; the work tree is untouched).
    pub async fn reset(&self) -> Result<String, FsError> {
        self.clear_stale_lock().await;
        self.run(&["reset", "--quiet"]).await?;
        Ok("All staged changes reset".into())
    }

    /// At most `max_count` commits, newest first, optionally within `since`..`until` (git date
    /// syntax: ISO 8601, `2 weeks ago`, `yesterday`).
    pub async fn log(
        &self,
        max_count: u32,
        since: Option<&str>,
        until: Option<&str>,
    ) -> Result<String, FsError> {
        let n = format!("--max-count={max_count}");
        let mut args = vec![
            "log",
            "--no-ext-diff",
            "--date=iso",
            &n,
            "--format=Commit: %H%nAuthor: %an <%ae>%nDate: %ad%nMessage: %B",
        ];
        let (s, u);
        if let Some(v) = since {
            no_option("start_timestamp", v)?;
            s = format!("--since={v}");
            args.push(&s);
        }
        if let Some(v) = until {
            no_option("end_timestamp", v)?;
            u = format!("--until={v}");
            args.push(&u);
        }
        args.push("--");
        match self.run(&args).await {
            Err(FsError::Failed(m)) if m.contains("does not have any commits") => Ok(String::new()),
            other => other,
        }
    }

    pub async fn create_branch(&self, name: &str, base: Option<&str>) -> Result<String, FsError> {
        self.clear_stale_lock().await;
        no_option("branch_name", name)?;
        self.run(&["check-ref-format", "--branch", name])
            .await
            .map_err(|_| FsError::failed(format!("{name:?} is not a valid branch name")))?;
        let mut args = vec!["branch", "--end-of-options", name];
        if let Some(b) = base {
            no_option("base_branch", b)?;
            args.push(b);
        }
        self.run(&args).await?;
        let from = match base {
            Some(b) => b.to_string(),
            None => self
                .run(&["rev-parse", "--abbrev-ref", "HEAD"])
                .await?
                .trim()
                .to_string(),
        };
        Ok(format!("Created branch '{name}' from '{from}'"))
    }

    pub async fn checkout(&self, name: &str) -> Result<String, FsError> {
        self.clear_stale_lock().await;
        no_option("branch_name", name)?;
        self.run(&["checkout", "--quiet", "--end-of-options", name, "--"])
            .await?;
        let head = self.run(&["rev-parse", "--abbrev-ref", "HEAD"]).await?;
        if head.trim() == "HEAD" {
            let sha = self.run(&["rev-parse", "--short", "HEAD"]).await?;
            return Ok(format!("HEAD is now detached at {}", sha.trim()));
        }
        Ok(format!("Switched to branch '{}'", head.trim()))
    }

    /// A commit with its patch, or a blob/tree given as `<revision>:<path>`.
    pub async fn show(&self, revision: &str) -> Result<String, FsError> {
        no_option("revision", revision)?;
        self.run(&[
            "show",
            "--no-ext-diff",
            "--no-textconv",
            "--date=iso",
            "--end-of-options",
            revision,
        ])
        .await
    }

    /// Branches of `branch_type` (`local`, `remote`, `all`), optionally containing or not containing
    /// a commit.
    pub async fn branch(
        &self,
        branch_type: &str,
        contains: Option<&str>,
        not_contains: Option<&str>,
    ) -> Result<String, FsError> {
        let mut args = vec!["branch", "--list"];
        match branch_type {
            "local" => {}
            "remote" => args.push("--remotes"),
            "all" => args.push("--all"),
            other => {
                return Err(FsError::failed(format!(
                    "branch_type must be local, remote or all (got {other:?})"
                )));
            }
        }
        let (c, n);
        if let Some(v) = contains {
            no_option("contains", v)?;
            c = format!("--contains={v}");
            args.push(&c);
        }
        if let Some(v) = not_contains {
            no_option("not_contains", v)?;
            n = format!("--no-contains={v}");
            args.push(&n);
        }
        self.run(&args).await
    }
}
