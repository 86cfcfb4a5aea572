"""Never a parrot: a reply that repeats the question or an earlier reply is not spoken, and
never reaches the history; normal answers that reuse the question's words are untouched."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from voxloop.models.fakes import FakeLLM
from voxloop.pipeline.dialog import UNANSWERED, Dialog, Exchange
from voxloop.pipeline.frames import ReplyEndFrame, SentenceFrame, TranscriptFrame
from voxloop.pipeline.parrot import ParrotGuard
from voxloop.pipeline.reply_stage import NO_ANSWER, ReplyStage
from voxloop.pipeline.speech_text import clean_for_speech
from voxloop.pipeline.stage import StageContext, TurnState, run_stage
from voxloop.pipeline.turn_log import TurnLog


def copies(question: str, reply: str, earlier: list[tuple[str, str]] | None = None) -> str | None:
    return ParrotGuard(question, earlier or []).copied_from(clean_for_speech(reply))


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("What is the capital of France?", "The capital of France is Paris."),
        ("Why is the sky blue?", "The sky is blue because sunlight scatters off the air."),
        ("How many legs does a spider have?", "A spider has eight legs."),
        ("Is the Pacific the largest ocean?", "The Pacific is the largest ocean."),
        ("The capital of France is what?", "The capital of France is Paris."),
        ("The capital city of France is what?", "The capital city of France is Paris."),
        ("Tell me about the largest ocean on earth and how deep it is.", "The largest ocean on earth,"),
        ("What is the largest ocean on earth?", "The largest ocean on earth is the Pacific Ocean."),
        ("Is Paris the capital of France?", "Yes."),
        ("What is the capital of France?", "Paris."),
        ("Capital of France?", "Capital of France?"),  # too short to tell a copy from an answer
        ("Repeat after me: the quick brown fox jumps.", "The quick brown fox jumps."),
    ],
)
def test_answers_that_reuse_the_questions_words_are_spoken(question: str, answer: str) -> None:
    assert copies(question, answer) is None


@pytest.mark.parametrize(
    ("question", "reply"),
    [
        ("What is the largest ocean on earth?", "What is the largest ocean on earth?"),
        ("What is the largest ocean on earth?", "what is the largest ocean on Earth"),
        ("What is 17 times 23?", "What is 17 times 23?"),
        ("Can you tell me what the largest ocean on earth is?", "Can you tell me what the largest ocean is?"),
    ],
)
def test_a_copy_of_the_question_is_caught(question: str, reply: str) -> None:
    assert copies(question, reply) == "the user's words"


def test_a_long_question_parroted_clause_by_clause_is_caught_clause_by_clause() -> None:
    question = "What is the largest ocean on earth, and how deep is it?"
    guard = ParrotGuard(question)
    assert guard.copied_from("What is the largest ocean on earth,") == "the user's words"
    assert guard.copied_from("and how deep is it?") == "the user's words"


def test_a_line_of_a_recent_reply_is_caught_unless_the_same_question_is_asked_again() -> None:
    earlier = [("My name is Priya.", "Priya is a friendly voice assistant.")]
    assert copies("Tell me a joke.", "Priya is a friendly voice assistant.", earlier) == "an earlier reply"
    assert copies("My name is Priya.", "Priya is a friendly voice assistant.", earlier) is None
    # Only the last few replies count.
    older = earlier + [(f"Question {n}?", f"Answer number {n} is here.") for n in range(3)]
    assert copies("Tell me a joke.", "Priya is a friendly voice assistant.", older) is None


def test_a_reply_that_loops_says_each_line_once() -> None:
    guard = ParrotGuard("Tell me about yourself.")
    assert guard.copied_from("I am a voice assistant on your computer.") is None
    assert guard.copied_from("I am a voice assistant on your computer.") == "this reply"
    assert guard.copied_from("I can set timers and take notes.") is None


# --- in the reply stage ----------------------------------------------------------------------


def answer(stage: ReplyStage, text: str, turn_id: int, log: TurnLog) -> list[str]:
    frames = asyncio.run(run_stage(stage, [TranscriptFrame(turn_id, text, 0.0, 0.0)], StageContext(TurnState(), log)))
    assert isinstance(frames[-1], ReplyEndFrame)
    return [f.text for f in frames if isinstance(f, SentenceFrame)]


def test_a_parroted_question_is_not_spoken_a_fallback_is_and_the_history_forgets_it(tmp_path: Path) -> None:
    question = "What is the largest ocean on earth?"
    llm = FakeLLM([question, "The Mariana Trench, in the Pacific."])
    dialog = Dialog()
    stage = ReplyStage(llm, dialog)
    log = TurnLog(tmp_path / "turns.jsonl")

    said = answer(stage, question, 1, log)

    assert said == [NO_ANSWER]
    assert dialog.exchanges[0].kind == UNANSWERED
    log.finish(1)
    log.close()
    row = json.loads((tmp_path / "turns.jsonl").read_text().splitlines()[0])
    assert row["parroted"] == 1 and row["assistant_text"] == NO_ANSWER

    # The next prompt holds neither the parrot nor the fallback: nothing to copy.
    answer(stage, "And the deepest trench?", 2, log)
    history = llm.prompts[1][1:]
    assert history == [{"role": "user", "content": "And the deepest trench?"}]
    assert log.get(2).parroted == 0


def test_only_the_parroted_clause_is_left_out_of_speech_and_history() -> None:
    llm = FakeLLM(["What is the largest ocean on earth? The Pacific Ocean is."])
    dialog = Dialog()
    log = TurnLog(None)

    said = answer(ReplyStage(llm, dialog), "What is the largest ocean on earth?", 1, log)

    assert said == ["The Pacific Ocean is."]
    assert dialog.exchanges[0].reply == "The Pacific Ocean is." and dialog.exchanges[0].kind == "llm"
    assert log.get(1).parroted == 1 and log.get(1).assistant_text == "The Pacific Ocean is."


def test_a_line_copied_from_the_last_reply_is_not_said_again() -> None:
    intro = "I am a friendly voice assistant that runs on your computer."
    llm = FakeLLM([intro, f"{intro} The capital of Italy is Rome."])
    dialog = Dialog()
    stage = ReplyStage(llm, dialog)
    log = TurnLog(None)

    assert answer(stage, "Tell me about yourself.", 1, log) == [intro]
    assert answer(stage, "What is the capital of Italy?", 2, log) == ["The capital of Italy is Rome."]
    assert dialog.exchanges[1].reply == "The capital of Italy is Rome."


def test_normal_answers_are_spoken_and_kept_whole() -> None:
    cases = [
        ("What is the capital of France?", "The capital of France is Paris."),
        ("Why is the sky blue?", "The sky is blue because sunlight scatters, and blue scatters most."),
        ("How many legs does a spider have?", "A spider has eight legs."),
        ("Is Paris the capital of France?", "Yes."),
    ]
    for question, reply in cases:
        dialog = Dialog()
        log = TurnLog(None)
        said = answer(ReplyStage(FakeLLM([reply]), dialog), question, 1, log)
        assert " ".join(said) == reply, question
        assert dialog.exchanges[0].reply == reply and log.get(1).parroted == 0


def test_an_unanswered_exchange_stays_out_of_a_resumed_prompt() -> None:
    dialog = Dialog()
    dialog.restore([Exchange(1, "What is the largest ocean?", NO_ANSWER, kind=UNANSWERED), Exchange(2, "Hi.", "Hello!")])
    dialog.begin(1, "How are you?")
    contents = [m["content"] for m in dialog.messages()[1:]]
    assert contents == ["Hi.", "Hello!", "How are you?"]
