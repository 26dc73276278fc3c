//! External MCP servers as tools for the chat agent (`app::mcp_client`), against real processes:
//! `zeke mcp` itself is the external server. Its own audit log (`ZEKE_AUDIT_LOG`, set through the
//! server's `env`) shows what reached it, so a refused call is proven never to have been sent.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::{Map, Value, json};
use zeke::app::audit::Audit;
use zeke::app::gate::{Answer, Asked, Asker, Gate, NoAsker, Question};
use zeke::app::grants::GrantStore;
use zeke::app::mcp_client::{McpCall, McpClients};
use zeke::app::tools::ToolError;
use zeke::config::Config;

use crate::common::{rt, zeke_bin};

/// Answers every question with one answer, remembering what it was asked.
struct Says {
    answer: Answer,
    asked: Mutex<Vec<String>>,
}

impl Asker for Says {
    fn ask<'a>(&'a self, q: &'a Question) -> BoxFuture<'a, Asked> {
        Box::pin(async move {
            let line = format!("{} {} {}", q.tool, q.capability, q.what);
            self.asked.lock().unwrap().push(line);
            Asked::Answer(self.answer.clone())
        })
    }
}

/// A project with one file, the `self` server (`zeke mcp --root PROJECT`) configured, and the
/// outer gate's files.
struct Setup {
    dir: tempfile::TempDir,
    root: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("project");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("a.txt"), "hello from a\n").unwrap();
        let root = std::fs::canonicalize(root).unwrap();
        Setup { dir, root }
    }

    fn inner_audit(&self) -> PathBuf {
        self.dir.path().join("inner-audit.jsonl")
    }

    /// `[mcp_servers.self]` plus `extra` servers, under the policy `policy`.
    fn config(&self, policy: Value, extra: Value) -> Config {
        let t = self.dir.path();
        let mut servers = json!({
            "self": {
                "command": zeke_bin(),
                "args": ["mcp", "--root", self.root.display().to_string()],
                "env": {
                    "ZEKE_AUDIT_LOG": self.inner_audit().display().to_string(),
                    "ZEKE_CONFIG": t.join("no-inner-config.toml").display().to_string(),
                    "XDG_STATE_HOME": t.join("inner-state").display().to_string(),
                    "ZEKE_LOG": "warn",
                },
                "timeout_ms": 20000,
            }
        });
        for (k, v) in extra.as_object().unwrap() {
            servers[k] = v.clone();
        }
        let mut raw = json!({ "mcp_servers": servers });
        for (k, v) in policy.as_object().unwrap() {
            raw[k] = v.clone();
        }
        Config::from_value(raw).unwrap()
    }

    fn gate(&self, config: &Config) -> Gate {
        let t = self.dir.path();
        Gate::new(
            config.policy.clone(),
            GrantStore::load(t.join("grants.json")),
            Audit::new(t.join("outer-audit.jsonl")),
            Some(t.join("config.toml")),
        )
    }

    fn file(&self) -> String {
        self.root.join("a.txt").display().to_string()
    }
}

/// The records of a JSON-lines audit log (none when it does not exist).
fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn tools_called(path: &Path, tool: &str) -> usize {
    records(path).iter().filter(|r| r["tool"] == tool).count()
}

