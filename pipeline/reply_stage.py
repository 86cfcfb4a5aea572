"""Transcripts in, speakable chunks of the reply out, while the model is still generating.

Tokens stream from the LLM into the clause chunker; each chunk is cleaned for speech and sent
to synthesis at once, so the first clause is being spoken while the rest is generated.
"""

from __future__ import annotations

import contextlib
import logging
import time

from voxloop.models.base import LLM, Message

from .assistant.thinking import ThinkFilter, ThinkingConfig, wants_thinking
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

    def __init__(
        self, llm: LLM, dialog: Dialog, max_tokens: int = 120, *, thinking: ThinkingConfig | None = None
    ) -> None:
        super().__init__()
        self.llm = llm
        self.dialog = dialog
        self.max_tokens = max_tokens
        self.thinking = thinking or ThinkingConfig()
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
        think = wants_thinking(frame.text, self.thinking.always)
        max_tokens = max(self.max_tokens, self.thinking.max_tokens) if think else self.max_tokens
        messages = self.dialog.messages(fits=lambda m: self.llm_fits(m, max_tokens))
        chunker = ClauseChunker()
        reasoning = ThinkFilter()  # reasoning is never spoken, nor kept in the history
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

        if think:
            messages = _with_instruction(messages, self.thinking.instruction)
            await speak(self.thinking.acknowledgement)  # at once: the wait is never silent
        acknowledged = index
        try:
            async with contextlib.aclosing(self.runner.iterate(self.llm.stream(messages, max_tokens))) as deltas:
                async for delta in deltas:
                    if self.is_stale(turn_id):
                        return  # interrupted: the session has already set what was heard
                    self.ctx.log.stage(turn_id, "llm_first_token", (time.perf_counter() - started) * 1000)
                    delta = reasoning.feed(delta)
                    exchange.reply += delta
                    for chunk in chunker.push(delta):
                        await speak(chunk)
            exchange.reply += (tail := reasoning.flush())
            for chunk in chunker.push(tail) + chunker.flush():
                await speak(chunk)
        except Exception as e:
            logger.error("the language model failed on turn %d: %s", turn_id, e, exc_info=True)
            self.ctx.log.get(turn_id).error = f"llm: {e}"
            exchange.reply = APOLOGY
            await speak(APOLOGY)
        if self.is_stale(turn_id):
            return
        self.ctx.log.get(turn_id).thinking = reasoning.thinking
        if index == acknowledged:
            # Never leave the user in silence after they asked something.
            exchange.reply = NO_ANSWER
            await speak(NO_ANSWER)
        exchange.reply = exchange.reply.strip()
        self.ctx.log.get(turn_id).assistant_text = exchange.reply
        await self.push(ReplyEndFrame(turn_id, exchange.reply))

    def llm_fits(self, messages: list[Message], max_tokens: int | None = None) -> bool:
        """Prompt plus reply inside the model's context window (servers decide for themselves)."""
        fits = getattr(self.llm, "fits", None)
        return True if fits is None else bool(fits(messages, max_tokens or self.max_tokens))

    def close(self) -> None:
        self.runner.shutdown()


def _with_instruction(messages: list[Message], instruction: str) -> list[Message]:
    """The prompt with ``instruction`` added to its system message (this turn only)."""
    system = {**messages[0], "content": f"{messages[0]['content']}\n\n{instruction}"}
    return [system, *messages[1:]]
