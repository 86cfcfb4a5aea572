"""Voice activity detection and endpointing: where an utterance starts and where it ends.

``WebRtcVad`` classifies 10/20/30 ms frames of 16 kHz int16 audio. ``Endpointer`` turns that
frame-by-frame verdict into utterances: it confirms the start of speech once enough of a short
window is voiced (so a click is not a turn), keeps some pre-roll so the first word is whole,
and closes the utterance after a stretch of silence (the hangover).
"""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)


class WebRtcVad:
    """The WebRTC GMM voice detector, with an energy floor.

    webrtcvad normalises level, so it happily calls faint hiss "speech"; frames quieter than
    ``min_dbfs`` are treated as silence before it is asked.
    """

    def __init__(self, aggressiveness: int = 2, sample_rate: int = 16000, min_dbfs: float = -55.0):
        try:
            import webrtcvad
        except ImportError as e:  # pragma: no cover - a declared dependency
            raise ImportError("webrtcvad is missing: pip install webrtcvad-wheels") from e
        self._vad = webrtcvad.Vad(aggressiveness)
        self.sample_rate = sample_rate
        self._min_rms = 32768.0 * 10 ** (min_dbfs / 20)

    def is_speech(self, frame: np.ndarray) -> bool:
        """``frame``: int16 mono, 10, 20 or 30 ms long."""
        rms = float(np.sqrt(np.mean(frame.astype(np.float32) ** 2))) if len(frame) else 0.0
        if rms < self._min_rms:
            return False
        return bool(self._vad.is_speech(frame.tobytes(), self.sample_rate))


@dataclass
class EndpointerConfig:
    frame_ms: int = 20
    """Length of each frame fed to the VAD."""
    start_window_ms: int = 200
    """Window in which speech onset is judged."""
    start_voiced_ms: int = 100
    """Voiced time within the window that confirms speech has started."""
    pre_roll_ms: int = 300
    """Audio kept from before the confirmed onset so the first word is whole."""
    hangover_ms: int = 500
    """Silence after the last voiced frame that ends the utterance (``set_hangover`` may
    change it for the utterance in progress, e.g. once its words sound complete)."""
    speculate_ms: int = 100
    """Silence after which a provisional end is announced (``SpeechPaused``), so recognition
    and the reply can start during the hangover. 0: never."""
    min_voiced_ms: int = 200
    """Utterances with less voiced audio than this are dropped as noise."""
    soft_max_utterance_s: float = 14.0
    """Past this, a long utterance is cut at its next unvoiced frame and sent on in pieces..."""
    max_utterance_s: float = 20.0
    """...and here at the latest, so nothing grows without bound. Whisper drops sentences from
    dense windows near its 30 s limit; pieces this size transcribe as well as short turns."""


@dataclass(frozen=True)
class SpeechStart:
    at_s: float
    """Timeline seconds of the first voiced frame."""
    continued: bool = False
    """Speech going on after a ``max_utterance_s`` cut: the same utterance, not a new one."""


@dataclass(frozen=True)
class SpeechEnd:
    samples: np.ndarray
    """int16 mono: pre-roll + speech + the trailing silence that was waited."""
    start_s: float
    end_s: float
    """Timeline seconds where the last voiced frame ends."""
    endpoint_ms: float
    """Silence waited after ``end_s`` before deciding."""
    voiced_ms: float
    final: bool = True
    """False for a piece cut at ``max_utterance_s``: more of the same utterance follows."""


@dataclass(frozen=True)
class SpeechPaused:
    """A provisional end: ``speculate_ms`` of silence. The utterance so far, for a head start."""

    samples: np.ndarray
    start_s: float
    end_s: float
    voiced_ms: float


@dataclass(frozen=True)
class SpeechResumed:
    """Speech came back after a ``SpeechPaused``: the provisional end was wrong."""

    at_s: float


@dataclass(frozen=True)
class SpeechDiscarded:
    """Onset was confirmed but too little was voiced: noise, a click, a cough."""

    at_s: float


EndpointEvent = SpeechStart | SpeechEnd | SpeechDiscarded | SpeechPaused | SpeechResumed


