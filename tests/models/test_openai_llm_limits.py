"""OpenAICompatibleLLM against servers that misbehave: real HTTP servers on 127.0.0.1 that send
only keep-alives, nothing, a byte at a time, endless tokens, huge bodies, huge tool calls,
endless lines, or echo the API key. Each must cost one turn a clear EngineError, quickly,
having read at most the cap; through the reply stage the user hears the apology and the next
turn works. Deadlines are short here (half a second); nothing sleeps to wait for a result.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import select
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import DATA
from voxloop.models import openai_llm
from voxloop.models.base import Message, ToolCall
from voxloop.models.errors import EngineError, ModelError
from voxloop.models.openai_llm import OpenAICompatibleConfig, OpenAICompatibleLLM, api_key_from_env
from voxloop.pipeline.dialog import Dialog
from voxloop.pipeline.frames import Frame, ReplyEndFrame, SentenceFrame, TranscriptFrame
from voxloop.pipeline.reply_stage import APOLOGY, ReplyStage
from voxloop.pipeline.stage import Chain, Stage
from voxloop.pipeline.turn_log import TurnLog

ASK: list[Message] = [{"role": "user", "content": "Hello?"}]
FAST = OpenAICompatibleConfig(idle_timeout_s=0.5, reply_timeout_s=30.0)
"""Half a second without a token ends a reply; the total deadline out of the way."""
QUICK_S = 5.0
"""Generous bound for "at once" on a busy 2-core machine; the real costs are logged."""
READ_BYTES = 64 * 1024
"""What httpcore reads from the socket at a time: a cap can be overshot by one read."""

logger = logging.getLogger(__name__)


# --- a server that does what each test says ---------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.server.requests.append((self.command, self.path, dict(self.headers), body))
        behaviour = self.server.script.pop(0) if len(self.server.script) > 1 else self.server.script[0]
        self.server.got_request.set()
        behaviour(self, self.server)
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("test server: " + format, *args)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.script: list[Callable[[Handler, Server], None]] = [good]
        """What to do for each request in turn; the last one for all the rest."""
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.got_request = threading.Event()
        self.disconnected = threading.Event()
        """The client dropped the connection while the server was still answering."""
        self.stop = threading.Event()
        self.sent = 0
        self.errors: list[BaseException] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def write(self, handler: Handler, data: bytes) -> bool:
        """Send ``data``; False once the client has gone."""
        try:
            handler.wfile.write(data)
        except OSError:
            self.disconnected.set()
            return False
        self.sent += len(data)
        return True

    def hold(self, handler: Handler, every_s: float = 0.05) -> bool:
        """Wait ``every_s`` (the server's own pace); False once the client has gone or the test ended."""
        if self.stop.is_set():
            return False
        readable, _, _ = select.select([handler.connection], [], [], every_s)
        if readable and not handler.connection.recv(1, socket.MSG_PEEK):
            self.disconnected.set()
            return False
        return True

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.errors.append(sys.exc_info()[1])  # type: ignore[arg-type]


def sse_headers(h: Handler, status: int = 200, extra: dict[str, str] | None = None) -> None:
    h.send_response(status)
    h.send_header("Content-Type", "text/event-stream")
    h.send_header("Connection", "close")  # no length: the body runs until the connection closes
    for name, value in (extra or {}).items():
        h.send_header(name, value)
    h.end_headers()


def chunk(content: str | None = None, finish: str | None = None, tool_calls: list[Any] | None = None) -> bytes:
    delta: dict[str, Any] = {}
    if content is not None:
        delta["content"] = content
    if tool_calls is not None:
        delta["tool_calls"] = tool_calls
    return f"data: {json.dumps({'choices': [{'index': 0, 'delta': delta, 'finish_reason': finish}]})}\n\n".encode()


def good(h: Handler, s: Server) -> None:
    if h.command == "GET":
        body = b'{"object": "list", "data": [{"id": "m", "object": "model"}]}'
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Connection", "close")
        h.end_headers()
        s.write(h, body)
        return
    sse_headers(h)
    s.write(h, chunk("Hello ") + chunk("there.") + chunk(None, "stop") + b"data: [DONE]\n\n")


def keep_alives(h: Handler, s: Server) -> None:
    sse_headers(h)
    while s.write(h, b": keep-alive\n\n") and s.hold(h):
        pass


def silent(h: Handler, s: Server) -> None:
    sse_headers(h)
    s.write(h, chunk(None))  # a role-only chunk: data, but no token
    while s.hold(h):
        pass


def headers_only(h: Handler, s: Server) -> None:
    """Then nothing at all: only closing the socket can end the client's read (or its read timeout)."""
    sse_headers(h)
    while s.hold(h):
        pass


def trickle(h: Handler, s: Server) -> None:
    sse_headers(h)
    s.write(h, b"data: ")
    while s.write(h, b"x") and s.hold(h):
        pass


def endless_fast(h: Handler, s: Server) -> None:
    sse_headers(h)
    while s.write(h, chunk("word ") * 50) and not s.stop.is_set():
        pass


def endless_slow(h: Handler, s: Server) -> None:
    sse_headers(h)
    while s.write(h, chunk("word ")) and s.hold(h):
        pass


def huge_error(h: Handler, s: Server) -> None:
    h.send_response(500)
    h.send_header("Content-Type", "text/plain")
    h.send_header("Content-Length", str(200 * 1024 * 1024))
    h.end_headers()
    piece = b"the server is very sorry. " * 2500
    for _ in range(200 * 1024 * 1024 // len(piece)):
        if not s.write(h, piece) or s.stop.is_set():
            return


def huge_arguments(h: Handler, s: Server) -> None:
    sse_headers(h)
    first = {"index": 0, "id": "call_a", "function": {"name": "add_note", "arguments": '{"text": "'}}
    s.write(h, chunk(tool_calls=[first]))
    piece = chunk(tool_calls=[{"index": 0, "function": {"arguments": "a" * 1000}}])
    for _ in range(30 * 1000):  # 30 MB of arguments
        if not s.write(h, piece) or s.stop.is_set():
            return


def many_calls(h: Handler, s: Server) -> None:
    sse_headers(h)
    for i in range(100_000):
        call = {"index": i, "id": f"call_{i}", "function": {"name": "list_notes", "arguments": "{}"}}
        if not s.write(h, chunk(tool_calls=[call])) or s.stop.is_set():
            return


def endless_line(h: Handler, s: Server) -> None:
    sse_headers(h)
    s.write(h, b"data: ")
    while s.write(h, b"x" * 65536) and not s.stop.is_set():
        pass


def endless_event(h: Handler, s: Server) -> None:
    sse_headers(h)
    while s.write(h, b"data: more\n" * 1000) and not s.stop.is_set():
        pass


def echo_401(h: Handler, s: Server) -> None:
    """What careless servers do: quote the request, headers and all, in the error."""
    body = json.dumps({"error": f"bad credentials: {h.requestline} {dict(h.headers)}"}).encode()
    h.send_response(401)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    s.write(h, body)


def endless_model_list(h: Handler, s: Server) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Connection", "close")
    h.end_headers()
    s.write(h, b'{"data": [')
    while s.write(h, b'{"id": "m"},' * 5000) and not s.stop.is_set():
        pass


def redirect(h: Handler, s: Server) -> None:
    h.send_response(307)
    h.send_header("Location", "https://llm.example/v1/chat/completions?api_key=SECRET-IN-QUERY")
    h.send_header("Content-Length", "0")
    h.end_headers()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    thread = threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield s
    s.stop.set()
    s.shutdown()
    s.server_close()
    thread.join(timeout=5)
    assert not s.errors, s.errors


class CountingTransport(httpx.HTTPTransport):
    """The real network transport, counting the body bytes the client actually read."""

    def __init__(self) -> None:
        super().__init__()
        self.received = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_Counted(response.stream, self),  # type: ignore[arg-type]
            extensions=response.extensions,
        )


class _Counted(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, transport: CountingTransport) -> None:
        self.inner = inner
        self.transport = transport

    def __iter__(self) -> Iterator[bytes]:
        for part in self.inner:
            self.transport.received += len(part)
            yield part

    def close(self) -> None:
        self.inner.close()


def client(server: Server, config: OpenAICompatibleConfig = FAST, **kwargs: Any) -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM(server.url, model="m", config=config, **kwargs)


def failing(llm: OpenAICompatibleLLM, max_tokens: int = 32) -> tuple[EngineError, list[str | ToolCall], float]:
    """Stream until it fails: the error, what came before it, and how long it took."""
    got: list[str | ToolCall] = []
    started = time.monotonic()
    with pytest.raises(EngineError) as caught:
        for item in llm.stream(ASK, max_tokens):
            got.append(item)
    elapsed = time.monotonic() - started
    message = str(caught.value)
    logger.info("failed after %.2f s: %s", elapsed, message)
    assert "\n" not in message and len(message) < 600
    assert "127.0.0.1" in message
    return caught.value, got, elapsed


# --- deadlines ---------------------------------------------------------------------------------


def test_keep_alives_alone_hit_the_idle_deadline(server: Server) -> None:
    server.script = [keep_alives]
    with client(server) as llm:
        error, got, elapsed = failing(llm)

    assert "sent no token for 0.5 s" in str(error) and "keep-alives do not count" in str(error)
    assert got == []
    assert 0.45 <= elapsed < QUICK_S
    assert server.disconnected.wait(QUICK_S)  # and the connection was dropped


@pytest.mark.parametrize("behaviour", [silent, trickle], ids=["silent", "one-byte-at-a-time"])
def test_a_silent_or_trickling_server_hits_the_idle_deadline(server: Server, behaviour: Callable[[Handler, Server], None]) -> None:
    server.script = [behaviour]
    with client(server) as llm:
        error, _, elapsed = failing(llm)

    assert "sent no token for 0.5 s" in str(error)
    assert 0.45 <= elapsed < QUICK_S
    assert server.disconnected.wait(QUICK_S)


def test_the_idle_deadline_starts_again_at_each_token(server: Server) -> None:
    # A token every 50 ms for longer than the idle deadline: slow, but alive.
    def slow_tokens(h: Handler, s: Server) -> None:
        sse_headers(h)
        for _ in range(20):
            s.write(h, b": keep-alive\n\n" + chunk("word "))
            s.hold(h, 0.05)
        s.write(h, chunk(None, "stop") + b"data: [DONE]\n\n")

    server.script = [slow_tokens]
    config = OpenAICompatibleConfig(idle_timeout_s=0.5, reply_timeout_s=30.0)
    with client(server, config) as llm:
        assert "".join(llm.stream(ASK, 32)) == "word " * 20  # type: ignore[arg-type]


def test_an_endless_slow_reply_hits_the_total_deadline(server: Server) -> None:
    server.script = [endless_slow]
    config = OpenAICompatibleConfig(idle_timeout_s=0.5, reply_timeout_s=1.0)
    with client(server, config) as llm:
        error, got, elapsed = failing(llm, max_tokens=10_000)

    assert "took more than 1 s for one reply" in str(error)
    assert got and set(got) == {"word "}  # what came in time was given
    assert 0.95 <= elapsed < QUICK_S
    assert server.disconnected.wait(QUICK_S)


def test_time_the_caller_holds_a_token_counts_for_neither_deadline(server: Server) -> None:
    def in_two_parts(h: Handler, s: Server) -> None:
        sse_headers(h)
        s.write(h, chunk("Hello "))
        s.hold(h, 0.1)  # well within the idle deadline
        s.write(h, chunk("there.") + chunk(None, "stop") + b"data: [DONE]\n\n")

    server.script = [in_two_parts]
    config = OpenAICompatibleConfig(idle_timeout_s=0.2, reply_timeout_s=0.4)
    with client(server, config) as llm:
        reply = llm.stream(ASK, 32)
        first = next(reply)
        threading.Event().wait(0.6)  # the caller speaks the first words, longer than both deadlines
        rest = list(reply)

    assert [first, *rest] == ["Hello ", "there."]


# --- caps --------------------------------------------------------------------------------------


def test_an_endless_fast_reply_is_cut_at_the_reply_cap(server: Server) -> None:
    server.script = [endless_fast]
    with client(server) as llm:
        error, got, elapsed = failing(llm, max_tokens=8)

    cap = (8 + 16) * 16
    assert f"more than {cap} characters for a reply of at most 8 tokens" in str(error)
    assert "ignores max_tokens" in str(error)
    said = sum(len(i) for i in got if isinstance(i, str))
    assert cap - len("word ") < said <= cap
    assert elapsed < QUICK_S
    assert server.disconnected.wait(QUICK_S)


def test_a_huge_error_body_is_read_only_to_its_cap(server: Server) -> None:
    server.script = [huge_error]
    transport = CountingTransport()
    with client(server, transport=transport) as llm:
        error, _, elapsed = failing(llm)

    assert "HTTP 500 Internal Server Error: the server is very sorry." in str(error)
    assert "Check the server's log" in str(error)
    cap = OpenAICompatibleConfig().max_error_body_bytes
    assert transport.received <= cap + READ_BYTES
    assert elapsed < QUICK_S
    assert server.disconnected.wait(QUICK_S)
    assert server.sent < 32 * 1024 * 1024  # of 200 MB: only what the socket buffers took


def test_huge_tool_call_arguments_are_stopped_while_streaming(server: Server) -> None:
    server.script = [huge_arguments]
    transport = CountingTransport()
    with client(server, transport=transport) as llm:
        error, got, elapsed = failing(llm)

    assert "tool-call arguments longer than 16000 characters" in str(error)
    assert got == []  # no call is half-given
    assert transport.received < 16_000 * 2 + 2 * READ_BYTES  # not 30 MB
    assert elapsed < QUICK_S
    assert server.disconnected.wait(QUICK_S)


def test_endless_tool_calls_are_stopped_while_streaming(server: Server) -> None:
    server.script = [many_calls]
    with client(server) as llm:
        error, got, _ = failing(llm)

    assert "more than 16 tool calls in one reply" in str(error)
    assert got == []


@pytest.mark.parametrize(
    ("behaviour", "what"),
    [(endless_line, "a line longer than 262144 bytes"), (endless_event, "an event longer than 262144 characters")],
    ids=["line", "event"],
)
def test_an_endless_line_or_event_is_cut_at_the_line_cap(
    server: Server, behaviour: Callable[[Handler, Server], None], what: str
) -> None:
    server.script = [behaviour]
    transport = CountingTransport()
    with client(server, transport=transport) as llm:
        error, _, elapsed = failing(llm)

    assert what in str(error)
    assert transport.received <= 256 * 1024 + 2 * READ_BYTES
    assert elapsed < QUICK_S
    assert server.disconnected.wait(QUICK_S)


def test_an_endless_model_list_is_cut_at_its_cap(server: Server) -> None:
    server.script = [endless_model_list]
    transport = CountingTransport()
    config = OpenAICompatibleConfig(max_body_bytes=100_000)
    with OpenAICompatibleLLM(server.url, config=config, transport=transport) as llm, pytest.raises(EngineError) as caught:
        llm.warm_up()

    assert "sent a model list over 100000 bytes" in str(caught.value)
    assert transport.received <= 100_000 + READ_BYTES


def test_a_redirect_is_named_without_its_query(server: Server) -> None:
    server.script = [redirect]
    with client(server) as llm:
        error, _, _ = failing(llm)

    assert "HTTP 307, a redirect to https://llm.example/v1/chat/completions" in str(error)
    assert "SECRET" not in str(error)


# --- interrupt ---------------------------------------------------------------------------------


def test_abort_closes_a_response_blocked_on_a_silent_server(server: Server) -> None:
    server.script = [headers_only, good]
    patient = OpenAICompatibleConfig(idle_timeout_s=60.0)  # only the abort can end it
    with client(server, patient) as llm, ThreadPoolExecutor(1) as pool:
        reply = pool.submit(lambda: list(llm.stream(ASK, 32)))
        assert server.got_request.wait(QUICK_S)
        started = time.monotonic()
        llm.abort()
        assert reply.result(timeout=QUICK_S) == []  # it just ends
        logger.info("abort ended the blocked read in %.3f s", time.monotonic() - started)
        assert server.disconnected.wait(QUICK_S)
        # Later requests are not affected.
        assert list(llm.stream(ASK, 32)) == ["Hello ", "there."]


class Collect(Stage):
    name = "collect"

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[Frame] = []
        self.changed = asyncio.Condition()

    async def process(self, frame: Frame) -> None:
        async with self.changed:
            self.frames.append(frame)
            self.changed.notify_all()

    async def until(self, done: Callable[[], bool], timeout_s: float = QUICK_S) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(done), timeout_s)

    def reply_end(self, turn_id: int) -> ReplyEndFrame | None:
        return next((f for f in self.frames if isinstance(f, ReplyEndFrame) and f.turn_id == turn_id), None)

    def spoken(self, turn_id: int) -> list[str]:
        return [f.text for f in self.frames if isinstance(f, SentenceFrame) and f.turn_id == turn_id]


