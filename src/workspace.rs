//! The filesystem edge: allowed roots and confinement. Every path a tool touches is resolved here
//! (symlinks included) and checked against the roots by whole path components.
//!
//! Invariants:
//! - A root is a canonical absolute directory. A path is inside a root when the root's components
//!   are a prefix of its canonical components (`/srv/app` does not admit `/srv/app_evil`).
//! - A path that does not exist yet is resolved through its nearest existing ancestor; the missing
//!   tail may not contain `.` or `..`.
//! - Resolution is checked again on the opened file descriptor ([`fd_path`]), so a component
//!   swapped for a symlink between the check and the open is caught (rule `race`); writes go through
//!   a temp file created in a verified directory and renamed there (see [`files`]).
//! - Refusals are [`FsError::Refused`] with a short rule id (`outside-roots`, `symlink-escape`,
//!   `dotdot-escape`, `client-roots`, `race`, `tail-dotdot`, `git-internals`, `protected-path`) and
//!   a message that names the path. Writes never land inside a `.git` directory (any spelling) nor
//!   change a [`Protected`] file ([`Roots::check_writable`]).

pub mod files;

use std::os::fd::AsFd;
use std::path::{Component, Path, PathBuf};

/// A filesystem failure: a refusal by a confinement rule, or an ordinary error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FsError {
    #[error("refused (rule {rule}): {message}")]
    Refused { rule: &'static str, message: String },
    #[error("{0}")]
    Failed(String),
    /// The caller cancelled a long walk.
    #[error("cancelled")]
    Cancelled,
}

impl FsError {
    pub fn refused(rule: &'static str, message: impl Into<String>) -> FsError {
        FsError::Refused {
            rule,
            message: message.into(),
        }
    }

    pub fn failed(message: impl Into<String>) -> FsError {
        FsError::Failed(message.into())
    }

    /// An I/O error about `path`, e.g. `/r/x: No such file or directory (os error 2)`.
    pub fn io(path: &Path, e: impl std::fmt::Display) -> FsError {
        FsError::Failed(format!("{}: {e}", path.display()))
    }
}

/// The directories tools may touch: the configured roots, possibly narrowed by the client's roots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    /// Canonical, deduplicated, none inside another.
    dirs: Vec<PathBuf>,
    /// The configured roots, when `dirs` was narrowed by a client.
    configured: Option<Vec<PathBuf>>,
    /// Files never written, wherever they are ([`Roots::check_writable`]).
    protected: std::sync::Arc<Protected>,
}

impl Roots {
    /// Canonicalizes `dirs` (each must be an existing directory; `~` expands to `$HOME`). Errors name
    /// the bad entry. An empty list is an error: the server must be confined to something.
    pub fn new(dirs: &[PathBuf]) -> Result<Roots, String> {
        if dirs.is_empty() {
            return Err(
                "no roots: give --root DIR (or [mcp] roots = [\"DIR\"] in the config)".into(),
            );
        }
        let mut out: Vec<PathBuf> = Vec::new();
        for d in dirs {
            let expanded = expand_home(&d.to_string_lossy());
            let real = std::fs::canonicalize(&expanded)
                .map_err(|e| format!("root {}: {e}", d.display()))?;
            if !real.is_dir() {
                return Err(format!("root {}: not a directory", d.display()));
            }
            out.push(real);
        }
        Ok(Roots {
            dirs: minimal(out),
            configured: None,
            protected: Default::default(),
        })
    }

    /// The files no write may change.
    pub fn protected(&self) -> &Protected {
        &self.protected
    }

    /// These roots with `protected` files that no write may change.
    pub fn with_protected(self, protected: Protected) -> Roots {
        self.with_shared_protected(std::sync::Arc::new(protected))
    }

    /// [`Roots::with_protected`] with a set shared by many calls.
    pub fn with_shared_protected(mut self, protected: std::sync::Arc<Protected>) -> Roots {
        self.protected = protected;
        self
    }

