#!/usr/bin/env bash
# Runs a command with the real services the tests, demo and benchmarks need, each on a free port of
# 127.0.0.1, and stops them afterwards:
#   ZEKE_TEST_LLAMA_URL  llama-server with SmolLM2-135M-Instruct (real model)
#   ZEKE_TEST_FAULT_URL  tests/support/fault_server.py (fault injection, recorded transcripts)
# Also exports ZEKE_NVIM, ZEKE_LLAMA_SERVER, ZEKE_MODEL from scripts/deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/deps.sh --env)"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

python3 tests/support/fault_server.py --port-file "$work/fault.port" >/dev/null &
pids+=($!)

port=$(free_port)
"$ZEKE_LLAMA_SERVER" -m "$ZEKE_MODEL" --host 127.0.0.1 --port "$port" -c 8192 -np 2 -t 2 --jinja >"$work/llama.log" 2>&1 &
pids+=($!)
export ZEKE_TEST_LLAMA_URL="http://127.0.0.1:$port"

for _ in $(seq 1 600); do
  if [ -s "$work/fault.port" ] && curl -sf "$ZEKE_TEST_LLAMA_URL/health" >/dev/null 2>&1; then break; fi
  if ! kill -0 "${pids[1]}" 2>/dev/null; then
    status=0; wait "${pids[1]}" 2>/dev/null || status=$?
    why="exit status $status"
    [ "$status" = 132 ] && why="SIGILL (Illegal instruction): it uses CPU instructions this machine cannot run; run make deps, which smoke-runs and rebuilds it"
    echo "llama-server failed to start ($why); its log:" >&2; tail -n 30 "$work/llama.log" >&2; exit 1
  fi
  sleep 0.2
done
curl -sf "$ZEKE_TEST_LLAMA_URL/health" >/dev/null || { echo "llama-server did not become healthy" >&2; tail -20 "$work/llama.log" >&2; exit 1; }
export ZEKE_TEST_FAULT_URL="http://127.0.0.1:$(cat "$work/fault.port")"
echo "[services] llama-server $ZEKE_TEST_LLAMA_URL, fault server $ZEKE_TEST_FAULT_URL" >&2
"$@"
