"""How long the assistant's voice takes to come back into the microphone, in 10 ms frames.

Found by correlating the *onsets* of the played audio with those of the microphone: the frame
to frame change of their log energy, over every lag the detector watches. Level envelopes
themselves correlate at many lags (speech pauses are long, syllables come every ~200 ms);
their changes peak sharply at the echo's delay. The estimate is given only once it is clear:
enough frames heard, a peak correlation of ``min_corr``, standing ``contrast`` above any lag
more than ``peak_width`` frames away, and the same (within a frame) for ``stable_frames``.

Feed it only frames where the assistant plays and nobody talks over it (the caller knows).
Pure numpy, no clocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class EchoDelayConfig:
    smoothing: float = 0.995
    """Weight of the past in the running correlation, per frame fed (about 2 s of memory)."""
    warmup_frames: int = 80
    """Frames fed before any estimate (0.8 s of the assistant's voice)."""
    min_corr: float = 0.5
    contrast: float = 0.2
    peak_width: int = 5
    stable_frames: int = 30
    """Frames the estimate must hold before it is trusted."""


class EchoDelayEstimator:
    def __init__(self, lags: int, config: EchoDelayConfig | None = None) -> None:
        self.config = config or EchoDelayConfig()
        self.lags = lags
        self._far = np.zeros(lags)
        """Onset strength of the played audio, newest first."""
        self._last_far = 0.0
        self._last_mic = 0.0
        self._mean_far = np.zeros(lags)
        self._mean_mic = 0.0
        self._var_far = np.zeros(lags)
        self._var_mic = 0.0
        self._cov = np.zeros(lags)
        self.fed = 0
        self.lag = 0
        """The best lag so far, trusted or not (frames)."""
        self.delay: int | None = None
        """The trusted delay (frames), or None before any."""
        self._held = 0
        self._candidate = -(10**6)
        self._mic_onset = 0.0

    def observe(self, far_db: float, mic_db: float) -> None:
        """Every frame: the played and captured energy (dB, any reference). Keeps the played
        history aligned; learns nothing."""
        self._far = np.roll(self._far, 1)
        self._far[0] = far_db - self._last_far
        self._last_far = far_db
        self._mic_onset = mic_db - self._last_mic
        self._last_mic = mic_db

    def learn(self) -> None:
        """Take the frame just observed into the correlation (echo alone was playing)."""
        c = self.config
        a = c.smoothing
        x, m = self._far, self._mic_onset
        self._mean_far = a * self._mean_far + (1 - a) * x
        self._mean_mic = a * self._mean_mic + (1 - a) * m
        dx, dm = x - self._mean_far, m - self._mean_mic
        self._var_far = a * self._var_far + (1 - a) * dx * dx
        self._var_mic = a * self._var_mic + (1 - a) * dm * dm
        self._cov = a * self._cov + (1 - a) * dx * dm
        self.fed += 1
        corr = self._cov / np.sqrt(self._var_far * self._var_mic + 1e-12)
        self.lag = k = int(np.argmax(corr))
        away = np.abs(np.arange(self.lags) - k) > c.peak_width
        clear = (
            self.fed > c.warmup_frames
            and corr[k] > c.min_corr
            and corr[k] - (corr[away].max() if away.any() else 0.0) > c.contrast
        )
        self._held = self._held + 1 if clear and abs(k - self._candidate) <= 1 else 0
        self._candidate = k if clear else -(10**6)
        if self._held >= c.stable_frames:
            self.delay = k  # kept until another is as clear (between replies there is none)
