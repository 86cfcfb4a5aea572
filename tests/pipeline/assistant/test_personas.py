"""Personas from the TOML config: what a user writes and what they get. The errors for what
they get wrong are in tests/pipeline/test_persona_config_errors.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from voxloop.pipeline.assistant.personas import parse_personas
from voxloop.pipeline.config import Config, load_config
from voxloop.pipeline.dialog import SPOKEN_SYSTEM_PROMPT

COOKING = """
[assistant]
persona = "cooking"

[personas.cooking]
name = "Cooking assistant"
greeting = "Cooking assistant here. What are we making?"
system_prompt = "You help in the kitchen."
voice = "en_US-joe-medium"
llm_url = "http://127.0.0.1:8080/v1"
tools = ["get_time", "set_timer", "search_knowledge"]
knowledge = ["recipes", "~/shared"]
think = true

[personas.gardener]
knowledge = []
"""


def test_a_config_defines_personas_next_to_the_default_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home" / "shared").mkdir(parents=True)
    (tmp_path / "conf" / "recipes").mkdir(parents=True)
    path = tmp_path / "conf" / "config.toml"
    path.write_text(COOKING, encoding="utf-8")

    config = load_config(path)

    assert config.assistant.persona == "cooking"
    assert config.personas.ids() == ["vox", "cooking", "gardener"]
    cooking = config.personas.get("cooking")
    assert cooking.name == "Cooking assistant"
    assert cooking.greeting == "Cooking assistant here. What are we making?"
    assert cooking.system_prompt == "You help in the kitchen."
    assert (cooking.voice, cooking.llm, cooking.llm_url) == ("en_US-joe-medium", None, "http://127.0.0.1:8080/v1")
    assert cooking.tools == ["get_time", "set_timer", "search_knowledge"] and cooking.think is True
    assert cooking.knowledge == [tmp_path / "conf" / "recipes", tmp_path / "home" / "shared"]
    gardener = config.personas.get("gardener")
    assert (gardener.name, gardener.greeting) == ("Gardener", "Hi, this is Gardener.")
    assert gardener.system_prompt == SPOKEN_SYSTEM_PROMPT and gardener.tools is None and not gardener.think
    assert gardener.knowledge_index() is None


def test_without_a_config_vox_is_the_only_persona() -> None:
    config = Config()

    vox = config.personas.get(config.assistant.persona)
    assert config.personas.names() == ["Vox"]
    assert vox.system_prompt == SPOKEN_SYSTEM_PROMPT and vox.knowledge == [] and vox.tools is None


def test_the_default_persona_follows_the_dialog_prompt(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[dialog]\nsystem_prompt = "Be brief."\n\n[personas.vox]\ngreeting = "Vox again."\n', encoding="utf-8")

    vox = load_config(path).personas.get("vox")

    assert (vox.name, vox.greeting, vox.system_prompt) == ("Vox", "Vox again.", "Be brief.")


@pytest.mark.parametrize(
    ("heard", "expected"),
    [
        ("cooking assistant", "cooking"),
        ("the Cooking Assistant", "cooking"),
        ("Cooking", "cooking"),
        ("cooking assistant.", "cooking"),
        ("vox", "vox"),
        ("the gardener", "gardener"),
        ("gardener assistant", "gardener"),
        ("plumber", None),
        ("", None),
        ("the", None),
    ],
)
def test_a_persona_is_found_by_the_name_the_user_says(tmp_path: Path, heard: str, expected: str | None) -> None:
    personas = parse_personas({"cooking": {"name": "Cooking assistant"}, "gardener": {}}, tmp_path)

    found = personas.by_spoken_name(heard)

    assert (found.id if found else None) == expected
    assert personas.names() == ["Vox", "Cooking assistant", "Gardener"]


def test_a_knowledge_index_lives_in_the_state_folder_named_by_the_persona(tmp_path: Path) -> None:
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "bread.md").write_text("Bake the bread at 230 degrees.\n", encoding="utf-8")
    cooking = parse_personas({"cooking": {"knowledge": ["recipes"]}}, tmp_path).get("cooking")

    with cooking.knowledge_index(tmp_path / "state") as index:
        assert index.update().indexed == 1
        assert index.search("what temperature do I bake bread at")[0].file == "bread.md"
    assert (tmp_path / "state" / "knowledge-cooking.db").is_file()
