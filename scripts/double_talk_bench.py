"""Double-talk detector benchmark: how soon it hears someone talking over the assistant, and
how often it takes the assistant's own echo for someone, without the rest of the pipeline.

::

    .venv/bin/python scripts/double_talk_bench.py [--quick] [--set excess_db=20] [--json FILE]

The assistant: Piper reading twelve short paragraphs (about 10 s each), each heard through
three cells of the echo grid (delays 20, 60, 120, 250 ms by gains -20, -10, -6, -3 dB, with
and without the synthetic room) over a noise floor (-65 dBFS, ``--noise-dbfs``): 36 echo-only microphones.

- **False onsets**: onsets the detector reports on echo alone, while the assistant plays or
  within 0.6 s after (its room's tail).
- **Detection time**: each of the 14 human recordings of ``tests/data`` (at -20 dBFS RMS, the
  assistant's level; from 100 ms before the voice, without the rooms some open on) added to each microphone 1.5, 2.5 and 3.5 s into the reply, while it
  still plays. From the voice's onset (as ``barge_in_bench`` finds it: three VAD-voiced 10 ms
  frames 10 dB over the clip's noise floor) to the end of the frame that reports the onset.
  *Early*: the detector fired on the clip more than 50 ms before that onset (its lead-in room
  noise or breath: a real sound, but not yet the voice); *missed*: not within 0.6 s.

Unlike ``barge_in_bench``, the reply goes on playing whatever the detector says, so every
interruption is measured against the same echo. Add the pipeline's reaction (one 20 ms device
block, and up to 10 ms to the block's end) for the time the assistant takes to stop.

A measurement: it never fails on a figure.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import soundfile as sf
from voxloop.pipeline.config import Config
from voxloop.pipeline.engines import check_models, load_engines
from voxloop.voice.double_talk import DoubleTalkConfig, DoubleTalkDetector
from voxloop.voice.echo_path import EchoPath, EchoPathConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from barge_in_bench import DATA, RATE, load, onset_s, say  # noqa: E402

FRAME = RATE // 100
FAR_FLOOR_DBFS = -50.0
OFFSETS_S = (1.5, 2.5, 3.5)
FOLLOW_S = 0.6
EARLY_S = 0.05
LEAD_IN_S = 0.1
TEXTS = [
    "The weather today is mild, with a light breeze from the west. Clouds will gather in the afternoon, and there may be a little rain by the evening.",
    "To make a good cup of tea, warm the pot first. Then add one spoon of leaves for each cup, pour in water just off the boil, and wait four minutes.",
    "Octopuses have three hearts and blue blood. They can change the colour of their skin in a fraction of a second, and each arm can taste what it touches.",
    "The train to the city leaves every twenty minutes. On weekends it runs less often, so check the timetable before you go, and bring something to read.",
    "Once upon a time a fox lived at the edge of a quiet forest. Every morning he walked to the river, where he watched the fish and dreamed of the sea.",
    "Your meeting with the design team is at half past two. After that you have a call with the supplier, and the day ends with a review of the budget.",
    "Photosynthesis is how plants turn light into food. Leaves take in carbon dioxide and water, and with the energy of sunlight they make sugar and oxygen.",
    "If you want to learn to run further, start slowly. Add a few minutes each week, rest on the days between, and do not worry about your speed at first.",
    "The old lighthouse stood on the rocks for two hundred years. Its keeper climbed one hundred and twelve steps each night to light the great lamp.",
    "Here is a simple recipe for pancakes. Mix flour, milk and two eggs into a smooth batter, let it rest, then fry thin rounds in a hot buttered pan.",
    "Mars is the fourth planet from the sun. Its red colour comes from iron oxide in the dust, and its thin air is mostly carbon dioxide, very cold at night.",
    "Remember to water the tomatoes in the morning, not at noon. Check the leaves for yellow spots, and pick the ripe ones before the birds find them.",
]
CELLS = [EchoPathConfig(d, g, room) for d in (20, 60, 120, 250) for g in (-20, -10, -6, -3) for room in (False, True)]


@dataclass
class Trial:
    cell: str
    voice: str
    offset_s: float
    detect_ms: float | None
    """None: early or missed."""
    early: bool


def to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def echo_only(played: np.ndarray, echo: EchoPathConfig, rng: np.random.Generator, noise_dbfs: float) -> np.ndarray:
    path = EchoPath(echo, RATE)
    mic = np.concatenate([path.process(played[i : i + 2 * FRAME]) for i in range(0, len(played), 2 * FRAME)])[: len(played)]
    return to_int16(mic + rng.standard_normal(len(mic)) * 32768 * 10 ** (noise_dbfs / 20))


def playing(played: np.ndarray) -> np.ndarray:
    """Per frame: the assistant is audible."""
    frames = played[: len(played) // FRAME * FRAME].reshape(-1, FRAME).astype(np.float64)
    return np.mean(frames**2, axis=1) > (32768 * 10 ** (FAR_FLOOR_DBFS / 20)) ** 2


class TimedDetector(DoubleTalkDetector):
    """The detector, with the time its frames took (the CPU figure is the detector's alone)."""

    seconds = 0.0
    frames = 0

    def push(self, mic: np.ndarray, played: np.ndarray) -> bool | None:
        started = time.perf_counter()
        event = super().push(mic, played)
        TimedDetector.seconds += time.perf_counter() - started
        TimedDetector.frames += 1
        return event


def detector(config: DoubleTalkConfig) -> DoubleTalkDetector:
    d = TimedDetector(config)
    d.mid_reply = lambda: True  # the whole paragraph is one reply
    return d


def lead_in_trimmed(voice: np.ndarray, onset: float) -> tuple[np.ndarray, float]:
    """The recording from ``LEAD_IN_S`` before its onset, faded in over 10 ms, and the onset in
    it. Some recordings open on their own room (the rhasspy ones at -40 dBFS): spliced into the
    echo it starts abruptly, as no real room does, and the detector rightly hears a sound."""
    start = max(0, int((onset - LEAD_IN_S) * RATE))
    x = voice[start:].copy()
    x[:FRAME] *= np.linspace(0.0, 1.0, FRAME)
    return x, onset - start / RATE


def run_echo(config: DoubleTalkConfig, mic: np.ndarray, played: np.ndarray, audible: np.ndarray) -> list[float]:
    """Seconds at which the detector took the echo for someone talking."""
    d, false = detector(config), []
    for i in range(len(mic) // FRAME):
        s = slice(i * FRAME, (i + 1) * FRAME)
        if d.push(mic[s], played[s]) is True and audible[max(0, i - 60) : i + 1].any():
            false.append((i + 1) / 100)
    return false


def run_voice(config: DoubleTalkConfig, mic: np.ndarray, played: np.ndarray, at: int, voice: np.ndarray, onset: float) -> tuple[float | None, bool]:
    """Detection time (ms) of ``voice`` added at frame ``at``; and whether it fired early."""
    d = detector(config)
    mixed = mic.astype(np.float64)
    i = at * FRAME
    n = min(len(voice), len(mixed) - i)
    mixed[i : i + n] += voice[:n] * 32768
    mixed = to_int16(mixed)
    end = min(len(mic) // FRAME, at + int((onset + FOLLOW_S) * 100))
    for k in range(end):
        s = slice(k * FRAME, (k + 1) * FRAME)
        if d.push(mixed[s], played[s]) is True and k >= at:
            t = (k + 1 - at) / 100 - onset
            return (None, True) if t < -EARLY_S else (round(t * 1000), False)
    return None, False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="two paragraphs, three voices (for the test of this script)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a DoubleTalkConfig field to change")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--noise-dbfs", type=float, default=-65.0, help="the microphone's own noise (white), dBFS (default -65)")
    parser.add_argument(
        "--audio-cache", type=Path,
        help="keep Piper's paragraphs here and reuse them (Piper's voice varies run to run: compare settings on the same audio)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    types = {f.name: f.type for f in fields(DoubleTalkConfig)}
    overrides = {}
    for item in args.set:
        name, _, value = item.partition("=")
        if name not in types or types[name] not in ("int", "float", "bool"):
            parser.error(f"--set {item}: not a number or true/false field of DoubleTalkConfig (one of {', '.join(k for k, t in types.items() if t in ('int', 'float', 'bool'))})")
        if types[name] == "bool" and value.lower() not in ("true", "false"):
            parser.error(f"--set {item}: give {name}=true or {name}=false")
        overrides[name] = value.lower() == "true" if types[name] == "bool" else int(value) if types[name] == "int" else float(value)
    config = DoubleTalkConfig(**overrides)

    engines = load_engines(Config(), check_models(Config()))
    with open(DATA / "speech.tsv", encoding="utf-8") as f:
        names = [row["file"] for row in csv.DictReader(f, delimiter="\t")]
    texts, names = (TEXTS[:2], names[:3]) if args.quick else (TEXTS, names)
    voices = []
    for name in names:
        x = load(DATA / name)
        x = x * (0.1 / float(np.sqrt(np.mean(x**2))))  # -20 dBFS RMS
        voices.append((name, *lead_in_trimmed(x, onset_s(x))))
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    replies = 0
    false: list[str] = []
    trials: list[Trial] = []
    for t, text in enumerate(texts):
        silence = np.zeros(RATE, dtype=np.float32)
        cached = args.audio_cache / f"paragraph-{t}.wav" if args.audio_cache else None
        if cached is not None and cached.exists():
            played = sf.read(cached, dtype="int16")[0]
        else:
            played = to_int16(np.concatenate([silence, say(engines, text), silence / 2]) * 32768)
            if cached is not None:
                cached.parent.mkdir(parents=True, exist_ok=True)
                sf.write(cached, played, RATE, subtype="PCM_16")
        audible = playing(played)
        start = int(np.argmax(audible))
        for j in range(3):
            echo = CELLS[(3 * t + j) % len(CELLS)] if j < 2 else CELLS[int(rng.integers(len(CELLS)))]
            cell = f"{echo.delay_ms:g}ms{echo.gain_db:+g}dB{' room' if echo.room else ''}"
            mic = echo_only(played, echo, rng, args.noise_dbfs)
            false += [f"paragraph {t}, {cell}, {at:.2f} s" for at in run_echo(config, mic, played, audible)]
            replies += 1
            for offset in OFFSETS_S:
                at = start + int(offset * 100)
                if audible[at : at + 100].mean() < 0.6:
                    continue  # the reply is (nearly) over there
                for name, voice, onset in voices:
                    ms, early = run_voice(config, mic, played, at, voice, onset)
                    trials.append(Trial(cell, name, offset, ms, early))
    elapsed = time.perf_counter() - started
    times = [x.detect_ms for x in trials if x.detect_ms is not None]
    early = sum(x.early for x in trials)
    missed = len(trials) - len(times) - early
    # Early counts as 0 (the reply was already held), missed as never: the honest 95th percentile.
    whole = [0.0 if x.early else (x.detect_ms if x.detect_ms is not None else float("inf")) for x in trials]
    report = {
        "config": asdict(config),
        "echo_only_replies": replies,
        "false_onsets": len(false),
        "false_onset_at": false,
        "trials": len(trials),
        "detected": len(times),
        "early": early,
        "missed": missed,
        "detect_ms_median": float(np.median(times)) if times else None,
        "detect_ms_p90": float(np.percentile(times, 90)) if times else None,
        "detect_ms_p95": float(np.percentile(times, 95)) if times else None,
        "detect_ms_p95_all": float(np.percentile(whole, 95, method="higher")) if whole else None,
        "us_per_frame": round(TimedDetector.seconds / max(TimedDetector.frames, 1) * 1e6, 1),
        "wall_s": round(elapsed, 1),
        "trial_details": [asdict(x) for x in trials],
    }
    print(f"echo only: {replies} replies, {len(false)} false onsets {false}")
    print(
        f"voices: {len(trials)} trials, detected {len(times)}, early {early}, missed {missed}; "
        f"median {report['detect_ms_median']} ms, p90 {report['detect_ms_p90']} ms, p95 {report['detect_ms_p95']} ms "
        f"(early as 0, missed as never: p95 {report['detect_ms_p95_all']} ms)"
    )
    print(f"cpu: {report['us_per_frame']} us per 10 ms frame")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
