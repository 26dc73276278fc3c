//! Confined file operations: read, atomic write, mkdir, move, list, tree, search, info.
//!
//! Every function resolves its paths through [`Roots::resolve`], opens with `O_NOFOLLOW`, and
//! re-checks the opened descriptor ([`Roots::verify_fd`]) before reading or writing through it.
//! Writes create a temp file inside the verified directory (`openat` + `O_EXCL`) and `renameat` it
//! over the target, so a reader never sees a half-written file and a symlink swapped in at the
//! target name is replaced, not followed. Walks (`tree`, `search`) never follow symlinks, honour
//! `.gitignore`/`.ignore` (the `ignore` crate), skip `.git`, and stop when `cancelled()` says so.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags};

use super::{FsError, Must, Roots};

/// Files larger than this are not read whole (bytes).
pub const MAX_READ_BYTES: u64 = 64 * 1024 * 1024;

fn open_flags() -> OFlags {
    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// Opens canonical `real` without following a final symlink and verifies the descriptor.
fn open_verified(
    roots: &Roots,
    real: &Path,
    requested: &str,
    dir: bool,
) -> Result<OwnedFd, FsError> {
    let flags = if dir {
        open_flags() | OFlags::DIRECTORY
    } else {
        open_flags() | OFlags::NONBLOCK
    };
    let fd = rustix::fs::openat(CWD, real, flags, Mode::empty()).map_err(|e| {
        // `real` was resolved a moment ago; ELOOP, or ENOTDIR on what is not a plain file now,
        // means a component was swapped (for a symlink) in between
        let plain_file = std::fs::symlink_metadata(real).is_ok_and(|m| m.is_file());
        match e {
            rustix::io::Errno::NOTDIR if dir && plain_file => {
                FsError::failed(format!("{requested}: not a directory"))
            }
            rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => FsError::refused(
                "race",
                format!("{requested} was replaced by a symlink while it was being opened"),
            ),
            e => FsError::io(Path::new(requested), std::io::Error::from(e)),
        }
    })?;
    roots.verify_fd(&fd, requested)?;
    Ok(fd)
}

/// Reads a whole regular file (at most [`MAX_READ_BYTES`]). Returns the canonical path and bytes.
pub fn read(roots: &Roots, requested: &str) -> Result<(PathBuf, Vec<u8>), FsError> {
    let real = roots.resolve(requested, Must::Exist)?;
    let fd = open_verified(roots, &real, requested, false)?;
    let st = rustix::fs::fstat(&fd).map_err(|e| FsError::io(&real, std::io::Error::from(e)))?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => {}
        FileType::Directory => {
            return Err(FsError::failed(format!(
                "{requested} is a directory; use list_directory"
            )));
        }
        _ => {
            return Err(FsError::failed(format!(
                "{requested} is not a regular file"
            )));
        }
    }
    if st.st_size as u64 > MAX_READ_BYTES {
        return Err(FsError::failed(format!(
            "{requested} is {} bytes, more than the {MAX_READ_BYTES}-byte read limit; use head or tail",
            st.st_size
        )));
    }
    let mut bytes = Vec::with_capacity(st.st_size as usize);
    // a file growing while it is read stops at the limit too
    File::from(fd)
        .take(MAX_READ_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| FsError::io(&real, e))?;
    if bytes.len() as u64 > MAX_READ_BYTES {
        return Err(FsError::failed(format!(
            "{requested} grew past the {MAX_READ_BYTES}-byte read limit while it was read"
        )));
    }
    Ok((real, bytes))
}

/// Reads a file as UTF-8 text (invalid sequences become U+FFFD).
pub fn read_text(roots: &Roots, requested: &str) -> Result<(PathBuf, String), FsError> {
    let (real, bytes) = read(roots, requested)?;
    let text = match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    Ok((real, text))
}

