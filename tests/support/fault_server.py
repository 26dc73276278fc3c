#!/usr/bin/env python3
"""A fault-injecting HTTP server for Zeke's provider tests, bound to 127.0.0.1 only.

Usage: fault_server.py [--port N] [--port-file F] [--exit-with-stdin]   (port 0 = any free port; the port is printed)

The first path segment(s) choose the behaviour; the rest is an OpenAI- or Ollama-style path, so a
provider configured with url = http://127.0.0.1:PORT/<mode> talks to it unchanged:
  /ok/...            healthy: SSE chat (/v1/chat/completions), /v1/models, /health, /infill -> 501,
                     llama-server's /completion (SSE content/stop),
                     Ollama NDJSON (/api/chat, /api/generate, /api/tags)
  /slow/...          like /ok but 40 ms between chunks (cancellation tests)
  /status/CODE/...   answers HTTP CODE with an OpenAI-style JSON error (429 adds retry-after: 7)
  /malformed/...     200 text/event-stream whose data is not JSON
  /cut/...           sends one good chunk, then closes the connection mid-stream
  /hang/...          sends headers, then nothing for 30 s
  /alternate/...     odd-numbered POSTs behave like a 3 s hang, even ones like /ok (a fast request
                     after a slow one; POST /reset restarts the count)
  /replay/NAME/...   streams tests/fixtures/wire/NAME byte for byte (recorded real transcripts)
  /delay/MS/...      like /ok, but the answer starts after MS milliseconds (hedging, TTFT)
  /once/CODE/...     the first POST (per tag) answers like /status/CODE (429 and 503 with
                     retry-after: 1), later ones like /ok
  /quota/...         429 with OpenAI's insufficient_quota error (an exhausted quota) and retry-after: 1
  /cutafter/N/...    sends N chunks of the reply, then closes the connection (no [DONE])
  /script/NAME/...   a scripted OpenAI chat model: the k-th POST (per tag) streams step k of
                     tests/fixtures/scripts/NAME.json (the last step repeats): {"text": "..."} as
                     content deltas, or {"tool_calls": [{"name", "arguments": {...}}]} as tool-call
                     deltas by index (arguments in two pieces) with finish_reason tool_calls
  GET /stats         JSON counts: requests started, streams completed, streams aborted by the client
  POST /reset        zeroes the counts
Any path may start with /t/TAG/ (TAG: letters, digits, -): the request is also counted under that
tag, and GET /t/TAG/stats returns the tag's counts plus every request it received
({"path", "body", "auth": whether a key header was sent}) — one tag per test keeps parallel tests apart.
"""
import argparse
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "wire")
REPLY = ["def", " add", "(a,", " b):", "\n", "    return", " a", " +", " b"]
LOCK = threading.Lock()
STATS = {"started": 0, "completed": 0, "aborted": 0}
TAGS = {}  # tag -> {"started", "completed", "aborted", "requests": [...], "once": n}


def tag_of(path):
    """(tag or None, path without /t/TAG)."""
    parts = path.split("?")[0].strip("/").split("/")
    if len(parts) >= 2 and parts[0] == "t":
        return parts[1], "/" + "/".join(parts[2:])
    return None, path.split("?")[0]


def tag_stats(tag):
    with LOCK:
        return TAGS.setdefault(tag, {"started": 0, "completed": 0, "aborted": 0, "requests": [], "once": 0})
ALTERNATE = [0]  # requests seen by /alternate: odd ones are slow


CURRENT = threading.local()


def bump(key):
    with LOCK:
        STATS[key] += 1
        tag = getattr(CURRENT, "tag", None)
        if tag is not None:
            TAGS[tag][key] += 1


