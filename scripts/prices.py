#!/usr/bin/env python3
"""Regenerate src/router/prices.json, Zeke's bundled price and context-window table.

The table is derived from LiteLLM's `model_prices_and_context_window_backup.json` (BerriAI/litellm,
MIT License; see THIRD_PARTY_NOTICES.md), read out of the `litellm` wheel from PyPI and trimmed to
the chat models of the cloud providers Zeke speaks to.

    python3 scripts/prices.py                      # pip download litellm --no-deps into a temp dir
    python3 scripts/prices.py --wheel PATH.whl     # use a wheel already on disk
    python3 scripts/prices.py --wheel PATH.whl --date 2025-01-01 --out /tmp/p.json

The output is stable: models sorted by (provider, model), one model per line, keys in a fixed
order, prices rounded to 6 significant digits, so regenerating from the same wheel gives the same
bytes apart from the date, and a newer wheel gives a diff of the changed models only.

Rules (the Rust side, src/router/pricing.rs, relies on them):
- kept: `mode` "chat" of the providers below; "completion" only for the FIM-capable ones
  (codestral, deepseek). Entries without both an input and an output price are skipped.
- provider: LiteLLM's `litellm_provider` mapped to Zeke's provider kind (PROVIDERS below).
- model: the id as the vendor spells it: LiteLLM's own `provider/` prefix is stripped
  (`gemini/gemini-2.5-flash` -> `gemini-2.5-flash`); OpenRouter ids keep their `vendor/model`.
- when two LiteLLM keys give the same (provider, model), the first by PRIORITY wins: chat before
  completion, then the source provider's rank, then the `provider/`-prefixed key (the one LiteLLM
  uses for an explicitly routed call), then the key itself.
- strings are printable ASCII without `"` or `\` (the Rust reader takes no escapes; checked).
- prices in USD per million tokens; a cache-write price of 0 is dropped (writes then bill at the
  input price, as they do at DeepSeek, the one vendor LiteLLM gives 0); context window = max_input_tokens, else max_tokens.
"""

import argparse
import datetime
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile

JSON_PATH = "litellm/model_prices_and_context_window_backup.json"

# LiteLLM provider -> (Zeke provider kind, rank among sources of that kind, modes kept)
PROVIDERS = {
    "openai": ("openai", 0, {"chat"}),
    "anthropic": ("anthropic", 0, {"chat"}),
    "gemini": ("gemini", 0, {"chat"}),
    "azure": ("azure", 0, {"chat"}),
    "xai": ("xai", 0, {"chat"}),
    "groq": ("groq", 0, {"chat"}),
    "mistral": ("mistral", 0, {"chat", "completion"}),
    "codestral": ("mistral", 1, {"chat", "completion"}),
    "text-completion-codestral": ("mistral", 2, {"chat", "completion"}),
    "deepseek": ("deepseek", 0, {"chat", "completion"}),
    "openrouter": ("openrouter", 0, {"chat"}),
}

KEY_ORDER = [
    "provider",
    "model",
    "input_per_mtok",
    "output_per_mtok",
    "cache_read_per_mtok",
    "cache_write_per_mtok",
    "context_window",
    "max_output_tokens",
    "tools",
    "prompt_caching",
]


def fetch_wheel(dest):
    """`pip download litellm --no-deps` into dest; the wheel's path."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "litellm", "--no-deps", "--only-binary=:all:",
         "-d", dest],
        check=True,
    )
    wheels = sorted(f for f in os.listdir(dest) if f.startswith("litellm-") and f.endswith(".whl"))
    if not wheels:
        sys.exit(f"no litellm wheel in {dest}")
    return os.path.join(dest, wheels[-1])


def wheel_version(zf, name):
    for n in zf.namelist():
        if n.endswith(".dist-info/METADATA"):
            for line in zf.read(n).decode().splitlines():
                if line.startswith("Version:"):
                    return line.split(":", 1)[1].strip()
    m = re.match(r"litellm-([^-]+)-", name)
    return m.group(1) if m else "unknown"


def check_license(zf):
    """The wheel's LICENSE puts the JSON (outside enterprise/) under MIT; stop if that changes."""
    lic = [n for n in zf.namelist() if re.search(r"\.dist-info/(licenses/)?LICENSE", n)]
    if not lic:
        sys.exit("no LICENSE in the wheel: check the terms before regenerating")
    text = zf.read(lic[0]).decode()
    if "MIT License" not in text or "Copyright (c) 2023 Berri AI" not in text:
        sys.exit(f"{lic[0]} no longer reads as MIT: check the terms and THIRD_PARTY_NOTICES.md")
    if JSON_PATH.startswith("enterprise/"):
        sys.exit("the table moved under enterprise/, which is not MIT")
    return "MIT License, Copyright (c) 2023 Berri AI (outside enterprise/)"


