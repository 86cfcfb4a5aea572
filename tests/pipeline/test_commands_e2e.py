"""Spoken commands through the whole loop on the real models, checked in turns.jsonl.

The commands are spoken by the bundled Piper voice (the time question is a real recording);
the replay runs on the simulated clock, so the 5 s timer goes off at its place on the timeline,
between two later questions.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
from conftest import concat_with_pauses, recording
from test_replay_e2e import RecordingLLM

from voxloop.pipeline.config import Config
from voxloop.pipeline.engines import Engines
from voxloop.pipeline.replay import run_replay

SPOKEN = ["What is seventeen times twenty three?", "Set a timer for five seconds.", "Take a note: call the dentist.", "Read my notes."]


def say(engines: Engines, text: str, path: Path) -> Path:
    audio = np.concatenate(list(engines.tts.synthesize(text)))
    sf.write(path, audio, engines.tts.sample_rate, subtype="PCM_16")
    return path


def test_spoken_commands_are_answered_without_the_llm_and_a_timer_fires_mid_conversation(
    engines: Engines, tmp_path: Path
) -> None:
    parts = [recording("what_time_is_it.wav").path] + [say(engines, t, tmp_path / f"c{i}.wav") for i, t in enumerate(SPOKEN)]
    # 9 s after each: room for the reply, and for the timer to speak before the next command.
    path = concat_with_pauses(parts, pause_s=9.0, out=tmp_path / "commands.wav")
    config = Config()
    config.assistant.notes_db = str(tmp_path / "state" / "notes.db")
    llm = RecordingLLM(engines.llm)
    result = run_replay(path, tmp_path / "out", Engines(engines.asr, llm, engines.tts, {}), config, fast=True)

    rows = [json.loads(line) for line in result.turns_path.read_text().splitlines()]
    assert [r["command"] for r in rows] == ["time", "arithmetic", "timer_set", "announcement", "note_add", "note_read"], rows
    time_, sum_, timer, fired, note, notes = rows
    assert time_["assistant_text"].startswith("It's ")
    assert "391" in sum_["assistant_text"]
    assert "5 seconds" in timer["assistant_text"]
    # The timer starts when its turn stands and speaks 5 s later on the timeline, on its own.
    assert 5.0 <= fired["reply_start_s"] - timer["user_end_s"] <= 7.0
    assert "timer is done" in fired["assistant_text"] and not fired["interrupted"]
    assert fired["reply_end_s"] <= note["user_start_s"]
    assert "call the dentist" in note["assistant_text"].lower()
    assert "note 1: call the dentist" in notes["assistant_text"].lower()
    assert not any(r["interrupted"] for r in rows)
    # No answered turn reached the language model. (A head start on a half-said command, say
    # "Take a note", may be sent to it at a pause, then retracted when the user goes on.)
    asked = [prompt[-1]["content"] for prompt in llm.prompts]
    assert not set(asked) & {r["user_text"] for r in rows}, asked
    for r in rows:
        if r["command"] != "announcement":
            assert r["stages"]["command"] < 100, r
            assert "llm_first_token" not in r["stages"]
    assert (tmp_path / "state" / "notes.db").exists()


def test_piper_speaks_faster_and_slower_at_the_rate_asked(engines: Engines) -> None:
    def seconds(rate: float) -> float:
        chunks = list(engines.tts.synthesize("Okay, I'll speak at this speed now.", rate=rate))
        return sum(len(c) for c in chunks) / engines.tts.sample_rate

    normal, fast, slow = seconds(1.0), seconds(1.5), seconds(0.7)
    assert fast < normal * 0.8 and slow > normal * 1.2
