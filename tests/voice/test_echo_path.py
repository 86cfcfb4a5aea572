"""The replay device's simulated echo: what plays reaches the microphone at the exact delay and
gain, is recorded on the left channel, and comes with each block as the canceller's reference."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import DATA

from voxloop.voice.echo_path import EchoPath, EchoPathConfig, EchoPathError, mix_into, room_impulse_response
from voxloop.voice.playback import OutputBuffer
from voxloop.voice.recording import ConversationRecorder
from voxloop.voice.replay_device import ReplayDevice

RATE = 16000


def replay_with_echo(tmp_path: Path, echo: EchoPathConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Replay 2 s of a quiet user while the assistant plays a recorded sentence from the start.
    Returns (user input, microphone blocks, references, conversation.wav)."""
    user = (np.random.default_rng(1).standard_normal(2 * RATE) * 30).astype(np.int16)  # a quiet room
    sf.write(tmp_path / "in.wav", user, RATE, subtype="PCM_16")
    played, _ = sf.read(DATA / "spk1_snt1.wav", dtype="int16")
    output = OutputBuffer(RATE)
    output.append(1, played, "the child almost hurt the small dog")
    recorder = ConversationRecorder(tmp_path / "conversation.wav", RATE)
    device = ReplayDevice(tmp_path / "in.wav", output, recorder, paced=False, echo=echo)
    mics: list[np.ndarray] = []
    refs: list[np.ndarray] = []

    def on_input(block: np.ndarray, at_s: float, reference: np.ndarray | None) -> None:
        assert reference is not None and len(reference) == len(block)
        mics.append(block)
        refs.append(reference)

    asyncio.run(asyncio.wait_for(device.run(on_input, None, lambda: True), 10))
    recorder.close()
    conversation, _ = sf.read(tmp_path / "conversation.wav", dtype="int16")
    return user, np.concatenate(mics), np.concatenate(refs), conversation


@pytest.mark.parametrize(("delay_ms", "gain_db"), [(20, -20), (120, -6), (250, -3)])
def test_played_audio_reaches_the_microphone_at_the_delay_and_gain(tmp_path: Path, delay_ms: int, gain_db: int) -> None:
    user, mic, ref, conversation = replay_with_echo(tmp_path, EchoPathConfig(delay_ms, gain_db))
    # The reference is what the speaker played, one block after it was pulled.
    first = int(np.flatnonzero(ref)[0])
    assert first == 320  # pulled at tick 0, playing during block 1
    delay = delay_ms * RATE // 1000
    expected = np.zeros(len(mic))
    expected[delay:] = ref[: len(mic) - delay] * 10 ** (gain_db / 20)
    assert np.abs(mic.astype(np.float64) - user[: len(mic)] - expected).max() <= 0.5
    # conversation.wav's left channel is what the microphone picked up: the user plus the echo.
    assert np.array_equal(conversation[: len(mic), 0], mic)
    assert np.array_equal(conversation[: len(ref), 1], ref)


def test_the_room_streams_the_same_echo_as_one_convolution(tmp_path: Path) -> None:
    echo = EchoPathConfig(120, -6, room=True)
    user, mic, ref, _ = replay_with_echo(tmp_path, echo)
    ir = room_impulse_response(echo.rt60_s, RATE, echo.seed)
    delay = 120 * RATE // 1000
    whole = np.convolve(ref.astype(np.float64) * 10 ** (-6 / 20), ir)[: len(mic) - delay]
    expected = np.concatenate([np.zeros(delay), whole])
    assert np.abs(mic.astype(np.float64) - user[: len(mic)] - expected).max() <= 0.5 + 1e-6
    # Unit energy: the room leaves the echo's level at the gain asked for (within 1 dB).
    loud = slice(delay + 320, delay + 320 + 2 * RATE // 2)
    echo_db = 10 * np.log10(np.mean(expected[loud] ** 2) / np.mean(ref[loud.start - delay : loud.stop - delay].astype(np.float64) ** 2))
    assert abs(echo_db - -6) < 1.5


def test_a_loud_echo_clips_like_a_microphone_instead_of_wrapping_around() -> None:
    path = EchoPath(EchoPathConfig(0, 0), RATE)
    echo = path.process(np.full(320, 30000, dtype=np.int16))
    assert (mix_into(np.full(320, 10000, dtype=np.int16), echo) == 32767).all()


@pytest.mark.parametrize(
    ("config", "message"),
    [(EchoPathConfig(-1, -6), "echo delay -1 ms: give 0 ms or more"), (EchoPathConfig(100, 3), "echo gain 3 dB: give 0 dB or less")],
)
def test_an_impossible_echo_path_is_refused(config: EchoPathConfig, message: str) -> None:
    with pytest.raises(EchoPathError, match=message):
        EchoPath(config, RATE)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--echo-delay-ms", "-5"], "echo delay -5 ms: give 0 ms or more"),
        (["--echo-gain-db", "2"], "echo gain 2 dB: give 0 dB or less"),
    ],
)
def test_the_cli_refuses_bad_echo_values_in_one_line(tmp_path: Path, flags: list[str], message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "voxloop.pipeline.cli", "replay", str(DATA / "what_time_is_it.wav"), "--out-dir", str(tmp_path / "out"), *flags],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and message in proc.stderr and "--echo-" in proc.stderr
    assert not (tmp_path / "out").exists()
