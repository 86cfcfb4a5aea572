"""A real PulseAudio server for the live tests, and ``voxloop chat`` running against it.

The server is private (its socket, state and config live in a temporary folder; children
reach it through ``PULSE_SERVER``), started by ``scripts/pulse_test_server.sh`` and stopped in
teardown, so a user's own sound server is never touched and none is left running. Two null
sinks: ``vmic``, the virtual microphone (questions are played into it with ``paplay``; its
monitor is the default source) and ``vspk``, the virtual speaker (the default sink; its monitor
is recorded with ``parecord``).

Where the machine cannot run PulseAudio the tests skip with the reason; on CI (``CI=true``)
they fail instead. ``.ci/run`` may start one server for the whole run and pass its folder in
``VOXLOOP_PULSE_DIR``; it is then reused (and left to ``.ci/run`` to stop).
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import numpy as np
import pytest
import soundfile as sf
from voxloop.models.base import ASR

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "pulse_test_server.sh"
DATA = ROOT / "tests" / "data"
STOP_WITHIN_S = 2.0
READY_TIMEOUT_S = 180.0
"""Model loading on a busy 2-core machine."""
TURN_TIMEOUT_S = 240.0
"""A whole reply, generated and played, on a 2-core machine that is also running something else
(a tiny LLM then needs seconds per sentence)."""


def unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI must run the live audio tests, but: {reason}")
    pytest.skip(reason)


@dataclass
class PulseServer:
    folder: Path
    client_env: dict[str, str]
    owned: bool

    def env(self, home: Path | None = None) -> dict[str, str]:
        """The environment for a child: this server only; ``home`` keeps user configs out."""
        env = {**os.environ, **self.client_env}
        if home is not None:
            env["HOME"] = str(home)
        return env

    def run(self, *args: str, timeout: float = 15.0) -> str:
        done = subprocess.run(list(args), env=self.env(), capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def pactl(self, *args: str) -> str:
        return self.run("pactl", *args)

    def module_of(self, sink: str) -> str | None:
        for line in self.pactl("list", "short", "modules").splitlines():
            parts = line.split("\t")
            if len(parts) >= 3 and f"sink_name={sink}" in parts[2].split():
                return parts[0]
        return None

    def unplug_mic(self) -> None:
        module = self.module_of("vmic")
        assert module is not None, "vmic is not loaded"
        self.pactl("unload-module", module)

    def plug_mic(self) -> None:
        if self.module_of("vmic") is None:
            self.pactl("load-module", "module-null-sink", "sink_name=vmic")
        self.pactl("set-default-source", "vmic.monitor")
        self.pactl("set-default-sink", "vspk")

    def reset(self) -> None:
        """Both sinks present, defaults as at start (after a test that unplugged things)."""
        self.plug_mic()
        if self.module_of("vspk") is None:
            self.pactl("load-module", "module-null-sink", "sink_name=vspk")
        self.pactl("set-default-sink", "vspk")

    def sink_input_of(self, module: str) -> str | None:
        """The index of the stream that ``module`` plays into a sink (None: none yet)."""
        for block in self.pactl("list", "sink-inputs").split("Sink Input #")[1:]:
            index, _, rest = block.partition("\n")
            if re.search(rf"^\s*Owner Module: {module}$", rest, re.MULTILINE):
                return index.strip()
        return None

    @contextmanager
    def speaker_heard_by_mic(self, latency_ms: int = 60, gain_db: float = -6.0) -> Iterator[None]:
        """Laptop speakers next to the microphone: whatever plays on ``vspk`` is mixed into
        ``vmic`` (a module-loopback from ``vspk.monitor``), ``latency_ms`` late and ``gain_db``
        relative to what was played, until the block ends."""
        module = self.pactl(
            "load-module", "module-loopback", "source=vspk.monitor", "sink=vmic", f"latency_msec={latency_ms}",
            "source_dont_move=true", "sink_dont_move=true",
        ).strip()  # fmt: skip
        try:
            wait_until(lambda: self.sink_input_of(module) is not None, 10, "the loopback's stream into vmic")
            self.pactl("set-sink-input-volume", str(self.sink_input_of(module)), f"{gain_db:g}dB")
            yield
        finally:
            self.pactl("unload-module", module)

    def play(self, wav: Path, sink: str = "vmic", timeout: float = 60.0) -> None:
        """Play ``wav`` into ``sink`` and return when it has been played."""
        self.run("paplay", f"--device={sink}", str(wav), timeout=timeout)

    def stop(self) -> None:
        subprocess.run(["bash", str(SCRIPT), "stop", str(self.folder)], capture_output=True, timeout=30, check=False)

    def start(self) -> None:
        done = subprocess.run(["bash", str(SCRIPT), "start", str(self.folder)], capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            unavailable(f"PulseAudio would not start here: {done.stderr.strip()[-2000:]}")
        self.client_env = dict(line.split("=", 1) for line in done.stdout.split() if "=" in line)

    def restart(self) -> None:
        """The sound server goes away and comes back (a crash, ``pulseaudio -k``, an update)."""
        self.stop()
        self.start()


def start_server() -> Iterator[PulseServer]:
    missing = [tool for tool in ("pulseaudio", "pactl", "paplay", "parecord") if shutil.which(tool) is None]
    if missing:
        unavailable(f"{', '.join(missing)} not installed (Debian: apt-get install pulseaudio pulseaudio-utils libasound2-plugins)")
    try:
        import sounddevice  # noqa: F401
    except OSError as e:
        unavailable(f"PortAudio is missing ({e}); apt-get install libportaudio2")
    shared = os.environ.get("VOXLOOP_PULSE_DIR")
    if shared and (Path(shared) / "pid").exists():
        env = subprocess.run(["bash", str(SCRIPT), "env", shared], capture_output=True, text=True, check=True).stdout
        server = PulseServer(Path(shared), dict(line.split("=", 1) for line in env.split()), owned=False)
        server.reset()
        yield server
        server.reset()
        return
    # A short path: a unix socket path must fit in 108 bytes.
    folder = Path(tempfile.mkdtemp(prefix="voxpulse-"))
    server = PulseServer(folder, {}, owned=True)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def pulse() -> Iterator[PulseServer]:
    """The test server, one per test module."""
    yield from start_server()


@pytest.fixture
def launch(pulse: PulseServer, tmp_path: Path) -> Iterator[Callable[..., Chat]]:
    """Start ``voxloop chat`` on the test server; whatever is still running is killed at the end."""
    started: list[Chat] = []

    def start(*args: str) -> Chat:
        chat = Chat(pulse, tmp_path / f"chat{len(started) + 1}", list(args))
        started.append(chat)
        return chat

    yield start
    for chat in started:
        chat.kill()


@pytest.fixture
def record(pulse: PulseServer, tmp_path: Path) -> Iterator[Callable[[str], Recording]]:
    """Start recording a source; recordings still running are stopped at the end."""
    started: list[Recording] = []

    def start(source: str) -> Recording:
        rec = Recording(pulse, source, tmp_path / f"{source}-{len(started) + 1}.wav")
        started.append(rec)
        return rec

    yield start
    for rec in started:
        rec.close()


@pytest.fixture(scope="module")
def asr() -> ASR:
    """The bundled speech recognizer, to check what was said on a device."""
    from voxloop.models.registry import resolve_asr
    from voxloop.models.whisper_asr import FasterWhisperASR

    return FasterWhisperASR(resolve_asr(None))


# --- voxloop chat as a subprocess ---------------------------------------------------------------


@dataclass
class Chat:
    """``voxloop chat --plain`` on the test server; its stdout read line by line, with deadlines."""

    server: PulseServer
    workdir: Path
    args: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    """Every stdout line read so far."""

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.transcript = self.workdir / "turns.jsonl"
        self.stderr_path = self.workdir / "chat.stderr"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "voxloop.pipeline.cli", "chat", "--plain", "--transcript", str(self.transcript), "-v", *self.args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, errors="replace",
            cwd=self.workdir, env=self.server.env(home=self.workdir),
        )  # fmt: skip
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._err_lines: list[str] = []
        self._err_changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._err_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._err_reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        with self.proc.stderr, open(self.stderr_path, "w") as copy:
            for line in self.proc.stderr:
                copy.write(line)
                copy.flush()
                with self._err_changed:
                    self._err_lines.append(line)
                    self._err_changed.notify_all()

    def stderr(self) -> str:
        with self._err_changed:
            return "".join(self._err_lines)

    def wait_for_stderr(self, text: str, timeout_s: float = 60.0) -> None:
        with self._err_changed:
            if self._err_changed.wait_for(lambda: any(text in line for line in self._err_lines), timeout_s):
                return
        self.kill()
        pytest.fail(f"voxloop chat never wrote {text!r} on stderr:\n{self.stderr()[-4000:]}")

    def wait_for(self, pattern: str, timeout_s: float = 60.0) -> str:
        """The next stdout line matching the regex ``pattern`` (earlier lines are kept in ``lines``)."""
        deadline = time.monotonic() + timeout_s
        regex = re.compile(pattern)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                self._queue.put(None)
                break
            self.lines.append(line)
            if regex.search(line):
                return line
        self.kill()
        pytest.fail(
            f"voxloop chat never printed a line matching {pattern!r} (exit code {self.proc.poll()})\n"
            f"stdout:\n" + "\n".join(self.lines) + f"\nstderr:\n{self.stderr()[-6000:]}"
        )

    def wait_ready(self) -> str:
        return self.wait_for(r" ready: listening on ", READY_TIMEOUT_S)

    def stop(self, signum: int = signal.SIGINT) -> tuple[int, float]:
        """Send ``signum``; the exit code and how long the exit took."""
        sent = time.monotonic()
        self.proc.send_signal(signum)
        try:
            code = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"voxloop chat still running 15 s after {signal.Signals(signum).name}\n{self.stderr()[-4000:]}")
        took = time.monotonic() - sent
        self._reader.join(timeout=5)
        self._err_reader.join(timeout=5)
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)
        return code, took

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=5)
        self._err_reader.join(timeout=5)


@dataclass
class Recording:
    """``parecord`` of one PulseAudio source into a wav, from start to ``stop()``."""

    server: PulseServer
    source: str
    path: Path

    def __post_init__(self) -> None:
        self.proc = subprocess.Popen(
            ["parecord", f"--device={self.source}", "--file-format=wav", "--channels=1", "--rate=16000", str(self.path)],
            env=self.server.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # parecord finishes the wav header on SIGINT
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stop(self) -> tuple[np.ndarray, int]:
        self.close()
        audio, rate = sf.read(self.path, dtype="float32", always_2d=True)
        return audio.mean(axis=1), rate


def first_above(audio: np.ndarray, rate: int, threshold: float = 0.01, from_s: float = 0.0, block_ms: int = 10) -> float | None:
    """Seconds of the first 10 ms block whose peak exceeds ``threshold``, from ``from_s`` on."""
    block = rate * block_ms // 1000
    start = int(from_s * rate) // block
    peaks = np.abs(audio[: len(audio) // block * block]).reshape(-1, block).max(axis=1)
    loud = np.flatnonzero(peaks[start:] > threshold)
    return None if not len(loud) else (start + int(loud[0])) * block / rate


def last_above(audio: np.ndarray, rate: int, threshold: float = 0.01, until_s: float | None = None, block_ms: int = 10) -> float | None:
    """Seconds of the end of the last 10 ms block whose peak exceeds ``threshold``, before ``until_s``."""
    block = rate * block_ms // 1000
    end = len(audio) if until_s is None else min(len(audio), int(until_s * rate))
    peaks = np.abs(audio[: end // block * block]).reshape(-1, block).max(axis=1)
    loud = np.flatnonzero(peaks > threshold)
    return None if not len(loud) else (int(loud[-1]) + 1) * block / rate


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str, step_s: float = 0.05) -> None:
    """For conditions outside voxloop (the sound server's state), which have no event to await."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(step_s)


def stats_from(lines: list[str]) -> dict[str, int]:
    """The counts in voxloop's ``stopped: ...`` line."""
    [line] = [line for line in lines if " stopped: " in line]
    patterns = {
        "input": r"input overflows (\d+) \(flagged (\d+), by clock (\d+)\)",
        "output": r"output underflows (\d+) \(flagged (\d+), by clock (\d+)\)",
    }
    found: dict[str, int] = {}
    for key, pattern in patterns.items():
        m = re.search(pattern, line)
        assert m, line
        found.update({f"{key}_xruns": int(m[1]), f"{key}_flagged": int(m[2]), f"{key}_by_clock": int(m[3])})
    for key in ("device stalls", "reopens", "dropped mic blocks"):
        m = re.search(rf"{key} (\d+)", line)
        assert m, line
        found[key.replace(" ", "_")] = int(m[1])
    return found
