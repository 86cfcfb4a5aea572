"""The links between stages: priority for system frames, back-pressure for data, stale-turn
flushing, and the work count that tells replay the pipeline has settled."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import numpy as np
import pytest
from voxloop.pipeline.frames import (
    NO_TURN,
    AudioFrame,
    ErrorFrame,
    Frame,
    InterruptFrame,
    ReplyEndFrame,
    SentenceFrame,
    SpeechStartedFrame,
    StartFrame,
    StopFrame,
    SystemFrame,
    TranscriptFrame,
    is_stale,
)
from voxloop.pipeline.queues import FrameQueue, WorkTracker

T = TypeVar("T")
TIMEOUT_S = 2.0
GRACE_S = 0.05


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT_S))


def sentence(turn: int, i: int = 0) -> SentenceFrame:
    return SentenceFrame(turn_id=turn, text=f"s{turn}.{i}", index=i)


def mic(i: int = 0) -> AudioFrame:
    return AudioFrame(turn_id=NO_TURN, samples=np.full(320, i, dtype=np.int16), sample_rate=16000, start_s=i * 0.02)


async def drain(q: FrameQueue) -> list[Frame]:
    out = []
    while len(q):
        out.append(await q.get())
        q.tracker.done()
    return out


async def blocked(aw: Any) -> bool:
    """True if ``aw`` is still waiting after a short grace (left running: a task the caller owns
    goes on; any other is cancelled when ``asyncio.run`` ends)."""
    task = asyncio.ensure_future(aw)
    done, _ = await asyncio.wait({task}, timeout=GRACE_S)
    return not done


# --- priority --------------------------------------------------------------------------------


def test_system_frames_overtake_queued_data() -> None:
    async def main() -> list[Frame]:
        q = FrameQueue(maxsize=8)
        d = [sentence(1, i) for i in range(3)]
        for f in d:
            await q.put(f)
        s1, s2 = InterruptFrame(turn_id=2), SpeechStartedFrame(turn_id=2, at_s=1.0)
        await q.put(s1)
        await q.put(s2)
        return [await q.get() for _ in range(5)]

    out = run(main())
    assert [type(f) for f in out] == [InterruptFrame, SpeechStartedFrame, SentenceFrame, SentenceFrame, SentenceFrame]
    assert [f.index for f in out[2:]] == [0, 1, 2]  # data keeps its order


def test_system_frames_go_in_even_when_the_data_lane_is_full() -> None:
    async def main() -> tuple[bool, bool, Frame]:
        q = FrameQueue(maxsize=1)
        await q.put(sentence(1))
        ok_nowait = q.put_nowait(ErrorFrame(turn_id=1, stage="tts", message="boom"))
        put_waits = await blocked(q.put(StartFrame()))
        return ok_nowait, put_waits, await q.get()

    ok_nowait, put_waits, first = run(main())
    assert ok_nowait and not put_waits
    assert isinstance(first, ErrorFrame)


def test_frame_roots() -> None:
    for f in (StartFrame(), StopFrame(), InterruptFrame(1), SpeechStartedFrame(1, 0.0), ErrorFrame(1, "x", "y")):
        assert isinstance(f, SystemFrame)
    for f in (sentence(1), mic(), ReplyEndFrame(1), TranscriptFrame(1, "hi", 1.0, 10.0)):
        assert not isinstance(f, SystemFrame)
    frame = mic(3)
    assert frame.duration_s == pytest.approx(0.02)
    with pytest.raises(AttributeError):
        frame.turn_id = 5  # type: ignore[misc]


# --- back-pressure -----------------------------------------------------------------------------


def test_put_on_a_full_data_lane_waits_until_the_consumer_takes_one() -> None:
    async def main() -> None:
        q = FrameQueue(maxsize=2)
        await q.put(sentence(1, 0))
        await q.put(sentence(1, 1))
        producer = asyncio.create_task(q.put(sentence(1, 2)))
        # The producer cannot finish while the lane is full.
        assert await blocked(producer)
        assert len(q) == 2
        first = await q.get()
        await asyncio.wait_for(producer, TIMEOUT_S)
        assert first.index == 0
        assert [f.index for f in [await q.get(), await q.get()]] == [1, 2]

    run(main())


def test_waiting_producers_all_get_in_in_turn() -> None:
    async def main() -> list[int]:
        q = FrameQueue(maxsize=1)
        producers = [asyncio.create_task(q.put(sentence(1, i))) for i in range(4)]
        got = []
        for _ in range(4):
            got.append((await q.get()).index)
        await asyncio.wait_for(asyncio.gather(*producers), TIMEOUT_S)
        return got

    assert run(main()) == [0, 1, 2, 3]


def test_get_waits_for_a_frame() -> None:
    async def main() -> Frame:
        q = FrameQueue(maxsize=2)
        consumer = asyncio.create_task(q.get())
        assert await blocked(consumer)
        await q.put(sentence(5))
        return await asyncio.wait_for(consumer, TIMEOUT_S)

    assert run(main()).turn_id == 5


def test_put_nowait_on_a_full_lane_refuses_and_counts() -> None:
    async def main() -> None:
        q = FrameQueue(maxsize=2)
        assert q.put_nowait(mic(0)) and q.put_nowait(mic(1))
        assert q.put_nowait(mic(2)) is False
        assert q.put_nowait(mic(3)) is False
        assert q.dropped == 2
        assert len(q) == 2 and q.tracker.busy
        got = await drain(q)
        assert [int(f.samples[0]) for f in got] == [0, 1]
        assert not q.tracker.busy
        assert q.put_nowait(mic(4))  # room again
        assert q.dropped == 2

    run(main())


# --- stale turns -------------------------------------------------------------------------------


def test_drop_stale_removes_older_turns_only() -> None:
    async def main() -> None:
        tracker = WorkTracker()
        q = FrameQueue(maxsize=16, tracker=tracker)
        frames = [
            mic(0),
            sentence(1, 0),
            ReplyEndFrame(turn_id=1),
            mic(1),
            TranscriptFrame(turn_id=2, text="hi", end_s=1.0, asr_ms=5.0),
            sentence(2, 1),
            sentence(3, 0),
            ReplyEndFrame(turn_id=3),
        ]
        for f in frames:
            await q.put(f)
        system = [InterruptFrame(turn_id=3), SpeechStartedFrame(turn_id=1, at_s=2.0), StopFrame()]
        for f in system:
            await q.put(f)
        assert len(q) == 11

        assert q.drop_stale(3) == 4
        assert len(q) == 7
        got = await drain(q)
        # System frames are never dropped, whatever turn they name; microphone audio neither.
        assert got[:3] == system
        assert got[3:5] == [frames[0], frames[3]] == [f for f in got if isinstance(f, AudioFrame)]
        assert got[5:] == [frames[6], frames[7]]
        # Every frame that was put is accounted for: dropped ones by drop_stale, the rest by done().
        assert not tracker.busy
        await asyncio.wait_for(tracker.wait_idle(), TIMEOUT_S)

    run(main())


def test_drop_stale_with_nothing_stale_changes_nothing() -> None:
    async def main() -> None:
        q = FrameQueue(maxsize=4)
        await q.put(sentence(5))
        await q.put(mic())
        assert q.drop_stale(5) == 0
        assert len(q) == 2 and q.tracker.busy
        await drain(q)
        assert not q.tracker.busy

    run(main())


def test_drop_stale_makes_room_for_a_waiting_producer() -> None:
    async def main() -> list[Frame]:
        q = FrameQueue(maxsize=2)
        await q.put(sentence(1, 0))
        await q.put(sentence(1, 1))
        producer = asyncio.create_task(q.put(sentence(2, 0)))
        assert await blocked(producer)
        assert q.drop_stale(2) == 2
        await asyncio.wait_for(producer, TIMEOUT_S)
        return await drain(q)

    got = run(main())
    assert got == [sentence(2, 0)]


def test_is_stale() -> None:
    assert is_stale(sentence(1), 2)
    assert is_stale(ReplyEndFrame(turn_id=1), 2)
    assert not is_stale(sentence(2), 2)
    assert not is_stale(sentence(3), 2)
    assert not is_stale(mic(), 2)
    assert not is_stale(InterruptFrame(turn_id=1), 2)
    assert not is_stale(ErrorFrame(turn_id=0, stage="asr", message="x"), 2)


# --- work tracking --------------------------------------------------------------------------------


def test_wait_idle_resolves_only_when_every_frame_is_done() -> None:
    async def main() -> None:
        tracker = WorkTracker()
        a, b = FrameQueue(4, tracker), FrameQueue(4, tracker)
        await asyncio.wait_for(tracker.wait_idle(), TIMEOUT_S)  # idle from the start
        await a.put(sentence(1))
        await b.put(InterruptFrame(2))
        a.put_nowait(mic())
        assert tracker.busy

        waiter = asyncio.create_task(tracker.wait_idle())
        assert await blocked(waiter)
        await a.get()
        await a.get()
        await b.get()
        # Taken off the queues but still being processed: not idle.
        assert await blocked(waiter)
        tracker.done()
        tracker.done()
        assert await blocked(waiter)
        tracker.done()
        await asyncio.wait_for(waiter, TIMEOUT_S)
        assert not tracker.busy

        # Busy again after new work.
        await a.put(sentence(3))
        assert tracker.busy
        assert await blocked(tracker.wait_idle())
        await a.get()
        tracker.done()
        await asyncio.wait_for(tracker.wait_idle(), TIMEOUT_S)

    run(main())


def test_refused_frames_are_not_counted_as_work() -> None:
    async def main() -> None:
        tracker = WorkTracker()
        q = FrameQueue(1, tracker)
        assert q.put_nowait(mic(0))
        assert not q.put_nowait(mic(1))
        await q.get()
        tracker.done()
        await asyncio.wait_for(tracker.wait_idle(), TIMEOUT_S)

    run(main())


def test_done_without_add_is_an_error() -> None:
    tracker = WorkTracker()
    with pytest.raises(AssertionError):
        tracker.done()
