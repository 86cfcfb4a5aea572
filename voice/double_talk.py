"""Is someone talking over the assistant? Decided on the raw microphone, not the cleaned one.

The echo canceller (WebRTC AEC3) is conservative while the assistant speaks: its suppressor
holds the near end down during the first few hundred milliseconds of double talk (measured
-16 dB with a -6 dB echo, over -50 dB with no echo at all, as with a headset). A voice detector
behind it hears the user late and without their first word. So barge-in looks at the
microphone before the canceller, compared with what the assistant is playing:

- the *echo coupling* (ERL) is learnt while the assistant talks alone: the highest ratio of
  the microphone's energy to the loudest played energy in the last ``window_ms`` (which covers
  any echo delay and the room's tail), forgotten at ``erl_decay_db_per_s``;
- a 10 ms frame is *double talk* when the microphone carries ``margin_db`` more than that
  echo could explain, and WebRTC's VAD calls it voiced. ``onset_frames`` of those in a row
  mark the start; ``release_ms`` without them, the end.

Pure logic on int16 frames; no threads, no clocks.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .vad import WebRtcVad


@dataclass
class DoubleTalkConfig:
    sample_rate: int = 16000
    frame_ms: int = 10
    window_ms: int = 400
    """How far back the loudest played frame is looked for: the room's delay and tail. The
    sound card's own delay (``set_delay_ms``) comes on top."""
    margin_db: float = 6.0
    """How much more than the echo the microphone must carry to be someone talking."""
    onset_frames: int = 3
    """Frames of double talk in a row that make an onset (30 ms)."""
    release_ms: int = 200
    """Quiet that ends a stretch of double talk."""
    initial_erl_db: float = 0.0
    """Echo coupling assumed before any has been measured: as loud as the speaker (cautious)."""
    erl_decay_db_per_s: float = 6.0
    """How fast a coupling that is not heard again is forgotten."""
    erl_rise_db_per_frame: float = 1.0
    """How fast the learnt coupling may grow: slower than a voice's onset."""
    settle_ms: int = 800
    """Played audio heard before any onset is reported: the coupling is learnt (and the echo
    canceller converges) over the assistant's first words."""
    gap_ms: int = 1500
    """Silence in the played audio that still counts as the assistant's turn (between sentences)."""
    far_floor_dbfs: float = -50.0
    """Played audio quieter than this is silence: nothing to talk over."""


class DoubleTalkDetector:
    def __init__(self, config: DoubleTalkConfig | None = None, vad: WebRtcVad | None = None) -> None:
        self.config = c = config or DoubleTalkConfig()
        self.frame = c.sample_rate * c.frame_ms // 1000
        self.vad = vad or WebRtcVad(3, c.sample_rate)
        self._far: collections.deque[float] = collections.deque(maxlen=max(1, c.window_ms // c.frame_ms))
        self._erl = 10 ** (c.initial_erl_db / 10)
        self._margin = 10 ** (c.margin_db / 10)
        self._decay = 10 ** (-c.erl_decay_db_per_s * c.frame_ms / 1000 / 10)
        self._rise = 10 ** (c.erl_rise_db_per_frame / 10)
        self._floor = (32768.0 * 10 ** (c.far_floor_dbfs / 20)) ** 2
        self._run = 0
        self._quiet = 0
        self._heard_far = 0
        """Frames of played audio so far."""
        self._since_far = 10**9
        """Frames since audio was last played."""
        self._settle = c.settle_ms // c.frame_ms
        self.active = False
        """Someone is talking over the played audio now."""
        self.mid_reply: Callable[[], bool] = lambda: False
        """Whether more of a reply is waiting to play (set by whoever owns the playback)."""

    def set_delay_ms(self, ms: float) -> None:
        """The sound card's delay from playing to capturing: the echo comes that much later."""
        c = self.config
        frames = max(1, int((max(0.0, ms) + c.window_ms) // c.frame_ms))
        self._far = collections.deque(self._far, maxlen=frames)

    @property
    def erl_db(self) -> float:
        """The echo coupling learnt so far (microphone over played energy), dB."""
        return 10 * float(np.log10(self._erl + 1e-12))

    def push(self, mic: np.ndarray, played: np.ndarray) -> bool | None:
        """One frame each (int16, ``frame`` samples, same moment). True at an onset of double
        talk, False at its end, None otherwise."""
        c = self.config
        far = float(np.mean(played.astype(np.float64) ** 2))
        self._far.append(far)
        far_max = max(self._far)
        if far_max >= self._floor:
            self._heard_far += 1
            self._since_far = 0
        else:
            # A pause between the assistant's sentences, with more of the reply still to play,
            # is still its turn, and the canceller still holds a voice down in it.
            self._since_far += 1
            if self._since_far * c.frame_ms > c.gap_ms or not self.mid_reply():
                return self._end() if self.active else None
        near = float(np.mean(mic.astype(np.float64) ** 2))
        ratio = near / max(far_max, self._floor)
        talking = ratio > self._erl * self._margin and self.vad.is_speech(mic)
        if not talking and not self.active:
            # The loudest coupling heard from the assistant talking alone, forgotten slowly
            # (echo peaks come at every syllable and renew it; a headset's never do).
            # It may rise only so fast: a voice starting over the echo climbs faster and is
            # caught before it can teach the detector that it is echo.
            self._erl = min(ratio, self._erl * self._rise) if ratio > self._erl else self._erl * self._decay
        if talking:
            self._run += 1
            self._quiet = 0
            if not self.active and self._run >= c.onset_frames and self._heard_far >= self._settle:
                self.active = True
                return True
        else:
            self._run = 0
            if self.active:
                self._quiet += 1
                if self._quiet * c.frame_ms >= c.release_ms:
                    return self._end()
        return None

    def _end(self) -> bool:
        self.active = False
        self._run = self._quiet = 0
        return False
