"""One tool call against `zeke mcp`, made by the official Python MCP SDK client, for tests of other
surfaces (the Lua suite checks that grants given in Neovim count in `zeke mcp`, and back).

Usage: ZEKE_BIN=… $ZEKE_MCP_PY tests/mcp/call.py --root DIR [--answer CHOICE] TOOL JSON_ARGS
Prints one JSON line: {"error": bool, "text": "…"}. With --answer the client declares elicitation
and answers every policy question with CHOICE (allow_once, allow_all, allow_project or deny);
without it the client cannot be asked. The server inherits this process's environment
(XDG_STATE_HOME, ZEKE_CONFIG, ZEKE_AUDIT_LOG).
"""

import argparse
import json
import os
import sys

import anyio
import mcp_types as types
from mcp import ClientSession, StdioServerParameters, stdio_client


async def main(a):
    zeke = os.environ.get("ZEKE_BIN") or sys.exit("call.py: set ZEKE_BIN to the zeke binary")
    params = StdioServerParameters(command=zeke, args=["mcp", "--root", a.root], env=dict(os.environ))
    callback = None
    if a.answer:
        async def callback(_ctx, _params):
            return types.ElicitResult(action="accept", content={"decision": a.answer})
    async with stdio_client(params) as (r, w), ClientSession(r, w, elicitation_callback=callback) as s:
        await s.initialize()
        res = await s.call_tool(a.tool, json.loads(a.args))
        text = "".join(c.text for c in res.content if getattr(c, "type", "") == "text")
        print(json.dumps({"error": bool(res.is_error), "text": text}), flush=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--answer", choices=["allow_once", "allow_all", "allow_project", "deny"])
    p.add_argument("tool")
    p.add_argument("args")
    anyio.run(main, p.parse_args())
