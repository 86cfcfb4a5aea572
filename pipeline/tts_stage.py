"""Speakable chunks in, synthesized audio out, one chunk at a time."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

import numpy as np
from voxloop.models.base import TTS

from .assistant.voice_settings import VoiceSettings

from .frames import Frame, SentenceFrame, TTSAudioFrame
from .stage import EngineRunner, Stage

logger = logging.getLogger(__name__)


class TTSStage(Stage):
    name = "tts"

    def __init__(self, tts: TTS, voice_for: Callable[[int], VoiceSettings] | None = None) -> None:
        """``voice_for(turn_id)``: the speaking rate and volume for a turn (default: the voice's own)."""
        super().__init__()
        self.tts = tts
        self.runner = EngineRunner("tts")
        self.voice_for = voice_for

    async def process(self, frame: Frame) -> None:
        if not isinstance(frame, SentenceFrame):
            await self.push(frame)
            return
        started = time.perf_counter()
        first = True
        voice = self.voice_for(frame.turn_id) if self.voice_for is not None else VoiceSettings()
        try:
            # The rate is passed only when changed: a TTS without the argument still works.
            speech = self.tts.synthesize(frame.text, rate=voice.rate) if voice.rate != 1.0 else self.tts.synthesize(frame.text)
            async with contextlib.aclosing(self.runner.iterate(speech)) as chunks:
                async for samples in chunks:
                    if self.is_stale(frame.turn_id):
                        return
                    if voice.volume != 1.0:
                        samples = scale(samples, voice.volume)
                    if first and frame.index == 0:
                        self.ctx.log.stage(frame.turn_id, "tts_first_chunk", (time.perf_counter() - started) * 1000)
                    await self.push(
                        TTSAudioFrame(frame.turn_id, samples, self.tts.sample_rate, frame.text, frame.index)
                    )
                    first = False
        except Exception as e:
            # One sentence lost is better than a dead turn: log it and go on with the next.
            logger.error("speech synthesis failed for %r: %s", frame.text[:80], e, exc_info=True)
            self.ctx.log.get(frame.turn_id).error = f"tts: {e}"

    def close(self) -> None:
        self.runner.shutdown()


def scale(samples: np.ndarray, gain: float) -> np.ndarray:
    """int16 samples times ``gain``, clipped at full scale rather than wrapped around."""
    return np.clip(samples.astype(np.float32) * gain, -32768, 32767).astype(np.int16)
