"""Interop of `zeke mcp` with the official Python MCP SDK client (mcp==2.3.0) over stdio.

Covers: the initialize handshake and the 2026-07-28 `server/discover` era, tools/list, a call of
every tool, structured output, progress notifications, cancellation (`notifications/cancelled`
sent by the SDK when a call is abandoned), policy prompts answered through `elicitation_callback`
(applies on Allow, not on Deny), client roots narrowing through `list_roots_callback`, and the
audit log having a record per call.

Run: ZEKE_BIN=target/debug/zeke $ZEKE_MCP_PY tests/mcp/interop.py   (prints one line per check;
exits 1 on the first failure).
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import mcp_types as types
from mcp import ClientSession, StdioServerParameters, stdio_client

ZEKE = os.environ.get("ZEKE_BIN") or sys.exit("interop.py: set ZEKE_BIN to the zeke binary")
EXPECTED_TOOLS = {
    "read_text_file", "read_file", "read_media_file", "read_multiple_files", "write_file", "edit_file",
    "create_directory", "list_directory", "list_directory_with_sizes", "directory_tree", "move_file",
    "search_files", "get_file_info", "list_allowed_directories", "git_status", "git_diff_unstaged",
    "git_diff_staged", "git_diff", "git_commit", "git_add", "git_reset", "git_log", "git_create_branch",
    "git_checkout", "git_show", "git_branch", "fetch", "run_command",
}
# the language-server tools (tests/lsp.rs drives them against rust-analyzer and clangd)
LSP_TOOLS = {
    "lsp_definition", "lsp_type_definition", "lsp_implementation", "lsp_references", "lsp_hover",
    "lsp_diagnostics", "lsp_document_symbols", "lsp_workspace_symbols", "lsp_incoming_calls",
    "lsp_outgoing_calls", "lsp_code_actions", "lsp_rename",
}
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Zeke Test", "GIT_AUTHOR_EMAIL": "test@zeke.invalid",
    "GIT_COMMITTER_NAME": "Zeke Test", "GIT_COMMITTER_EMAIL": "test@zeke.invalid",
    "GIT_AUTHOR_DATE": "2024-01-15T14:30:25Z", "GIT_COMMITTER_DATE": "2024-01-15T14:30:25Z",
    "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1",
}
checks = 0


def check(cond, what, detail=""):
    global checks
    if not cond:
        print(f"FAIL mcp-interop: {what}\n  {detail!r}", flush=True)
        print(f"mcp-interop: {checks} passed, 1 failed, 0 skipped", flush=True)
        sys.exit(1)
    checks += 1
    print(f"ok   mcp-interop: {what}", flush=True)


def git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, check=True, capture_output=True)


def text(result):
    return "".join(c.text for c in result.content if getattr(c, "type", "") == "text")


def server(base, root, config="", extra_env=None):
    cfg = base / f"config-{time.monotonic_ns()}.toml"
    cfg.write_text(config)
    env = {"ZEKE_CONFIG": str(cfg), "ZEKE_AUDIT_LOG": str(base / "audit.jsonl"), "ZEKE_LOG": "warn", **GIT_ENV, **(extra_env or {})}
    return StdioServerParameters(command=ZEKE, args=["mcp", "--root", str(root)], env=env)


def audit(base):
    p = base / "audit.jsonl"
    return [json.loads(line) for line in p.read_text().splitlines()] if p.exists() else []


async def every_tool(base, root):
    allow = '[capabilities]\n"fs.write" = "allow"\n"git.write" = "allow"\n'
    async with stdio_client(server(base, root, allow)) as (r, w), ClientSession(r, w) as s:
        init = await s.initialize()
        check(init.server_info.name == "zeke", "initialize handshake", init)
        check(init.protocol_version == "2025-11-25", "protocol 2025-11-25 negotiated", init.protocol_version)
        tools = (await s.list_tools()).tools
        names = {t.name for t in tools}
        check(names == EXPECTED_TOOLS | LSP_TOOLS, f"tools/list has the {len(EXPECTED_TOOLS)} reference tool names and the {len(LSP_TOOLS)} lsp_* ones", names ^ (EXPECTED_TOOLS | LSP_TOOLS))
        by = {t.name: t for t in tools}
        check(by["write_file"].annotations.read_only_hint is False and by["read_text_file"].annotations.read_only_hint is True, "annotations are honest")
        check(by["read_text_file"].output_schema is not None, "outputSchema on read_text_file")
        rp = str(root)
        calls = [
            ("write_file", {"path": "notes.txt", "content": "alpha\nbeta\ngamma\n"}, "Successfully wrote"),
            ("read_text_file", {"path": "notes.txt", "head": 2}, "alpha\nbeta\n"),
            ("read_file", {"path": "notes.txt", "tail": 1}, "gamma\n"),
            ("read_multiple_files", {"paths": ["notes.txt", "a.txt"]}, "a.txt:\none"),
            ("edit_file", {"path": "notes.txt", "edits": [{"oldText": "beta", "newText": "BETA"}]}, "+BETA"),
            ("create_directory", {"path": "sub/dir"}, "Successfully created"),
            ("move_file", {"source": "notes.txt", "destination": "sub/dir/notes.txt"}, "Successfully moved"),
            ("list_directory", {"path": "."}, "[DIR] sub"),
            ("list_directory_with_sizes", {"path": ".", "sortBy": "size"}, "Combined size"),
            ("directory_tree", {"path": ".", "excludePatterns": ["a.txt"]}, '"name": "notes.txt"'),
            ("search_files", {"path": ".", "pattern": "*.txt"}, "sub/dir/notes.txt"),
            ("get_file_info", {"path": "sub/dir/notes.txt"}, "isFile: true"),
            ("list_allowed_directories", {}, rp),
            ("read_media_file", {"path": "pixel.png"}, None),
            ("git_status", {"repo_path": rp}, "Untracked files"),
            ("git_diff_unstaged", {"repo_path": rp}, "Unstaged changes:"),
            ("git_add", {"repo_path": rp, "files": ["sub/dir/notes.txt"]}, "staged"),
            ("git_diff_staged", {"repo_path": rp}, "+BETA"),
            ("git_reset", {"repo_path": rp}, "reset"),
            ("git_add", {"repo_path": rp, "files": ["."]}, "staged"),
            ("git_commit", {"repo_path": rp, "message": "add notes"}, "committed successfully"),
            ("git_diff", {"repo_path": rp, "target": "HEAD~1"}, "+BETA"),
            ("git_log", {"repo_path": rp, "max_count": 5, "start_timestamp": "2024-01-01"}, "Message: add notes"),
            ("git_create_branch", {"repo_path": rp, "branch_name": "topic"}, "Created branch 'topic'"),
            ("git_checkout", {"repo_path": rp, "branch_name": "topic"}, "Switched to branch 'topic'"),
            ("git_show", {"repo_path": rp, "revision": "HEAD"}, "add notes"),
            ("git_branch", {"repo_path": rp, "branch_type": "all"}, "* topic"),
        ]
        for name, args, want in calls:
            res = await s.call_tool(name, args)
            body = text(res)
            if name == "read_media_file":
                ok = not res.is_error and res.content[0].type == "image" and res.content[0].mime_type == "image/png"
            else:
                ok = not res.is_error and want in body
            check(ok, f"call {name}", body[:400])
        res = await s.call_tool("read_text_file", {"path": "a.txt"})
        check(res.structured_content == {"content": "one\n"}, "structuredContent matches outputSchema", res.structured_content)
        called = {n for n, _, _ in calls}
        # fetch needs net.http and a web server (fetch_gated_by_net_http); run_command needs cmd.exec,
        # denied by default (tests/mcp_policy.rs runs it)
        check(called == EXPECTED_TOOLS - {"fetch", "run_command"}, "every file and git tool was called", EXPECTED_TOOLS - called)
        res = await s.call_tool("read_text_file", {"path": "/etc/passwd"})
        check(res.is_error and "(rule outside-roots)" in text(res), "a refusal is an isError result naming the rule", text(res))

        # progress for a long walk
        big = root / "big"
        for i in range(30):
            d = big / f"d{i}"
            d.mkdir(parents=True)
            for j in range(100):
                (d / f"f{j}.txt").touch()
        seen = []

        async def progress(p, total, message):
            seen.append(p)

        res = await s.call_tool("search_files", {"path": "big", "pattern": "f99.txt"}, progress_callback=progress)
        check(not res.is_error and text(res).count("f99.txt") == 30, "search_files over 3000 files", text(res)[:200])
        check(len(seen) >= 1, "progress notifications during a long walk", seen)
    records = audit(base)
    ended = [r for r in records if r["outcome"] != "started"]
    check(len(ended) == len(calls) + 3, "audit log has one closing record per call", len(ended))
    writes = {"write_file", "edit_file", "create_directory", "move_file", "git_add", "git_reset", "git_commit",
              "git_create_branch", "git_checkout"}
    started = [r["tool"] for r in records if r["outcome"] == "started"]
    check(sorted(started) == sorted(n for n, _, _ in calls if n in writes),
          "each write left a started record before it wrote", started)


async def elicitation_and_cancellation(base, root):
    answers = ["allow_once", "deny"]
    asked = []

    async def on_elicit(ctx, params):
        asked.append(params.message)
        if not answers:  # the cancellation case: never answer
            await anyio.sleep(3600)
        return types.ElicitResult(action="accept", content={"decision": answers.pop(0)})

    async with stdio_client(server(base, root)) as (r, w), ClientSession(r, w, elicitation_callback=on_elicit) as s:
        await s.initialize()
        res = await s.call_tool("write_file", {"path": "allowed.txt", "content": "yes"})
        check(not res.is_error and (root / "allowed.txt").read_text() == "yes", "prompt + Allow once writes", text(res))
        res = await s.call_tool("write_file", {"path": "denied.txt", "content": "no"})
        check(res.is_error and not (root / "denied.txt").exists(), "prompt + Deny does not write", text(res))
        check(len(asked) == 2 and "fs.write" in asked[0], "the user was asked twice, naming the capability", asked)
        before = len(audit(base))
        with anyio.move_on_after(1.0) as scope:
            await s.call_tool("write_file", {"path": "cancelled.txt", "content": "late"})
        check(scope.cancelled_caught, "the SDK abandoned the call (sends notifications/cancelled)")
        res = await s.call_tool("list_directory", {"path": "."})
        check(not res.is_error, "the server keeps serving after a cancellation", text(res))
        for _ in range(50):
            recs = audit(base)[before:]
            if any(rec["outcome"] == "cancelled" for rec in recs):
                break
            await anyio.sleep(0.05)
        check(any(rec["tool"] == "write_file" and rec["outcome"] == "cancelled" for rec in recs), "the cancelled call is audited as cancelled", recs)
        check(not (root / "cancelled.txt").exists(), "a cancelled write wrote nothing")

    gate = anyio.Event()

    async def slow_elicit(ctx, params):
        await gate.wait()
        return types.ElicitResult(action="accept", content={"decision": "allow_once"})

    async with stdio_client(server(base, root)) as (r, w), ClientSession(r, w, elicitation_callback=slow_elicit) as s:
        await s.initialize()
        order = []

        async def writer():
            await s.call_tool("write_file", {"path": "concurrent.txt", "content": "c"})
            order.append("write")

        async def reader():
            res = await s.call_tool("read_text_file", {"path": "a.txt"})
            order.append("read" if text(res) == "one\n" else "bad read")
            gate.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(writer)
            await anyio.sleep(0.3)
            tg.start_soon(reader)
        check(order == ["read", "write"] and (root / "concurrent.txt").exists(), "requests run concurrently (a read completes while a write waits for the user)", order)

    async with stdio_client(server(base, root)) as (r, w), ClientSession(r, w) as s:
        await s.initialize()
        res = await s.call_tool("write_file", {"path": "nope.txt", "content": "x"})
        check(res.is_error and "(rule policy-prompt)" in text(res) and '"fs.write" = "allow"' in text(res), "prompt without elicitation fails closed with the config key", text(res))

    deny = '[capabilities]\n"fs.write" = "deny"\n'
    async with stdio_client(server(base, root, deny)) as (r, w), ClientSession(r, w, elicitation_callback=on_elicit) as s:
        await s.initialize()
        res = await s.call_tool("create_directory", {"path": "never"})
        check(res.is_error and "(rule policy-deny)" in text(res) and not (root / "never").exists(), "deny refuses without asking", text(res))


async def roots_and_discover(base, root):
    sub = root / "sub"
    elsewhere = base / "elsewhere"
    elsewhere.mkdir()

    async def roots(ctx):
        return types.ListRootsResult(roots=[types.Root(uri=sub.as_uri()), types.Root(uri=elsewhere.as_uri())])

    async with stdio_client(server(base, root)) as (r, w), ClientSession(r, w, list_roots_callback=roots) as s:
        await s.initialize()
        res = await s.call_tool("list_allowed_directories", {})
        check(text(res) == f"Allowed directories:\n{sub}", "client roots narrow (and a root outside does not widen)", text(res))
        res = await s.call_tool("read_text_file", {"path": str(root / "a.txt")})
        check(res.is_error and "(rule client-roots)" in text(res), "a path outside the client's roots is refused", text(res))

    async with stdio_client(server(base, root)) as (r, w), ClientSession(r, w) as s:
        d = await s.discover()
        check("2026-07-28" in d.supported_versions, "server/discover (2026-07-28 era)", d)
        tools = (await s.list_tools()).tools
        check({t.name for t in tools} == EXPECTED_TOOLS | LSP_TOOLS, "tools/list in the discover era")
        res = await s.call_tool("read_text_file", {"path": "a.txt"})
        check(not res.is_error and text(res) == "one\n", "tools/call in the discover era", text(res))

    async def unused(ctx, params):  # declares elicitation; 2026-07-28 asks through InputRequiredResult instead
        raise AssertionError("no server-to-client requests in the discover era")

    async with stdio_client(server(base, root)) as (r, w), ClientSession(r, w, elicitation_callback=unused) as s:
        await s.discover()
        for name, choice, written in [("modern_allowed.txt", "allow_once", True), ("modern_denied.txt", "deny", False)]:
            args = {"path": name, "content": "m"}
            res = await s.call_tool("write_file", args, allow_input_required=True)
            ok = isinstance(res, types.InputRequiredResult) and len(res.input_requests or {}) == 1 and not (root / name).exists()
            check(ok, f"a prompt in the discover era is an InputRequiredResult ({choice})", res)
            (key, req), = res.input_requests.items()
            check("fs.write" in req.params.message, "the input request is the policy question", req)
            answer = {key: types.ElicitResult(action="accept", content={"decision": choice})}
            res = await s.call_tool("write_file", args, input_responses=answer, request_state=res.request_state)
            check(res.is_error != written and (root / name).exists() == written, f"the retried call applies the answer ({choice})", text(res))
            if written:
                # the same answer once more: a replay, not a new approval
                again = {"path": "modern_replayed.txt", "content": "m"}
                res = await s.call_tool("write_file", again, input_responses=answer, allow_input_required=True)
                check(getattr(res, "is_error", False) and "rule policy-forged" in text(res) and not (root / "modern_replayed.txt").exists(),
                      "a replayed answer is refused and nothing is written", res)
        # a move across two projects asks twice; the first answer travels in the server's requestState
        other = root / "other"
        other.mkdir(exist_ok=True)
        git(other, "init", "-q", "-b", "main")
        (root / "modern_mover.txt").write_text("m")
        args = {"source": "modern_mover.txt", "destination": str(other / "moved.txt")}
        res = await s.call_tool("move_file", args, allow_input_required=True)
        rounds = 0
        while isinstance(res, types.InputRequiredResult) and rounds < 4:
            rounds += 1
            (key, _), = res.input_requests.items()
            once = {key: types.ElicitResult(action="accept", content={"decision": "allow_once"})}
            res = await s.call_tool("move_file", args, input_responses=once, request_state=res.request_state, allow_input_required=True)
        check(rounds == 2 and not res.is_error and (other / "moved.txt").exists(),
              "a move across two projects asks once per project and then moves", (rounds, res))
        # an answer to a question never asked (the id guessed), and a requestState never issued
        forged = {"path": "modern_forged.txt", "content": "m"}
        yes = types.ElicitResult(action="accept", content={"decision": "allow_all"})
        for answers, state in [({f"zeke-policy:fs.write:{root}": yes}, None), ({}, '{"zeke-policy:x": {"action": "accept"}}')]:
            res = await s.call_tool("write_file", forged, input_responses=answers or None, request_state=state, allow_input_required=True)
            check(getattr(res, "is_error", False) and "rule policy-forged" in text(res) and not (root / "modern_forged.txt").exists(),
                  "a forged answer or requestState is refused and nothing is written", res)


async def protected_home(base):
    """`zeke mcp --root ~`: git's and Zeke's own files inside the root are still never written."""
    home = base / "home"
    (home / ".config" / "zeke").mkdir(parents=True)
    (home / ".gitconfig").write_text("[user]\n\tname = x\n")
    cfg = home / ".config" / "zeke" / "config.toml"
    cfg.write_text('[capabilities]\n"fs.write" = "allow"\n')
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "XDG_STATE_HOME": str(home / ".local/state"),
           "ZEKE_CONFIG": str(cfg), "ZEKE_AUDIT_LOG": str(home / "audit.jsonl")}
    env.pop("GIT_CONFIG_GLOBAL", None)
    params = server(base, home, extra_env=env)
    params.env.pop("GIT_CONFIG_GLOBAL", None)
    async with stdio_client(params) as (r, w), ClientSession(r, w) as s:
        await s.initialize()
        for path in [".gitconfig", ".config/git/config", ".config/zeke/config.toml", "audit.jsonl"]:
            res = await s.call_tool("write_file", {"path": path, "content": "[core]\n\tpager = touch /tmp/x\n"})
            check(res.is_error and "rule protected-path" in text(res), f"write_file {path} inside the root is refused as protected", text(res))
        res = await s.call_tool("write_file", {"path": "notes.txt", "content": "fine"})
        check(not res.is_error, "an ordinary file beside them is written", text(res))
    check((home / ".gitconfig").read_text() == "[user]\n\tname = x\n", "~/.gitconfig is unchanged")


class Site:
    """A web server on 127.0.0.1 counting its requests: `/` an HTML page, `/away` a redirect to a
    file: URL."""

    def __init__(self):
        import http.server
        import threading
        site = self
        self.requests = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                site.requests.append(self.path)
                if self.path == "/away":
                    self.send_response(302)
                    self.send_header("Location", "file:///etc/passwd")
                    self.end_headers()
                    return
                body = b"<!doctype html><html><head><script>steal()</script></head><body><h1>Title</h1><p>Some <b>bold</b> words.</p></body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


async def fetch_gated_by_net_http(base, root):
    """`fetch` on the MCP surface: net.http deny refuses, prompt asks (Deny: no request; Allow
    once: the page as Markdown), allow runs; a private address is refused unless configured, and a
    redirect off http(s) is refused."""
    site = Site()
    private = '[fetch]\nallow_private = true\n'

    async def no_elicit(ctx, params):
        raise AssertionError("must not be asked")

    async with stdio_client(server(base, root, private + '[capabilities]\n"net.http" = "deny"\n')) as (r, w), \
            ClientSession(r, w, elicitation_callback=no_elicit) as s:
        await s.initialize()
        tools = {t.name: t for t in (await s.list_tools()).tools}
        check(tools["fetch"].annotations.open_world_hint is True and tools["fetch"].annotations.read_only_hint is True,
              "fetch is read-only and open-world", tools["fetch"].annotations)
        res = await s.call_tool("fetch", {"url": site.url + "/"})
        check(res.is_error and "rule policy-deny" in text(res) and "net.http" in text(res) and not site.requests,
              "net.http deny: fetch refused, no request made", (text(res), site.requests))

    answers = ["deny", "allow_once"]
    asked = []

    async def on_elicit(ctx, params):
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"decision": answers.pop(0)})

    async with stdio_client(server(base, root, private)) as (r, w), ClientSession(r, w, elicitation_callback=on_elicit) as s:
        await s.initialize()
        res = await s.call_tool("fetch", {"url": site.url + "/"})
        check(res.is_error and "denied by the user" in text(res) and not site.requests,
              "net.http prompt (the default) + Deny: no request made", (text(res), site.requests))
        res = await s.call_tool("fetch", {"url": site.url + "/"})
        body = text(res)
        check(not res.is_error and "# Title" in body and "**bold**" in body and "steal" not in body and site.requests == ["/"],
              "net.http prompt + Allow once: the page as Markdown, scripts dropped", body)
        check(len(asked) == 2 and "net.http" in asked[0] and site.url in asked[0], "the question names the capability and the URL", asked)

    async with stdio_client(server(base, root, private + '[capabilities]\n"net.http" = "allow"\n')) as (r, w), \
            ClientSession(r, w, elicitation_callback=no_elicit) as s:
        await s.initialize()
        res = await s.call_tool("fetch", {"url": site.url + "/", "max_length": 8})
        check(not res.is_error and "start_index of 8" in text(res), "net.http allow: runs; long content comes in pieces", text(res))
        res = await s.call_tool("fetch", {"url": site.url + "/away"})
        check(res.is_error and "rule fetch-scheme" in text(res), "a redirect to file: is refused", text(res))
    n = len(site.requests)
    async with stdio_client(server(base, root, '[capabilities]\n"net.http" = "allow"\n')) as (r, w), ClientSession(r, w) as s:
        await s.initialize()
        for url in [site.url + "/", "http://[::1]:9/", "http://169.254.169.254/latest/meta-data/"]:
            res = await s.call_tool("fetch", {"url": url})
            check(res.is_error and "rule fetch-private-address" in text(res), f"{url}: a private address is refused by default", text(res))
    check(len(site.requests) == n, "no request reached the private server", site.requests[n:])
    site.httpd.shutdown()


async def main():
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp).resolve()
        root = base / "repo"
        root.mkdir()
        git(root, "init", "-q", "-b", "main")
        (root / "a.txt").write_text("one\n")
        (root / "pixel.png").write_bytes(bytes.fromhex("89504e470d0a1a0a"))
        git(root, "add", "a.txt")
        git(root, "commit", "-q", "-m", "first")
        await every_tool(base, root)
        await elicitation_and_cancellation(base, root)
        await roots_and_discover(base, root)
        await protected_home(base)
        await fetch_gated_by_net_http(base, root)
    print(f"mcp-interop: {checks} passed, 0 failed, 0 skipped", flush=True)


anyio.run(main)
