"""The reply stage on its own: what reaches synthesis for what the model says."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence

from voxloop.models.base import Message
from voxloop.models.fakes import FakeLLM
from voxloop.pipeline.dialog import Dialog
from voxloop.pipeline.frames import ReplyEndFrame, SentenceFrame, SpeakFrame, TranscriptFrame
from voxloop.pipeline.reply_stage import NO_ANSWER, ReplyStage
from voxloop.pipeline.stage import StageContext, TurnState, run_stage
from voxloop.pipeline.turn_log import TurnLog


def spoken(frames: list) -> list[str]:  # type: ignore[type-arg]
    return [f.text for f in frames if isinstance(f, SentenceFrame)]


def test_an_empty_or_punctuation_only_reply_is_never_silence() -> None:
    for reply in ["", "...", "*** ---", "😀🎉"]:
        frames = asyncio.run(run_stage(ReplyStage(FakeLLM([reply]), Dialog()), [TranscriptFrame(1, "hi", 0.0, 0.0)]))
        assert spoken(frames) == [NO_ANSWER], reply
        assert isinstance(frames[-1], ReplyEndFrame)


def test_markdown_and_code_are_not_read_out_and_the_first_chunk_is_short() -> None:
    reply = "**Sure!** Here is how, step by step:\n\n```python\nprint('hi')\n```\n\nSee https://example.com/docs for more."
    frames = asyncio.run(run_stage(ReplyStage(FakeLLM([reply]), Dialog()), [TranscriptFrame(1, "how?", 0.0, 0.0)]))

    texts = spoken(frames)
    assert texts[0] == "Sure!"
    joined = " ".join(texts)
    assert "```" not in joined and "print" not in joined and "**" not in joined and "https" not in joined
    assert "example dot com" in joined


def test_a_spoken_line_bypasses_the_model() -> None:
    llm = FakeLLM(["never"])
    frames = asyncio.run(run_stage(ReplyStage(llm, Dialog()), [SpeakFrame(3, "Sorry, I didn't catch that.")]))
    assert spoken(frames) == ["Sorry, I didn't catch that."]
    assert llm.prompts == []


class SlowLLM(FakeLLM):
    """Yields one word, then lets the test interrupt before the rest."""

    def __init__(self, turns: TurnState) -> None:
        super().__init__(["one two three four five six seven eight nine ten"])
        self.turns = turns

    def stream(self, messages: Sequence[Message], max_tokens: int) -> Iterator[str]:
        for i, word in enumerate(super().stream(messages, max_tokens)):
            if i == 2:
                self.turns.current = 2  # the user barged in while the model was talking
            yield word


def test_an_interrupt_stops_generation_between_tokens_and_closes_the_engine() -> None:
    turns = TurnState()
    llm = SlowLLM(turns)
    stage = ReplyStage(llm, Dialog())
    frames = asyncio.run(run_stage(stage, [TranscriptFrame(1, "count", 0.0, 0.0)], StageContext(turns, TurnLog(None))))

    assert not any(isinstance(f, ReplyEndFrame) for f in frames)
    assert llm.closed.is_set()
    assert "ten" not in stage.dialog.exchanges[0].reply


class CharLLM(FakeLLM):
    """Streams its scripted replies one character at a time (tags cut everywhere)."""

    def stream(self, messages: Sequence[Message], max_tokens: int) -> Iterator[str]:
        self.max_tokens = max_tokens
        yield from "".join(super().stream(messages, max_tokens=10_000))


def answer(stage: ReplyStage, text: str, turn_id: int = 1) -> tuple[list[str], TurnLog]:
    log = TurnLog(None)
    frames = asyncio.run(run_stage(stage, [TranscriptFrame(turn_id, text, 0.0, 0.0)], StageContext(TurnState(), log)))
    return spoken(frames), log


def test_reasoning_is_neither_spoken_nor_kept_in_the_history_but_is_logged() -> None:
    for llm in (FakeLLM(["<think>secret</think>The answer is 4."]), CharLLM(["<think>secret</think>The answer is 4."])):
        dialog = Dialog()
        texts, log = answer(ReplyStage(llm, dialog), "What is two plus two?")

        assert texts == ["The answer is four."]
        assert dialog.exchanges[0].reply == "The answer is 4."
        assert log.get(1).thinking == "secret"
        assert "secret" not in str(dialog.messages())


def test_a_thinking_turn_is_acknowledged_first_and_given_room_to_reason() -> None:
    llm = CharLLM(["<think>17 times 23 is 391</think>It is a big number."])
    dialog = Dialog()
    texts, log = answer(ReplyStage(llm, dialog, max_tokens=60), "Think carefully: what is 17 times 23?")

    assert texts == ["Let me think about that.", "It is a big number."]
    assert llm.max_tokens == 512
    system = llm.prompts[0][0]["content"]
    assert "<think>" in system and system.startswith(Dialog().system_prompt)
    assert dialog.exchanges[0].reply == "It is a big number."
    assert log.get(1).thinking == "17 times 23 is 391"
    # The next turn's prompt has the conclusion only, and no thinking instruction.
    answer(ReplyStage(llm, dialog, max_tokens=60), "thanks", turn_id=2)
    assert llm.prompts[1][0]["content"] == Dialog().system_prompt
    assert llm.prompts[1][2] == {"role": "assistant", "content": "It is a big number."}


def test_a_persona_that_always_thinks_and_a_model_that_never_concludes() -> None:
    from voxloop.pipeline.assistant.thinking import ThinkingConfig

    llm = FakeLLM(["<think>hmm, and then"])
    texts, log = answer(ReplyStage(llm, Dialog(), thinking=ThinkingConfig(always=True)), "Why?")
    assert texts == ["Let me think about that.", NO_ANSWER]
    assert log.get(1).thinking == "hmm, and then"
