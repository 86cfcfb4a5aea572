"""Settings: defaults, then the TOML config file, then command-line flags.

The file is read strictly: each key has the type its field is annotated with (a bool is a
TOML ``true`` or ``false``, never ``"false"`` in quotes; a whole number is not a bool), each
whole number its range (``RANGES``, said in the field's docstring), and a persona's tools must
be built-in tools' names. An unknown key, a wrong type or a value out of range is a
ConfigError that names the file, the key and what it must be.

Example ``~/.config/voxloop/config.toml``::

    [models]
    asr = "tiny.en"            # or a faster-whisper model folder
    llm = "auto"               # the largest installed tier that fits; a tier name; or a GGUF file
    llm_url = ""               # an OpenAI-compatible server instead of the local GGUF
    voice = "en_US-joe-medium" # or a Piper .onnx with its .onnx.json

    [threads]                  # 2 cores: LLM and TTS run at the same time
    asr = 2
    llm = 2
    tts = 1

    [dialog]
    system_prompt = "..."
    max_reply_tokens = 120

    [turns]
    hangover_ms = 500
    barge_in = true
    echo_cancel = true         # take the assistant's voice out of the microphone
    echo_predictor = true      # hear a soft start over its echo sooner

    [assistant]
    commands = true            # common commands answered without the LLM
    notes_db = ""              # the notes' SQLite file; empty: notes.db in the state folder
    timezone = ""              # an IANA name ("Europe/Paris"); empty: the system's
    persona = "cooking"        # the persona at start (default: the built-in "vox")

    [personas.cooking]         # see voxloop.pipeline.assistant.personas for every key
    name = "Cooking assistant"
    knowledge = ["~/recipes"]
"""

from __future__ import annotations

import functools
import json
import os
import sys
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .assistant.personas import DEFAULT_PERSONA_ID, PersonaError, Personas, parse_personas
from .dialog import SPOKEN_SYSTEM_PROMPT

DEFAULT_CONFIG_PATH = Path("~/.config/voxloop/config.toml").expanduser()
DEFAULT_STATE_DIR = "~/.local/state/voxloop"
"""Saved sessions, notes, knowledge indexes and chat transcripts: ``--state-dir`` or
``VOXLOOP_STATE_DIR`` elsewhere."""
STATE_DIR_ENV = "VOXLOOP_STATE_DIR"


def default_state_dir() -> Path:
    """``$VOXLOOP_STATE_DIR``, else ``~/.local/state/voxloop``."""
    return Path(os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR).expanduser()


class ConfigError(Exception):
    pass


@dataclass
class ModelsConfig:
    asr: str | None = None
    llm: str = "auto"
    """"auto" (the largest installed tier that fits the memory), a tier's name (``voxloop
    models``), or a GGUF file."""
    llm_url: str | None = None
    llm_model_name: str | None = None
    """Model id to ask the server for (default: the first it lists)."""
    llm_api_key_env: str = ""
    """The name of the environment variable that holds the server's API key (sent as
    ``Authorization: Bearer``, never shown); empty: no key. The key itself never goes here."""
    voice: str | None = None


@dataclass
class ThreadsConfig:
    """Each 1 to 4 × the machine's CPUs."""

    asr: int = 2
    """Threads for speech recognition."""
    llm: int = 2
    """Threads for the language model."""
    tts: int = 1
    """Threads for speech synthesis."""


@dataclass
class DialogConfig:
    system_prompt: str = SPOKEN_SYSTEM_PROMPT
    max_reply_tokens: int = 120
    """The longest reply, in tokens: 1 to 8192."""
    max_history_chars: int = 4000
    """Characters of earlier exchanges kept in the prompt, the oldest dropped first: 0 (none)
    to 200000."""


@dataclass
class TurnsConfig:
    hangover_ms: int = 500
    """The silence that ends the user's turn, milliseconds: 100 to 5000."""
    barge_in: bool | None = None
    """None: on, except a live chat without the echo canceller (its own voice from the
    speakers would interrupt it): that one is half-duplex."""
    vad_aggressiveness: int = 2
    """How readily webrtcvad calls a frame silence: 0 (least) to 3 (most)."""
    partial_asr_ms: int = 600
    """While the user speaks, recognise what they said so far this often (milliseconds) and
    read it into the language model's cache: at the end of the turn only the last words are
    left to read (the 1.5B model's first token comes ~100 ms sooner). 0: off; else 200 to
    10000 (more often would keep the recogniser busy)."""
    echo_cancel: bool = True
    """Run the echo canceller on the microphone (needs the livekit package)."""
    echo_predictor: bool = True
    """The double-talk detector also tests the microphone less the echo a linear filter
    predicts from the played audio (``voice.echo_predictor``): a user who starts softly under a
    loud echo is heard in 20-50 ms instead of 110-150 (barge-in p95 70-80 ms instead of
    110-173 on the replay's echo path; docs/benchmarks.md). Off: the band test alone."""


@dataclass
class AssistantConfig:
    persona: str = DEFAULT_PERSONA_ID
    """The persona at start: the id of a ``[personas.<id>]`` table, or the built-in "vox"."""
    tools: bool = False
    """Offer the built-in tools to the model (function calling). Off by default: the bundled
    135M model calls them poorly and pays a second prompt per turn; turn on with a capable
    model or an --llm-url server. A persona's own ``tools = [...]`` list turns them on for it."""
    commands: bool = True
    """Answer the time, timers, sums, notes... at once, without the LLM."""
    notes_db: str = ""
    """The SQLite file of the user's notes (created at the first note); empty: ``notes.db``
    in the state folder (``--state-dir``)."""
    timezone: str = ""
    """IANA time zone for the time, the date and alarms; empty: the system's."""


