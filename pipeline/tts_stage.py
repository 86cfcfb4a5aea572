"""Speakable chunks in, synthesized audio out, one chunk at a time."""

from __future__ import annotations

import contextlib
import logging
import time

from voxloop.models.base import TTS

from .frames import Frame, SentenceFrame, TTSAudioFrame
from .stage import EngineRunner, Stage

logger = logging.getLogger(__name__)


class TTSStage(Stage):
    name = "tts"

    def __init__(self, tts: TTS) -> None:
        super().__init__()
        self.tts = tts
        self.runner = EngineRunner("tts")

    async def process(self, frame: Frame) -> None:
        if not isinstance(frame, SentenceFrame):
            await self.push(frame)
            return
        started = time.perf_counter()
        first = True
        try:
            async with contextlib.aclosing(self.runner.iterate(self.tts.synthesize(frame.text))) as chunks:
                async for samples in chunks:
                    if self.is_stale(frame.turn_id):
                        return
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
