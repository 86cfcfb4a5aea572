"""Streamed chat replies from any OpenAI-compatible server.

llama.cpp's ``llama-server``, ``python -m llama_cpp.server``, vLLM and Ollama all answer
``POST /v1/chat/completions`` with ``stream: true`` as server-sent events: ``data: {json}``
chunks whose ``choices[0].delta.content`` carry the text, then ``data: [DONE]``. When tools
are offered, ``delta.tool_calls`` carry function calls in fragments: each names its call by
``index``, the first fragment brings the id and name, the rest append to the arguments.

What the server sends is bounded (:class:`OpenAICompatibleConfig`): a reply must bring a token
every ``idle_timeout_s`` (keep-alive comments do not count) and end within
``reply_timeout_s``; error bodies, lines, tool-call arguments and the reply itself have caps,
checked as the bytes arrive, so a broken or hostile server costs one turn, never the session
nor the memory. A deadline is kept by a thread that shuts the socket down, so a read blocked on
a silent server returns at once; :meth:`OpenAICompatibleLLM.abort` does the same on an
interrupt. The API key goes in the ``Authorization`` header and never into a message.

Every failure becomes one :class:`~voxloop.models.errors.EngineError` whose single-line message
names the URL (without credentials) and what to do::

    EngineError
     ├── cannot reach the server          connection refused, DNS, connect timeout
     ├── lost the connection              the server died mid-reply
     ├── sent no token / took too long    the idle or the total deadline passed
     ├── answered HTTP 3xx/4xx/5xx        with the server's own error body, truncated
     ├── sent too much                    a line, an event, the reply or a tool call over its cap
     └── malformed stream or model list   not an OpenAI-compatible answer
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from .base import Message, ToolCall
from .errors import EngineError, ModelError

logger = logging.getLogger(__name__)

_START_HINT = "Start it (python -m llama_cpp.server --model M.gguf) or check --llm-url"
_EXCERPT_CHARS = 300
"""How much of an error body or a bad event goes into a message."""
_SLACK_TOKENS = 16
"""Tokens a reply may run over ``max_tokens`` before it counts as ignoring it."""
_SECRET_NAME = re.compile(r"key|token|secret|password", re.I)
"""Query parameters that hold credentials."""


@dataclass(frozen=True)
class OpenAICompatibleConfig:
    """Deadlines and caps: the most a slow, broken or hostile server can cost one turn."""

    connect_timeout_s: float = 10.0
    """Seconds to open a connection (TCP, and TLS for https)."""
    idle_timeout_s: float = 10.0
    """Seconds a reply may go without a token (text or a piece of a tool call) while the
    client waits for one. Keep-alive comments and empty chunks do not count; time the caller
    spends with a token it was given (speaking it) does not either. Also the read timeout."""
    reply_timeout_s: float = 60.0
    """Seconds spent waiting on the server for one request, from sending it to ``[DONE]``
    (a tool round is a request of its own); time the caller holds a token does not count."""
    warm_up_timeout_s: float = 120.0
    """Both deadlines of the warm-up at start, which may load the model (Ollama does)."""
    max_error_body_bytes: int = 64 * 1024
    """Bytes of an HTTP error body read for its message; the rest is never read."""
    max_body_bytes: int = 4 * 1024 * 1024
    """Bytes of the model list (``GET /v1/models``)."""
    max_line_bytes: int = 256 * 1024
    """Bytes of one line of the stream, and of one event's data."""
    max_reply_chars: int = 32_000
    """Characters of text in one reply, at most (thinking included)."""
    max_chars_per_token: int = 16
    """A reply longer than ``(max_tokens + 16) * max_chars_per_token`` characters comes from a
    server that ignores ``max_tokens``: it is cut there, as an error."""
    max_tool_argument_chars: int = 16_000
    """Characters of one tool call's arguments, checked as the fragments arrive (the tool
    registry refuses anything over 4000; this only stops a runaway stream)."""
    max_tool_calls: int = 16
    """Tool calls in one reply."""


