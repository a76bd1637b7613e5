"""Hedged LLM requests: the same prompt to several LLMs at once; the first token wins.

The classic cut of tail latency for hosted APIs (a slow request is raced by a second one);
the losers are cancelled as soon as a winner speaks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from harness.agent.providers.base import LLM


class HedgedLlm(LLM):
    """Races `llms` (independent instances: a local model needs one per racer) per request."""

    def __init__(self, llms: list[LLM]):
        if len(llms) < 2:
            raise ValueError("a hedge needs at least two LLMs")
        self.llms = llms
        self.name = f"{llms[0].name}×{len(llms)}"
        self.simulated = any(m.simulated for m in llms)
        self.wins = [0] * len(llms)
        self.system_prompt, self.fanout = llms[0].system_prompt, len(llms)

    async def stream(self, messages: list[dict]) -> AsyncIterator[str]:
        queue: asyncio.Queue[tuple[int, str | BaseException | None]] = asyncio.Queue()

        async def race(i: int, llm: LLM) -> None:
            try:
                async for delta in llm.stream(list(messages)):
                    queue.put_nowait((i, delta))
            except Exception as e:
                queue.put_nowait((i, e))
                return
            queue.put_nowait((i, None))

        tasks = [asyncio.create_task(race(i, m)) for i, m in enumerate(self.llms)]
        winner, finished, errors = None, set(), []
        try:
            while True:
                i, item = await queue.get()
                if winner is None:
                    if item is None or isinstance(item, BaseException):
                        finished.add(i)
                        if isinstance(item, BaseException):
                            errors.append(item)
                        if len(finished) == len(tasks):
                            if errors:
                                raise errors[0]
                            return
                        continue
                    winner = i
                    self.wins[i] += 1
                    for j, t in enumerate(tasks):
                        if j != i:
                            t.cancel()
                if i != winner:
                    continue
                if isinstance(item, BaseException):
                    raise item
                if item is None:
                    return
                yield item
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
