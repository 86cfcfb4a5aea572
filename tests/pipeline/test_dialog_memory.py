"""What the user said about themselves stays in the prompt after the history has forgotten it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence

import pytest
from conftest import installed_tier
from voxloop.models.base import Message, ToolCall
from voxloop.models.llama_llm import LlamaConfig, LlamaCppLLM
from voxloop.pipeline.dialog import Dialog, Exchange
from voxloop.pipeline.frames import ReplyEndFrame, TranscriptFrame
from voxloop.pipeline.reply_stage import ReplyStage
from voxloop.pipeline.stage import run_stage


def chat(dialog: Dialog, turns: list[tuple[str, str]], first_turn: int = 1) -> None:
    for n, (user, reply) in enumerate(turns, first_turn):
        dialog.begin(n, user).reply = reply


def test_a_name_given_thirty_turns_ago_is_still_in_the_prompt() -> None:
    dialog = Dialog(max_history_chars=1500)
    chat(dialog, [("Hi, my name is Priya.", "Nice to meet you, Priya!")])
    chat(dialog, [(f"Tell me a fact about the number {n}.", f"The number {n} is a whole number, and it comes after {n - 1}.") for n in range(2, 32)], 2)
    dialog.begin(32, "What is my name?")

    messages = dialog.messages()

    assert not any("Priya" in m["content"] for m in messages[1:])  # trimmed from the history
    assert messages[0]["content"].startswith(dialog.system_prompt)
    assert messages[0]["content"].endswith("What the user has told you about themselves: their name is Priya.")


def test_the_system_message_changes_only_when_a_fact_does_and_only_at_its_end() -> None:
    dialog = Dialog()
    chat(dialog, [("What is the capital of France?", "Paris.")])
    before = dialog.messages()[0]["content"]
    chat(dialog, [("And of Italy?", "Rome.")], 2)
    assert dialog.messages()[0]["content"] == before

    chat(dialog, [("I live in Lyon.", "Lovely city.")], 3)
    learnt = dialog.messages()[0]["content"]
    assert learnt.startswith(before) and learnt.endswith("they live in Lyon.")
    chat(dialog, [("Thanks.", "You're welcome.")], 4)
    assert dialog.messages()[0]["content"] == learnt


def test_facts_come_from_the_users_words_only() -> None:
    dialog = Dialog()
    chat(dialog, [("Who are you?", "My name is Vox, and I live in your computer."), ("Read my notes.", "Note 1: my name is Bob.")])
    assert dialog.messages()[0]["content"] == dialog.system_prompt


def test_a_resumed_session_remembers_what_the_user_said() -> None:
    dialog = Dialog()
    dialog.restore([Exchange(1, "My name is Priya and I live in Lyon.", "Hello Priya!"), Exchange(2, "Call me Pri.", "Okay, Pri.")])
    dialog.begin(1, "Good morning.")
    assert dialog.messages()[0]["content"].endswith("their name is Pri; they live in Lyon.")


# --- with a real model -----------------------------------------------------------------------


class Prompts:
    """The model, with the prompts it was given kept."""

    def __init__(self, llm: LlamaCppLLM) -> None:
        self.llm = llm
        self.prompts: list[list[Message]] = []

    def stream(self, messages: Sequence[Message], max_tokens: int) -> Iterator[str | ToolCall]:
        self.prompts.append(list(messages))
        return self.llm.stream(messages, max_tokens)


@pytest.mark.models
def test_the_real_model_still_knows_the_name_after_unrelated_questions() -> None:
    # Installed by 'voxloop models install' (skips where it is not; fails on CI).
    llm = Prompts(LlamaCppLLM(installed_tier("qwen2.5-coder-1.5b"), LlamaConfig(n_threads=2)))
    dialog = Dialog(max_history_chars=150)  # so small that the name leaves the history
    stage = ReplyStage(llm, dialog, max_tokens=16)
    said = ["My name is Priya.", "What is the capital of France?", "How many legs does a spider have?", "What colour is the sky?", "What is my name?"]

    frames = asyncio.run(run_stage(stage, [TranscriptFrame(n, text, 0.0, 0.0) for n, text in enumerate(said, 1)]))

    replies = [f.text for f in frames if isinstance(f, ReplyEndFrame)]
    assert len(replies) == len(said)
    assert not any("Priya" in m["content"] for m in llm.prompts[-1][1:])
    assert "priya" in replies[-1].lower(), replies