@dataclass
class Config:
    models: ModelsConfig = field(default_factory=ModelsConfig)
    threads: ThreadsConfig = field(default_factory=ThreadsConfig)
    dialog: DialogConfig = field(default_factory=DialogConfig)
    turns: TurnsConfig = field(default_factory=TurnsConfig)
    assistant: AssistantConfig = field(default_factory=AssistantConfig)
    personas: Personas = field(default_factory=Personas.default)
    """Not a flat section: one ``[personas.<id>]`` table each."""


def load_config(path: Path | None) -> Config:
    """``path`` None: the user's config file if there is one, else the defaults."""
    explicit = path is not None
    path = path if path is not None else DEFAULT_CONFIG_PATH
    config = Config()
    if not path.exists():
        if explicit:
            raise ConfigError(f"{path}: no such config file. Check the --config path")
        return config
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the config file ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e}). Fix the file or pass another with --config") from None
    sections = [f.name for f in fields(config)]
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {', '.join(unknown)}; known: {', '.join(sections)}")
    for name in sections:
        if name == "personas":
            continue
        values = data.get(name, {})
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: [{name}] must be a table")
        _apply(getattr(config, name), values, name, f"{path}: [{name}]")
    try:
        config.personas = parse_personas(data.get("personas", {}), path.parent, config.dialog.system_prompt)
    except PersonaError as e:
        raise ConfigError(f"{path}: {e}") from None
    if not config.assistant.commands:
        for persona in config.personas:
            needs = [t for t in persona.tools or [] if t != "search_knowledge"]
            if needs:
                raise ConfigError(
                    f"{path}: [personas.{persona.id}]: tools {', '.join(needs)} need the instant commands' clock, "
                    "timers and notes, which [assistant] commands = false turns off. Set commands = true or take them out"
                )
    if config.assistant.persona not in config.personas:
        raise ConfigError(
            f"{path}: [assistant] persona {config.assistant.persona!r} is not defined; "
            f"known: {', '.join(config.personas.ids())}. Add a [personas.{config.assistant.persona}] table or pick one of those"
        )
    return config


class _Range(NamedTuple):
    low: float
    high: float
    unit: str
    off: float | None = None
    """A value outside the range that turns the feature off."""


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


RANGES: dict[str, _Range] = {
    "threads.asr": _Range(1, 4 * _cpus(), "threads, up to 4 per CPU"),
    "threads.llm": _Range(1, 4 * _cpus(), "threads, up to 4 per CPU"),
    "threads.tts": _Range(1, 4 * _cpus(), "threads, up to 4 per CPU"),
    "dialog.max_reply_tokens": _Range(1, 8192, "tokens"),
    "dialog.max_history_chars": _Range(0, 200_000, "characters"),
    "turns.hangover_ms": _Range(100, 5000, "milliseconds"),
    "turns.vad_aggressiveness": _Range(0, 3, "0 least, 3 most aggressive"),
    "turns.partial_asr_ms": _Range(200, 10_000, "milliseconds", off=0),
}
"""The allowed values of each number setting, by ``section.key`` (their field docstrings say
the same); every ``int`` setting has one (tests/pipeline/test_config_errors.py checks)."""


@functools.cache
def _setting_types(section: str) -> dict[str, Any]:
    """The annotated type of each key of ``[section]``, ``X | None`` read as X (TOML has no null)."""
    hints = typing.get_type_hints(typing.get_type_hints(Config)[section])
    return {key: next((a for a in typing.get_args(kind) if a is not type(None)), kind) for key, kind in hints.items()}


def setting_problem(section: str, key: str, value: Any) -> str | None:
    """What is wrong with ``value`` for ``[section] key``, as "must be ..., got ..." (None:
    nothing). Types are the fields' annotations, strictly: a bool is a TOML true or false,
    never "false" in quotes; a whole number is not a bool, nor 5.0; and it is in its range."""
    kind = _setting_types(section)[key]
    if kind is bool:
        ok, wanted = isinstance(value, bool), "true or false (a TOML boolean, without quotes)"
    elif kind in (int, float):
        if kind is int:
            ok, wanted = isinstance(value, int) and not isinstance(value, bool), "a whole number"
        else:
            ok, wanted = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
        limits = RANGES.get(f"{section}.{key}")
        if limits is not None:
            wanted += f" from {limits.low} to {limits.high} ({limits.unit})"
            if limits.off is not None:
                wanted = f"{limits.off} (off) or {wanted}"
            ok = ok and (limits.low <= value <= limits.high or value == limits.off)
    elif kind is str:
        ok, wanted = isinstance(value, str), "text in quotes"
    else:  # pragma: no cover - a new kind of setting needs a rule here
        raise TypeError(f"[{section}] {key}: no rule for settings of type {kind}")
    return None if ok else f"{key} must be {wanted}, got {_shown(value)}"


def _shown(value: Any) -> str:
    """A value as it was written in TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 60 else text[:56] + '..."'
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _apply(target: Any, values: dict[str, Any], section: str, where: str) -> None:
    known = {f.name: f for f in fields(target)}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r}; known: {', '.join(known)}")
        problem = setting_problem(section, key, value)
        if problem is not None:
            raise ConfigError(f"{where} {problem}")
        setattr(target, key, value)
