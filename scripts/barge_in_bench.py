"""Barge-in benchmark: how fast the assistant stops when talked over, and how often its own
echo makes it stop, on the simulated echo path of replay mode.

::

    .venv/bin/python scripts/barge_in_bench.py [--quick] [--paced] [--json FILE]

Two experiments, each replay its own session on the real bundled models, echo canceller on:

1. **Interruptions.** A question that gets a long reply, then one of the human recordings of
   ``tests/data`` timed to start 2.5 or 3.5 s after the question (inside the reply), with the
   reply's echo coming back at 120 ms / -6 dB through a synthetic room (``--headset``: no echo).
   The interrupting speech
   is set to ``--user-dbfs`` (default -20 dBFS RMS, about the level the assistant plays at;
   ``--as-recorded`` keeps the recordings' own, about -32 dBFS). Per interruption: the
   *stop time* (onset of the interrupting voice, as WebRTC's VAD finds it in the recording, to the
   end of the last audible 10 ms of the assistant before a silence of 300 ms, on the
   conversation.wav timeline), whether the reply is marked interrupted, and whether the
   interrupting question was then heard and answered.
2. **Echo only.** Two questions and nothing else, over the delay/gain grid (20, 60, 120, 250 ms
   by -20, -10, -3 dB; the room on for every other cell). A *self-interruption* is a reply
   marked interrupted, or a turn whose user text is not one of the questions (the assistant
   heard itself).

By default the replays run on the simulated clock (``--fast``): the stop time is then what the
pipeline's logic gives (VAD frames, the one-block device lag), not the engines' speed. With
``--paced`` the interruptions are replayed in real time instead, so a busy event loop shows.

A measurement: it never fails on a figure.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from voxloop.pipeline.config import Config
from voxloop.pipeline.engines import Engines, check_models, load_engines
from voxloop.pipeline.replay import run_replay
from voxloop.voice.audio_file import float_to_int16, iter_audio
from voxloop.voice.echo_path import EchoPathConfig
from voxloop.voice.vad import WebRtcVad

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
RATE = 16000
LONG_QUESTION = "Tell me a long story about a brave little dragon who wanted to fly over the mountains."
ECHO_QUESTIONS = ["Tell me about the moon and the stars.", "Why do cats like to sleep in the sun?"]
FRAME = RATE // 100
LOUD_DBFS = -40.0
ONSET_ABOVE_FLOOR_DB = 10.0


def load(path: Path) -> np.ndarray:
    return np.concatenate(list(iter_audio(path, target_rate=RATE))).astype(np.float32)


def say(engines: Engines, text: str) -> np.ndarray:
    import soxr

    audio = np.concatenate(list(engines.tts.synthesize(text))).astype(np.float32) / 32768
    return soxr.resample(audio, engines.tts.sample_rate, RATE).astype(np.float32)


def frame_dbfs(x: np.ndarray) -> np.ndarray:
    """Level of each 10 ms frame of float audio in [-1, 1]."""
    frames = x[: len(x) // FRAME * FRAME].reshape(-1, FRAME).astype(np.float64)
    return 20 * np.log10(np.sqrt((frames**2).mean(axis=1)) + 1e-9)


def onset_s(x: np.ndarray) -> float:
    """Where the voice starts: the first of three 10 ms frames in a row that WebRTC's VAD (most
    aggressive) calls speech and that stand ``ONSET_ABOVE_FLOOR_DB`` over the recording's own
    noise floor (its 10th-percentile frame level). Some recordings carry a loud room (the
    rhasspy ones sit at -40 dBFS once set to -20 dBFS of speech), which the VAD alone calls
    speech half a second before anyone talks."""
    vad = WebRtcVad(3)
    pcm = float_to_int16(x)
    levels = frame_dbfs(x)
    floor = float(np.percentile(levels, 10))
    loud = max(LOUD_DBFS, floor + ONSET_ABOVE_FLOOR_DB)
    run = 0
    for i in range(len(levels)):
        voiced = levels[i] > loud and vad.is_speech(pcm[i * FRAME : (i + 1) * FRAME])
        run = run + 1 if voiced else 0
        if run == 3:
            return (i - 2) * FRAME / RATE
    return 0.0


def stop_ms(assistant: np.ndarray, onset: float, quiet_s: float = 0.3) -> float | None:
    """Milliseconds from ``onset`` to the end of the assistant's last audible frame before a
    ``quiet_s`` silence; None when it was not talking at the onset."""
    levels = frame_dbfs(assistant)
    start = int(onset * 100)
    if not (levels[max(0, start - 20) : start] > LOUD_DBFS).any():
        return None
    need = int(quiet_s * 100)
    last_loud = start - 1
    for i in range(start, len(levels)):
        if levels[i] > LOUD_DBFS:
            last_loud = i
        elif i - last_loud >= need:
            break
    return max(0.0, (last_loud + 1 - start) * 10.0)


@dataclass
class Interruption:
    name: str
    offset_s: float
    stop_ms: float | None
    """None: the reply was not playing when the user spoke."""
    interrupted: bool
    answered: bool
    heard: str


@dataclass
class EchoRun:
    question: str
    delay_ms: float
    gain_db: float
    room: bool
    replies: int
    self_interruptions: int
    pauses: int
    """Times a reply was held for its own echo (then resumed): a stutter, not a cut."""
    echo_turns: list[str]


def write(path: Path, parts: list[tuple[float, np.ndarray]], total_s: float) -> None:
    audio = np.zeros(int(total_s * RATE), dtype=np.float32)
    for at_s, x in parts:
        i = int(at_s * RATE)
        audio[i : i + len(x)] += x[: len(audio) - i]
    sf.write(path, audio, RATE, subtype="PCM_16")


def interruptions(
    engines: Engines, config: Config, work: Path, names: list[str], paced: bool, user_dbfs: float | None, headset: bool
) -> list[Interruption]:
    question = say(engines, LONG_QUESTION)
    q_end = 0.5 + len(question) / RATE
    echo = None if headset else EchoPathConfig(delay_ms=120, gain_db=-6, room=True)
    results = []
    for name in names:
        speech = load(DATA / name)
        if user_dbfs is not None:
            speech = speech * (10 ** (user_dbfs / 20) / float(np.sqrt(np.mean(speech**2))))
        for offset in (2.5, 3.5):
            at = q_end + offset
            path = work / f"int-{Path(name).stem}-{offset}.wav"
            write(path, [(0.5, question), (at, speech)], at + len(speech) / RATE + 6.0)
            out = work / f"{path.stem}.out"
            result = run_replay(path, out, engines, config, fast=not paced, echo=echo)
            audio, _ = sf.read(result.conversation, dtype="float32")
            t = stop_ms(audio[:, 1], at + onset_s(speech))
            first = result.turns[0] if result.turns else None
            later = [x for x in result.turns[1:] if x.user_start_s and x.user_start_s >= at - 0.5]
            results.append(
                Interruption(
                    name,
                    offset,
                    t,
                    bool(first and first.interrupted),
                    bool(later and later[0].assistant_text),
                    later[0].user_text if later else "",
                )
            )
            logging.getLogger("bench").warning("%s +%.1f s: stop %s ms, heard %r", name, offset, t, results[-1].heard)
    return results


def echo_only(engines: Engines, config: Config, work: Path, quick: bool) -> list[EchoRun]:
    delays = [20, 120, 250] if quick else [20, 60, 120, 250]
    gains = [-20, -3] if quick else [-20, -10, -3]
    spoken = [(q, say(engines, q)) for q in ECHO_QUESTIONS[: 1 if quick else 2]]
    runs = []
    cell = 0
    for delay in delays:
        for gain in gains:
            room = cell % 2 == 1
            cell += 1
            for text, audio in spoken:
                path = work / f"echo-{delay}-{gain}-{len(runs)}.wav"
                write(path, [(0.5, audio)], 0.5 + len(audio) / RATE + 14.0)
                result = run_replay(path, work / f"{path.stem}.out", engines, config, fast=True, echo=EchoPathConfig(delay, gain, room))
                strangers = [t.user_text for t in result.turns[1:]]
                selfish = sum(t.interrupted for t in result.turns) + len(strangers)
                pauses = sum(t.pauses for t in result.turns)
                runs.append(EchoRun(text, delay, gain, room, len(result.turns), selfish, pauses, strangers))
                logging.getLogger("bench").warning("echo %d ms %d dB room=%s: %d self-interruptions %s", delay, gain, room, selfish, strangers)
    return runs


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few inputs only (for the test of this script)")
    parser.add_argument("--paced", action="store_true", help="replay the interruptions in real time")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument(
        "--user-dbfs", type=float, default=-20.0,
        help="level (RMS dBFS) the interrupting speech is set to; the assistant plays at about -20 (default -20)",
    )  # fmt: skip
    parser.add_argument("--as-recorded", action="store_true", help="leave the interrupting speech at its recorded level (about -32 dBFS)")
    parser.add_argument("--no-echo-cancel", action="store_true", help="the same without the echo canceller (a baseline)")
    parser.add_argument("--no-echo-predictor", action="store_true", help="the double-talk detector without its echo predictor")
    parser.add_argument("--headset", action="store_true", help="interruptions with no echo at all (headphones)")
    parser.add_argument("--skip-interruptions", action="store_true", help="only the echo-only grid")
    parser.add_argument("--keep", type=Path, help="keep every replay's input and output here (to listen, or to debug one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")

    config = Config()
    config.turns.echo_cancel = not args.no_echo_cancel
    config.turns.echo_predictor = not args.no_echo_predictor
    engines = load_engines(config, check_models(config))
    with open(DATA / "speech.tsv", encoding="utf-8") as f:
        names = [row["file"] for row in csv.DictReader(f, delimiter="\t")]
    names = names[:2] if args.quick else names
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        level = None if args.as_recorded else args.user_dbfs
        cut = [] if args.skip_interruptions else interruptions(engines, config, work, names, args.paced, level, args.headset)
        echo = echo_only(engines, config, work, args.quick)
    times = [r.stop_ms for r in cut if r.stop_ms is not None]
    report = {
        "interruptions": len(cut),
        "during_reply": len(times),
        "stop_ms_median": statistics.median(times) if times else None,
        "stop_ms_p95": percentile(times, 95) if times else None,
        "stop_ms_max": max(times) if times else None,
        "marked_interrupted": sum(r.interrupted for r in cut if r.stop_ms is not None),
        "answered_after": sum(r.answered for r in cut if r.stop_ms is not None),
        "echo_replies": sum(r.replies for r in echo),
        "echo_runs": len(echo),
        "self_interruptions": sum(r.self_interruptions for r in echo),
        "self_pauses": sum(r.pauses for r in echo),
        "user_dbfs": None if args.as_recorded else args.user_dbfs,
        "clock": "paced" if args.paced else "simulated",
        "echo_cancel": not args.no_echo_cancel,
        "echo_predictor": not args.no_echo_predictor,
        "headset": args.headset,
        "wall_s": round(time.perf_counter() - started, 1),
        "details": {"interruptions": [asdict(r) for r in cut], "echo": [asdict(r) for r in echo]},
    }
    print(f"interruptions: {report['interruptions']} ({report['during_reply']} during a reply), clock {report['clock']}")
    print(f"  stop time: median {report['stop_ms_median']} ms, p95 {report['stop_ms_p95']} ms, max {report['stop_ms_max']} ms")
    print(f"  marked interrupted {report['marked_interrupted']}, interrupting question answered {report['answered_after']}")
    print(
        f"echo only: {report['echo_runs']} replays, {report['echo_replies']} replies, "
        f"{report['self_interruptions']} self-interruptions, {report['self_pauses']} pauses for its own echo"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
