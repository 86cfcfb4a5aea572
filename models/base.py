"""What the pipeline needs from each engine.

Engines are synchronous and expose generators: the pipeline runs them in a single-worker
thread executor and pulls one item at a time, so a cancel lands between tokens or chunks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class Transcript:
    text: str
    """Recognized text, stripped; empty when nothing credible was heard."""
    no_speech_prob: float = 0.0
    avg_logprob: float = 0.0
    dropped: str = ""
    """Text the engine produced but the filters rejected (for logs), with the reason."""


class ASR(Protocol):
    sample_rate: int
    """Hertz the engine expects (16 000 for Whisper)."""

    def transcribe(self, audio: np.ndarray) -> Transcript:
        """``audio``: float32 mono in [-1, 1] at ``sample_rate``."""
        ...

    def warm_up(self) -> None: ...


Message = dict[str, Any]
"""An OpenAI-style chat message: ``{"role": ..., "content": ...}``; in a tool round also an
assistant message with ``tool_calls`` and ``{"role": "tool", "tool_call_id", "content"}``."""


@dataclass(frozen=True)
class ToolCall:
    """A function call the model asked for. Nothing here is checked: it is the model's text."""

    id: str
    """The call's id, echoed in the tool message that answers it."""
    name: str
    arguments: str
    """JSON text of the arguments, exactly as the model wrote it."""


def tool_calls_message(calls: Sequence[ToolCall]) -> Message:
    """The assistant's turn that asked for ``calls``, in the OpenAI format. Its content is ""
    rather than null: llama_cpp.server refuses null, and chat templates written without tools
    (SmolLM2's) fail on a message that has no content."""
    return {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in calls
        ],
    }


def tool_result_message(call_id: str, content: str) -> Message:
    return {"role": "tool", "tool_call_id": call_id, "content": content}


class LLM(Protocol):
    def stream(
        self, messages: Sequence[Message], max_tokens: int, tools: Sequence[dict[str, Any]] | None = None
    ) -> Iterator[str | ToolCall]:
        """Yield text deltas of the assistant's reply, and the :class:`ToolCall` objects it asks
        for when ``tools`` (OpenAI tools format) are offered. Closing the generator cancels."""
        ...

    def warm_up(self) -> None: ...


class TTS(Protocol):
    sample_rate: int
    """Hertz of the audio ``synthesize`` yields."""

    def synthesize(self, text: str, rate: float = 1.0) -> Iterator[np.ndarray]:
        """Yield int16 mono chunks speaking ``text``; ``rate`` > 1 speaks faster than the voice's
        own pace. (Callers pass ``rate`` only when it is not 1.)"""
        ...

    def warm_up(self) -> None: ...
