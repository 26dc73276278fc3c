#!/usr/bin/env bash
# Interop of `zeke mcp` with the official MCP Inspector CLI (cached by scripts/deps.sh): list the
# tools, call one, and check that a refusal is an isError result (the Inspector exits 5 on those).
# Usage: ZEKE_BIN=… ZEKE_INSPECTOR=… tests/mcp/inspector.sh
set -euo pipefail
: "${ZEKE_BIN:?set ZEKE_BIN}" "${ZEKE_INSPECTOR:?set ZEKE_INSPECTOR (scripts/deps.sh --env)}"
[ -x "$ZEKE_INSPECTOR" ] || { echo "FAIL mcp-inspector: $ZEKE_INSPECTOR is missing; run scripts/deps.sh"; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mkdir -p "$work/root"; printf 'hello from zeke\n' > "$work/root/a.txt"
inspect() { "$ZEKE_INSPECTOR" --cli "$ZEKE_BIN" mcp --root "$work/root" -e ZEKE_AUDIT_LOG="$work/audit.jsonl" -e ZEKE_CONFIG="$work/none.toml" -e ZEKE_LOG=warn "$@"; }
passed=0
fail() { echo "FAIL mcp-inspector: $1"; echo "$2" | head -c 2000; echo; echo "mcp-inspector: $passed passed, 1 failed, 0 skipped"; exit 1; }
ok() { passed=$((passed + 1)); echo "ok   mcp-inspector: $1"; }

out=$(inspect --method tools/list 2>&1) || fail "tools/list exited $?" "$out"
n=$(grep -c '"name": "' <<<"$out" || true)
grep -q '"name": "read_text_file"' <<<"$out" && grep -q '"name": "git_log"' <<<"$out" || fail "tools/list lacks the reference tools" "$out"
ok "tools/list ($n named entries)"

out=$(inspect --method tools/call --tool-name read_text_file --tool-arg path=a.txt 2>&1) || fail "tools/call read_text_file exited $?" "$out"
grep -q 'hello from zeke' <<<"$out" || fail "read_text_file did not return the file" "$out"
ok "tools/call read_text_file"

set +e
out=$(inspect --method tools/call --tool-name read_text_file --tool-arg path=/etc/passwd 2>&1); rc=$?
set -e
[ "$rc" = 5 ] && grep -q 'rule outside-roots' <<<"$out" || fail "a refusal should be an isError result (exit 5), got exit $rc" "$out"
ok "a path outside the roots is an isError result naming the rule"
[ "$(wc -l < "$work/audit.jsonl")" = 2 ] || fail "the audit log should have 2 tool calls" "$(cat "$work/audit.jsonl")"
ok "the audit log has both tool calls"
echo "mcp-inspector: $passed passed, 0 failed, 0 skipped"
