"""Stages, the chain that runs them, and the thread that runs an engine.

A stage receives frames one at a time and pushes frames downstream. The chain gives each
stage a task and an input queue, drops frames of turns an interrupt has made stale, and
keeps one stage's failure from taking down the others.

Engines are blocking calls. ``EngineRunner`` runs each engine on its own single-worker thread
and pulls a generator one item at a time, so the event loop stays free and a cancel lands
between two tokens or two audio chunks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .frames import Frame, StopFrame, is_stale
from .queues import FrameQueue, WorkTracker
from .turn_log import TurnLog

logger = logging.getLogger(__name__)

T = TypeVar("T")


class TurnState:
    """The id of the newest turn. Data of older turns is stale and must not reach the user."""

    def __init__(self) -> None:
        self.current = 0

    def is_stale(self, turn_id: int) -> bool:
        return turn_id < self.current


@dataclass
class StageContext:
    turns: TurnState
    log: TurnLog


class Stage:
    name = "stage"

    def __init__(self) -> None:
        self.out: FrameQueue | None = None
        self.ctx = StageContext(TurnState(), TurnLog(None))

    def bind(self, out: FrameQueue | None, ctx: StageContext) -> None:
        self.out = out
        self.ctx = ctx

    async def process(self, frame: Frame) -> None:
        """Handle one frame; the default passes it on."""
        await self.push(frame)

    async def push(self, frame: Frame) -> None:
        if self.out is not None:
            await self.out.put(frame)

    def is_stale(self, turn_id: int) -> bool:
        return self.ctx.turns.is_stale(turn_id)

    def on_interrupt(self, turn_id: int) -> None:
        """Called at once on an interrupt, even while ``process`` is waiting on an engine."""

    def close(self) -> None:
        """Release threads and engines' resources."""


class Chain:
    """Stages in a line, each on its own task, linked by bounded queues."""

    def __init__(self, stages: Sequence[Stage], log: TurnLog, maxsize: int = 64) -> None:
        self.stages = list(stages)
        self.tracker = WorkTracker()
        self.turns = TurnState()
        self.queues = [FrameQueue(maxsize, self.tracker) for _ in self.stages]
        ctx = StageContext(self.turns, log)
        for i, stage in enumerate(self.stages):
            stage.bind(self.queues[i + 1] if i + 1 < len(self.queues) else None, ctx)
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def input(self) -> FrameQueue:
        return self.queues[0]

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(stage, queue), name=f"stage:{stage.name}")
            for stage, queue in zip(self.stages, self.queues)
        ]

    async def _run(self, stage: Stage, queue: FrameQueue) -> None:
        while True:
            frame = await queue.get()
            try:
                if isinstance(frame, StopFrame):
                    await stage.push(frame)
                    return
                if is_stale(frame, self.turns.current):
                    continue
                await stage.process(frame)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A stage must survive a bad frame; the stages themselves turn engine failures
                # into something the user hears, this is the last line.
                logger.exception("stage %s failed on %s", stage.name, type(frame).__name__)
            finally:
                self.tracker.done()

    def interrupt(self, turn_id: int) -> None:
        """Make every turn before ``turn_id`` stale, everywhere, now."""
        self.turns.current = max(self.turns.current, turn_id)
        for queue in self.queues:
            queue.drop_stale(turn_id)
        for stage in self.stages:
            stage.on_interrupt(turn_id)

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Stop now. The StopFrame is a system frame: it overtakes data still queued, which is
        dropped (replay only stops once everything has settled; a quit should not wait)."""
        if not self._tasks:
            return
        await self.input.put(StopFrame())
        done, pending = await asyncio.wait(self._tasks, timeout=timeout_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for queue in self.queues:
            queue.clear()
        for stage in self.stages:
            stage.close()
        self._tasks = []


_END = object()


class EngineRunner:
    """One engine, one worker thread."""

    def __init__(self, name: str) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def iterate(self, items: Iterator[T]) -> AsyncIterator[T]:
        """Yield ``items`` as the engine produces them. Leaving the loop closes the generator."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                item = await loop.run_in_executor(self._executor, next, items, _END)
                if item is _END:
                    return
                yield item  # type: ignore[misc]
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                # On the engine's own thread: closing may release native resources.
                await loop.run_in_executor(self._executor, close)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


async def run_stage(stage: Stage, frames: Sequence[Frame], ctx: StageContext | None = None) -> list[Frame]:
    """Test harness: feed ``frames`` through one stage and return what it pushed, in order."""
    out = FrameQueue(maxsize=1 << 20)
    stage.bind(out, ctx or StageContext(TurnState(), TurnLog(None)))
    for frame in frames:
        await stage.process(frame)
    result: list[Frame] = []
    while len(out):
        result.append(await out.get())
    return result
