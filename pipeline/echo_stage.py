"""Microphone audio in, the same audio without the assistant's echo out.

The head of the chain: every microphone block passes through the echo canceller, with the
speaker audio that played during it (``AudioFrame.reference``), before voice activity
detection hears it. It runs on the event loop, not in the audio callback (about 0.1 ms per
10 ms of audio, see docs/benchmarks.md). Blocks that are not a multiple of 10 ms (a live
microphone resampled from 44.1 kHz) are cut into whole frames; the remainder waits for the
next block.

It also watches for someone talking over the assistant on the *raw* microphone
(``voice.double_talk``), because the canceller holds the near end down at the start of double
talk: ``on_double_talk(True, at)`` at an onset, ``(False, at)`` when it ends. From an onset
until its end (the assistant has stopped by then) the raw microphone goes on instead of the
cleaned one, and the last ``preroll_ms`` already sent go again, raw (``RawAudioFrame``), so
the endpointer keeps the user's first word rather than the canceller's silence.
"""

from __future__ import annotations

import logging

import numpy as np
from collections.abc import Callable

from voxloop.voice.double_talk import DoubleTalkDetector
from voxloop.voice.echo_canceller import EchoCanceller

from .frames import AudioFrame, Frame, RawAudioFrame
from .stage import Stage

logger = logging.getLogger(__name__)


class EchoCancelStage(Stage):
    name = "echo"

    def __init__(self, canceller: EchoCanceller, detector: DoubleTalkDetector | None = None, preroll_ms: int = 400) -> None:
        super().__init__()
        self.canceller = canceller
        self.detector = detector or DoubleTalkDetector()
        self._raw: list[tuple[float, np.ndarray]] = []
        """The raw microphone of the last ``preroll_ms`` sent on, with where each block starts."""
        self._preroll_s = preroll_ms / 1000
        self.on_double_talk: Callable[[bool, float], None] = lambda started, at_s: None
        self._mic = np.zeros(0, dtype=np.int16)
        self._ref = np.zeros(0, dtype=np.int16)
        self._start_s = 0.0
        """Timeline seconds of the first sample waiting in ``_mic``."""

    def set_delay_ms(self, ms: float) -> None:
        """The sound card's delay from handing a reference block over to capturing its echo."""
        self.canceller.set_delay_ms(ms)
        self.detector.set_delay_ms(ms)
        logger.debug("echo canceller delay set to %d ms", self.canceller.delay_ms)

    async def process(self, frame: Frame) -> None:
        if not isinstance(frame, AudioFrame) or frame.sample_rate != self.canceller.config.sample_rate:
            await self.push(frame)
            return
        ref = frame.reference if frame.reference is not None else np.zeros(len(frame.samples), dtype=np.int16)
        if not len(self._mic):
            self._start_s = frame.start_s
            mic = frame.samples
        else:
            mic = np.concatenate([self._mic, frame.samples])
            ref = np.concatenate([self._ref, ref])
        whole = len(mic) - len(mic) % self.canceller.frame
        self._mic, self._ref = mic[whole:], ref[whole:]
        start_s = self._start_s
        self._start_s = start_s + whole / frame.sample_rate
        if not whole:
            return
        rate = frame.sample_rate
        step = self.detector.frame
        onset = False
        for i in range(0, whole - whole % step, step):
            event = self.detector.push(mic[i : i + step], ref[i : i + step])
            if event is not None:
                onset = onset or event
                self.on_double_talk(event, start_s + (i + step) / rate)
        cleaned = self.canceller.process(mic[:whole], ref[:whole])  # always: its timeline stays whole
        if onset and self._raw:
            since = self._raw[0][0]
            await self.push(RawAudioFrame(frame.turn_id, np.concatenate([b for _, b in self._raw]), rate, since))
        raw = self.detector.active or onset
        await self.push(AudioFrame(frame.turn_id, mic[:whole] if raw else cleaned, rate, start_s, frame.channels))
        self._raw.append((start_s, mic[:whole]))
        while self._raw and self._raw[0][0] < start_s + whole / rate - self._preroll_s:
            self._raw.pop(0)
