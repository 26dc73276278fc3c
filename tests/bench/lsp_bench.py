#!/usr/bin/env python3
"""Zeke's `lsp_*` MCP tools measured beside Serena (PyPI serena-agent), in the same run, over MCP
stdio, on the same generated two-crate Cargo workspace, both driving the same rust-analyzer; and,
as the floor under both, that rust-analyzer driven straight over LSP from this script ("raw").

Measures; asserts nothing. For each server:
  (a) cold start: spawn the server -> `initialize` -> `tools/list` -> the first CORRECT definition
      answer for a fixed position (the `total_area` call in app/src/main.rs must resolve to
      core/src/lib.rs at the line of `pub fn total_area`). An answer that is "still indexing",
      empty or wrong is retried every 100 ms, up to BENCH_LSP_COLD_CAP_S (120 s) from the spawn.
      Median of BENCH_LSP_STARTS (3) starts, each in its own fresh copy of the workspace (nothing
      shared: target/, .serena/), one server process at a time;
  (b) per call p50 / p90 over BENCH_LSP_CALLS (20) calls each of definition, references, hover,
      diagnostics, implementation (where the server has a tool for it) and mcp_floor (a tool that
      touches no language server: the server's own round trip), in the last cold-started session,
      after one warm-up call retried until correct. Every timed answer is checked; wrong ones are
      counted (lsp_<server>_<measure>_wrong_answers).
  Also: which rust-analyzer binary each side really ran and the RSS of the server and of its
  rust-analyzer (both from /proc).

Prints key=value lines, lsp_<server>_<measure>=<value> (<server>: raw, zeke, serena), `n/a (why)`
for a server that is not available (ZEKE_SERENA unset, zeke's tools/list without lsp_*) or fails —
never a failed run — then lsp_<server>_<measure>_added_over_raw_* (server minus raw) and
lsp_ratio_zeke_over_serena_<measure> (zeke time / Serena time; < 1 means zeke is faster).

Python: the MCP client is raw JSON-RPC over stdio written here (as tests/mcp/bench.py does: no SDK
in the loop, so the numbers compare servers, not clients) and needs only the standard library, so
any Python >= 3.8 runs it. Run it with the MCP venv's, like the other MCP benches:

    scripts/deps.sh --bench        # once: installs Serena (and the other bench components)
    eval "$(scripts/deps.sh --env)"; ZEKE_BIN=target/release/zeke "$ZEKE_MCP_PY" tests/bench/lsp_bench.py

Env: ZEKE_BIN (default target/release/zeke), ZEKE_SERENA (serena's `serena` entry point, from
scripts/deps.sh --env; unset -> Serena rows n/a), ZEKE_RUST_ANALYZER (the rust-analyzer Serena and
the raw client run; default the one on PATH, which is what zeke runs too — each side's
lsp_<server>_rust_analyzer_exe row says which binary really ran), BENCH_LSP_CALLS (20),
BENCH_LSP_STARTS (3), BENCH_LSP_COLD_CAP_S (120), BENCH_LSP_BROKEN (1: app/src/main.rs has a type
error, and the diagnostics check wants it reported at its line; 0: the file is clean and the check
wants no error — weaker, as "nothing yet" looks the same; note Serena then waits its full 8 s
publish timeout on every call), BENCH_LSP_ONLY (raw|zeke|serena), BENCH_LSP_VERBOSE (1: the first
answers and each server's stderr tail, on stderr).

Serena is started headless: its own SERENA_HOME (a temp dir; even importing serena otherwise creates
~/.serena) with a serena_config.yml that turns the web dashboard and the GUI log window off and sets
`ls_specific_settings.rust.ls_path` to the same rust-analyzer (without it Serena takes `rustup which
rust-analyzer`, which on a rustup machine is the binary the PATH proxy runs anyway, and may run
`rustup component add rust-analyzer`); the classic one-tool-per-operation interface
(`--agent-interface tools`; Serena 2's default is one Python REPL tool); the `ide` context; and
SERENA_USAGE_REPORTING=false (else it sends a usage ping to oraios-software.de at startup). The
exact command line is printed (lsp_serena_command). Serena has no position-based references or
hover, and no plain definition: its rows say which tool stands in (find_declaration takes a regex
whose group marks the position; it answers the defining symbol with its whole body range, so
"correct" there means: the total_area symbol in core/src/lib.rs whose range holds the line).
Serena's tool calls go through a task queue that polls every 100 ms (serena/task_executor.py), so
each of its calls costs ~100 ms before any LSP work: its mcp_floor row shows that.
"""

import json
import os
import queue
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CALLS = int(os.environ.get("BENCH_LSP_CALLS", "20"))
STARTS = max(1, int(os.environ.get("BENCH_LSP_STARTS", "3")))
COLD_CAP = float(os.environ.get("BENCH_LSP_COLD_CAP_S", "120"))
BROKEN = os.environ.get("BENCH_LSP_BROKEN", "1") != "0"
ONLY = os.environ.get("BENCH_LSP_ONLY", "")
VERBOSE = os.environ.get("BENCH_LSP_VERBOSE", "") not in ("", "0")
RETRY_S = 0.1
CALL_TIMEOUT = 150.0  # one tools/call; Serena's own tool timeout is 240 s by default
MEASURES = ("definition", "references", "hover", "diagnostics", "implementation", "mcp_floor")
OPTIONAL = ("implementation", "mcp_floor")  # rows printed only where the server has the tool


