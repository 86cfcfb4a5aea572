"""Transcripts in, speakable chunks of the reply out, while the model is still generating.

Tokens stream from the LLM into the clause chunker; each chunk is cleaned for speech and sent
to synthesis at once, so the first clause is being spoken while the rest is generated.

With a tool registry, the model may answer with tool calls instead. Each is checked against
the registry (unknown tools and bad arguments are refused, and the model is told so); a
read-only tool runs on its own thread, with a short filler spoken if it is slow, and its result
goes back to the model fenced as data, for a few rounds at most. A tool with a side effect never
runs here: it goes to ``confirm``, and the reply is the question it returns.

A clause of the model's that only repeats the user's words or an earlier reply (``parrot``) is
neither spoken nor kept in the history; a reply left with nothing to say gets an honest
fallback, and its exchange stays out of the model's prompt.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from voxloop.models.base import LLM, Message, ToolCall, tool_calls_message, tool_result_message

from .assistant.spotlight import Spotlight
from .assistant.thinking import ThinkFilter, ThinkingConfig, wants_thinking
from .assistant.tools import CheckedCall, ToolError, ToolRegistry
from .chunker import PHRASE_STARTS, ChunkerConfig, ClauseChunker
from .dialog import UNANSWERED, Dialog, Exchange
from .frames import Frame, PartialTranscriptFrame, ReplyEndFrame, SentenceFrame, SpeakFrame, TranscriptFrame
from .parrot import ParrotConfig, ParrotGuard
from .prefill import Prefiller
from .speech_text import clean_for_speech, is_speakable
from .stage import EngineRunner, Stage

logger = logging.getLogger(__name__)

APOLOGY = "Sorry, something went wrong on my side. Please ask me again."
REPLY_CHUNKS = ChunkerConfig(first_cut_before=PHRASE_STARTS)
"""The model's replies: the first clause may also end before a conjunction, so it is heard sooner."""
NO_ANSWER = "Sorry, I don't have an answer to that."

Confirm = Callable[[str, Callable[[], str]], str]
"""``confirm(action, run)``: ask the user to confirm ``action`` (words such as "delete note
number 2"); ``run`` does it and is called only if the user says yes in their own turn. Returns
the question to speak."""


@dataclass
class ToolLoopConfig:
    max_rounds: int = 3
    """Tool rounds per turn; the model is then asked once more without tools, to answer."""
    max_calls_per_round: int = 4
    """Calls past this in one model turn are refused."""
    filler_after_s: float = 0.3
    """A read-only tool still running after this many seconds gets the filler spoken."""
    filler: str = "One moment."
    tool_timeout_s: float = 10.0
    """A tool still running after this is given up on (its thread finishes on its own) and
    the model is told it took too long, so a hung tool cannot hold the conversation."""


