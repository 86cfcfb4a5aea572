"""The whole loop on the real models with the assistant's voice echoing back into the input.

The replay device mixes what plays back into the microphone (120 ms later, -6 dB), as laptop
speakers would; barge-in is on. With the echo canceller the reply plays to its end and no turn
is the assistant hearing itself; without it, the assistant interrupts itself (which shows the
test can fail).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import Question, concat_with_pauses, normalize

from voxloop.pipeline.config import Config
from voxloop.pipeline.engines import Engines
from voxloop.pipeline.replay import ReplayResult, run_replay
from voxloop.voice.echo_path import EchoPathConfig

ECHO = EchoPathConfig(delay_ms=120, gain_db=-6)


def ask_with_echo(engines: Engines, questions: list[Question], tmp_path: Path, echo_cancel: bool) -> tuple[Question, ReplayResult]:
    question = questions[1]  # "Can you tell me a short joke?": a reply of several seconds
    path = concat_with_pauses([question.path], 1.0, tmp_path / "question.wav")
    config = Config()
    config.turns.barge_in = True
    config.turns.echo_cancel = echo_cancel
    return question, run_replay(path, tmp_path / "out", engines, config, fast=True, echo=ECHO)


def test_with_the_canceller_the_reply_plays_to_the_end_over_its_own_echo(
    engines: Engines, questions: list[Question], tmp_path: Path
) -> None:
    question, result = ask_with_echo(engines, questions, tmp_path, echo_cancel=True)
    assert len(result.turns) == 1, [t.user_text for t in result.turns]
    turn = result.turns[0]
    assert normalize(turn.user_text) == normalize(question.text)
    assert not turn.interrupted
    assert turn.pauses == 0  # never held for its own voice either
    assert turn.reply_start_s is not None and turn.reply_end_s is not None
    assert turn.reply_end_s - turn.reply_start_s > 1.5  # long enough for its echo to matter
    # The microphone (left channel) really did hear the reply: the echo was there to cancel.
    audio, rate = sf.read(result.conversation, dtype="int16")
    during = slice(int((turn.reply_start_s + 0.2) * rate), int(turn.reply_end_s * rate))
    assert np.sqrt(np.mean(audio[during, 0].astype(np.float64) ** 2)) > 300


def test_without_the_canceller_the_assistant_trips_over_its_own_voice(
    engines: Engines, questions: list[Question], tmp_path: Path
) -> None:
    # Its words come back loud enough for the VAD: the reply is held at each of them (the words
    # are then recognised as its own echo and it goes on), or cut. Either way it stutters.
    _, result = ask_with_echo(engines, questions, tmp_path, echo_cancel=False)
    first = result.turns[0]
    assert first.interrupted or first.pauses >= 2, [(t.user_text, t.pauses) for t in result.turns]
