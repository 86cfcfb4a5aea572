"""Latency benchmark: recordings replayed in real time through the live pipeline, against a
naive turn-based baseline on the same models.

::

    .venv/bin/python scripts/bench.py [AUDIO ...] [--quick] [--json FILE] [--plot FILE.png]
    .venv/bin/python scripts/bench.py --qa [--tiers T1,T2,...] [--quick] [--json FILE] [--plot FILE.png]

Each input (one question per file) is padded with 1 s of room tone before and ~4 s after and
replayed as its own session with ``run_replay(..., fast=False)``: paced at audio rate, as a
microphone would deliver it, so the latencies are real wall-clock figures. Without files, a
built-in set is used: the short human recordings of ``tests/data/`` (``speech.tsv``) and six
questions synthesized at start-up, three by the bundled Piper voice and three by espeak-ng
(when installed). The engines are loaded and warmed once and shared by every session.

Reported per turn and in total:

- voice-to-voice latency (end of the user's last voiced sample to the first audible sample of
  the reply, on the replay timeline): median, p95, max;
- where it goes: ``endpoint`` (silence waited before deciding the turn ended), ``asr`` (the
  tail transcription after the endpoint), ``llm_first_token``, ``first_clause`` (first token to
  the first speakable clause), ``tts_first_chunk`` (first clause to its first audio chunk) and
  ``output`` (the rest: queues, hand-overs and the output buffer up to the first audible
  sample). Any other stage the turn log records is printed as it is;
- word error rate of what the pipeline heard, against a reference transcript (``NAME.txt``
  beside the audio file, or the ``tests/data/speech.tsv`` manifest), and of the ASR run on the
  whole unpadded utterance;
- real-time factors: ASR (each input transcribed whole) and TTS (a few sentences);
- memory: resident set after loading and warming the engines, and the peak (``ru_maxrss``)
  after the paced sessions (the pipeline's own) and after everything (the naive baseline
  synthesizes whole replies, which can go higher);
- CPU while idle-listening: a paced replay of ~10 s of room tone (-60 dBFS), process CPU time
  over wall time, in % of one core.

Order: load and warm, idle listening, every paced session, then the engines alone on each
input (ASR real-time factor and the naive baseline), then the TTS real-time factor.

The naive baseline, per input and on the same engines: wait a fixed 0.8 s of silence,
transcribe the whole utterance, generate the whole reply, synthesize all of it, then play:
``800 ms + ASR + LLM (full reply) + TTS (all chunks)``. The ratio naive / voxloop of the medians
is printed.

``--qa`` (or ``--tiers``) measures answers instead, per model tier: the spoken QA set of
``scripts/qa_set.py`` through the same paced pipeline, one tier per process; accuracy, memory
checks, parroted replies, latency and its shares, the model's tokens/s and first-token time,
peak RSS. See ``scripts/qa_bench.py``.

This is a measurement: it never fails on a figure (exit code 0 unless something crashes).
``tests/test_bench_script.py`` runs ``--quick`` and checks the report's shape;
``tests/test_qa_bench.py`` runs ``--qa --quick``.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr
from voxloop.pipeline.config import Config, load_config
from voxloop.pipeline.dialog import SPOKEN_SYSTEM_PROMPT
from voxloop.pipeline.engines import Engines, check_models, load_engines
from voxloop.pipeline.replay import run_replay
from voxloop.voice.audio_file import iter_audio

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
RATE = 16000
"""Hertz the pipeline hears at; every input is converted to it."""

NAIVE_SILENCE_MS = 800.0
"""The naive baseline's fixed end-of-turn silence."""
ROOM_TONE_DBFS = -60.0

DEFAULT_RECORDINGS = [
    "what_time_is_it.wav",
    "whats_the_date_today.wav",
    "turn_on_the_lamp.wav",
    "goforward.wav",
    "ldc93s1.wav",
    "arctic_a0024.wav",
    "spk1_snt1.wav",
    "spk1_snt2.wav",
    "spk1_snt3.wav",
    "spk2_snt1.wav",
    "spk2_snt2.wav",
    "spk2_snt4.wav",
]
SYNTH_QUESTIONS = [
    ("Why is the sky blue?", "piper"),
    ("What is the capital of France?", "piper"),
    ("Can you recommend a good book?", "piper"),
    ("How many legs does a spider have?", "espeak"),
    ("What should I cook for dinner tonight?", "espeak"),
    ("Who wrote Romeo and Juliet?", "espeak"),
]
QUICK_RECORDINGS = ["what_time_is_it.wav", "turn_on_the_lamp.wav"]
QUICK_QUESTIONS = [("What is the capital of France?", "piper")]

