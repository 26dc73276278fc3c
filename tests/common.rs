//! Shared test support: the fault server (started once per test binary unless
//! `ZEKE_TEST_FAULT_URL` names a running one), and the zeke binary path.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

struct Server {
    url: String,
    _child: Option<Child>,
    /// Our end of the server's stdin: closed when this process exits (statics are never
    /// dropped), which makes the server exit too (`--exit-with-stdin`).
    _stdin: Option<std::process::ChildStdin>,
}

static FAULT: OnceLock<Server> = OnceLock::new();

/// Base URL of the fault server (see `tests/support/fault_server.py`).
pub fn fault_url() -> String {
    FAULT
        .get_or_init(|| {
            if let Ok(url) = std::env::var("ZEKE_TEST_FAULT_URL") {
                return Server {
                    url,
                    _child: None,
                    _stdin: None,
                };
            }
            let mut child = Command::new("python3")
                .arg(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/support/fault_server.py"
                ))
                .arg("--exit-with-stdin")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("python3 runs the fault server");
            let mut line = String::new();
            std::io::BufReader::new(child.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            Server {
                url: format!("http://127.0.0.1:{}", line.trim()),
                _stdin: child.stdin.take(),
                _child: Some(child),
            }
        })
        .url
        .clone()
}

/// The zeke binary built for this test run (`$ZEKE_BIN`, else cargo's), as an absolute path.
pub fn zeke_bin() -> String {
    let bin = std::env::var("ZEKE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_zeke").to_string());
    // absolute, so that tests may run it from another working directory
    std::fs::canonicalize(&bin)
        .map(|p| p.display().to_string())
        .unwrap_or(bin)
}

pub fn rt() -> tokio::runtime::Runtime {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}
