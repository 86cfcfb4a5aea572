"""Echo canceller benchmark: CPU per 10 ms frame, echo attenuation over the delay/gain grid,
and the memory that loading livekit's audio processing module adds.

::

    .venv/bin/python scripts/aec_bench.py [--seconds 60] [--json FILE]

CPU: a minute of real speech (``tests/data/jfk.flac``, looped) as the far end, its echo at
120 ms / -6 dB as the microphone, through ``EchoCanceller.process`` in 20 ms blocks as the
pipeline calls it; process CPU time (every thread: the module may work off the calling thread) per 10 ms frame and as a share of one core (10 ms of
audio per frame). Attenuation: the echo's level before and after the canceller from 3 s
(converged) to the end of the speech, for each delay and gain, without and with the
synthetic room. Memory: resident set of a fresh interpreter with numpy, before and after
importing ``livekit.rtc`` and creating one module.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
RATE = 16000
BLOCK = 320
DELAYS_MS = (20, 120, 250)
GAINS_DB = (-20, -6, -3)

_RSS_PROBE = """
import numpy, resource
def rss():
    return int(open('/proc/self/statm').read().split()[1]) * resource.getpagesize()
before = rss()
from livekit import rtc
apm = rtc.AudioProcessingModule(echo_cancellation=True, noise_suppression=True, high_pass_filter=True)
frame = rtc.AudioFrame(bytes(320), 16000, 1, 160)
apm.process_reverse_stream(frame); apm.process_stream(frame)
print(rss() - before)
"""


def far_end(seconds: float) -> np.ndarray:
    from voxloop.voice.audio_file import float_to_int16, iter_audio

    speech = float_to_int16(np.concatenate(list(iter_audio(DATA / "jfk.flac", target_rate=RATE))))
    n = int(seconds * RATE) // BLOCK * BLOCK
    return np.resize(speech, n)


def db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(x.astype(np.float64) ** 2) + 1e-9))


def cancel(far: np.ndarray, delay_ms: float, gain_db: float, room: bool) -> tuple[np.ndarray, np.ndarray, float]:
    """(microphone, cleaned, CPU seconds spent in the canceller)."""
    from voxloop.voice.echo_canceller import EchoCanceller
    from voxloop.voice.echo_path import EchoPath, EchoPathConfig, mix_into

    path, canceller = EchoPath(EchoPathConfig(delay_ms, gain_db, room), RATE), EchoCanceller()
    mic = np.empty_like(far)
    out = np.empty_like(far)
    cpu = 0.0
    for i in range(0, len(far), BLOCK):
        mic[i : i + BLOCK] = mix_into(np.zeros(BLOCK, dtype=np.int16), path.process(far[i : i + BLOCK]))
        t0 = time.process_time()
        out[i : i + BLOCK] = canceller.process(mic[i : i + BLOCK], far[i : i + BLOCK])
        cpu += time.process_time() - t0
    return mic, out, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="audio for the CPU measurement (default 60)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    far = far_end(args.seconds)
    _, _, cpu = cancel(far, 120, -6, room=False)
    frames = len(far) // 160
    per_frame_us = cpu / frames * 1e6
    print(f"CPU: {per_frame_us:.0f} us per 10 ms frame, {per_frame_us / 100:.2f} % of one core ({args.seconds:.0f} s of audio)")

    speech = far_end(11.0)  # JFK once
    converged = slice(3 * RATE, len(speech))
    grid = []
    for room in (False, True):
        for delay in DELAYS_MS:
            for gain in GAINS_DB:
                mic, out, _ = cancel(speech, delay, gain, room)
                attenuation = db(mic[converged]) - db(out[converged])
                grid.append({"delay_ms": delay, "gain_db": gain, "room": room, "attenuation_db": round(attenuation, 1)})
                print(f"echo {delay:3d} ms {gain:+3d} dB{' room' if room else '     '}: falls by {attenuation:.1f} dB")

    added = int(subprocess.run([sys.executable, "-c", _RSS_PROBE], capture_output=True, text=True, check=True).stdout)
    print(f"RSS added by loading livekit and one module: {added / 2**20:.1f} MiB")
    if args.json:
        args.json.write_text(json.dumps({"cpu_us_per_frame": per_frame_us, "grid": grid, "rss_added_bytes": added}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