class ReplyStage(Stage):
    name = "reply"

    def __init__(
        self,
        llm: LLM,
        dialog: Dialog,
        max_tokens: int = 120,
        *,
        tools: ToolRegistry | None = None,
        confirm: Confirm | None = None,
        spotlight: Spotlight | None = None,
        tool_config: ToolLoopConfig | None = None,
        thinking: ThinkingConfig | None = None,
        parrot: ParrotConfig | None = None,
    ) -> None:
        """``tools``: offered to the model when not empty. ``confirm``: the only way a tool with
        a side effect can run (without it such calls are refused). ``spotlight``: the session's
        fence for tool results (a new one by default). ``parrot``: what counts as a copy."""
        super().__init__()
        self.llm = llm
        self.dialog = dialog
        self.max_tokens = max_tokens
        self.thinking = thinking or ThinkingConfig()
        self.parrot = parrot or ParrotConfig()
        self.knowledge: Callable[[str], str] | None = None
        """``knowledge(question)``: reference passages for this question, already fenced as
        data ("" for none). They go into this turn's system message only."""
        self.runner = EngineRunner("llm")
        self._streaming: int | None = None
        """The turn whose reply the model is streaming (None: none)."""
        self.prefiller = Prefiller(llm, self.runner)
        """Reads the question into the model's cache while the user is still asking it."""
        self.confirm = confirm
        self.spotlight = spotlight or Spotlight()
        self.tool_config = tool_config or ToolLoopConfig()
        self.tool_runner: EngineRunner | None = None
        self.set_tools(tools)

    def set_tools(self, tools: ToolRegistry | None) -> None:
        """Offer ``tools`` from the next turn on (None or empty: plain replies)."""
        self.tools = tools
        if tools and self.tool_runner is None:
            self.tool_runner = EngineRunner("tools")

    async def process(self, frame: Frame) -> None:
        if isinstance(frame, SpeakFrame):
            await self._say(frame.turn_id, frame.text)
        elif isinstance(frame, TranscriptFrame):
            await self.prefiller.wait()
            await self._answer(frame)
        elif isinstance(frame, PartialTranscriptFrame):
            if not self.tools:  # the tool path renders its own prompt
                messages = [*self.dialog.messages(fits=self.llm_fits), {"role": "user", "content": frame.text}]
                self.prefiller.start(messages, lambda: self.is_stale(frame.turn_id))
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
        guard = ParrotGuard(frame.text, _earlier(self.dialog, exchange, self.parrot.recent_replies), self.parrot)
        record = self.ctx.log.get(turn_id)
        chunker = ClauseChunker(REPLY_CHUNKS)
        reasoning = ThinkFilter()  # reasoning is never spoken, nor kept in the history
        first_token = True
        index = 0
        started = time.perf_counter()

        async def speak(chunk: str, guarded: bool = False) -> None:
            """Say a clause; a ``guarded`` one (the model's) only if it is not a copy."""
            nonlocal index
            text = clean_for_speech(chunk)
            if not is_speakable(text):
                return
            if guarded and (copied := guard.copied_from(text)) is not None:
                logger.info("turn %d: not spoken, it repeats %s: %r", turn_id, copied, text)
                record.parroted += 1
                exchange.reply = _without(exchange.reply, chunk)
                return
            if index == 0:
                self.ctx.log.stage(turn_id, "first_sentence", (time.perf_counter() - started) * 1000)
            await self.push(SentenceFrame(turn_id, text, index))
            index += 1

        async def stream(deltas: Iterator[str | ToolCall]) -> list[ToolCall] | None:
            """Speak the text as it comes; the tool calls it made, or None if interrupted."""
            nonlocal first_token
            calls: list[ToolCall] = []
            if exchange.reply and not exchange.reply.endswith(" "):
                exchange.reply += " "  # a later round of a tool turn goes on after what was said
            self._streaming = turn_id
            async with contextlib.aclosing(self.runner.iterate(deltas)) as items:
                async for delta in items:
                    if self.is_stale(turn_id):
                        return None  # interrupted: the session has already set what was heard
                    if isinstance(delta, ToolCall):
                        calls.append(delta)
                        continue
                    if first_token:
                        first_token = False
                        self.ctx.log.stage(turn_id, "llm_first_token", (time.perf_counter() - started) * 1000)
                    delta = reasoning.feed(delta)
                    exchange.reply += delta
                    for chunk in chunker.push(delta):
                        await speak(chunk, guarded=True)
            self._streaming = None
            if self.is_stale(turn_id):
                return None  # interrupted while the engine had nothing to give (on_interrupt)
            exchange.reply += (tail := reasoning.flush())
            for chunk in chunker.push(tail) + chunker.flush():
                await speak(chunk, guarded=True)
            return calls

        async def say(text: str) -> None:
            """A line of our own (filler, question) into the reply, clause by clause."""
            exchange.reply = f"{exchange.reply.strip()} {text}".lstrip()
            for chunk in chunker.push(text) + chunker.flush():
                await speak(chunk)

        reference = self.knowledge(frame.text) if self.knowledge is not None else ""
        if reference:
            messages = _with_instruction(_with_instruction(messages, self.spotlight.instructions()), reference)
        if think:
            messages = _with_instruction(messages, self.thinking.instruction)
            await speak(self.thinking.acknowledgement)  # at once: the wait is never silent
        acknowledged = index
        try:
            if self.tools:
                if not await self._tool_rounds(turn_id, messages, stream, say, max_tokens):
                    return
            elif await stream(self.llm.stream(messages, max_tokens)) is None:
                return
        except Exception as e:
            logger.error("the language model failed on turn %d: %s", turn_id, e, exc_info=True)
            self.ctx.log.get(turn_id).error = f"llm: {e}"
            exchange.reply = APOLOGY
            await speak(APOLOGY)
        if self.is_stale(turn_id):
            return
        record.thinking = reasoning.thinking
        if index == acknowledged:
            # Never leave the user in silence after they asked something; and never show the
            # model an exchange it did not answer, or it learns to repeat or say nothing.
            exchange.reply = NO_ANSWER
            exchange.kind = UNANSWERED
            await speak(NO_ANSWER)
        exchange.reply = exchange.reply.strip()
        record.assistant_text = exchange.reply
        await self.push(ReplyEndFrame(turn_id, exchange.reply))

    async def _tool_rounds(
        self,
        turn_id: int,
        messages: list[Message],
        stream: Callable[[Iterator[str | ToolCall]], Awaitable[list[ToolCall] | None]],
        say: Callable[[str], Awaitable[None]],
        max_tokens: int,
    ) -> bool:
        """Model turns until one answers without tools; False if interrupted on the way."""
        assert self.tools is not None
        messages = _with_instruction(messages, self.spotlight.instructions())
        config = self.tool_config
        filler_said = False
        for round_number in range(config.max_rounds + 1):
            if round_number < config.max_rounds:
                deltas = self.llm.stream(messages, max_tokens, tools=self.tools.specs())
            else:
                deltas = self.llm.stream(messages, max_tokens)
            calls = await stream(deltas)
            if calls is None:
                return False
            if not calls:
                return True
            if round_number == config.max_rounds:
                logger.warning("turn %d: ignored tool calls made when no tools were offered: %s", turn_id, [c.name for c in calls])
                return True
            results: list[tuple[ToolCall, str]] = []
            question: str | None = None
            for n, call in enumerate(calls):
                try:
                    if n >= config.max_calls_per_round:
                        most = config.max_calls_per_round
                        logger.warning("turn %d: refused tool call %d, past %d in one round", turn_id, n + 1, most)
                        raise ToolError(f"more than {most} tool calls at once")
                    checked = self.tools.check(call)
                    if checked.tool.side_effect:
                        question = self._ask_to_confirm(checked, question)
                        results.append((call, "Not done: the user was asked to confirm it."))
                        continue
                except ToolError as e:
                    results.append((call, f"Refused: {e.reason}."))
                    continue
                running = asyncio.ensure_future(self._run_tool(checked))
                if not filler_said:
                    done, _ = await asyncio.wait({running}, timeout=config.filler_after_s)
                    if not done and not self.is_stale(turn_id):
                        filler_said = True
                        await say(config.filler)
                try:
                    result = await asyncio.wait_for(running, config.tool_timeout_s)
                except asyncio.TimeoutError:
                    logger.warning("turn %d: tool %s gave no result in %g s", turn_id, call.name, config.tool_timeout_s)
                    result = f"The {call.name} tool took too long and gave no result."
                if self.is_stale(turn_id):
                    return False
                results.append((call, self.spotlight.fence(f"result of the tool {call.name}", result)))
            if question is not None:
                await say(question)
                return True
            messages = [
                *messages,
                tool_calls_message(calls),
                *(tool_result_message(call.id, result) for call, result in results),
            ]
        return True

    def _ask_to_confirm(self, checked: CheckedCall, pending: str | None) -> str:
        """Hand a side-effect call to ``confirm``; the question it returns, or ToolError."""
        if self.confirm is None:
            logger.warning("refused %s: no spoken confirmation is wired in", checked.tool.name)
            raise ToolError("actions need the user's spoken confirmation, which is not available")
        if pending is not None:
            raise ToolError("one action at a time can wait for the user's confirmation")
        assert self.tools is not None
        logger.info("asking the user to confirm %s %s", checked.tool.name, checked.arguments)
        return self.confirm(checked.describe(), functools.partial(self.tools.run, checked))

    async def _run_tool(self, checked: CheckedCall) -> str:
        assert self.tools is not None and self.tool_runner is not None
        return await self.tool_runner.call(self.tools.run, checked)

    def on_interrupt(self, turn_id: int) -> None:
        # A stale reply may be blocked on a server that sends nothing: an engine that can
        # (OpenAICompatibleLLM.abort) drops the request now, so the next turn need not wait.
        abort = getattr(self.llm, "abort", None)
        if abort is not None and self._streaming is not None and self._streaming < turn_id:
            abort()

    def llm_fits(self, messages: list[Message], max_tokens: int | None = None) -> bool:
        """Prompt plus reply inside the model's context window (servers decide for themselves)."""
        fits = getattr(self.llm, "fits", None)
        return True if fits is None else bool(fits(messages, max_tokens or self.max_tokens))

    def close(self) -> None:
        self.runner.shutdown()
        if self.tool_runner is not None:
            self.tool_runner.shutdown()


def _earlier(dialog: Dialog, current: Exchange, count: int) -> list[tuple[str, str]]:
    """The last ``count`` answered (question, reply) pairs before ``current``, oldest first."""
    pairs: list[tuple[str, str]] = []
    for exchange in reversed(dialog.exchanges):
        if len(pairs) >= count:
            break
        if exchange is not current and exchange.reply and exchange.kind != UNANSWERED:
            pairs.append((exchange.user, exchange.reply))
    return pairs[::-1]


def _without(reply: str, chunk: str) -> str:
    """``reply`` without the clause ``chunk`` just cut from its end (the chunker may already
    hold the next word or so after it)."""
    at = reply.rfind(chunk)
    if at < 0:
        return reply
    head, tail = reply[:at].rstrip(), reply[at + len(chunk) :].lstrip()
    return f"{head} {tail}" if head and tail else head or tail


def _with_instruction(messages: list[Message], instruction: str) -> list[Message]:
    """The prompt with ``instruction`` added to its system message (this turn only), once."""
    if instruction in (messages[0].get("content") or ""):
        return messages
    system = {**messages[0], "content": f"{messages[0]['content']}\n\n{instruction}"}
    return [system, *messages[1:]]
