"""Soak run: a long, varied conversation replayed on the simulated clock, with resources sampled.

::

    .venv/bin/python scripts/soak.py [--turns 200] [--seed N] [--sessions 1] [--json FILE]

A seeded session is generated as one 16 kHz mono wav, written piece by piece so memory stays
flat (the seed fixes the arrangement; Piper's own sampling varies durations a little):
questions spoken by the bundled Piper voice and real human recordings from ``tests/data/``
(``speech.tsv``), each followed by a pause long enough for the short reply
(``max_reply_tokens = 30``), and bad moments in between:

- interruptions: a question that starts 2.6-3.5 s after the previous one ended, i.e. while the
  reply is playing (later than the 2 s continuation window, so it is a barge-in, not a
  continuation);
- a speaker who pauses mid-thought (two utterances ~1 s apart: answered once, for the whole);
- very quiet speech (-45 dBFS), clipped speech (gain x8, then clipped), speech over brown noise;
- long silences, white and brown noise bursts, mains hum, keyboard-like clicks;
- a language model that raises on every 17th call (the pipeline must speak its apology).

The whole file is replayed by **one** session (``run_replay``, fast mode) by default. That is
the most faithful soak and the one that shows leaks best: it is what a user does (one long
chat), the dialog history grows until it is trimmed (``max_history_chars``) and llama.cpp's
prompt cache fills, and everything a session owns (engine threads, queues, the output buffer,
the turn log, the recorder) lives through all the turns, so anything kept per turn shows up as
growth between the first and last 10% of the run, with no session teardown to hide it.
``--sessions N`` splits the same amount of talk into N consecutive replays (fresh session, same
loaded engines), which instead exposes what a session fails to release when it ends (threads,
files); the before/after counts below cover that for the single-session run too.

A background thread samples every 0.5 s of wall time: resident memory (VmRSS) and the OS
thread count (from ``/proc/self/status``), ``threading.active_count()`` and the open file
descriptors (``/proc/self/fd``). The report compares the first and last 10% of the samples,
and gives the RSS slope over the second half (a leak keeps climbing; a warm-up levels off).
Targets: under 5% RSS growth, flat thread and fd counts, no turn heard in noise, an apology
for every language-model failure that stood. Missing a target prints
``TARGET MISSED`` but the exit code stays 0: this is a measurement.

``tests/test_soak.py`` imports this file and runs a ~30-turn version with assertions.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
RATE = 16000
"""Hertz of the generated session (the rate the pipeline hears at)."""

RSS_GROWTH_TARGET_PCT = 5.0
FAIL_EVERY = 17
"""The language model raises on every this-many-th call."""
MAX_REPLY_TOKENS = 30
"""Short replies (3-8 s of speech with the default voice) so a ~9 s pause holds one."""

QUESTIONS = [
    "What is the capital of France?",
    "Can you tell me a short joke?",
    "How far away is the moon?",
    "What should I cook for dinner tonight?",
    "Why is the sea salty?",
    "How many legs does a spider have?",
    "What color is the sky on a clear day?",
    "Who wrote Romeo and Juliet?",
    "What is the tallest mountain in the world?",
    "Give me a tip for sleeping better.",
    "How do bees make honey?",
    "What is a good name for a cat?",
    "Why do leaves change color in autumn?",
    "How long should I boil an egg?",
    "What is the boiling point of water?",
    "Tell me something interesting about octopuses.",
    "How do I say hello in Spanish?",
    "What is the largest planet in our solar system?",
    "Can you recommend a good book?",
    "What is the weather usually like in London?",
    "How many days are there in a leap year?",
    "What does a koala eat?",
    "Why is exercise good for you?",
    "How does a rainbow form?",
    "What is the fastest land animal?",
    "Can you help me plan a picnic?",
    "What is photosynthesis?",
    "How many continents are there?",
    "What is the speed of sound?",
    "Suggest a fun game for a rainy day.",
]

HUMAN_RECORDINGS_SKIPPED = {"jfk.flac"}
"""Its long oratory pauses are continuations already; the mid-thought pause is built instead."""

logger = logging.getLogger("soak")


# --- the session plan ---------------------------------------------------------------------


@dataclass(frozen=True)
class Placed:
    """One thing on the session's timeline."""

    kind: str
    """Speech: question, recording, interrupt, continued, quiet, clipped, noisy.
    Not speech: silence, white, brown, hum, clicks."""
    start_s: float
    end_s: float
    text: str = ""
    utterance: int = -1
    """Index of the planned user utterance this speech belongs to (-1 for non-speech)."""

    @property
    def is_speech(self) -> bool:
        return self.utterance >= 0


