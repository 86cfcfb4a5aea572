"""What reaches the microphone besides a clear question: noise, music, whispers and shouting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import recording, wer

from voxloop.models.fakes import FakeLLM
from voxloop.pipeline.config import Config
from voxloop.pipeline.engines import Engines
from voxloop.pipeline.replay import run_replay

RATE = 16000
SECONDS = 30


def _fan(rng: np.random.Generator) -> np.ndarray:
    """Brown noise with its slow drift removed: a fan or air conditioning."""
    brown = np.cumsum(rng.normal(0, 1, RATE * SECONDS))
    brown -= np.convolve(brown, np.ones(4000) / 4000, mode="same")
    return 0.1 * brown / np.abs(brown).max()


def _music(rng: np.random.Generator) -> np.ndarray:
    """Plucked notes with harmonics over a pulsing bass line."""
    t = np.arange(RATE * SECONDS) / RATE
    out = 0.3 * np.sin(2 * np.pi * 110 * t) * (np.sin(2 * np.pi * 0.5 * t) > 0)
    notes = [261.6, 329.6, 392.0, 523.3, 440.0, 349.2]
    for i in range(SECONDS * 2):
        start = i * RATE // 2
        tt = t[start : start + RATE // 2] - t[start]
        for h in (1, 2, 3, 4):
            out[start : start + RATE // 2] += np.exp(-3 * tt) * np.sin(2 * np.pi * notes[i % 6] * h * tt) / h
    return 0.2 * out / np.abs(out).max()


def _hum(rng: np.random.Generator) -> np.ndarray:
    t = np.arange(RATE * SECONDS) / RATE
    return 0.05 * np.sin(2 * np.pi * 50 * t) + 0.02 * np.sin(2 * np.pi * 150 * t) + rng.normal(0, 0.002, len(t))


def _keyboard(rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(RATE * SECONDS)
    for at in np.cumsum(rng.uniform(0.08, 0.4, 200)):
        i = int(at * RATE)
        if i + 160 < len(out):
            out[i : i + 160] += rng.normal(0, 0.3, 160) * np.exp(-np.arange(160) / 30)
    return out


@pytest.mark.parametrize("make", [_fan, _music, _hum, _keyboard], ids=["fan", "music", "hum", "keyboard"])
def test_noise_and_music_make_no_turn_and_no_model_call(
    engines: Engines, tmp_path: Path, make: object
) -> None:
    path = tmp_path / "noise.wav"
    sf.write(path, make(np.random.default_rng(11)).astype(np.float32), RATE, subtype="PCM_16")  # type: ignore[operator]

    llm = FakeLLM(["never asked"])  # the real one is not needed to prove it is never called
    result = run_replay(path, tmp_path / "out", Engines(engines.asr, llm, engines.tts, {}), Config(), fast=True)

    assert result.turns == [], [t.user_text for t in result.turns]
    assert llm.prompts == []


def _speech(level: str) -> np.ndarray:
    audio, sr = sf.read(recording("arctic_a0024.wav").path, dtype="float32")
    assert sr == RATE
    if level == "quiet":  # -45 dBFS RMS: across the room
        audio = audio / np.sqrt(np.mean(audio**2)) * 10 ** (-45 / 20)
    else:  # shouted into the microphone: 18 dB of gain, clipped flat
        audio = np.clip(audio * 8, -1, 1)
    return np.concatenate([np.zeros(RATE), audio, np.zeros(3 * RATE)]).astype(np.float32)


@pytest.mark.parametrize("level", ["quiet", "clipped"])
def test_quiet_and_clipped_speech_is_transcribed_not_invented(engines: Engines, tmp_path: Path, level: str) -> None:
    path = tmp_path / f"{level}.wav"
    sf.write(path, _speech(level), RATE, subtype="PCM_16")

    result = run_replay(path, tmp_path / "out", engines, Config(), fast=True)

    [turn] = result.turns
    assert wer(recording("arctic_a0024.wav").transcript, turn.user_text) <= 0.2, turn.user_text
    assert turn.assistant_text