def api_key_from_env(variable: str) -> str | None:
    """The API key held by the environment variable named ``variable`` ("": no key).

    Raises ModelError, without the value, when the variable is unset, empty, or holds what an
    HTTP header cannot carry."""
    if not variable:
        return None
    setting = "--llm-api-key-env / [models] llm_api_key_env"
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", variable):
        # Never echoed: it may be the key itself, pasted in the wrong place.
        raise ModelError(f"{setting} must be the name of an environment variable (letters, digits, _), not the key itself")
    key = os.environ.get(variable, "").strip()
    if not key:
        raise ModelError(f"the API key variable {variable} ({setting}) is not set or empty. Export it (export {variable}=...) or drop the setting")
    if not all(" " < c <= "~" for c in key):
        raise ModelError(f"the API key in {variable} has spaces or characters an HTTP header cannot carry. Check its value")
    return key


class OpenAICompatibleLLM:
    """The :class:`~voxloop.models.base.LLM` protocol over HTTP, one pooled client per instance."""

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        api_key: str | None = None,
        temperature: float = 0.7,
        config: OpenAICompatibleConfig | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``base_url`` may be the server's root or its ``/v1``; ``api_key`` is sent as
        ``Authorization: Bearer`` and never shown; ``transport`` is for tests."""
        self.config = config or OpenAICompatibleConfig()
        try:
            url = httpx.URL(base_url.strip())
        except httpx.InvalidURL:
            url = httpx.URL()
        if url.scheme not in ("http", "https") or not url.host:
            raise ModelError(
                f"--llm-url {_without_credentials(base_url)} is not an http:// or https:// URL. "
                "Give the server's root or its /v1, e.g. http://127.0.0.1:8080/v1"
            )
        path = url.path.rstrip("/")
        path = path if path.endswith("/v1") else f"{path}/v1"
        self.base_url = str(url.copy_with(username=None, password=None, path=path, query=None, fragment=None))
        """Ends in ``/v1``, with no trailing slash, no credentials and no query: the form messages
        show. A query (``?api-version=...``) goes with each request (and so into httpx's own
        log lines at -v: hence the warning against keys in the URL)."""
        self._params = url.params
        self.model = model
        """Id sent with each request; ``None`` until taken from ``GET /v1/models``."""
        self.temperature = temperature
        # Credentials pasted into the URL still work (basic auth, query) but are never shown:
        # they and the header forms of the key are scrubbed from anything the server echoes.
        auth = httpx.BasicAuth(url.username, url.password) if url.username or url.password else None
        basic = base64.b64encode(f"{url.username}:{url.password}".encode()).decode() if auth else None
        secrets = [api_key, url.password, basic]
        secrets += [value for name, value in url.params.multi_items() if _SECRET_NAME.search(name)]
        self._secrets = _Secrets(s for s in secrets if s)
        headers = {"Accept-Encoding": "identity"}  # a stream has nothing to gain, a zip bomb much
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.Client(
            headers=headers, auth=auth, transport=transport, timeout=self._timeout(self.config.idle_timeout_s)
        )
        self._lock = threading.Lock()
        self._serial = 0
        """Number of requests asked for so far (``stream`` calls)."""
        self._abort_below = 0
        """Requests numbered below this were aborted."""
        self._watches: set[_Watch] = set()
        _warn_about_url(url, self.base_url, bool(api_key))

    def __repr__(self) -> str:
        return f"OpenAICompatibleLLM({self.base_url!r}, model={self.model!r})"

    def warm_up(self) -> None:
        """Check the server answers, pick the model, and run a one-token reply."""
        started = time.monotonic()
        patience = self.config.warm_up_timeout_s
        ids = self._list_models(self._next_serial(), patience, patience)
        if self.model is None:
            self.model = _first_model(ids, self.base_url)
        elif self.model not in ids:
            # llama_cpp.server ignores the name, vLLM and Ollama refuse it: warn, let them decide.
            logger.warning("model %r is not among %s's models: %s", self.model, self.base_url, ids)
        # The first completion pays for loading and caches; pay it here, not on the user's turn.
        hi: list[Message] = [{"role": "user", "content": "Hi"}]
        for _ in self._reply(self._next_serial(), hi, 1, None, None, patience, patience):
            pass
        logger.info(
            "LLM server %s ready with model %s in %.2f s",
            self.base_url,
            self.model,
            time.monotonic() - started,
        )

    def stream(
        self,
        messages: Sequence[Message],
        max_tokens: int,
        tools: Sequence[dict[str, Any]] | None = None,
        *,
        tool_choice: str | dict[str, Any] | None = None,
    ) -> Generator[str | ToolCall, None, None]:
        """Yield the reply's non-empty text deltas, then the tool calls it made (with ``tools``).

        ``tool_choice`` is the OpenAI field ("auto", "none", or a named function to force);
        the server's default when ``None``. Closing the generator drops the request, and so
        does :meth:`abort` (from another thread), after which the generator just ends.
        """
        c = self.config
        return self._reply(self._next_serial(), messages, max_tokens, tools, tool_choice, c.idle_timeout_s, c.reply_timeout_s)

    def abort(self) -> None:
        """Drop every request asked for so far, from any thread, at once: a read blocked on the
        server returns, and those replies end quietly after what they already yielded. Later
        requests are not affected. The reply stage calls this when the user interrupts."""
        with self._lock:
            self._abort_below = self._serial
            watches = list(self._watches)
        for watch in watches:
            watch.abort()

    def close(self) -> None:
        self.abort()
        self._client.close()

    def __enter__(self) -> OpenAICompatibleLLM:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- requests ------------------------------------------------------------------------

    def _reply(
        self,
        serial: int,
        messages: Sequence[Message],
        max_tokens: int,
        tools: Sequence[dict[str, Any]] | None,
        tool_choice: str | dict[str, Any] | None,
        idle_s: float,
        total_s: float,
    ) -> Generator[str | ToolCall, None, None]:
        if self.model is None:
            try:
                ids = self._list_models(serial, idle_s, total_s)
            except EngineError:
                if self._aborted(serial):
                    return
                raise
            self.model = _first_model(ids, self.base_url)
        url = f"{self.base_url}/chat/completions"
        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(messages),
            "max_tokens": max_tokens,
            "temperature": self.temperature,
            "stream": True,
        }
        if tools:
            body["tools"] = list(tools)
            if tool_choice is not None:
                body["tool_choice"] = tool_choice
        c = self.config
        limits = _Limits(
            url=url,
            secrets=self._secrets,
            line_bytes=c.max_line_bytes,
            reply_chars=min(c.max_reply_chars, (max_tokens + _SLACK_TOKENS) * c.max_chars_per_token),
            max_tokens=max_tokens,
            argument_chars=c.max_tool_argument_chars,
            tool_calls=c.max_tool_calls,
        )
        with self._watching(serial, idle_s, total_s) as watch:
            if watch is None:
                return  # aborted before it began
            try:
                # Closing the generator exits this context manager, which closes the connection;
                # the server stops generating when it sees the disconnect.
                with self._client.stream(
                    "POST", url, json=body, params=self._params,
                    timeout=self._timeout(idle_s), extensions={"trace": watch.trace},
                ) as response:  # fmt: skip
                    watch.attach(response.extensions.get("network_stream"))
                    self._check_status(response, url, watch)
                    for item in _deltas(_lines(_chunks(response, watch), limits), limits, watch.progress):
                        watch.holding()
                        yield item
                        watch.waiting()
            except (httpx.RequestError, EngineError, _Stopped) as e:
                if self._aborted(serial):
                    return
                failure = self._failure(e, watch, url)
                if failure is e:
                    raise
                raise failure from e

    def _list_models(self, serial: int, idle_s: float, total_s: float) -> list[str]:
        url = f"{self.base_url}/models"
        with self._watching(serial, idle_s, total_s) as watch:
            if watch is None:
                raise EngineError(f"the request to the LLM server at {url} was cancelled")
            try:
                with self._client.stream(
                    "GET", url, params=self._params,
                    timeout=self._timeout(idle_s), extensions={"trace": watch.trace},
                ) as response:  # fmt: skip
                    watch.attach(response.extensions.get("network_stream"))
                    self._check_status(response, url, watch)
                    raw, whole = _read_at_most(response, watch, self.config.max_body_bytes)
            except (httpx.RequestError, EngineError, _Stopped) as e:
                failure = self._failure(e, watch, url)
                if failure is e:
                    raise
                raise failure from e
        limits = _Limits(url=url, secrets=self._secrets)
        if not whole:
            raise EngineError(
                f"the LLM server at {url} sent a model list over {self.config.max_body_bytes} bytes. "
                "Check that --llm-url is an OpenAI-compatible server"
            )
        text = raw.decode("utf-8", "replace")
        try:
            ids = [entry["id"] for entry in json.loads(text)["data"]]
        except (ValueError, KeyError, TypeError) as e:
            raise EngineError(
                f"the LLM server at {url} did not answer with an OpenAI model list: "
                f"{limits.excerpt(text)}. Check that --llm-url is an OpenAI-compatible server"
            ) from e
        if not all(isinstance(i, str) for i in ids):
            raise EngineError(f"the LLM server at {url} listed model ids that are not text: {limits.excerpt(str(ids))}")
        return ids

    def _check_status(self, response: httpx.Response, url: str, watch: _Watch) -> None:
        status = response.status_code
        if response.is_redirect:
            location = _without_credentials(response.headers.get("location", ""))
            raise EngineError(
                f"the LLM server at {url} answered HTTP {status}, a redirect to {location or 'nowhere'}. "
                "Put the URL it should be in --llm-url"
            )
        if not response.is_error:
            return
        # The body usually says why (unknown model, context too long, ...); a few lines of it.
        raw, _ = _read_at_most(response, watch, self.config.max_error_body_bytes)
        text = raw.decode("utf-8", "replace")
        if status in (401, 403):
            hint = "Check the API key (--llm-api-key-env)"
        elif status == 404:
            hint = "Check --llm-url (the server's root or its /v1) and the model name"
        elif status >= 500:
            hint = "Check the server's log"
        else:
            hint = "The server rejected the request"
        said = f": {_Limits(url=url, secrets=self._secrets).excerpt(text)}" if text.strip() else " with an empty body"
        raise EngineError(f"the LLM server at {url} answered HTTP {status} {response.reason_phrase}{said}. {hint}")

    def _failure(self, e: Exception, watch: _Watch, url: str) -> EngineError:
        """What went wrong, as one EngineError: a passed deadline first (it caused the rest)."""
        if watch.reason == _IDLE or (watch.reason is None and isinstance(e, httpx.ReadTimeout)):
            return EngineError(
                f"the LLM server at {url} sent no token for {watch.idle_s:g} s (keep-alives do not "
                "count). It may be overloaded, or the model too slow for it: check its log"
            )
        if watch.reason == _TOTAL:
            return EngineError(
                f"the LLM server at {url} took more than {watch.total_s:g} s for one reply. "
                "It may be overloaded, or the model too slow for it: check its log"
            )
        if watch.reason == _ABORTED:
            return EngineError(f"the request to the LLM server at {url} was cancelled")
        if isinstance(e, EngineError):
            return e
        if isinstance(e, httpx.RequestError):
            return self._request_error(e)
        return EngineError(f"the request to the LLM server at {url} failed: {e}")

    def _request_error(self, e: httpx.RequestError) -> EngineError:
        reason = _reason(e)
        if isinstance(e, (httpx.ConnectError, httpx.ConnectTimeout)):
            return EngineError(f"cannot reach the LLM server at {self.base_url}: {reason}. {_START_HINT}")
        if isinstance(e, httpx.TimeoutException):
            return EngineError(f"the LLM server at {self.base_url} timed out ({reason}). Check its log")
        return EngineError(f"lost the connection to the LLM server at {self.base_url}: {reason}. Check its log")

    # --- bookkeeping ---------------------------------------------------------------------

    def _timeout(self, idle_s: float) -> httpx.Timeout:
        c = self.config.connect_timeout_s
        return httpx.Timeout(connect=c, read=idle_s, write=idle_s, pool=c)

    def _next_serial(self) -> int:
        with self._lock:
            self._serial += 1
            return self._serial - 1

    def _aborted(self, serial: int) -> bool:
        with self._lock:
            return serial < self._abort_below

    @contextlib.contextmanager
    def _watching(self, serial: int, idle_s: float, total_s: float) -> Iterator[_Watch | None]:
        """A watch on one request, or None if ``serial`` was already aborted."""
        with self._lock:
            if serial < self._abort_below:
                watch = None
            else:
                watch = _Watch(idle_s, total_s)
                self._watches.add(watch)
        try:
            yield watch
        finally:
            if watch is not None:
                with self._lock:
                    self._watches.discard(watch)
                watch.close()


# --- deadlines -------------------------------------------------------------------------------

_IDLE, _TOTAL, _ABORTED = "idle", "total", "aborted"


class _Stopped(Exception):
    """A watch ended the request (its ``reason`` says why); seen between two chunks."""


class _Watch:
    """The deadlines of one request, kept by a thread of its own.

    The thread reading the response says when it waits on the server (``waiting``) and when
    its caller holds a token (``holding``); both budgets run only while it waits, and the idle
    one starts again at each token (``progress``). When one runs out, or on ``abort``, the
    watch shuts the connection's socket down, so that a read blocked on a server that sends
    nothing, only keep-alives, or a byte at a time returns at once; the reader then finds
    ``reason``. Before the socket is known (a pooled connection, until the response headers
    arrive) the read timeout, equal to the idle deadline, is the guard.
    """

    def __init__(self, idle_s: float, total_s: float) -> None:
        self.idle_s = idle_s
        self.total_s = total_s
        self.reason: str | None = None
        self._cond = threading.Condition()
        now = time.monotonic()
        self._waiting_since: float | None = now
        """None while the caller holds a token."""
        self._last_token = now
        self._spent = 0.0
        """Seconds waited on the server before ``_waiting_since``."""
        self._socket: socket.socket | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="llm-deadline", daemon=True)
        self._thread.start()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpx's ``trace`` extension: catch the socket of a new connection as it opens."""
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            self.attach(info.get("return_value"))

    def attach(self, network_stream: Any) -> None:
        sock = network_stream.get_extra_info("socket") if network_stream is not None else None
        if isinstance(sock, socket.socket):
            with self._cond:
                self._socket = sock
                if self.reason is not None:
                    self._cut()

    def progress(self) -> None:
        """A token arrived."""
        with self._cond:
            self._last_token = time.monotonic()

    def holding(self) -> None:
        with self._cond:
            if self._waiting_since is not None:
                self._spent += time.monotonic() - self._waiting_since
                self._waiting_since = None
            self._cond.notify_all()

    def waiting(self) -> None:
        with self._cond:
            self._waiting_since = self._last_token = time.monotonic()
            self._cond.notify_all()

    def check(self) -> None:
        """Raise _Stopped if the request is over (for transports without a socket, too)."""
        with self._cond:
            self._expire(time.monotonic())
            if self.reason is not None:
                raise _Stopped(self.reason)

    def abort(self) -> None:
        with self._cond:
            if self.reason is None:
                self.reason = _ABORTED
                self._cut()
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def _run(self) -> None:
        with self._cond:
            while not self._closed and self.reason is None:
                if self._waiting_since is None:
                    self._cond.wait()
                    continue
                due = min(self._last_token + self.idle_s, self._waiting_since + self.total_s - self._spent)
                now = time.monotonic()
                if now < due:
                    self._cond.wait(due - now)
                else:
                    self._expire(now)

    def _expire(self, now: float) -> None:
        if self.reason is not None or self._waiting_since is None:
            return
        if now >= self._last_token + self.idle_s:
            self.reason = _IDLE
        elif now >= self._waiting_since + self.total_s - self._spent:
            self.reason = _TOTAL
        else:
            return
        self._cut()

    def _cut(self) -> None:
        if self._socket is not None:
            # The plain socket's shutdown, even under TLS: it wakes a blocked recv() at once
            # and leaves the TLS object to the reader. It may already be closed: nothing to do.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(self._socket, socket.SHUT_RDWR)