    /// Refuses a write (create, overwrite, edit) whose canonical target `real` lies inside a
    /// `.git` directory in any spelling (rule `git-internals`: a planted `.git/config` or hook
    /// would make later git commands run programs), or is a protected file (rule
    /// `protected-path`).
    pub fn check_writable(&self, real: &Path, requested: &str) -> Result<(), FsError> {
        self.check_change(real, requested, false)
    }

    /// [`Roots::check_writable`] for either end of a move, which also refuses moving a directory
    /// that holds a protected file, or moving one into place where a protected file would be.
    pub fn check_move(&self, real: &Path, requested: &str) -> Result<(), FsError> {
        self.check_change(real, requested, true)
    }

    fn check_change(&self, real: &Path, requested: &str, below: bool) -> Result<(), FsError> {
        if real.components().any(|c| is_git_dir_name(c.as_os_str())) {
            return Err(FsError::refused(
                "git-internals",
                format!(
                    "{requested} is inside a .git directory; change the repository with the git tools"
                ),
            ));
        }
        if let Some((file, kind)) = self.protected.hit(real, below) {
            let what = if real.starts_with(file) {
                format!("{requested} is {}", kind.describe())
            } else {
                format!(
                    "{requested} holds {} ({}), which no tool may change",
                    kind.describe(),
                    file.display()
                )
            };
            return Err(FsError::refused(
                "protected-path",
                format!("{what}; edit it yourself, outside Zeke's tools"),
            ));
        }
        Ok(())
    }

