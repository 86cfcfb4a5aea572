"""What words over a playing reply mean: echo, backchannel, stop, or a new question."""

from __future__ import annotations

import pytest

from voxloop.pipeline.barge_in import BargeInConfig, classify

REPLY = "Paris is the capital of France. It has been for more than a thousand years."


@pytest.mark.parametrize(
    ("heard", "kind"),
    [
        ("Mm-hmm.", "backchannel"),
        ("yeah yeah", "backchannel"),
        ("Uh huh.", "backchannel"),
        ("Oh, okay.", "backchannel"),
        ("And right.", "backchannel"),
        ("I see.", "backchannel"),
        ("Right.", "backchannel"),
        ("That's okay, right.", "backchannel"),
        ("Okay, great.", "backchannel"),
        ("Stop!", "stop"),
        ("Wait.", "stop"),
        ("No.", "stop"),
        ("Hold on.", "stop"),
        ("Be quiet.", "stop"),
        ("Okay, stop.", "stop"),
        ("Let's stop.", "stop"),
        ("Stop it, please.", "stop"),
        ("Great, stop.", "stop"),  # a word made up from the echo's tail
        ("Do stop.", "stop"),
        ("Don't stop.", "interrupt"),
        ("No thanks.", "interrupt"),
        ("Stop telling me about France.", "interrupt"),
        ("What about Berlin?", "interrupt"),
        ("No, I meant Germany.", "interrupt"),
        ("Yeah, but how big is it?", "interrupt"),
        ("Wait, what time is it?", "interrupt"),
        ("the capital of France it has been", "echo"),
        ("It has been for more than a thousand", "echo"),
        ("capital of friends", "echo"),  # ASR of echo is not exact
    ],
)
def test_words_over_a_reply_are_classified_as_a_listener_would(heard: str, kind: str) -> None:
    assert classify(heard, [REPLY], BargeInConfig()) == kind


def test_without_a_reply_to_compare_nothing_is_echo() -> None:
    assert classify("the capital of France", [], BargeInConfig()) == "interrupt"


def test_the_word_lists_are_configurable() -> None:
    config = BargeInConfig(backchannels=("yeah",), stop_words=("halt",), min_words=1)
    assert classify("right", [REPLY], config) == "interrupt"
    assert classify("halt", [REPLY], config) == "stop"
    assert classify("stop", [REPLY], config) == "interrupt"


def test_one_stray_word_does_not_take_the_floor() -> None:
    # What the recognizer makes of a leak of the assistant's own voice, or a word too short
    # to mean anything: the reply goes on.
    assert classify("Didn't.", [REPLY], BargeInConfig()) == "backchannel"
    assert classify("Berlin?", [REPLY], BargeInConfig()) == "backchannel"
    assert classify("What about Berlin?", [REPLY], BargeInConfig()) == "interrupt"


def test_numbers_come_back_as_words() -> None:
    # The reply says "3:19"; its echo is recognised as spoken: "three nineteen".
    said = ["It's 3:19 AM.", "It's three nineteen AM."]
    assert classify("Three nineteen.", said, BargeInConfig()) == "echo"


def test_one_or_two_words_mean_what_they_say_even_if_the_reply_holds_them() -> None:
    said = ["No, Paris is not in Germany. Stop me if you know it."]
    assert classify("No.", said, BargeInConfig()) == "stop"
    assert classify("Stop.", said, BargeInConfig()) == "stop"
    assert classify("Paris", said, BargeInConfig()) == "echo"
