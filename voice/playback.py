"""The output buffer between speech synthesis and the speaker.

The pipeline appends synthesized segments; the device (a PortAudio callback, or the replay
device's tick) pulls exactly the samples it plays. Because the device is the one that pulls,
the buffer knows what was really heard: the first audible sample of each turn, when a turn's
audio ran out, and, on a barge-in, how much of each segment had played.

``read`` is called from the audio thread: it never blocks on anything but a short lock and
reports events through a callback that must itself only hand over (``call_soon_threadsafe``).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class Segment:
    turn_id: int
    samples: np.ndarray
    """int16 mono at the buffer's rate."""
    text: str
    """The sentence this segment is part of."""
    key: int = 0
    """Which sentence of the turn; a sentence may come in several segments."""
    played: int = 0
    """Samples already handed to the device."""


@dataclass(frozen=True)
class PlayedSegment:
    text: str
    key: int
    played: int
    total: int

    @property
    def fraction(self) -> float:
        return self.played / self.total if self.total else 1.0


@dataclass(frozen=True)
class PlaybackEvent:
    kind: str
    """``"first_audio"`` (first audible sample of a turn) or ``"drained"`` (turn fully played)."""
    turn_id: int
    at_s: float
    """Timeline seconds at which it happened."""


class OutputBuffer:
    def __init__(
        self,
        sample_rate: int,
        on_event: Callable[[PlaybackEvent], None] | None = None,
        audible_threshold: float = 0.01,
    ) -> None:
        self.sample_rate = sample_rate
        self.on_event = on_event
        self._threshold = int(audible_threshold * 32767)
        self._lock = threading.Lock()
        self._segments: collections.deque[Segment] = collections.deque()
        self._heard_turns: set[int] = set()
        self._ended_turns: set[int] = set()
        self._history: dict[int, list[Segment]] = {}
        self.underruns = 0
        """Reads that found a turn's audio not yet synthesized while the turn was still going."""
        self.volume = 1.0
        self.paused = False
        """Hold the audio where it is (the user may be taking the floor): reads give silence."""

    def append(self, turn_id: int, samples: np.ndarray, text: str = "", key: int = 0) -> None:
        seg = Segment(turn_id, samples, text, key)
        with self._lock:
            self._segments.append(seg)
            self._history.setdefault(turn_id, []).append(seg)

    def end_turn(self, turn_id: int) -> None:
        """No more audio will come for ``turn_id``: report ``drained`` once it has played out."""
        with self._lock:
            self._ended_turns.add(turn_id)

    def pending_samples(self) -> int:
        with self._lock:
            return sum(len(s.samples) - s.played for s in self._segments)

    def is_playing(self) -> bool:
        return self.pending_samples() > 0

    def pause(self) -> None:
        """Stop sound at the next read, keeping the rest to resume or to clear."""
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def read(self, n: int, at_s: float) -> np.ndarray:
        """Pull ``n`` samples (silence where there is nothing); ``at_s``: when they start playing."""
        out = np.zeros(n, dtype=np.int16)
        events: list[PlaybackEvent] = []
        filled = 0
        with self._lock:
            while filled < n and self._segments and not self.paused:
                seg = self._segments[0]
                take = min(n - filled, len(seg.samples) - seg.played)
                chunk = seg.samples[seg.played : seg.played + take]
                if seg.turn_id not in self._heard_turns:
                    loud = np.flatnonzero(np.abs(chunk.astype(np.int32)) > self._threshold)
                    if len(loud):
                        self._heard_turns.add(seg.turn_id)
                        t = at_s + (filled + int(loud[0])) / self.sample_rate
                        events.append(PlaybackEvent("first_audio", seg.turn_id, t))
                out[filled : filled + take] = chunk
                seg.played += take
                filled += take
                if seg.played >= len(seg.samples):
                    self._segments.popleft()
                    if not any(s.turn_id == seg.turn_id for s in self._segments):
                        if seg.turn_id in self._ended_turns:
                            t = at_s + filled / self.sample_rate
                            events.append(PlaybackEvent("drained", seg.turn_id, t))
                            self._ended_turns.discard(seg.turn_id)
                        else:
                            self.underruns += 1
            # A turn whose end came after its audio ran out (or that had no audio) drains now.
            for turn_id in [] if self.paused else list(self._ended_turns):
                if not any(s.turn_id == turn_id for s in self._segments):
                    self._ended_turns.discard(turn_id)
                    events.append(PlaybackEvent("drained", turn_id, at_s + filled / self.sample_rate))
        if self.volume != 1.0 and filled:
            out = np.clip(out.astype(np.float32) * self.volume, -32768, 32767).astype(np.int16)
        if self.on_event is not None:
            for event in events:
                self.on_event(event)
        return out

    def clear(self) -> None:
        """Stop at once: drop everything queued (a barge-in or a stop)."""
        with self._lock:
            self._segments.clear()
            self._ended_turns.clear()
            self.paused = False

    def played(self, turn_id: int) -> list[PlayedSegment]:
        """What of ``turn_id`` reached the speaker, segment by segment."""
        with self._lock:
            return [PlayedSegment(s.text, s.key, s.played, len(s.samples)) for s in self._history.get(turn_id, [])]

    def spoken_text(self, turn_id: int) -> str:
        """Every sentence of ``turn_id`` handed to the buffer, as it is spoken (numbers as
        words), played or not."""
        texts: dict[int, str] = {}
        for seg in self.played(turn_id):
            texts.setdefault(seg.key, seg.text)
        return " ".join(texts[k] for k in sorted(texts))

    def heard_text(self, turn_id: int) -> str:
        """The words of ``turn_id`` that reached the speaker: whole sentences played, then the
        words of the cut sentence in proportion to its audio played."""
        played: dict[int, list[int]] = {}
        texts: dict[int, str] = {}
        for seg in self.played(turn_id):
            counts = played.setdefault(seg.key, [0, 0])
            counts[0] += seg.played
            counts[1] += seg.total
            texts[seg.key] = seg.text
        words: list[str] = []
        for key in sorted(played):
            done, total = played[key]
            sentence = texts[key].split()
            if done >= total:
                words += sentence
            else:
                words += sentence[: int(len(sentence) * done / total)] if total else []
                break
        return " ".join(words)

    def forget(self, turn_id: int) -> None:
        with self._lock:
            self._history.pop(turn_id, None)
