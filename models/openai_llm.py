"""Streamed chat replies from any OpenAI-compatible server.

llama.cpp's ``llama-server``, ``python -m llama_cpp.server``, vLLM and Ollama all answer
``POST /v1/chat/completions`` with ``stream: true`` as server-sent events: ``data: {json}``
chunks whose ``choices[0].delta.content`` carry the text, then ``data: [DONE]``. When tools
are offered, ``delta.tool_calls`` carry function calls in fragments: each names its call by
``index``, the first fragment brings the id and name, the rest append to the arguments.

Every failure becomes one :class:`~voxloop.models.errors.EngineError` whose single-line message
names the URL and what to do::

    EngineError
     ├── cannot reach the server          connection refused, DNS, connect timeout
     ├── lost the connection / timed out  the server died or stalled mid-reply
     ├── answered HTTP 4xx/5xx            with the server's own error body, truncated
     └── malformed stream or model list   not an OpenAI-compatible answer
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Generator, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any

import httpx

from .base import Message, ToolCall
from .errors import EngineError

logger = logging.getLogger(__name__)

_START_HINT = "Start it (python -m llama_cpp.server --model M.gguf) or check --llm-url"
_EXCERPT_CHARS = 300
"""How much of an error body or a bad event goes into a message."""


class OpenAICompatibleLLM:
    """The :class:`~voxloop.models.base.LLM` protocol over HTTP, one pooled client per instance."""

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        api_key: str | None = None,
        temperature: float = 0.7,
        timeout_s: float = 30.0,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``base_url`` may be the server's root or its ``/v1``; ``transport`` is for tests."""
        self.base_url = _api_root(base_url)
        """Ends in ``/v1``, with no trailing slash; the form messages show."""
        self.model = model
        """Id sent with each request; ``None`` until taken from ``GET /v1/models``."""
        self.temperature = temperature
        self.timeout_s = timeout_s
        """Seconds allowed to connect, and between two chunks (not for the whole reply)."""
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(headers=headers, timeout=timeout_s, transport=transport)

    def warm_up(self) -> None:
        """Check the server answers, pick the model, and run a one-token reply."""
        started = time.monotonic()
        ids = self._list_models()
        if self.model is None:
            self.model = _first_model(ids, self.base_url)
        elif self.model not in ids:
            # llama_cpp.server ignores the name, vLLM and Ollama refuse it: warn, let them decide.
            logger.warning("model %r is not among %s's models: %s", self.model, self.base_url, ids)
        # The first completion pays for loading and caches; pay it here, not on the user's turn.
        for _ in self.stream([{"role": "user", "content": "Hi"}], max_tokens=1):
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
        the server's default when ``None``. Closing the generator drops the request.
        """
        if self.model is None:
            self.model = _first_model(self._list_models(), self.base_url)
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
        try:
            # Cancel works through this context manager: closing the generator exits it, which
            # closes the connection, and the server stops generating when it sees the disconnect.
            with self._client.stream("POST", url, json=body) as response:
                _check_status(response, url)
                yield from _deltas(response.iter_lines(), url)
        except httpx.RequestError as e:
            raise self._request_error(e) from e

    def close(self) -> None:
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

    def _list_models(self) -> list[str]:
        url = f"{self.base_url}/models"
        try:
            response = self._client.get(url)
        except httpx.RequestError as e:
            raise self._request_error(e) from e
        _check_status(response, url)
        try:
            ids = [entry["id"] for entry in response.json()["data"]]
        except (ValueError, KeyError, TypeError) as e:
            raise EngineError(
                f"the LLM server at {url} did not answer with an OpenAI model list: "
                f"{_excerpt(response.text)}. Check that --llm-url is an OpenAI-compatible server"
            ) from e
        if not all(isinstance(i, str) for i in ids):
            raise EngineError(f"the LLM server at {url} listed model ids that are not text: {ids}")
        return ids

    def _request_error(self, e: httpx.RequestError) -> EngineError:
        reason = _reason(e)
        if isinstance(e, (httpx.ConnectError, httpx.ConnectTimeout)):
            return EngineError(
                f"cannot reach the LLM server at {self.base_url}: {reason}. {_START_HINT}"
            )
        if isinstance(e, httpx.TimeoutException):
            return EngineError(
                f"the LLM server at {self.base_url} sent nothing for {self.timeout_s:g} s "
                f"({reason}). It may be overloaded or the model too slow for this machine: "
                "check its log or raise the timeout"
            )
        return EngineError(
            f"lost the connection to the LLM server at {self.base_url}: {reason}. Check its log"
        )


def _api_root(base_url: str) -> str:
    """``http://h:8080``, ``http://h:8080/`` and ``http://h:8080/v1/`` give ``http://h:8080/v1``."""
    root = base_url.strip().rstrip("/")
    return root if root.endswith("/v1") else f"{root}/v1"


