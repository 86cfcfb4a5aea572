"""The echo stage on blocks of any length: whole 10 ms frames out, on one timeline."""

from __future__ import annotations

import asyncio

import numpy as np

from voxloop.pipeline.echo_stage import EchoCancelStage
from voxloop.pipeline.frames import NO_TURN, AudioFrame
from voxloop.pipeline.stage import run_stage
from voxloop.voice.echo_canceller import EchoCanceller

RATE = 16000


def test_blocks_of_odd_length_come_out_as_whole_frames_without_a_gap() -> None:
    # A 44.1 kHz microphone resampled to 16 kHz delivers blocks of varying, odd lengths.
    rng = np.random.default_rng(0)
    lengths = [317, 322, 320, 301, 339]
    frames, at = [], 0
    for n in lengths:
        frames.append(AudioFrame(NO_TURN, (rng.standard_normal(n) * 1000).astype(np.int16), RATE, at / RATE))
        at += n
    out = asyncio.run(run_stage(EchoCancelStage(EchoCanceller()), frames))
    audio = [f for f in out if isinstance(f, AudioFrame)]
    assert all(len(f.samples) % 160 == 0 for f in audio)
    assert sum(len(f.samples) for f in audio) == sum(lengths) // 160 * 160
    ends = [f.start_s + f.duration_s for f in audio]
    assert [f.start_s for f in audio[1:]] == ends[:-1]
    assert audio[0].start_s == 0.0
