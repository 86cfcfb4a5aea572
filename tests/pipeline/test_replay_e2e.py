"""The whole loop on the real bundled models, driven by recordings, checked in the output files.

Replays run on the simulated clock (``fast=True``): the same turns and content as a real-time
run, without waiting for the audio to play out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import Question, RecordingLLM, concat_with_pauses, recording, wer

from voxloop.pipeline.config import Config
from voxloop.pipeline.engines import Engines
from voxloop.pipeline.replay import ReplayResult, run_replay
from voxloop.pipeline.reply_stage import APOLOGY

RATE = 16000
ASR_WER_LIMIT = 0.25
"""Per-utterance WER allowed for a command-length question (tiny.en, greedy)."""


def load_conversation(result: ReplayResult) -> tuple[np.ndarray, np.ndarray]:
    info = sf.info(result.conversation)
    assert (info.channels, info.samplerate, info.subtype) == (2, RATE, "PCM_16")
    audio, _ = sf.read(result.conversation, dtype="int16")
    return audio[:, 0], audio[:, 1]


def rms_dbfs(x: np.ndarray) -> float:
    if not len(x):
        return -120.0
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) / 32768
    return 20 * np.log10(max(rms, 1e-6))


def at(seconds: float) -> int:
    return int(round(seconds * RATE))


def test_a_recorded_question_is_heard_and_answered_on_the_right_channel(engines: Engines, tmp_path: Path) -> None:
    rec = recording("what_time_is_it.wav")
    config = Config()
    config.assistant.commands = False  # the LLM answers, so every stage is timed
    result = run_replay(rec.path, tmp_path / "out", engines, config, fast=True)

    [turn] = result.turns
    assert wer(rec.transcript, turn.user_text) <= ASR_WER_LIMIT, turn.user_text
    assert turn.assistant_text.strip()
    assert not turn.interrupted
    assert turn.user_end_s is not None and turn.reply_start_s is not None
    assert 0.5 < turn.user_end_s < 2.0  # the speech in this file ends before its 2 s are up
    assert turn.reply_start_s >= turn.user_end_s

    user, assistant = load_conversation(result)
    # The left channel is the input as the pipeline heard it.
    original, sr = sf.read(rec.path, dtype="int16")
    assert sr == RATE
    np.testing.assert_array_equal(user[: len(original)], original)
    # The assistant is silent while the user speaks and audible once the reply starts.
    assert rms_dbfs(assistant[: at(turn.user_end_s)]) < -80
    reply = assistant[at(turn.reply_start_s) : at(turn.reply_start_s + 1.0)]
    assert rms_dbfs(reply) > -35
    assert turn.reply_end_s is not None
    assert len(assistant) >= at(turn.reply_end_s) - 1

    lines = [json.loads(line) for line in result.turns_path.read_text().splitlines()]
    assert len(lines) == 1
    row = lines[0]
    for key in ("user_text", "assistant_text", "user_end_s", "reply_start_s", "latency_ms", "interrupted", "stages"):
        assert key in row
    assert row["latency_ms"] == pytest.approx((row["reply_start_s"] - row["user_end_s"]) * 1000, abs=2)
    assert set(row["stages"]) >= {"endpoint", "asr", "llm_first_token", "first_sentence", "tts_first_chunk"}


def test_several_questions_are_answered_in_order_with_the_history_carried(
    engines: Engines, questions: list[Question], tmp_path: Path
) -> None:
    asked = [questions[0], questions[2], questions[1]]  # Piper, espeak-ng, Piper
    recording_path = concat_with_pauses([q.path for q in asked], pause_s=12.0, out=tmp_path / "three.wav")
    llm = RecordingLLM(engines.llm)
    config = Config()
    config.dialog.max_reply_tokens = 40  # keep each reply inside the 12 s pause
    result = run_replay(
        recording_path, tmp_path / "out", Engines(engines.asr, llm, engines.tts, {}), config, fast=True
    )

    assert len(result.turns) == 3
    for turn, question in zip(result.turns, asked):
        assert wer(question.text, turn.user_text) <= 0.3, (question.voice, turn.user_text)
        assert turn.assistant_text.strip()
        assert not turn.interrupted
    starts = [t.reply_start_s for t in result.turns]
    assert starts == sorted(starts)
    for earlier, later in zip(result.turns, result.turns[1:]):
        assert earlier.reply_end_s is not None and later.user_start_s is not None
        assert earlier.reply_end_s <= later.user_start_s

    # Each prompt carries every earlier exchange, in order, ending with the new question. (A
    # head start taken at a pause inside a question and then retracted may have asked about its
    # first words too; the prompt that counts is the last one for each question. How many were
    # asked before the user went on depends on the engine threads' timing: 0-3 seen.)
    final = {}
    for prompt in llm.prompts:
        final[prompt[-1]["content"]] = prompt
    answered = [final[t.user_text] for t in result.turns]
    histories = [p[:-1] for p in answered]
    retracted = [p for p in llm.prompts if not any(p is a for a in answered)]
    assert all(p[:-1] in histories for p in retracted), "a retracted head start was asked at a turn's start, with its history"
    assert len(retracted) <= 2 * len(asked), "at most a couple of head starts per question (its pauses)"
    for n, prompt in enumerate(answered):
        assert prompt[0]["role"] == "system"
        users = [m["content"] for m in prompt if m["role"] == "user"]
        assistants = [m["content"] for m in prompt if m["role"] == "assistant"]
        assert users == [t.user_text for t in result.turns[: n + 1]]
        assert assistants == [t.assistant_text for t in result.turns[:n]]

    _, assistant = load_conversation(result)
    for turn in result.turns:
        assert turn.reply_start_s is not None
        assert rms_dbfs(assistant[at(turn.reply_start_s) : at(turn.reply_start_s + 0.5)]) > -35


def test_silence_and_noise_make_no_turn(engines: Engines, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    t = np.arange(at(6.0)) / RATE
    hum = 0.05 * np.sin(2 * np.pi * 50 * t) + 0.02 * np.sin(2 * np.pi * 150 * t)
    hiss = rng.normal(0, 0.01, at(6.0))
    clicks = np.zeros(at(6.0))
    clicks[:: at(0.37)] = 0.8  # keyboard-like isolated clicks
    audio = np.concatenate([np.zeros(at(6.0)), hum, hiss, clicks]).astype(np.float32)
    path = tmp_path / "noise.wav"
    sf.write(path, audio, RATE, subtype="PCM_16")

    result = run_replay(path, tmp_path / "out", engines, Config(), fast=True)

    assert result.turns == []
    assert result.turns_path.read_text() == ""
    user, assistant = load_conversation(result)
    assert len(user) >= len(audio)
    assert rms_dbfs(assistant) < -80


def test_a_speaker_who_pauses_mid_sentence_is_answered_once_for_the_whole_sentence(
    engines: Engines, tmp_path: Path
) -> None:
    # JFK's long oratory pauses outlast the endpoint wait: each pause closes a turn and the
    # resumed speech cuts the reply short. The last turn must carry the whole sentence.
    rec = recording("jfk.flac")
    assert (sf.info(rec.path).samplerate, sf.info(rec.path).channels) == (44100, 2)
    result = run_replay(rec.path, tmp_path / "out", engines, Config(), fast=True)

    assert result.turns
    *cut, last = result.turns
    assert all(t.interrupted for t in cut)
    assert not last.interrupted and last.assistant_text
    assert wer(rec.transcript, last.user_text) <= 0.35, last.user_text


def test_paced_replay_runs_in_real_time_and_answers(engines: Engines, tmp_path: Path) -> None:
    rec = recording("whats_the_date_today.wav")
    result = run_replay(rec.path, tmp_path / "out", engines, Config(), fast=False)

    [turn] = result.turns
    assert wer(rec.transcript, turn.user_text) <= ASR_WER_LIMIT, turn.user_text
    assert turn.assistant_text
    assert turn.latency_ms is not None and turn.latency_ms > 0
    # Paced: real compute time shows up on the timeline after the endpoint wait.
    assert turn.latency_ms >= turn.stages["endpoint"]


def test_llm_url_answers_through_a_real_openai_compatible_server(server_root: str, tmp_path: Path) -> None:
    rec = recording("turn_on_the_lamp.wav")  # not one of the commands answered without the LLM
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "voxloop.pipeline.cli", "replay", str(rec.path), "--fast", "--out-dir", str(out),
         "--llm-url", f"{server_root}/v1"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env={**os.environ, "HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    [row] = [json.loads(line) for line in (out / "turns.jsonl").read_text().splitlines()]
    assert wer(rec.transcript, row["user_text"]) <= ASR_WER_LIMIT
    assert row["assistant_text"].strip()
    assert row["stages"]["llm_first_token"] > 0
    assert "vox (" in done.stdout


def test_an_unreachable_llm_url_is_spoken_as_an_apology_not_a_crash(engines: Engines, tmp_path: Path) -> None:
    from conftest import free_port
    from voxloop.models.openai_llm import OpenAICompatibleConfig, OpenAICompatibleLLM

    dead = OpenAICompatibleLLM(f"http://127.0.0.1:{free_port()}/v1", model="m", config=OpenAICompatibleConfig(connect_timeout_s=2.0))
    rec = recording("turn_on_the_lamp.wav")  # not a command: it goes to the LLM
    result = run_replay(rec.path, tmp_path / "out", Engines(engines.asr, dead, engines.tts, {}), Config(), fast=True)

    [turn] = result.turns
    assert turn.error is not None and "cannot reach the LLM server" in turn.error
    assert turn.assistant_text == APOLOGY
    _, assistant = load_conversation(result)
    assert turn.reply_start_s is not None
    assert rms_dbfs(assistant[at(turn.reply_start_s) : at(turn.reply_start_s + 0.5)]) > -35
