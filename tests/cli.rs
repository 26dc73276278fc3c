//! The one-shot CLI commands spoken to through the real binary: what a person sees when a key
//! command fails, and which programs `zeke doctor` says Zeke will run.

use std::process::Command;

use crate::common::zeke_bin;

#[test]
fn a_failing_api_key_cmd_never_shows_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    // a key command that prints the key (to both streams) and then fails
    std::fs::write(
        &config,
        "[providers.cloud]\nkind = \"openai\"\nurl = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\n\
         api_key_cmd = \"echo sk-LEAKED-1; echo sk-LEAKED-2 >&2; exit 3\"\n",
    )
    .unwrap();
    let out = Command::new(zeke_bin())
        .args(["ask", "--provider", "cloud", "hello"])
        .env("ZEKE_CONFIG", &config)
        .env_remove("ZEKE_LOG")
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{all}");
    assert!(
        all.contains("providers.cloud.api_key_cmd failed (exited with status 3)"),
        "the message names the key and the exit status: {all}"
    );
    assert!(
        !all.contains("sk-LEAKED"),
        "the key command's output was shown: {all}"
    );
}

#[test]
fn doctor_names_the_git_binary_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "").unwrap();
    let real_path = std::env::var("PATH").unwrap();
    let out = Command::new(zeke_bin())
        .arg("doctor")
        .current_dir(dir.path())
        .env("ZEKE_CONFIG", &config)
        // a relative entry first: never used
        .env("PATH", format!(".:{real_path}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("git: "))
        .unwrap_or_else(|| panic!("no git line: {text}"));
    let path = line
        .split("git: ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap();
    assert!(line.starts_with("ok"), "{line}");
    assert!(
        std::path::Path::new(path).is_absolute() && std::path::Path::new(path).ends_with("git"),
        "{line}"
    );
}

/// `zeke tool` in a fresh `$HOME` holding a git repository, with `config` as the Zeke config:
/// (exit code, stdout, stderr).
fn tool(home: &std::path::Path, config: &str, args: &[&str]) -> (i32, String, String) {
    let cfg = home.join("zeke-config.toml");
    std::fs::write(&cfg, config).unwrap();
    let out = Command::new(zeke_bin())
        .arg("tool")
        .args(args)
        .arg("--root")
        .arg(home)
        .env("HOME", home)
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("ZEKE_CONFIG", &cfg)
        .env_remove("ZEKE_AUDIT_LOG")
        .env_remove("ZEKE_LOG")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The CLI surface of the one gate: deny refuses naming the rule, prompt is refused with the
/// config lines that would allow it (the command line cannot ask), allow runs — for `fs.write`
/// and `git.write` — and every call lands in the one audit log as client `cli`.
#[test]
fn zeke_tool_goes_through_the_gate() {
    let home = tempfile::tempdir().unwrap();
    let home = std::fs::canonicalize(home.path()).unwrap();
    let repo = home.join("proj");
    std::fs::create_dir_all(repo.join(".git")).unwrap();
    let status = Command::new("git")
        .args(["init", "-q"])
        .arg(&repo)
        .status()
        .unwrap();
    assert!(status.success());
    let target = repo.join("a.txt");
    let write = format!(r#"{{"path": "{}", "content": "hello"}}"#, target.display());
    let stage = format!(
        r#"{{"repo_path": "{}", "files": ["a.txt"]}}"#,
        repo.display()
    );

    // prompt (the default): refused with the exact TOML that allows it
    let (code, _, err) = tool(&home, "", &["write_file", &write]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("refused (rule policy-prompt)"), "{err}");
    assert!(
        err.contains(&format!(
            "[scopes.\"root:{}\"]\n\"fs.write\" = \"allow\"",
            repo.display()
        )),
        "names the config lines: {err}"
    );
    assert!(!target.exists(), "nothing written");

    // deny: refused naming the rule
    let deny = "[capabilities]\n\"fs.write\" = \"deny\"\n\"git.write\" = \"deny\"\n";
    let (code, _, err) = tool(&home, deny, &["write_file", &write]);
    assert_eq!(code, 1);
    assert!(
        err.contains("refused (rule policy-deny): fs.write is denied"),
        "{err}"
    );
    assert!(!target.exists());

    // allow: runs
    let allow = "[capabilities]\n\"fs.write\" = \"allow\"\n\"git.write\" = \"allow\"\n";
    let (code, out, err) = tool(&home, allow, &["write_file", &write]);
    assert_eq!(
        (code, out.trim()),
        (
            0,
            format!("Successfully wrote to {}", target.display()).as_str()
        ),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "hello");

    // git.write the same way
    let (code, _, err) = tool(&home, "", &["git_add", &stage]);
    assert!(code == 1 && err.contains("git.write = \"prompt\""), "{err}");
    let (code, _, err) = tool(&home, deny, &["git_add", &stage]);
    assert!(code == 1 && err.contains("git.write is denied"), "{err}");
    let (code, out, err) = tool(&home, allow, &["git_add", &stage]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = tool(
        &home,
        "",
        &["git_status", &stage.replace(", \"files\": [\"a.txt\"]", "")],
    );
    assert!(code == 0 && out.contains("new file:   a.txt"), "{out}");

    // a protected file stays refused even where writing is allowed
    let gitconfig = format!(
        r#"{{"path": "{}", "content": "[core]\n\tfsmonitor = touch /tmp/pwned\n"}}"#,
        home.join(".gitconfig").display()
    );
    let (code, _, err) = tool(&home, allow, &["write_file", &gitconfig]);
    assert!(
        code == 1 && err.contains("refused (rule protected-path)"),
        "{err}"
    );
    assert!(!home.join(".gitconfig").exists());

    // an unknown tool is a usage error; the list names every tool with its capability
    let (code, _, err) = tool(&home, "", &["no_such_tool"]);
    assert!(
        code == 2 && err.contains("Unknown tool: no_such_tool"),
        "{err}"
    );
    let (_, out, _) = tool(&home, "", &[]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("write_file") && l.contains("fs.write")),
        "{out}"
    );

    // one record per call in the one audit log, each with its decision
    let log = std::fs::read_to_string(home.join(".local/state/zeke/audit.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let outcomes: Vec<&str> = records
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        [
            "denied", "denied", "started", "ok", "denied", "denied", "started", "ok", "ok",
            "refused", "error"
        ]
    );
    assert!(records.iter().all(|r| r["client"] == "cli"));
    assert!(
        records[3]["decisions"][0]
            .as_str()
            .unwrap()
            .starts_with("fs.write allow in"),
        "{}",
        records[3]
    );
}

/// `net.http` on the CLI surface: deny and prompt refuse before any request, allow fetches.
#[test]
fn zeke_tool_fetch_is_gated_by_net_http() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = hits.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { break };
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let body = "<html><body><h2>Served</h2></body></html>";
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let home = tempfile::tempdir().unwrap();
    let home = std::fs::canonicalize(home.path()).unwrap();
    let args = format!(r#"{{"url": "{url}"}}"#);
    let private = "[fetch]\nallow_private = true\n";
    let (code, _, err) = tool(&home, private, &["fetch", &args]);
    assert!(code == 1 && err.contains("net.http = \"prompt\""), "{err}");
    let deny = format!("{private}[capabilities]\n\"net.http\" = \"deny\"\n");
    let (code, _, err) = tool(&home, &deny, &["fetch", &args]);
    assert!(code == 1 && err.contains("net.http is denied"), "{err}");
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no request before approval"
    );
    let allow = format!("{private}[capabilities]\n\"net.http\" = \"allow\"\n");
    let (code, out, err) = tool(&home, &allow, &["fetch", &args]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("Contents of {url}:\n## Served\n"));
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// Recognisable fake keys never appear in anything Zeke writes: stdout and stderr of `zeke ask
/// --json` (a 401, a key command that fails after printing its key to stdout and stderr, a
/// success), `zeke doctor`, `zeke models --probe`, `zeke usage --json`, the trace-level log file,
/// the usage ledger and the audit log.
#[test]
fn fake_keys_never_reach_output_logs_ledger_or_audit_log() {
    let home = tempfile::tempdir().unwrap();
    let env_key = "sk-zeke-LEAKCHECK-env-7f3a9c";
    let cmd_key = "sk-zeke-LEAKCHECK-cmd-51be02";
    let fault = crate::common::fault_url();
    let config = home.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[providers.rejected]\nkind = \"openai\"\nurl = \"{fault}/status/401\"\napi_key_env = \"ZEKE_LEAK_KEY\"\n\
             [providers.badcmd]\nkind = \"anthropic\"\nurl = \"{fault}/ok\"\n\
             api_key_cmd = \"echo {cmd_key}; echo {cmd_key} >&2; exit 3\"\n\
             [providers.good]\nkind = \"openai\"\nurl = \"{fault}/ok\"\napi_key_env = \"ZEKE_LEAK_KEY\"\nlocal = false\n\
             [routes]\nask = [\"rejected\", \"badcmd\", \"good\"]\n"
        ),
    )
    .unwrap();
    let log = home.path().join("zeke.log");
    let run = |args: &[&str]| {
        let out = Command::new(zeke_bin())
            .args(args)
            .env("ZEKE_CONFIG", &config)
            .env("ZEKE_LEAK_KEY", env_key)
            .env("XDG_STATE_HOME", home.path().join("state"))
            .env("HOME", home.path())
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let ask = run(&[
        "ask",
        "--json",
        "--log",
        log.to_str().unwrap(),
        "--log-level",
        "trace",
        "hello",
    ]);
    assert!(
        ask.contains("\"provider\":\"good\""),
        "the third answers: {ask}"
    );
    assert!(
        ask.contains("\"error\":\"auth\""),
        "the 401 and the key command are auth errors: {ask}"
    );
    let mut all = ask;
    all += &run(&["doctor"]);
    all += &run(&["models", "--probe"]);
    all += &run(&["usage", "--json"]);
    all += &run(&["ask", "hello"]);
    // everything Zeke wrote to disk, as bytes (the SQLite ledger, its WAL, the audit log, the log)
    let mut files = vec![log.clone()];
    // (the config file itself names the key command, and so holds its key: not Zeke's writing)
    files.extend(walk(home.path()).into_iter().filter(|f| *f != config));
    for f in &files {
        if let Ok(b) = std::fs::read(f) {
            all += &String::from_utf8_lossy(&b);
        }
    }
    assert!(
        files.iter().any(|f| f.ends_with("usage.sqlite3")),
        "the ledger was written: {files:?}"
    );
    for key in [env_key, cmd_key] {
        assert!(!all.contains(key), "{key} leaked");
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
