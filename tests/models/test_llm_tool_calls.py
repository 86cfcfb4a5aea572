"""Tool calls through both LLM engines: the OpenAI tools format against a real
``llama_cpp.server`` on loopback, and llama-cpp-python's function calling in process.

The bundled SmolLM2-135M is no judge of when to call a tool; these tests check the plumbing
(tools sent, calls parsed, arguments that satisfy the schema under a forced choice), not its
wisdom.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest
from voxloop.models.base import Message, ToolCall, tool_calls_message, tool_result_message
from voxloop.models.openai_llm import OpenAICompatibleLLM
from voxloop.pipeline.assistant.builtin_tools import builtin_tools
from voxloop.pipeline.dialog import Dialog
from voxloop.pipeline.engines import Engines
from voxloop.pipeline.frames import ReplyEndFrame, TranscriptFrame
from voxloop.pipeline.reply_stage import APOLOGY, ReplyStage
from voxloop.pipeline.stage import run_stage

TIMER = {
    "type": "function",
    "function": {
        "name": "set_timer",
        "description": "Start a timer.",
        "parameters": {
            "type": "object",
            "properties": {"minutes": {"type": "integer"}, "label": {"type": "string"}},
            "required": ["minutes", "label"],
            "additionalProperties": False,
        },
    },
}
FORCE_TIMER = {"type": "function", "function": {"name": "set_timer"}}
ASK: list[Message] = [
    {"role": "system", "content": "You are a voice assistant with tools."},
    {"role": "user", "content": "Set a timer for ten minutes for the pasta."},
]


class RecordingTransport(httpx.HTTPTransport):
    """The real network transport, keeping the JSON body of each request."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[dict[str, Any]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self.bodies.append(json.loads(request.read()))
        return super().handle_request(request)


def only_calls(items: list[str | ToolCall]) -> list[ToolCall]:
    assert all(isinstance(i, ToolCall) for i in items), items
    return [i for i in items if isinstance(i, ToolCall)]


def assert_fits_the_schema(call: ToolCall) -> None:
    assert call.name == "set_timer" and call.id
    jsonschema.validate(json.loads(call.arguments), TIMER["function"]["parameters"])  # type: ignore[index]


def test_an_openai_server_is_sent_the_tools_and_its_streamed_call_is_parsed(server_root: str) -> None:
    transport = RecordingTransport()
    with OpenAICompatibleLLM(server_root, temperature=0.0, transport=transport) as llm:
        calls = only_calls(list(llm.stream(ASK, max_tokens=48, tools=[TIMER], tool_choice=FORCE_TIMER)))

        assert transport.bodies[-1]["tools"] == [TIMER]
        assert transport.bodies[-1]["tool_choice"] == FORCE_TIMER
        assert len(calls) == 1
        assert_fits_the_schema(calls[0])

        # The result goes back in the OpenAI format and the server answers in words.
        follow_up = [*ASK, tool_calls_message(calls), tool_result_message(calls[0].id, "Timer set for 10 minutes.")]
        reply = list(llm.stream(follow_up, max_tokens=16))
        assert all(isinstance(d, str) for d in reply) and "".join(reply).strip()  # type: ignore[arg-type]
        assert "tools" not in transport.bodies[-1]


def _fragments_body(fragments: list[dict[str, Any]]) -> str:
    chunks = [{"choices": [{"index": 0, "delta": {"tool_calls": [f]}, "finish_reason": None}]} for f in fragments]
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"


def test_interleaved_argument_fragments_are_assembled_by_index() -> None:
    # OpenAI's own shape: id and name in the first fragment of a call, then argument pieces.
    body = _fragments_body(
        [
            {"index": 0, "id": "call_a", "function": {"name": "set_timer", "arguments": ""}},
            {"index": 1, "id": "call_b", "function": {"name": "list_notes", "arguments": "{"}},
            {"index": 0, "function": {"arguments": '{"minutes": 10, '}},
            {"index": 1, "function": {"arguments": "}"}},
            {"index": 0, "function": {"arguments": '"label": "pasta"}'}},
        ]
    )
    transport = httpx.MockTransport(lambda request: httpx.Response(200, text=body))
    with OpenAICompatibleLLM("http://llm.test", model="m", transport=transport) as llm:
        calls = list(llm.stream(ASK, max_tokens=48, tools=[TIMER]))

    assert calls == [
        ToolCall("call_a", "set_timer", '{"minutes": 10, "label": "pasta"}'),
        ToolCall("call_b", "list_notes", "{}"),
    ]


@pytest.fixture
def llama(engines: Engines) -> Iterator[Any]:
    yield engines.llm


def test_llama_cpp_function_calling_makes_a_checked_call_and_talks_after_the_result(llama: Any) -> None:
    forced = only_calls(list(llama.stream(ASK, 48, [TIMER], tool_choice=FORCE_TIMER)))
    assert len(forced) == 1
    assert_fits_the_schema(forced[0])

    # Left to choose, it yields calls or text, never anything else; then, with the result, words.
    chosen = list(llama.stream(ASK, 48, [TIMER]))
    assert chosen and all(isinstance(i, (str, ToolCall)) for i in chosen)
    follow_up = [*ASK, tool_calls_message(forced), tool_result_message(forced[0].id, "Timer set.")]
    reply = list(llama.stream(follow_up, 16))
    assert reply and all(isinstance(d, str) for d in reply)


def test_a_tool_turn_on_the_bundled_model_ends_in_a_spoken_reply(engines: Engines) -> None:
    asked: list[str] = []
    tools = builtin_tools(clock=lambda: asked.append("clock") or "Tuesday, 14:05", list_notes=lambda: "1. buy milk")
    stage = ReplyStage(engines.llm, Dialog(), max_tokens=32, tools=tools)

    frames = asyncio.run(run_stage(stage, [TranscriptFrame(1, "What time is it?", 0.0, 0.0)]))
    stage.close()

    end = frames[-1]
    assert isinstance(end, ReplyEndFrame) and end.text and end.text != APOLOGY
