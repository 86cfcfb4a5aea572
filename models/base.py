"""What the pipeline needs from each engine.

Engines are synchronous and expose generators: the pipeline runs them in a single-worker
thread executor and pulls one item at a time, so a cancel lands between tokens or chunks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

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


Message = dict[str, str]
"""An OpenAI-style chat message: ``{"role": ..., "content": ...}``."""


class LLM(Protocol):
    def stream(self, messages: Sequence[Message], max_tokens: int) -> Iterator[str]:
        """Yield text deltas of the assistant's reply. Closing the generator cancels."""
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