@dataclass
class SessionPlan:
    path: Path
    items: list[Placed]
    duration_s: float

    @property
    def utterances(self) -> int:
        return len({p.utterance for p in self.items if p.is_speech})

    def heard_in(self, turn: Any, slack_s: float = 0.5) -> Placed | None:
        """The placed speech that holds what ``turn`` (a TurnRecord) heard, or None when the
        turn came from noise or silence."""
        start, end = turn.user_start_s, turn.user_end_s
        if start is None and end is None:
            return None
        # A record may lack its start (a head start that heard no words, then speech: the
        # retraction finds no record to carry over); its end still places it.
        start = end if start is None else start
        end = start if end is None else end
        for p in self.items:
            if p.is_speech and p.start_s - slack_s <= start and end <= p.end_s + slack_s:
                return p
        return None


class SpeechBank:
    """16 kHz float32 speech: Piper questions (synthesized on first use) and the recordings."""

    def __init__(self, tts: Any) -> None:
        self.tts = tts
        self._questions: dict[str, np.ndarray] = {}
        self.recordings: list[tuple[str, np.ndarray]] = []
        with open(DATA / "speech.tsv", encoding="utf-8") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                if row["file"] in HUMAN_RECORDINGS_SKIPPED:
                    continue
                audio, sr = sf.read(DATA / row["file"], dtype="float32", always_2d=True)
                mono = audio.mean(axis=1)
                if sr != RATE:
                    mono = soxr.resample(mono, sr, RATE)
                self.recordings.append((row["transcript"], _trim(_normalize(mono.astype(np.float32), -20.0))))

    def question(self, text: str) -> np.ndarray:
        if text not in self._questions:
            pcm = np.concatenate(list(self.tts.synthesize(text))).astype(np.float32) / 32768.0
            audio = soxr.resample(pcm, self.tts.sample_rate, RATE).astype(np.float32)
            self._questions[text] = _trim(_normalize(audio, -20.0))
        return self._questions[text]


def _rms_db(x: np.ndarray) -> float:
    return 20 * np.log10(max(float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))), 1e-9))


def _normalize(x: np.ndarray, dbfs: float) -> np.ndarray:
    """Scale to an RMS of ``dbfs`` over the voiced part (frames within 30 dB of the loudest)."""
    frames = x[: len(x) // 320 * 320].reshape(-1, 320)
    levels = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1)) + 1e-9
    voiced = frames[levels > levels.max() * 10 ** (-30 / 20)]
    gain = 10 ** ((dbfs - _rms_db(voiced)) / 20)
    return (x * gain).astype(np.float32)


