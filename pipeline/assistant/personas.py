"""Personas: assistants for different jobs, each with its own name, greeting, prompt, voice,
model, tools and knowledge folders, defined in the TOML config::

    [assistant]
    persona = "cooking"               # the one at start (default: "vox")

    [personas.cooking]
    name = "Cooking assistant"        # what the user calls it: "switch to the cooking assistant"
    greeting = "Cooking assistant here. What are we making?"
    system_prompt = "You are a cooking assistant. ..."
    voice = "en_US-joe-medium"        # default: [models] voice
    llm = "~/models/qwen2.5-1.5b.gguf"  # or llm_url = "http://..."; default: [models]
    tools = ["get_time", "set_timer", "search_knowledge"]  # default: [assistant] tools; checked at load
    knowledge = ["~/recipes", "notes"]  # folders; relative to the config file's folder
    think = false                     # reason privately before answering

A default persona, Vox, always exists (``[personas.vox]`` may redefine it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from voxloop.pipeline.dialog import SPOKEN_SYSTEM_PROMPT

from .knowledge import DEFAULT_STATE_DIR, KnowledgeConfig, KnowledgeIndex, knowledge_db_path

DEFAULT_PERSONA_ID = "vox"
_ID = re.compile(r"[A-Za-z0-9_-]+")


class PersonaError(ValueError):
    """A persona table that cannot be used; the message says where and what to do."""


@dataclass
class Persona:
    id: str
    """The key of its ``[personas.<id>]`` table; names its knowledge index file."""
    name: str = ""
    """What it is called, in speech too. Default: the id, capitalised."""
    greeting: str = ""
    """Said when the user switches to it. Default: "Hi, this is <name>."."""
    system_prompt: str = SPOKEN_SYSTEM_PROMPT
    voice: str | None = None
    """A Piper voice name or .onnx path; None: the ``[models] voice``."""
    llm: str | None = None
    """A GGUF model name or path; None: the ``[models] llm``."""
    llm_url: str | None = None
    """An OpenAI-compatible server instead of the local GGUF; None: the ``[models] llm_url``."""
    tools: list[str] | None = None
    """Names of the tools it may use; None: every built-in tool, []: none. Checked against the
    built-in tools' names when the config is read (``search_knowledge`` also needs
    ``knowledge`` folders)."""
    knowledge: list[Path] = field(default_factory=list)
    """Folders of txt, md and pdf files it answers from (absolute, checked to exist)."""
    think: bool = False
    """Reason privately before every answer, not only when asked to think."""

    def __post_init__(self) -> None:
        self.name = self.name or self.id.replace("_", " ").replace("-", " ").capitalize()
        self.greeting = self.greeting or f"Hi, this is {self.name}."

    def knowledge_index(self, state_dir: Path = DEFAULT_STATE_DIR, config: KnowledgeConfig | None = None) -> KnowledgeIndex | None:
        """Its index (not yet updated: call ``update()``), or None when it has no folders."""
        if not self.knowledge:
            return None
        return KnowledgeIndex(knowledge_db_path(self.id, state_dir), self.knowledge, config)


def default_persona(system_prompt: str = SPOKEN_SYSTEM_PROMPT) -> Persona:
    return Persona(DEFAULT_PERSONA_ID, name="Vox", system_prompt=system_prompt)


def _spoken(name: str) -> str:
    """A name as speech recognition would give it: lower case, words only, no leading "the"."""
    words = re.findall(r"\w+", name.lower())
    while words and words[0] in ("the", "my", "a", "an"):
        words.pop(0)
    return " ".join(words)


class Personas:
    """The configured personas, in config order, the default one first."""

    def __init__(self, personas: list[Persona]) -> None:
        self._by_id = {p.id: p for p in personas}

    @classmethod
    def default(cls, system_prompt: str = SPOKEN_SYSTEM_PROMPT) -> Personas:
        return cls([default_persona(system_prompt)])

    def __iter__(self) -> Iterator[Persona]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, persona_id: object) -> bool:
        return persona_id in self._by_id

    def ids(self) -> list[str]:
        return list(self._by_id)

    def get(self, persona_id: str) -> Persona:
        """By id; KeyError if there is none."""
        return self._by_id[persona_id]

    def names(self) -> list[str]:
        """The names a user can say, for the switch phrase ("switch to <name>")."""
        return [p.name for p in self]

    def by_spoken_name(self, heard: str) -> Persona | None:
        """The persona the user named: its name or its id, any case, with or without a
        leading "the" or a trailing "assistant" ("the cooking assistant", "Cooking", "vox")."""
        said = _spoken(heard)
        if not said:
            return None
        for persona in self:
            if said in (_spoken(persona.name), _spoken(persona.id)):
                return persona
        bare = said.removesuffix(" assistant").removesuffix(" persona")
        for persona in self:
            if bare in (_spoken(persona.name).removesuffix(" assistant"), _spoken(persona.id)):
                return persona
        return None


def parse_personas(tables: Any, base: Path, default_system_prompt: str = SPOKEN_SYSTEM_PROMPT) -> Personas:
    """The ``[personas.<id>]`` tables of a config whose folder is ``base``, after the default
    Vox (whose prompt is ``default_system_prompt``, the ``[dialog]`` one). Raises PersonaError
    with a message that names the table and says what to do."""
    if not isinstance(tables, dict):
        raise PersonaError("[personas] must hold tables like [personas.cooking]")
    personas = {DEFAULT_PERSONA_ID: default_persona(default_system_prompt)}
    for persona_id, values in tables.items():
        where = f"[personas.{persona_id}]"
        if not _ID.fullmatch(persona_id):
            raise PersonaError(f"{where}: the id may only have letters, digits, '-' and '_'. Rename the table")
        if not isinstance(values, dict):
            raise PersonaError(f"{where} must be a table of settings (name, greeting, ...)")
        prompt = default_system_prompt if persona_id == DEFAULT_PERSONA_ID else SPOKEN_SYSTEM_PROMPT
        personas[persona_id] = _persona(persona_id, values, base, where, prompt)
    return Personas(list(personas.values()))


_OPTIONAL_TEXT = ("voice", "llm", "llm_url")


def _persona(persona_id: str, values: dict[str, Any], base: Path, where: str, prompt: str) -> Persona:
    known = [f.name for f in fields(Persona) if f.name != "id"]
    settings: dict[str, Any] = {"system_prompt": prompt}
    for key, value in values.items():
        if key not in known:
            raise PersonaError(f"{where}: unknown key {key!r}; known: {', '.join(known)}")
        if key == "think":
            if not isinstance(value, bool):
                raise PersonaError(f"{where}: think must be true or false, got {value!r}")
        elif key in ("tools", "knowledge"):
            if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
                raise PersonaError(f'{where}: {key} must be a list of names, like {key} = ["a", "b"], got {value!r}')
        elif not isinstance(value, str):
            raise PersonaError(f'{where}: {key} must be text in quotes, got {value!r}')
        settings[key] = value
    for key in _OPTIONAL_TEXT:
        settings[key] = settings.get(key) or None  # "" in the file: use the [models] one
    settings["knowledge"] = [_folder(f, base, where) for f in settings.get("knowledge", [])]
    if "tools" in settings:
        settings["tools"] = _tools([t.strip() for t in settings["tools"]], bool(settings["knowledge"]), where)
    return Persona(persona_id, **settings)


def _tools(names: list[str], has_knowledge: bool, where: str) -> list[str]:
    """``names`` if each is a built-in tool this persona can have, else PersonaError."""
    from .builtin_tools import builtin_tool_names  # the tool schemas import jsonschema: only when needed

    known = builtin_tool_names()
    unknown = [n for n in names if n not in known]
    if unknown:
        listed = ", ".join(repr(n) for n in unknown)
        raise PersonaError(f"{where}: unknown tool(s) {listed} in tools; the tools are {', '.join(known)}. Fix the names")
    if "search_knowledge" in names and not has_knowledge:
        raise PersonaError(f'{where}: tools has search_knowledge but the persona has no files to search. Add knowledge = ["folder"] or take it out')
    return names


def _folder(value: str, base: Path, where: str) -> Path:
    path = (base / Path(value).expanduser()).resolve()
    if not path.exists():
        raise PersonaError(f"{where}: knowledge folder {value!r} does not exist ({path}). Create it or fix the path")
    if not path.is_dir():
        raise PersonaError(f"{where}: knowledge {value!r} is not a folder ({path}). Name the folder that holds the files")
    return path
