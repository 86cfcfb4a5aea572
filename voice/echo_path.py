"""A simulated acoustic echo path: what a microphone hears of the speaker.

The replay device uses it to test echo cancellation without hardware: each block the speaker
plays goes through a delay line, a gain and (optionally) a synthetic room, and the result is
added to the microphone block, before anything in the pipeline sees it, as a real room would.

The room is a seeded impulse response: a direct path followed by exponentially decaying noise
(RT60 ``rt60_s``), normalised to unit energy so that ``gain_db`` stays the echo's level relative
to the played audio. It is applied block by block (overlap-add), so the echo is streamed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class EchoPathError(ValueError):
    """An echo path that no room produces (negative delay, gain above 0 dB)."""


@dataclass(frozen=True)
class EchoPathConfig:
    delay_ms: float = 120.0
    """Milliseconds from the speaker playing a sample to the microphone picking it up."""
    gain_db: float = -6.0
    """Level of the echo relative to the played audio, dB (0 or less)."""
    room: bool = False
    """Add a synthetic room's reverberation after the direct path."""
    rt60_s: float = 0.3
    """Seconds for the room's reverberation to decay by 60 dB."""
    seed: int = 0
    """Seed of the room's noise: the same seed, the same room."""

    def check(self) -> None:
        if not self.delay_ms >= 0:
            raise EchoPathError(f"echo delay {self.delay_ms:g} ms: give 0 ms or more")
        if not self.gain_db <= 0:
            raise EchoPathError(f"echo gain {self.gain_db:g} dB: give 0 dB or less (the echo is never louder than the speaker)")
        if not self.rt60_s > 0:
            raise EchoPathError(f"room RT60 {self.rt60_s:g} s: give more than 0 s")


def room_impulse_response(rt60_s: float, sample_rate: int, seed: int = 0) -> np.ndarray:
    """A direct path then decaying noise, ``rt60_s`` long, unit energy, float64."""
    n = max(2, int(rt60_s * sample_rate))
    rng = np.random.default_rng(seed)
    decay = 10 ** (-3 * np.arange(n) / n)  # -60 dB at n samples
    h = rng.standard_normal(n) * decay
    h[0] = 0.0
    h *= np.sqrt(0.5 / np.sum(h**2))  # the reverberant tail carries a third of the energy
    h[0] = 1.0
    return h / np.sqrt(np.sum(h**2))


class EchoPath:
    """Streams speaker blocks in, echo blocks (float64, same length) out."""

    def __init__(self, config: EchoPathConfig, sample_rate: int) -> None:
        config.check()
        self.config = config
        self.sample_rate = sample_rate
        self.delay = int(round(config.delay_ms * sample_rate / 1000))
        """Samples."""
        self.gain = 10 ** (config.gain_db / 20)
        self._ir = room_impulse_response(config.rt60_s, sample_rate, config.seed) if config.room else None
        self._line = np.zeros(self.delay, dtype=np.float64)
        """Played audio not yet heard: the delay line."""
        self._tail = np.zeros(0 if self._ir is None else len(self._ir) - 1, dtype=np.float64)
        """The room's reverberation of past blocks still to come."""

    def process(self, played: np.ndarray) -> np.ndarray:
        """What the microphone hears, during this block, of everything played so far."""
        x = played.astype(np.float64) * self.gain
        if self._ir is not None:
            y = np.convolve(x, self._ir)
            y[: len(self._tail)] += self._tail
            x, self._tail = y[: len(played)], y[len(played) :]
        line = np.concatenate([self._line, x])
        self._line = line[len(played) :]
        return line[: len(played)]


def mix_into(mic: np.ndarray, echo: np.ndarray) -> np.ndarray:
    """``mic`` + ``echo``, clipped to int16, as a microphone's converter would."""
    return np.clip(np.rint(mic.astype(np.float64) + echo), -32768, 32767).astype(np.int16)