def test_a_stuck_server_costs_the_turn_an_apology_and_the_next_turn_works(server: Server) -> None:
    server.script = [keep_alives, good]

    async def main() -> None:
        with client(server) as llm:
            reply, collect = ReplyStage(llm, Dialog()), Collect()
            chain = Chain([reply, collect], TurnLog(None))
            chain.start()
            await chain.input.put(TranscriptFrame(1, "Are you there?", 1.0, 10.0))
            await collect.until(lambda: collect.reply_end(1) is not None)
            await chain.input.put(TranscriptFrame(2, "And now?", 3.0, 10.0))
            await collect.until(lambda: collect.reply_end(2) is not None)
            await chain.stop()

            assert " ".join(collect.spoken(1)) == APOLOGY
            assert "sent no token for 0.5 s" in (reply.ctx.log.get(1).error or "")
            assert " ".join(collect.spoken(2)) == "Hello there."
            assert [e.reply for e in reply.dialog.exchanges] == [APOLOGY, "Hello there."]

    asyncio.run(main())


def test_an_interrupt_closes_a_stuck_reply_at_once_and_the_next_turn_works(server: Server) -> None:
    server.script = [headers_only, good]
    patient = OpenAICompatibleConfig(idle_timeout_s=60.0)  # without the interrupt, a minute

    async def main() -> None:
        with client(server, patient) as llm:
            reply, collect = ReplyStage(llm, Dialog()), Collect()
            chain = Chain([reply, collect], TurnLog(None))
            chain.start()
            await chain.input.put(TranscriptFrame(1, "Are you there?", 1.0, 10.0))
            assert await asyncio.to_thread(server.got_request.wait, QUICK_S)
            started = time.monotonic()
            chain.interrupt(2)  # the user barged in
            await chain.input.put(TranscriptFrame(2, "Hello?", 3.0, 10.0))
            await collect.until(lambda: collect.reply_end(2) is not None)
            logger.info("the next turn's reply ended %.2f s after the interrupt", time.monotonic() - started)
            await chain.stop()

            assert await asyncio.to_thread(server.disconnected.wait, QUICK_S)
            assert reply.ctx.log.get(1).error is None  # an interrupt is not a failure: no apology
            assert collect.spoken(1) == []
            assert " ".join(collect.spoken(2)) == "Hello there."

    asyncio.run(main())