def _first_model(ids: list[str], base_url: str) -> str:
    if not ids:
        raise EngineError(
            f"the LLM server at {base_url} serves no model. Load one, or pass --llm-model"
        )
    logger.debug("using model %s, the first of %s at %s", ids[0], ids, base_url)
    return ids[0]


def _check_status(response: httpx.Response, url: str) -> None:
    if not response.is_error:
        return
    response.read()  # the body usually says why (unknown model, context too long, ...)
    status = response.status_code
    if status in (401, 403):
        hint = "Check the API key"
    elif status == 404:
        hint = "Check --llm-url (the server's root or its /v1) and the model name"
    elif status >= 500:
        hint = "Check the server's log"
    else:
        hint = "The server rejected the request"
    said = f": {_excerpt(response.text)}" if response.text.strip() else " with an empty body"
    raise EngineError(
        f"the LLM server at {url} answered HTTP {status} {response.reason_phrase}{said}. {hint}"
    )


def _deltas(lines: Iterable[str], url: str) -> Iterator[str | ToolCall]:
    """Yield the non-empty ``choices[0].delta.content`` of each chunk until ``[DONE]``, then
    the tool calls assembled from the ``delta.tool_calls`` fragments."""
    finished = False
    calls: dict[int, _PartialCall] = {}
    for data in _sse_data(lines, url):
        if data == "[DONE]":
            yield from _finished_calls(calls)
            return
        try:
            chunk = json.loads(data)
        except ValueError as e:
            raise _malformed(url, data) from e
        if not isinstance(chunk, dict):
            raise _malformed(url, data)
        if "error" in chunk:
            raise EngineError(
                f"the LLM server at {url} failed mid-reply: "
                f"{_excerpt(json.dumps(chunk['error']))}. Check its log"
            )
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            raise _malformed(url, data)
        if not choices:
            continue  # a usage-only chunk
        choice = choices[0]
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if not isinstance(delta, dict):
            raise _malformed(url, data)
        content = delta.get("content")
        if content is not None and not isinstance(content, str):
            raise _malformed(url, data)
        finished = finished or bool(choice.get("finish_reason"))
        if content:
            yield content
        fragments = delta.get("tool_calls")
        if fragments is not None:
            if not isinstance(fragments, list):
                raise _malformed(url, data)
            for fragment in fragments:
                _add_fragment(calls, fragment, url, data)
    if not finished:
        raise EngineError(
            f"the stream from the LLM server at {url} ended before [DONE], mid-reply. Check its log"
        )
    yield from _finished_calls(calls)


class _PartialCall:
    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.arguments: list[str] = []


def _add_fragment(calls: dict[int, _PartialCall], fragment: Any, url: str, data: str) -> None:
    if not isinstance(fragment, dict):
        raise _malformed(url, data)
    index = fragment.get("index", len(calls))
    function = fragment.get("function") or {}
    if not isinstance(index, int) or not isinstance(function, dict):
        raise _malformed(url, data)
    call = calls.setdefault(index, _PartialCall())
    # OpenAI sends the id and name once; llama_cpp.server repeats them in every fragment, so
    # they are set, not appended. Only the arguments come in pieces.
    if isinstance(fragment.get("id"), str) and fragment["id"]:
        call.id = fragment["id"]
    if isinstance(function.get("name"), str) and function["name"]:
        call.name = function["name"]
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        call.arguments.append(arguments)


def _finished_calls(calls: dict[int, _PartialCall]) -> Iterator[ToolCall]:
    for index in sorted(calls):
        call = calls[index]
        yield ToolCall(call.id or f"call_{index}", call.name, "".join(call.arguments))


def _sse_data(lines: Iterable[str], url: str) -> Iterator[str]:
    """Yield the data of each server-sent event, skipping comments (keep-alive pings)."""
    data: list[str] = []
    for line in lines:
        if not line:  # a blank line ends an event
            if data:
                yield "\n".join(data)
                data = []
            continue
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value[1:] if value.startswith(" ") else value)
        elif field not in ("", "event", "id", "retry"):
            # Not SSE at all: a JSON body from a server that ignored stream=true, or an
            # "error: ..." line from an older llama.cpp server. Showing the line explains both.
            raise _malformed(url, line)
    if data:
        yield "\n".join(data)


def _malformed(url: str, text: str) -> EngineError:
    return EngineError(
        f"the LLM server at {url} sent a malformed stream: {_excerpt(text)}. "
        "Check that --llm-url is an OpenAI-compatible server"
    )


def _reason(e: Exception) -> str:
    """``[Errno 111] Connection refused`` becomes ``connection refused``."""
    text = re.sub(r"\[Errno -?\d+\]\s*", "", " ".join(str(e).split())) or type(e).__name__
    return text[:1].lower() + text[1:]


def _excerpt(text: str) -> str:
    """One line of at most ``_EXCERPT_CHARS`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= _EXCERPT_CHARS else line[: _EXCERPT_CHARS - 1] + "…"