class Endpointer:
    """Feed fixed-size frames in order; get events back. Pure logic, no clocks or threads."""

    def __init__(self, vad: WebRtcVad, config: EndpointerConfig | None = None) -> None:
        self.vad = vad
        self.config = c = config or EndpointerConfig()
        self.frame_samples = vad.sample_rate * c.frame_ms // 1000
        self._window: collections.deque[bool] = collections.deque(maxlen=c.start_window_ms // c.frame_ms)
        # Pre-roll is counted back from the first voiced frame, which lies up to a window
        # before the frame that confirms the onset: keep both.
        self._pre_roll_frames = c.pre_roll_ms // c.frame_ms
        self._recent: collections.deque[np.ndarray] = collections.deque(maxlen=self._pre_roll_frames + self._window.maxlen)  # type: ignore[operator]
        self._continued = False
        self._reset()

    def _reset(self) -> None:
        self.in_speech = False
        self._continued = False
        self._paused = False
        self.hangover_ms = self.config.hangover_ms
        self._frames: list[np.ndarray] = []
        self._voiced_frames = 0
        self._silent_run = 0
        self._start_s = 0.0
        self._last_voiced_end_s = 0.0
        self._window.clear()

    def push(self, frame: np.ndarray, at_s: float) -> list[EndpointEvent]:
        """``frame``: int16 mono of ``frame_samples``; ``at_s``: timeline seconds of its start."""
        c = self.config
        voiced = self.vad.is_speech(frame)
        frame_s = c.frame_ms / 1000
        events: list[EndpointEvent] = []
        if not self.in_speech:
            self._window.append(voiced)
            self._recent.append(frame)
            if sum(self._window) * c.frame_ms >= c.start_voiced_ms:
                self.in_speech = True
                # The onset is the first voiced frame in the window, not the frame that confirmed it.
                back = len(self._window) - list(self._window).index(True)  # frames from onset to now
                self._start_s = at_s - (back - 1) * frame_s
                recent = list(self._recent)
                self._frames = recent[max(0, len(recent) - back - self._pre_roll_frames) :]
                self._voiced_frames = sum(self._window)
                self._silent_run = 0
                self._last_voiced_end_s = at_s + frame_s
                self._recent.clear()
                events.append(SpeechStart(self._start_s))
            return events

        self._frames.append(frame)
        if voiced:
            if self._continued and not self._voiced_frames:
                events.append(SpeechStart(self._start_s, continued=True))  # the cut utterance goes on
            if self._paused:
                self._paused = False
                events.append(SpeechResumed(at_s))
            self._voiced_frames += 1
            self._silent_run = 0
            self._last_voiced_end_s = at_s + frame_s
        else:
            self._silent_run += 1
            if (
                c.speculate_ms
                and self._silent_run * c.frame_ms == c.speculate_ms
                and self._voiced_frames * c.frame_ms >= c.min_voiced_ms
            ):
                self._paused = True
                events.append(
                    SpeechPaused(np.concatenate(self._frames), self._start_s, self._last_voiced_end_s, self._voiced_frames * c.frame_ms)
                )
        if self._silent_run * c.frame_ms >= self.hangover_ms:
            events += filter(None, [self._close(at_s + frame_s)])
        elif len(self._frames) * frame_s >= c.max_utterance_s or (
            not voiced and len(self._frames) * frame_s >= min(c.soft_max_utterance_s, c.max_utterance_s)
        ):
            # Too long to hold: send this piece on and go on listening without a new onset.
            events += filter(None, [self._close(at_s + frame_s, final=False)])
            self.in_speech = True
            self._continued = True
            self._start_s = self._last_voiced_end_s = at_s + frame_s
        return events

    def _close(self, now_s: float, final: bool = True) -> SpeechEnd | SpeechDiscarded | None:
        c = self.config
        voiced_ms = self._voiced_frames * c.frame_ms
        event: SpeechEnd | SpeechDiscarded | None
        if self._continued and voiced_ms == 0:
            # The rest of a cut utterance was only silence: it closes the utterance, holding
            # no speech, so whoever collects the pieces knows it is complete.
            event = SpeechEnd(
                samples=np.concatenate(self._frames) if self._frames else np.zeros(0, dtype=np.int16),
                start_s=self._start_s,
                end_s=self._start_s,
                endpoint_ms=(now_s - self._start_s) * 1000,
                voiced_ms=0,
                final=final,
            )
        elif voiced_ms < c.min_voiced_ms and not self._continued:
            event = SpeechDiscarded(self._start_s)
        else:
            event = SpeechEnd(
                samples=np.concatenate(self._frames),
                start_s=self._start_s,
                end_s=self._last_voiced_end_s,
                endpoint_ms=(now_s - self._last_voiced_end_s) * 1000,
                voiced_ms=voiced_ms,
                final=final,
            )
        self._reset()
        return event

    def replace_audio(self, frames: list[np.ndarray]) -> int:
        """Swap the audio of the latest ``frames`` kept (oldest first, each ``frame_samples``
        long, ending with the last frame pushed) for other audio of the same moments; the
        voice decisions stand. How many were replaced."""
        held = self._frames if self.in_speech else self._recent
        n = min(len(frames), len(held))
        for k in range(1, n + 1):
            held[len(held) - k] = frames[len(frames) - k]
        return n

    def utterance_so_far(self) -> np.ndarray:
        """The utterance in progress as heard up to now, pre-roll included (empty outside speech)."""
        if not (self.in_speech and self._frames):
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(self._frames)

    @property
    def silent_ms(self) -> int:
        """Silence since the last voiced frame of the utterance in progress (0 outside speech)."""
        return self._silent_run * self.config.frame_ms if self.in_speech else 0

    @property
    def voiced_ms(self) -> int:
        """Voiced time of the utterance in progress (0 outside speech)."""
        return self._voiced_frames * self.config.frame_ms if self.in_speech else 0

    @property
    def onset_voiced_ms(self) -> int:
        """Voiced time in the start window while no speech is confirmed (0 in speech): an
        early hint that someone may be starting to talk."""
        return 0 if self.in_speech else sum(self._window) * self.config.frame_ms

    def set_hangover(self, ms: int) -> None:
        """Change the silence that ends the utterance in progress (back to default after it)."""
        self.hangover_ms = ms

    def flush(self, now_s: float) -> list[EndpointEvent]:
        """End of input: close an open utterance rather than lose it."""
        return [e for e in [self._close(now_s)] if e is not None] if self.in_speech else []
