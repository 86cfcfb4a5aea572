"""Ctrl-C and SIGTERM in every state of a real-time replay: a clean exit within 2 s, files whole."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import soundfile as sf
from conftest import concat_with_pauses, recording

STOP_WITHIN_S = 2.0


class Replay:
    """``voxloop replay`` in real time (paced), its log lines read as they come."""

    def __init__(self, input_path: Path, out: Path) -> None:
        self.out = out
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "voxloop.pipeline.cli", "replay", str(input_path), "--out-dir", str(out), "-v"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=out.parent,
            env={**os.environ, "HOME": str(out.parent)},
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        with self.proc.stderr:
            for line in self.proc.stderr:
                self.lines.put(line)

    def wait_for(self, text: str, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=deadline - time.monotonic())
            except queue.Empty:
                break
            self.log.append(line)
            if text in line:
                return
        self.proc.kill()
        self.proc.wait()
        pytest.fail(f"never saw {text!r}; log:\n{''.join(self.log)}")

    def stop(self, signum: int, times: int = 1) -> tuple[int, float]:
        sent = time.monotonic()
        for _ in range(times):
            self.proc.send_signal(signum)
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"still running 10 s after {signal.Signals(signum).name}")
        took = time.monotonic() - sent
        self.reader.join(timeout=5)
        while not self.lines.empty():
            self.log.append(self.lines.get())
        return code, took


@pytest.fixture(scope="module")
def two_questions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    parts = [recording("what_time_is_it.wav").path, recording("turn_on_the_lamp.wav").path]
    return concat_with_pauses(parts, pause_s=8.0, out=tmp_path_factory.mktemp("in") / "two.wav")


def assert_outputs_whole(out: Path, min_seconds: float) -> list[dict[str, object]]:
    info = sf.info(out / "conversation.wav")  # a finished wav header: readable, right length
    assert info.channels == 2 and info.frames >= min_seconds * info.samplerate
    assert not list(out.glob(".*.part"))
    return [json.loads(line) for line in (out / "turns.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize(
    ("state", "log_line"),
    [
        ("listening", "voxloop.pipeline.session: listening"),
        ("thinking", "voxloop.pipeline.asr_stage: turn 1: heard"),
        ("speaking", "reply audible"),
    ],
)
def test_a_signal_stops_cleanly_in_time_and_keeps_the_files(
    two_questions: Path, tmp_path: Path, state: str, log_line: str, signum: int
) -> None:
    run = Replay(two_questions, tmp_path / "out")
    run.wait_for(log_line)

    code, took = run.stop(signum)

    assert code == 0, "".join(run.log)
    assert took <= STOP_WITHIN_S
    turns = assert_outputs_whole(tmp_path / "out", min_seconds=0.0 if state == "listening" else 1.0)
    if state == "speaking":
        [turn] = turns
        assert turn["interrupted"] is True and turn["user_text"]
    if state == "listening":
        assert turns == []


def test_a_second_ctrl_c_forces_the_exit(two_questions: Path, tmp_path: Path) -> None:
    run = Replay(two_questions, tmp_path / "out")
    run.wait_for("reply audible")

    code, took = run.stop(signal.SIGINT, times=2)

    assert code in (0, 130)  # the clean stop may win the race; either way, at once
    assert took <= STOP_WITHIN_S
    for line in (tmp_path / "out" / "turns.jsonl").read_text().splitlines():
        json.loads(line)  # nothing half-written


def test_kill_9_loses_nothing_already_written(two_questions: Path, tmp_path: Path) -> None:
    run = Replay(two_questions, tmp_path / "out")
    run.wait_for("voxloop.pipeline.session: turn 1: reply audible")
    run.wait_for(": reply audible")  # the second question's: turn 1 has been written by now

    run.stop(signal.SIGKILL)

    out = tmp_path / "out"
    rows = [json.loads(line) for line in (out / "turns.jsonl").read_text().splitlines()]
    assert rows and rows[0]["user_text"] and rows[0]["assistant_text"]
    # The recording was never renamed into place, but what it holds up to the kill is readable.
    [partial] = out.glob(".conversation.wav.part")
    info = sf.info(partial)
    assert info.channels == 2 and info.duration >= rows[0]["reply_start_s"]
