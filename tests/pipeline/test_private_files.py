"""Private by default: what voxloop writes (the state folder, notes, sessions, knowledge
indexes, transcripts, replay outputs, SQLite's -wal and -shm) is readable by its owner only,
and a state folder that others could read is made private with a one-line notice.

The command runs in process (``cli.main``) with fake engines, like tests/pipeline/test_sessions_cli.py.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from conftest import recording

from voxloop.models.fakes import FakeASR, FakeLLM, FakeTTS
from voxloop.pipeline import cli
from voxloop.pipeline import engines as engines_module
from voxloop.pipeline.assistant.knowledge import KnowledgeIndex
from voxloop.pipeline.assistant.notes import NotesStore
from voxloop.pipeline.assistant.session_store import SessionStore
from voxloop.pipeline.engines import Engines
from voxloop.pipeline.private import make_private

QUESTION = recording("turn_on_the_lamp.wav")

CONFIG = """
[assistant]
persona = "cook"

[personas.cook]
knowledge = ["recipes"]
"""


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def everything_under(folder: Path) -> list[Path]:
    return [folder, *sorted(folder.rglob("*"))]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("VOXLOOP_STATE_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def loose_umask() -> object:
    """The umask many systems give users (022: new files world-readable), as the test's own."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_replay_writes_everything_private_and_puts_the_umask_back(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], loose_umask: object
) -> None:
    (home / "recipes").mkdir()
    (home / "recipes" / "soup.md").write_text("Leek soup: leeks, potatoes, stock.\n")
    (home / "config.toml").write_text(CONFIG)
    engines = Engines(FakeASR(by_audio=lambda audio: "Take a note: the door code is 0042."), FakeLLM(["Sure."] * 5), FakeTTS(), {})
    monkeypatch.setattr(engines_module, "load_engines", lambda config, plan, warm=True: engines)

    code = cli.main(["replay", str(QUESTION.path), "--fast", "--out-dir", "out", "--config", "config.toml"])

    assert code == 0, capsys.readouterr().err
    state = home / ".local/state/voxloop"
    written = {p.name for p in state.iterdir()}
    assert {"sessions.db", "notes.db", "knowledge-cook.db"} <= written, written
    for path in everything_under(state) + everything_under(home / "out"):
        expected = 0o700 if path.is_dir() else 0o600
        assert mode(path) == expected, f"{path}: {mode(path):04o}"
    assert {p.name for p in (home / "out").iterdir()} >= {"conversation.wav", "turns.jsonl"}
    assert mode(home / ".local") == 0o700  # folders it had to create on the way
    assert os.umask(0o022) == 0o022  # main() gave the caller its umask back
    # The user's own folders and files are theirs: read, never changed.
    assert mode(home / "recipes") == 0o755 and mode(home / "recipes" / "soup.md") == 0o644
    notes = NotesStore(state / "notes.db")
    assert [n.text for n in notes.list()] == ["the door code is 0042"]  # the user's words, kept
    notes.close()


def test_the_stores_create_private_files_whoever_calls_them_wal_and_shm_included(tmp_path: Path, loose_umask: object) -> None:
    notes = NotesStore(tmp_path / "a" / "notes.db")
    notes.add("buy milk")
    sessions = SessionStore(tmp_path / "b" / "sessions.db")
    sessions.create()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "x.txt").write_text("some text to index\n")
    index = KnowledgeIndex(tmp_path / "c" / "knowledge-x.db", [tmp_path / "docs"])
    index.update()
    try:
        for folder, db in (("a", "notes.db"), ("b", "sessions.db"), ("c", "knowledge-x.db")):
            assert mode(tmp_path / folder) == 0o700
            files = sorted((tmp_path / folder).iterdir())
            assert {f.name for f in files} >= {db, f"{db}-wal", f"{db}-shm"}, files  # open: WAL in use
            for f in files:
                assert mode(f) == 0o600, f"{f}: {mode(f):04o}"
    finally:
        notes.close()
        sessions.close()
        index.close()


def test_a_state_folder_others_can_read_is_made_private_with_one_notice(
    home: Path, capsys: pytest.CaptureFixture[str], loose_umask: object
) -> None:
    state = home / "state"
    with SessionStore(state / "sessions.db") as store:
        store.create()
    os.chmod(state, 0o755)
    for f in state.iterdir():
        os.chmod(f, 0o644)
    (state / "chat-20240301-120000.jsonl").write_text('{"user_text": "hello"}\n')
    (state / "old").mkdir(mode=0o755)
    (state / "old" / "notes.db").write_text("")
    outside = home / "shared.txt"
    outside.write_text("not voxloop's\n")
    (state / "link").symlink_to(outside)

    assert cli.main(["sessions", "--state-dir", str(state)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"voxloop: made {state} private:"), err
    assert "0700" in err[0] and "0600" in err[0]
    for path in everything_under(state):
        if not path.is_symlink():
            assert mode(path) == (0o700 if path.is_dir() else 0o600), f"{path}: {mode(path):04o}"
    assert mode(outside) == 0o644  # a symlink's target is not the state folder's

    assert cli.main(["sessions", "--state-dir", str(state)]) == 0
    assert capsys.readouterr().err == ""  # once fixed, nothing more to say


def test_make_private_leaves_a_private_or_missing_folder_alone(tmp_path: Path) -> None:
    assert make_private(tmp_path / "nowhere") is None
    (tmp_path / "s").mkdir(mode=0o700)
    (tmp_path / "s" / "f").write_text("x")
    os.chmod(tmp_path / "s" / "f", 0o600)
    assert make_private(tmp_path / "s") is None