def _trim(x: np.ndarray, keep_s: float = 0.05) -> np.ndarray:
    """Cut leading and trailing silence, so the placed bounds are the voiced bounds."""
    frames = x[: len(x) // 160 * 160].reshape(-1, 160)
    levels = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    loud = np.flatnonzero(levels > levels.max() * 10 ** (-35 / 20))
    keep = int(keep_s * RATE)
    start = max(0, loud[0] * 160 - keep)
    end = min(len(x), (loud[-1] + 1) * 160 + keep)
    return x[start:end]


class _Noise:
    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def white(self, seconds: float, dbfs: float) -> np.ndarray:
        return _normalize(self.rng.normal(0, 1, int(seconds * RATE)).astype(np.float32), dbfs)

    def brown(self, seconds: float, dbfs: float) -> np.ndarray:
        x = np.cumsum(self.rng.normal(0, 1, int(seconds * RATE) + 1600))
        x -= np.convolve(x, np.ones(801) / 801, "same")  # remove the drift, keep the rumble
        return _normalize(x[800:-800].astype(np.float32), dbfs)

    def hum(self, seconds: float, dbfs: float) -> np.ndarray:
        t = np.arange(int(seconds * RATE)) / RATE
        f = self.rng.choice([50.0, 60.0])
        x = np.sin(2 * np.pi * f * t) + 0.4 * np.sin(2 * np.pi * 3 * f * t) + 0.2 * np.sin(2 * np.pi * 5 * f * t)
        return _normalize(x.astype(np.float32), dbfs)

    def clicks(self, seconds: float) -> np.ndarray:
        x = np.zeros(int(seconds * RATE), dtype=np.float32)
        decay = np.exp(-np.arange(40) / 6.0).astype(np.float32)
        for p in self.rng.integers(0, len(x) - 40, int(seconds * 4)):
            x[p : p + 40] += self.rng.uniform(0.3, 0.8) * decay * self.rng.choice([-1.0, 1.0])
        return x


class _Writer:
    """Appends to the session wav as it goes and keeps the timeline position."""

    def __init__(self, path: Path) -> None:
        self.file = sf.SoundFile(path, "w", samplerate=RATE, channels=1, subtype="PCM_16", format="WAV")
        self.frames = 0

    @property
    def now_s(self) -> float:
        return self.frames / RATE

    def silence(self, seconds: float) -> None:
        n = int(seconds * RATE)
        step = RATE * 10
        for i in range(0, n, step):
            self.file.write(np.zeros(min(step, n - i), dtype=np.float32))
        self.frames += n

    def audio(self, x: np.ndarray) -> tuple[float, float]:
        start = self.now_s
        self.file.write(np.clip(x, -1.0, 1.0).astype(np.float32))
        self.frames += len(x)
        return start, self.now_s

    def close(self) -> None:
        self.file.close()


def build_session(path: Path, utterances: int, bank: SpeechBank, rng: np.random.Generator, first: int = 0) -> SessionPlan:
    """Write ``utterances`` planned user utterances with pauses and bad moments to ``path``.

    ``first`` numbers the utterances (so that several sessions share one numbering).
    """
    noise = _Noise(rng)
    w = _Writer(path)
    items: list[Placed] = []

    def speech(kind: str, text: str, audio: np.ndarray, n: int) -> None:
        start, end = w.audio(audio)
        items.append(Placed(kind, start, end, text, n))

    def pick() -> tuple[str, str, np.ndarray]:
        if rng.random() < 0.55:
            text = str(rng.choice(QUESTIONS))
            return "question", text, bank.question(text)
        text, audio = bank.recordings[int(rng.integers(len(bank.recordings)))]
        return "recording", text, audio

    try:
        w.silence(0.6)
        pending_gap = 0.0  # the pause still owed to the last utterance: time for its reply
        can_interrupt = False
        for n in range(first, first + utterances):
            kind, text, audio = pick()
            r = rng.random()
            if can_interrupt and kind == "question" and r < 0.15:
                # Barge-in: the last reply started ~0.55 s after that question ended and is
                # playing now; 2.6 s or more after its end, so it is no continuation.
                w.silence(items[-1].end_s + rng.uniform(2.6, 3.5) - w.now_s)
                speech("interrupt", text, audio, n)
            else:
                w.silence(pending_gap)
                # Something between the questions, in the quiet after the last reply.
                between = rng.random()
                if between < 0.08:
                    start = w.now_s
                    w.silence(rng.uniform(15.0, 40.0))
                    items.append(Placed("silence", start, w.now_s))
                elif between < 0.24:
                    noise_kind = str(rng.choice(["white", "brown", "hum", "clicks"]))
                    seconds = rng.uniform(0.5, 2.0) if noise_kind in ("white", "brown") else rng.uniform(2.0, 5.0)
                    level = rng.uniform(-35.0, -25.0)
                    x = noise.clicks(seconds) if noise_kind == "clicks" else getattr(noise, noise_kind)(seconds, level)
                    start, end = w.audio(x)
                    items.append(Placed(noise_kind, start, end))
                    w.silence(rng.uniform(1.0, 2.5))
                if r < 0.07:
                    speech("quiet", text, _normalize(audio, -45.0), n)
                elif r < 0.14:
                    speech("clipped", text, np.clip(audio * 8.0, -1.0, 1.0), n)
                elif r < 0.21:
                    # Speech over a rumbling room (brown noise, 18 dB below the voice).
                    lead = int(0.5 * RATE)
                    bed = noise.brown(len(audio) / RATE + 1.0, -38.0)
                    bed[lead : lead + len(audio)] += audio
                    speech("noisy", text, bed, n)  # the bed counts: the VAD may start on it
                elif r < 0.27 and kind == "question" and len(text.split()) >= 4:
                    # A speaker who stops mid-thought and goes on: one turn, answered once.
                    words = text.split()
                    cut = len(words) // 2
                    head, rest = " ".join(words[:cut]), " ".join(words[cut:])
                    speech("continued", head, bank.question(head), n)
                    w.silence(rng.uniform(0.8, 1.3))
                    speech("continued", rest, bank.question(rest), n)
                else:
                    speech(kind, text, audio, n)
            can_interrupt = items[-1].kind in ("question", "recording")
            pending_gap = rng.uniform(8.5, 10.0)  # the longest 30-token reply is ~8 s
        w.silence(pending_gap)
    finally:
        w.close()
    return SessionPlan(path, items, w.now_s)


# --- a language model that fails now and then -------------------------------------------------


class InjectedFailure(RuntimeError):
    pass


class FlakyLLM:
    """The real LLM, except that every ``fail_every``-th call raises from inside the stream."""

    def __init__(self, inner: Any, fail_every: int = FAIL_EVERY) -> None:
        self.inner = inner
        self.fail_every = fail_every
        self.calls = 0
        self.failures = 0
        self.failed_calls: list[int] = []
        """1-based numbers of the calls that raised."""

    def stream(self, messages: Sequence[dict[str, str]], max_tokens: int) -> Iterator[str]:
        self.calls += 1
        if self.fail_every and self.calls % self.fail_every == 0:
            self.failures += 1
            self.failed_calls.append(self.calls)
            return self._fail(self.calls)
        return self.inner.stream(messages, max_tokens)

    @staticmethod
    def _fail(call: int) -> Iterator[str]:
        raise InjectedFailure(f"injected failure on call {call}")
        yield ""  # a generator: it raises on the engine thread, as a real engine would

    def warm_up(self) -> None:
        self.inner.warm_up()


class _DropInjected(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], InjectedFailure))


