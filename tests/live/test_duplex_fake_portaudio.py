"""``SoundDeviceDuplex`` on a fake PortAudio that implements sounddevice's interface.

The real-device tests (test_live_*.py) show it works through a sound server; this one pins
down what is hard to provoke there, deterministically: a stereo 48 kHz microphone mixed to
mono and resampled to 16 kHz, a stereo speaker fed the mono reply, and a device that vanishes
(streams dead, device list empty, reopening fails) and comes back.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from voxloop.voice.devices import DeviceEvent, SoundDeviceDuplex
from voxloop.voice.playback import OutputBuffer


class FakePortAudioError(Exception):
    pass


class FakeStream:
    def __init__(self, pa: FakePortAudio, kind: str, *, device: int, samplerate: int, channels: int, blocksize: int, callback: Callable[..., None], **_: Any) -> None:
        pa.check(kind, device, samplerate, channels)
        self.pa, self.kind, self.rate, self.channels, self.blocksize = pa, kind, samplerate, channels, blocksize
        self.callback = callback
        self.latency = 0.02
        self.played: list[np.ndarray] = []
        self._run = threading.Event()
        self._dead = False
        self._thread = threading.Thread(target=self._loop, daemon=True)
        pa.streams.append(self)

    @property
    def active(self) -> bool:
        return self._run.is_set() and not self._dead

    def start(self) -> None:
        self._run.set()
        self._thread.start()

    def _loop(self) -> None:
        period = self.blocksize / self.rate
        t0 = time.monotonic()
        k = 0
        status = SimpleNamespace(input_overflow=False, output_underflow=False)
        while self._run.is_set() and not self._dead:
            k += 1
            time.sleep(max(0.0, t0 + k * period - time.monotonic()))
            now = time.monotonic()
            info = SimpleNamespace(currentTime=now, outputBufferDacTime=now + 0.02, inputBufferAdcTime=now - 0.02)
            if self.kind == "input":
                n = np.arange((k - 1) * self.blocksize, k * self.blocksize)
                block = np.zeros((self.blocksize, self.channels), dtype=np.float32)
                block[:, 0] = 0.5 * np.sin(2 * np.pi * 440 * n / self.rate)  # left only
                self.callback(block, self.blocksize, info, status)
            else:
                out = np.zeros((self.blocksize, self.channels), dtype=np.int16)
                self.callback(out, self.blocksize, info, status)
                self.played.append(out)

    def die(self) -> None:
        self._dead = True

    def abort(self) -> None:
        self._run.clear()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=1)

    def close(self) -> None:
        self.abort()


class FakePortAudio:
    """A stereo-only 48 kHz microphone and a stereo-only 44.1 kHz speaker that can be unplugged."""

    PortAudioError = FakePortAudioError

    def __init__(self) -> None:
        self.present = True
        self.streams: list[FakeStream] = []
        self.initialised = 0
        self.default = SimpleNamespace(device=(0, 1))

    def query_hostapis(self) -> list[dict[str, Any]]:
        return [{"name": "Fake"}]

    def query_devices(self) -> list[dict[str, Any]]:
        if not self.present:
            return []
        return [
            {"name": "Fake USB mic", "hostapi": 0, "max_input_channels": 2, "max_output_channels": 0, "default_samplerate": 48000.0},
            {"name": "Fake speaker", "hostapi": 0, "max_input_channels": 0, "max_output_channels": 2, "default_samplerate": 44100.0},
        ]

    def check(self, kind: str, device: int, samplerate: int, channels: int) -> None:
        rate = 48000 if kind == "input" else 44100
        if not self.present or device != (0 if kind == "input" else 1) or samplerate != rate or channels != 2:
            raise FakePortAudioError(f"invalid {kind} settings")

    def check_input_settings(self, device: int, samplerate: int, channels: int) -> None:
        self.check("input", device, samplerate, channels)

    def check_output_settings(self, device: int, samplerate: int, channels: int) -> None:
        self.check("output", device, samplerate, channels)

    def InputStream(self, **kw: Any) -> FakeStream:
        return FakeStream(self, "input", **kw)

    def OutputStream(self, **kw: Any) -> FakeStream:
        return FakeStream(self, "output", **kw)

    def _terminate(self) -> None:
        pass

    def _initialize(self) -> None:
        self.initialised += 1

    def unplug(self) -> None:
        self.present = False
        for s in self.streams:
            s.die()


async def until(condition: Callable[[], bool], what: str, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def test_mix_down_resample_play_and_survive_an_unplug() -> None:
    pa = FakePortAudio()
    events: list[DeviceEvent] = []
    blocks: list[tuple[np.ndarray, float]] = []
    references: list[np.ndarray] = []

    def on_input(block: np.ndarray, at_s: float, reference: np.ndarray | None) -> None:
        assert reference is not None
        blocks.append((block, at_s))
        references.append(reference)
    reply = (0.5 * 32767 * np.sin(2 * np.pi * 300 * np.arange(44100 // 2) / 44100)).astype(np.int16)

    async def main() -> SoundDeviceDuplex:
        duplex = SoundDeviceDuplex(
            sounddevice=pa, stall_s=0.3, reopen_after_s=0.3, retry_s=0.1, start_grace_s=1.0, on_event=events.append
        )
        await duplex.start()
        assert duplex.output_rate == 44100
        duplex.output = OutputBuffer(duplex.output_rate)
        duplex.output.append(1, reply, "a reply")
        duplex.output.end_turn(1)
        running = asyncio.create_task(duplex.run(on_input, None, lambda: False))
        await until(lambda: sum(len(b) for b, _ in blocks) >= 16000, "a second of microphone audio")

        pa.unplug()
        await until(lambda: [e.kind for e in events][-1:] == ["lost"], "the device to be reported lost")
        await until(lambda: pa.initialised >= 2, "two attempts to reopen while unplugged")
        heard_before = sum(len(b) for b, _ in blocks)
        pa.present = True
        await until(lambda: [e.kind for e in events][-1:] == ["back"], "the device to be back")
        await until(lambda: sum(len(b) for b, _ in blocks) >= heard_before + 8000, "audio after the reopen")

        duplex.stop()
        await asyncio.wait_for(running, 2.0)
        return duplex

    duplex = asyncio.run(main())

    assert [e.kind for e in events] == ["opened", "lost", "back"]
    assert duplex.stats.stalls == 1 and duplex.stats.reopens == 1
    assert "stopped delivering" in events[1].message

    # 16 kHz mono on one timeline: each block starts where the previous one ended.
    starts = np.array([t for _, t in blocks])
    lengths = np.array([len(b) for b, _ in blocks])
    assert np.allclose(starts[1:], starts[:-1] + lengths[:-1] / 16000)
    audio = np.concatenate([b for b, _ in blocks])[8000:16000].astype(np.float32) / 32768
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * 16000 / len(audio) - 440) < 10
    assert 0.22 < np.abs(audio).max() < 0.28  # the tone in one of two channels, mixed to mono: half

    # The reply went to both speaker channels, whole.
    played = np.concatenate([p for s in pa.streams if s.kind == "output" for p in s.played])
    assert np.array_equal(played[:, 0], played[:, 1])
    offset = int(np.flatnonzero(played[:, 0])[0] - np.flatnonzero(reply)[0])
    assert np.array_equal(played[offset : offset + len(reply), 0], reply)

    # Each microphone block came with what the speaker played meanwhile, at 16 kHz: the reply.
    assert [len(r) for r in references] == [len(b) for b, _ in blocks]
    ref = np.concatenate(references).astype(np.float32) / 32768
    loud = np.flatnonzero(np.abs(ref) > 0.1)
    assert 0.4 < len(loud) / 16000 < 0.6  # half a second of reply
    tone = ref[loud[0] + 800 : loud[0] + 4800]
    assert abs(np.argmax(np.abs(np.fft.rfft(tone))) * 16000 / len(tone) - 300) < 10
    assert 0.45 < np.abs(tone).max() < 0.55
