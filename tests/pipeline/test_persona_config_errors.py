"""A bad persona config through the real ``voxloop`` command: one line on stderr that names
the file, says what is wrong and what to do, exit code 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli_errors import SPEECH, run_cli
from voxloop.pipeline.config import ConfigError, load_config


BAD_CONFIGS = {
    "unknown-key": ('[personas.cooking]\nname = "Cook"\ncolour = "red"\n', "unknown key 'colour'", "known:"),
    "missing-folder": (
        '[personas.cooking]\nknowledge = ["no-such-recipes"]\n',
        "knowledge folder 'no-such-recipes' does not exist",
        "Create it or fix the path",
    ),
    "folder-is-a-file": ('[personas.cooking]\nknowledge = ["extra.toml"]\n', "is not a folder", "Name the folder"),
    "tools-not-a-list": ('[personas.cooking]\ntools = "clock"\n', "tools must be a list", 'tools = ["a", "b"]'),
    "think-not-bool": ('[personas.cooking]\nthink = "yes"\n', "think must be true or false", "true or false"),
    # A tool name the registry lacks was dropped at run time: now it stops the start.
    "unknown-tool": ('[personas.cooking]\ntools = ["get_time", "clock"]\n', "unknown tool(s) 'clock' in tools", "the tools are get_time, calculate"),
    "search-without-files": ('[personas.cooking]\ntools = ["search_knowledge"]\n', "no files to search", "Add knowledge"),
    "tools-without-commands": (
        '[assistant]\ncommands = false\n\n[personas.cooking]\ntools = ["set_timer"]\n',
        "[personas.cooking]: tools set_timer need the instant commands'",
        "Set commands = true",
    ),
    "bad-id": ('[personas."my cook"]\nname = "Cook"\n', "the id may only have", "Rename the table"),
    "not-a-table": ('personas = "cooking"\n', "[personas] must hold tables", "[personas.cooking]"),
    "unknown-persona": ('[assistant]\npersona = "chef"\n', "persona 'chef' is not defined", "Add a [personas.chef] table"),
    "assistant-unknown-key": ('[assistant]\nvoice = "x"\n', "unknown key 'voice'", "known: persona"),
}


@pytest.mark.parametrize(("toml", "what", "todo"), list(BAD_CONFIGS.values()), ids=list(BAD_CONFIGS))
def test_a_bad_persona_config_is_one_line_naming_the_file(tmp_path: Path, toml: str, what: str, todo: str) -> None:
    (tmp_path / "extra.toml").write_text(toml, encoding="utf-8")

    with pytest.raises(ConfigError) as raised:
        load_config(tmp_path / "extra.toml")
    proc = run_cli(["replay", str(SPEECH), "--out-dir", str(tmp_path / "out"), "--config", str(tmp_path / "extra.toml")], tmp_path)

    lines = proc.stderr.splitlines()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr
    assert lines[0] == f"voxloop: {raised.value}"
    assert str(tmp_path / "extra.toml") in lines[0] and what in lines[0] and todo in lines[0]
    assert not (tmp_path / "out").exists()
