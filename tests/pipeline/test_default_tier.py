"""The default brain (Qwen2.5-Coder-1.5B-Instruct, installed by scripts/install.sh): spoken
general-knowledge questions answered right, and what the user said about themselves kept.

These are the few tests where the model's quality is the subject; the rest of the suite runs on
the small bundled model. Replays run on the simulated clock."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import concat_with_pauses, installed_tier

from voxloop.pipeline.config import Config
from voxloop.pipeline.engines import Engines, check_models, load_engines
from voxloop.pipeline.replay import run_replay

pytestmark = pytest.mark.models

QUESTIONS = [
    # (question, voice, an accepted answer)
    ("What is the largest ocean on Earth?", "piper", r"pacific"),
    ("How many legs does a spider have?", "espeak", r"\b(eight|8)\b"),
    ("Which planet is known as the red planet?", "piper", r"mars"),
    ("Who wrote Romeo and Juliet?", "espeak", r"shakespeare"),
]


@pytest.fixture(scope="module")
def default_engines() -> Iterator[tuple[Engines, Config]]:
    config = Config()
    config.models.llm = str(installed_tier("qwen2.5-coder-1.5b"))
    config.assistant.commands = False  # the model answers everything here
    yield load_engines(config, check_models(config)), config


def speak(engines: Engines, text: str, voice: str, out: Path) -> Path:
    if voice == "piper":
        sf.write(out, np.concatenate(list(engines.tts.synthesize(text))), engines.tts.sample_rate, subtype="PCM_16")
    else:
        espeak = shutil.which("espeak-ng")
        assert espeak, "espeak-ng is required for the tests: sudo apt-get install espeak-ng"
        subprocess.run([espeak, "-v", "en-us", "-s", "150", "-w", str(out), text], check=True, timeout=30)
    return out


def test_spoken_general_questions_are_answered_right(default_engines: tuple[Engines, Config], tmp_path: Path) -> None:
    engines, config = default_engines
    parts = [speak(engines, q, voice, tmp_path / f"q{i}.wav") for i, (q, voice, _) in enumerate(QUESTIONS)]
    talk = concat_with_pauses(parts, 6.0, tmp_path / "questions.wav")
    result = run_replay(talk, tmp_path / "out", engines, config, fast=True)
    answered = [t for t in result.turns if t.assistant_text]
    assert len(answered) == len(QUESTIONS), [(t.user_text, t.assistant_text) for t in result.turns]
    for (question, _, answer), turn in zip(QUESTIONS, answered):
        assert re.search(answer, turn.assistant_text.lower()), f"{question!r} heard as {turn.user_text!r}: {turn.assistant_text!r}"
        assert not turn.interrupted


def test_what_the_user_said_about_themselves_is_remembered(default_engines: tuple[Engines, Config], tmp_path: Path) -> None:
    engines, config = default_engines
    said = [
        ("My name is Sarah and I live in Lisbon.", "piper"),
        ("What is the capital of Italy?", "espeak"),
        ("How many days are in a week?", "piper"),
        ("What is my name, and which city do I live in?", "piper"),
    ]
    parts = [speak(engines, text, voice, tmp_path / f"s{i}.wav") for i, (text, voice) in enumerate(said)]
    result = run_replay(concat_with_pauses(parts, 6.0, tmp_path / "talk.wav"), tmp_path / "out", engines, config, fast=True)
    turns = [t for t in result.turns if t.assistant_text]
    assert len(turns) == len(said), [(t.user_text, t.assistant_text) for t in result.turns]
    last = turns[-1].assistant_text.lower()
    assert "sarah" in last and "lisbon" in last, [(t.user_text, t.assistant_text) for t in turns]
    # and no reply was the user's own words given back
    for turn in turns:
        assert turn.assistant_text.lower().strip(" .?!") != turn.user_text.lower().strip(" .?!")
