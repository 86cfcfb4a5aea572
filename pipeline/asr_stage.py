"""Utterances in, transcripts out."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from voxloop.models.base import ASR, Transcript
from voxloop.voice.audio_file import int16_to_float

from .frames import Frame, PartialTranscriptFrame, PartialUtteranceFrame, SpeakFrame, TranscriptFrame, UtteranceFrame
from .stage import EngineRunner, Stage

logger = logging.getLogger(__name__)

NOT_HEARD = "Sorry, I didn't catch that. Could you say it again?"


class ASRStage(Stage):
    name = "asr"

    def __init__(
        self,
        asr: ASR,
        on_no_words: Callable[[int, bool], None] = lambda turn_id, provisional: None,
        prefix_for: Callable[[int, str], str] = lambda turn_id, default: default,
        on_text: Callable[[int, str, bool], bool] = lambda turn_id, text, provisional: True,
    ) -> None:
        super().__init__()
        self.asr = asr
        self.runner = EngineRunner("asr")
        self._on_no_words = on_no_words
        self._prefix_for = prefix_for
        """Words carried over from an utterance this one continues."""
        self._on_text = on_text
        self._pieces: dict[int, list[str]] = {}
        """Text of the pieces of a long utterance heard so far, by turn."""

    async def process(self, frame: Frame) -> None:
        if isinstance(frame, PartialUtteranceFrame):
            await self._recognise_partial(frame)
            return
        if not isinstance(frame, UtteranceFrame):
            await self.push(frame)
            return
        started = time.perf_counter()
        try:
            if frame.voiced_ms or frame.final and not self._pieces.get(frame.turn_id):
                result: Transcript = await self.runner.call(self.asr.transcribe, int16_to_float(frame.samples))
            else:
                result = Transcript("")  # a closing piece that holds no speech
        except Exception as e:
            # The user said something we lost: tell them, rather than stay silent.
            logger.error("speech recognition failed on turn %d: %s", frame.turn_id, e, exc_info=True)
            self.ctx.log.get(frame.turn_id).error = f"asr: {e}"
            if not frame.final:
                self._pieces.setdefault(frame.turn_id, []).append("")
            elif not self.is_stale(frame.turn_id):
                self._pieces.pop(frame.turn_id, None)
                await self.push(SpeakFrame(frame.turn_id, NOT_HEARD))
            return
        asr_ms = (time.perf_counter() - started) * 1000
        if result.dropped:
            logger.info("turn %d: ignored %s", frame.turn_id, result.dropped)
        if not frame.final:
            # A long turn is transcribed piece by piece while the user is still talking.
            self._pieces.setdefault(frame.turn_id, []).append(result.text)
            return
        pieces = self._pieces.pop(frame.turn_id, [])
        result = Transcript(" ".join(filter(None, [*pieces, result.text])), dropped=result.dropped)
        if self.is_stale(frame.turn_id):
            return
        if result.text and not self._on_text(frame.turn_id, result.text, frame.provisional):
            # Not the user's turn after all (the assistant's echo, a backchannel): forget it.
            self.ctx.log.discard(frame.turn_id)
            return
        # Asked after ``on_text``: the words may have just made this turn a continuation.
        prefix = self._prefix_for(frame.turn_id, "")
        if not (result.text or prefix):
            if not frame.provisional:
                self.ctx.log.discard(frame.turn_id)
            # A provisional turn keeps its record: the user may go on, and the session decides
            # at the endpoint.
            self._on_no_words(frame.turn_id, frame.provisional)
            return
        text = f"{prefix} {result.text}".strip()
        logger.info("turn %d: heard %r (%.0f ms)%s", frame.turn_id, text, asr_ms, " provisionally" if frame.provisional else "")
        self.ctx.log.get(frame.turn_id).user_text = text
        self.ctx.log.stage(frame.turn_id, "asr", asr_ms)
        await self.push(TranscriptFrame(frame.turn_id, text, frame.end_s, asr_ms, frame.provisional))

    async def _recognise_partial(self, frame: PartialUtteranceFrame) -> None:
        """The words so far of an utterance still going on, less the last (it may be cut
        mid-word, or change): the language model reads them while the user speaks."""
        try:
            result = await self.runner.call(self.asr.transcribe, int16_to_float(frame.samples))
        except Exception as e:
            logger.debug("recognition of a partial utterance failed: %s", e)  # the final one will say
            return
        words = result.text.split()[:-1]
        if self.is_stale(frame.turn_id) or not words:
            return
        text = f"{self._prefix_for(frame.turn_id, '')} {' '.join(words)}".strip()
        await self.push(PartialTranscriptFrame(frame.turn_id, text))

    def close(self) -> None:
        self.runner.shutdown()
