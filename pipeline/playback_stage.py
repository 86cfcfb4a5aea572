"""Synthesized audio in, onto the output buffer at the speaker's rate."""

from __future__ import annotations

import numpy as np
import soxr
from voxloop.voice.audio_file import float_to_int16
from voxloop.voice.playback import OutputBuffer

from .frames import Frame, ReplyEndFrame, TTSAudioFrame
from .stage import Stage


class PlaybackStage(Stage):
    name = "playback"

    def __init__(self, output: OutputBuffer) -> None:
        super().__init__()
        self.output = output

    async def process(self, frame: Frame) -> None:
        if isinstance(frame, TTSAudioFrame):
            samples = frame.samples
            if frame.sample_rate != self.output.sample_rate:
                # Each chunk is a whole sentence from the TTS, so resampling it alone is clean.
                resampled = soxr.resample(samples.astype(np.float32) / 32768.0, frame.sample_rate, self.output.sample_rate)
                samples = float_to_int16(resampled)
            self.output.append(frame.turn_id, samples, frame.text, frame.sentence_index)
        elif isinstance(frame, ReplyEndFrame):
            self.output.end_turn(frame.turn_id)