TTS_SENTENCES = [
    "The capital of France is Paris.",
    "Sure, here is a quick one: why did the scarecrow win an award? Because he was outstanding in his field.",
    "It is about twenty degrees outside, with a light breeze from the west.",
]

SHARES = [
    "endpoint",
    "asr",
    "llm_first_token",
    "first_clause",
    "tts_first_chunk",
    "output",
]
"""The latency's parts, in pipeline order; ``output`` is the remainder."""
SHORT = {"endpoint": "endpoint", "asr": "asr_tail", "llm_first_token": "llm_1st_tok", "first_clause": "1st_clause",
         "tts_first_chunk": "tts_1st_chk", "output": "output"}  # fmt: skip
KNOWN_STAGES = {
    "endpoint",
    "asr",
    "llm_first_token",
    "first_sentence",
    "tts_first_chunk",
}

logger = logging.getLogger("bench")


# --- inputs -------------------------------------------------------------------------------


@dataclass
class Input:
    name: str
    kind: str
    """human, piper, espeak or file."""
    audio: np.ndarray
    """float32 mono at 16 kHz, unpadded."""
    reference: str | None

    @property
    def duration_s(self) -> float:
        return len(self.audio) / RATE


def manifest() -> dict[str, str]:
    with open(DATA / "speech.tsv", encoding="utf-8") as f:
        return {row["file"]: row["transcript"] for row in csv.DictReader(f, delimiter="\t")}


def read_16k(path: Path) -> np.ndarray:
    return np.concatenate(list(iter_audio(path, target_rate=RATE))).astype(np.float32)


def reference_for(path: Path, known: dict[str, str]) -> str | None:
    txt = path.with_suffix(".txt")
    if txt.exists():
        return txt.read_text(encoding="utf-8").strip()
    return known.get(path.name)


def synthesized(engines: Engines, questions: list[tuple[str, str]], work: Path) -> list[Input]:
    made = []
    espeak = shutil.which("espeak-ng")
    for i, (text, voice) in enumerate(questions):
        if voice == "piper":
            pcm = np.concatenate(list(engines.tts.synthesize(text))).astype(np.float32) / 32768.0
            audio = soxr.resample(pcm, engines.tts.sample_rate, RATE).astype(np.float32)
        else:
            if espeak is None:
                print(f"espeak-ng not installed: skipping {text!r} (sudo apt-get install espeak-ng)")
                continue
            path = work / f"espeak_{i}.wav"
            subprocess.run(
                [espeak, "-v", "en-us", "-s", "150", "-w", str(path), text],
                check=True,
                timeout=30,
            )
            audio = read_16k(path)
        slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:28]
        made.append(Input(f"{voice}:{slug}", voice, audio, text))
    return made


def room_tone(seconds: float, rng: np.random.Generator) -> np.ndarray:
    return (rng.normal(0, 1, int(seconds * RATE)) * 10 ** (ROOM_TONE_DBFS / 20)).astype(np.float32)


def padded(inp: Input, before_s: float, after_s: float, work: Path, rng: np.random.Generator) -> Path:
    path = work / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', inp.name)}.padded.wav"
    audio = np.concatenate([room_tone(before_s, rng), inp.audio, room_tone(after_s, rng)])
    sf.write(path, np.clip(audio, -1, 1), RATE, subtype="PCM_16")
    return path


# --- figures ------------------------------------------------------------------------------


_NUMBERS = {"1": "one", "2": "two", "3": "three", "10": "ten"}


def normalize(text: str) -> str:
    """As ``tests/conftest.py::normalize``."""
    text = text.lower().replace("what's", "what is").replace("-", " ")
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    return " ".join(_NUMBERS.get(w, w) for w in text.split())


def wer(references: list[str], hypotheses: list[str]) -> float | None:
    if not references:
        return None
    import jiwer

    return float(
        jiwer.wer(
            [normalize(r) for r in references],
            [normalize(h) or "<empty>" for h in hypotheses],
        )
    )