# --- the API key and the URL -------------------------------------------------------------------

KEY = "sk-test-4f9c2e81d7b34a6a9e0f5c3b2a1d8e7f"


def test_the_api_key_is_sent_as_a_bearer_token_and_never_shown(server: Server, caplog: pytest.LogCaptureFixture) -> None:
    server.script = [echo_401]
    caplog.set_level(logging.DEBUG)  # httpx and httpcore included
    with client(server, api_key=KEY) as llm:
        error, _, _ = failing(llm)
        shown = repr(llm) + str(vars(llm))

    assert server.requests[0][2]["Authorization"] == f"Bearer {KEY}"
    message = str(error)
    assert "HTTP 401 Unauthorized: " in message and "bad credentials" in message
    assert "--llm-api-key-env" in message
    assert KEY not in message and "***" in message  # the echo, scrubbed
    assert KEY not in "".join(traceback.format_exception(error))
    assert KEY not in caplog.text
    assert KEY not in shown


def test_credentials_in_the_url_are_never_shown(server: Server, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openai_llm, "_warned", set())
    server.script = [echo_401]
    url = server.url.replace("http://", "http://me:hunter2pass@") + "/v1?token=abcdef123456"
    with OpenAICompatibleLLM(url, model="m", config=FAST) as llm:
        assert llm.base_url == f"{server.url}/v1"
        error, _, _ = failing(llm)

    _, path, headers, _ = server.requests[0]
    assert path == "/v1/chat/completions?token=abcdef123456"
    basic = headers["Authorization"].removeprefix("Basic ")
    assert base64.b64decode(basic) == b"me:hunter2pass"
    for secret in ("hunter2pass", "abcdef123456", basic):
        assert secret not in str(error) and secret not in caplog.text
    assert "carries credentials in the URL; pass the key with --llm-api-key-env" in caplog.text


