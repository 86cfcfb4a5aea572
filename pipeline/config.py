"""Settings: defaults, then the TOML config file, then command-line flags.

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

import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

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
    voice: str | None = None


@dataclass
class ThreadsConfig:
    asr: int = 2
    llm: int = 2
    tts: int = 1


@dataclass
class DialogConfig:
    system_prompt: str = SPOKEN_SYSTEM_PROMPT
    max_reply_tokens: int = 120
    max_history_chars: int = 4000


@dataclass
class TurnsConfig:
    hangover_ms: int = 500
    barge_in: bool | None = None
    """None: on, except a live chat without the echo canceller (its own voice from the
    speakers would interrupt it): that one is half-duplex."""
    vad_aggressiveness: int = 2
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
        _apply(getattr(config, name), values, f"{path}: [{name}]")
    try:
        config.personas = parse_personas(data.get("personas", {}), path.parent, config.dialog.system_prompt)
    except PersonaError as e:
        raise ConfigError(f"{path}: {e}") from None
    if config.assistant.persona not in config.personas:
        raise ConfigError(
            f"{path}: [assistant] persona {config.assistant.persona!r} is not defined; "
            f"known: {', '.join(config.personas.ids())}. Add a [personas.{config.assistant.persona}] table or pick one of those"
        )
    return config


def _apply(target: Any, values: dict[str, Any], where: str) -> None:
    known = {f.name: f for f in fields(target)}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r}; known: {', '.join(known)}")
        default = getattr(target, key)
        if default is not None and not isinstance(value, type(default)):
            raise ConfigError(f"{where}: {key} must be {type(default).__name__}, got {value!r}")
        setattr(target, key, value)