def summary(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "median": None, "p95": None, "max": None, "mean": None}
    return {
        "n": len(values),
        "median": round(float(np.median(values)), 1),
        "p95": round(float(np.percentile(values, 95)), 1),
        "max": round(float(max(values)), 1),
        "mean": round(float(statistics.fmean(values)), 1),
    }


def speculate_ms() -> float:
    """Silence after which the pipeline takes a head start (0 when it has none)."""
    from voxloop.voice.vad import EndpointerConfig

    return float(getattr(EndpointerConfig(), "speculate_ms", 0) or 0)


def shares(latency_ms: float | None, stages: dict[str, float], head_start_ms: float) -> dict[str, float]:
    """The latency split into SHARES (ms) along the critical path; they add up to the latency.

    The stages are laid on a timeline from the end of the user's speech: the endpoint wait
    from 0; recognition from the endpoint decision, or, when the turn had a head start
    (``head_start`` in its stages), from ``head_start_ms`` of silence, overlapping the wait;
    then the first token, the first clause and its first audio chunk, one after the other.
    Each stage's share is the part of it that nothing before it already covers (so work hidden
    inside the endpoint wait counts 0, and ``asr`` is the recognition *tail*). ``output`` is
    the rest up to the first audible sample: hand-overs, queues and the output buffer.
    """
    out: dict[str, float] = {}
    endpoint = stages.get("endpoint", 0.0)
    out["endpoint"] = endpoint
    covered = endpoint
    t = head_start_ms if "head_start" in stages else endpoint
    steps = [
        ("asr", stages.get("asr")),
        ("llm_first_token", stages.get("llm_first_token")),
        (
            "first_clause",
            None if "first_sentence" not in stages else stages["first_sentence"] - stages.get("llm_first_token", 0.0),
        ),
        ("tts_first_chunk", stages.get("tts_first_chunk")),
    ]
    for name, ms in steps:
        if ms is None:
            continue
        start, t = t, t + max(0.0, ms)
        out[name] = max(0.0, t - max(start, covered))
        covered = max(covered, t)
    if latency_ms is not None:
        out["output"] = latency_ms - covered
    return {k: round(v, 1) for k, v in out.items()}


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "ram_gb": ram_gb,
        "os": platform.platform(),
        "python": platform.python_version(),
    }


# --- the runs -----------------------------------------------------------------------------


@dataclass
class TurnRow:
    input: str
    kind: str
    turn: int
    user_text: str
    assistant_text: str
    latency_ms: float | None
    stages: dict[str, float]
    shares: dict[str, float]
    wer: float | None
    interrupted: bool
    error: str | None


@dataclass
class InputRow:
    input: str
    kind: str
    duration_s: float
    reference: str | None
    turns: int
    heard: str
    """What the pipeline heard (its turns joined)."""
    wer: float | None
    asr_text: str
    asr_ms: float
    asr_rtf: float
    asr_wer: float | None
    naive: dict[str, Any] = field(default_factory=dict)
    replay_wall_s: float = 0.0
    load_1m: float = 0.0
    """Load average when this input's session started: other work on the machine skews its figures."""
    peak_rss_after_mb: float = 0.0
    """The process's memory high-water mark when this input's session ended."""


@dataclass
class Replayed:
    turns: list[TurnRow]
    heard: str
    wall_s: float
    load_1m: float
    peak_rss_mb: float
    """The process's high-water mark when this session ended (it only grows)."""


def replay_input(
    inp: Input, engines: Engines, config: Config, work: Path, rng: np.random.Generator, pad_after_s: float
) -> Replayed:
    """One paced session of the live pipeline on the padded input."""
    head_start = speculate_ms()
    load_1m = round(os.getloadavg()[0], 2)
    path = padded(inp, 1.0, pad_after_s, work, rng)
    started = time.perf_counter()
    result = run_replay(path, work / f"{path.stem}.voxloop", engines, config, fast=False)
    wall = time.perf_counter() - started
    turns = []
    for t in result.turns:
        turns.append(
            TurnRow(
                inp.name, inp.kind, t.turn_id, t.user_text, t.assistant_text,
                None if t.latency_ms is None else round(t.latency_ms, 1),
                {k: round(v, 1) for k, v in t.stages.items()}, shares(t.latency_ms, t.stages, head_start),
                None if inp.reference is None else wer([inp.reference], [t.user_text]),
                t.interrupted, t.error,
            )
        )  # fmt: skip
    heard = " ".join(t.user_text for t in result.turns if t.user_text)
    return Replayed(turns, heard, round(wall, 1), load_1m, round(peak_rss_mb(), 1))