def test_the_key_comes_from_the_named_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXLOOP_TEST_KEY", f"  {KEY}\n")
    assert api_key_from_env("VOXLOOP_TEST_KEY") == KEY
    assert api_key_from_env("") is None

    monkeypatch.delenv("VOXLOOP_TEST_KEY")
    with pytest.raises(ModelError, match="VOXLOOP_TEST_KEY .* is not set") as missing:
        api_key_from_env("VOXLOOP_TEST_KEY")
    assert "\n" not in str(missing.value)

    with pytest.raises(ModelError) as pasted:  # the key itself where its variable's name goes
        api_key_from_env(KEY)
    assert KEY not in str(pasted.value) and "not the key itself" in str(pasted.value)

    monkeypatch.setenv("VOXLOOP_TEST_KEY", "two\nlines")
    with pytest.raises(ModelError) as bad:
        api_key_from_env("VOXLOOP_TEST_KEY")
    assert "two" not in str(bad.value)


@pytest.mark.parametrize("where", ["flag", "config"])
def test_a_missing_key_variable_is_one_line_and_exit_2(tmp_path: Path, where: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[models]\nllm_api_key_env = "VOXLOOP_TEST_NO_SUCH_KEY"\n')
    flags = ["--llm-api-key-env", "VOXLOOP_TEST_NO_SUCH_KEY"] if where == "flag" else ["--config", str(config)]
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "VOXLOOP_TEST_NO_SUCH_KEY"}
    done = subprocess.run(
        [sys.executable, "-m", "voxloop.pipeline.cli", "replay", str(DATA / "what_time_is_it.wav"), "--fast",
         "--out-dir", str(out), "--llm-url", "http://127.0.0.1:9/v1", *flags],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env={**env, "HOME": str(tmp_path)},
    )  # fmt: skip

    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("voxloop: ") and "VOXLOOP_TEST_NO_SUCH_KEY" in lines[0] and "is not set" in lines[0]
    assert not out.exists()