def _chunks(response: httpx.Response, watch: _Watch) -> Iterator[bytes]:
    """The body as it arrives, the watch checked between two chunks."""
    for chunk in response.iter_bytes():
        watch.check()
        yield chunk
    watch.check()  # a cut socket may look like a normal end


def _read_at_most(response: httpx.Response, watch: _Watch, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes of the body, and whether that was all of it. The rest is not
    read: the connection is dropped when the response closes."""
    body = bytearray()
    for chunk in _chunks(response, watch):
        body += chunk
        if len(body) > limit:
            return bytes(body[:limit]), False
    return bytes(body), True


# --- the stream ------------------------------------------------------------------------------


class _Secrets:
    """Texts never to show (the API key, credentials from the URL); its repr shows none."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = tuple(secrets)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def __repr__(self) -> str:
        return f"<{len(self._secrets)} secret(s)>"


@dataclass(frozen=True)
class _Limits:
    """One request's URL (as shown), the secrets kept out of its messages, and its caps."""

    url: str
    secrets: _Secrets
    line_bytes: int = 0
    reply_chars: int = 0
    max_tokens: int = 0
    argument_chars: int = 0
    tool_calls: int = 0

    def excerpt(self, text: str) -> str:
        """One line of at most ``_EXCERPT_CHARS`` characters, without the secrets."""
        line = " ".join(self.secrets.scrub(text).split())
        return line if len(line) <= _EXCERPT_CHARS else line[: _EXCERPT_CHARS - 1] + "…"

    def malformed(self, text: str) -> EngineError:
        return EngineError(
            f"the LLM server at {self.url} sent a malformed stream: {self.excerpt(text)}. "
            "Check that --llm-url is an OpenAI-compatible server"
        )

    def too_much(self, what: str) -> EngineError:
        return EngineError(f"the LLM server at {self.url} sent {what}; the reply was dropped there. Check the server")


def _lines(chunks: Iterable[bytes], limits: _Limits) -> Iterator[str]:
    """The body's lines (ending in LF or CRLF), none longer than ``limits.line_bytes``."""
    buffer = bytearray()
    searched = 0  # bytes of the buffer known to hold no line end
    for chunk in chunks:
        buffer += chunk
        start = 0
        while (end := buffer.find(b"\n", max(start, searched))) >= 0:
            if end - start > limits.line_bytes:
                break
            yield _decode(buffer[start:end])
            start = end + 1
        del buffer[:start]
        searched = len(buffer)
        if len(buffer) > limits.line_bytes:
            raise limits.too_much(f"a line longer than {limits.line_bytes} bytes (not an OpenAI stream?)")
    if buffer:
        yield _decode(buffer)


def _decode(line: bytearray) -> str:
    return bytes(line).removesuffix(b"\r").decode("utf-8", "replace")


def _sse_data(lines: Iterable[str], limits: _Limits) -> Iterator[str]:
    """Yield the data of each server-sent event, skipping comments (keep-alive pings)."""
    data: list[str] = []
    size = 0
    for line in lines:
        if not line:  # a blank line ends an event
            if data:
                yield "\n".join(data)
                data, size = [], 0
            continue
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value[1:] if value.startswith(" ") else value)
            size += len(line) + 1  # as sent: many short lines cost more than their text
            if size > limits.line_bytes:
                raise limits.too_much(f"an event longer than {limits.line_bytes} characters (not an OpenAI stream?)")
        elif field not in ("", "event", "id", "retry"):
            # Not SSE at all: a JSON body from a server that ignored stream=true, or an
            # "error: ..." line from an older llama.cpp server. Showing the line explains both.
            raise limits.malformed(line)
    if data:
        yield "\n".join(data)


