//! The only place Zeke starts a process (checked by `tests/tidy.rs`).
//!
//! Every command runs with an explicit program and arguments (no shell unless the caller asks for
//! `sh -c`, as `*_cmd` config keys do), a working directory, a time limit, stdin closed. When the
//! limit passes or its future is dropped (a cancelled call, a client gone), it is ended
//! gracefully: SIGTERM, up to [`GRACE`] to exit (git removes its `index.lock` then), then
//! SIGKILL — so a killed `git add` does not leave a lock that blocks every later git write. A
//! command line run for a model ([`run_command`]) gets a process group of its own, and the whole
//! group is ended that way, also after the shell exits (nothing it started in the background
//! outlives the call). So does a server spoken to over its pipes ([`spawn_piped`]: an external
//! MCP server), its group stopped that way when its [`Piped`] handle is dropped.
//!
//! Programs are started by absolute path ([`resolve`]): a bare name is looked up once per process
//! in the absolute entries of `$PATH` only. An empty, `.` or other relative entry is skipped, since
//! the OS would resolve it against the child's working directory — a repository a client can write
//! to, where a planted `git` would otherwise run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

/// What a finished command printed.
#[derive(Debug)]
pub struct Output {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Why a command did not produce output.
#[derive(Debug, thiserror::Error)]
pub enum SysError {
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{program} did not finish within {secs} s")]
    Timeout { program: String, secs: u64 },
    #[error(
        "cannot find {program}: it is in none of the absolute directories of PATH ({searched}); \
         empty and relative PATH entries are skipped on purpose"
    )]
    NotFound { program: String, searched: String },
}

static RESOLVED: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);

/// The absolute path of `program`: itself when it is an absolute path; for a bare name, the first
/// executable file of that name in an absolute `$PATH` entry, found once and then remembered for
/// the process (a later write into a `PATH` directory cannot swap it). A relative path with a `/`
/// (`./git`) is refused, like a name found nowhere: `Err(SysError::NotFound)`.
pub fn resolve(program: &str) -> Result<PathBuf, SysError> {
    let path = Path::new(program);
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    let mut cache = RESOLVED.lock().unwrap_or_else(|e| e.into_inner());
    let cache = cache.get_or_insert_with(HashMap::new);
    if let Some(p) = cache.get(program) {
        return Ok(p.clone());
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let found = if program.contains('/') || program.is_empty() {
        None
    } else {
        find_in(program, &path_var)
    };
    match found {
        Some(p) => {
            cache.insert(program.to_string(), p.clone());
            Ok(p)
        }
        None => Err(SysError::NotFound {
            program: program.to_string(),
            searched: std::env::split_paths(&path_var)
                .filter(|d| d.is_absolute())
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(":"),
        }),
    }
}

/// The first executable regular file `dir/name` over the absolute directories of `path_var`.
fn find_in(name: &str, path_var: &std::ffi::OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path_var)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Runs `program args…` in `cwd`, waits at most `timeout`, and returns its output. On time-out,
/// or when the returned future is dropped, the child is ended gracefully (SIGTERM, then SIGKILL
/// after [`GRACE`]).
pub async fn run(
    program: &str,
    args: &[&str],
    cwd: Option<&Path>,
    timeout: Duration,
) -> Result<Output, SysError> {
    run_env(program, args, cwd, &Env::default(), timeout).await
}

/// Environment changes for [`run_env`]: variables to remove, then variables to set.
#[derive(Debug, Default, Clone)]
pub struct Env<'a> {
    pub remove: &'a [&'a str],
    pub set: &'a [(&'a str, &'a str)],
}

