"""Shared fixtures: the real engines (loaded once), the recordings, and synthesized questions."""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import jiwer
import numpy as np
import pytest
import soundfile as sf
from voxloop.models import llm_tiers
from voxloop.models.base import LLM, Message
from voxloop.models.registry import resolve_llm
from voxloop.pipeline.config import Config
from voxloop.pipeline.engines import Engines, check_models, load_engines

DATA = Path(__file__).parent / "data"
SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def load_script(name: str) -> ModuleType:
    """A file of scripts/ as a module (scripts/ is not a package; importing one does no work)."""
    spec = importlib.util.spec_from_file_location(f"voxloop_scripts_{name}", SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Recording:
    path: Path
    transcript: str


def recordings() -> list[Recording]:
    with open(DATA / "speech.tsv", encoding="utf-8") as f:
        return [Recording(DATA / row["file"], row["transcript"]) for row in csv.DictReader(f, delimiter="\t")]


def recording(name: str) -> Recording:
    return next(r for r in recordings() if r.path.name == name)


_NUMBERS = {"1": "one", "2": "two", "3": "three", "10": "ten"}


def normalize(text: str) -> str:
    text = text.lower().replace("what's", "what is").replace("-", " ")
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    return " ".join(_NUMBERS.get(w, w) for w in text.split())


def wer(reference: str | list[str], hypothesis: str | list[str]) -> float:
    refs = [reference] if isinstance(reference, str) else reference
    hyps = [hypothesis] if isinstance(hypothesis, str) else hypothesis
    return float(jiwer.wer([normalize(r) for r in refs], [normalize(h) or "<empty>" for h in hyps]))


class RecordingLLM:
    """An LLM (the real one, mostly), with every prompt it was given kept for the test to read."""

    def __init__(self, inner: LLM) -> None:
        self.inner = inner
        self.prompts: list[list[Message]] = []

    def stream(self, messages: Sequence[Message], max_tokens: int) -> Iterator[str]:
        self.prompts.append([dict(m) for m in messages])
        return self.inner.stream(messages, max_tokens)

    def warm_up(self) -> None:
        self.inner.warm_up()


INSTALLED_MODELS = llm_tiers.models_dir()
"""The user's installed model tiers (scripts/install.sh puts the default tier there)."""


@pytest.fixture(scope="session", autouse=True)
def _bundled_model_by_default(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The suite runs on the small bundled model wherever its quality is not the subject:
    "auto" sees an empty models folder. Tests of a larger tier ask for it (``installed_tier``)."""
    before = os.environ.get(llm_tiers.DATA_DIR_ENV)
    os.environ[llm_tiers.DATA_DIR_ENV] = str(tmp_path_factory.mktemp("data"))
    yield
    if before is None:
        os.environ.pop(llm_tiers.DATA_DIR_ENV, None)
    else:
        os.environ[llm_tiers.DATA_DIR_ENV] = before


def installed_tier(name: str) -> Path:
    """The GGUF of an installed tier (``voxloop models install NAME``, as scripts/install.sh
    does for the default one). Skips where it is not installed; on CI (CI=true) fails."""
    tier = llm_tiers.find(name)
    assert tier is not None, name
    path = INSTALLED_MODELS / tier.file_name
    if not (path.is_file() and path.stat().st_size == tier.size_bytes):
        message = f"{name} is not installed in {INSTALLED_MODELS}: run .venv/bin/voxloop models install {name}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(autouse=True)
def _private_state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Notes, sessions and knowledge indexes of a test live in its own folder, never the user's."""
    monkeypatch.setenv("VOXLOOP_STATE_DIR", str(tmp_path_factory.mktemp("state")))


@pytest.fixture(scope="session")
def engines() -> Engines:
    """The real default models, loaded and warmed once for the whole run."""
    config = Config()
    return load_engines(config, check_models(config))


@dataclass(frozen=True)
class Question:
    path: Path
    text: str
    voice: str


QUESTIONS = [
    ("What is the capital of France?", "piper"),
    ("Can you tell me a short joke?", "piper"),
    ("What color is the sky on a clear day?", "espeak"),
    ("How many legs does a spider have?", "espeak"),
]


@pytest.fixture(scope="session")
def questions(engines: Engines, tmp_path_factory: pytest.TempPathFactory) -> list[Question]:
    """Spoken questions: two in the bundled Piper voice, two by espeak-ng (another synthesizer)."""
    out = tmp_path_factory.mktemp("questions")
    made = []
    for i, (text, voice) in enumerate(QUESTIONS):
        path = out / f"q{i}_{voice}.wav"
        if voice == "piper":
            audio = np.concatenate(list(engines.tts.synthesize(text)))
            sf.write(path, audio, engines.tts.sample_rate, subtype="PCM_16")
        else:
            espeak = shutil.which("espeak-ng")
            assert espeak, "espeak-ng is required for the tests: sudo apt-get install espeak-ng"
            subprocess.run([espeak, "-v", "en-us", "-s", "150", "-w", str(path), text], check=True, timeout=30)
        made.append(Question(path, text, voice))
    return made


def concat_with_pauses(parts: list[Path], pause_s: float, out: Path, rate: int = 16000, lead_s: float = 0.5) -> Path:
    """One recording: a short lead-in, then each part followed by ``pause_s`` of silence."""
    import soxr

    pieces = [np.zeros(int(lead_s * rate), dtype=np.float32)]
    for part in parts:
        audio, sr = sf.read(part, dtype="float32", always_2d=True)
        mono = audio.mean(axis=1)
        if sr != rate:
            mono = soxr.resample(mono, sr, rate)
        pieces += [mono.astype(np.float32), np.zeros(int(pause_s * rate), dtype=np.float32)]
    sf.write(out, np.concatenate(pieces), rate, subtype="PCM_16")
    return out


# --- a real OpenAI-compatible server on loopback -------------------------------------------

_READY_LINE = "Uvicorn running on"
_START_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def server_root() -> Iterator[str]:
    """Root URL (no ``/v1``) of a llama_cpp.server started once for the test run."""
    port = free_port()
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(resolve_llm(None)),
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "1024", "--n_threads", "2", "--n_threads_batch", "2",
        # By default the server cuts a running stream when another request arrives, which
        # would hide whether our disconnect stopped it; with this off, only a disconnect does.
        "--interrupt_requests", "False",
    ]  # fmt: skip
    log: list[str] = []
    settled = threading.Event()  # set when the server is up or its output has ended

    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    ) as proc:

        def drain() -> None:
            # Keep reading after start-up too, so the server never blocks on a full pipe.
            assert proc.stdout is not None
            for line in proc.stdout:
                log.append(line)
                if _READY_LINE in line:
                    settled.set()
            settled.set()

        reader = threading.Thread(target=drain, name="llama-server-log", daemon=True)
        reader.start()
        try:
            settled.wait(_START_TIMEOUT_S)
            if not any(_READY_LINE in line for line in log):
                pytest.fail(
                    f"llama_cpp.server did not start within {_START_TIMEOUT_S:g} s "
                    f"(exit code {proc.poll()}):\n{''.join(log)}"
                )
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            reader.join(timeout=5)
