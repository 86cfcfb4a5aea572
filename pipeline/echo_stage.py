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
until its end (the assistant has stopped by then) the detector's own echo-reduced microphone
goes on instead of the canceller's (the raw one, with each band's echo bound taken off: it
keeps the user's voice where the canceller would hold it down, without the assistant's words
that the raw microphone carries), and the last ``preroll_ms`` already sent go again, the same
way (``RestoredAudioFrame``), so the endpointer keeps the user's first word.

The canceller's output is also capped, frame by frame, at the share of the microphone that
the detector finds is not echo (``cap``): AEC3 lets echo through while it converges and just
after playback stops, and the voice detector behind it would hear the assistant.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

import numpy as np

from voxloop.voice.double_talk import DoubleTalkDetector
from voxloop.voice.echo_canceller import EchoCanceller

from .frames import AudioFrame, Frame, RestoredAudioFrame
from .stage import Stage

logger = logging.getLogger(__name__)


def cap(cleaned: np.ndarray, mic: np.ndarray, kept: np.ndarray, step: int) -> np.ndarray:
    """The canceller's output, each frame no louder than the share of the microphone that the
    double-talk detector finds is not echo. AEC3 lets echo through while it converges (the
    first second of a session) and as a reply stops (its reverberation model is short); a
    voice detector then hears the assistant. A user's voice is kept by both, so is untouched."""
    frames = cleaned.reshape(-1, step).astype(np.float64)
    allowed = kept * np.mean(mic.reshape(-1, step).astype(np.float64) ** 2, axis=1)
    power = np.mean(frames**2, axis=1)
    scale = np.sqrt(np.minimum(1.0, allowed / np.maximum(power, 1e-9)))
    return (frames * scale[:, None]).round().astype(np.int16).reshape(-1)


class EchoCancelStage(Stage):
    name = "echo"

    def __init__(self, canceller: EchoCanceller, detector: DoubleTalkDetector | None = None, preroll_ms: int = 400) -> None:
        super().__init__()
        self.canceller = canceller
        self.detector = detector or DoubleTalkDetector()
        self._near: deque[tuple[float, np.ndarray]] = deque()
        """The detector's echo-reduced microphone (``DoubleTalkDetector.near``) of the last
        ``preroll_ms`` sent on, with where each block starts."""
        self._preroll_s = preroll_ms / 1000
        self.cap_residual_echo = True
        """Cap the canceller's output by the detector's echo estimate (``cap``)."""
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
        near = np.empty(whole, dtype=np.int16)
        kept = np.empty(whole // step)
        for i in range(0, whole, step):
            event = self.detector.push(mic[i : i + step], ref[i : i + step])
            near[i : i + step] = self.detector.near
            kept[i // step] = self.detector.kept if self.cap_residual_echo else 1.0
            if event is not None:
                onset = onset or event
                self.on_double_talk(event, start_s + (i + step) / rate)
        cleaned = cap(self.canceller.process(mic[:whole], ref[:whole]), mic[:whole], kept, step)  # always: its timeline stays whole
        if onset and self._near:
            since = self._near[0][0]
            await self.push(RestoredAudioFrame(frame.turn_id, np.concatenate([b for _, b in self._near]), rate, since))
        talked_over = self.detector.active or onset
        await self.push(AudioFrame(frame.turn_id, near if talked_over else cleaned, rate, start_s, frame.channels))
        self._near.append((start_s, near))
        while self._near and self._near[0][0] < start_s + whole / rate - self._preroll_s:
            self._near.popleft()