# --- resource sampling --------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    t_s: float
    """Wall seconds since sampling started."""
    rss_kb: int
    anon_kb: int
    """Of rss_kb: anonymous memory (heaps, arenas, buffers): where a leak shows."""
    file_kb: int
    """Of rss_kb: mapped files (libraries, mmapped model weights)."""
    os_threads: int
    py_threads: int
    fds: int


def read_status() -> dict[str, int]:
    """VmRSS, RssAnon, RssFile (kB) and Threads of this process, from /proc/self/status."""
    wanted = {"VmRSS", "RssAnon", "RssFile", "Threads"}
    out: dict[str, int] = {}
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in wanted:
                out[key] = int(value.split()[0])
    return out


def count_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def os_thread_names() -> list[str]:
    """Names of this process's OS threads (``comm``), sorted: what a thread leak is made of."""
    names = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm", encoding="utf-8", errors="replace") as f:
                names.append(f.read().strip())
        except FileNotFoundError:  # ended meanwhile
            pass
    return sorted(names)


def take_sample(t0: float) -> Sample:
    st = read_status()
    # The sampler's own thread and the listdir fd are in every sample alike.
    return Sample(
        time.perf_counter() - t0,
        st["VmRSS"],
        st.get("RssAnon", 0),
        st.get("RssFile", 0),
        st["Threads"],
        threading.active_count(),
        count_fds(),
    )


