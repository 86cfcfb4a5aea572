"""Synthesized audio in, onto the output buffer at the speaker's rate.

Audio of a turn that is not confirmed yet (a head start taken during the endpoint wait) is
held here and released the moment the turn is confirmed, or dropped if it is retracted.
"""

from __future__ import annotations

import numpy as np
import soxr
from voxloop.voice.audio_file import float_to_int16
from voxloop.voice.playback import OutputBuffer

from .frames import Frame, ReplyEndFrame, TTSAudioFrame
from .stage import Stage

LEAD_IN_THRESHOLD = 100
"""int16 amplitude (-50 dBFS) below which the start of a reply counts as silence."""


class PlaybackStage(Stage):
    name = "playback"

    def __init__(self, output: OutputBuffer) -> None:
        super().__init__()
        self.output = output
        self._confirmed: set[int] = set()
        self._held: dict[int, list[Frame]] = {}
        self._started: set[int] = set()
        """Turns whose first audio has been queued."""

    def confirm(self, turn_id: int) -> None:
        """The turn stands: play what it has ready, and the rest as it comes."""
        self._confirmed.add(turn_id)
        for frame in self._held.pop(turn_id, []):
            self._play(frame)

    def on_interrupt(self, turn_id: int) -> None:
        for old in [t for t in self._held if t < turn_id]:
            del self._held[old]
        self._confirmed = {t for t in self._confirmed if t >= turn_id}
        self._started = {t for t in self._started if t >= turn_id}

    def forget(self, turn_id: int) -> None:
        self._confirmed.discard(turn_id)
        self._started.discard(turn_id)
        self._held.pop(turn_id, None)

    async def process(self, frame: Frame) -> None:
        if isinstance(frame, (TTSAudioFrame, ReplyEndFrame)):
            if frame.turn_id in self._confirmed:
                self._play(frame)
            else:
                self._held.setdefault(frame.turn_id, []).append(frame)

    def _play(self, frame: Frame) -> None:
        if isinstance(frame, TTSAudioFrame):
            samples = frame.samples
            if frame.turn_id not in self._started:
                # Voices begin with up to ~100 ms of near-silence: skip it, keep 10 ms of lead-in.
                self._started.add(frame.turn_id)
                loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > LEAD_IN_THRESHOLD)
                if len(loud):
                    samples = samples[max(0, int(loud[0]) - frame.sample_rate // 100) :]
            if frame.sample_rate != self.output.sample_rate:
                # Each chunk is a whole sentence from the TTS, so resampling it alone is clean.
                resampled = soxr.resample(samples.astype(np.float32) / 32768.0, frame.sample_rate, self.output.sample_rate)
                samples = float_to_int16(resampled)
            self.output.append(frame.turn_id, samples, frame.text, frame.sentence_index)
        elif isinstance(frame, ReplyEndFrame):
            self.output.end_turn(frame.turn_id)
