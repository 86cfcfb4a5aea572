"""Timers and alarms on the session's timeline, polled, without threads.

Times are seconds on the session timeline (the input's clock: the wall clock live, the
simulated clock in a fast replay), so a replay fires a timer at the same point of the
conversation as a live run would. An alarm is set for a wall time ("7 am") and converted to
the timeline with the injected ``now()`` (a time-zone-aware datetime). The session polls
``due(now_s)`` and speaks each timer it returns.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

from .number_words import format_number, words_to_digits

logger = logging.getLogger(__name__)

_UNIT_SECONDS = {
    "second": 1, "seconds": 1, "sec": 1, "secs": 1, "minute": 60, "minutes": 60, "min": 60, "mins": 60,
    "hour": 3600, "hours": 3600, "hr": 3600, "hrs": 3600,
}  # fmt: skip


@dataclass
class Timer:
    id: int
    due_s: float
    """Timeline seconds when it goes off."""
    label: str = ""
    duration_s: float | None = None
    """Set for a timer; None for an alarm."""
    alarm_at: dt.datetime | None = None
    """Wall time of an alarm."""

    @property
    def kind(self) -> str:
        return "alarm" if self.alarm_at is not None else "timer"

    def name(self) -> str:
        """How it is referred to: "the pasta timer", "the 5 minute timer", "the 7:00 AM alarm"."""
        if self.label:
            return f"the {self.label} {self.kind}"
        if self.alarm_at is not None:
            return f"the {format_clock(self.alarm_at)} alarm"
        assert self.duration_s is not None
        return f"the {format_duration(self.duration_s, adjective=True)} timer"

    def announcement(self) -> str:
        """What the assistant says when it goes off."""
        if self.alarm_at is not None:
            label = f" for {self.label}" if self.label else ""
            return f"It's {format_clock(self.alarm_at)}. This is your alarm{label}."
        what = self.name()
        return f"{what[0].upper()}{what[1:]} is done."


def format_clock(at: dt.datetime) -> str:
    return at.strftime("%I:%M %p").lstrip("0")


def format_duration(seconds: float, adjective: bool = False) -> str:
    """ "1 hour and 30 minutes"; ``adjective``: "5 minute" (as in "the 5 minute timer")."""
    seconds = max(0, round(seconds))
    parts = []
    for unit, size in (("hour", 3600), ("minute", 60), ("second", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n} {unit}" + ("" if n == 1 or adjective else "s"))
    if not parts:
        return "0 seconds"
    return " and ".join([", ".join(parts[:-1]), parts[-1]] if len(parts) > 1 else parts)


def parse_duration(text: str) -> float | None:
    """Seconds in "5 minutes", "an hour and a half", "1 hour 30 minutes", "90 seconds"; None if
    the text holds no duration."""
    words = words_to_digits(text.replace("½", " and a half"))
    total = 0.0
    found = False
    i = 0
    while i < len(words):
        w = words[i]
        amount: float | None = None
        if w[0].isdigit() or w[0] == ".":
            amount = float(w)
        elif w in {"a", "an", "one"}:
            amount = 1.0
        elif w == "half" and i + 2 < len(words) and words[i + 1] in {"a", "an"}:
            amount, i = 0.5, i + 1  # "half an hour"
        if amount is not None and i + 1 < len(words) and words[i + 1] in _UNIT_SECONDS:
            size = _UNIT_SECONDS[words[i + 1]]
            total += amount * size
            found = True
            i += 2
            if words[i : i + 2] == ["and", "0.5"]:  # "a minute and a half"
                total += 0.5 * size
                i += 2
            continue
        i += 1
    return total if found and total > 0 else None


_CLOCK = re.compile(
    r"\b(?P<hour>\d{1,2})(?: : (?P<minute>\d{2})| (?P<minute2>\d{2}))?"
    r"(?: (?P<half>am|pm|o'clock|in the morning|in the afternoon|in the evening|at night|tonight))?\b"
)
_HALF_DAY = re.compile(r"\b([ap])\.? ?m\b\.?")
_PM = {"pm", "in the afternoon", "in the evening", "at night", "tonight"}


def parse_clock(text: str, now: dt.datetime) -> dt.datetime | None:
    """The next wall time after ``now`` that "7 am", "7:30 pm", "19:45", "6 in the morning" names."""
    text = _HALF_DAY.sub(lambda m: f" {m.group(1)}m ", text.lower())
    if "noon" in text or "midday" in text:
        hour, minute, half = 12, 0, "pm"
    elif "midnight" in text:
        hour, minute, half = 12, 0, "am"
    else:
        match = _CLOCK.search(" ".join(words_to_digits(text)))
        if match is None:
            return None
        hour, minute = int(match["hour"]), int(match["minute"] or match["minute2"] or 0)
        half = "pm" if match["half"] in _PM else "am" if match["half"] in {"am", "in the morning"} else ""
    if hour > 23 or minute > 59 or (half and not 1 <= hour <= 12):
        return None
    if half:
        candidates = [hour % 12 + (12 if half == "pm" else 0)]
    elif hour <= 12:
        candidates = [hour % 12, hour % 12 + 12]  # "7": whichever 7 o'clock comes first
    else:
        candidates = [hour]
    best = None
    for h in candidates:
        at = now.replace(hour=h, minute=minute, second=0, microsecond=0)
        if at <= now:
            at += dt.timedelta(days=1)
        best = at if best is None or at < best else best
    return best


class Timers:
    def __init__(self, now_s: Callable[[], float], now: Callable[[], dt.datetime]) -> None:
        """``now_s``: timeline seconds now; ``now``: the wall time now, time-zone aware."""
        self.now_s = now_s
        self.now = now
        self._timers: list[Timer] = []
        self._next_id = 1
        self._lock = threading.Lock()
        """Commands change them on the event loop, tools on their own thread."""

    def _add(self, make: Callable[[int], Timer]) -> Timer:
        with self._lock:
            timer = make(self._next_id)
            self._timers.append(timer)
            self._next_id += 1
        logger.info("%s set, due at %.1f s on the timeline", timer.name(), timer.due_s)
        return timer

    def add(self, duration_s: float, label: str = "") -> Timer:
        due_s = self.now_s() + duration_s
        return self._add(lambda timer_id: Timer(timer_id, due_s, label, duration_s=duration_s))

    def add_alarm(self, at: dt.datetime, label: str = "") -> Timer:
        due_s = self.now_s() + max(0.0, (at - self.now()).total_seconds())
        return self._add(lambda timer_id: Timer(timer_id, due_s, label, alarm_at=at))

    def active(self) -> list[Timer]:
        """Pending timers and alarms, soonest first: the order "timer 1, timer 2" refers to."""
        return sorted(self._timers, key=lambda t: t.due_s)

    def remaining_s(self, timer: Timer) -> float:
        return max(0.0, timer.due_s - self.now_s())

    def cancel(self, timer_ids: list[int]) -> list[Timer]:
        with self._lock:
            gone = [t for t in self._timers if t.id in timer_ids]
            self._timers = [t for t in self._timers if t.id not in timer_ids]
        return gone

    def due(self, now_s: float) -> list[Timer]:
        """Timers that have gone off by ``now_s``; each is returned once, then forgotten."""
        with self._lock:
            fired = [t for t in self._timers if t.due_s <= now_s]
            if fired:
                self._timers = [t for t in self._timers if t.due_s > now_s]
        return sorted(fired, key=lambda t: t.due_s)

    def describe(self, timer: Timer) -> str:
        """ "the pasta timer, 4 minutes and 30 seconds left" """
        if timer.alarm_at is not None:
            return f"{timer.name()}"
        return f"{timer.name()}, {format_duration(self.remaining_s(timer))} left"


__all__ = ["Timer", "Timers", "format_clock", "format_duration", "format_number", "parse_clock", "parse_duration"]
