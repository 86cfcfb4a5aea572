"""Spoken numbers as the recognizer writes them, back to digits."""

from __future__ import annotations

import pytest

from voxloop.pipeline.assistant.number_words import parse_number, words_to_digits


@pytest.mark.parametrize(
    ("spoken", "value"),
    [
        ("seventeen", 17), ("twenty-three", 23), ("twenty three", 23), ("one hundred and five", 105),
        ("a hundred", 100), ("a half", 0.5), ("10", 10), ("3.5", 3.5), ("1,000", 1000),
        ("three point one four", 3.14), ("two thousand and twenty four", 2024), ("one and a half", 1.5),
        ("ninety nine thousand nine hundred ninety nine", 99999), ("Seventeen.", 17), ("zero", 0),
    ],
)  # fmt: skip
def test_a_spoken_number_is_read_as_its_value(spoken: str, value: float) -> None:
    assert parse_number(spoken) == value


@pytest.mark.parametrize("text", ["a dog", "seventeen apples", "", "oh", "one two"])
def test_text_that_is_not_one_number_is_none(text: str) -> None:
    assert parse_number(text) is None


def test_number_words_inside_a_sentence_become_digits_and_other_words_stay() -> None:
    assert words_to_digits("What is seventeen times twenty-three?") == ["what", "is", "17", "times", "23", "?"]
    assert words_to_digits("what is a dog") == ["what", "is", "a", "dog"]
    # Digits said one by one stay apart: "two three" is not twenty-three.
    assert words_to_digits("one two three") == ["1", "2", "3"]