/// Reads `requested` as UTF-8 text, refusing a file that is not: for a tool that writes the text
/// back (`edit_file`), where a lossy read would replace every invalid byte with U+FFFD.
pub fn read_utf8(roots: &Roots, requested: &str) -> Result<(PathBuf, String), FsError> {
    let (real, bytes) = read(roots, requested)?;
    match String::from_utf8(bytes) {
        Ok(s) => Ok((real, s)),
        Err(e) => Err(FsError::failed(format!(
            "{requested} is not UTF-8 text (an invalid byte at offset {}); edit_file changes UTF-8 \
             text only, so nothing was written (write_file replaces a file whole)",
            e.utf8_error().valid_up_to()
        ))),
    }
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `content` to `requested` atomically (temp file + rename in the same verified directory),
/// keeping an existing file's permission bits. The parent directory must exist.
pub fn write(roots: &Roots, requested: &str, content: &[u8]) -> Result<PathBuf, FsError> {
    let real = roots.resolve(requested, Must::BeCreatable)?;
    roots.check_writable(&real, requested)?;
    let (parent, name) = split(&real, requested)?;
    let dirfd = open_dir_or_missing(roots, parent, requested)?;
    let mode = match rustix::fs::statat(&dirfd, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => Mode::from_raw_mode(st.st_mode & 0o7777),
            FileType::Directory => {
                return Err(FsError::failed(format!("{requested} is a directory")));
            }
            FileType::Symlink => {
                return Err(FsError::refused(
                    "symlink-escape",
                    format!(
                        "{requested} is a symlink to a file that does not exist; refusing to write through it"
                    ),
                ));
            }
            _ => {
                return Err(FsError::failed(format!(
                    "{requested} is not a regular file"
                )));
            }
        },
        Err(rustix::io::Errno::NOENT) => Mode::from_raw_mode(0o644),
        Err(e) => return Err(FsError::io(&real, std::io::Error::from(e))),
    };
    sweep_stale_temps(&dirfd, parent);
    let tmp = format!(
        ".{}.zeke-{}-{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let tfd = rustix::fs::openat(&dirfd, tmp.as_str(), flags, mode)
        .map_err(|e| FsError::io(&parent.join(&tmp), std::io::Error::from(e)))?;
    let result = (|| {
        let _ = rustix::fs::fchmod(&tfd, mode);
        let mut f = File::from(tfd);
        f.write_all(content)?;
        f.sync_all()?;
        rustix::fs::renameat(&dirfd, tmp.as_str(), &dirfd, name).map_err(std::io::Error::from)
    })();
    if let Err(e) = result {
        let _ = rustix::fs::unlinkat(&dirfd, tmp.as_str(), AtFlags::empty());
        return Err(FsError::io(&real, e));
    }
    Ok(real)
}

/// Directories already swept by this process.
static SWEPT: std::sync::Mutex<Option<std::collections::HashSet<PathBuf>>> =
    std::sync::Mutex::new(None);

/// Removes, once per directory and process, the temp files (`.NAME.zeke-PID-N.tmp`) that a write
/// interrupted by a kill left behind: those whose process no longer runs.
fn sweep_stale_temps(dirfd: &OwnedFd, dir: &Path) {
    {
        let mut swept = SWEPT.lock().unwrap_or_else(|e| e.into_inner());
        if !swept
            .get_or_insert_with(Default::default)
            .insert(dir.to_path_buf())
        {
            return;
        }
    }
    let Ok(fd) = rustix::fs::openat(
        dirfd,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return;
    };
    let Ok(entries) = rustix::fs::Dir::read_from(&fd) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = temp_pid(&name) else {
            continue;
        };
        let alive = rustix::process::Pid::from_raw(pid)
            .is_some_and(|p| rustix::process::test_kill_process(p).is_ok());
        if !alive && pid != std::process::id() as i32 {
            let _ = rustix::fs::unlinkat(dirfd, name.as_str(), AtFlags::empty());
        }
    }
}