/// [`run`] with environment changes (e.g. git run with `GIT_DIR` removed and `LC_ALL=C` set).
pub async fn run_env(
    program: &str,
    args: &[&str],
    cwd: Option<&Path>,
    env: &Env<'_>,
    timeout: Duration,
) -> Result<Output, SysError> {
    let exe = resolve(program)?;
    let mut cmd = tokio::process::Command::new(&exe);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(cwd) = cwd {
        cmd.current_dir(cwd);
    }
    for k in env.remove {
        cmd.env_remove(k);
    }
    for (k, v) in env.set {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().map_err(|source| SysError::Spawn {
        program: program.to_string(),
        source,
    })?;
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let mut running = Running(Some(child));
    let collect = async {
        use tokio::io::AsyncReadExt;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let read_out = async {
            if let Some(mut s) = stdout {
                let _ = s.read_to_end(&mut out).await;
            }
        };
        let read_err = async {
            if let Some(mut s) = stderr {
                let _ = s.read_to_end(&mut err).await;
            }
        };
        tokio::join!(read_out, read_err);
        let status = match running.0.as_mut() {
            Some(c) => c.wait().await,
            None => Err(std::io::Error::other("no child")),
        };
        (status, out, err)
    };
    let result = tokio::time::timeout(timeout, collect).await;
    match result {
        Err(_) => Err(SysError::Timeout {
            program: program.to_string(),
            secs: timeout.as_secs(),
        }),
        Ok((Err(source), _, _)) => Err(SysError::Spawn {
            program: program.to_string(),
            source,
        }),
        Ok((Ok(status), out, err)) => {
            running.0 = None; // exited and reaped
            Ok(Output {
                status: status.code(),
                stdout: String::from_utf8_lossy(&out).into_owned(),
                stderr: String::from_utf8_lossy(&err).into_owned(),
            })
        }
    }
}

/// How long a program asked to stop (SIGTERM) may take before it is killed.
pub const GRACE: Duration = Duration::from_secs(2);

/// A child still running; dropping it ends the child gracefully (see the module docs).
struct Running(Option<tokio::process::Child>);

impl Drop for Running {
    fn drop(&mut self) {
        let Some(mut child) = self.0.take() else {
            return;
        };
        if !matches!(child.try_wait(), Ok(None)) {
            return; // already exited
        }
        if let Some(pid) = child
            .id()
            .and_then(|id| rustix::process::Pid::from_raw(id as i32))
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        // wait for it off the async workers; the process may exit first, the signal is sent
        let _ = std::thread::Builder::new()
            .name("zeke-reap".into())
            .spawn(move || {
                let deadline = std::time::Instant::now() + GRACE;
                while std::time::Instant::now() < deadline {
                    if !matches!(child.try_wait(), Ok(None)) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                tracing::warn!("a program did not stop within {GRACE:?} of SIGTERM; killing it");
                let _ = child.start_kill();
                let _ = child.try_wait();
            });
    }
}

/// Runs a user-configured shell command line (`sh -c LINE`), e.g. an `api_key_cmd`.
pub async fn run_shell(line: &str, timeout: Duration) -> Result<Output, SysError> {
    run("sh", &["-c", line], None, timeout).await
}

/// What one output stream of a [`run_command`] command printed: all of it in `head` when it fits
/// the cap, else its first bytes in `head` and its last in `tail`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Captured {
    pub head: Vec<u8>,
    pub tail: Vec<u8>,
    /// Bytes written to the stream in all.
    pub total: u64,
}

impl Captured {
    /// Bytes left out between `head` and `tail`.
    pub fn cut(&self) -> u64 {
        self.total - (self.head.len() + self.tail.len()) as u64
    }
}

/// How a [`run_command`] command ended.
#[derive(Debug)]
pub struct Finished {
    /// The shell's exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    /// The signal that ended the shell, if one did.
    pub signal: Option<i32>,
    /// The time limit passed and the command was stopped.
    pub timed_out: bool,
    /// The caller cancelled and the command was stopped.
    pub cancelled: bool,
    /// It exited leaving processes in its group, and they were stopped.
    pub stray: bool,
    pub stdout: Captured,
    pub stderr: Captured,
    pub elapsed: Duration,
}

/// Keeps the first and the last bytes of a stream, at most `cap` in all.
struct Capture {
    head_cap: usize,
    tail_cap: usize,
    head: Vec<u8>,
    tail: std::collections::VecDeque<u8>,
    total: u64,
}

impl Capture {
    fn new(cap: usize) -> Capture {
        Capture {
            head_cap: cap / 2,
            tail_cap: cap - cap / 2,
            head: Vec::new(),
            tail: Default::default(),
            total: 0,
        }
    }

    fn push(&mut self, mut b: &[u8]) {
        self.total += b.len() as u64;
        let take = b.len().min(self.head_cap - self.head.len());
        self.head.extend_from_slice(&b[..take]);
        b = &b[take..];
        if b.len() >= self.tail_cap {
            self.tail.clear();
            b = &b[b.len() - self.tail_cap..];
        }
        self.tail.extend(b);
        let over = self.tail.len().saturating_sub(self.tail_cap);
        self.tail.drain(..over);
    }

    fn take(&mut self) -> Captured {
        Captured {
            head: std::mem::take(&mut self.head),
            tail: std::mem::take(&mut self.tail).into(),
            total: self.total,
        }
    }
}

/// Reads `stream` to its end into a shared [`Capture`] (shared, so what came is kept when the
/// reader is given up on).
fn capture<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    stream: Option<R>,
    cap: usize,
) -> (std::sync::Arc<Mutex<Capture>>, tokio::task::JoinHandle<()>) {
    let buf = std::sync::Arc::new(Mutex::new(Capture::new(cap)));
    let shared = buf.clone();
    let task = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let Some(mut s) = stream else { return };
        let mut chunk = vec![0u8; 16 * 1024];
        while let Ok(n @ 1..) = s.read(&mut chunk).await {
            shared
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(&chunk[..n]);
        }
    });
    (buf, task)
}

