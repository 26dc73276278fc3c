//! The log level does what the docs say on every surface: the config's `log_level` is obeyed,
//! `$ZEKE_LOG` overrides it and `--log-level` overrides both; a bad value gets a message, not
//! silence. Spoken to through the real binary (`zeke mcp` over stdio, `zeke config`).

use std::io::Write;
use std::process::{Command, Stdio};

use crate::common::zeke_bin;

/// Runs `zeke mcp` with `log_level` in its config (if any), the env and args given, makes one
/// tool call, closes stdin and returns (exit code, stderr).
fn mcp_stderr(log_level: Option<&str>, env: Option<&str>, args: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let toml = log_level
        .map(|l| format!("log_level = \"{l}\"\n"))
        .unwrap_or_default();
    std::fs::write(&config, toml).unwrap();
    let mut cmd = Command::new(zeke_bin());
    cmd.arg("mcp")
        .arg("--root")
        .arg(dir.path())
        .args(args)
        .env("ZEKE_CONFIG", &config)
        .env("ZEKE_AUDIT_LOG", dir.path().join("audit.jsonl"))
        .env_remove("ZEKE_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(v) = env {
        cmd.env("ZEKE_LOG", v);
    }
    let mut child = cmd.spawn().expect("zeke mcp starts");
    let mut stdin = child.stdin.take().unwrap();
    let msgs = [
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_allowed_directories","arguments":{}}}"#,
    ];
    for m in msgs {
        // the server may already have exited (a bad flag); that shows in the exit code
        let _ = writeln!(stdin, "{m}");
    }
    // give the call time to be answered before stdin closes: wait for the reply on stdout
    let out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(out).lines();
        while let Some(Ok(l)) = lines.next() {
            if l.contains(r#""id":2"#) {
                break;
            }
        }
    });
    let _ = reader.join();
    drop(stdin);
    let res = child.wait_with_output().unwrap();
    (
        res.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&res.stderr).into_owned(),
    )
}

fn levels(stderr: &str) -> Vec<&'static str> {
    ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"]
        .into_iter()
        .filter(|l| stderr.lines().any(|line| line.contains(&format!(" {l} "))))
        .collect()
}

#[test]
fn mcp_obeys_the_config_log_level_and_what_overrides_it() {
    // the default is info: startup lines, no per-call debug lines
    let (code, err) = mcp_stderr(None, None, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("zeke mcp: roots"), "{err}");
    assert!(!levels(&err).contains(&"DEBUG"), "{err}");

    // log_level = "debug" in the config: each tool call is logged
    let (_, err) = mcp_stderr(Some("debug"), None, &[]);
    assert!(
        err.contains("tool call"),
        "config debug logs tool calls: {err}"
    );

    // log_level = "error": not even the startup line
    let (_, err) = mcp_stderr(Some("error"), None, &[]);
    assert!(!err.contains("zeke mcp: roots"), "{err}");

    // $ZEKE_LOG above the config
    let (_, err) = mcp_stderr(Some("debug"), Some("error"), &[]);
    assert!(
        levels(&err).is_empty(),
        "ZEKE_LOG=error wins over the config: {err}"
    );
    let (_, err) = mcp_stderr(Some("error"), Some("zeke=debug"), &[]);
    assert!(
        err.contains("tool call"),
        "a ZEKE_LOG filter works too: {err}"
    );

    // --log-level above $ZEKE_LOG
    let (_, err) = mcp_stderr(Some("error"), Some("error"), &["--log-level", "debug"]);
    assert!(err.contains("tool call"), "--log-level wins: {err}");
}

#[test]
fn bad_log_settings_are_named() {
    let (code, err) = mcp_stderr(None, None, &["--log-level", "loud"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("invalid value 'loud'"), "{err}");
    assert!(
        err.contains("possible values: error, warn, info, debug, trace"),
        "{err}"
    );

    // a ZEKE_LOG that is no level: a warning naming it, and the config's level still applies
    let (code, err) = mcp_stderr(Some("debug"), Some("verbose"), &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(r#"ZEKE_LOG="verbose" is neither a level"#),
        "{err}"
    );
    assert!(
        err.contains("tool call"),
        "the config's debug applies: {err}"
    );

    // an invalid log_level in the config is refused with the key named
    let (code, err) = mcp_stderr(Some("loud"), None, &[]);
    assert_ne!(code, 0);
    assert!(
        err.contains(r#"log_level: must be one of error, warn, info, debug, trace (got "loud")"#),
        "{err}"
    );
}

#[test]
fn zeke_config_says_which_level_applies_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "log_level = \"debug\"\n").unwrap();
    let run = |env: Option<&str>| {
        let mut cmd = Command::new(zeke_bin());
        cmd.arg("config")
            .env("ZEKE_CONFIG", &config)
            .env_remove("ZEKE_LOG");
        if let Some(v) = env {
            cmd.env("ZEKE_LOG", v);
        }
        let out = cmd.output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = run(None);
    assert!(
        out.contains(
            "log level of zeke nvim / zeke mcp: zeke=debug,warn (from the config's log_level)"
        ),
        "{out}"
    );
    let out = run(Some("trace"));
    assert!(out.contains("zeke=trace,warn (from $ZEKE_LOG)"), "{out}");
}
