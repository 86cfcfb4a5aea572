"""Reading the user's words into the language model's cache while they are still speaking.

The model must read the whole prompt before its first token, and on two cores a 1.5B model
reads a short question at about 65 tokens a second (~230 ms before the first token of a
15-token turn; ~140 ms when all but the last word was read ahead). The system prompt and the history are already in its
cache from the last turn; what is left is the user's question, which is known word by word
while they speak (``PartialTranscriptFrame``). Each time more is known it is read, on the
model's own thread and between its turns, so that when the turn ends only the last words
and the template's closing tokens remain. Nothing is generated here and nothing is said.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence

from voxloop.models.base import LLM, Message

from .stage import EngineRunner

logger = logging.getLogger(__name__)


class Prefiller:
    """One prefill at a time on the model's runner; a newer request waits for it, then runs
    (only the newest waiting one: it contains the older). Engines without a ``prefill`` method
    (a server, the fakes of some tests) are simply not read ahead."""

    def __init__(self, llm: LLM, runner: EngineRunner) -> None:
        self._prefill: Callable[[Sequence[Message]], Iterator[int]] | None = getattr(llm, "prefill", None)
        self._runner = runner
        self._task: asyncio.Task[None] | None = None
        self._next: tuple[Sequence[Message], Callable[[], bool]] | None = None

    def start(self, messages: Sequence[Message], stale: Callable[[], bool]) -> None:
        """Read ``messages`` ahead, unless ``stale()`` by the time its turn comes."""
        if self._prefill is None:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run(messages, stale))
        else:
            self._next = (messages, stale)

    async def wait(self) -> None:
        """Let the prefill in progress end (its tokens are the prompt's start, not wasted);
        a newer one waiting behind it is dropped: the real prompt comes next."""
        self._next = None
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self, messages: Sequence[Message], stale: Callable[[], bool]) -> None:
        assert self._prefill is not None
        while True:
            if not stale():
                await self._read(messages, stale)
            if self._next is None:
                return
            (messages, stale), self._next = self._next, None

    async def _read(self, messages: Sequence[Message], stale: Callable[[], bool]) -> None:
        assert self._prefill is not None
        try:
            async with contextlib.aclosing(self._runner.iterate(self._prefill(messages))) as steps:
                async for _ in steps:
                    if stale():
                        break  # between two steps: the rest is not worth reading
        except Exception as e:  # a failed read-ahead costs nothing: the answer reads it all
            logger.warning("prefill failed: %s", e)
