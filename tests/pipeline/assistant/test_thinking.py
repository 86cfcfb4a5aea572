"""Reasoning sections never reach speech, however the model's deltas cut the tags."""

from __future__ import annotations

import itertools

import pytest

from voxloop.pipeline.assistant.thinking import ThinkFilter, wants_thinking


def run(deltas: list[str]) -> tuple[str, str]:
    f = ThinkFilter()
    spoken = "".join(f.feed(d) for d in deltas) + f.flush()
    return spoken, f.thinking


def every_split(text: str, cuts: int) -> list[list[str]]:
    """``text`` cut into deltas at every combination of ``cuts`` positions."""
    splits = []
    for points in itertools.combinations(range(1, len(text)), cuts):
        bounds = (0, *points, len(text))
        splits.append([text[a:b] for a, b in itertools.pairwise(bounds)])
    return splits


REPLY = "<think>2 plus 2 is 4</think>The answer is 4."


@pytest.mark.parametrize("cuts", [1, 2])
def test_a_reasoning_section_is_removed_at_every_delta_boundary(cuts: int) -> None:
    for deltas in every_split(REPLY, cuts):
        assert run(deltas) == ("The answer is 4.", "2 plus 2 is 4"), deltas


def test_one_character_per_delta_and_every_tag_name_and_case() -> None:
    for name in ("think", "thinking", "reasoning", "THINK", "Thinking"):
        text = f"Sure. <{name}>hidden <b> steps</{name}> Four."
        assert run(list(text)) == ("Sure.  Four.", "hidden <b> steps"), name


def test_an_unclosed_section_at_the_end_is_dropped() -> None:
    assert run(["Well, <think>let me see", " more and mo", "re </thi"]) == ("Well, ", "let me see more and more </thi")


def test_text_that_only_looks_like_a_tag_is_spoken() -> None:
    assert run(["3 <", " 4 and a <b>bold</b> <thin", "g> <th"]) == ("3 < 4 and a <b>bold</b> <thing> <th", "")


def test_a_stray_close_tag_is_not_spoken_and_sections_are_kept_apart() -> None:
    spoken, thinking = run(["one</think> two <think>a</think>three<reasoning>b</reasoning>"])
    assert spoken == "one two three"
    assert thinking == "a\n\nb"


def test_a_tag_name_is_not_closed_by_another_name() -> None:
    assert run(["<think>x</reasoning>y</think>z"]) == ("z", "x</reasoning>y")


@pytest.mark.parametrize(
    "text",
    ["Think carefully: what is 17 times 23?", "please think hard about this", "Take your time. Why is the sky blue?",
     "can you think it through", "think step by step", "Think really carefully"],
)  # fmt: skip
def test_asking_for_a_careful_answer_is_recognised(text: str) -> None:
    assert wants_thinking(text)


@pytest.mark.parametrize("text", ["What time is it?", "I think it's late", "Do you think so?", "take a note"])
def test_ordinary_questions_are_not_thinking_turns(text: str) -> None:
    assert not wants_thinking(text)
    assert wants_thinking(text, always=True)
