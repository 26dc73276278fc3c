//! The only place Zeke starts a process (checked by `tests/tidy.rs`).
//!
//! Every command runs with an explicit program and arguments (no shell unless the caller asks for
//! `sh -c`, as `*_cmd` config keys do), a working directory, a time limit, stdin closed, and is
//! killed when its future is dropped.

use std::path::Path;
use std::process::Stdio;
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
}

/// Runs `program args…` in `cwd`, waits at most `timeout`, and returns its output. The child is
/// killed on time-out or when the returned future is dropped.
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
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(cwd) = cwd {
        cmd.current_dir(cwd);
    }
    for k in env.remove {
        cmd.env_remove(k);
    }
    for (k, v) in env.set {
        cmd.env(k, v);
    }
    let child = cmd.spawn().map_err(|source| SysError::Spawn {
        program: program.to_string(),
        source,
    })?;
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => Err(SysError::Timeout {
            program: program.to_string(),
            secs: timeout.as_secs(),
        }),
        Ok(Err(source)) => Err(SysError::Spawn {
            program: program.to_string(),
            source,
        }),
        Ok(Ok(out)) => Ok(Output {
            status: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }),
    }
}

/// Runs a user-configured shell command line (`sh -c LINE`), e.g. an `api_key_cmd`.
pub async fn run_shell(line: &str, timeout: Duration) -> Result<Output, SysError> {
    run("sh", &["-c", line], None, timeout).await
}

/// Resident set size of this process in KiB (Linux `/proc/self/status` `VmRSS`), if known.
pub fn rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
