"""Every frame that flows through the pipeline, in one file.

Three roots, as in pipecat:

* ``SystemFrame``: start, stop, interrupt, speech-started, errors. Never dropped, and they
  overtake queued data (see ``FrameQueue``).
* ``DataFrame``: audio, transcripts, tokens, sentences, synthesized audio. Each carries the
  ``turn_id`` it belongs to; an interrupt bumps the turn id and stale data is dropped.
* ``ControlFrame``: ordered markers within the data stream (end of a reply).

Frames are small frozen dataclasses; audio payloads are numpy arrays that no stage mutates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Frame:
    pass


# --- system frames ------------------------------------------------------------------------


@dataclass(frozen=True)
class SystemFrame(Frame):
    pass


@dataclass(frozen=True)
class StartFrame(SystemFrame):
    pass


@dataclass(frozen=True)
class StopFrame(SystemFrame):
    """No more input: stages finish what they hold, pass this on, and end."""


@dataclass(frozen=True)
class InterruptFrame(SystemFrame):
    """The user spoke over the assistant: drop everything older than ``turn_id``."""

    turn_id: int


@dataclass(frozen=True)
class SpeechStartedFrame(SystemFrame):
    turn_id: int
    at_s: float
    """Seconds on the session timeline where voiced audio began."""


@dataclass(frozen=True)
class ErrorFrame(SystemFrame):
    turn_id: int
    stage: str
    message: str


# --- data frames ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DataFrame(Frame):
    turn_id: int


@dataclass(frozen=True, eq=False)
class AudioFrame(DataFrame):
    """PCM audio with its format stated."""

    samples: np.ndarray
    """int16 samples, shape (n,) for mono."""
    sample_rate: int
    """Hertz."""
    start_s: float = 0.0
    """Timeline seconds of the first sample."""
    channels: int = 1
    reference: np.ndarray | None = None
    """Microphone audio only: int16 speaker audio that was playing during this block (same
    length and rate), for the echo canceller. None: nothing known to be playing."""

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclass(frozen=True, eq=False)
class RestoredAudioFrame(AudioFrame):
    """Microphone audio already sent on (cleaned) from ``start_s``, again, without the echo
    canceller's hold on the near end (the double-talk detector's echo-reduced microphone): at
    an onset of double talk it replaces what the canceller held down, so the words that
    started over the assistant are heard from the first."""


@dataclass(frozen=True, eq=False)
class UtteranceFrame(DataFrame):
    """One user utterance, cut by the endpointer, ready for recognition."""

    samples: np.ndarray
    """int16 mono at ``sample_rate``."""
    sample_rate: int
    start_s: float
    """Timeline seconds of the first voiced sample (pre-roll excluded)."""
    end_s: float
    """Timeline seconds of the last voiced sample."""
    endpoint_ms: float
    """Silence waited after the last voiced sample before the turn was closed."""
    final: bool = True
    """False for a piece of a long utterance: more of the same turn follows."""
    voiced_ms: float = 0.0
    provisional: bool = False
    """Sent after a short pause for a head start; its reply waits for the endpoint."""


@dataclass(frozen=True, eq=False)
class PartialUtteranceFrame(DataFrame):
    """The utterance so far, while the user is still speaking: recognised early so the language
    model can read the words into its cache before the turn ends. Nothing is answered from it."""

    samples: np.ndarray
    """int16 mono at ``sample_rate``."""
    sample_rate: int


@dataclass(frozen=True)
class PartialTranscriptFrame(DataFrame):
    """The words of a ``PartialUtteranceFrame`` that will likely stand (the last one, perhaps
    cut mid-word, left out): for the language model's prefill only."""

    text: str


@dataclass(frozen=True)
class TranscriptFrame(DataFrame):
    text: str
    end_s: float
    """Timeline seconds of the last voiced sample of the utterance."""
    asr_ms: float
    provisional: bool = False
    """Heard at a short pause: the turn may still be taken back if the user goes on."""


@dataclass(frozen=True)
class SpeakFrame(DataFrame):
    """Say this as the turn's reply, without asking the language model (apologies, commands)."""

    text: str


@dataclass(frozen=True)
class SentenceFrame(DataFrame):
    """A speakable chunk of the reply (a clause or sentence), already cleaned for speech."""

    text: str
    index: int


@dataclass(frozen=True, eq=False)
class TTSAudioFrame(DataFrame):
    samples: np.ndarray
    """int16 mono."""
    sample_rate: int
    text: str
    """The sentence this audio is part of (one sentence may come in several chunks)."""
    sentence_index: int


NO_TURN = -1
"""Turn id of microphone audio: it belongs to no reply and an interrupt never flushes it."""


def is_stale(frame: Frame, current_turn: int) -> bool:
    """Data or control of a turn older than ``current_turn``: must not reach the user."""
    turn_id = getattr(frame, "turn_id", NO_TURN)
    return not isinstance(frame, SystemFrame) and turn_id != NO_TURN and turn_id < current_turn


# --- control frames -------------------------------------------------------------------------


@dataclass(frozen=True)
class ControlFrame(Frame):
    turn_id: int


@dataclass(frozen=True)
class ReplyEndFrame(ControlFrame):
    """The reply for ``turn_id`` is complete upstream (all text generated / synthesized)."""

    text: str = ""
    timings: dict[str, float] = field(default_factory=dict)