def _deltas(lines: Iterable[str], limits: _Limits, progress: Callable[[], None]) -> Iterator[str | ToolCall]:
    """Yield the non-empty ``choices[0].delta.content`` of each chunk until ``[DONE]``, then
    the tool calls assembled from the ``delta.tool_calls`` fragments. ``progress()`` is called
    for each real token (text, a tool call's piece, the end), never for keep-alives."""
    finished = False
    calls: dict[int, _PartialCall] = {}
    said = 0
    for data in _sse_data(lines, limits):
        if data == "[DONE]":
            progress()
            yield from _finished_calls(calls)
            return
        try:
            chunk = json.loads(data)
        except ValueError as e:
            raise limits.malformed(data) from e
        if not isinstance(chunk, dict):
            raise limits.malformed(data)
        if "error" in chunk:
            raise EngineError(
                f"the LLM server at {limits.url} failed mid-reply: "
                f"{limits.excerpt(json.dumps(chunk['error']))}. Check its log"
            )
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            raise limits.malformed(data)
        if not choices:
            continue  # a usage-only chunk
        choice = choices[0]
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if not isinstance(delta, dict):
            raise limits.malformed(data)
        content = delta.get("content")
        if content is not None and not isinstance(content, str):
            raise limits.malformed(data)
        if choice.get("finish_reason"):
            finished = True
            progress()
        if content:
            said += len(content)
            if said > limits.reply_chars:
                raise limits.too_much(
                    f"more than {limits.reply_chars} characters for a reply of at most "
                    f"{limits.max_tokens} tokens (it ignores max_tokens)"
                )
            progress()
            yield content
        fragments = delta.get("tool_calls")
        if fragments is not None:
            if not isinstance(fragments, list):
                raise limits.malformed(data)
            for fragment in fragments:
                _add_fragment(calls, fragment, limits, data)
                progress()
    if not finished:
        raise EngineError(
            f"the stream from the LLM server at {limits.url} ended before [DONE], mid-reply. Check its log"
        )
    yield from _finished_calls(calls)