def per_mtok(v):
    """USD per token -> USD per million tokens, 6 significant digits (no float noise)."""
    if v is None:
        return None
    return float(f"{float(v) * 1e6:.6g}")


def cache_write(v):
    """A cache-write price of 0 (DeepSeek) means "no separate price": writes bill as input."""
    w = per_mtok(v.get("cache_creation_input_token_cost"))
    return None if w == 0 and per_mtok(v["input_cost_per_token"]) > 0 else w


def model_id(key, provider):
    if provider == "openrouter":
        return key[len("openrouter/"):] if key.startswith("openrouter/") else key
    prefix = provider + "/"
    return key[len(prefix):] if key.startswith(prefix) else key


def as_int(v):
    return int(v) if isinstance(v, (int, float)) and v > 0 else None


def derive(table):
    """(rows sorted by provider and model, skipped count, collision count)."""
    chosen = {}
    skipped = 0
    collisions = 0
    for key in sorted(table):
        v = table[key]
        if not isinstance(v, dict) or v.get("litellm_provider") not in PROVIDERS:
            continue
        src = v["litellm_provider"]
        kind, rank, modes = PROVIDERS[src]
        mode = v.get("mode")
        if mode not in modes:
            continue
        if v.get("input_cost_per_token") is None or v.get("output_cost_per_token") is None:
            skipped += 1
            continue
        mid = model_id(key, src)
        row = {
            "provider": kind,
            "model": mid,
            "input_per_mtok": per_mtok(v["input_cost_per_token"]),
            "output_per_mtok": per_mtok(v["output_cost_per_token"]),
            "cache_read_per_mtok": per_mtok(
                v.get("cache_read_input_token_cost", v.get("input_cost_per_token_cache_hit"))
            ),
            "cache_write_per_mtok": cache_write(v),
            "context_window": as_int(v.get("max_input_tokens")) or as_int(v.get("max_tokens")),
            "max_output_tokens": as_int(v.get("max_output_tokens")),
            "tools": bool(v.get("supports_function_calling", False)),
            "prompt_caching": bool(v.get("supports_prompt_caching", False)),
        }
        prio = (mode != "chat", rank, not key.startswith(src + "/"), key)
        slot = (kind, mid)
        if slot in chosen:
            collisions += 1
            if prio >= chosen[slot][0]:
                continue
        chosen[slot] = (prio, row)
    rows = [row for _, (_, row) in sorted(chosen.items())]
    return rows, skipped, collisions


def num(v):
    if isinstance(v, str):
        return string(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return json.dumps(v)


SAFE = re.compile(r'^[ !#-\[\]-~]*$')  # printable ASCII without `"` or `\`


def string(v):
    """A JSON string (printable ASCII expected; anything else is escaped by json.dumps)."""
    return json.dumps(v)


def render(header, rows):
    out = ["{"]
    for k in sorted(header):
        out.append(f"  {string(k)}: {string(header[k])},")
    out.append('  "models": [')
    lines = []
    for r in rows:
        fields = [f"{string(k)}: {num(r[k])}" for k in KEY_ORDER if r[k] is not None]
        lines.append("    {" + ", ".join(fields) + "}")
    out.append(",\n".join(lines))
    out.append("  ]")
    out.append("}")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wheel", help="a litellm wheel on disk (default: pip download the newest)")
    ap.add_argument("--out", default=os.path.normpath(
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "router", "prices.json")))
    ap.add_argument("--date", help="generation date to record (default: today, UTC)")
    a = ap.parse_args()

    tmp = None
    wheel = a.wheel
    if wheel is None:
        tmp = tempfile.TemporaryDirectory()
        wheel = fetch_wheel(tmp.name)
    with open(wheel, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    name = os.path.basename(wheel)
    with zipfile.ZipFile(wheel) as zf:
        license_line = check_license(zf)
        version = wheel_version(zf, name)
        table = json.loads(zf.read(JSON_PATH))

    rows, skipped, collisions = derive(table)
    date = a.date or datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    header = {
        "source": f"litellm {version} ({name})",
        "source_file": JSON_PATH,
        "source_sha256": sha,
        "generated": date,
        "license": license_line,
        "generator": "scripts/prices.py",
        "unit": "USD per million tokens",
    }
    text = render(header, rows)
    json.loads(text)  # what we wrote is JSON
    with open(a.out, "w", newline="\n") as f:
        f.write(text)

    counts = {}
    for r in rows:
        counts[r["provider"]] = counts.get(r["provider"], 0) + 1
    print(f"{a.out}: {len(rows)} models, {len(text)} bytes; skipped {skipped} without prices, "
          f"{collisions} duplicate ids merged", file=sys.stderr)
    for k in sorted({v[0] for v in PROVIDERS.values()}):
        print(f"  {k}: {counts.get(k, 0)}", file=sys.stderr)
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
