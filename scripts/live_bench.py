"""The live path against replay: voice-to-voice latency of ``voxloop chat`` through a real sound
server, measured on one clock, next to ``voxloop replay`` of the same questions.

::

    .venv/bin/python scripts/live_bench.py [--llm-model NAME] [--latency S] [--json FILE] [--quick]

A private PulseAudio server (``scripts/pulse_test_server.sh``) gets one stereo null sink,
``vrec``. The question is played into ``vq``, a remap of ``vrec``'s left channel; the
microphone voxloop listens on is ``vqmic``, a remap source of that same left channel; voxloop's
speaker is ``vans``, a remap of the right channel. Recording ``vrec.monitor`` once gives the
question on the left and the answer on the right, on the sound server's own clock: the latency
is the end of the question's voice (left) to the first audible sample of the answer (right),
with nothing of voxloop's own accounting in it. The microphone does not hear the speaker (a
headset), so echo plays no part.

The same questions are then replayed (``voxloop replay``, paced at audio rate) and measured the
same way from ``conversation.wav`` (user left, assistant right). The difference of the medians is
what the live path costs: device buffers (``--latency``), resampling, the sound server.

This is a measurement: it never fails on a figure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "scripts" / "pulse_test_server.sh"
RATE = 16000
THRESHOLD = 0.01
"""Peak of a 10 ms block that counts as audible (-40 dBFS)."""

QUESTIONS = [
    ("What is the capital of France?", "piper"),
    ("How many legs does a spider have?", "espeak"),
    ("Which planet is known as the red planet?", "piper"),
    ("What is the largest ocean on Earth?", "espeak"),
    ("Who wrote Romeo and Juliet?", "piper"),
    ("What gas do plants take in from the air?", "espeak"),
]


def synthesize(text: str, voice: str, out: Path) -> Path:
    if voice == "espeak":
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(out), text], check=True, timeout=30)
    else:
        from voxloop.models.piper_tts import PiperTTS
        from voxloop.models.registry import resolve_voice

        tts = PiperTTS(resolve_voice(None))
        sf.write(out, np.concatenate(list(tts.synthesize(text))), tts.sample_rate, subtype="PCM_16")
    return out


def blocks(audio: np.ndarray, rate: int) -> np.ndarray:
    n = rate // 100
    return np.abs(audio[: len(audio) // n * n]).reshape(-1, n).max(axis=1)


def latencies(left: np.ndarray, right: np.ndarray, rate: int) -> list[float]:
    """For each question on the left: its voice's end to the answer's first audible sample on
    the right, in ms. A question ends where the left is quiet for 1.5 s."""
    lq, rq = blocks(left, rate) > THRESHOLD, blocks(right, rate) > THRESHOLD
    found = []
    i = 0
    while True:
        loud = np.flatnonzero(lq[i:])
        if not len(loud):
            return found
        start = i + int(loud[0])
        end = start
        while end < len(lq) and lq[end : end + 150].any():  # 1.5 s of quiet ends the question
            end += 1 + int(np.flatnonzero(lq[end : end + 150])[-1])
        answer = np.flatnonzero(rq[end:])
        if len(answer):
            found.append(float(answer[0]) * 10.0)
        i = end + 1


class Pulse:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        out = subprocess.run(["bash", str(SERVER), "start", str(folder)], capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise SystemExit(f"live_bench: PulseAudio would not start: {out.stderr.strip()}")
        self.env = {**os.environ, **dict(line.split("=", 1) for line in out.stdout.split() if "=" in line)}
        pactl = ["pactl"]
        for args in (
            ["load-module", "module-null-sink", "sink_name=vrec", "channels=2", "channel_map=front-left,front-right"],
            ["load-module", "module-remap-sink", "sink_name=vq", "master=vrec", "channels=1", "channel_map=mono", "master_channel_map=front-left", "remix=no"],
            ["load-module", "module-remap-sink", "sink_name=vans", "master=vrec", "channels=1", "channel_map=mono", "master_channel_map=front-right", "remix=no"],
            ["load-module", "module-remap-source", "source_name=vqmic", "master=vrec.monitor", "channels=1", "channel_map=mono", "master_channel_map=front-left", "remix=no"],
            ["set-default-source", "vqmic"],
            ["set-default-sink", "vans"],
        ):
            subprocess.run(pactl + args, env=self.env, check=True, capture_output=True, timeout=15)

    def stop(self) -> None:
        subprocess.run(["bash", str(SERVER), "stop", str(self.folder)], capture_output=True, timeout=30)


def live_run(wavs: list[Path], work: Path, args: argparse.Namespace) -> dict[str, Any]:
    pulse = Pulse(Path(tempfile.mkdtemp(prefix="voxlive-")))
    try:
        rec_path = work / "live.wav"
        rec = subprocess.Popen(
            ["parecord", "--device=vrec.monitor", "--file-format=wav", "--channels=2", f"--rate={RATE}", str(rec_path)],
            env=pulse.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        chat = subprocess.Popen(
            [sys.executable, "-m", "voxloop.pipeline.cli", "chat", "--plain", "--no-transcript", "--no-save",
             "--state-dir", str(work / "state"), "--latency", args.latency, *model_flags(args)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env={**pulse.env, "HOME": str(work)},
        )  # fmt: skip
        lines: list[str] = []
        got = threading.Condition()

        def read() -> None:
            assert chat.stdout is not None
            for line in chat.stdout:
                with got:
                    lines.append(line.rstrip())
                    got.notify_all()

        threading.Thread(target=read, daemon=True).start()
        stderr: list[str] = []
        threading.Thread(target=lambda: stderr.extend(chat.stderr or []), daemon=True).start()

        def wait_for(pattern: str, after: int, timeout: float) -> int:
            with got:
                ok = got.wait_for(lambda: any(re.search(pattern, x) for x in lines[after:]), timeout)
            if not ok:
                chat.kill()
                raise SystemExit(f"live_bench: chat never printed {pattern!r}:\n" + "\n".join(lines) + "".join(stderr)[-3000:])
            return len(lines)

        seen = wait_for(r" ready: listening on ", 0, 300)
        reported = []
        for wav in wavs:
            subprocess.run(["paplay", "--device=vq", str(wav)], env=pulse.env, check=True, timeout=60)
            seen = wait_for(r" turn \d+ vox \(", seen, 240)
            m = re.search(r"vox \((\d+) ms\)", lines[seen - 1])
            reported.append(float(m[1]) if m else None)
            seen = wait_for(r" listening$", seen, 60)
            time.sleep(1.0)  # room tone between questions, as a person would leave it
        chat.send_signal(signal.SIGINT)
        chat.wait(timeout=30)
        rec.send_signal(signal.SIGINT)
        rec.wait(timeout=10)
    finally:
        pulse.stop()
    audio, rate = sf.read(rec_path, dtype="float32", always_2d=True)
    measured = latencies(audio[:, 0], audio[:, 1], rate)
    return {"latency_ms": measured, "reported_ms": reported}


def replay_run(wavs: list[Path], work: Path, args: argparse.Namespace) -> dict[str, Any]:
    measured = []
    for i, wav in enumerate(wavs):
        out = work / f"replay{i}"
        subprocess.run(
            [sys.executable, "-m", "voxloop.pipeline.cli", "replay", str(wav), "--out-dir", str(out), "--no-save",
             "--state-dir", str(work / "state"), *model_flags(args)],
            check=True, capture_output=True, timeout=300, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        audio, rate = sf.read(out / "conversation.wav", dtype="float32", always_2d=True)
        measured += latencies(audio[:, 0], audio[:, 1], rate)[:1]
    return {"latency_ms": measured}


def padded(wav: Path, work: Path) -> Path:
    """The question with 1 s of silence before and 4 s after, at 16 kHz (the replay's input)."""
    import soxr

    audio, rate = sf.read(wav, dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    if rate != RATE:
        mono = soxr.resample(mono, rate, RATE)
    out = work / f"padded-{wav.name}"
    sf.write(out, np.concatenate([np.zeros(RATE), mono, np.zeros(4 * RATE)]).astype(np.float32), RATE, subtype="PCM_16")
    return out


def model_flags(args: argparse.Namespace) -> list[str]:
    return ["--llm-model", args.llm_model] if args.llm_model else []


def summary(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"n": 0, "median": None, "p95": None}
    ordered = sorted(values)
    return {"n": len(values), "median": statistics.median(ordered), "p95": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--llm-model", help="a model name or GGUF file (default: auto)")
    parser.add_argument("--latency", default="0.1", help="chat's --latency (PortAudio buffering, seconds)")
    parser.add_argument("--quick", action="store_true", help="two questions")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    for tool in ("pulseaudio", "pactl", "paplay", "parecord", "espeak-ng"):
        if shutil.which(tool) is None:
            print(f"live_bench: {tool} is not installed (scripts/install.sh installs it)", file=sys.stderr)
            return 2
    work = Path(tempfile.mkdtemp(prefix="voxlive-work-"))
    questions = QUESTIONS[:2] if args.quick else QUESTIONS
    wavs = [synthesize(text, voice, work / f"q{i}.wav") for i, (text, voice) in enumerate(questions)]
    live = live_run(wavs, work, args)
    replay = replay_run([padded(w, work) for w in wavs], work, args)
    report = {
        "questions": len(wavs),
        "latency_setting_s": args.latency,
        "llm_model": args.llm_model or "auto",
        "live": {**summary(live["latency_ms"]), "each": live["latency_ms"], "reported_by_voxloop": live["reported_ms"]},
        "replay": {**summary(replay["latency_ms"]), "each": replay["latency_ms"]},
        "load": os.getloadavg(),
    }
    lm, rm = report["live"]["median"], report["replay"]["median"]
    report["live_minus_replay_ms"] = None if lm is None or rm is None else lm - rm
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
