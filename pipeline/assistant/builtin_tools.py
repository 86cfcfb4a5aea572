"""The built-in tools, as schemas around handlers that other modules provide.

The clock, the timers, the calculator, the notes and the knowledge search live in their own
modules; this file only says how the model may call them. Each handler is passed in, and a tool
whose handler is not given is left out. Tools that change or remove what the user keeps
(adding or deleting a note, cancelling a timer) are side effects and wait for a spoken yes;
setting a timer does not (it is audible, harmless and can be cancelled).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from .tools import Tool, ToolRegistry

MAX_TIMER_S = 24 * 3600
"""The longest timer a tool call may set: a day."""


def _schema(properties: dict[str, Any] | None = None) -> dict[str, Any]:
    """An object schema where every listed property is required and nothing else is allowed."""
    properties = properties or {}
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def _text(description: str, max_length: int) -> dict[str, Any]:
    return {"type": "string", "description": description, "minLength": 1, "maxLength": max_length}


def builtin_tools(
    *,
    clock: Callable[[], str] | None = None,
    calculate: Callable[[str], str] | None = None,
    set_timer: Callable[[int, str], str] | None = None,
    list_timers: Callable[[], str] | None = None,
    cancel_timer: Callable[[str], str] | None = None,
    add_note: Callable[[str], str] | None = None,
    list_notes: Callable[[], str] | None = None,
    delete_note: Callable[[int], str] | None = None,
    search_knowledge: Callable[[str], str] | None = None,
) -> ToolRegistry:
    """A registry of the tools whose handlers are given. Each handler returns text for the model.

    ``clock()``: the current local date and time. ``calculate(expression)``: the value of an
    arithmetic expression (a safe evaluator, never ``eval``). ``set_timer(seconds, label)``,
    ``list_timers()``, ``cancel_timer(label)``. ``add_note(text)``, ``list_notes()`` (numbered,
    to read back), ``delete_note(number)`` (as numbered by ``list_notes``).
    ``search_knowledge(query)``: the best passages of the persona's files, with their names.
    """
    tools: list[Tool] = []
    if clock is not None:
        tools.append(Tool("get_time", "The current local date, day of the week and time.", _schema(), lambda a: clock()))
    if calculate is not None:
        expression = _text("Arithmetic with numbers, + - * / ^ %, parentheses, e.g. '17 * 23'.", 200)
        expression["pattern"] = r"^[0-9\s.,+\-*/^%()]+$"
        tools.append(Tool("calculate", "Compute an arithmetic expression exactly.", _schema({"expression": expression}), lambda a: calculate(a["expression"])))
    if set_timer is not None:
        seconds = {"type": "integer", "minimum": 1, "maximum": MAX_TIMER_S, "description": "Duration in seconds."}
        tools.append(Tool("set_timer", "Start a timer that rings after the given number of seconds.", _schema({"seconds": seconds, "label": _text("What the timer is for, e.g. 'pasta'.", 60)}), lambda a: set_timer(a["seconds"], a["label"])))
    if list_timers is not None:
        tools.append(Tool("list_timers", "The running timers and the time left on each.", _schema(), lambda a: list_timers()))
    if cancel_timer is not None:
        tools.append(Tool("cancel_timer", "Cancel a running timer.", _schema({"label": _text("The timer's label.", 60)}), lambda a: cancel_timer(a["label"]), side_effect=True, describe=lambda a: f"cancel the {a['label']} timer"))
    if add_note is not None:
        tools.append(Tool("add_note", "Save a note for the user.", _schema({"text": _text("The note.", 500)}), lambda a: add_note(a["text"]), side_effect=True, describe=lambda a: f"save the note: {a['text']}"))
    if list_notes is not None:
        tools.append(Tool("list_notes", "The user's notes, numbered, to read back.", _schema(), lambda a: list_notes()))
    if delete_note is not None:
        number = {"type": "integer", "minimum": 1, "description": "The note's number as list_notes gives it."}
        tools.append(Tool("delete_note", "Delete one of the user's notes.", _schema({"number": number}), lambda a: delete_note(a["number"]), side_effect=True, describe=lambda a: f"delete note number {a['number']}"))
    if search_knowledge is not None:
        tools.append(Tool("search_knowledge", "Search the assistant's reference files; passages come with their file names.", _schema({"query": _text("What to look for.", 200)}), lambda a: search_knowledge(a["query"])))
    return ToolRegistry(tools)


def builtin_tool_names() -> list[str]:
    """Every built-in tool's name: what a persona's ``tools = [...]`` may list."""

    def never(*args: object) -> str:  # pragma: no cover - only the names are read
        raise AssertionError("a placeholder handler ran")

    handlers = inspect.signature(builtin_tools).parameters
    return builtin_tools(**{name: never for name in handlers}).names  # type: ignore[arg-type]
