"""Fake engines for unit tests of the pipeline's own logic (turn-taking, history, interrupts).

They implement the same Protocols as the real engines and are deterministic. Tests of what a
user hears use the real engines.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from .base import Message, ToolCall, Transcript
from .errors import EngineError


class FakeASR:
    """Returns the scripted transcripts in order, one per call ("" = heard nothing), or what
    ``by_audio(audio)`` says when given a function (for tests where calls are not 1:1 with
    utterances, e.g. provisional transcripts)."""

    sample_rate = 16000

    def __init__(self, transcripts: Sequence[str] = (), by_audio: Callable[[np.ndarray], str] | None = None) -> None:
        self.transcripts = list(transcripts)
        self.by_audio = by_audio
        self.calls: list[int] = []
        """Length in samples of each utterance it was given."""

    def transcribe(self, audio: np.ndarray) -> Transcript:
        self.calls.append(len(audio))
        if self.by_audio is not None:
            return Transcript(self.by_audio(audio))
        return Transcript(self.transcripts.pop(0) if self.transcripts else "")

    def warm_up(self) -> None:
        pass


class FakeLLM:
    """Streams scripted replies word by word; records every prompt it was given."""

    def __init__(self, replies: Sequence[str], fail_on: Sequence[int] = ()) -> None:
        self.replies = list(replies)
        self.prompts: list[list[Message]] = []
        self.fail_on = set(fail_on)
        """Call numbers (0-based) that raise mid-stream, to test recovery."""
        self.closed = threading.Event()
        """Set when a stream was closed before its end (a cancel reached the engine)."""
        self.prefilled: list[list[Message]] = []
        """Every prompt read ahead with ``prefill``."""

    def prefill(self, messages: Sequence[Message]) -> Iterator[int]:
        """Records the prompt; one step per message, as if each were a slice of tokens."""
        self.prefilled.append([dict(m) for m in messages])
        yield from range(1, len(messages) + 1)

    def stream(self, messages: Sequence[Message], max_tokens: int, tools: Sequence[dict[str, Any]] | None = None) -> Iterator[str]:
        call = len(self.prompts)
        self.prompts.append([dict(m) for m in messages])
        reply = self.replies.pop(0) if self.replies else "Okay."
        words = reply.split(" ")
        try:
            for i, word in enumerate(words[:max_tokens]):
                if call in self.fail_on and i == 1:
                    raise EngineError("fake LLM failure")
                yield word if i == 0 else " " + word
        except GeneratorExit:
            self.closed.set()
            raise

    def warm_up(self) -> None:
        pass


class ScriptedLLM:
    """Plays one scripted turn per call: text deltas and :class:`ToolCall` objects, in order.

    Records the messages and the tools of every call, so a test can check what the model was
    shown (a tool result fenced, a refusal). Past the script it says "Okay."
    """

    def __init__(self, turns: Sequence[Sequence[str | ToolCall]]) -> None:
        self.turns = [list(turn) for turn in turns]
        self.prompts: list[list[Message]] = []
        self.tools: list[list[dict[str, Any]] | None] = []

    def stream(self, messages: Sequence[Message], max_tokens: int, tools: Sequence[dict[str, Any]] | None = None) -> Iterator[str | ToolCall]:
        self.prompts.append([dict(m) for m in messages])
        self.tools.append(list(tools) if tools is not None else None)
        yield from self.turns.pop(0) if self.turns else ["Okay."]

    def warm_up(self) -> None:
        pass


class FakeTTS:
    """A 300 Hz tone, ``seconds_per_word`` long per word, in one chunk per call."""

    def __init__(self, sample_rate: int = 16000, seconds_per_word: float = 0.25) -> None:
        self.sample_rate = sample_rate
        self.seconds_per_word = seconds_per_word
        self.texts: list[str] = []
        self.rates: list[float] = []
        """The ``rate`` of each call."""

    def synthesize(self, text: str, rate: float = 1.0) -> Iterator[np.ndarray]:
        self.texts.append(text)
        self.rates.append(rate)
        n = int(len(text.split()) * self.seconds_per_word / rate * self.sample_rate)
        t = np.arange(n) / self.sample_rate
        yield (0.3 * 32767 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)

    def warm_up(self) -> None:
        pass
