"""The links between stages.

``FrameQueue`` has two lanes: system frames go on an unbounded priority lane and overtake
queued data; data and control frames go on a bounded lane, so a slow consumer slows its
producer. ``WorkTracker`` counts frames in flight across all queues, which is how fast replay
knows the pipeline has settled and the simulated clock may move on.
"""

from __future__ import annotations

import asyncio
import collections

from .frames import Frame, SystemFrame, is_stale


class WorkTracker:
    """Frames queued or being processed anywhere in the pipeline."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def busy(self) -> bool:
        return self._count > 0

    def add(self, n: int = 1) -> None:
        self._count += n
        if self._count > 0:
            self._idle.clear()

    def done(self, n: int = 1) -> None:
        self._count -= n
        assert self._count >= 0, "WorkTracker.done() without add()"
        if self._count == 0:
            self._idle.set()

    async def wait_idle(self) -> None:
        await self._idle.wait()


class FrameQueue:
    """One consumer, any number of producers, all on the event loop's thread."""

    def __init__(self, maxsize: int, tracker: WorkTracker | None = None) -> None:
        self.maxsize = maxsize
        self.tracker = tracker or WorkTracker()
        self._system: collections.deque[Frame] = collections.deque()
        self._data: collections.deque[Frame] = collections.deque()
        self._has_items = asyncio.Event()
        self._has_room = asyncio.Event()
        self._has_room.set()
        self.dropped = 0
        """Frames refused by ``put_nowait`` because the data lane was full."""

    def __len__(self) -> int:
        return len(self._system) + len(self._data)

    async def put(self, frame: Frame) -> None:
        if not isinstance(frame, SystemFrame):
            while len(self._data) >= self.maxsize:
                self._has_room.clear()
                await self._has_room.wait()
        self._append(frame)

    def put_nowait(self, frame: Frame) -> bool:
        """For edges that must never wait (the microphone): False, and counted, when full."""
        if not isinstance(frame, SystemFrame) and len(self._data) >= self.maxsize:
            self.dropped += 1
            return False
        self._append(frame)
        return True

    def _append(self, frame: Frame) -> None:
        (self._system if isinstance(frame, SystemFrame) else self._data).append(frame)
        self.tracker.add()
        self._has_items.set()

    async def get(self) -> Frame:
        while not (self._system or self._data):
            self._has_items.clear()
            await self._has_items.wait()
        frame = self._system.popleft() if self._system else self._data.popleft()
        if len(self._data) < self.maxsize:
            self._has_room.set()
        return frame

    def drop_stale(self, turn_id: int) -> int:
        """Remove data and control frames of turns older than ``turn_id``; returns how many."""
        keep = [f for f in self._data if not is_stale(f, turn_id)]
        dropped = len(self._data) - len(keep)
        if dropped:
            self._data = collections.deque(keep)
            self.tracker.done(dropped)
            self._has_room.set()
        return dropped

    def clear(self) -> None:
        """Drop everything queued (the chain is stopping)."""
        n = len(self)
        self._system.clear()
        self._data.clear()
        if n:
            self.tracker.done(n)
        self._has_room.set()