def snapshot() -> dict[str, int]:
    st = read_status()
    return {"rss_kb": st["VmRSS"], "os_threads": st["Threads"], "py_threads": threading.active_count(), "fds": count_fds()}


class Sampler:
    """Samples every ``interval_s`` of wall time on a daemon thread until stopped."""

    def __init__(self, interval_s: float = 0.5) -> None:
        self.interval_s = interval_s
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)
        self._t0 = time.perf_counter()

    def __enter__(self) -> Sampler:  # noqa: PYI034 - a final class
        self._t0 = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self.samples.append(take_sample(self._t0))
            if self._stop.wait(self.interval_s):
                return


def join_new_threads(before: set[threading.Thread], timeout_s: float = 10.0) -> list[str]:
    """Wait (bounded) for threads started since ``before`` to end: engine executors are shut
    down without waiting. Returns the names of those still alive (a leak)."""
    deadline = time.monotonic() + timeout_s
    for t in threading.enumerate():
        if t not in before and t is not threading.current_thread() and t.name != "soak-sampler":
            t.join(max(0.0, deadline - time.monotonic()))
    return sorted(t.name for t in threading.enumerate() if t not in before and t.is_alive())


# --- the run and its report -------------------------------------------------------------------


@dataclass
class Window:
    mean: float
    min: float
    max: float


def _window(values: Sequence[float]) -> Window:
    return Window(float(np.mean(values)), float(min(values)), float(max(values)))


@dataclass
class SoakReport:
    utterances_planned: int
    sessions: int
    turns: int
    """Turns the pipeline finished (each heard utterance, including ones cut by the user)."""
    answered: int
    """Turns with a non-empty assistant_text."""
    interrupted: int
    errors: int
    llm_failures_injected: int
    llm_failures_recorded: int
    """Turns whose record carries an injected failure."""
    llm_failures_retried: int
    """Of those, turns where the failure hit a head start the user talked on through and the
    re-asked question was answered: no apology is owed (the record keeps the stale error)."""
    apologies: int
    apologies_missing: int
    """Standing failures whose turn did not speak the apology (or its start, when cut): must be 0."""
    turns_on_noise: int
    """Turns whose speech lies in no placed speech: must be 0."""
    turns_without_start: int
    """Turn records with no ``user_start_s`` (a record defect, not a resource target)."""
    wall_s: float
    timeline_s: float
    samples: int
    window_fraction: float
    rss_first_mb: Window
    rss_last_mb: Window
    rss_growth_pct: float
    rss_peak_mb: float
    anon_first_mb: Window
    anon_last_mb: Window
    rss_second_half_mb_per_min: float
    """Least-squares slope of RSS over the second half of the run, MB per wall minute."""
    os_threads_first: Window
    os_threads_last: Window
    py_threads_first: Window
    py_threads_last: Window
    fds_first: Window
    fds_last: Window
    before: dict[str, int]
    """Counts just before the replay started (RSS kB, OS threads, Python threads, fds)."""
    after: dict[str, int]
    """The same once the replay has returned and its threads have ended."""
    leftover_threads: list[str]
    os_threads_gone: list[str]
    """OS thread names present before the run and not after (``comm``, with multiplicity)."""
    os_threads_new: list[str]
    """OS thread names present after the run and not before."""
    targets_missed: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SoakRun:
    report: SoakReport
    plans: list[SessionPlan]
    turns: list[Any]
    """TurnRecords of all sessions, in order."""
    samples: list[Sample]
    llm: FlakyLLM


