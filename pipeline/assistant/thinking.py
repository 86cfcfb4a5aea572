"""Thinking time: the model reasons privately, the user hears only its conclusion.

Two parts:

* ``ThinkFilter`` takes the LLM's text deltas as they stream and keeps reasoning sections
  (``<think>…</think>``, ``<thinking>…</thinking>``, ``<reasoning>…</reasoning>``) out of what
  is spoken. Tags may arrive split over any number of deltas; a section still open when the
  reply ends is dropped. Models that reason on their own (Qwen3, DeepSeek-R1 distills) emit
  these tags unasked, so the filter runs on every reply.
* ``wants_thinking`` tells when the user asks for a careful answer ("think carefully", "take
  your time"); ``ThinkingConfig`` says what a thinking turn does differently: a spoken
  acknowledgement at once, an instruction to reason inside ``<think>`` tags first, and a larger
  token budget.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SECTION_NAMES = ("think", "thinking", "reasoning")
"""Tag names that enclose reasoning, matched case-insensitively."""

_OPEN_TAGS = tuple(f"<{name}>" for name in SECTION_NAMES)
_CLOSE_TAGS = tuple(f"</{name}>" for name in SECTION_NAMES)

THINK_INSTRUCTION = (
    "This question needs care. First reason step by step inside <think> and </think> tags; "
    "nobody hears that part. Then, after </think>, give only your conclusion in one to three "
    "short spoken sentences."
)

_ASKS_FOR_THOUGHT = re.compile(
    r"\b(?:think|thinks|thinking)\s+(?:(?:really|very|long|and)\s+)?"
    r"(?:carefully|careful|hard|harder|deeply|it\s+through|this\s+through|that\s+through|it\s+over|step\s+by\s+step)\b"
    r"|\btake\s+(?:your|you're|some)\s+time\b",
    re.IGNORECASE,
)


@dataclass
class ThinkingConfig:
    always: bool = False
    """Every turn is a thinking turn (a persona's ``think`` setting)."""
    acknowledgement: str = "Let me think about that."
    """Spoken at once on a thinking turn, so the wait is never silent."""
    instruction: str = THINK_INSTRUCTION
    """Appended to the system message for that turn only."""
    max_tokens: int = 512
    """Token budget of a thinking turn: the reasoning comes out of it too."""


def wants_thinking(text: str, always: bool = False) -> bool:
    """The user asked for a careful answer, or ``always`` (the persona thinks on every turn)."""
    return always or bool(_ASKS_FOR_THOUGHT.search(text))


class ThinkFilter:
    """Feed LLM deltas in, get the speakable text out; the reasoning is kept in ``thinking``.

    A stray close tag with no open one (a chat template that opens the section itself) is
    removed; the text before it has already streamed out and cannot be taken back.
    """

    def __init__(self) -> None:
        self._pending = ""
        """Text held back: it may be the start of a tag."""
        self._inside: str | None = None
        """Close tag of the section being read, or None outside one."""
        self._sections: list[str] = []
        """Reasoning of the closed sections."""
        self._section: list[str] = []
        """Reasoning of the open section so far."""

    @property
    def thinking(self) -> str:
        """The reasoning seen so far, one paragraph per section."""
        sections = [*self._sections, "".join(self._section)]
        return "\n\n".join(s.strip() for s in sections if s.strip())

    def feed(self, delta: str) -> str:
        """The part of the reply that can be spoken now."""
        text = self._pending + delta
        self._pending = ""
        visible: list[str] = []
        while text:
            if self._inside is None:
                lt = text.find("<")
                if lt < 0:
                    visible.append(text)
                    break
                visible.append(text[:lt])
                text = text[lt:]
                tag = _tag_at_start(text, _OPEN_TAGS + _CLOSE_TAGS)
                if tag is None:
                    if _may_become_tag(text, _OPEN_TAGS + _CLOSE_TAGS):
                        self._pending = text  # wait for the next delta to decide
                        break
                    visible.append("<")
                    text = text[1:]
                    continue
                text = text[len(tag) :]
                if tag in _OPEN_TAGS:
                    self._inside = "</" + tag[1:]
            else:
                end = text.lower().find(self._inside)
                if end >= 0:
                    self._sections.append("".join(self._section) + text[:end])
                    self._section = []
                    text = text[end + len(self._inside) :]
                    self._inside = None
                    continue
                keep = _partial_suffix(text, self._inside)
                self._section.append(text[: len(text) - keep])
                self._pending = text[len(text) - keep :]
                break
        return "".join(visible)

    def flush(self) -> str:
        """The reply has ended: what was held back, unless it is inside an unclosed section."""
        pending, self._pending = self._pending, ""
        if self._inside is not None:
            self._section.append(pending)
            return ""
        return pending


def _tag_at_start(text: str, tags: tuple[str, ...]) -> str | None:
    lowered = text.lower()
    return next((tag for tag in tags if lowered.startswith(tag)), None)


def _may_become_tag(text: str, tags: tuple[str, ...]) -> bool:
    lowered = text.lower()
    return any(len(lowered) < len(tag) and tag.startswith(lowered) for tag in tags)


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest end of ``text`` that is a beginning of ``tag``."""
    lowered = text.lower()
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(lowered[-n:]):
            return n
    return 0
