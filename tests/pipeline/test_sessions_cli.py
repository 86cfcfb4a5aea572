"""Saved sessions through the ``voxloop`` command: replay, replay --resume, sessions, export.

The commands run in process (``cli.main``) on the simulated clock, with the state folder in
``tmp_path``. The plumbing tests use fake engines so the prompt can be read; one test runs the
real bundled models.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import RecordingLLM, recording

from voxloop.models.fakes import FakeASR, FakeLLM, FakeTTS
from voxloop.pipeline import cli
from voxloop.pipeline import engines as engines_module
from voxloop.pipeline.assistant.session_store import SessionStore
from voxloop.pipeline.engines import Engines

QUESTION = recording("turn_on_the_lamp.wav")  # not a command: the LLM answers it


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No user config, no user state: everything under tmp_path."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("VOXLOOP_STATE_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def use_engines(monkeypatch: pytest.MonkeyPatch, make: Engines) -> None:
    monkeypatch.setattr(engines_module, "load_engines", lambda config, plan, warm=True: make)


def fake_engines(reply: str) -> tuple[Engines, FakeLLM]:
    llm = FakeLLM([reply] * 10)  # head starts may ask more than once per turn
    return Engines(FakeASR(by_audio=lambda audio: "Tell me about the sea."), llm, FakeTTS(), {}), llm


def replay(out: str, *flags: str) -> int:
    return cli.main(["replay", str(QUESTION.path), "--fast", "--out-dir", out, *flags])


def last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


def test_a_resumed_replay_sends_the_saved_exchange_and_appends_to_the_same_session(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    first, _ = fake_engines("It is noon.")
    use_engines(monkeypatch, first)
    assert replay("run1") == 0
    saved = capsys.readouterr().err
    assert "saved as session " in saved

    second, llm = fake_engines("Still noon.")
    use_engines(monkeypatch, second)
    assert replay("run2", "--resume") == 0
    err = capsys.readouterr().err
    assert "resuming session" in err and "(1 exchanges)" in err

    prompt = llm.prompts[-1]
    assert prompt[1:] == [
        {"role": "user", "content": "Tell me about the sea."},
        {"role": "assistant", "content": "It is noon."},
        {"role": "user", "content": "Tell me about the sea."},
    ]
    with SessionStore(home / ".local/state/voxloop/sessions.db") as store:
        [session] = store.list()
        assert session.turns == 2 and session.title == "Tell me about the sea."
        assert [s.reply for s in store.load(session.id)] == ["It is noon.", "Still noon."]

    assert cli.main(["sessions"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["SESSION", "DATE", "TURNS", "TITLE"]
    assert out[1].startswith(session.id) and out[1].split()[3:] == ["2", "Tell", "me", "about", "the", "sea."]


def test_no_save_writes_no_session_and_the_state_dir_can_be_moved(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_engines(monkeypatch, fake_engines("It is noon.")[0])
    assert replay("run1", "--no-save") == 0
    assert not (home / ".local/state/voxloop").exists()

    monkeypatch.setenv("VOXLOOP_STATE_DIR", str(home / "env-state"))
    assert replay("run2") == 0
    assert replay("run3", "--state-dir", str(home / "flag-state")) == 0
    assert (home / "env-state/sessions.db").exists() and (home / "flag-state/sessions.db").exists()
    capsys.readouterr()


def test_export_writes_the_conversation_as_markdown(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_engines(monkeypatch, fake_engines("It is **noon**.")[0])
    assert replay("run1", "--state-dir", "state") == 0
    with SessionStore(home / "state/sessions.db") as store:
        session = store.latest()
    assert session is not None
    capsys.readouterr()

    assert cli.main(["export", session.id[:3], "--state-dir", "state"]) == 0
    markdown = capsys.readouterr().out
    assert markdown.startswith("# Tell me about the sea.\n")
    assert f"- Session: {session.id}" in markdown and "- Persona: Vox" in markdown
    assert "**You:** Tell me about the sea.\n\n**Vox:** It is **noon**.\n" in markdown

    assert cli.main(["export", "last", "--state-dir", "state", "-o", "talk.md"]) == 0
    assert (home / "talk.md").read_text(encoding="utf-8") == markdown


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["sessions"], "no saved sessions yet in"),
        (["export", "last"], "no saved sessions yet in"),
        (["replay", str(QUESTION.path), "--fast", "--out-dir", "out", "--resume"], "no saved sessions yet in"),
        (["export", "0ff1ce"], "no session '0ff1ce'"),
        (["replay", str(QUESTION.path), "--fast", "--out-dir", "out", "--resume", "0ff1ce"], "no session '0ff1ce'"),
    ],
)
def test_an_unknown_session_is_one_line_and_exit_2_before_any_model_loads(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    def no_models(*args: object, **kwargs: object) -> Engines:
        raise AssertionError("models must not load")

    monkeypatch.setattr(engines_module, "load_engines", no_models)
    if "0ff1ce" in argv:
        with SessionStore(home / ".local/state/voxloop/sessions.db") as store:
            store.create()
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err and err.startswith("voxloop: ")
    assert "voxloop sessions" in err or "voxloop chat" in err
    assert not (home / "out").exists()


def test_an_unreadable_database_is_one_line_and_exit_2(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = home / "state"
    state.mkdir(mode=0o700)  # private, as voxloop keeps it: no notice before the error
    (state / "sessions.db").write_text("not a database\n" * 200)
    (state / "sessions.db").chmod(0o600)
    assert cli.main(["sessions", "--state-dir", str(state)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sessions.db" in err and "--state-dir" in err


@pytest.mark.models
def test_real_models_remember_a_resumed_conversation(
    engines: Engines, home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    llm = RecordingLLM(engines.llm)
    use_engines(monkeypatch, Engines(engines.asr, llm, engines.tts, {}))
    assert replay("run1") == 0
    [first] = [json.loads(line) for line in (home / "run1/turns.jsonl").read_text().splitlines()]
    assert first["assistant_text"]

    llm.prompts.clear()
    assert replay("run2", "--resume", "last") == 0
    resumed = llm.prompts[-1]
    assert {"role": "user", "content": first["user_text"]} in resumed
    assert {"role": "assistant", "content": first["assistant_text"]} in resumed
    assert cli.main(["export"]) == 0
    markdown = capsys.readouterr().out
    assert markdown.count("**You:**") == 2 and f"**Vox:** {first['assistant_text']}" in markdown