def run_soak(
    engines: Any,
    utterances: int,
    seed: int,
    workdir: Path,
    *,
    sessions: int = 1,
    window_fraction: float = 0.10,
    interval_s: float = 0.5,
    fail_every: int = FAIL_EVERY,
) -> SoakRun:
    """Generate, replay on the simulated clock, sample, report. ``engines`` are loaded once."""
    from voxloop.pipeline.config import Config
    from voxloop.pipeline.engines import Engines
    from voxloop.pipeline.replay import run_replay
    from voxloop.pipeline.reply_stage import APOLOGY

    rng = np.random.default_rng(seed)
    bank = SpeechBank(engines.tts)
    plans: list[SessionPlan] = []
    per = [utterances // sessions + (1 if i < utterances % sessions else 0) for i in range(sessions)]
    first = 0
    for i, n in enumerate(per):
        plans.append(build_session(workdir / f"session{i}.wav", n, bank, rng, first))
        first += n
    del bank

    config = Config()
    config.dialog.max_reply_tokens = MAX_REPLY_TOKENS
    config.assistant.commands = False  # every turn through the language model, as before commands existed
    llm = FlakyLLM(engines.llm, fail_every)
    flaky = Engines(engines.asr, llm, engines.tts, {})
    log_filter = _DropInjected()
    reply_logger = logging.getLogger("voxloop.pipeline.reply_stage")
    reply_logger.addFilter(log_filter)

    # The echo canceller's library starts its runtime threads (tokio) once per process, at the
    # first canceller: start it here, so "before" is a process that has already done that.
    from voxloop.voice.echo_canceller import EchoCanceller

    EchoCanceller().process(np.zeros(160, dtype=np.int16), None)
    threads_before = set(threading.enumerate())
    names_before = os_thread_names()
    before = snapshot()
    per_session: list[list[Any]] = []
    started = time.perf_counter()
    try:
        with Sampler(interval_s) as sampler:
            for i, plan in enumerate(plans):
                result = run_replay(plan.path, workdir / f"session{i}.voxloop", flaky, config, fast=True)
                per_session.append(result.turns)
    finally:
        reply_logger.removeFilter(log_filter)
    wall_s = time.perf_counter() - started
    leftover = join_new_threads(threads_before)
    after = snapshot()
    names_after = os_thread_names()

    samples = sampler.samples
    k = max(1, int(len(samples) * window_fraction))
    head, tail = samples[:k], samples[-k:]
    rss_first = _window([s.rss_kb / 1024 for s in head])
    rss_last = _window([s.rss_kb / 1024 for s in tail])
    growth = (rss_last.mean - rss_first.mean) / rss_first.mean * 100
    anon_first = _window([s.anon_kb / 1024 for s in head])
    anon_last = _window([s.anon_kb / 1024 for s in tail])
    # A leak keeps growing; a warm-up (lazily touched buffers, allocator arenas) levels off.
    # The slope of the second half tells them apart.
    half = samples[len(samples) // 2 :]
    slope = float(np.polyfit([s.t_s for s in half], [s.rss_kb / 1024 for s in half], 1)[0]) * 60 if len(half) > 2 else 0.0

    turns = [t for session_turns in per_session for t in session_turns]
    on_noise = sum(1 for plan, session_turns in zip(plans, per_session) for t in session_turns if plan.heard_in(t) is None)

    failed = [t for t in turns if t.error and t.error.startswith("llm: injected")]
    # A failure on a head start the user talked on through is retracted and the question asked
    # again: that turn streamed tokens after all (its record keeps the retracted attempt's
    # error: TurnLog.rename does not clear it). Every other failed turn owes the apology.
    retried = [t for t in failed if "llm_first_token" in t.stages]
    standing = [t for t in failed if "llm_first_token" not in t.stages]
    missing = sum(1 for t in standing if not spoke_apology(t, APOLOGY))

    report = SoakReport(
        utterances_planned=sum(p.utterances for p in plans),
        sessions=len(plans),
        turns=len(turns),
        answered=sum(1 for t in turns if t.assistant_text.strip()),
        interrupted=sum(1 for t in turns if t.interrupted),
        errors=sum(1 for t in turns if t.error),
        llm_failures_injected=llm.failures,
        llm_failures_recorded=len(failed),
        llm_failures_retried=len(retried),
        apologies_missing=missing,
        apologies=sum(1 for t in turns if t.assistant_text == APOLOGY),
        turns_on_noise=on_noise,
        turns_without_start=sum(1 for t in turns if t.user_start_s is None),
        wall_s=wall_s,
        timeline_s=sum(p.duration_s for p in plans),
        samples=len(samples),
        window_fraction=window_fraction,
        rss_first_mb=rss_first,
        rss_last_mb=rss_last,
        rss_growth_pct=growth,
        rss_peak_mb=max(s.rss_kb for s in samples) / 1024,
        anon_first_mb=anon_first,
        anon_last_mb=anon_last,
        rss_second_half_mb_per_min=slope,
        os_threads_first=_window([s.os_threads for s in head]),
        os_threads_last=_window([s.os_threads for s in tail]),
        py_threads_first=_window([s.py_threads for s in head]),
        py_threads_last=_window([s.py_threads for s in tail]),
        fds_first=_window([s.fds for s in head]),
        fds_last=_window([s.fds for s in tail]),
        before=before,
        after=after,
        leftover_threads=leftover,
        os_threads_gone=_minus(names_before, names_after),
        os_threads_new=_minus(names_after, names_before),
    )
    report.targets_missed = targets_missed(report)
    return SoakRun(report, plans, turns, samples, llm)


def _minus(a: list[str], b: list[str]) -> list[str]:
    rest = list(b)
    out = []
    for name in a:
        if name in rest:
            rest.remove(name)
        else:
            out.append(name)
    return out


def spoke_apology(turn: Any, apology: str) -> bool:
    """The turn said the apology, or its beginning when the user cut it short."""
    return turn.assistant_text == apology or (turn.interrupted and apology.startswith(turn.assistant_text))


def targets_missed(r: SoakReport) -> list[str]:
    missed = []
    if r.rss_growth_pct >= RSS_GROWTH_TARGET_PCT:
        missed.append(f"RSS grew {r.rss_growth_pct:.1f}% (target < {RSS_GROWTH_TARGET_PCT:g}%)")
    if r.os_threads_last.max > r.os_threads_first.max:
        missed.append(f"OS threads rose: max {r.os_threads_first.max:g} in the first window, {r.os_threads_last.max:g} in the last")
    if r.py_threads_last.max > r.py_threads_first.max:
        missed.append(f"Python threads rose: max {r.py_threads_first.max:g} -> {r.py_threads_last.max:g}")
    if r.fds_last.max > r.fds_first.max:
        missed.append(f"open files rose: max {r.fds_first.max:g} in the first window, {r.fds_last.max:g} in the last")
    # One more is tolerated: a joined thread can still be exiting in the kernel.
    if r.after["os_threads"] > r.before["os_threads"] + 1:
        missed.append(f"OS threads after the run {r.after['os_threads']} > before {r.before['os_threads']} + 1")
    if r.after["fds"] > r.before["fds"]:
        missed.append(f"open files after the run {r.after['fds']} > before {r.before['fds']}")
    if r.leftover_threads:
        missed.append(f"threads still alive after the run: {', '.join(r.leftover_threads)}")
    if r.apologies_missing:
        missed.append(f"{r.apologies_missing} LLM failure(s) not answered with the apology")
    if r.turns_on_noise:
        missed.append(f"{r.turns_on_noise} turn(s) heard where only noise or silence was played")
    return missed


def format_report(r: SoakReport) -> str:
    pct = f"{r.window_fraction * 100:.0f}%"
    lines = [
        (
            f"soak: {r.utterances_planned} planned utterances in {r.sessions} session(s), "
            f"{r.timeline_s / 60:.1f} min of audio, {r.wall_s:.0f} s wall, {r.samples} samples"
        ),
        (
            f"turns {r.turns}  answered {r.answered}  interrupted {r.interrupted}  errors {r.errors} "
            f"(LLM failures injected {r.llm_failures_injected}, recorded {r.llm_failures_recorded}, "
            f"retried after a head start {r.llm_failures_retried}, apologies spoken {r.apologies})  "
            f"on noise {r.turns_on_noise}"
        ),
        "",
        f"{'':14}{'first ' + pct:>22}{'last ' + pct:>22}{'before':>9}{'after':>9}",
        f"{'':14}{'mean (min-max)':>22}{'mean (min-max)':>22}",
    ]

    def cell(w: Window, fmt: str) -> str:
        return f"{w.mean:{fmt}} ({w.min:{fmt}}-{w.max:{fmt}})"

    def row(name: str, a: Window, b: Window, before: float | None, after: float | None, fmt: str) -> str:
        ends = "".join(f"{'-':>9}" if x is None else f"{x:>9{fmt}}" for x in (before, after))
        return f"{name:14}{cell(a, fmt):>22}{cell(b, fmt):>22}{ends}"

    lines += [
        row("RSS MB", r.rss_first_mb, r.rss_last_mb, r.before["rss_kb"] / 1024, r.after["rss_kb"] / 1024, ".0f"),
        row("  anon MB", r.anon_first_mb, r.anon_last_mb, None, None, ".0f"),
        row("OS threads", r.os_threads_first, r.os_threads_last, r.before["os_threads"], r.after["os_threads"], ".0f"),
        row("Py threads", r.py_threads_first, r.py_threads_last, r.before["py_threads"], r.after["py_threads"], ".0f"),
        row("open fds", r.fds_first, r.fds_last, r.before["fds"], r.after["fds"], ".0f"),
        "",
        (
            f"RSS growth {r.rss_growth_pct:+.2f}% (target < {RSS_GROWTH_TARGET_PCT:g}%), "
            f"peak {r.rss_peak_mb:.0f} MB, second-half slope {r.rss_second_half_mb_per_min:+.1f} MB/min"
        ),
    ]
    if r.os_threads_new or r.os_threads_gone:
        lines.append(f"OS threads new after the run: {r.os_threads_new or '-'}; gone: {r.os_threads_gone or '-'}")
    if r.utterances_planned < 100:
        lines.append("note: a short run; start-up (engine threads, allocator warm-up) weighs on the first window")
    if r.turns_without_start:
        lines.append(f"note: {r.turns_without_start} turn record(s) without user_start_s")
    lines += [f"TARGET MISSED: {m}" for m in r.targets_missed] or ["all targets met"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=200, help="planned user utterances (default 200)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the session generator (default 1)")
    parser.add_argument("--sessions", type=int, default=1, help="split the talk into N consecutive replays (default 1)")
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    parser.add_argument("--turns-jsonl", type=Path, help="write every turn record here")
    parser.add_argument("--keep", type=Path, help="keep the generated audio and outputs in this folder")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.turns < 1 or args.sessions < 1 or args.sessions > args.turns:
        parser.error("need 1 <= --sessions <= --turns")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from voxloop.pipeline.config import Config
    from voxloop.pipeline.engines import check_models, load_engines

    config = Config()
    engines = load_engines(config, check_models(config))
    with tempfile.TemporaryDirectory(prefix="voxloop-soak-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        run = run_soak(engines, args.turns, args.seed, workdir, sessions=args.sessions)
    print(format_report(run.report))
    if args.json:
        data = {**run.report.to_json(), "samples": [asdict(x) for x in run.samples]}
        args.json.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    if args.turns_jsonl:
        with open(args.turns_jsonl, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(t.to_json(), ensure_ascii=False) + "\n" for t in run.turns)
    return 0


if __name__ == "__main__":
    sys.exit(main())
