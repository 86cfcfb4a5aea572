"""The tools a language model may call: an allow-list with argument schemas checked in code.

The model's tool call is untrusted text. Before any handler runs, :meth:`ToolRegistry.check`
makes sure the tool is registered (and enabled for the persona), that the arguments are one
JSON object, and that it satisfies the tool's JSON schema; anything else raises
:class:`ToolError`, which is logged and told to the model as a refusal. A handler therefore only
ever sees arguments its schema allows. Whether a tool with a side effect may run at all (a
spoken confirmation) is the caller's decision: :attr:`Tool.side_effect` says which ones need it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import jsonschema

from voxloop.models.base import ToolCall

logger = logging.getLogger(__name__)

MAX_ARGUMENT_CHARS = 4000
"""Longer argument text is refused before it is parsed: no tool of a voice assistant needs it."""

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""Tool names the OpenAI format allows."""


class ToolError(Exception):
    """A tool call refused before it ran; ``reason`` is short, safe to log and to tell the model."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    """Told to the model: what the tool does and when to use it."""
    parameters: dict[str, Any]
    """JSON schema of the arguments: an object schema, checked before the handler runs."""
    handler: Callable[[dict[str, Any]], str]
    """Runs the call with arguments valid for ``parameters``; returns text for the model."""
    side_effect: bool = False
    """It changes something (deletes a note, ...): it runs only after the user confirms."""
    describe: Callable[[dict[str, Any]], str] | None = None
    """The action in words for the confirmation question ("delete the note about milk");
    default: the tool's name and arguments."""

    def spec(self) -> dict[str, Any]:
        """This tool in the OpenAI tools format."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }

    def action(self, arguments: dict[str, Any]) -> str:
        if self.describe is not None:
            return self.describe(arguments)
        shown = ", ".join(f"{k} {v}" for k, v in arguments.items())
        return f"{self.name.replace('_', ' ')} with {shown}" if shown else self.name.replace("_", " ")


@dataclass(frozen=True)
class CheckedCall:
    """A tool call that passed :meth:`ToolRegistry.check`: the only thing :meth:`ToolRegistry.run` runs."""

    call: ToolCall
    tool: Tool
    arguments: dict[str, Any]

    def describe(self) -> str:
        return self.tool.action(self.arguments)


class ToolRegistry:
    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        self._validators: dict[str, jsonschema.protocols.Validator] = {}
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        """Add ``tool``; a bad name, a duplicate or an invalid schema is a programming error."""
        if not _NAME.fullmatch(tool.name):
            raise ValueError(f"tool name {tool.name!r}: use 1 to 64 letters, digits, '_' or '-'")
        if tool.name in self._tools:
            raise ValueError(f"tool {tool.name!r} is registered twice")
        if tool.parameters.get("type") != "object":
            raise ValueError(f"tool {tool.name!r}: its parameters must be an object schema")
        validator_class = jsonschema.validators.validator_for(tool.parameters)
        try:
            validator_class.check_schema(tool.parameters)
        except jsonschema.SchemaError as e:
            raise ValueError(f"tool {tool.name!r} has an invalid argument schema: {e.message}") from e
        self._tools[tool.name] = tool
        self._validators[tool.name] = validator_class(tool.parameters)

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def enabled(self, names: Iterable[str]) -> ToolRegistry:
        """The subset a persona enables, in the order given; an unknown name is a config error."""
        wanted = list(names)
        unknown = [n for n in wanted if n not in self._tools]
        if unknown:
            raise ValueError(f"unknown tools {unknown}: the available tools are {self.names}")
        return ToolRegistry(self._tools[n] for n in dict.fromkeys(wanted))

    def specs(self) -> list[dict[str, Any]]:
        """All tools in the OpenAI tools format, for the LLM request."""
        return [tool.spec() for tool in self._tools.values()]

    def validate(self, name: str, arguments_json: str) -> dict[str, Any]:
        """The arguments of a call of ``name``, parsed and checked, or :class:`ToolError`."""
        try:
            return self._validate(name, arguments_json)
        except ToolError as e:
            logger.warning("refused a call of tool %s: %s", _shown(name), e.reason)
            raise

    def check(self, call: ToolCall) -> CheckedCall:
        """``call`` with its arguments parsed and checked, or :class:`ToolError`."""
        arguments = self.validate(call.name, call.arguments)
        return CheckedCall(call, self._tools[call.name], arguments)

    def run(self, checked: CheckedCall) -> str:
        """Run a checked call; a handler's failure becomes a short message, never an exception."""
        try:
            return checked.tool.handler(checked.arguments)
        except Exception:
            logger.exception("tool %s failed with arguments %s", checked.tool.name, checked.arguments)
            return f"The {checked.tool.name.replace('_', ' ')} tool failed."

    def _validate(self, name: str, arguments_json: str) -> dict[str, Any]:
        tool = self._tools.get(name)
        if tool is None:
            raise ToolError(f"there is no tool named {_shown(name)}")
        if len(arguments_json) > MAX_ARGUMENT_CHARS:
            raise ToolError(f"the arguments are longer than {MAX_ARGUMENT_CHARS} characters")
        try:
            # Models write "" for a call without arguments.
            arguments = json.loads(arguments_json) if arguments_json.strip() else {}
        except ValueError as e:
            raise ToolError(f"the arguments are not valid JSON ({e.msg})") from e
        if not isinstance(arguments, dict):
            raise ToolError("the arguments must be a JSON object")
        error = jsonschema.exceptions.best_match(self._validators[name].iter_errors(arguments))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "arguments"
            raise ToolError(f"{where}: {_shorten(error.message)}")
        return arguments


def _shown(name: str) -> str:
    """A model-written name, safe to log and repeat: printable, short."""
    return repr(_shorten(name, 40))


def _shorten(text: str, limit: int = 120) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