def measure_input(inp: Input, replayed: Replayed, engines: Engines, config: Config) -> InputRow:
    """The engines alone on the same input: ASR real-time factor and the naive baseline."""
    # The whole unpadded utterance, transcribed at once: the ASR's real-time factor and the
    # naive baseline's ASR step.
    started = time.perf_counter()
    transcript = engines.asr.transcribe(inp.audio)
    asr_ms = (time.perf_counter() - started) * 1000
    naive = {"load_1m": round(os.getloadavg()[0], 2), **naive_turn(engines, config, transcript.text, asr_ms)}
    return InputRow(
        inp.name, inp.kind, round(inp.duration_s, 2), inp.reference, len(replayed.turns), replayed.heard,
        None if inp.reference is None else wer([inp.reference], [replayed.heard]),
        transcript.text, round(asr_ms, 1), round(asr_ms / 1000 / inp.duration_s, 3),
        None if inp.reference is None else wer([inp.reference], [transcript.text]),
        naive, replayed.wall_s, replayed.load_1m, replayed.peak_rss_mb,
    )  # fmt: skip


def naive_turn(engines: Engines, config: Config, text: str, asr_ms: float) -> dict[str, Any]:
    """Turn-based: fixed silence, whole transcript, whole reply, whole synthesis, then play."""
    messages = [
        {"role": "system", "content": SPOKEN_SYSTEM_PROMPT},
        {"role": "user", "content": text or "Hello."},
    ]
    started = time.perf_counter()
    reply = "".join(engines.llm.stream(messages, config.dialog.max_reply_tokens))
    llm_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    samples = sum(len(chunk) for chunk in engines.tts.synthesize(reply.strip() or "Sorry."))
    tts_ms = (time.perf_counter() - started) * 1000
    return {
        "silence_ms": NAIVE_SILENCE_MS,
        "asr_ms": round(asr_ms, 1),
        "llm_ms": round(llm_ms, 1),
        "tts_ms": round(tts_ms, 1),
        "latency_ms": round(NAIVE_SILENCE_MS + asr_ms + llm_ms + tts_ms, 1),
        "reply_chars": len(reply),
        "reply_audio_s": round(samples / engines.tts.sample_rate, 2),
    }


def tts_rtf(engines: Engines, sentences: list[str]) -> dict[str, float]:
    total_s = audio_s = 0.0
    for text in sentences:
        started = time.perf_counter()
        samples = sum(len(chunk) for chunk in engines.tts.synthesize(text))
        total_s += time.perf_counter() - started
        audio_s += samples / engines.tts.sample_rate
    return {
        "rtf": round(total_s / audio_s, 3),
        "synth_s": round(total_s, 2),
        "audio_s": round(audio_s, 2),
    }


def idle_cpu(
    engines: Engines,
    config: Config,
    seconds: float,
    work: Path,
    rng: np.random.Generator,
) -> dict[str, Any]:
    path = work / "idle_room_tone.wav"
    sf.write(path, room_tone(seconds, rng), RATE, subtype="PCM_16")
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = run_replay(path, work / "idle.voxloop", engines, config, fast=False)
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    return {
        "seconds": seconds,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 3),
        "cpu_percent": round(100 * cpu / wall, 1),
        "turns": len(result.turns),
    }


# --- report -------------------------------------------------------------------------------