    /// The canonical allowed directories.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The root containing canonical path `p`, if any (component-wise).
    pub fn containing(&self, p: &Path) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|r| p.starts_with(r))
            .map(PathBuf::as_path)
    }

    /// The configured root containing canonical `p` (before any client narrowing): the project
    /// boundary used for policy scopes.
    pub fn scope_root(&self, p: &Path) -> Option<&Path> {
        self.configured
            .as_deref()
            .unwrap_or(&self.dirs)
            .iter()
            .find(|r| p.starts_with(r))
            .map(PathBuf::as_path)
    }

    /// The intersection with a client's roots (already canonical): a client root inside a configured
    /// root narrows to it; a configured root inside a client root stays; others are dropped. Never
    /// widens. The result may be empty, and then every path is refused (rule `client-roots`).
    pub fn narrowed(&self, client: &[PathBuf]) -> Roots {
        let base = self.configured.clone().unwrap_or_else(|| self.dirs.clone());
        let mut out = Vec::new();
        for c in client {
            for r in &base {
                if c.starts_with(r) {
                    out.push(c.clone());
                } else if r.starts_with(c) {
                    out.push(r.clone());
                }
            }
        }
        Roots {
            dirs: minimal(out),
            configured: Some(base),
            protected: self.protected.clone(),
        }
    }

    /// Resolves `requested` to a canonical path inside the roots. `Must::Exist` requires the path to
    /// exist; `Must::BeCreatable` accepts a missing path whose nearest existing ancestor is inside.
    /// Relative paths are taken against the first root that keeps them inside (as the reference
    /// server does); `~/` expands to `$HOME`.
    pub fn resolve(&self, requested: &str, must: Must) -> Result<PathBuf, FsError> {
        if requested.is_empty() {
            return Err(FsError::failed("empty path"));
        }
        if requested.contains('\0') {
            return Err(FsError::refused("bad-path", "path contains a NUL byte"));
        }
        if requested.len() > MAX_PATH {
            return Err(FsError::refused(
                "bad-path",
                format!(
                    "the path is {} bytes long; at most {MAX_PATH} (PATH_MAX)",
                    requested.len()
                ),
            ));
        }
        let abs = self.absolute(requested);
        let (base, tail) = nearest_existing(&abs)?;
        if tail.iter().any(|c| c == "." || c == "..") {
            // outside the roots, this must read like every other outside path (whether the
            // missing directory exists out there is nobody's business); inside, say what is wrong
            let guess = normalize(&tail.iter().fold(base.clone(), |p, c| p.join(c)));
            self.check(requested, &abs, &guess)?;
            return Err(FsError::refused(
                "tail-dotdot",
                format!("{requested}: uses . or .. below a directory that does not exist"),
            ));
        }
        let real = tail.iter().fold(base, |p, c| p.join(c));
        self.check(requested, &abs, &real)?;
        if must == Must::Exist && !tail.is_empty() {
            return Err(FsError::failed(format!(
                "{requested}: no such file or directory"
            )));
        }
        Ok(real)
    }

    /// Checks canonical `real` (from `requested`, lexically `abs`) against the roots.
    fn check(&self, requested: &str, abs: &Path, real: &Path) -> Result<(), FsError> {
        if self.containing(real).is_some() {
            return Ok(());
        }
        if let Some(conf) = &self.configured
            && conf.iter().any(|r| real.starts_with(r))
        {
            return Err(FsError::refused(
                "client-roots",
                format!(
                    "{requested} is inside the server's roots but outside the roots the client allowed ({})",
                    self.list()
                ),
            ));
        }
        let lexical = normalize(abs);
        // the messages never name where outside the path leads: that would map what is out there
        let (rule, why) = if self.containing(&lexical).is_some() && !has_dotdot(abs) {
            (
                "symlink-escape",
                format!("{requested} goes through a symlink that leads outside the allowed roots"),
            )
        } else if has_dotdot(abs) {
            (
                "dotdot-escape",
                format!("{requested} uses .. to leave the allowed roots"),
            )
        } else {
            (
                "outside-roots",
                format!("{requested} is outside the allowed roots"),
            )
        };
        Err(FsError::refused(rule, format!("{why} ({})", self.list())))
    }

    /// Re-checks an opened descriptor: its current path must still be inside the roots.
    pub fn verify_fd(&self, fd: impl AsFd, requested: &str) -> Result<PathBuf, FsError> {
        let actual = fd_path(fd).map_err(|e| {
            FsError::failed(format!("{requested}: cannot verify the opened file: {e}"))
        })?;
        if self.containing(&actual).is_none() {
            return Err(FsError::refused(
                "race",
                format!(
                    "{requested} changed while it was being opened and now points to {}, outside the allowed roots",
                    actual.display()
                ),
            ));
        }
        Ok(actual)
    }

    fn absolute(&self, requested: &str) -> PathBuf {
        let p = expand_home(requested);
        if p.is_absolute() {
            return p;
        }
        self.dirs
            .iter()
            .map(|r| r.join(&p))
            .find(|c| self.containing(&normalize(c)).is_some())
            .unwrap_or_else(|| {
                self.dirs
                    .first()
                    .cloned()
                    .unwrap_or_else(|| PathBuf::from("/nonexistent-root"))
                    .join(&p)
            })
    }

    /// The roots as `a, b` for messages (`none` when a client narrowed them to nothing).
    pub fn list(&self) -> String {
        if self.dirs.is_empty() {
            return "none".into();
        }
        self.dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Whether a path component names a git directory in any spelling a filesystem may accept for
/// `.git`: any case (`.GIT` on a case-insensitive volume), trailing dots or spaces (`.git.`), or
/// the 8.3 short name (`GIT~1`).
fn is_git_dir_name(c: &std::ffi::OsStr) -> bool {
    let s = c.to_string_lossy().to_ascii_lowercase();
    s.trim_end_matches(['.', ' ']) == ".git" || s.starts_with("git~")
}

/// What a protected file is: the reason a write to it is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtectedKind {
    /// Zeke's config file: the policy itself.
    ZekeConfig,
    /// Zeke's store of "Allow all" grants.
    GrantStore,
    /// Zeke's audit log: emptying it would hide what was done.
    AuditLog,
    /// Zeke's state directory and everything in it (the grant store, its temporary files, the
    /// default audit log): a file planted there (a symlink where the grant store writes its
    /// next copy) could forge grants.
    ZekeState,
    /// A git config file outside any repository (global, XDG, system) or one it includes: it can
    /// name programs git runs (filters, fsmonitor, pagers, credential helpers).
    GitConfig,
}

