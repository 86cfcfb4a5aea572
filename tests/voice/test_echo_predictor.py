"""The echo predictor on real speech through the replay's simulated echo path."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import recording

from voxloop.voice.audio_file import iter_audio
from voxloop.voice.echo_path import EchoPath, EchoPathConfig
from voxloop.voice.echo_predictor import EchoPredictor

RATE = 16000
HOP = 160
WINDOW = np.sqrt(np.hanning(2 * HOP + 1)[:-1])


def speech(name: str) -> np.ndarray:
    x = np.concatenate(list(iter_audio(recording(name).path, target_rate=RATE)))
    return x * (0.1 / np.sqrt(np.mean(x**2))) * 32767  # -20 dBFS


def spectra(x: np.ndarray) -> np.ndarray:
    """20 ms windows every 10 ms, as the double-talk detector takes them."""
    x = np.concatenate([np.zeros(HOP), x[: len(x) // HOP * HOP]])
    return np.array([np.fft.rfft(x[i : i + 2 * HOP] * WINDOW) for i in range(0, len(x) - HOP, HOP)])


def echo_of(played: np.ndarray, echo: EchoPathConfig) -> np.ndarray:
    path = EchoPath(echo, RATE)
    return np.concatenate([path.process(played[i : i + 320]) for i in range(0, len(played), 320)])[: len(played)]


PLAYED = np.concatenate([speech("arctic_a0024.wav"), speech("ldc93s1.wav"), speech("spk1_snt1.wav")])


def run(echo: EchoPathConfig, user: np.ndarray | None = None, learn_until_s: float = 1e9) -> tuple[np.ndarray, np.ndarray]:
    """Per hop, the microphone's power and the residual's (the predictor learning every hop
    before ``learn_until_s``)."""
    mic = echo_of(PLAYED, echo)
    if user is not None:
        mic[-len(user) :] += user[: len(mic)]
    far, near = spectra(PLAYED), spectra(mic)
    predictor = EchoPredictor(taps=40, bins=far.shape[1], regularisation=1e6)
    mic_power, residual_power = [], []
    for k in range(len(far)):
        residual = predictor.push(far[k], near[k])
        if k * HOP / RATE < learn_until_s:
            predictor.adapt()
        mic_power.append(np.sum(np.abs(near[k]) ** 2))
        residual_power.append(np.sum(np.abs(residual) ** 2))
    return np.array(mic_power), np.array(residual_power)


def db(x: float) -> float:
    return 10 * float(np.log10(x))


@pytest.mark.parametrize(
    ("echo", "least_db"), [(EchoPathConfig(120, -6, room=True), 12.0), (EchoPathConfig(20, -3), 25.0)], ids=["room", "no-room"]
)
def test_after_a_few_seconds_of_the_assistant_it_predicts_most_of_its_echo(echo: EchoPathConfig, least_db: float) -> None:
    mic, residual = run(echo)
    last = slice(-200, None)  # the last two seconds
    assert db(mic[last].sum() / residual[last].sum()) >= least_db


def test_a_voice_over_the_echo_is_left_in_the_residual() -> None:
    # Learnt on the assistant alone, then frozen (as the detector does while someone talks):
    # the user's voice is not in the played audio, so nothing of it is predicted away.
    user = speech("spk2_snt1.wav")[: 2 * RATE]
    learn_until = (len(PLAYED) - len(user)) / RATE
    _, without = run(EchoPathConfig(120, -6, room=True), learn_until_s=learn_until)
    _, with_user = run(EchoPathConfig(120, -6, room=True), user, learn_until_s=learn_until)
    last = slice(-len(user) // HOP, None)
    voice = np.sum(np.abs(spectra(np.concatenate([np.zeros(len(PLAYED) - len(user)), user]))[last]) ** 2)
    assert abs(db((with_user[last].sum() - without[last].sum()) / voice)) <= 1.0
    assert db(with_user[last].sum() / without[last].sum()) >= 10.0


def test_it_learns_nothing_unless_told_to() -> None:
    mic, residual = run(EchoPathConfig(120, -6, room=True), learn_until_s=0.0)
    np.testing.assert_allclose(residual, mic)
