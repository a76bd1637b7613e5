"""LLM hedging (`--llm-hedge 2`: two requests raced per reply, first token wins) against one
request, side by side in one run, on heavy-tailed first-token latency.

The claim under test: "hedging cuts P99 without improving the average". Three LLM sources, each
measured in both arms, the arms interleaved batch by batch so that machine noise falls on both:

* `sim lognormal`: the simulated LLM (labelled simulated) with a continuous heavy tail,
  time to first token lognormal, median 80 ms, P99 1500 ms.
* `sim stalls`: the simulated LLM with a light body (lognormal:80:150) and rare stalls
  (5 % of requests wait another 1.5 s): a provider whose queue now and then stalls.
* `openai http`: turnbench's OpenAI-compatible provider over real HTTP (aiohttp, SSE streaming)
  against a local OpenAI-compatible endpoint that injects the `sim stalls` latency before its
  first chunk (`LatencyInjectingServer`, in this file, on 127.0.0.1).

Reported per source and arm: P50, mean and P99 of time to first token with 95 % bootstrap CIs,
and the P99 and P50 ratios hedged / single. Racers are independent (own seeds), as two requests
to a provider's different replicas are.

    python benchmarks/llm_hedge.py            # ~1 minute
    python benchmarks/llm_hedge.py --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import numpy as np
from aiohttp import web

from harness.agent.oracle_config import Delay
from harness.agent.providers.llm_hedge import HedgedLlm
from harness.agent.providers.llm_openai import OpenAiCompatibleLlm
from harness.agent.providers.sim import SimLlm
from harness.metrics.stats import bootstrap_ci

MESSAGES = [{"role": "user", "content": "What time does the pharmacy close today?"}]
STALLS = {"ttft_ms": "lognormal:80:150", "stall_rate": 0.05, "stall_ms": "1500"}


class LatencyInjectingServer:
    """A local OpenAI-compatible chat endpoint (streaming SSE) that waits a drawn time to first
    token, light body with rare stalls, then streams a short canned answer. For this benchmark
    only: the latency is the point, not the words."""

    def __init__(self, seed: int):
        self._body, self._stall = Delay(STALLS["ttft_ms"]), Delay(STALLS["stall_ms"])
        self._rng = np.random.default_rng(seed)
        self.url = ""
        self.abandoned = 0

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        await request.json()
        wait = self._body.draw(self._rng) + (self._stall.draw(self._rng) if self._rng.random() < STALLS["stall_rate"] else 0)
        await asyncio.sleep(wait / 1000)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        try:
            await resp.prepare(request)
            for word in ("Sure,", " it", " closes", " at", " nine."):
                chunk = {"choices": [{"index": 0, "delta": {"content": word}}]}
                await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
            await resp.write(b"data: [DONE]\n\n")
        except ConnectionError:  # the race's loser hung up: what hedging does to a server
            self.abandoned += 1
        return resp

    async def __aenter__(self) -> LatencyInjectingServer:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(self, *exc) -> None:
        await self._runner.cleanup()


async def first_token_ms(llm) -> float:
    t0 = time.perf_counter_ns()
    stream = llm.stream(list(MESSAGES))
    try:
        async for _ in stream:
            return (time.perf_counter_ns() - t0) / 1e6
    finally:
        await stream.aclose()
    raise RuntimeError("the LLM produced no token")


def summary(xs: list[float], seed: int) -> dict:
    a = np.asarray(xs)
    out = {"n": int(a.size), "mean": round(float(a.mean()), 1)}
    for name, q in (("p50", 50), ("p99", 99)):
        lo, hi = bootstrap_ci(a, q, seed=seed)
        out[name] = round(float(np.percentile(a, q)), 1)
        out[f"{name}_ci95"] = [round(float(lo), 1), round(float(hi), 1)]
    mlo, mhi = np.percentile([np.random.default_rng(seed + k).choice(a, a.size).mean() for k in range(1000)],
                             [2.5, 97.5])
    out["mean_ci95"] = [round(float(mlo), 1), round(float(mhi), 1)]
    return out


async def measure(make, n: int, batch: int) -> dict:
    """`n` requests per arm, in interleaved batches of `batch` concurrent requests."""
    arms = {"single": make(1), "hedge2": make(2)}
    got: dict[str, list[float]] = {a: [] for a in arms}
    for b in range(0, n, batch):
        order = list(arms) if (b // batch) % 2 == 0 else list(reversed(arms))
        for arm in order:
            got[arm] += await asyncio.gather(*(first_token_ms(arms[arm]) for _ in range(min(batch, n - b))))
    for llm in arms.values():
        for m in getattr(llm, "llms", [llm]):
            if hasattr(m, "close"):
                await m.close()
    res = {arm: summary(v, seed=7) for arm, v in got.items()}
    res["p99_ratio"] = round(res["hedge2"]["p99"] / res["single"]["p99"], 3)
    res["p50_ratio"] = round(res["hedge2"]["p50"] / res["single"]["p50"], 3)
    res["mean_ratio"] = round(res["hedge2"]["mean"] / res["single"]["mean"], 3)
    return res


def racers(factory, k: int):
    llms = [factory(seed) for seed in range(k)]
    return llms[0] if k == 1 else HedgedLlm(llms)


async def main(n: int, batch: int) -> dict:
    sources = {
        "sim lognormal": lambda k: racers(lambda s: SimLlm(ttft_ms="lognormal:80:1500", seed=11 + 1000 * s), k),
        "sim stalls": lambda k: racers(lambda s: SimLlm(**STALLS, seed=23 + 1000 * s), k),
    }
    out = {"schema": "turnbench.bench.llm_hedge/1", "n_per_arm": n, "sources": {}}
    for name, make in sources.items():
        out["sources"][name] = await measure(make, n, batch)
    servers = [LatencyInjectingServer(seed=s) for s in range(2)]  # two independent replicas
    async with servers[0], servers[1]:
        out["sources"]["openai http"] = await measure(
            lambda k: racers(lambda s: OpenAiCompatibleLlm(base_url=servers[s].url, max_tokens=8), k),
            max(200, n // 4), min(batch, 50))
    return out


def show(res: dict) -> None:
    print(f"time to first token, ms ({res['n_per_arm']} requests per arm for the simulated sources)")
    print(f"{'source':<14} {'arm':<7} {'P50 [95% CI]':<24} {'mean [95% CI]':<24} {'P99 [95% CI]':<26}")
    for name, r in res["sources"].items():
        for arm in ("single", "hedge2"):
            s = r[arm]
            print(f"{name:<14} {arm:<7} {s['p50']:>7} {str(s['p50_ci95']):<16} {s['mean']:>7} {str(s['mean_ci95']):<16} "
                  f"{s['p99']:>7} {str(s['p99_ci95']):<18}")
        print(f"{'':<14} hedged/single: P50 ×{r['p50_ratio']}, mean ×{r['mean_ratio']}, P99 ×{r['p99_ratio']}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=2000, help="requests per arm per simulated source")
    ap.add_argument("--batch", type=int, default=200, help="concurrent requests per batch")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    result = asyncio.run(main(args.n, args.batch))
    show(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    sys.exit(0)