impl ProtectedKind {
    fn describe(self) -> &'static str {
        match self {
            ProtectedKind::ZekeConfig => "Zeke's config file, which holds the policy",
            ProtectedKind::GrantStore => "Zeke's store of \"Allow all\" grants",
            ProtectedKind::AuditLog => "Zeke's audit log",
            ProtectedKind::ZekeState => "inside Zeke's state directory (grants, audit log)",
            ProtectedKind::GitConfig => "a git config file, which can name programs git runs",
        }
    }
}

/// Files the tools never write, create, delete, move or move onto, whatever the roots contain,
/// because they decide what Zeke or git will run or allow. Paths are kept canonical (their
/// nearest existing ancestor resolved), so they match the canonical targets of writes whether or
/// not they exist yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Protected {
    entries: Vec<(PathBuf, ProtectedKind)>,
}

impl Protected {
    /// Adds `path` (absolute; `~/` expands to `$HOME`). A path that cannot be resolved is kept
    /// as given.
    pub fn add(&mut self, path: &Path, kind: ProtectedKind) {
        let abs = expand_home(&path.to_string_lossy());
        let real = match nearest_existing(&abs) {
            Ok((base, tail)) => tail.iter().fold(base, |p, c| p.join(c)),
            Err(_) => abs,
        };
        if !self.entries.iter().any(|(p, _)| *p == real) {
            self.entries.push((real, kind));
        }
    }

    /// The protected files, canonical.
    pub fn paths(&self) -> impl Iterator<Item = (&Path, ProtectedKind)> {
        self.entries.iter().map(|(p, k)| (p.as_path(), *k))
    }

    /// The protected file that a change of canonical `real` would change: `real` itself, a
    /// protected directory holding it ([`ProtectedKind::ZekeState`]), or — with `below`, for
    /// moves, which carry what a directory holds — one inside `real`.
    fn hit(&self, real: &Path, below: bool) -> Option<(&Path, ProtectedKind)> {
        self.paths().find(|(p, k)| {
            *p == real
                || (*k == ProtectedKind::ZekeState && real.starts_with(p))
                || (below && p.starts_with(real))
        })
    }
}

/// The longest path a tool accepts, in bytes (Linux `PATH_MAX`).
pub const MAX_PATH: usize = 4096;

/// Whether a path must already exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Must {
    Exist,
    BeCreatable,
}

/// `~` and `~/…` → `$HOME/…`.
fn expand_home(p: &str) -> PathBuf {
    let home = || std::env::var_os("HOME").map(PathBuf::from);
    if p == "~" {
        return home().unwrap_or_else(|| PathBuf::from(p));
    }
    match (p.strip_prefix("~/"), home()) {
        (Some(rest), Some(h)) => h.join(rest),
        _ => PathBuf::from(p),
    }
}

/// The canonical form of the longest existing prefix of `abs`, and the remaining components.
fn nearest_existing(abs: &Path) -> Result<(PathBuf, Vec<String>), FsError> {
    let comps: Vec<Component> = abs.components().collect();
    let prefix = |keep: usize| -> PathBuf { comps[..keep].iter().collect() };
    // Whether a prefix resolves is monotone (a longer path must pass through every shorter
    // one), so the longest resolvable prefix is found by bisection: O(n log n) component
    // lookups, not O(n²). Any error (missing, not a directory, no permission) counts as "does not
    // resolve", so a path outside the roots answers the same whatever is there.
    let resolves = |keep: usize| std::fs::canonicalize(prefix(keep)).ok();
    let (mut good, mut bad) = (0usize, comps.len() + 1);
    let mut best = None;
    if let Some(real) = resolves(comps.len()) {
        good = comps.len();
        best = Some(real);
    } else {
        while bad - good > 1 {
            let mid = good + (bad - good) / 2;
            if mid == 0 {
                break;
            }
            match resolves(mid) {
                Some(real) => {
                    good = mid;
                    best = Some(real);
                }
                None => bad = mid,
            }
        }
    }
    match best {
        Some(real) => {
            let tail = comps[good..]
                .iter()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            Ok((real, tail))
        }
        None => Err(FsError::failed(format!(
            "{}: cannot resolve",
            abs.display()
        ))),
    }
}

