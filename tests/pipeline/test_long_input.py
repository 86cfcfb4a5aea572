"""A recording hours long is streamed, not loaded: memory stays flat while it replays."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import soundfile as sf

from voxloop.pipeline.config import Config
from voxloop.pipeline.engines import Engines
from voxloop.pipeline.replay import run_replay

MINUTES = 30


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def test_a_long_recording_replays_with_flat_memory(engines: Engines, tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", samplerate=8000, channels=1, subtype="PCM_16") as f:
        for _ in range(MINUTES * 6):  # room tone, written 10 s at a time
            f.write(rng.normal(0, 0.001, 80_000).astype(np.float32))
    size_mb = path.stat().st_size / 2**20

    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            samples.append(rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = run_replay(path, tmp_path / "out", engines, Config(), fast=True)
    finally:
        done.set()
        sampler.join()

    assert result.duration_s >= MINUTES * 60
    assert sf.info(result.conversation).duration >= MINUTES * 60
    assert len(samples) >= 10
    tenth = max(1, len(samples) // 10)
    growth = np.mean(samples[-tenth:]) - np.mean(samples[:tenth])
    # The whole input as 16 kHz float would be ~115 MB and the conversation ~115 MB more.
    assert growth < min(10.0, size_mb / 2), (growth, samples[:3], samples[-3:])
