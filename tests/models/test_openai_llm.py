"""OpenAICompatibleLLM against a real ``python -m llama_cpp.server`` running the bundled SmolLM2.

The SSE parser's error paths are also checked offline through ``httpx.MockTransport``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import httpx
import pytest
from conftest import free_port
from voxloop.models.base import Message
from voxloop.models.errors import EngineError
from voxloop.models.openai_llm import OpenAICompatibleLLM

logger = logging.getLogger(__name__)

_QUESTION: list[Message] = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture
def llm(server_root: str) -> Iterator[OpenAICompatibleLLM]:
    with OpenAICompatibleLLM(server_root, temperature=0.0) as llm:
        # As at start: the server's first reply (cold caches, on a busy machine) may take longer
        # than the 10 s a turn may wait for a token; warm-up has its own, longer deadline.
        llm.warm_up()
        yield llm


def test_streams_a_reply_in_several_deltas(llm: OpenAICompatibleLLM) -> None:
    deltas = list(llm.stream(_QUESTION, max_tokens=24))

    assert len(deltas) >= 2
    assert all(isinstance(d, str) and d for d in deltas)
    assert "".join(deltas).strip()


def test_accepts_a_conversation_history(llm: OpenAICompatibleLLM) -> None:
    history: list[Message] = [
        {"role": "system", "content": "You are a helpful voice assistant. Answer briefly."},
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And of Italy?"},
    ]

    assert "".join(llm.stream(history, max_tokens=16)).strip()


def test_closing_the_generator_cancels_promptly(llm: OpenAICompatibleLLM) -> None:
    # At temperature 0 this runs to all 600 tokens (7-10 s on 2 cores) and holds the model
    # meanwhile: the next request is quick only if the server stopped at our disconnect.
    essay: list[Message] = [
        {"role": "user", "content": "Write a 500-word essay about the history of Rome."}
    ]
    started = time.perf_counter()
    "".join(llm.stream(_QUESTION, max_tokens=8))
    alone_s = time.perf_counter() - started  # the same short request on a free server, as it runs now
    reply = llm.stream(essay, max_tokens=600)
    assert next(reply)

    started = time.perf_counter()
    reply.close()
    close_s = time.perf_counter() - started

    started = time.perf_counter()
    after = "".join(llm.stream(_QUESTION, max_tokens=8))
    next_s = time.perf_counter() - started
    logger.info("close() returned in %.4f s; the next 8-token reply took %.2f s", close_s, next_s)
    assert close_s < 0.5
    assert after.strip()
    # Had the essay gone on, the short request would have waited for all 600 tokens (several
    # times longer); the bound scales with how busy this machine is right now.
    assert next_s < max(3.0, 4 * alone_s)


def test_warm_up_picks_the_served_model(server_root: str) -> None:
    served = httpx.get(f"{server_root}/v1/models").json()["data"][0]["id"]

    with OpenAICompatibleLLM(server_root) as llm:
        assert llm.model is None
        llm.warm_up()
        assert llm.model == served


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/"])
def test_base_url_with_or_without_v1(server_root: str, suffix: str) -> None:
    with OpenAICompatibleLLM(server_root + suffix, temperature=0.0) as llm:
        assert llm.base_url == f"{server_root}/v1"
        assert "".join(llm.stream(_QUESTION, max_tokens=4))


def test_unreachable_server_names_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there

    with OpenAICompatibleLLM(url, model="m") as llm:
        with pytest.raises(EngineError) as streamed:
            list(llm.stream(_QUESTION, max_tokens=4))
        with pytest.raises(EngineError) as warmed:
            llm.warm_up()

    for error in (streamed.value, warmed.value):
        message = str(error)
        assert url in message
        assert "refused" in message
        assert "--llm-url" in message
        assert "\n" not in message


def _fake_llm(body: str, status: int = 200) -> OpenAICompatibleLLM:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/chat/completions"
        return httpx.Response(
            status, text=body, headers={"content-type": "text/event-stream"}
        )

    return OpenAICompatibleLLM("http://llm.test", model="m", transport=httpx.MockTransport(handler))


def _chunk(content: str | None, finish: str | None = None) -> str:
    delta = "{}" if content is None else f'{{"content": "{content}"}}'
    finish_json = "null" if finish is None else f'"{finish}"'
    choice = f'{{"index": 0, "delta": {delta}, "finish_reason": {finish_json}}}'
    return f'data: {{"choices": [{choice}]}}\n\n'


def test_parses_a_well_formed_stream() -> None:
    body = (
        ": ping\n\n"
        + 'data: {"choices": [{"index": 0, "delta": {"role": "assistant"}}]}\n\n'
        + _chunk("Hel") + _chunk("") + _chunk("lo") + _chunk(None, "stop")
        + "data: [DONE]\n\n"
    )
    with _fake_llm(body) as llm:
        assert list(llm.stream(_QUESTION, max_tokens=4)) == ["Hel", "lo"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(_chunk("Hel") + "data: {not json\n\n", id="not-json"),
        pytest.param('data: {"object": "chat.completion.chunk"}\n\n', id="no-choices"),
        pytest.param('{"choices": [{"message": {"content": "Hi"}}]}', id="not-sse"),
        pytest.param(_chunk("Hel"), id="ends-before-done"),
    ],
)
def test_malformed_stream_raises_engine_error(body: str) -> None:
    with _fake_llm(body) as llm, pytest.raises(EngineError) as caught:
        list(llm.stream(_QUESTION, max_tokens=4))

    assert "http://llm.test/v1/chat/completions" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_http_error_includes_the_servers_body() -> None:
    body = '{"error": {"message": "Requested tokens exceed context window of 1024"}}'
    with _fake_llm(body, status=400) as llm, pytest.raises(EngineError) as caught:
        list(llm.stream(_QUESTION, max_tokens=4))

    assert "HTTP 400 Bad Request" in str(caught.value)
    assert "exceed context window of 1024" in str(caught.value)
