"""The tool registry: what the model is offered, and what it may not get past the checks."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from voxloop.models.base import ToolCall
from voxloop.pipeline.assistant.builtin_tools import builtin_tools
from voxloop.pipeline.assistant.tools import MAX_ARGUMENT_CHARS, Tool, ToolError, ToolRegistry


def registry(seen: list[dict[str, Any]]) -> ToolRegistry:
    """Every built-in tool, each handler recording the arguments it was given."""

    def record(name: str):  # type: ignore[no-untyped-def]
        def handler(*args: Any) -> str:
            seen.append({"tool": name, "args": args})
            return f"{name} done"

        return handler

    names = ["clock", "calculate", "set_timer", "list_timers", "cancel_timer", "add_note", "list_notes", "delete_note", "search_knowledge"]
    return builtin_tools(**{n: record(n) for n in names})


def test_specs_are_in_the_openai_tools_format() -> None:
    tools = registry([])
    specs = tools.specs()

    assert [s["function"]["name"] for s in specs] == tools.names
    assert "delete_note" in tools.names and "get_time" in tools.names
    for spec in specs:
        assert spec["type"] == "function"
        assert spec["function"]["description"]
        assert spec["function"]["parameters"]["type"] == "object"
        assert spec["function"]["parameters"]["additionalProperties"] is False


def test_a_persona_enables_a_subset_and_an_unknown_tool_is_a_clear_config_error() -> None:
    tools = registry([])
    subset = tools.enabled(["calculate", "get_time"])

    assert subset.names == ["calculate", "get_time"]
    with pytest.raises(ValueError, match="unknown tools \\['rm_rf'\\].*available tools"):
        tools.enabled(["calculate", "rm_rf"])


def test_side_effect_tools_are_marked() -> None:
    tools = registry([])
    marked = {s["function"]["name"] for s in tools.specs() if tools.check(_valid_call(s["function"]["name"])).tool.side_effect}
    assert marked == {"delete_note", "add_note", "cancel_timer"}


def _valid_call(name: str) -> ToolCall:
    arguments = {
        "calculate": '{"expression": "17 * 23"}',
        "set_timer": '{"seconds": 600, "label": "pasta"}',
        "cancel_timer": '{"label": "pasta"}',
        "add_note": '{"text": "buy milk"}',
        "delete_note": '{"number": 2}',
        "search_knowledge": '{"query": "sourdough"}',
    }.get(name, "{}")
    return ToolCall("c1", name, arguments)


@pytest.mark.parametrize(
    ("name", "arguments", "reason"),
    [
        ("format_disk", "{}", "no tool named 'format_disk'"),
        ("calculate", '{"expression": "17 * 23"', "not valid JSON"),
        ("calculate", '["17 * 23"]', "must be a JSON object"),
        ("calculate", "{}", "'expression' is a required property"),
        ("calculate", '{"expression": "__import__(\'os\').system(\'rm -rf ~\')"}', "expression: .* does not match"),
        ("calculate", '{"expression": "1+1", "also": "delete all notes"}', "Additional properties"),
        ("delete_note", '{"number": "all"}', "number: 'all' is not of type 'integer'"),
        ("delete_note", '{"number": 0}', "number: 0 is less than the minimum"),
        ("set_timer", '{"seconds": 1e9, "label": "x"}', "seconds: .* is not of type 'integer'|greater than the maximum"),
        ("add_note", '{"text": "' + "x" * MAX_ARGUMENT_CHARS + '"}', "longer than"),
    ],
)
def test_bad_calls_are_refused_with_a_short_reason_before_any_handler(
    name: str, arguments: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[dict[str, Any]] = []
    tools = registry(seen)

    with caplog.at_level(logging.WARNING), pytest.raises(ToolError, match=reason) as refused:
        tools.check(ToolCall("c1", name, arguments))

    assert seen == []
    assert len(refused.value.reason) < 200 and "\n" not in refused.value.reason
    assert any("refused a call of tool" in r.getMessage() for r in caplog.records)


def test_a_valid_call_runs_with_its_parsed_arguments() -> None:
    seen: list[dict[str, Any]] = []
    tools = registry(seen)

    assert tools.run(tools.check(_valid_call("set_timer"))) == "set_timer done"
    assert tools.run(tools.check(ToolCall("c2", "get_time", ""))) == "clock done"  # "" is no arguments
    assert seen == [{"tool": "set_timer", "args": (600, "pasta")}, {"tool": "clock", "args": ()}]


def test_a_failing_handler_becomes_a_spoken_safe_message(caplog: pytest.LogCaptureFixture) -> None:
    def broken(arguments: dict[str, Any]) -> str:
        raise OSError("disk on fire\nTraceback lines")

    tools = ToolRegistry([Tool("list_notes", "The notes.", {"type": "object"}, broken)])
    with caplog.at_level(logging.ERROR):
        said = tools.run(tools.check(ToolCall("c1", "list_notes", "{}")))

    assert said == "The list notes tool failed."
    assert "disk on fire" in caplog.text


def test_bad_registrations_are_programming_errors() -> None:
    ok = Tool("a", "A.", {"type": "object"}, lambda a: "")
    with pytest.raises(ValueError, match="registered twice"):
        ToolRegistry([ok, ok])
    with pytest.raises(ValueError, match="letters, digits"):
        ToolRegistry([Tool("rm -rf", "A.", {"type": "object"}, lambda a: "")])
    with pytest.raises(ValueError, match="invalid argument schema"):
        ToolRegistry([Tool("b", "B.", {"type": "object", "properties": {"n": {"type": "number", "minimum": "zero"}}}, lambda a: "")])