/// Whether a process of group `pgid` still runs. A zombie does not count: it holds nothing open,
/// and its reaping is up to whoever adopted it (an init that reaps slowly must not make every
/// stop last the whole grace), so on Linux `/proc` is asked which members are more than that.
fn alive(pgid: rustix::process::Pid) -> bool {
    if rustix::process::test_kill_process_group(pgid).is_err() {
        return false;
    }
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return true;
    };
    let want = pgid.as_raw_nonzero().get().to_string();
    procs.flatten().any(|e| {
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses
        let mut rest = stat
            .rsplit_once(')')
            .map(|(_, r)| r.split_whitespace())
            .into_iter()
            .flatten();
        let state = rest.next();
        let pgrp = rest.nth(1);
        pgrp == Some(want.as_str()) && !matches!(state, Some("Z" | "X") | None)
    })
}

/// A command's process group; dropping it stops the group gracefully (SIGTERM, then SIGKILL
/// after [`GRACE`], from a thread of its own).
struct Group {
    child: Option<tokio::process::Child>,
    pgid: Option<rustix::process::Pid>,
}

impl Group {
    /// Whether the shell has exited and no process is left in its group.
    fn settled(&mut self, pgid: rustix::process::Pid) -> bool {
        let reaped = self
            .child
            .as_mut()
            .is_none_or(|c| !matches!(c.try_wait(), Ok(None)));
        reaped && !alive(pgid)
    }

