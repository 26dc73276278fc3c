#!/usr/bin/env python3
"""LiteLLM's Router measured the way examples/bench_router.rs measures Zeke's, in the same run:

1. pure router overhead: `mock_response` (no I/O) streamed through Router.acompletion vs the same
   64 chunks from a plain async generator — added time to first chunk and per chunk;
2. against llama-server ($ZEKE_TEST_LLAMA_URL): time to first content through the Router vs a
   direct streamed httpx call, alternating.

Prints key=value lines. Run with the LiteLLM venv's python (scripts/deps.sh --bench installs it).
"""
import asyncio
import os
import statistics
import sys
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch at import
import litellm  # noqa: E402
from litellm import Router  # noqa: E402

litellm.suppress_debug_info = True
CHUNKS = 64
MSGS = [{"role": "system", "content": "Answer in one short line."},
        {"role": "user", "content": "Name a colour."}]


def pct(v, p):
    v = sorted(v)
    return v[round((len(v) - 1) * p)]


async def pure():
    router = Router(model_list=[{"model_name": "mock", "litellm_params": {"model": "openai/mock", "api_key": "none"}}])
    text = " ".join(f"t{i}" for i in range(CHUNKS))
    ttft, per_chunk = [], []

    async def plain():
        for i in range(CHUNKS):
            yield i

    for i in range(330):
        t0 = time.perf_counter()
        first = None
        async for _ in plain():
            if first is None:
                first = time.perf_counter() - t0
        d_first, d_total = first, time.perf_counter() - t0
        t0 = time.perf_counter()
        first, n = None, 0
        resp = await router.acompletion(model="mock", messages=MSGS, stream=True, mock_response=text)
        async for _ in resp:
            n += 1
            if first is None:
                first = time.perf_counter() - t0
        r_first, r_total = first, time.perf_counter() - t0
        if i >= 30:
            ttft.append((r_first - d_first) * 1e3)
            per_chunk.append(((r_total - r_first) - (d_total - d_first)) * 1e6 / max(n - 1, 1))
    print(f"litellm_added_ttft_p50_ms={pct(ttft, 0.5):.4f}")
    print(f"litellm_added_ttft_p99_ms={pct(ttft, 0.99):.4f}")
    print(f"litellm_added_per_chunk_p50_us={pct(per_chunk, 0.5):.3f}")
    print(f"litellm_added_per_chunk_p99_us={pct(per_chunk, 0.99):.3f}")


async def against_llama(url):
    import httpx
    router = Router(model_list=[{"model_name": "llama", "litellm_params": {
        "model": "openai/local", "api_base": url + "/v1", "api_key": "none"}}])
    direct, routed = [], []
    async with httpx.AsyncClient(timeout=60) as client:
        for i in range(24):
            t0 = time.perf_counter()
            first = None
            async with client.stream("POST", url + "/v1/chat/completions", json={
                    "messages": MSGS, "max_tokens": 16, "temperature": 0.0, "stream": True}) as r:
                async for line in r.aiter_lines():
                    if first is None and '"content":"' in line:
                        first = time.perf_counter() - t0
            d = first or (time.perf_counter() - t0)
            t0 = time.perf_counter()
            first = None
            resp = await router.acompletion(model="llama", messages=MSGS, stream=True, max_tokens=16, temperature=0.0)
            async for c in resp:
                if first is None and c.choices and c.choices[0].delta.content:
                    first = time.perf_counter() - t0
            if i >= 4:
                direct.append(d * 1e3)
                routed.append((first or (time.perf_counter() - t0)) * 1e3)
    print(f"litellm_llama_direct_ttft_p50_ms={statistics.median(direct):.3f}")
    print(f"litellm_llama_router_ttft_p50_ms={statistics.median(routed):.3f}")


async def main():
    await pure()
    url = os.environ.get("ZEKE_TEST_LLAMA_URL")
    if url:
        await against_llama(url)


if __name__ == "__main__":
    print(f"litellm_version={getattr(litellm, 'version', None) or __import__('importlib.metadata').metadata.version('litellm')}")
    asyncio.run(main())
    sys.stdout.flush()
