"""Strict config: each setting has the type its field is annotated with, and whole numbers a
range (``pipeline/config.py`` RANGES). A wrong type, a value out of range or an unknown key is
one line on stderr naming the file, the key and what it must be; exit code 2; nothing written."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest
from test_cli_errors import SPEECH, run_cli

from voxloop.pipeline.config import RANGES, Config, ConfigError, _cpus, load_config

# case -> (the TOML, what the line must say)
BAD_SETTINGS = {
    # a quoted "false" used to be taken as true
    "bool-as-text": ('[turns]\nbarge_in = "false"\n', '[turns] barge_in must be true or false (a TOML boolean, without quotes), got "false"'),
    "bool-as-number": ("[turns]\necho_cancel = 0\n", "[turns] echo_cancel must be true or false"),
    "commands-yes": ('[assistant]\ncommands = "yes"\n', '[assistant] commands must be true or false (a TOML boolean, without quotes), got "yes"'),
    "int-as-text": ('[turns]\nhangover_ms = "500"\n', '[turns] hangover_ms must be a whole number from 100 to 5000 (milliseconds), got "500"'),
    "int-as-bool": ("[turns]\nhangover_ms = true\n", "[turns] hangover_ms must be a whole number from 100 to 5000 (milliseconds), got true"),
    "int-as-float": ("[turns]\nhangover_ms = 500.0\n", "[turns] hangover_ms must be a whole number from 100 to 5000 (milliseconds), got 500.0"),
    "hangover-too-short": ("[turns]\nhangover_ms = 50\n", "[turns] hangover_ms must be a whole number from 100 to 5000 (milliseconds), got 50"),
    "hangover-too-long": ("[turns]\nhangover_ms = 60000\n", "got 60000"),
    "vad-out-of-range": ("[turns]\nvad_aggressiveness = 4\n", "[turns] vad_aggressiveness must be a whole number from 0 to 3"),
    "partial-asr-too-often": ("[turns]\npartial_asr_ms = 20\n", "[turns] partial_asr_ms must be 0 (off) or a whole number from 200 to 10000 (milliseconds), got 20"),
    "no-threads": ("[threads]\nllm = 0\n", f"[threads] llm must be a whole number from 1 to {4 * _cpus()} (threads, up to 4 per CPU), got 0"),
    "too-many-threads": ("[threads]\nasr = 10000\n", "[threads] asr must be a whole number from 1 to"),
    "negative-threads": ("[threads]\ntts = -1\n", "[threads] tts must be a whole number"),
    "reply-tokens": ("[dialog]\nmax_reply_tokens = 100000\n", "[dialog] max_reply_tokens must be a whole number from 1 to 8192 (tokens), got 100000"),
    "history-negative": ("[dialog]\nmax_history_chars = -5\n", "[dialog] max_history_chars must be a whole number from 0 to 200000"),
    "text-as-number": ("[models]\nllm = 3\n", "[models] llm must be text in quotes, got 3"),
    "optional-text-as-list": ('[models]\nllm_url = ["http://a"]\n', "[models] llm_url must be text in quotes, got ['http://a']"),
    "prompt-as-table": ("[dialog.system_prompt]\nx = 1\n", "[dialog] system_prompt must be text in quotes, got {'x': 1}"),
    "unknown-key": ("[turns]\nhangover = 500\n", "[turns]: unknown key 'hangover'; known: hangover_ms"),
}


@pytest.mark.parametrize(("toml", "what"), list(BAD_SETTINGS.values()), ids=list(BAD_SETTINGS))
def test_a_bad_setting_is_one_line_naming_the_key_and_what_it_must_be(tmp_path: Path, toml: str, what: str) -> None:
    (tmp_path / "bad.toml").write_text(toml, encoding="utf-8")

    with pytest.raises(ConfigError) as raised:
        load_config(tmp_path / "bad.toml")
    proc = run_cli(["replay", str(SPEECH), "--out-dir", str(tmp_path / "out"), "--config", str(tmp_path / "bad.toml")], tmp_path)

    lines = proc.stderr.splitlines()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr
    assert lines[0] == f"voxloop: {raised.value}"
    assert lines[0].startswith(f"voxloop: {tmp_path / 'bad.toml'}: ") and what in lines[0], lines[0]
    assert not (tmp_path / "out").exists()


def test_the_hangover_flag_is_held_to_the_same_range(tmp_path: Path) -> None:
    proc = run_cli(["replay", str(SPEECH), "--out-dir", str(tmp_path / "out"), "--hangover-ms", "20"], tmp_path)

    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr == "voxloop: --hangover-ms: must be a whole number from 100 to 5000 (milliseconds), got 20\n"
    assert not (tmp_path / "out").exists()


def test_good_settings_at_the_edges_of_their_ranges_are_taken(tmp_path: Path) -> None:
    path = tmp_path / "good.toml"
    path.write_text(
        "[models]\nllm_url = \"\"\n\n[threads]\nllm = 1\n\n[dialog]\nmax_reply_tokens = 8192\nmax_history_chars = 0\n\n"
        "[turns]\nbarge_in = false\nhangover_ms = 100\nvad_aggressiveness = 3\npartial_asr_ms = 0\n",
        encoding="utf-8",
    )

    config = load_config(path)

    assert config.turns.barge_in is False and config.turns.hangover_ms == 100 and config.turns.partial_asr_ms == 0
    assert (config.threads.llm, config.dialog.max_reply_tokens, config.dialog.max_history_chars) == (1, 8192, 0)


def test_every_whole_number_setting_has_a_range_its_default_is_in() -> None:
    config = Config()
    for section in dataclasses.fields(Config):
        if section.name == "personas":
            continue
        target = getattr(config, section.name)
        hints = typing.get_type_hints(type(target))
        for key in dataclasses.fields(target):
            if hints[key.name] is int:
                limits = RANGES.get(f"{section.name}.{key.name}")
                assert limits is not None, f"[{section.name}] {key.name}: add its range to RANGES (and its docstring)"
                value = getattr(target, key.name)
                assert limits.low <= value <= limits.high or value == limits.off, (section.name, key.name, value)
