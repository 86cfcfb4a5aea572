"""Transcripts in, speakable chunks of the reply out, while the model is still generating.

Tokens stream from the LLM into the clause chunker; each chunk is cleaned for speech and sent
to synthesis at once, so the first clause is being spoken while the rest is generated.
"""

from __future__ import annotations

import contextlib
import logging
import time

from voxloop.models.base import LLM, Message

from .chunker import ClauseChunker
from .dialog import Dialog
from .frames import Frame, ReplyEndFrame, SentenceFrame, SpeakFrame, TranscriptFrame
from .speech_text import clean_for_speech, is_speakable
from .stage import EngineRunner, Stage

logger = logging.getLogger(__name__)

APOLOGY = "Sorry, something went wrong on my side. Please ask me again."
NO_ANSWER = "Sorry, I don't have an answer to that."


class ReplyStage(Stage):
    name = "reply"

    def __init__(self, llm: LLM, dialog: Dialog, max_tokens: int = 120) -> None:
        super().__init__()
        self.llm = llm
        self.dialog = dialog
        self.max_tokens = max_tokens
        self.runner = EngineRunner("llm")

    async def process(self, frame: Frame) -> None:
        if isinstance(frame, SpeakFrame):
            await self._say(frame.turn_id, frame.text)
        elif isinstance(frame, TranscriptFrame):
            await self._answer(frame)
        else:
            await self.push(frame)

    async def _say(self, turn_id: int, text: str) -> None:
        cleaned = clean_for_speech(text)
        chunker = ClauseChunker()
        for index, chunk in enumerate(chunker.push(cleaned) + chunker.flush()):
            await self.push(SentenceFrame(turn_id, chunk, index))
        self.ctx.log.get(turn_id).assistant_text = cleaned
        await self.push(ReplyEndFrame(turn_id, cleaned))

    async def _answer(self, frame: TranscriptFrame) -> None:
        turn_id = frame.turn_id
        exchange = self.dialog.begin(turn_id, frame.text)
        messages = self.dialog.messages(fits=lambda m: self.llm_fits(m))
        chunker = ClauseChunker()
        index = 0
        started = time.perf_counter()

        async def speak(chunk: str) -> None:
            nonlocal index
            text = clean_for_speech(chunk)
            if not is_speakable(text):
                return
            if index == 0:
                self.ctx.log.stage(turn_id, "first_sentence", (time.perf_counter() - started) * 1000)
            await self.push(SentenceFrame(turn_id, text, index))
            index += 1

        try:
            async with contextlib.aclosing(self.runner.iterate(self.llm.stream(messages, self.max_tokens))) as deltas:
                async for delta in deltas:
                    if self.is_stale(turn_id):
                        return  # interrupted: the session has already set what was heard
                    if not exchange.reply:
                        self.ctx.log.stage(turn_id, "llm_first_token", (time.perf_counter() - started) * 1000)
                    exchange.reply += delta
                    for chunk in chunker.push(delta):
                        await speak(chunk)
            for chunk in chunker.flush():
                await speak(chunk)
        except Exception as e:
            logger.error("the language model failed on turn %d: %s", turn_id, e, exc_info=True)
            self.ctx.log.get(turn_id).error = f"llm: {e}"
            exchange.reply = APOLOGY
            await speak(APOLOGY)
        if self.is_stale(turn_id):
            return
        if index == 0:
            # Never leave the user in silence after they asked something.
            exchange.reply = NO_ANSWER
            await speak(NO_ANSWER)
        exchange.reply = exchange.reply.strip()
        self.ctx.log.get(turn_id).assistant_text = exchange.reply
        await self.push(ReplyEndFrame(turn_id, exchange.reply))

    def llm_fits(self, messages: list[Message]) -> bool:
        """Prompt plus reply inside the model's context window (servers decide for themselves)."""
        fits = getattr(self.llm, "fits", None)
        return True if fits is None else bool(fits(messages, self.max_tokens))

    def close(self) -> None:
        self.runner.shutdown()
