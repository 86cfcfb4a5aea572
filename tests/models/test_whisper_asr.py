"""Speech recognition on real human recordings, against their reference transcripts."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from conftest import concat_with_pauses, recordings, wer

from voxloop.models.whisper_asr import FasterWhisperASR
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


class CountingASR:
    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.sample_rate = 16000
        self.calls = 0

    def transcribe(self, audio: np.ndarray):  # type: ignore[no-untyped-def]
        self.calls += 1
        return self.inner.transcribe(audio)  # type: ignore[attr-defined]

    def warm_up(self) -> None:
        pass


HARVARD = [
    "The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background.",
    "It is easy to tell the depth of a well.", "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.", "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.", "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.", "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.", "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.", "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.", "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.", "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.", "The girl at the booth sold fifty bonds.",
    "The small pup gnawed a hole in the sock.", "The fish twisted and turned on the bent hook.",
    "Press the pants and sew a button on the vest.", "The swan dive was far short of perfect.",
    "The beauty of the view stunned the young boy.", "Two blue fish swam in the tank.",
    "Her purse was full of useless trash.", "The colt reared and threw the tall rider.",
    "It snowed, rained, and hailed the same morning.", "Read verse out loud for pleasure.",
    "Hoist the load to your left shoulder.", "Take the winding path to reach the lake.",
    "Note closely the size of the gas tank.", "Wipe the grease off his dirty face.",
    "Mend the coat before you go out.", "The wrist was badly strained and hung limp.",
    "The stray cat gave birth to kittens.", "The young girl gave no clear response.",
    "The meal was cooked before the bell rang.", "What joy there is in living.",
    "A king ruled the state in the early days.", "The ship was torn apart on the sharp reef.",
    "Sickness kept him home the third week.", "The wide road shimmered in the hot sun.",
    "The lazy cow lay in the cool grass.", "Lift the square stone over the fence.",
    "The rope will bind the seven books at once.", "Hop over the fence and plunge in.",
]  # fmt: skip
"""Harvard sentences (IEEE 1969 recommended practice for speech quality measurements)."""


def _trimmed(audio: np.ndarray) -> np.ndarray:
    """Speech without its leading and trailing silence."""
    frames = audio[: len(audio) // 320 * 320].reshape(-1, 320)
    loud = np.flatnonzero(np.sqrt((frames**2).mean(axis=1)) > 10 ** (-40 / 20))
    return audio[loud[0] * 320 : (loud[-1] + 1) * 320]


def test_two_minutes_of_speech_without_a_pause_is_one_turn_transcribed_in_pieces(
    engines: Engines, tmp_path: Path
) -> None:
    import shutil
    import subprocess

    import soundfile as sf

    espeak = shutil.which("espeak-ng")
    assert espeak, "espeak-ng is required for the tests: sudo apt-get install espeak-ng"
    parts, alone = [], []
    for n, sentence in enumerate(HARVARD):
        wav = tmp_path / f"s{n}.wav"
        subprocess.run([espeak, "-v", "en-us", "-s", "150", "-w", str(wav), sentence], check=True, timeout=30)
        parts += [_trimmed(np.concatenate(list(iter_audio(wav)))), np.zeros(int(0.25 * 16000), dtype=np.float32)]
        alone.append(engines.asr.transcribe(parts[-2]).text)
    alone_wer = wer(HARVARD, alone)
    speech = np.concatenate(parts)  # 250 ms between sentences: less than the 500 ms hangover
    assert len(speech) / 16000 >= 120
    path = tmp_path / "monologue.wav"
    sf.write(path, np.concatenate([np.zeros(8000, np.float32), speech, np.zeros(16000 * 3, np.float32)]), 16000)
    asr = CountingASR(engines.asr)
    config = Config()
    config.dialog.max_reply_tokens = 20

    result = run_replay(path, tmp_path / "out", Engines(asr, engines.llm, engines.tts, {}), config, fast=True)  # type: ignore[arg-type]

    [turn] = result.turns
    assert not turn.interrupted and turn.assistant_text
    assert asr.calls >= 6  # cut into pieces of at most 20 s, each transcribed while the talk goes on
    # As good as transcribing each sentence on its own (espeak's voice is hard for tiny.en: ~0.14).
    assert wer(" ".join(HARVARD), turn.user_text) <= alone_wer + 0.05, (alone_wer, turn.user_text)
    assert turn.user_end_s is not None and turn.user_end_s >= 120


def test_a_sentence_said_again_in_a_short_window_is_kept_once() -> None:
    """With its window cut to the audio, Whisper may not see where the speech ends and say it again."""
    from voxloop.models.whisper_asr import _said_once

    assert _said_once("Turn on the lamp. Turn on the lamp. Turn on") == "Turn on the lamp."
    assert _said_once("turn on the lamp turn on the lamp") == "turn on the lamp"
    assert _said_once("Ask not what. Ask what you can do. Ask what you") == "Ask not what. Ask what you can do."
    for said in ("It is what it is.", "Go forward 10 meters. Go forward 20 meters.", "No, no.", "What time is it?"):
        assert _said_once(said) == said


def test_the_short_window_hears_the_recordings_as_the_full_one_does(engines: Engines) -> None:
    full = FasterWhisperASR.__new__(FasterWhisperASR)
    full.__dict__.update(engines.asr.__dict__)  # the same loaded model...
    full.config = dataclasses.replace(engines.asr.config, window_pad_s=None)  # ...with Whisper's 30 s window
    refs, short, whole = [], [], []
    for rec in recordings():
        audio = np.concatenate(list(iter_audio(rec.path)))
        refs.append(rec.transcript)
        short.append(engines.asr.transcribe(audio).text)
        whole.append(full.transcribe(audio).text)
    assert engines.asr.config.window_pad_s is not None
    assert wer(refs, short) <= wer(refs, whole) + 0.04, list(zip(short, whole))