def fmt(x: float | None, nd: int = 0) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def print_report(report: dict[str, Any]) -> None:
    turns = report["turns"]
    extra = sorted({k for t in turns for k in t["stages"]} - KNOWN_STAGES)
    cols = SHARES + extra
    head = (
        f"{'input':30} {'turn':>4} {'latency':>8} "
        + " ".join(f"{SHORT.get(c, c)[:11]:>11}" for c in cols)
        + f" {'WER':>5}  heard"
    )
    print("\nPer turn (ms; shares of the voice-to-voice latency, in pipeline order)")
    print(head)
    print("-" * len(head))
    for t in turns:
        values = [t["shares"].get(c) if c in SHARES else t["stages"].get(c) for c in cols]
        print(
            f"{t['input'][:30]:30} {t['turn']:>4} {fmt(t['latency_ms']):>8} "
            + " ".join(f"{fmt(v):>11}" for v in values)
            + f" {fmt(t['wer'], 2):>5}  {t['user_text'][:48]!r}"
        )
    lat = report["latency_ms"]
    print(f"\nvoice-to-voice latency: median {fmt(lat['median'])} ms, p95 {fmt(lat['p95'])} ms, "
          f"max {fmt(lat['max'])} ms over {lat['n']} turns")  # fmt: skip
    print(
        "critical-path shares, medians (ms): "
        + ", ".join(f"{k} {fmt(v)}" for k, v in report["share_median_ms"].items())
    )
    print("stage times as logged, medians (ms; may overlap): "
          + ", ".join(f"{k} {fmt(v)}" for k, v in report["stage_median_ms"].items()))  # fmt: skip
    print(f"turns with a head start: {report['head_start_turns']} of {len(turns)}")
    naive = report["naive"]
    print(f"naive turn-based baseline: median {fmt(naive['latency_ms']['median'])} ms, "
          f"p95 {fmt(naive['latency_ms']['p95'])} ms, max {fmt(naive['latency_ms']['max'])} ms "
          f"(0.8 s silence + ASR {fmt(naive['part_median_ms']['asr_ms'])} + LLM {fmt(naive['part_median_ms']['llm_ms'])} "
          f"+ TTS {fmt(naive['part_median_ms']['tts_ms'])}, medians); "
          f"ratio naive/voxloop {fmt(naive['ratio_median'], 2)}x")  # fmt: skip
    w = report["wer"]
    print(f"WER: pipeline {fmt(w['pipeline'], 3)}, ASR on the whole utterance {fmt(w['asr_direct'], 3)} "
          f"({w['references']} references)")  # fmt: skip
    r = report["rtf"]
    print(f"RTF: ASR {fmt(r['asr'], 3)}, TTS {fmt(r['tts'], 3)}")
    m = report["memory"]
    print(
        f"memory: RSS after load+warm-up {fmt(m['rss_after_load_mb'])} MB; peak RSS after the paced sessions "
        f"{fmt(m['peak_rss_pipeline_mb'])} MB, after everything (with the naive baseline) {fmt(m['peak_rss_mb'])} MB"
    )
    idle = report["idle"]
    print(f"idle listening: {fmt(report['idle_cpu_percent'], 1)} % of one core over {idle['wall_s']} s "
          f"({idle['turns']} spurious turns)")  # fmt: skip
    print(f"load average before {report['load_average']['before']}, after {report['load_average']['after']}")
    if max(report["load_average"]["before"][0], report["load_average"]["after"][0]) > 1.0:
        print(
            "NOTE: the machine was busy with other work (1-minute load above 1.0); "
            "the figures include that contention. Re-run when it is idle."
        )