class _PartialCall:
    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.arguments: list[str] = []
        self.length = 0


def _add_fragment(calls: dict[int, _PartialCall], fragment: Any, limits: _Limits, data: str) -> None:
    if not isinstance(fragment, dict):
        raise limits.malformed(data)
    index = fragment.get("index", len(calls))
    function = fragment.get("function") or {}
    if not isinstance(index, int) or not isinstance(function, dict):
        raise limits.malformed(data)
    if index not in calls and len(calls) >= limits.tool_calls:
        raise limits.too_much(f"more than {limits.tool_calls} tool calls in one reply")
    call = calls.setdefault(index, _PartialCall())
    # OpenAI sends the id and name once; llama_cpp.server repeats them in every fragment, so
    # they are set, not appended. Only the arguments come in pieces.
    if isinstance(fragment.get("id"), str) and fragment["id"]:
        call.id = fragment["id"]
    if isinstance(function.get("name"), str) and function["name"]:
        call.name = function["name"]
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        call.length += len(arguments)
        if call.length > limits.argument_chars:
            raise limits.too_much(f"tool-call arguments longer than {limits.argument_chars} characters")
        call.arguments.append(arguments)


def _finished_calls(calls: dict[int, _PartialCall]) -> Iterator[ToolCall]:
    for index in sorted(calls):
        call = calls[index]
        yield ToolCall(call.id or f"call_{index}", call.name, "".join(call.arguments))