def test_plain_http_to_another_machine_warns_once(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openai_llm, "_warned", set())
    caplog.set_level(logging.WARNING, logger=openai_llm.__name__)
    for url in ["http://127.0.0.1:8080", "http://localhost:8080/v1", "http://[::1]:8080", "https://llm.example/v1"]:
        OpenAICompatibleLLM(url).close()
    assert caplog.records == []

    for _ in range(2):
        OpenAICompatibleLLM("http://192.168.1.20:8080/v1", api_key=KEY).close()
    [warning] = caplog.records
    assert warning.levelno == logging.WARNING
    assert "http://192.168.1.20:8080/v1 is plain http to another machine" in warning.getMessage()
    assert "the API key" in warning.getMessage() and KEY not in warning.getMessage()


@pytest.mark.parametrize("url", ["127.0.0.1:8080", "ftp://host/v1", "http://"])
def test_a_url_that_is_not_http_is_refused_at_once(url: str) -> None:
    with pytest.raises(ModelError, match="is not an http:// or https:// URL"):
        OpenAICompatibleLLM(url)


def test_a_good_reply_leaves_no_deadline_thread_behind(server: Server) -> None:
    with client(server, api_key=KEY) as llm:
        for _ in range(3):
            assert list(llm.stream(ASK, 32)) == ["Hello ", "there."]
        llm.warm_up()  # model list + one-token reply, each under the warm-up deadlines
    assert not [t for t in threading.enumerate() if t.name == "llm-deadline"]
