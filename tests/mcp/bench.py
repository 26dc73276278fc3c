"""`make bench` part for `zeke mcp`: cold start to the `initialize` reply and tools/call latency,
side by side with the reference servers (npm @modelcontextprotocol/server-filesystem, pip
mcp-server-git) in the same run, on the same generated tree. Measures; asserts nothing.

Every server is driven by the same raw JSON-RPC-over-stdio client below (no SDK in the loop), so
the numbers compare servers, not clients. Prints a table with reference/zeke ratios.

Env: ZEKE_BIN (release build), ZEKE_REF_FS, ZEKE_REF_GIT_DIR (scripts/deps.sh --env);
BENCH_FILES (default 10000), BENCH_STARTS (default 7), BENCH_CALLS (default 30).
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ZEKE = os.environ["ZEKE_BIN"]
REF_FS = os.environ["ZEKE_REF_FS"]
REF_GIT = os.environ["ZEKE_REF_GIT_DIR"]
FILES = int(os.environ.get("BENCH_FILES", "10000"))
STARTS = int(os.environ.get("BENCH_STARTS", "7"))
CALLS = int(os.environ.get("BENCH_CALLS", "30"))
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@zeke.invalid", "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@zeke.invalid", "GIT_AUTHOR_DATE": "2024-01-15T14:30:25Z",
    "GIT_COMMITTER_DATE": "2024-01-15T14:30:25Z", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1",
}


class Server:
    def __init__(self, argv, env=None):
        self.t0 = time.perf_counter()
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})}, text=True, bufsize=1)
        self.id = 0

    def request(self, method, params):
        self.id += 1
        self.p.stdin.write(json.dumps({"jsonrpc": "2.0", "id": self.id, "method": method, "params": params}) + "\n")
        self.p.stdin.flush()
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError(f"server exited during {method}")
            msg = json.loads(line)
            if msg.get("id") == self.id and "method" not in msg:
                return msg

    def initialize(self):
        r = self.request("initialize", {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}})
        elapsed = time.perf_counter() - self.t0
        self.p.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n")
        self.p.stdin.flush()
        return r, elapsed

    def call(self, name, args):
        t = time.perf_counter()
        r = self.request("tools/call", {"name": name, "arguments": args})
        dt = time.perf_counter() - t
        res = r.get("result") or {}
        if res.get("isError") or "error" in r:
            raise RuntimeError(f"{name} failed: {json.dumps(r)[:300]}")
        return res, dt

    def close(self):
        self.p.stdin.close()
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()


def make_tree(base):
    root = base / "tree"
    per = 100
    for d in range(max(1, FILES // per)):
        sub = root / f"pkg{d:03d}" / "src"
        sub.mkdir(parents=True)
        for f in range(per):
            (sub / f"f_{f}.txt").write_text(f"package {d} file {f}\n" * 4)
    (root / "README.md").write_text("bench tree\n" + "lorem ipsum dolor sit amet\n" * 200)
    run = lambda *a: subprocess.run(["git", *a], cwd=root, env={**os.environ, **GIT_ENV}, check=True, capture_output=True)
    run("init", "-q", "-b", "main")
    run("add", "-A")
    run("commit", "-q", "-m", "initial")
    for i in range(30):
        (root / "README.md").write_text(f"bench tree rev {i}\n")
        run("commit", "-q", "-am", f"rev {i}")
    (root / "pkg000/src/f_0.txt").write_text("modified\n")
    return root


def servers(root):
    zeke_cfg = root.parent / "zeke.toml"
    zeke_cfg.write_text("")
    zenv = {"ZEKE_CONFIG": str(zeke_cfg), "ZEKE_AUDIT_LOG": str(root.parent / "audit.jsonl"), "ZEKE_LOG": "error"}
    return {
        "zeke": lambda: Server([ZEKE, "mcp", "--root", str(root)], zenv),
        "ref-fs": lambda: Server(["node", REF_FS, str(root)]),
        "ref-git": lambda: Server([sys.executable, "-m", "mcp_server_git", "--repository", str(root)], {"PYTHONPATH": REF_GIT}),
    }


def ms(x):
    return x * 1000


def main():
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp).resolve()
        t = time.perf_counter()
        root = make_tree(base)
        print(f"[bench-mcp] tree: {FILES} files + 31 commits at {root} ({time.perf_counter() - t:.1f} s to generate)")
        mk = servers(root)
        rows = []

        starts = {}
        for name, new in mk.items():
            times = []
            for _ in range(STARTS):
                s = new()
                _, dt = s.initialize()
                times.append(dt)
                s.close()
            starts[name] = statistics.median(times)
        rows.append(("cold start → initialize reply", "zeke", starts["zeke"], "ref-fs", starts["ref-fs"]))
        rows.append(("cold start → initialize reply", "zeke", starts["zeke"], "ref-git", starts["ref-git"]))

        cases = [
            ("read_text_file README.md", "ref-fs", "read_text_file", {"path": str(root / "README.md")}, CALLS),
            ("search_files **/f_42.txt", "ref-fs", "search_files", {"path": str(root), "pattern": "**/f_42.txt"}, max(3, CALLS // 6)),
            ("git_status", "ref-git", "git_status", {"repo_path": str(root)}, CALLS),
            ("git_log max_count=10", "ref-git", "git_log", {"repo_path": str(root), "max_count": 10}, CALLS),
        ]
        live = {}
        for name in mk:
            live[name] = mk[name]()
            live[name].initialize()
        for label, ref, tool, args, n in cases:
            p50 = {}
            for name in ("zeke", ref):
                s = live[name]
                res, _ = s.call(tool, args)  # warm-up (and a sanity check of the answer)
                if tool == "search_files":
                    hits = sum(1 for line in res["content"][0]["text"].splitlines() if line.endswith("f_42.txt"))
                    assert hits == FILES // 100, f"{name} found {hits} matches"
                p50[name] = statistics.median(s.call(tool, args)[1] for _ in range(n))
            rows.append((f"tools/call {label} (p50)", "zeke", p50["zeke"], ref, p50[ref]))
        for s in live.values():
            s.close()

        print(f"[bench-mcp] {'measure':<44} {'zeke':>10} {'reference':>22} {'ratio':>8}")
        for label, _, z, ref, r in rows:
            print(f"[bench-mcp] {label:<44} {ms(z):>8.2f}ms {ref:>9} {ms(r):>9.2f}ms {r / z:>7.1f}x")
        print("[bench-mcp] ratio = reference time / zeke time (higher is better for zeke); medians; debug logs off")


main()
