"""The notes file: real SQLite, stable numbers, atomic writes, a clear error for a bad path."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from voxloop.pipeline.assistant.notes import NotesError, NotesStore


def test_notes_are_kept_across_sessions_with_stable_numbers(tmp_path: Path) -> None:
    path = tmp_path / "state" / "notes.db"
    store = NotesStore(path)
    assert store.list() == [] and store.next_id() == 1 and store.get(1) is None
    assert not path.exists()  # nothing written until a note is taken
    assert [store.add(t).id for t in ("buy milk", "call mum", "water plants")] == [1, 2, 3]
    assert store.delete(2)
    assert store.add("book dentist").id == 4  # a deleted number is not reused
    store.close()

    again = NotesStore(path)
    assert [(n.id, n.text) for n in again.list()] == [(1, "buy milk"), (3, "water plants"), (4, "book dentist")]
    assert again.get(3) is not None and again.get(2) is None
    assert not again.delete(2)
    assert again.delete_all() == 3
    assert again.list() == [] and again.next_id() == 1
    assert again.add("fresh start").id == 1
    again.close()


def test_the_file_is_a_wal_database_another_reader_can_open(tmp_path: Path) -> None:
    store = NotesStore(tmp_path / "notes.db")
    store.add("buy milk")
    with sqlite3.connect(tmp_path / "notes.db") as other:
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert other.execute("SELECT text FROM notes").fetchall() == [("buy milk",)]
    store.close()


def test_a_failed_write_leaves_nothing_half_done(tmp_path: Path) -> None:
    store = NotesStore(tmp_path / "notes.db")
    store.add("keep me")
    with pytest.raises(sqlite3.Error):
        store._write(("DELETE FROM notes", ()), ("INSERT INTO no_such_table VALUES (1)", ()))
    assert [n.text for n in store.list()] == ["keep me"]
    store.close()


def test_an_unusable_path_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(NotesError, match=r"file/notes.db: cannot open the notes database .*notes_db"):
        NotesStore(blocker / "notes.db").add("buy milk")
