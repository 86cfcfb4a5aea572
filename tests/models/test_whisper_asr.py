"""Speech recognition on real human recordings, against their reference transcripts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import concat_with_pauses, recordings, wer

from voxloop.pipeline.config import Config
from voxloop.pipeline.engines import Engines
from voxloop.pipeline.replay import run_replay
from voxloop.voice.audio_file import iter_audio

CORPUS_WER_LIMIT = 0.06
"""tiny.en, greedy, on the 14 recordings in tests/data: measured 0.018 (one word in 55)."""


def test_transcripts_of_real_speech_match_the_references(engines: Engines) -> None:
    refs, hyps = [], []
    for rec in recordings():
        audio = np.concatenate(list(iter_audio(rec.path)))
        text = engines.asr.transcribe(audio).text
        assert wer(rec.transcript, text) <= 0.25, (rec.path.name, text)
        refs.append(rec.transcript)
        hyps.append(text)
    assert wer(refs, hyps) <= CORPUS_WER_LIMIT


def test_the_endpointer_cuts_no_words_off_real_speech(engines: Engines, tmp_path: Path) -> None:
    """Whole sentences through the live pipeline: each is one turn, transcribed as well as alone."""
    picked = [r for r in recordings() if r.path.name in {"ldc93s1.wav", "arctic_a0024.wav", "spk1_snt2.wav", "goforward.wav"}]
    path = concat_with_pauses([r.path for r in picked], pause_s=10.0, out=tmp_path / "four.wav")
    config = Config()
    config.dialog.max_reply_tokens = 30
    result = run_replay(path, tmp_path / "out", engines, config, fast=True)

    assert len(result.turns) == len(picked)
    for turn, rec in zip(result.turns, picked):
        assert wer(rec.transcript, turn.user_text) <= 0.2, (rec.path.name, turn.user_text)


def test_silence_and_noise_transcribe_to_nothing(engines: Engines) -> None:
    rng = np.random.default_rng(3)
    silence = np.zeros(16000 * 3, dtype=np.float32)
    noise = rng.normal(0, 0.02, 16000 * 3).astype(np.float32)
    for audio in (silence, noise):
        assert engines.asr.transcribe(audio).text == ""