def chunk(content=None, finish=None, usage=None):
    obj = {"id": "fault-1", "object": "chat.completion.chunk", "model": "fault-model",
           "choices": [] if usage else [{"index": 0, "delta": {} if content is None else {"content": content},
                                         "finish_reason": finish}]}
    if usage:
        obj["usage"] = usage
    return "data: " + json.dumps(obj) + "\n\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _json(self, code, obj, headers=()):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _stream_start(self, ctype="text/event-stream"):
        self.send_response(200)
        self.send_header("content-type", ctype)
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True

    def _send(self, text):
        self.wfile.write(text.encode())
        self.wfile.flush()

    def do_GET(self):
        tag, path = tag_of(self.path)
        if tag is not None and path == "/stats":
            st = tag_stats(tag)
            with LOCK:
                return self._json(200, {k: v for k, v in st.items() if k not in ("once", "script")})
        parts = path.strip("/").split("/")
        if parts == ["stats"]:
            with LOCK:
                return self._json(200, dict(STATS))
        rest = "/" + "/".join(parts[1:])
        if rest.endswith("/health"):
            return self._json(200, {"status": "ok"})
        if rest.endswith("/models"):
            return self._json(200, {"object": "list", "data": [{"id": "fault-model", "object": "model"}]})
        if rest.endswith("/api/tags"):
            return self._json(200, {"models": [{"name": "fault-model:latest"}]})
        return self._json(404, {"error": {"message": "not found", "type": "not_found"}})

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        tag, path = tag_of(self.path)
        CURRENT.tag = tag
        if tag is not None:
            st = tag_stats(tag)
            try:
                parsed = json.loads(body) if body else None
            except ValueError:
                parsed = body.decode("utf-8", "replace")
            auth = any(self.headers.get(h) for h in ("authorization", "x-api-key", "api-key", "x-goog-api-key"))
            with LOCK:
                st["requests"].append({"path": path, "body": parsed, "auth": bool(auth)})
        parts = path.strip("/").split("/")
        if parts == ["reset"]:
            with LOCK:
                for k in STATS:
                    STATS[k] = 0
                ALTERNATE[0] = 0
            return self._json(200, {})
        bump("started")
        mode = parts[0] if parts else ""
        try:
            if mode == "once":
                with LOCK:
                    st = TAGS.setdefault(tag, {"started": 0, "completed": 0, "aborted": 0, "requests": [], "once": 0})
                    st["once"] += 1
                    first = st["once"] == 1
                code = int(parts[1])
                parts = ["ok"] + parts[2:] if not first else ["status", str(code)] + parts[2:]
                mode = parts[0]
                if first:
                    headers = [("retry-after", "1")] if code in (429, 503) else []
                    return self._json(code, {"error": {"message": "error %d (first request)" % code, "type": "fault"}}, headers)
            if mode == "script":
                with open(os.path.join(FIXTURES, "..", "scripts", os.path.basename(parts[1]) + ".json")) as f:
                    steps = json.load(f)
                with LOCK:
                    st = TAGS.setdefault(tag, {"started": 0, "completed": 0, "aborted": 0, "requests": [], "once": 0})
                    k = st.setdefault("script", 0)
                    st["script"] = k + 1
                step = steps[min(k, len(steps) - 1)]
                self._stream_start()
                base = {"id": "script-1", "object": "chat.completion.chunk", "model": "script-model"}
                if "tool_calls" in step:
                    for i, c in enumerate(step["tool_calls"]):
                        args = json.dumps(c.get("arguments", {}))
                        half = len(args) // 2
                        first = {"index": i, "id": "call_%d_%d" % (k, i), "type": "function",
                                 "function": {"name": c["name"], "arguments": args[:half]}}
                        rest = {"index": i, "function": {"arguments": args[half:]}}
                        for piece in (first, rest):
                            self._send("data: " + json.dumps(dict(base, choices=[{"index": 0, "delta": {"tool_calls": [piece]}, "finish_reason": None}])) + "\n\n")
                    self._send("data: " + json.dumps(dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": "tool_calls"}])) + "\n\n")
                else:
                    words = step.get("text", "").split(" ")
                    for i, w in enumerate(words):
                        self._send(chunk(w if i == 0 else " " + w))
                    self._send(chunk(None, "stop"))
                self._send(chunk(usage={"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60}))
                self._send("data: [DONE]\n\n")
                return bump("completed")
            if mode == "quota":
                return self._json(429, {"error": {"message": "You exceeded your current quota, please check your plan and billing details.",
                                                  "type": "insufficient_quota", "code": "insufficient_quota"}},
                                  [("retry-after", "1")])
            if mode == "delay":
                time.sleep(int(parts[1]) / 1000.0)
                parts = ["ok"] + parts[2:]
                mode = "ok"
            cut_after = None
            if mode == "cutafter":
                cut_after = int(parts[1])
                parts = ["ok"] + parts[2:]
                mode = "ok"
            if mode == "status":
                code = int(parts[1])
                headers = [("retry-after", "7")] if code == 429 else []
                msgs = {401: "Incorrect API key provided", 429: "Rate limit reached", 500: "internal failure",
                        503: "service unavailable", 400: "bad request"}
                return self._json(code, {"error": {"message": msgs.get(code, "error %d" % code), "type": "fault"}}, headers)
            if mode == "replay":
                with open(os.path.join(FIXTURES, os.path.basename(parts[1])), "rb") as f:
                    data = f.read()
                self._stream_start()
                self.wfile.write(data)
                self.wfile.flush()
                return bump("completed")
            rest = "/" + "/".join(parts[1:])
            if rest.endswith("/infill"):
                return self._json(501, {"error": {"code": 501, "message": "Infill is not supported by this model",
                                                  "type": "not_supported_error"}})
            if mode == "malformed":
                self._stream_start()
                self._send("data: {this is not json\n\n")
                return bump("completed")
            if mode == "hang":
                self._stream_start()
                time.sleep(30)
                return
            if mode == "alternate":
                with LOCK:
                    ALTERNATE[0] += 1
                    slow = ALTERNATE[0] % 2 == 1
                if slow:  # headers, then 3 s of nothing: a slow request in flight
                    self._stream_start()
                    time.sleep(3)
                    return
            delay = 0.04 if mode == "slow" else 0.0
            if rest.endswith("/completion"):
                # llama-server's native continuation endpoint
                self._stream_start()
                for piece in REPLY:
                    self._send("data: " + json.dumps({"content": piece, "stop": False}) + "\n\n")
                    time.sleep(delay)
                self._send("data: " + json.dumps({"content": "", "stop": True, "tokens_evaluated": 5,
                                                   "tokens_predicted": len(REPLY)}) + "\n\n")
                return bump("completed")
            if rest.endswith("/api/chat") or rest.endswith("/api/generate"):
                key = "message" if rest.endswith("/api/chat") else "response"
                self._stream_start("application/x-ndjson")
                for piece in REPLY:
                    val = {"role": "assistant", "content": piece} if key == "message" else piece
                    self._send(json.dumps({"model": "fault-model", key: val, "done": False}) + "\n")
                    time.sleep(delay)
                self._send(json.dumps({"model": "fault-model", "done": True, "done_reason": "stop",
                                       "prompt_eval_count": 5, "eval_count": len(REPLY)}) + "\n")
                return bump("completed")
            self._stream_start()
            for i, piece in enumerate(REPLY):
                self._send(chunk(piece))
                time.sleep(delay)
                if (mode == "cut" and i == 0) or (cut_after is not None and i + 1 == cut_after):
                    self.connection.shutdown(2)
                    return
            self._send(chunk(None, "stop"))
            self._send(chunk(usage={"prompt_tokens": 5, "completion_tokens": len(REPLY), "total_tokens": 5 + len(REPLY)}))
            self._send("data: [DONE]\n\n")
            bump("completed")
        except (BrokenPipeError, ConnectionResetError):
            bump("aborted")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--exit-with-stdin", action="store_true",
                    help="exit when stdin closes (the parent test process went away)")
    a = ap.parse_args()
    if a.exit_with_stdin:
        import sys

        def watch():
            sys.stdin.read()
            os._exit(0)
        threading.Thread(target=watch, daemon=True).start()
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    port = srv.server_address[1]
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write(str(port))
        os.replace(a.port_file + ".tmp", a.port_file)
    print(port, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
