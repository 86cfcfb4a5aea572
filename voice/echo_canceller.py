"""Acoustic echo cancellation: take the assistant's own voice out of the microphone signal.

::

    speaker reference ──► process_reverse_stream (far end, 10 ms at a time)
    microphone        ──► process_stream (near end, 10 ms at a time) ──► cleaned microphone

The engine is the WebRTC audio processing module (AEC3, optional noise suppression, a
high-pass filter) that the ``livekit`` package ships as ``livekit.rtc.AudioProcessingModule``;
it runs in process, offline. AEC3 finds the echo path's delay by itself (tested up to 250 ms
of acoustic delay); ``set_delay_ms`` tells it the part of the delay the sound card adds
between the reference being handed over and the echo being captured.

Both streams must stay on one timeline: every microphone frame is preceded by exactly one
reference frame, silence when nothing plays, or the canceller's delay estimate drifts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

FRAME_MS = 10
"""The module processes exactly 10 ms at a time."""

LIVEKIT_HINT = "pip install livekit"


class EchoCancellerError(Exception):
    """The echo canceller cannot run (its package is missing, or a block has the wrong size)."""


@dataclass
class EchoCancellerConfig:
    sample_rate: int = 16000
    """Hertz of both the microphone and the reference (the pipeline's rate)."""
    noise_suppression: bool = True
    """WebRTC's noise suppressor after the canceller: also takes off residual echo and fan hum."""
    high_pass_filter: bool = True
    """Removes DC and rumble below ~80 Hz, which would otherwise confuse the echo estimate."""
    delay_ms: int = 0
    """Device delay: from the reference being handed to the speaker to its echo reaching
    ``process``, beyond what the two blocks' pairing already accounts for."""


def load_apm(noise_suppression: bool, high_pass_filter: bool) -> tuple[Any, Any]:
    """``livekit.rtc`` and a new ``AudioProcessingModule`` of it with echo cancellation on."""
    try:
        from livekit import rtc
    except ImportError as e:
        raise EchoCancellerError(
            f"echo cancellation needs the livekit package ({e}): {LIVEKIT_HINT}, or turn it off "
            "with --no-echo-cancel"
        ) from e
    apm = rtc.AudioProcessingModule(
        echo_cancellation=True, noise_suppression=noise_suppression, high_pass_filter=high_pass_filter
    )
    return rtc, apm


class EchoCanceller:
    """Removes the echo of ``reference`` from ``mic``, block by block, with state across blocks."""

    def __init__(self, config: EchoCancellerConfig | None = None) -> None:
        self.config = c = config or EchoCancellerConfig()
        self._rtc, self._apm = load_apm(c.noise_suppression, c.high_pass_filter)
        self.frame = c.sample_rate * FRAME_MS // 1000
        """Samples per 10 ms frame."""
        self._silence = np.zeros(self.frame, dtype=np.int16)
        self.frames = 0
        """10 ms frames processed so far."""
        self.set_delay_ms(c.delay_ms)

    def set_delay_ms(self, ms: float) -> None:
        self.delay_ms = max(0, int(round(ms)))
        self._apm.set_stream_delay_ms(self.delay_ms)

    def process(self, mic: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
        """``mic``: int16 mono, a multiple of 10 ms. ``reference``: what the speaker played during
        that block, same length (None: silence). Returns the cleaned block (a new array)."""
        n = len(mic)
        if n % self.frame:
            raise EchoCancellerError(f"echo canceller: a block of {n} samples is not a multiple of 10 ms ({self.frame})")
        if reference is not None and len(reference) != n:
            raise EchoCancellerError(f"echo canceller: reference of {len(reference)} samples for a block of {n}")
        out = np.empty(n, dtype=np.int16)
        rate = self.config.sample_rate
        for i in range(0, n, self.frame):
            ref = self._silence if reference is None else reference[i : i + self.frame]
            far = self._rtc.AudioFrame(np.ascontiguousarray(ref, dtype=np.int16).tobytes(), rate, 1, self.frame)
            self._apm.process_reverse_stream(far)
            # Delay is per stream frame in WebRTC: repeat it, as the module expects.
            self._apm.set_stream_delay_ms(self.delay_ms)
            near = self._rtc.AudioFrame(np.ascontiguousarray(mic[i : i + self.frame], dtype=np.int16).tobytes(), rate, 1, self.frame)
            self._apm.process_stream(near)
            out[i : i + self.frame] = np.frombuffer(near.data, dtype=np.int16)
            self.frames += 1
        return out