def log(msg):
    print(f"[bench-lsp] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# The workspace. Positions are found in the generated text (never hard-coded line numbers).

LIB_RS = """\
//! Shapes and their areas.
pub mod circle;
pub mod square;

pub use circle::Circle;
pub use square::Square;

/// Something with an area.
pub trait Shape {
    /// The area, in square units.
    fn area(&self) -> f64;

    /// A short name for reports.
    fn name(&self) -> &'static str {
        "shape"
    }
}

/// Sums the areas of all the shapes.
pub fn total_area(shapes: &[&dyn Shape]) -> f64 {
    shapes.iter().map(|s| s.area()).sum()
}

/// The largest area among the shapes, or 0 when there is none.
pub fn largest_area(shapes: &[&dyn Shape]) -> f64 {
    shapes.iter().map(|s| s.area()).fold(0.0, f64::max)
}

/// The mean area (0 for no shapes).
pub fn mean_area(shapes: &[&dyn Shape]) -> f64 {
    if shapes.is_empty() {
        0.0
    } else {
        total_area(shapes) / shapes.len() as f64
    }
}
"""

CIRCLE_RS = """\
use crate::Shape;

/// A circle given by its radius.
#[derive(Debug, Clone, Copy)]
pub struct Circle {
    pub radius: f64,
}

impl Circle {
    pub fn new(radius: f64) -> Self {
        Circle { radius }
    }
}

impl Shape for Circle {
    fn area(&self) -> f64 {
        std::f64::consts::PI * self.radius * self.radius
    }

    fn name(&self) -> &'static str {
        "circle"
    }
}
"""

SQUARE_RS = """\
use crate::Shape;

/// A square given by its side.
#[derive(Debug, Clone, Copy)]
pub struct Square {
    pub side: f64,
}

impl Shape for Square {
    fn area(&self) -> f64 {
        self.side * self.side
    }
}
"""

MAIN_RS = """\
use shape_core::{largest_area, mean_area, total_area, Circle, Shape, Square};

fn report(shapes: &[&dyn Shape]) {
    for s in shapes {
        println!("{}: {:.2}", s.name(), s.area());
    }
    println!("total {:.2}", total_area(shapes));
}

fn main() {
    let c = Circle::new(1.0);
    let s = Square { side: 2.0 };
    let shapes: [&dyn Shape; 2] = [&c, &s];
    println!("{}", total_area(&shapes));
    println!("{} {}", largest_area(&shapes), mean_area(&shapes));
    println!("{}", total_area(&[&c]) + c.area() + s.area());
    report(&shapes);
    {broken}
}
"""
BROKEN_LINE = 'let broken: u32 = "not a number"; // BENCH: deliberate type error'
FIXED_LINE = "let _fixed: u32 = 7; // BENCH: the deliberate error, switched off"


def write_workspace(root: Path, broken: bool):
    files = {
        "Cargo.toml": '[workspace]\nmembers = ["core", "app"]\nresolver = "2"\n',
        "core/Cargo.toml": '[package]\nname = "shape-core"\nversion = "0.1.0"\nedition = "2021"\n\n[lib]\nname = "shape_core"\n',
        "core/src/lib.rs": LIB_RS,
        "core/src/circle.rs": CIRCLE_RS,
        "core/src/square.rs": SQUARE_RS,
        "app/Cargo.toml": '[package]\nname = "app"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\nshape-core = { path = "../core" }\n',
        "app/src/main.rs": MAIN_RS.replace("{broken}", BROKEN_LINE if broken else FIXED_LINE),
    }
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    # a Cargo.lock up front, so rust-analyzer's `cargo metadata` does not write one mid-run
    (root / "Cargo.lock").write_text(
        "# This file is automatically @generated by Cargo.\n# It is not intended for manual editing.\nversion = 4\n\n"
        '[[package]]\nname = "app"\nversion = "0.1.0"\ndependencies = [\n "shape-core",\n]\n\n'
        '[[package]]\nname = "shape-core"\nversion = "0.1.0"\n')
    return files


def find(text, needle, nth=1, offset=0):
    """1-based (line, column in characters) of the nth occurrence of needle, plus offset chars."""
    i = -1
    for _ in range(nth):
        i = text.index(needle, i + 1)
    i += offset
    line = text.count("\n", 0, i) + 1
    col = i - (text.rfind("\n", 0, i) + 1) + 1
    return line, col


class Expect:
    """Where things are in the generated workspace (1-based lines and columns)."""

    def __init__(self, files):
        main, lib = files["app/src/main.rs"], files["core/src/lib.rs"]
        self.main, self.lib = main, lib
        # the definition / hover position: `total_area` in `println!("{}", total_area(&shapes));`
        self.def_needle = 'println!("{}", total_area(&shapes));'
        self.use_pos = find(main, self.def_needle, offset=len('println!("{}", '))
        self.def_pos = find(lib, "pub fn total_area", offset=len("pub fn "))   # where it must land
        # references of total_area: its 4 uses outside the `use` line (3 in main.rs, 1 in lib.rs)
        self.ref_sites = {
            ("app/src/main.rs", find(main, "total_area(shapes)")[0]),
            ("app/src/main.rs", find(main, "total_area(&shapes)")[0]),
            ("app/src/main.rs", find(main, "total_area(&[&c])")[0]),
            ("core/src/lib.rs", find(lib, "total_area(shapes) /")[0]),
        }
        self.signature = "fn total_area(shapes: &[&dyn Shape]) -> f64"
        # the trait method `area`, and where its implementations are
        self.area_pos = find(lib, "fn area(&self) -> f64;", offset=len("fn "))
        self.impl_sites = {("core/src/circle.rs", find(files["core/src/circle.rs"], "fn area")[0]),
                           ("core/src/square.rs", find(files["core/src/square.rs"], "fn area")[0])}
        self.broken_line = find(main, "// BENCH:")[0]


# ---------------------------------------------------------------------------------------------
# A raw MCP client over stdio (newline-delimited JSON-RPC), with timeouts.

class Server:
    def __init__(self, argv, env, cwd, stderr_path):
        self.stderr_path = stderr_path
        self.err = open(stderr_path, "wb")
        self.t0 = time.perf_counter()
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
                                  env=env, cwd=cwd, bufsize=0, start_new_session=True)
        self.q = queue.Queue()
        self.id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                self.q.put(json.loads(line))
            except ValueError:
                log(f"non-JSON line on stdout: {line[:200]!r}")
        self.q.put(None)

    def _send(self, msg):
        self.p.stdin.write((json.dumps(msg) + "\n").encode())
        self.p.stdin.flush()

    def request(self, method, params, timeout=CALL_TIMEOUT):
        self.id += 1
        self._send({"jsonrpc": "2.0", "id": self.id, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no reply to {method} in {timeout:.0f} s")
            try:
                msg = self.q.get(timeout=left)
            except queue.Empty:
                continue
            if msg is None:
                raise RuntimeError(f"server exited during {method} (status {self.p.poll()}); stderr: {self.stderr_tail()}")
            if "method" in msg:
                if "id" in msg:  # a request from the server: answer it, we offer nothing
                    if msg["method"] == "ping":
                        self._send({"jsonrpc": "2.0", "id": msg["id"], "result": {}})
                    elif msg["method"] == "roots/list":
                        self._send({"jsonrpc": "2.0", "id": msg["id"], "result": {"roots": []}})
                    else:
                        self._send({"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32601, "message": "not supported"}})
                continue
            if msg.get("id") == self.id:
                return msg

    def initialize(self):
        r = self.request("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                        "clientInfo": {"name": "zeke-lsp-bench", "version": "1"}})
        if "error" in r:
            raise RuntimeError(f"initialize failed: {r['error']}")
        self._send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return r["result"]

    def tools(self):
        r = self.request("tools/list", {})
        if "error" in r:
            raise RuntimeError(f"tools/list failed: {r['error']}")
        return {t["name"]: t for t in r["result"].get("tools", [])}

    def call(self, name, args, timeout=CALL_TIMEOUT):
        """-> (result dict, seconds). A JSON-RPC error is returned as an isError result."""
        t = time.perf_counter()
        r = self.request("tools/call", {"name": name, "arguments": args}, timeout)
        dt = time.perf_counter() - t
        if "error" in r:
            return {"isError": True, "content": [{"type": "text", "text": f"JSON-RPC error: {r['error']}"}]}, dt
        return r.get("result") or {}, dt

    def stderr_tail(self, n=800):
        try:
            self.err.flush()
            data = Path(self.stderr_path).read_bytes()
            return data[-n:].decode(errors="replace").strip().replace("\n", " | ")
        except OSError:
            return ""

    def close(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        # the server's whole session (it and the rust-analyzer it started): ours, by process group
        try:
            os.killpg(self.p.pid, 15)
            time.sleep(0.3)
            os.killpg(self.p.pid, 9)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.err.close()


# ---------------------------------------------------------------------------------------------
# rust-analyzer driven directly over LSP (Content-Length framed JSON-RPC), no MCP server between:
# the floor under both servers. It looks like Server to the bench: call("lsp_definition", ...)
# answers in the shape zeke's tools document, so Zeke's checks apply to it unchanged.

LSP_CONTENT_MODIFIED, LSP_SERVER_CANCELLED = -32801, -32802


class RawLsp:
    TOOLS = ("lsp_definition", "lsp_references", "lsp_hover", "lsp_implementation", "lsp_diagnostics")

    def __init__(self, argv, env, cwd, stderr_path, root):
        self.root = Path(root)
        self.stderr_path = stderr_path
        self.err = open(stderr_path, "wb")
        self.lock = threading.Lock()
        self.diags = {}      # path relative to root -> the last published diagnostics
        self.opened = set()
        self.t0 = time.perf_counter()
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
                                  env=env, cwd=cwd, bufsize=0, start_new_session=True)
        self.q = queue.Queue()
        self.id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _send(self, msg):
        body = json.dumps(msg).encode()
        with self.lock:
            self.p.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self.p.stdin.flush()

    def _read(self):
        f = self.p.stdout
        try:
            while True:
                length = None
                while True:
                    line = f.readline()
                    if not line:
                        return
                    line = line.strip()
                    if not line:
                        break
                    k, _, v = line.decode().partition(":")
                    if k.lower() == "content-length":
                        length = int(v)
                msg = json.loads(f.read(length))
                if "method" in msg and "id" in msg:  # server -> client request
                    m = msg["method"]
                    if m == "workspace/configuration":
                        result = [None] * len(msg.get("params", {}).get("items", []))
                    else:  # registerCapability, workDoneProgress/create, ...: accept
                        result = None
                    self._send({"jsonrpc": "2.0", "id": msg["id"], "result": result})
                elif "method" in msg:
                    if msg["method"] == "textDocument/publishDiagnostics":
                        prm = msg["params"]
                        self.diags[rel(prm["uri"], self.root)] = prm.get("diagnostics", [])
                else:
                    self.q.put(msg)
        finally:
            self.q.put(None)

    def request(self, method, params, timeout=CALL_TIMEOUT):
        self.id += 1
        self._send({"jsonrpc": "2.0", "id": self.id, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no reply to {method} in {timeout:.0f} s")
            try:
                msg = self.q.get(timeout=left)
            except queue.Empty:
                continue
            if msg is None:
                raise RuntimeError(f"rust-analyzer exited during {method} (status {self.p.poll()})")
            if msg.get("id") == self.id:
                return msg

    def initialize(self):
        uri = self.root.as_uri()
        r = self.request("initialize", {
            "processId": os.getpid(), "rootUri": uri, "workspaceFolders": [{"uri": uri, "name": self.root.name}],
            "capabilities": {
                "general": {"positionEncodings": ["utf-16"]},
                "window": {"workDoneProgress": True},
                "textDocument": {"synchronization": {}, "definition": {"linkSupport": True},
                                 "references": {}, "implementation": {"linkSupport": True},
                                 "hover": {"contentFormat": ["markdown", "plaintext"]},
                                 "publishDiagnostics": {"relatedInformation": False}},
                "workspace": {"configuration": True, "workspaceFolders": True},
                "experimental": {"serverStatusNotification": True}},
            "initializationOptions": {}})
        if "error" in r:
            raise RuntimeError(f"initialize failed: {r['error']}")
        self._send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        return r["result"]

    def tools(self):
        return {t: {} for t in self.TOOLS}

    def _open(self, path):
        path = rel(path if os.path.isabs(path) else self.root / path, self.root)
        if path not in self.opened:
            self.opened.add(path)
            self._send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
                "uri": (self.root / path).as_uri(), "languageId": "rust", "version": 1,
                "text": (self.root / path).read_text()}}})
        return path

    def call(self, name, args, timeout=CALL_TIMEOUT):
        t = time.perf_counter()
        if name == "lsp_diagnostics":  # push diagnostics: what rust-analyzer last published
            path = self._open(args["path"])
            ds = [{"path": path, "line": d["range"]["start"]["line"] + 1, "column": d["range"]["start"]["character"] + 1,
                   "severity": {1: "error", 2: "warning", 3: "information", 4: "hint"}.get(d.get("severity"), "?"),
                   "message": d.get("message", ""), "source": d.get("source"), "code": d.get("code")}
                  for d in self.diags.get(path, [])]
            return {"content": [{"type": "text", "text": json.dumps(ds)}], "structuredContent": {"diagnostics": ds}}, time.perf_counter() - t
        path = self._open(args["path"])
        method = {"lsp_definition": "textDocument/definition", "lsp_references": "textDocument/references",
                  "lsp_hover": "textDocument/hover", "lsp_implementation": "textDocument/implementation"}[name]
        prm = {"textDocument": {"uri": (self.root / path).as_uri()},
               "position": {"line": args["line"] - 1, "character": args["column"] - 1}}
        if name == "lsp_references":
            prm["context"] = {"includeDeclaration": bool(args.get("include_declaration", False))}
        r = self.request(method, prm, timeout)
        dt = time.perf_counter() - t
        if "error" in r:
            e = r["error"]
            why = "still indexing" if e.get("code") in (LSP_CONTENT_MODIFIED, LSP_SERVER_CANCELLED) else "error"
            return {"isError": True, "content": [{"type": "text", "text": f"{why}: {e.get('message')}"}]}, dt
        res = r.get("result")
        if name == "lsp_hover":
            c = (res or {}).get("contents", "")
            text = c.get("value", "") if isinstance(c, dict) else str(c)
            return {"content": [{"type": "text", "text": text}]}, dt
        locs = []
        for loc in ([res] if isinstance(res, dict) else res or []):
            uri = loc.get("targetUri") or loc.get("uri")
            rng = loc.get("targetSelectionRange") or loc.get("range")
            locs.append({"path": rel(uri, self.root), "line": rng["start"]["line"] + 1, "column": rng["start"]["character"] + 1,
                         "end_line": rng["end"]["line"] + 1, "end_column": rng["end"]["character"] + 1})
        text = "\n".join(f"{l['path']}:{l['line']}:{l['column']}" for l in locs)
        return {"content": [{"type": "text", "text": text}], "structuredContent": {"locations": locs}}, dt

    def stderr_tail(self, n=800):
        return Server.stderr_tail(self, n)

    def close(self):
        try:
            self.request("shutdown", None, timeout=5)
            self._send({"jsonrpc": "2.0", "method": "exit"})
        except Exception:  # noqa: BLE001
            pass
        Server.close(self)


def server_tmp(base):
    """TMPDIR for a server and its rust-analyzer (whose proc-macro server leaves a folder there)."""
    d = base / "tmp"
    d.mkdir(exist_ok=True)
    return str(d)


def text_of(res):
    return "\n".join(c.get("text", "") for c in res.get("content") or [] if c.get("type") == "text")


# /proc helpers: which rust-analyzer a server runs, and how much memory

def descendants(pid):
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for k in kids.get(p, []):
            out.append(k)
            todo.append(k)
    return out


def exe_of(pid):
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rust_analyzers(pid):
    return [p for p in [pid] + descendants(pid) if os.path.basename(exe_of(p)).startswith("rust-analyzer")]


# ---------------------------------------------------------------------------------------------
# Answer checks. Each returns (state, detail): "ok", "wait" (still indexing / empty: retry) or "bad".

LOC_RE = re.compile(r"([\w./-]+\.rs):(\d+)(?::(\d+))?")


def rel(path, root):
    path = str(path)
    if path.startswith("file://"):
        path = path[len("file://"):]
    try:
        return str(Path(path).resolve().relative_to(root))
    except ValueError:
        return path


def zeke_locations(res, root):
    sc = res.get("structuredContent") or {}
    if isinstance(sc.get("locations"), list):
        return {(rel(l.get("path", ""), root), int(l.get("line", 0))) for l in sc["locations"]}
    return {(rel(m.group(1), root), int(m.group(2))) for m in LOC_RE.finditer(text_of(res))}


def zeke_state(res):
    t = text_of(res)
    if res.get("isError"):
        return ("wait", t[:160]) if t.lower().startswith("still indexing") else ("bad", t[:200])
    return None


def plain_ok(res):
    return ("bad", text_of(res)[:200]) if res.get("isError") else ("ok", "")


def norm(s):
    return re.sub(r"\s+", " ", s)


class Zeke:
    name = "zeke"

    def __init__(self, ex):
        self.ex = ex
        self.bin = os.path.abspath(os.environ.get("ZEKE_BIN") or str(REPO / "target/release/zeke"))  # servers run in the workspace

    def unavailable(self):
        if not (os.path.isfile(self.bin) and os.access(self.bin, os.X_OK)):
            return f"ZEKE_BIN={self.bin} is not an executable (build it: cargo build --release)"
        return None

    def spawn(self, root, base):
        cfg = base / "zeke.toml"
        cfg.write_text("")
        env = {**os.environ, "ZEKE_CONFIG": str(cfg), "ZEKE_AUDIT_LOG": str(base / "audit.jsonl"), "ZEKE_LOG": "error",
               "TMPDIR": server_tmp(base)}
        return Server([self.bin, "mcp", "--root", str(root)], env, str(root), base / "zeke.stderr")

    def check_tools(self, tools):
        need = ["lsp_definition", "lsp_references", "lsp_hover", "lsp_diagnostics"]
        missing = [t for t in need if t not in tools]
        if missing:
            lsp = sorted(t for t in tools if t.startswith("lsp_"))
            return f"tools/list has no {', '.join(missing)} (lsp tools listed: {', '.join(lsp) or 'none'})"
        return None

    def ops(self, root, tools):
        ex = self.ex
        main = "app/src/main.rs"

        def definition(res):
            s = zeke_state(res)
            if s:
                return s
            locs = zeke_locations(res, root)
            if ("core/src/lib.rs", ex.def_pos[0]) in locs:
                return "ok", ""
            return ("wait" if not locs else "bad"), f"locations {sorted(locs)}"

        def references(res):
            s = zeke_state(res)
            if s:
                return s
            locs = zeke_locations(res, root)
            missing = ex.ref_sites - locs
            if not missing:
                return "ok", ""
            return ("wait" if not locs else "bad"), f"missing {sorted(missing)} in {sorted(locs)}"

        def hover(res):
            s = zeke_state(res)
            if s:
                return s
            t = text_of(res)
            if norm(ex.signature) in norm(t):
                return "ok", ""
            return ("wait" if not t.strip() else "bad"), t[:200]

        def diagnostics(res):
            s = zeke_state(res)
            if s:
                return s
            sc = res.get("structuredContent") or {}
            if isinstance(sc.get("diagnostics"), list):
                errs = [d for d in sc["diagnostics"] if str(d.get("severity", "")).lower() in ("error", "1")
                        and rel(d.get("path", main), root) == main]
                lines = {int(d.get("line", 0)) for d in errs}
            else:
                t = text_of(res)
                lines = {int(m.group(2)) for m in LOC_RE.finditer(t)
                         if rel(m.group(1), root) == main and "error" in t.lower()}
            if BROKEN:
                return ("ok", "") if ex.broken_line in lines else ("wait", f"error lines {sorted(lines)}")
            return ("ok", "") if not lines else ("bad", f"unexpected errors at {sorted(lines)}")

        ops = {
            "definition": ("lsp_definition", "lsp_definition", {"path": main, "line": ex.use_pos[0], "column": ex.use_pos[1]}, definition),
            "references": ("lsp_references", "lsp_references", {"path": "core/src/lib.rs", "line": ex.def_pos[0], "column": ex.def_pos[1], "include_declaration": False}, references),
            "hover": ("lsp_hover", "lsp_hover", {"path": main, "line": ex.use_pos[0], "column": ex.use_pos[1]}, hover),
            "diagnostics": ("lsp_diagnostics path=app/src/main.rs", "lsp_diagnostics", {"path": main}, diagnostics),
        }
        impl_tool = next((t for t in ("lsp_implementation", "lsp_implementations") if t in tools), None)
        if impl_tool:
            def implementation(res):
                s = zeke_state(res)
                if s:
                    return s
                locs = zeke_locations(res, root)
                return ("ok", "") if ex.impl_sites <= locs else (("wait" if not locs else "bad"), f"locations {sorted(locs)}")
            ops["implementation"] = (impl_tool, impl_tool, {"path": "core/src/lib.rs", "line": ex.area_pos[0], "column": ex.area_pos[1]}, implementation)
        if "list_allowed_directories" in tools:  # the server's own floor: a tool that touches no language server
            ops["mcp_floor"] = ("list_allowed_directories (no language server: the MCP round trip floor)",
                                "list_allowed_directories", {}, plain_ok)
        return ops


class Raw:
    """rust-analyzer itself over LSP, no MCP: what neither server can beat."""
    name = "raw"

    def __init__(self, ex, ra):
        self.ex = ex
        self.ra = ra

    def unavailable(self):
        return None if self.ra else "no rust-analyzer on PATH (set ZEKE_RUST_ANALYZER)"

    def spawn(self, root, base):
        env = {**os.environ, "TMPDIR": server_tmp(base)}
        return RawLsp([self.ra], env, str(root), base / "raw.stderr", root)

    def check_tools(self, tools):
        return None

    def ops(self, root, tools):
        ops = Zeke(self.ex).ops(root, tools)
        ops.pop("diagnostics")  # pushed by rust-analyzer, not requested: nothing to time
        for m, lsp in (("definition", "textDocument/definition"), ("references", "textDocument/references"),
                       ("hover", "textDocument/hover"), ("implementation", "textDocument/implementation")):
            if m in ops:
                ops[m] = (f"{lsp}, straight to rust-analyzer",) + ops[m][1:]
        return ops


class Serena:
    name = "serena"

    def __init__(self, ex, ra):
        self.ex = ex
        self.ra = ra
        self.bin = os.path.abspath(os.environ["ZEKE_SERENA"]) if os.environ.get("ZEKE_SERENA") else ""

    def unavailable(self):
        if not self.bin:
            return "ZEKE_SERENA is unset (scripts/deps.sh --bench installs Serena; then eval \"$(scripts/deps.sh --env)\")"
        if not (os.path.isfile(self.bin) and os.access(self.bin, os.X_OK)):
            return f"ZEKE_SERENA={self.bin} is not an executable"
        return None

    def version(self):
        try:
            # SERENA_HOME: even importing serena creates ~/.serena otherwise
            env = {**os.environ, "SERENA_HOME": tempfile.mkdtemp(prefix="serena-home-", dir=os.environ.get("TMPDIR"))}
            out = subprocess.run([self.bin, "--version"], capture_output=True, text=True, timeout=60, env=env).stdout
            shutil.rmtree(env["SERENA_HOME"], ignore_errors=True)
            return out.strip().split()[-1] if out.strip() else "?"
        except (OSError, subprocess.TimeoutExpired):
            return "?"

    def spawn(self, root, base):
        home = base / "serena-home"
        home.mkdir(exist_ok=True)
        # JSON is YAML; keys Serena does not find take its defaults
        cfg = {
            "language_backend": "LSP",
            "agent_interface": "tools",
            "gui_log_window": False,
            "web_dashboard": False,
            "web_dashboard_open_on_launch": False,
            "log_level": 30,
            "trace_lsp_communication": False,
            "ls_specific_settings": {"rust": {"ls_path": self.ra}} if self.ra else {},
            "token_count_estimator": "CHAR_COUNT",
            "project_serena_folder_location": "$projectDir/.serena",
            "trusted_project_path_patterns": [str(root)],
            "projects": [],
        }
        (home / "serena_config.yml").write_text(json.dumps(cfg, indent=1) + "\n")
        env = {**os.environ, "SERENA_HOME": str(home), "SERENA_USAGE_REPORTING": "false", "PYTHONUNBUFFERED": "1",
               "TMPDIR": server_tmp(base)}
        env.pop("DISPLAY", None)
        env.pop("WAYLAND_DISPLAY", None)
        argv = [self.bin, "start-mcp-server", "--project", str(root), "--context", "ide",
                "--transport", "stdio", "--agent-interface", "tools", "--language-backend", "LSP",
                "--enable-web-dashboard", "false", "--enable-gui-log-window", "false",
                "--open-web-dashboard", "false", "--log-level", "WARNING"]
        self.argv = argv
        return Server(argv, env, str(root), base / "serena.stderr")

    def check_tools(self, tools):
        need = ["find_declaration", "find_referencing_symbols", "get_diagnostics_for_file"]
        missing = [t for t in need if t not in tools]
        return f"tools/list has no {', '.join(missing)}" if missing else None

    def ops(self, root, tools):
        ex = self.ex
        main = "app/src/main.rs"
        regex = re.escape('println!("{}", ') + "(total_area)" + re.escape("(&shapes));")

        def parse(res):
            t = text_of(res)
            try:
                return t, json.loads(t)
            except ValueError:
                return t, None

        def err_state(res, t):
            if res.get("isError") or t.startswith("Error") or "error executing tool" in t.lower():
                low = t.lower()
                # not ready yet: the LS still starting / indexing, or no symbol found yet
                if any(w in low for w in ("not started", "not yet", "indexing", "still", "timeout", "no symbol", "not found", "could not")):
                    return "wait", t[:200]
                return "bad", t[:200]
            return None

        def definition(res):
            t, j = parse(res)
            s = err_state(res, t)
            if s:
                return s
            syms = [x for x in serena_symbols(j) if x["name"].split("/")[-1] == "total_area"]
            if any(x["path"] == "core/src/lib.rs" and x["start"] <= ex.def_pos[0] <= x["end"] for x in syms):
                return "ok", ""
            return ("wait" if not t.strip() or j in (None, [], {}) else "bad"), t[:200]

        def references(res):
            t, j = parse(res)
            s = err_state(res, t)
            if s:
                return s
            hits = serena_ref_sites(j)
            missing = ex.ref_sites - hits
            if not missing:
                return "ok", ""
            return ("wait" if not hits else "bad"), f"missing {sorted(missing)}; answer {t[:200]}"

        def hover(res):
            t, j = parse(res)
            s = err_state(res, t)
            if s:
                return s
            if norm(ex.signature) in norm(t.replace("\\n", "\n")):
                return "ok", ""
            return ("wait" if not t.strip() or t.strip() in ("[]", "{}") else "bad"), t[:200]

        def diagnostics(res):
            t, j = parse(res)
            s = err_state(res, t)
            if s:
                return s
            lines = {ln for (p, ln, sev) in serena_diagnostics(j) if p == main and str(sev).lower() in ("1", "error")}
            if BROKEN:
                return ("ok", "") if ex.broken_line in lines else ("wait", f"error lines {sorted(lines)}; answer {t[:200]}")
            return ("ok", "") if not lines else ("bad", f"unexpected errors at {sorted(lines)}")

        ops = {
            "definition": ("find_declaration (regex for the same position)", "find_declaration",
                           {"relative_path": main, "regex": regex}, definition),
            "references": ("find_referencing_symbols name_path=total_area (by symbol, not position)", "find_referencing_symbols",
                           {"name_path": "total_area", "relative_path": "core/src/lib.rs"}, references),
            "hover": ("find_declaration include_info=true (definition + hover info)", "find_declaration",
                      {"relative_path": main, "regex": regex, "include_info": True}, hover),
            "diagnostics": ("get_diagnostics_for_file app/src/main.rs", "get_diagnostics_for_file",
                            {"relative_path": main}, diagnostics),
        }
        if "find_implementations" in tools:
            def implementation(res):
                t, j = parse(res)
                s = err_state(res, t)
                if s:
                    return s
                hits = serena_spans(j)
                return ("ok", "") if ex.impl_sites <= hits else (("wait" if not hits else "bad"), t[:200])
            ops["implementation"] = ("find_implementations name_path=Shape/area", "find_implementations",
                                     {"name_path": "Shape/area", "relative_path": "core/src/lib.rs"}, implementation)
        if "list_memories" in tools:  # the server's own floor: a tool that touches no language server
            ops["mcp_floor"] = ("list_memories (no language server: the MCP round trip floor)", "list_memories", {}, plain_ok)
        return ops


REF_MARK_RE = re.compile(r"^\s*>\s*(\d+):", re.M)


def serena_symbols(j):
    """The symbols in a Serena answer, as dicts {path, name, start, end, refs} with 1-based lines.
    Serena answers in JSON with 0-based lines: a symbol is {name_path, relative_path?, body_location:
    {start_line, end_line}, content_around_reference?}; references and diagnostics come grouped as
    {relative_path: {kind or severity: [...]}}, so a path key carries down to the items under it.
    content_around_reference marks the referencing line with `>` and its 0-based number."""
    out = []

    def rec(node, path):
        if isinstance(node, dict):
            path = node.get("relative_path") or path
            if "name_path" in node:
                body = node.get("body_location") or {}
                refs = {int(n) + 1 for n in REF_MARK_RE.findall(node.get("content_around_reference") or "")}
                out.append({"path": path, "name": node["name_path"],
                            "start": body.get("start_line", -2) + 1, "end": body.get("end_line", -2) + 1, "refs": refs})
            for k, v in node.items():
                rec(v, k if isinstance(k, str) and k.endswith(".rs") else path)
        elif isinstance(node, list):
            for v in node:
                rec(v, path)

    rec(j, None)
    return out


def serena_spans(j):
    """(path, line) for every line of every symbol's body: a location "hits" when it lies inside."""
    return {(s["path"], ln) for s in serena_symbols(j) for ln in range(s["start"], s["end"] + 1)}


def serena_ref_sites(j):
    return {(s["path"], ln) for s in serena_symbols(j) for ln in s["refs"]}


def serena_diagnostics(j):
    """(path, 1-based line, severity) from get_diagnostics_for_file's
    {relative_path: {severity: {name_path: [{message, range, code, source}]}}}."""
    out = []

    def rec(node, path, sev):
        if isinstance(node, dict):
            if "message" in node and isinstance(node.get("range"), dict):
                out.append((path, int(node["range"]["start"]["line"]) + 1, sev))
                return
            for k, v in node.items():
                if path is None:
                    rec(v, k, sev)
                elif sev is None:
                    rec(v, path, k)
                else:
                    rec(v, path, sev)
        elif isinstance(node, list):
            for v in node:
                rec(v, path, sev)

    rec(j, None, None)
    return out


# ---------------------------------------------------------------------------------------------

def pct(v, p):
    v = sorted(v)
    return v[round((len(v) - 1) * p)]


def cold_start(srv_kind, base, k):
    """One cold start in a fresh workspace. -> dict with timings, or raises."""
    root = (base / f"{srv_kind.name}-ws{k}").resolve()
    root.mkdir()
    write_workspace(root, BROKEN)
    s = srv_kind.spawn(root, base)
    out = {"root": root, "server": s}
    try:
        s.initialize()
        out["initialize_ms"] = (time.perf_counter() - s.t0) * 1e3
        tools = s.tools()
        out["tools"] = tools
        why = srv_kind.check_tools(tools)
        if why:
            out["unavailable"] = why
            return out
        ops = srv_kind.ops(root, tools)
        label, tool, args, check = ops["definition"]
        tries, last = 0, ""
        while True:
            tries += 1
            res, _ = s.call(tool, args, timeout=max(5.0, COLD_CAP - (time.perf_counter() - s.t0)))
            state, detail = check(res)
            if VERBOSE and tries <= 3:
                log(f"{srv_kind.name} cold try {tries}: {state} {detail or text_of(res)[:300]!r}")
            if state == "ok":
                break
            last = f"{state}: {detail}"
            if time.perf_counter() - s.t0 > COLD_CAP:
                raise TimeoutError(f"no correct definition in {COLD_CAP:.0f} s ({tries} tries; last {last})")
            time.sleep(RETRY_S)
        out["cold_ms"] = (time.perf_counter() - s.t0) * 1e3
        out["cold_tries"] = tries
        out["ops"] = ops
        return out
    except BaseException:
        if VERBOSE:
            log(f"{srv_kind.name} stderr tail: {s.stderr_tail(3000)}")
        s.close()
        raise


def warm(srv_kind, s, ops):
    """-> {measure: (label, [ms...], wrong count, warm-up ms, warm-up tries)}."""
    out = {}
    for m in MEASURES:
        if m not in ops:
            continue
        label, tool, args, check = ops[m]
        t0, tries = time.perf_counter(), 0
        while True:  # warm-up: retried until correct (diagnostics wait for rust-analyzer's cargo check)
            tries += 1
            res, _ = s.call(tool, args)
            state, detail = check(res)
            if VERBOSE and tries == 1:
                log(f"{srv_kind.name} {m} first answer ({state}): {json.dumps(res)[:600]}")
            if state == "ok":
                break
            if time.perf_counter() - t0 > COLD_CAP:
                out[m] = (label, None, f"never correct in {COLD_CAP:.0f} s ({state}: {detail})", None, tries)
                break
            time.sleep(RETRY_S)
        if m in out:
            continue
        warm_ms = (time.perf_counter() - t0) * 1e3
        times, wrong = [], 0
        for _ in range(CALLS):
            res, dt = s.call(tool, args)
            times.append(dt * 1e3)
            if check(res)[0] != "ok":
                wrong += 1
        out[m] = (label, times, wrong, warm_ms, tries)
    return out


def bench(srv_kind, base):
    """-> dict of results for one server, or {'na': why}."""
    why = srv_kind.unavailable()
    if why:
        return {"na": why}
    colds, last = [], None
    for k in range(STARTS):
        try:
            r = cold_start(srv_kind, base, k)
        except Exception as e:  # noqa: BLE001 - any failure is an n/a row, never a failed run
            return {"na": f"cold start failed: {e}"}
        if "unavailable" in r:
            r["server"].close()
            return {"na": r["unavailable"]}
        colds.append(r)
        if k < STARTS - 1:  # one server at a time: the next cold start must not share the CPU with this one
            r["server"].close()
        last = r
    s = last["server"]
    res = {"cold_ms": statistics.median(c["cold_ms"] for c in colds),
           "cold_all": [c["cold_ms"] for c in colds],
           "initialize_ms": statistics.median(c["initialize_ms"] for c in colds),
           "cold_tries": last["cold_tries"]}
    ras = rust_analyzers(s.p.pid)
    res["ra_exe"] = ",".join(sorted({exe_of(p) for p in ras if os.path.basename(exe_of(p)) == "rust-analyzer"})) or "none found"
    try:
        res["warm"] = warm(srv_kind, s, last["ops"])
    except Exception as e:  # noqa: BLE001
        res["warm_error"] = f"{e}"
    res["server_rss_kb"] = 0 if isinstance(s, RawLsp) else rss_kb(s.p.pid)
    res["ra_rss_kb"] = sum(rss_kb(p) for p in rust_analyzers(s.p.pid))
    res["tree_rss_kb"] = rss_kb(s.p.pid) + sum(rss_kb(p) for p in descendants(s.p.pid))
    if VERBOSE:
        log(f"{srv_kind.name} stderr tail: {s.stderr_tail(1500)}")
    s.close()
    return res


def main():
    ra = os.environ.get("ZEKE_RUST_ANALYZER") or shutil.which("rust-analyzer") or ""
    ra = shutil.which(ra) or ra  # absolute: the servers run in the workspace
    try:
        ra_version = subprocess.run([ra, "--version"], capture_output=True, text=True, timeout=60).stdout.strip() if ra else ""
    except OSError:
        ra_version = ""
    print(f"lsp_rust_analyzer={ra or 'n/a (not on PATH)'}")
    print(f"lsp_rust_analyzer_version={ra_version or 'n/a'}")
    print(f"lsp_workspace=2 crates (core: trait Shape + Circle/Square in 2 files + total_area; app: main.rs), broken_line={'on' if BROKEN else 'off'}")
    print(f"lsp_calls_per_measure={CALLS} lsp_cold_starts={STARTS} lsp_cold_cap_s={COLD_CAP:g}")
    with tempfile.TemporaryDirectory(prefix="zeke-lsp-bench-") as tmp:
        base = Path(tmp).resolve()
        files = write_workspace(base / "probe", BROKEN)
        ex = Expect(files)
        kinds = [Raw(ex, ra), Zeke(ex), Serena(ex, ra)]
        if ONLY:
            kinds = [k for k in kinds if k.name == ONLY]
        results = {}
        for kind in kinds:
            if isinstance(kind, Serena) and not kind.unavailable():
                print(f"lsp_serena_version={kind.version()}")
            log(f"{kind.name}: cold start{'s' if STARTS > 1 else ''} and {CALLS} calls per measure …")
            t = time.perf_counter()
            r = bench(kind, base)
            results[kind.name] = r
            log(f"{kind.name}: done in {time.perf_counter() - t:.1f} s")
            report(kind, r)
        ratios(results)
    sys.stdout.flush()


def report(kind, r):
    n = kind.name
    if "na" in r:
        print(f"lsp_{n}_cold_definition_ms=n/a ({r['na']})")
        for m in MEASURES:
            if m not in OPTIONAL:
                print(f"lsp_{n}_{m}_p50_ms=n/a")
        return
    if isinstance(kind, Serena):
        print(f"lsp_serena_command={' '.join(kind.argv)}")
    print(f"lsp_{n}_rust_analyzer_exe={r['ra_exe']}")
    print(f"lsp_{n}_initialize_ms={r['initialize_ms']:.1f}")
    extra = f" (median of {STARTS}: {', '.join(f'{x:.0f}' for x in r['cold_all'])})" if STARTS > 1 else ""
    print(f"lsp_{n}_cold_definition_ms={r['cold_ms']:.1f}{extra} (spawn -> first correct definition; {r['cold_tries']} tries)")
    if n == "raw":
        print("lsp_raw_note=rust-analyzer over LSP straight from this script (no MCP server): the floor under both; "
              "diagnostics are pushed, so not timed")
    if "warm_error" in r:
        print(f"lsp_{n}_warm=n/a ({r['warm_error']})")
    w = r.get("warm", {})
    for m in MEASURES:
        if m not in w:
            if m not in OPTIONAL and not (n == "raw" and m == "diagnostics"):
                print(f"lsp_{n}_{m}_p50_ms=n/a (no tool for it)")
            continue
        label, times, wrong, warm_ms, tries = w[m]
        if times is None:
            print(f"lsp_{n}_{m}_p50_ms=n/a ({label}: {wrong})")
            continue
        print(f"lsp_{n}_{m}_p50_ms={statistics.median(times):.2f} ({label})")
        print(f"lsp_{n}_{m}_p90_ms={pct(times, 0.9):.2f}")
        print(f"lsp_{n}_{m}_first_correct_ms={warm_ms:.1f} ({tries} tries after the cold definition)")
        if wrong:
            print(f"lsp_{n}_{m}_wrong_answers={wrong}/{len(times)}")
    print(f"lsp_{n}_server_rss_kb={r['server_rss_kb']} lsp_{n}_rust_analyzer_rss_kb={r['ra_rss_kb']} lsp_{n}_process_tree_rss_kb={r['tree_rss_kb']}")


def ratios(results):
    raw = results.get("raw", {})
    for n in ("zeke", "serena"):
        r = results.get(n, {})
        if not r or "na" in r or not raw or "na" in raw:
            continue
        print(f"lsp_{n}_cold_added_over_raw_ms={r['cold_ms'] - raw['cold_ms']:.1f}")
        for m in MEASURES:
            a, b = r.get("warm", {}).get(m), raw.get("warm", {}).get(m)
            if a and b and a[1] and b[1]:
                print(f"lsp_{n}_{m}_added_over_raw_p50_ms={statistics.median(a[1]) - statistics.median(b[1]):.2f}")
    z, s = results.get("zeke", {}), results.get("serena", {})
    if "na" in z or "na" in s or not z or not s:
        why = z.get("na") and "zeke n/a" or s.get("na") and "serena n/a" or "one side not run"
        print(f"lsp_ratio_zeke_over_serena=n/a ({why})")
        return
    print(f"lsp_ratio_zeke_over_serena_cold_definition={z['cold_ms'] / s['cold_ms']:.3f}")
    for m in MEASURES:
        a, b = z.get("warm", {}).get(m), s.get("warm", {}).get(m)
        if a and b and a[1] and b[1]:
            print(f"lsp_ratio_zeke_over_serena_{m}_p50={statistics.median(a[1]) / statistics.median(b[1]):.3f}")
        elif m not in OPTIONAL:
            print(f"lsp_ratio_zeke_over_serena_{m}_p50=n/a")
    print("lsp_ratio_note=zeke time / Serena time: < 1 means zeke is faster; medians; Serena's rows use its nearest tools (see labels)")


if __name__ == "__main__":
    main()