/// The process id in a temp file name `.NAME.zeke-PID-N.tmp`.
fn temp_pid(name: &str) -> Option<i32> {
    let rest = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (_, tail) = rest.rsplit_once(".zeke-")?;
    let (pid, n) = tail.split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// Parent directory and file name of a canonical path.
fn split<'a>(real: &'a Path, requested: &str) -> Result<(&'a Path, &'a std::ffi::OsStr), FsError> {
    match (real.parent(), real.file_name()) {
        (Some(p), Some(n)) => Ok((p, n)),
        _ => Err(FsError::failed(format!("{requested}: not a file path"))),
    }
}

fn open_dir_or_missing(roots: &Roots, parent: &Path, requested: &str) -> Result<OwnedFd, FsError> {
    if !parent.exists() {
        return Err(FsError::failed(format!(
            "{requested}: parent directory {} does not exist; create it with create_directory",
            parent.display()
        )));
    }
    open_verified(roots, parent, requested, true)
}

/// Creates `requested` and any missing parents, one verified `mkdirat` at a time. An existing
/// directory is fine. Returns the canonical path.
pub fn create_dir(roots: &Roots, requested: &str) -> Result<PathBuf, FsError> {
    let real = roots.resolve(requested, Must::BeCreatable)?;
    roots.check_writable(&real, requested)?;
    let mut base = real.clone();
    let mut missing = Vec::new();
    while std::fs::symlink_metadata(&base).is_err() {
        missing.push(
            base.file_name()
                .map(|n| n.to_os_string())
                .ok_or_else(|| FsError::failed(format!("{requested}: cannot resolve")))?,
        );
        base.pop();
    }
    let mut fd = open_verified(roots, &base, requested, true)?;
    for name in missing.iter().rev() {
        match rustix::fs::mkdirat(&fd, name.as_os_str(), Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(FsError::io(&real, std::io::Error::from(e))),
        }
        fd = rustix::fs::openat(
            &fd,
            name.as_os_str(),
            open_flags() | OFlags::DIRECTORY,
            Mode::empty(),
        )
        .map_err(|e| match e {
            rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => FsError::refused(
                "race",
                format!(
                    "{requested}: {} was replaced by a symlink or file while creating directories",
                    name.to_string_lossy()
                ),
            ),
            e => FsError::io(&real, std::io::Error::from(e)),
        })?;
        roots.verify_fd(&fd, requested)?;
    }
    Ok(real)
}

/// Moves (renames) `source` to `destination`; fails if the destination exists. A symlink at
/// `source` is moved as a link. Both parents are resolved and verified.
pub fn rename(
    roots: &Roots,
    source: &str,
    destination: &str,
) -> Result<(PathBuf, PathBuf), FsError> {
    let (sdir, sname) = parent_and_name(roots, source)?;
    let (ddir, dname) = parent_and_name(roots, destination)?;
    roots.check_move(&sdir.join(&sname), source)?;
    roots.check_move(&ddir.join(&dname), destination)?;
    let sfd = open_verified(roots, &sdir, source, true)?;
    let dfd = open_verified(roots, &ddir, destination, true)?;
    if rustix::fs::statat(&sfd, sname.as_str(), AtFlags::SYMLINK_NOFOLLOW).is_err() {
        return Err(FsError::failed(format!(
            "{source}: no such file or directory"
        )));
    }
    let exists = || {
        FsError::failed(format!(
            "{destination} already exists; move_file does not overwrite"
        ))
    };
    #[cfg(target_os = "linux")]
    let r = rustix::fs::renameat_with(
        &sfd,
        sname.as_str(),
        &dfd,
        dname.as_str(),
        rustix::fs::RenameFlags::NOREPLACE,
    );
    #[cfg(not(target_os = "linux"))]
    let r = if rustix::fs::statat(&dfd, dname.as_str(), AtFlags::SYMLINK_NOFOLLOW).is_ok() {
        return Err(exists());
    } else {
        rustix::fs::renameat(&sfd, sname.as_str(), &dfd, dname.as_str())
    };
    match r {
        Ok(()) => Ok((sdir.join(sname), ddir.join(dname))),
        Err(rustix::io::Errno::EXIST) => Err(exists()),
        Err(e) => Err(FsError::io(Path::new(source), std::io::Error::from(e))),
    }
}

