"""Timers and alarms on an injected clock: they go off at the right point of the timeline."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from voxloop.pipeline.assistant.timers import Timers, format_duration, parse_clock, parse_duration

PARIS = ZoneInfo("Europe/Paris")
EVENING = dt.datetime(2024, 3, 1, 20, 15, tzinfo=PARIS)


class Clock:
    def __init__(self) -> None:
        self.s = 100.0

    def __call__(self) -> float:
        return self.s


@pytest.mark.parametrize(
    ("said", "seconds"),
    [
        ("5 seconds", 5), ("ten minutes", 600), ("an hour and a half", 5400), ("1 hour 30 minutes", 5400),
        ("half an hour", 1800), ("a minute and a half", 90), ("90 seconds", 90), ("2.5 minutes", 150),
        ("one and a half minutes", 90), ("1 hour and 5 minutes", 3900),
    ],
)  # fmt: skip
def test_spoken_durations(said: str, seconds: float) -> None:
    assert parse_duration(said) == seconds


@pytest.mark.parametrize("said", ["", "a while", "the pasta", "5"])
def test_no_duration(said: str) -> None:
    assert parse_duration(said) is None


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("7 am", (2, 7, 0)), ("7:30 pm", (2, 19, 30)), ("7 30 p.m.", (2, 19, 30)), ("seven a.m.", (2, 7, 0)),
        ("19:45", (2, 19, 45)), ("6 in the morning", (2, 6, 0)), ("9", (1, 21, 0)), ("7", (2, 7, 0)),
        ("noon", (2, 12, 0)), ("midnight", (2, 0, 0)), ("wake me up at seven thirty", (2, 7, 30)),
        ("10 pm", (1, 22, 0)),
    ],
)  # fmt: skip
def test_alarm_times_are_the_next_such_wall_time(said: str, expected: tuple[int, int, int]) -> None:
    at = parse_clock(said, EVENING)
    assert at is not None and (at.day, at.hour, at.minute) == expected and at.tzinfo is PARIS


def test_a_timer_goes_off_once_when_its_time_comes() -> None:
    clock = Clock()
    timers = Timers(clock, lambda: EVENING)
    egg = timers.add(5, "egg")
    timers.add(60)
    assert timers.due(104.9) == []
    assert timers.due(105.0) == [egg]
    assert timers.due(106.0) == []  # said once
    [left] = timers.active()
    assert left.announcement() == "The 1 minute timer is done."
    assert egg.announcement() == "The egg timer is done."


def test_an_alarm_is_placed_on_the_timeline_from_the_wall_clock() -> None:
    clock = Clock()
    timers = Timers(clock, lambda: EVENING)
    at = parse_clock("9 pm", EVENING)
    assert at is not None
    alarm = timers.add_alarm(at)
    assert alarm.due_s == pytest.approx(100 + 45 * 60)
    assert timers.due(100 + 45 * 60) == [alarm]
    assert alarm.announcement() == "It's 9:00 PM. This is your alarm."


def test_cancel_and_remaining_time() -> None:
    clock = Clock()
    timers = Timers(clock, lambda: EVENING)
    a, b = timers.add(300, "pasta"), timers.add(90)
    clock.s += 30
    assert timers.describe(a) == "the pasta timer, 4 minutes and 30 seconds left"
    assert timers.cancel([a.id]) == [a]
    assert timers.active() == [b]


def test_durations_are_said_naturally() -> None:
    assert format_duration(5400) == "1 hour and 30 minutes"
    assert format_duration(3661) == "1 hour, 1 minute and 1 second"
    assert format_duration(300, adjective=True) == "5 minute"