fn args(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

async fn call(
    clients: &McpClients,
    gate: &Gate,
    asker: &dyn Asker,
    root: &Path,
    name: &str,
    a: Value,
) -> Result<String, ToolError> {
    clients
        .call(
            gate,
            McpCall {
                name,
                args: args(a),
                scope_root: root,
                asker,
                ct: Default::default(),
                client: Some("agent-test"),
            },
        )
        .await
}

#[test]
fn the_tools_of_another_zeke_are_listed_namespaced_and_called_when_allowed() {
    let s = Setup::new();
    let config = s.config(json!({"capabilities": {"mcp.call": "allow"}}), json!({}));
    let gate = s.gate(&config);
    let never = NoAsker("the test never asks");
    rt().block_on(async {
        let clients = McpClients::new(&config);
        assert_eq!(clients.pid("self").await, None, "started on first use only");
        let tools = clients.tools().await;
        let read = tools
            .iter()
            .find(|t| t.name == "self__read_text_file")
            .unwrap_or_else(|| panic!("{:?}", tools.iter().map(|t| &t.name).collect::<Vec<_>>()));
        assert_eq!(
            (read.server.as_str(), read.tool.as_str()),
            ("self", "read_text_file")
        );
        assert!(read.description.contains("Read"), "{}", read.description);
        assert!(
            read.input_schema["properties"]["path"].is_object(),
            "{}",
            read.input_schema
        );
        assert!(tools.iter().any(|t| t.name == "self__list_directory"));
        assert!(
            tools
                .iter()
                .all(|t| t.name.len() <= 64 && t.name.starts_with("self__"))
        );
        let text = call(
            &clients,
            &gate,
            &never,
            &s.root,
            "self__read_text_file",
            json!({"path": s.file()}),
        )
        .await
        .unwrap();
        assert_eq!(text, "hello from a\n");
        // an isError result comes back as Failed, with the server's text
        let outside = call(
            &clients,
            &gate,
            &never,
            &s.root,
            "self__read_text_file",
            json!({"path": "/etc/hostname"}),
        )
        .await;
        let Err(ToolError::Failed(m)) = outside else {
            panic!("{outside:?}")
        };
        assert!(m.contains("refused"), "{m}");
        // a name no server offers
        let unknown = call(&clients, &gate, &never, &s.root, "self__nope", json!({})).await;
        assert_eq!(unknown, Err(ToolError::Unknown("self__nope".into())));
    });
    let outer = records(&s.dir.path().join("outer-audit.jsonl"));
    let shown: Vec<(String, String)> = outer
        .iter()
        .map(|r| {
            (
                r["tool"].as_str().unwrap().into(),
                r["outcome"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want = [
        ("self__read_text_file", "ok"),
        ("self__read_text_file", "error"),
        ("self__nope", "error"),
    ];
    assert_eq!(shown, want.map(|(a, b)| (a.to_string(), b.to_string())));
    assert_eq!(outer[0]["arguments"]["path"], s.file());
    assert_eq!(outer[0]["client"], "agent-test");
    let d = outer[0]["decisions"][0].as_str().unwrap();
    assert!(
        d.starts_with("mcp.call allow in ") && d.contains("[capabilities]"),
        "{d}"
    );
    assert_eq!(
        tools_called(&s.inner_audit(), "read_text_file"),
        2,
        "both calls reached the server"
    );
}

#[test]
fn a_denied_call_never_reaches_the_server() {
    let s = Setup::new();
    // denied in this project, allowed elsewhere: the allowed call proves the server's audit works
    let other = s.dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let policy = json!({
        "capabilities": {"mcp.call": "allow"},
        "scopes": {format!("root:{}", s.root.display()): {"mcp.call": "deny"}},
    });
    let config = s.config(policy, json!({}));
    let gate = s.gate(&config);
    let never = NoAsker("the test never asks");
    rt().block_on(async {
        let clients = McpClients::new(&config);
        let r = call(
            &clients,
            &gate,
            &never,
            &s.root,
            "self__read_text_file",
            json!({"path": s.file()}),
        )
        .await;
        let Err(ToolError::Denied(m)) = r else {
            panic!("{r:?}")
        };
        assert!(
            m.contains("rule policy-deny") && m.contains("mcp.call is denied"),
            "{m}"
        );
        assert_eq!(
            tools_called(&s.inner_audit(), "read_text_file"),
            0,
            "no tools/call was sent"
        );
        let ok = call(
            &clients,
            &gate,
            &never,
            &other,
            "self__read_text_file",
            json!({"path": s.file()}),
        )
        .await;
        assert_eq!(ok.as_deref(), Ok("hello from a\n"));
    });
    assert_eq!(
        tools_called(&s.inner_audit(), "read_text_file"),
        1,
        "only the allowed call arrived"
    );
    let outer = records(&s.dir.path().join("outer-audit.jsonl"));
    assert_eq!(outer[0]["outcome"], "denied");
    assert_eq!(outer[1]["outcome"], "ok");
}

#[test]
fn under_prompt_the_user_is_asked_and_a_deny_refuses() {
    let s = Setup::new();
    let config = s.config(json!({}), json!({})); // mcp.call: the built-in prompt
    let gate = s.gate(&config);
    let asker = Says {
        answer: Answer::Deny("not now".into()),
        asked: Mutex::new(Vec::new()),
    };
    let long = "x".repeat(2000);
    rt().block_on(async {
        let clients = McpClients::new(&config);
        let r = call(
            &clients,
            &gate,
            &asker,
            &s.root,
            "self__read_text_file",
            json!({"path": s.file(), "tail": 3, "pad": long}),
        )
        .await;
        let Err(ToolError::Denied(m)) = r else {
            panic!("{r:?}")
        };
        assert!(
            m.starts_with("denied by the user: call self.read_text_file with {"),
            "{m}"
        );
        assert!(m.contains("mcp.call in"), "{m}");
    });
    let asked = asker.asked.lock().unwrap();
    assert_eq!(asked.len(), 1);
    let q = &asked[0];
    let want = "self__read_text_file mcp.call call self.read_text_file with {\"pad\":\"xxx";
    assert!(q.starts_with(want), "{q}");
    assert!(
        q.chars().count() < 600 && q.ends_with('…'),
        "the arguments are cut at 500 characters: {q}"
    );
    assert_eq!(
        tools_called(&s.inner_audit(), "read_text_file"),
        0,
        "no tools/call was sent"
    );
    let outer = records(&s.dir.path().join("outer-audit.jsonl"));
    let d = outer[0]["decisions"][0].as_str().unwrap();
    assert!(d.contains("user denied (not now)"), "{d}");
    assert_eq!(outer[0]["outcome"], "denied");
}

#[test]
fn a_server_that_cannot_start_is_named_and_the_others_still_list() {
    let s = Setup::new();
    let ghost = json!({"ghost": {"command": "/nonexistent/zeke-mcp-server", "args": ["x"]}});
    let config = s.config(json!({"capabilities": {"mcp.call": "allow"}}), ghost);
    let gate = s.gate(&config);
    rt().block_on(async {
        let clients = McpClients::new(&config);
        let listing = clients.list().await;
        assert!(listing.tools.iter().any(|t| t.name == "self__read_text_file"));
        assert!(listing.tools.iter().all(|t| t.server == "self"));
        assert_eq!(listing.failed.len(), 1, "{:?}", listing.failed);
        let f = &listing.failed[0];
        assert_eq!(f.server, "ghost");
        assert!(
            f.message.contains("MCP server \"ghost\" (/nonexistent/zeke-mcp-server in [mcp_servers.ghost]) could not be started")
                && f.message.contains("No such file"),
            "{}",
            f.message
        );
        let r = call(&clients, &gate, &NoAsker("-"), &s.root, "ghost__x", json!({})).await;
        assert_eq!(r, Err(ToolError::Unknown("ghost__x".into())));
    });
}

#[test]
fn a_server_that_exits_or_stays_silent_at_the_handshake_is_named_with_why() {
    let s = Setup::new();
    let broken = json!({
        "crash": {"command": "sh", "args": ["-c", "echo boom: bad flag >&2; exit 3"]},
        "mute": {"command": "sh", "args": ["-c", "sleep 30"], "timeout_ms": 300},
    });
    let config = s.config(json!({}), broken);
    rt().block_on(async {
        let clients = McpClients::new(&config);
        let listing = clients.list().await;
        assert!(
            listing
                .tools
                .iter()
                .any(|t| t.name == "self__read_text_file")
        );
        let why: Vec<(&str, &str)> = (listing.failed.iter())
            .map(|f| (f.server.as_str(), f.message.as_str()))
            .collect();
        assert_eq!(why.len(), 2, "{why:?}");
        let (crash, mute) = (why[0].1, why[1].1);
        assert!(
            crash.contains("the MCP handshake failed")
                && crash.ends_with("its stderr ended: boom: bad flag"),
            "{crash}"
        );
        assert!(
            mute.contains("no answer to initialize within 300 ms"),
            "{mute}"
        );
    });
}

#[test]
fn a_killed_server_is_started_again_on_the_next_call_and_stopped_on_drop() {
    let s = Setup::new();
    let config = s.config(json!({"capabilities": {"mcp.call": "allow"}}), json!({}));
    let gate = s.gate(&config);
    let never = NoAsker("-");
    let read = json!({"path": s.file()});
    let second = rt().block_on(async {
        let clients = McpClients::new(&config);
        let first = call(
            &clients,
            &gate,
            &never,
            &s.root,
            "self__read_text_file",
            read.clone(),
        )
        .await;
        assert_eq!(first.as_deref(), Ok("hello from a\n"));
        let pid = clients.pid("self").await.unwrap();
        kill(pid);
        for _ in 0..250 {
            if clients.pid("self").await.is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(clients.pid("self").await, None, "the death is seen");
        let again = call(
            &clients,
            &gate,
            &never,
            &s.root,
            "self__read_text_file",
            read.clone(),
        )
        .await;
        assert_eq!(again.as_deref(), Ok("hello from a\n"), "started again");
        let second = clients.pid("self").await.unwrap();
        assert_ne!(second, pid);
        second
    });
    // the runtime and the clients are gone: the server's group is stopped
    assert!(gone_soon(second), "the server outlived its McpClients");
}

fn kill(pid: u32) {
    let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
}

/// Whether `pid` is gone (or a zombie) within a few seconds.
fn gone_soon(pid: u32) -> bool {
    for _ in 0..250 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().next());
        if matches!(state, None | Some("Z" | "X")) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn a_piped_program_talks_over_its_pipes_and_hides_api_keys() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    rt().block_on(async {
        let script = "read l; echo \"got $l ${ZEKE_T_API_KEY:-none}\"; echo \"$V\" >&2; sleep 30"
            .to_string();
        let hide = |k: &std::ffi::OsStr| k.to_string_lossy().ends_with("_API_KEY");
        // SAFETY: single-threaded runtime, no other thread reads the environment right now
        unsafe { std::env::set_var("ZEKE_T_API_KEY", "secret") };
        let mut p =
            zeke::sys::spawn_piped("sh", &["-c".into(), script], &[("V", "set")], hide, None)
                .unwrap();
        p.stdin.write_all(b"hi\n").await.unwrap();
        let mut out = String::new();
        tokio::io::BufReader::new(&mut p.stdout)
            .read_line(&mut out)
            .await
            .unwrap();
        let mut err = String::new();
        tokio::io::BufReader::new(&mut p.stderr)
            .read_line(&mut err)
            .await
            .unwrap();
        assert_eq!((out.as_str(), err.as_str()), ("got hi none\n", "set\n"));
        let pid = p.process.id().unwrap();
        assert!(!p.process.exited());
        drop(p);
        assert!(gone_soon(pid), "dropping the handle stops the program");
        let missing = zeke::sys::spawn_piped("/nonexistent/zeke-x", &[], &[], hide, None);
        assert!(matches!(missing, Err(zeke::sys::SysError::Spawn { .. })));
    });
}

#[test]
fn mcp_servers_config_is_validated_naming_each_key() {
    let ok = Config::from_value(json!({"mcp_servers": {"gh-1_x": {
        "command": "github-mcp", "args": ["stdio"], "env": {"TOKEN": "t"}, "timeout_ms": 5000
    }}}))
    .unwrap();
    let s = &ok.mcp_servers["gh-1_x"];
    assert_eq!(
        (s.name.as_str(), s.command.as_str(), s.args.as_slice()),
        ("gh-1_x", "github-mcp", &["stdio".to_string()][..])
    );
    assert_eq!(
        (s.env["TOKEN"].as_str(), s.timeout),
        ("t", Duration::from_secs(5))
    );
    let d = Config::from_value(json!({"mcp_servers": {"a": {"command": "x"}}})).unwrap();
    assert_eq!(
        (d.mcp_servers["a"].timeout, d.mcp_servers["a"].args.len()),
        (Duration::from_secs(30), 0)
    );
    let bad = Config::from_value(json!({"mcp_servers": {
        "a.b": {"command": "x"}, "e": {"command": " "}, "t": {"command": "x", "timeout_ms": 5}
    }}))
    .unwrap_err();
    assert_eq!(
        bad.messages,
        [
            "mcp_servers.a.b: a server name may hold only A-Z, a-z, 0-9, _ and - (its tools are named NAME__TOOL)",
            "mcp_servers.e.command: must not be empty",
            "mcp_servers.t.timeout_ms: must be between 100 and 3600000 (got 5)",
        ]
    );
    let missing = Config::from_value(json!({"mcp_servers": {"a": {"args": []}}})).unwrap_err();
    assert_eq!(missing.messages, ["mcp_servers.a: missing field `command`"]);
    let unknown = Config::from_value(json!({"mcp_servers": {"a": {"command": "x", "cwd": "/"}}}))
        .unwrap_err();
    assert!(
        unknown.messages[0].starts_with("mcp_servers.a.cwd: unknown field `cwd`"),
        "{:?}",
        unknown.messages
    );
}
