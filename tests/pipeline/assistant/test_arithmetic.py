"""Spoken sums: a safe evaluator, spoken answers, spoken errors, and questions left alone."""

from __future__ import annotations

import pytest

from voxloop.pipeline.assistant.arithmetic import evaluate_spoken


@pytest.mark.parametrize(
    ("said", "value"),
    [
        ("what is seventeen times twenty three", 391), ("What is 17 x 23?", 391), ("17 * 23", 391),
        ("what's 17 multiplied by 23", 391), ("how much is 12 × 12", 144), ("calculate 100 divided by 8", 12.5),
        ("what is 1 over 4", 0.25), ("10 ÷ 4", 2.5), ("what is 2 plus 3 times 4", 14), ("7 minus 10", -3),
        ("what is 15 percent of 80", 12), ("3 squared plus 4 squared", 25), ("the square root of 81", 9),
        ("2 to the power of 10", 1024), ("what is 2 + 2 equal to", 4), ("minus 5 plus 3", -2),
        ("one hundred and five minus a half", 104.5), ("What a 17 times 23.", 391),
    ],
)  # fmt: skip
def test_spoken_sums_are_computed(said: str, value: float) -> None:
    answer = evaluate_spoken(said)
    assert answer is not None and answer.value == pytest.approx(value)
    assert answer.reply.endswith(".")


def test_the_answer_is_read_back_with_the_sum_and_rounded() -> None:
    answer = evaluate_spoken("what is seventeen times twenty three")
    assert answer is not None and answer.reply == "17 times 23 is 391."
    third = evaluate_spoken("what is 1 divided by 3")
    assert third is not None and third.reply == "1 divided by 3 is 0.3333."


@pytest.mark.parametrize(
    ("said", "error"),
    [
        ("what is 10 divided by 0", "divide by zero"), ("5 plus", "missing a number"),
        ("plus times 3", "couldn't follow"), ("square root of minus 4", "no real square root"),
        ("10 to the power of 1000", "too big"),
    ],
)  # fmt: skip
def test_sums_that_cannot_be_computed_get_a_spoken_error(said: str, error: str) -> None:
    answer = evaluate_spoken(said)
    assert answer is not None and answer.value is None and error in answer.reply


@pytest.mark.parametrize(
    "said",
    ["what is the capital of France", "what time did the war end", "what is 5", "what is love", "times square",
     "how much is a ticket to Paris", "x"],
)  # fmt: skip
def test_questions_that_are_not_sums_are_left_alone(said: str) -> None:
    assert evaluate_spoken(said) is None