def plot(report: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"--plot {path}: matplotlib is not installed (pip install matplotlib); skipping the plot")
        return
    turns = [t for t in report["turns"] if t["latency_ms"] is not None]
    naive_by_input = {i["input"]: i["naive"].get("latency_ms") for i in report["inputs"]}
    colors = dict(zip(SHARES, ["#9e9e9e", "#4c72b0", "#dd8452", "#c44e52", "#55a868", "#8172b3"]))
    fig, ax = plt.subplots(figsize=(12, 0.45 * len(turns) + 1.8))
    labels = []
    for y, t in enumerate(turns):
        left = 0.0
        for name in SHARES:
            width = max(0.0, t["shares"].get(name, 0.0))
            label = SHORT[name] if y == 0 else None
            ax.barh(
                y,
                width,
                left=left,
                color=colors[name],
                label=label,
                edgecolor="white",
                linewidth=0.5,
            )
            left += width
        naive = naive_by_input.get(t["input"])
        if naive is not None:
            ax.plot(
                [naive],
                [y],
                "D",
                markersize=6,
                color="black",
                label="naive baseline" if y == 0 else None,
            )
        labels.append(f"{t['input']} #{t['turn']}")
    ax.axvline(500, color="black", linestyle=":", linewidth=1, label="500 ms")
    ax.set_yticks(range(len(turns)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("ms after the end of the user's speech (bars: voxloop's critical path; diamonds: naive baseline)")
    lat = report["latency_ms"]
    ax.set_title(
        f"voxloop voice-to-voice latency per turn (median {fmt(lat['median'])} ms, p95 {fmt(lat['p95'])} ms)",
        pad=24,
    )
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=8, fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"plot: {path}")


# --- main ---------------------------------------------------------------------------------


def build_inputs(args: argparse.Namespace, engines: Engines, work: Path) -> list[Input]:
    known = manifest()
    if args.audio:
        return [Input(p.name, "file", read_16k(p), reference_for(p, known)) for p in args.audio]
    names = QUICK_RECORDINGS if args.quick else DEFAULT_RECORDINGS
    inputs = [Input(n.rsplit(".", 1)[0], "human", read_16k(DATA / n), known[n]) for n in names]
    return inputs + synthesized(engines, QUICK_QUESTIONS if args.quick else SYNTH_QUESTIONS, work)


def run(args: argparse.Namespace) -> dict[str, Any]:
    load_before = [round(x, 2) for x in os.getloadavg()]
    config = load_config(args.config) if args.config else Config()
    # What is measured is the streaming path through the language model; "what time is it"
    # would otherwise be answered by an instant command (measured apart: docs/benchmarks.md).
    config.assistant.commands = args.commands
    if args.llm_model:
        config.models.llm = args.llm_model
    plan = check_models(config)
    t = config.threads
    print(f"threads: asr {t.asr}, llm {t.llm}, tts {t.tts}; load average {load_before}")
    started = time.perf_counter()
    engines = load_engines(config, plan)
    load_s = time.perf_counter() - started
    rss_loaded = rss_mb()
    print(f"engines loaded and warmed in {load_s:.1f} s; RSS {rss_loaded:.0f} MB")

    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory(prefix="voxloop-bench-") as tmp:
        work = Path(args.out_dir) if args.out_dir else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        inputs = build_inputs(args, engines, work)
        pad_after = args.pad_after if args.pad_after is not None else (2.0 if args.quick else 4.0)
        # Idle listening first, then every paced session, then the engines alone: so the
        # memory high-water mark after the sessions is the pipeline's own.
        idle = idle_cpu(engines, config, args.idle_seconds or (4.0 if args.quick else 10.0), work, rng)
        print(f"idle listening: {idle['cpu_percent']} % of one core")
        replays: list[Replayed] = []
        for n, inp in enumerate(inputs, 1):
            r = replay_input(inp, engines, config, work, rng, pad_after)
            replays.append(r)
            lat = ", ".join(fmt(x.latency_ms) for x in r.turns) or "no turn"
            print(
                f"[{n}/{len(inputs)}] {inp.name}: {lat} ms; heard {r.heard!r}; "
                f"load {r.load_1m}; peak RSS {r.peak_rss_mb:.0f} MB"
            )
        rss_peak_pipeline = peak_rss_mb()
        print(f"naive baseline and real-time factors (peak RSS so far {rss_peak_pipeline:.0f} MB)")
        input_rows: list[InputRow] = []
        for inp, r in zip(inputs, replays):
            row = measure_input(inp, r, engines, config)
            input_rows.append(row)
            print(
                f"  {inp.name}: naive {fmt(row.naive['latency_ms'])} ms, ASR {fmt(row.asr_ms)} ms; "
                f"load {row.naive['load_1m']}"
            )
        turn_rows = [t for r in replays for t in r.turns]
        tts = tts_rtf(engines, TTS_SENTENCES[:1] if args.quick else TTS_SENTENCES)

    latencies = [t.latency_ms for t in turn_rows if t.latency_ms is not None]
    naive_lat = [i.naive["latency_ms"] for i in input_rows]
    stage_keys = sorted({k for t in turn_rows for k in t.stages})
    refs = [i for i in input_rows if i.reference is not None]
    asr_total_s = sum(i.asr_ms for i in input_rows) / 1000
    audio_total_s = sum(i.duration_s for i in input_rows)
    lat_summary = summary(latencies)
    naive_summary = summary(naive_lat)
    ratio = None
    if lat_summary["median"] and naive_summary["median"]:
        ratio = round(float(naive_summary["median"]) / float(lat_summary["median"]), 2)
    rss_peak = peak_rss_mb()
    report: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        "load_average": {
            "before": load_before,
            "after": [round(x, 2) for x in os.getloadavg()],
        },
        "models": {
            "asr": str(plan.asr_dir),
            "llm": str(plan.llm_path or plan.llm_url),
            "voice": str(plan.voice.model),
        },
        "threads": asdict(config.threads),
        "hangover_ms": config.turns.hangover_ms,
        "max_reply_tokens": config.dialog.max_reply_tokens,
        "load_ms": {k: round(v) for k, v in engines.load_ms.items()},
        "latency_ms": lat_summary,
        "share_median_ms": {
            k: round(float(np.median(v)), 1) for k in SHARES if (v := [t.shares[k] for t in turn_rows if k in t.shares])
        },
        "head_start_turns": sum("head_start" in t.stages for t in turn_rows),
        "stage_median_ms": {
            k: round(float(np.median([t.stages[k] for t in turn_rows if k in t.stages])), 1) for k in stage_keys
        },
        "naive": {
            "latency_ms": naive_summary,
            "part_median_ms": {
                k: round(float(np.median([i.naive[k] for i in input_rows])), 1) for k in ("asr_ms", "llm_ms", "tts_ms")
            },
            "ratio_median": ratio,
        },
        "wer": {
            "pipeline": wer([i.reference for i in refs], [i.heard for i in refs]),  # type: ignore[misc]
            "asr_direct": wer([i.reference for i in refs], [i.asr_text for i in refs]),  # type: ignore[misc]
            "references": len(refs),
        },
        "rtf": {
            "asr": round(asr_total_s / audio_total_s, 3) if audio_total_s else None,
            "tts": tts["rtf"],
            "tts_detail": tts,
        },
        "memory": {
            "rss_after_load_mb": round(rss_loaded, 1),
            "peak_rss_pipeline_mb": round(rss_peak_pipeline, 1),
            "peak_rss_mb": round(rss_peak, 1),
        },
        "peak_rss_mb": round(rss_peak, 1),
        "idle": idle,
        "idle_cpu_percent": idle["cpu_percent"],
        "inputs": [asdict(i) for i in input_rows],
        "turns": [asdict(t) for t in turn_rows],
    }
    return report