    /// Stops every process of the group: SIGTERM, then SIGKILL to what is left after [`GRACE`].
    async fn stop(&mut self) {
        let Some(pgid) = self.pgid else { return };
        let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::TERM);
        let deadline = std::time::Instant::now() + GRACE;
        while !self.settled(pgid) {
            if std::time::Instant::now() >= deadline {
                let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
                if let Some(c) = self.child.as_mut() {
                    let _ = c.wait().await;
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.pgid = None;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let Some(pgid) = self.pgid.take() else {
            return;
        };
        let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::TERM);
        let mut rest = Group {
            child: self.child.take(),
            pgid: None,
        };
        let _ = std::thread::Builder::new()
            .name("zeke-reap".into())
            .spawn(move || {
                let deadline = std::time::Instant::now() + GRACE;
                while !rest.settled(pgid) {
                    if std::time::Instant::now() >= deadline {
                        let _ = rustix::process::kill_process_group(
                            pgid,
                            rustix::process::Signal::KILL,
                        );
                        if let Some(c) = rest.child.as_mut() {
                            let _ = c.start_kill();
                            let _ = c.try_wait();
                        }
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
    }
}

/// Runs the shell command line `line` (`/bin/sh -c LINE`, the line one argument, never
/// re-interpreted here) in `cwd`, in a process group of its own, stdin `/dev/null`, without the
/// inherited variables `hide_env` names, keeping at most `cap` bytes of each output stream (its
/// first and last halves; the rest is read and counted). The whole group is stopped (SIGTERM,
/// then SIGKILL after [`GRACE`]) when `timeout` passes, when `ct` is cancelled, when the future is
/// dropped, and after the shell exits (whatever it left running in the background): nothing it
/// started outlives the call unless it left the group. `Err` only when it cannot start.
pub async fn run_command(
    line: &str,
    cwd: &Path,
    hide_env: fn(&std::ffi::OsStr) -> bool,
    timeout: Duration,
    cap: usize,
    ct: &tokio_util::sync::CancellationToken,
) -> Result<Finished, SysError> {
    use std::os::unix::process::ExitStatusExt;
    let started = std::time::Instant::now();
    let mut cmd = tokio::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(line)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for (k, _) in std::env::vars_os() {
        if hide_env(&k) {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd.spawn().map_err(|source| SysError::Spawn {
        program: "/bin/sh".into(),
        source,
    })?;
    let pgid = child
        .id()
        .and_then(|id| rustix::process::Pid::from_raw(id as i32));
    let (out, mut out_task) = capture(child.stdout.take(), cap);
    let (err, mut err_task) = capture(child.stderr.take(), cap);
    let mut group = Group {
        child: Some(child),
        pgid,
    };
    let (mut timed_out, mut cancelled) = (false, false);
    let exited = match group.child.as_mut() {
        Some(c) => tokio::select! {
            s = c.wait() => s.is_ok(),
            _ = tokio::time::sleep(timeout) => { timed_out = true; false }
            _ = ct.cancelled() => { cancelled = true; false }
        },
        None => false,
    };
    let stray = exited && pgid.is_some_and(alive);
    group.stop().await;
    let status = match group.child.as_mut() {
        Some(c) => c.wait().await.ok(),
        None => None,
    };
    // the pipes close when the group is gone; a process that left the group holding them is not
    // waited for
    let drain = async {
        let _ = (&mut out_task).await;
        let _ = (&mut err_task).await;
    };
    if tokio::time::timeout(Duration::from_millis(500), drain)
        .await
        .is_err()
    {
        out_task.abort();
        err_task.abort();
    }
    let take = |c: &Mutex<Capture>| c.lock().unwrap_or_else(|e| e.into_inner()).take();
    Ok(Finished {
        code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        timed_out,
        cancelled,
        stray,
        stdout: take(&out),
        stderr: take(&err),
        elapsed: started.elapsed(),
    })
}

/// A long-running child started by [`spawn_piped`], in a process group of its own. Dropping it
/// stops the whole group gracefully (SIGTERM, then SIGKILL after [`GRACE`]).
pub struct Piped {
    group: Mutex<Group>,
    pid: Option<u32>,
}

impl Piped {
    /// The child's process id (also its process group's).
    pub fn id(&self) -> Option<u32> {
        self.pid
    }

    /// Whether the child has exited (it is reaped then).
    pub fn exited(&self) -> bool {
        let mut g = self.group.lock().unwrap_or_else(|e| e.into_inner());
        g.child
            .as_mut()
            .is_none_or(|c| !matches!(c.try_wait(), Ok(None)))
    }
}

/// What [`spawn_piped`] started: the handle and our ends of the child's three pipes.
pub struct Spawned {
    pub process: Piped,
    pub stdin: tokio::process::ChildStdin,
    pub stdout: tokio::process::ChildStdout,
    pub stderr: tokio::process::ChildStderr,
}

/// Starts `program args…` (resolved by [`resolve`]) as a server spoken to over its pipes: stdin,
/// stdout and stderr piped, in a process group of its own, in `cwd` (default: ours), without the
/// inherited variables `hide_env` names, with `set` added. The caller reads stderr (or drops it).
pub fn spawn_piped(
    program: &str,
    args: &[String],
    set: &[(&str, &str)],
    hide_env: fn(&std::ffi::OsStr) -> bool,
    cwd: Option<&Path>,
) -> Result<Spawned, SysError> {
    let exe = resolve(program)?;
    let mut cmd = tokio::process::Command::new(&exe);
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for (k, _) in std::env::vars_os() {
        if hide_env(&k) {
            cmd.env_remove(k);
        }
    }
    for (k, v) in set {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().map_err(|source| SysError::Spawn {
        program: program.to_string(),
        source,
    })?;
    let pid = child.id();
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        unreachable!("all three are piped");
    };
    let pgid = pid.and_then(|id| rustix::process::Pid::from_raw(id as i32));
    let child = Some(child);
    let group = Mutex::new(Group { child, pgid });
    let process = Piped { group, pid };
    Ok(Spawned {
        process,
        stdin,
        stdout,
        stderr,
    })
}

/// Resident set size of this process in KiB (Linux `/proc/self/status` `VmRSS`), if known.
pub fn rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests;