# --- URLs ------------------------------------------------------------------------------------

_warned: set[str] = set()
"""URLs already warned about (once per process)."""


def _warn_about_url(url: httpx.URL, shown: str, has_key: bool) -> None:
    if shown in _warned:
        return
    _warned.add(shown)
    if url.password or any(_SECRET_NAME.search(name) for name in url.params):
        logger.warning(
            "the LLM server URL %s carries credentials in the URL; pass the key with "
            "--llm-api-key-env (or [models] llm_api_key_env) instead",
            shown,
        )
    if url.scheme == "http" and not _is_loopback(url.host):
        key = " and the API key" if has_key else ""
        logger.warning(
            "the LLM server %s is plain http to another machine: the conversation%s cross the "
            "network unencrypted. Use https://, or a tunnel (ssh -L) to a loopback address",
            shown,
            key,
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _without_credentials(location: str) -> str:
    try:
        return str(httpx.URL(location).copy_with(username=None, password=None, query=None))
    except httpx.InvalidURL:
        return "an invalid URL"


def _first_model(ids: list[str], base_url: str) -> str:
    if not ids:
        raise EngineError(
            f"the LLM server at {base_url} serves no model. Load one, or pass --llm-model"
        )
    logger.debug("using model %s, the first of %s at %s", ids[0], ids, base_url)
    return ids[0]


def _reason(e: Exception) -> str:
    """``[Errno 111] Connection refused`` becomes ``connection refused``."""
    text = re.sub(r"\[Errno -?\d+\]\s*", "", " ".join(str(e).split())) or type(e).__name__
    return text[:1].lower() + text[1:]