/// The resolved (existing, canonical) parent of `requested` and its last component, which must be
/// a plain name (not `.`/`..`).
fn parent_and_name(roots: &Roots, requested: &str) -> Result<(PathBuf, String), FsError> {
    let abs = roots.absolute(requested.trim_end_matches('/'));
    let plain = abs
        .components()
        .next_back()
        .is_some_and(|c| matches!(c, std::path::Component::Normal(_)));
    let (Some(parent), Some(name), true) = (abs.parent(), abs.file_name(), plain) else {
        return Err(FsError::refused(
            "bad-path",
            format!("{requested}: must end in a file or directory name"),
        ));
    };
    let real_parent = roots.resolve(&parent.to_string_lossy(), Must::Exist)?;
    Ok((real_parent, name.to_string_lossy().into_owned()))
}

/// What a directory entry is (symlinks are reported, never followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

impl Kind {
    fn of(ft: FileType) -> Kind {
        match ft {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Symlink,
            _ => Kind::Other,
        }
    }
}

/// One entry of a listing; `size` in bytes (0 for directories).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub kind: Kind,
    pub size: u64,
    pub modified: Option<SystemTime>,
}

/// The entries of a directory, sorted by name.
pub fn list(roots: &Roots, requested: &str) -> Result<(PathBuf, Vec<Entry>), FsError> {
    let real = roots.resolve(requested, Must::Exist)?;
    let fd = open_verified(roots, &real, requested, true)?;
    let mut out = Vec::new();
    let dir =
        rustix::fs::Dir::read_from(&fd).map_err(|e| FsError::io(&real, std::io::Error::from(e)))?;
    for ent in dir {
        let ent = ent.map_err(|e| FsError::io(&real, std::io::Error::from(e)))?;
        let name = ent.file_name().to_string_lossy().into_owned();
        if name == "." || name == ".." {
            continue;
        }
        let st = rustix::fs::statat(&fd, ent.file_name(), AtFlags::SYMLINK_NOFOLLOW).ok();
        let kind = st
            .as_ref()
            .map(|s| Kind::of(FileType::from_raw_mode(s.st_mode)))
            .unwrap_or(Kind::Other);
        let size = st
            .as_ref()
            .filter(|_| kind != Kind::Dir)
            .map(|s| s.st_size as u64)
            .unwrap_or(0);
        let modified = st.as_ref().map(|s| {
            SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(s.st_mtime.max(0) as u64)
        });
        out.push(Entry {
            name,
            kind,
            size,
            modified,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((real, out))
}

/// Metadata of one path (not following a final symlink).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub path: PathBuf,
    pub kind: Kind,
    pub size: u64,
    pub created: Option<SystemTime>,
    pub modified: Option<SystemTime>,
    pub accessed: Option<SystemTime>,
    /// Permission bits, e.g. `0o644`.
    pub mode: u32,
}

pub fn info(roots: &Roots, requested: &str) -> Result<Info, FsError> {
    let real = roots.resolve(requested, Must::Exist)?;
    let md = std::fs::symlink_metadata(&real).map_err(|e| FsError::io(&real, e))?;
    use std::os::unix::fs::MetadataExt;
    let kind = if md.is_dir() {
        Kind::Dir
    } else if md.is_file() {
        Kind::File
    } else if md.file_type().is_symlink() {
        Kind::Symlink
    } else {
        Kind::Other
    };
    Ok(Info {
        path: real,
        kind,
        size: md.len(),
        created: md.created().ok(),
        modified: md.modified().ok(),
        accessed: md.accessed().ok(),
        mode: md.mode() & 0o7777,
    })
}

/// A glob set from exclude patterns. A pattern without `/` matches a name at any depth (and
/// everything below a matching directory); one with `/` matches the path relative to the start.
pub fn excludes(patterns: &[String]) -> Result<globset::GlobSet, FsError> {
    let mut b = globset::GlobSetBuilder::new();
    for p in patterns {
        let variants = if p.contains('/') {
            vec![p.trim_start_matches("./").to_string()]
        } else {
            vec![p.clone(), format!("**/{p}")]
        };
        for v in variants {
            let g = globset::GlobBuilder::new(&v)
                .literal_separator(true)
                .build()
                .map_err(|e| FsError::failed(format!("exclude pattern {p:?}: {e}")))?;
            b.add(g);
        }
    }
    b.build()
        .map_err(|e| FsError::failed(format!("exclude patterns: {e}")))
}

/// A walk's stop conditions and progress report (called with the number of entries seen).
pub struct WalkControl<'a> {
    pub cancelled: &'a (dyn Fn() -> bool + Sync),
    pub progress: &'a (dyn Fn(u64) + Sync),
}

/// Walks `requested` (a directory) depth-first in name order, yielding (relative path, depth from
/// 1, kind) for entries not excluded. Directories matching `exclude` are not entered.
pub fn walk(
    roots: &Roots,
    requested: &str,
    exclude: &globset::GlobSet,
    ctl: &WalkControl,
    mut visit: impl FnMut(&Path, usize, Kind) -> bool,
) -> Result<PathBuf, FsError> {
    let real = roots.resolve(requested, Must::Exist)?;
    let fd = open_verified(roots, &real, requested, true)?;
    let verified = roots.verify_fd(fd.as_fd(), requested)?;
    let root = verified.clone();
    let ex = exclude.clone();
    let walker = ignore::WalkBuilder::new(&verified)
        .hidden(false)
        .git_global(false)
        .require_git(false)
        .follow_links(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(move |e| {
            e.file_name() != ".git"
                && e.path()
                    .strip_prefix(&root)
                    .map(|rel| rel.as_os_str().is_empty() || !ex.is_match(rel))
                    .unwrap_or(false)
        })
        .build();
    let mut seen = 0u64;
    for item in walker {
        if (ctl.cancelled)() {
            return Err(FsError::Cancelled);
        }
        let Ok(entry) = item else { continue };
        if entry.depth() == 0 {
            continue;
        }
        seen += 1;
        if seen.is_multiple_of(2000) {
            (ctl.progress)(seen);
        }
        let kind = entry
            .file_type()
            .map(|t| {
                if t.is_dir() {
                    Kind::Dir
                } else if t.is_symlink() {
                    Kind::Symlink
                } else if t.is_file() {
                    Kind::File
                } else {
                    Kind::Other
                }
            })
            .unwrap_or(Kind::Other);
        let rel = entry.path().strip_prefix(&verified).unwrap_or(entry.path());
        if !visit(rel, entry.depth(), kind) {
            break;
        }
    }
    Ok(verified)
}

/// MIME type by extension for `read_media_file` (the reference server's table).
pub fn mime_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        "svg" => "image/svg+xml",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "ogg" => "audio/ogg",
        "flac" => "audio/flac",
        _ => "application/octet-stream",
    }
}

/// `2024-01-15T14:30:25Z` (UTC, seconds).
pub fn iso8601(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // civil_from_days (H. Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        assert_eq!(iso8601(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            iso8601(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_705_329_025)),
            "2024-01-15T14:30:25Z"
        );
    }

    #[test]
    fn write_is_atomic_and_keeps_mode() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let roots = Roots::new(&[t.path().to_path_buf()]).unwrap();
        let p = t.path().join("a.sh");
        std::fs::write(&p, "old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        write(&roots, &p.to_string_lossy(), b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert_eq!(
            std::fs::read_dir(t.path()).unwrap().count(),
            1,
            "no temp file left behind"
        );
    }

    #[test]
    fn excludes_match_names_anywhere() {
        let g = excludes(&["node_modules".into(), "*.log".into(), "src/gen/*".into()]).unwrap();
        assert!(g.is_match("node_modules"));
        assert!(g.is_match("a/b/node_modules"));
        assert!(g.is_match("x/y.log"));
        assert!(g.is_match("src/gen/a.rs"));
        assert!(!g.is_match("lib/gen/a.rs"));
        assert!(!g.is_match("node_modules_x"));
    }
}