def qa_bench() -> Any:
    """``scripts/qa_bench.py``, the answers per model tier (scripts/ is not a package)."""
    import importlib.util

    name = "voxloop_scripts_qa_bench"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("qa_bench.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "audio",
        nargs="*",
        type=Path,
        help="one question per file (default: the built-in set)",
    )
    parser.add_argument("--quick", action="store_true", help="3 inputs, shorter idle run: a smoke run (--qa: the first tier, 4 questions, one memory check)")
    parser.add_argument("--commands", action="store_true", help="let instant commands answer what they can (off: every turn goes to the LLM)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the figures here")
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.png",
        help="per-turn waterfall of the stages (matplotlib); --qa: latency against accuracy per tier (.svg needs nothing)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="a voxloop config file (default: the built-in defaults)",
    )
    parser.add_argument(
        "--pad-after",
        type=float,
        help="seconds of room tone after each input (default 4, quick 2; --qa 1.5: its replays run on until the reply has played)",
    )
    parser.add_argument(
        "--idle-seconds",
        type=float,
        help="length of the idle-listening run (default 10, quick 4)",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        help="keep the padded inputs and each replay's output here",
    )
    parser.add_argument("--llm-model", metavar="TIER_OR_GGUF", help="the language model (a tier name or a GGUF file; default: the config's)")
    qa = parser.add_argument_group("answers per model tier (scripts/qa_bench.py)")
    qa.add_argument("--qa", action="store_true", help="the spoken QA set per model tier instead of the latency report")
    qa.add_argument("--tiers", metavar="T1,T2", help="tier names, GGUF paths or NAME=PATH (implies --qa; default: the three tiers)")
    qa.add_argument("--fast", action="store_true", help="--qa on the simulated clock: answers only, latencies not wall-clock")
    qa.add_argument("--audio-cache", type=Path, metavar="DIR", help="--qa: keep the spoken questions here and reuse them (Piper varies run to run)")
    qa.add_argument("--replot", type=Path, metavar="FILE.json", help="the --qa table (and --plot) again from a saved --json")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    for p in args.audio:
        if not p.exists():
            parser.error(f"{p}: no such file")
    if args.qa or args.tiers or args.replot:
        if args.audio:
            parser.error("--qa asks its own questions (scripts/qa_set.py): no audio files")
        return qa_bench().main(args)
    if args.fast:
        parser.error("--fast is for --qa (the latency report is always paced)")

    report = run(args)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"json: {args.json}")
    if args.plot:
        plot(report, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
