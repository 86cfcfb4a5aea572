"""A persona's files are indexed in the background: the assistant is ready at once and answers
without them until they are indexed. A replay on the simulated clock waits for the index (its
first question would otherwise race the indexer), and goes on without it past a timeout."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from conftest import DATA

from voxloop.models.base import Message
from voxloop.models.fakes import FakeASR, FakeLLM, FakeTTS
from voxloop.pipeline import replay
from voxloop.pipeline.assistant.knowledge import KnowledgeIndex
from voxloop.pipeline.config import Config, load_config
from voxloop.pipeline.engines import Engines
from voxloop.pipeline.persona_runtime import PersonaRuntime

QUESTION = "According to my notes, what temperature do I bake the bread at?"


def cooking(tmp_path: Path) -> Config:
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "bread.md").write_text("# Sourdough\n\nBake the sourdough bread at 230 degrees Celsius for 40 minutes.\n")
    (recipes / "soup.txt").write_text("Tomato soup: simmer the tomatoes for 20 minutes, then blend.\n")
    path = tmp_path / "config.toml"
    path.write_text(f'[assistant]\npersona = "cooking"\n\n[personas.cooking]\nname = "Cooking assistant"\nknowledge = ["{recipes}"]\n')
    config = load_config(path)
    config.turns.echo_cancel = False  # the fake voice is a pure tone: nothing to cancel
    return config


def held_update(monkeypatch: pytest.MonkeyPatch, release: threading.Event) -> None:
    """Every index update waits for ``release`` (at most 10 s) before it starts."""
    update = KnowledgeIndex.update

    def held(self: KnowledgeIndex) -> Any:
        release.wait(10)
        return update(self)

    monkeypatch.setattr(KnowledgeIndex, "update", held)


def test_start_up_does_not_wait_for_the_index_and_answers_without_files_until_it_is_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = cooking(tmp_path)
    release = threading.Event()
    held_update(monkeypatch, release)

    async def main() -> None:
        persona = PersonaRuntime(config, tmp_path / "state")
        try:
            persona.open_knowledge()  # returns with the update still held
            assert persona.indexing
            assert persona.reference(QUESTION) == ""
            assert not await persona.wait_for_knowledge(0.05)
            release.set()
            assert await persona.wait_for_knowledge(30)
            assert "230 degrees Celsius" in persona.reference(QUESTION)
        finally:
            release.set()
            persona.close()

    asyncio.run(main())


def input_wav(tmp_path: Path) -> Path:
    """One utterance after half a second, then silence for the reply."""
    speech, rate = sf.read(DATA / "spk1_snt1.wav", dtype="int16")
    audio = np.zeros(int(8 * rate), dtype=np.int16)
    audio[rate // 2 : rate // 2 + len(speech)] = speech
    path = tmp_path / "input.wav"
    sf.write(path, audio, rate, subtype="PCM_16")
    return path


class ReleasingLLM(FakeLLM):
    """Lets the held index go on once it has been asked (and answered without the files)."""

    def __init__(self, release: threading.Event) -> None:
        super().__init__(["It is in your notes."])
        self.release = release

    def stream(self, messages: Sequence[Message], max_tokens: int, tools: Any = None) -> Iterator[str]:
        self.release.set()
        return super().stream(messages, max_tokens, tools)


def fast_replay(tmp_path: Path, config: Config, llm: FakeLLM) -> str:
    """The system prompt of the first question of a replay on the simulated clock."""
    engines = Engines(FakeASR(by_audio=lambda audio: QUESTION), llm, FakeTTS(), {})
    replay.run_replay(input_wav(tmp_path), tmp_path / "out", engines, config, fast=True, state_dir=tmp_path / "state")
    return str(llm.prompts[0][0]["content"])


def test_a_fast_replay_waits_for_the_index_before_its_first_question(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An index that takes a second: on the simulated clock the whole replay takes less.
    release = threading.Event()
    held_update(monkeypatch, release)
    slow_index = threading.Timer(1.0, release.set)
    slow_index.start()
    try:
        system = fast_replay(tmp_path, cooking(tmp_path), FakeLLM(["At 230 degrees."]))
    finally:
        slow_index.cancel()
        release.set()

    assert "230 degrees Celsius" in system and '"bread.md"' in system


def test_a_fast_replay_goes_on_without_the_files_when_they_are_not_indexed_in_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()
    held_update(monkeypatch, release)
    monkeypatch.setattr(replay, "KNOWLEDGE_WAIT_S", 0.2)

    with caplog.at_level(logging.WARNING):
        system = fast_replay(tmp_path, cooking(tmp_path), ReleasingLLM(release))

    assert "230 degrees" not in system
    assert "the knowledge files are not indexed after 0.2 s; the replay goes on without them" in caplog.text