/// Lexical normalization (`.` dropped, `..` pops) for messages and relative-path choice only;
/// never used to grant access.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn has_dotdot(p: &Path) -> bool {
    p.components().any(|c| c == Component::ParentDir)
}

/// Sorted, deduplicated, without entries nested in another entry.
fn minimal(mut dirs: Vec<PathBuf>) -> Vec<PathBuf> {
    dirs.sort();
    dirs.dedup();
    let all = dirs.clone();
    dirs.retain(|d| !all.iter().any(|o| o != d && d.starts_with(o)));
    dirs
}

/// The current path of an open descriptor (Linux: `/proc/self/fd/N`; macOS: `F_GETPATH`).
pub fn fd_path(fd: impl AsFd) -> std::io::Result<PathBuf> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        std::fs::read_link(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()))
    }
    #[cfg(not(target_os = "linux"))]
    {
        use std::os::unix::ffi::OsStringExt;
        let c = rustix::fs::getpath(fd)?;
        Ok(PathBuf::from(std::ffi::OsString::from_vec(c.into_bytes())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn writes_and_moves_against_git_dirs_and_protected_files() {
        let t = tmp();
        let home = t.path().canonicalize().unwrap();
        std::fs::create_dir_all(home.join(".config/zeke")).unwrap();
        let mut p = Protected::default();
        p.add(
            &home.join(".config/zeke/config.toml"),
            ProtectedKind::ZekeConfig,
        );
        p.add(&home.join(".config/git/config"), ProtectedKind::GitConfig); // not there yet
        let roots = Roots::new(std::slice::from_ref(&home))
            .unwrap()
            .with_protected(p);
        let verdict = |r: Result<(), FsError>| match r {
            Ok(()) => "ok".to_string(),
            Err(FsError::Refused { rule, .. }) => rule.to_string(),
            Err(e) => e.to_string(),
        };
        let mut got = String::new();
        for rel in [
            "a/.git/config",
            "a/.GIT/config",
            "a/.Git./hooks/x",
            "a/.git /config",
            "a/GIT~1/config",
            "a/.github/x",
            "a/x.git/y",
            ".config/zeke/config.toml",
            ".config/git/config",
            ".config/git",
            ".config",
            ".config/zeke/other.toml",
        ] {
            let real = home.join(rel);
            got += &format!(
                "{rel}: write {}, move {}\n",
                verdict(roots.check_writable(&real, rel)),
                verdict(roots.check_move(&real, rel))
            );
        }
        expect_test::expect![[r#"
            a/.git/config: write git-internals, move git-internals
            a/.GIT/config: write git-internals, move git-internals
            a/.Git./hooks/x: write git-internals, move git-internals
            a/.git /config: write git-internals, move git-internals
            a/GIT~1/config: write git-internals, move git-internals
            a/.github/x: write ok, move ok
            a/x.git/y: write ok, move ok
            .config/zeke/config.toml: write protected-path, move protected-path
            .config/git/config: write protected-path, move protected-path
            .config/git: write ok, move protected-path
            .config: write ok, move protected-path
            .config/zeke/other.toml: write ok, move ok
        "#]]
        .assert_eq(&got);
        // narrowing by a client keeps the protection
        let narrowed = roots.narrowed(std::slice::from_ref(&home));
        assert!(
            narrowed
                .check_writable(&home.join(".config/git/config"), "x")
                .is_err()
        );
    }

    #[test]
    fn component_containment_not_string_prefix() {
        let t = tmp();
        let app = t.path().join("app");
        let evil = t.path().join("app_evil");
        std::fs::create_dir_all(&app).unwrap();
        std::fs::create_dir_all(&evil).unwrap();
        std::fs::write(evil.join("secret"), "x").unwrap();
        let roots = Roots::new(std::slice::from_ref(&app)).unwrap();
        let err = roots
            .resolve(&evil.join("secret").to_string_lossy(), Must::Exist)
            .unwrap_err();
        assert!(
            matches!(
                err,
                FsError::Refused {
                    rule: "outside-roots",
                    ..
                }
            ),
            "{err}"
        );
        assert!(roots.resolve(&app.to_string_lossy(), Must::Exist).is_ok());
    }

    #[test]
    fn narrowing_never_widens() {
        let t = tmp();
        let (a, b, c) = (t.path().join("a"), t.path().join("a/b"), t.path().join("c"));
        for d in [&a, &b, &c] {
            std::fs::create_dir_all(d).unwrap();
        }
        let roots = Roots::new(std::slice::from_ref(&a)).unwrap();
        let a = std::fs::canonicalize(a).unwrap();
        let b = std::fs::canonicalize(b).unwrap();
        let c = std::fs::canonicalize(c).unwrap();
        assert_eq!(
            roots.narrowed(&[b.clone(), c.clone()]).dirs(),
            std::slice::from_ref(&b)
        );
        assert_eq!(
            roots.narrowed(&[t.path().canonicalize().unwrap()]).dirs(),
            std::slice::from_ref(&a)
        );
        assert!(roots.narrowed(&[c]).dirs().is_empty());
        // narrowing again starts from the configured roots, not the narrowed ones
        assert_eq!(
            roots
                .narrowed(std::slice::from_ref(&b))
                .narrowed(std::slice::from_ref(&a))
                .dirs(),
            &[a]
        );
    }

    #[test]
    fn missing_tail_with_dotdot_is_refused() {
        let t = tmp();
        let roots = Roots::new(&[t.path().to_path_buf()]).unwrap();
        let p = format!("{}/nope/../x", t.path().display());
        let err = roots.resolve(&p, Must::BeCreatable).unwrap_err();
        assert!(
            matches!(
                err,
                FsError::Refused {
                    rule: "tail-dotdot",
                    ..
                }
            ),
            "{err}"
        );
    }

    /// A path outside the roots gets the same answer whatever exists out there: no oracle for
    /// the layout of the rest of the disk, and no outside path in the message.
    #[test]
    fn outside_paths_answer_alike_whatever_exists() {
        let t = tmp();
        let base = t.path().canonicalize().unwrap();
        let root = base.join("root");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(base.join("exists")).unwrap();
        std::fs::write(base.join("exists/file"), "x").unwrap();
        let roots = Roots::new(std::slice::from_ref(&root)).unwrap();
        let r = root.display();
        let answer = |tail: &str| {
            let p = format!("{r}/{tail}");
            let e = roots.resolve(&p, Must::Exist).unwrap_err().to_string();
            e.replace(&p, "P")
        };
        let first = answer("../exists/..");
        for tail in [
            "../missing/..",
            "../exists/file/x/..",
            "../missing/a/b/../..",
            "../exists/file",
        ] {
            assert_eq!(answer(tail), first, "{tail}");
        }
        assert!(
            !first.contains(&base.join("exists").display().to_string()),
            "{first}"
        );
        let long = format!("{r}/{}", "a/".repeat(3000));
        let e = roots
            .resolve(&long, Must::BeCreatable)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("rule bad-path") && e.contains("at most 4096"),
            "{e}"
        );
    }
}
