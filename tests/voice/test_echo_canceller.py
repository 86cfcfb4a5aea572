"""The echo canceller on real speech: the real WebRTC module, real recordings as both ends.

The far end (what the speaker plays) is JFK's speech; the microphone hears it through the
simulated echo path at 20-250 ms and -20 to -3 dB, with the user's own sentence mixed in
partway. Figures measured on this machine are in docs/benchmarks.md; the limits below sit
well under them.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DATA

from voxloop.voice.audio_file import float_to_int16, iter_audio
from voxloop.voice.echo_canceller import EchoCanceller, EchoCancellerConfig, EchoCancellerError
from voxloop.voice.echo_path import EchoPath, EchoPathConfig, mix_into

RATE = 16000
BLOCK = 320
"""20 ms, the pipeline's block."""
CONVERGED_S = 3.0
"""The echo is measured from here on: AEC3 has converged (it takes about a second)."""
USER_AT_S = 7.0
"""Where the user starts talking over the far end (double talk)."""
MIN_ATTENUATION_DB = 45.0
"""Measured 52-94 dB over the grid below (63-94 dB with noise suppression)."""


def load(name: str) -> np.ndarray:
    return float_to_int16(np.concatenate(list(iter_audio(DATA / name, target_rate=RATE))))


def db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(x.astype(np.float64) ** 2) + 1e-9))


def envelope(x: np.ndarray) -> np.ndarray:
    """RMS per 20 ms: what a listener (or a VAD) follows, blind to the canceller's phase shifts."""
    x = x[: len(x) // BLOCK * BLOCK].astype(np.float64)
    return np.sqrt(np.mean(x.reshape(-1, BLOCK) ** 2, axis=1))


def run(echo: EchoPathConfig, user: np.ndarray | None, config: EchoCancellerConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(what the microphone picked up, what the canceller made of it), block by block."""
    far = load("jfk.flac")
    n = len(far) // BLOCK * BLOCK
    near = np.zeros(n, dtype=np.int16)
    if user is not None:
        at = int(USER_AT_S * RATE)
        near[at : at + len(user)] = user
    path, canceller = EchoPath(echo, RATE), EchoCanceller(config)
    mic = np.empty(n, dtype=np.int16)
    out = np.empty(n, dtype=np.int16)
    for i in range(0, n, BLOCK):
        mic[i : i + BLOCK] = mix_into(near[i : i + BLOCK], path.process(far[i : i + BLOCK]))
        out[i : i + BLOCK] = canceller.process(mic[i : i + BLOCK], far[i : i + BLOCK])
    return mic, out


GRID = [(d, g) for d in (20, 120, 250) for g in (-20, -6, -3)]


@pytest.mark.parametrize(("delay_ms", "gain_db"), GRID)
def test_the_echo_of_speech_falls_by_45_db_once_converged(delay_ms: int, gain_db: int) -> None:
    mic, out = run(EchoPathConfig(delay_ms, gain_db), None)
    echo_only = slice(int(CONVERGED_S * RATE), int(USER_AT_S * RATE))
    assert db(mic[echo_only]) > -60  # there was an echo to remove
    assert db(mic[echo_only]) - db(out[echo_only]) > MIN_ATTENUATION_DB


@pytest.mark.parametrize(("delay_ms", "gain_db"), [(20, -6), (250, -3)])
def test_the_echo_through_a_reverberant_room_falls_by_40_db(delay_ms: int, gain_db: int) -> None:
    """Measured 54-92 dB."""
    mic, out = run(EchoPathConfig(delay_ms, gain_db, room=True), None)
    echo_only = slice(int(CONVERGED_S * RATE), int(USER_AT_S * RATE))
    assert db(mic[echo_only]) - db(out[echo_only]) > 40


@pytest.mark.parametrize(("delay_ms", "gain_db"), [(20, -20), (120, -6), (250, -3)])
def test_the_user_talking_over_the_echo_comes_through(delay_ms: int, gain_db: int) -> None:
    """Double talk: the user's sentence keeps its level and its shape, better than the raw
    microphone's (measured: level -2 to -6 dB, envelope correlation 0.61-0.83)."""
    user = load("spk1_snt1.wav")
    mic, out = run(EchoPathConfig(delay_ms, gain_db), user)
    at = int(USER_AT_S * RATE)
    # The module's output lags its input by 14 ms (224 samples): compare like with like.
    lag = int(np.argmax([np.dot(out[at + k : at + k + len(user)].astype(np.float64), user) for k in range(0, 640, 16)])) * 16
    heard = out[at + lag : at + lag + len(user)]
    assert db(heard) - db(user) > -10
    kept = np.corrcoef(envelope(heard), envelope(user))[0, 1]
    raw = np.corrcoef(envelope(mic[at : at + len(user)]), envelope(user))[0, 1]
    assert kept > 0.5
    assert kept >= raw - 0.05


def test_without_a_reference_the_microphone_passes_nearly_unchanged() -> None:
    user = load("spk1_snt1.wav")
    canceller = EchoCanceller(EchoCancellerConfig(noise_suppression=False))
    n = len(user) // BLOCK * BLOCK
    out = np.concatenate([canceller.process(user[i : i + BLOCK], None) for i in range(0, n, BLOCK)])
    assert abs(db(out) - db(user[:n])) < 1.5
    assert canceller.frames == n // 160


def test_a_block_that_is_not_whole_10_ms_frames_is_refused() -> None:
    canceller = EchoCanceller()
    with pytest.raises(EchoCancellerError, match="not a multiple of 10 ms"):
        canceller.process(np.zeros(100, dtype=np.int16))
    with pytest.raises(EchoCancellerError, match="reference of 160 samples"):
        canceller.process(np.zeros(320, dtype=np.int16), np.zeros(160, dtype=np.int16))
