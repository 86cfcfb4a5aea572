"""The output buffer as the device sees it: what it plays, and what it reports having played."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from voxloop.voice.playback import OutputBuffer, PlaybackEvent, PlayedSegment

RATE = 16000
BLOCK = 160  # 10 ms device reads


def tone(n: int, amp: int = 8000) -> np.ndarray:
    t = np.arange(n)
    return (amp * np.sin(2 * np.pi * 440 * t / RATE)).astype(np.int16)


def ramp(n: int, start: int = 1) -> np.ndarray:
    """Distinct non-zero samples, so order and position can be checked exactly."""
    return (np.arange(n) % 30000 + start).astype(np.int16)


class Recorder:
    def __init__(self) -> None:
        self.events: list[PlaybackEvent] = []

    def __call__(self, event: PlaybackEvent) -> None:
        self.events.append(event)

    def kinds(self, turn_id: int | None = None) -> list[str]:
        return [e.kind for e in self.events if turn_id is None or e.turn_id == turn_id]


def make() -> tuple[OutputBuffer, Recorder]:
    rec = Recorder()
    return OutputBuffer(RATE, on_event=rec), rec


def play(buf: OutputBuffer, n_blocks: int, start_s: float = 0.0, block: int = BLOCK) -> np.ndarray:
    """The device pulling ``n_blocks`` blocks from timeline second ``start_s``."""
    return np.concatenate([buf.read(block, start_s + i * block / RATE) for i in range(n_blocks)])


# --- what comes out ---------------------------------------------------------------------------


def test_reads_return_appended_audio_in_order_then_zeros() -> None:
    buf, _ = make()
    a, b = ramp(250, start=1), ramp(300, start=1000)
    buf.append(1, a, "first")
    buf.append(1, b, "second", key=1)
    out = play(buf, 5, block=130)  # 650 samples: reads straddle segment boundaries
    assert out.dtype == np.int16 and len(out) == 650
    np.testing.assert_array_equal(out[:550], np.concatenate([a, b]))
    np.testing.assert_array_equal(out[550:], 0)


def test_empty_buffer_reads_silence_of_the_requested_length() -> None:
    buf, rec = make()
    for n in (0, 1, 160, 1024):
        out = buf.read(n, 0.0)
        assert out.dtype == np.int16 and len(out) == n and not out.any()
    assert rec.events == []


def test_segments_of_later_turns_play_after_earlier_ones() -> None:
    buf, _ = make()
    buf.append(1, ramp(100, 1))
    buf.append(2, ramp(100, 5000))
    out = buf.read(200, 0.0)
    np.testing.assert_array_equal(out, np.concatenate([ramp(100, 1), ramp(100, 5000)]))


def test_volume_scales_the_output() -> None:
    buf, _ = make()
    buf.volume = 0.5
    buf.append(1, np.full(100, 10000, dtype=np.int16))
    out = buf.read(100, 0.0)
    np.testing.assert_array_equal(out, 5000)


# --- first_audio -------------------------------------------------------------------------------


@pytest.mark.parametrize("lead", [0, 37, 160, 500])
def test_first_audio_reports_the_time_of_the_first_audible_sample(lead: int) -> None:
    buf, rec = make()
    seg = np.concatenate([np.zeros(lead, dtype=np.int16), tone(1600)])
    # Faint noise below the 0.01 threshold must not count as heard.
    seg[:lead] = 100
    buf.append(7, seg)
    play(buf, 20, start_s=3.0)
    first = [e for e in rec.events if e.kind == "first_audio"]
    assert len(first) == 1
    assert first[0].turn_id == 7
    loud = int(np.flatnonzero(np.abs(seg.astype(np.int32)) > 0.01 * 32767)[0])
    assert loud >= lead
    assert first[0].at_s == pytest.approx(3.0 + loud / RATE)


def test_first_audio_counts_earlier_segments_played_before_it() -> None:
    buf, rec = make()
    buf.append(1, np.zeros(400, dtype=np.int16), "silent start")
    buf.append(1, tone(800), "speech", key=1)
    play(buf, 10, start_s=1.0)
    (first,) = [e for e in rec.events if e.kind == "first_audio"]
    # The tone's sample 0 is 0; its first sample above the threshold follows shortly after.
    offset = int(np.flatnonzero(np.abs(tone(800).astype(np.int32)) > 0.01 * 32767)[0])
    assert first.at_s == pytest.approx(1.0 + (400 + offset) / RATE)


def test_first_audio_fires_once_per_turn() -> None:
    buf, rec = make()
    buf.append(1, tone(800))
    buf.append(1, tone(800), key=1)
    buf.append(2, tone(800))
    play(buf, 20)
    buf.append(1, tone(800), key=2)  # more audio for a turn already heard
    play(buf, 10, start_s=1.0)
    assert [(e.kind, e.turn_id) for e in rec.events if e.kind == "first_audio"] == [
        ("first_audio", 1),
        ("first_audio", 2),
    ]


def test_silent_turn_never_reports_first_audio() -> None:
    buf, rec = make()
    buf.append(1, np.zeros(800, dtype=np.int16))
    play(buf, 10)
    assert "first_audio" not in rec.kinds()


# --- drained -----------------------------------------------------------------------------------


def test_drained_when_turn_ended_before_its_audio_ran_out() -> None:
    buf, rec = make()
    buf.append(1, tone(1000))
    buf.end_turn(1)
    play(buf, 6, start_s=2.0)  # 960 samples: not yet
    assert "drained" not in rec.kinds()
    buf.read(BLOCK, 2.0 + 960 / RATE)
    drained = [e for e in rec.events if e.kind == "drained"]
    assert len(drained) == 1 and drained[0].turn_id == 1
    # At the moment the last sample has played.
    assert drained[0].at_s == pytest.approx(2.0 + 1000 / RATE)
    play(buf, 5, start_s=3.0)
    assert rec.kinds().count("drained") == 1


def test_drained_when_turn_ended_after_its_audio_ran_out() -> None:
    buf, rec = make()
    buf.append(1, tone(300))
    play(buf, 4)  # all played, turn still open (more may come)
    assert "drained" not in rec.kinds()
    assert buf.underruns == 1
    buf.end_turn(1)
    buf.read(BLOCK, 5.0)
    assert [(e.kind, e.turn_id, e.at_s) for e in rec.events if e.kind == "drained"] == [("drained", 1, 5.0)]
    play(buf, 3, start_s=6.0)
    assert rec.kinds().count("drained") == 1


def test_turn_ended_with_no_audio_drains_at_the_next_read() -> None:
    buf, rec = make()
    buf.end_turn(4)
    buf.read(BLOCK, 1.5)
    assert rec.events == [PlaybackEvent("drained", 4, 1.5)]


def test_drained_waits_for_every_segment_of_the_turn() -> None:
    buf, rec = make()
    buf.append(1, tone(200))
    buf.append(1, tone(200), key=1)
    buf.append(2, tone(200))
    buf.end_turn(1)
    buf.read(300, 0.0)
    assert "drained" not in rec.kinds(1)
    buf.read(300, 300 / RATE)
    drained = [e for e in rec.events if e.kind == "drained"]
    assert [(e.turn_id) for e in drained] == [1]
    assert drained[0].at_s == pytest.approx(400 / RATE)


# --- barge-in ----------------------------------------------------------------------------------


def test_clear_stops_output_at_once_and_played_tells_what_was_heard() -> None:
    buf, rec = make()
    s0, s1, s2 = tone(1000), tone(1200), tone(900)
    buf.append(3, s0, "Hello there.", key=0)
    buf.append(3, s1, "It is sunny", key=1)
    buf.append(3, s2, "today.", key=1)
    buf.end_turn(3)
    play(buf, 9)  # 1440 samples: all of s0, 440 of s1
    assert buf.is_playing()
    buf.clear()
    assert not buf.is_playing() and buf.pending_samples() == 0
    out = buf.read(BLOCK, 1.0)
    assert not out.any()
    assert buf.played(3) == [
        PlayedSegment("Hello there.", 0, 1000, 1000),
        PlayedSegment("It is sunny", 1, 440, 1200),
        PlayedSegment("today.", 1, 0, 900),
    ]
    fractions = [p.fraction for p in buf.played(3)]
    assert fractions == [1.0, pytest.approx(440 / 1200), 0.0]
    # A cleared turn never reports drained.
    play(buf, 5, start_s=2.0)
    assert "drained" not in rec.kinds(3)


def test_played_of_unknown_turn_is_empty_and_forget_drops_history() -> None:
    buf, _ = make()
    assert buf.played(9) == []
    buf.append(1, tone(100), "a")
    buf.read(100, 0.0)
    assert buf.played(1) == [PlayedSegment("a", 0, 100, 100)]
    buf.forget(1)
    assert buf.played(1) == []


def test_new_turn_plays_after_clear() -> None:
    buf, rec = make()
    buf.append(1, tone(1000))
    buf.read(BLOCK, 0.0)
    buf.clear()
    buf.append(2, ramp(200, 1000))
    out = buf.read(300, 1.0)
    np.testing.assert_array_equal(out[:200], ramp(200, 1000))
    assert not out[200:].any()
    assert ("first_audio", 2) in [(e.kind, e.turn_id) for e in rec.events]


def test_pending_samples_and_is_playing_follow_reads() -> None:
    buf, _ = make()
    assert buf.pending_samples() == 0 and not buf.is_playing()
    buf.append(1, tone(500))
    buf.append(2, tone(300))
    assert buf.pending_samples() == 800 and buf.is_playing()
    buf.read(350, 0.0)
    assert buf.pending_samples() == 450
    buf.read(450, 0.1)
    assert buf.pending_samples() == 0 and not buf.is_playing()


def test_played_segment_fraction_of_empty_segment_is_one() -> None:
    assert PlayedSegment("", 0, 0, 0).fraction == 1.0


# --- threads -------------------------------------------------------------------------------


def test_callback_runs_outside_the_lock() -> None:
    """A callback that asks the buffer something must not deadlock the audio thread."""
    seen: list[tuple[str, int]] = []
    buf: OutputBuffer

    def on_event(event: PlaybackEvent) -> None:
        seen.append((event.kind, buf.pending_samples()))
        buf.played(event.turn_id)

    buf = OutputBuffer(RATE, on_event=on_event)
    buf.append(1, tone(400))
    buf.end_turn(1)

    def device() -> None:
        for i in range(5):
            buf.read(BLOCK, i * BLOCK / RATE)

    thread = threading.Thread(target=device, daemon=True)
    thread.start()
    thread.join(timeout=5)
    assert not thread.is_alive(), "read() deadlocked calling back into the buffer"
    assert [k for k, _ in seen] == ["first_audio", "drained"]
    assert seen[-1][1] == 0
