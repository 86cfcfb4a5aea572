"""Saved conversations in a real SQLite file: written at once, read back, found, exported."""

from __future__ import annotations

import contextlib
import datetime
import sqlite3
import time
from pathlib import Path

import pytest
from voxloop.pipeline.assistant.session_store import (
    SessionRecorder,
    SessionStore,
    SessionStoreError,
)
from voxloop.pipeline.dialog import Dialog, Exchange


def test_each_exchange_is_on_disk_the_moment_append_returns(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    store = SessionStore(db)
    session = store.create("default")
    other = sqlite3.connect(db)  # another process's view: what a kill -9 would leave
    try:
        for n in range(1, 4):
            store.append(session, Exchange(n, f"question {n}", f"answer {n}", interrupted=n == 3))
            assert other.execute("SELECT COUNT(*) FROM exchanges WHERE session = ?", (session,)).fetchone() == (n,)
    finally:
        other.close()
    store.close()

    with SessionStore(db) as reopened:
        saved = reopened.load(session)
    assert [(s.turn_id, s.user, s.reply, s.interrupted, s.kind) for s in saved] == [
        (1, "question 1", "answer 1", False, "llm"),
        (2, "question 2", "answer 2", False, "llm"),
        (3, "question 3", "answer 3", True, "llm"),
    ]
    assert saved[0].as_exchange() == Exchange(1, "question 1", "answer 1")


def test_sessions_are_listed_newest_first_with_turns_and_a_title(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "s.db")
    day = datetime.datetime(2024, 5, 1, 9, 30)
    first = store.create("default", started=day)
    second = store.create("cook", started=day + datetime.timedelta(hours=1))
    store.append(first, Exchange(1, "  What  is the capital of France?", "Paris."))
    store.append(first, Exchange(2, "And of Spain?", "Madrid.", kind="command"))
    long_question = "Tell me " + "a very long story " * 10
    store.append(second, Exchange(1, long_question, "Once."))

    listed = store.list()
    assert [(s.id, s.persona, s.turns) for s in listed] == [(second, "cook", 1), (first, "default", 2)]
    assert listed[1].title == "What is the capital of France?"
    assert listed[0].title == "Tell me a very long story a very long story a very long…"  # cut at a word
    assert store.latest() == listed[0]
    assert store.load(first)[1].kind == "command"


def test_a_session_is_found_by_id_by_unique_prefix_or_as_last(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "s.db")
    with pytest.raises(SessionStoreError, match="no saved sessions yet"):
        store.resolve("last")
    ids = [store.create() for _ in range(3)]
    assert store.resolve("last") == ids[-1]
    for session in ids:
        assert store.resolve(session) == session
        assert store.resolve(session.upper()) == session
        unique = next(session[:n] for n in range(1, 9) if sum(s.startswith(session[:n]) for s in ids) == 1)
        assert store.resolve(unique) == session
    with pytest.raises(SessionStoreError, match="no session 'zz'"):
        store.resolve("zz")
    with pytest.raises(SessionStoreError, match="no session '%'"):
        store.resolve("%")  # a LIKE wildcard is a character here, not "anything"
    # Ids are hex digits; these two cannot clash with the random ones above.
    with contextlib.closing(sqlite3.connect(store.path)) as db, db:
        db.executemany("INSERT INTO sessions (id, started, persona) VALUES (?, '2024-01-01T00:00:00', 'x')", [("xyz1",), ("xyz2",)])
    with pytest.raises(SessionStoreError, match="'xy' matches 2 sessions .xyz1, xyz2.. Give more of the id"):
        store.resolve("xy")
    assert store.resolve("xyz2") == "xyz2"
    with pytest.raises(SessionStoreError, match="voxloop sessions"):
        store.info("nope")


def test_markdown_export_says_who_said_what_and_marks_cut_replies(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "s.db")
    session = store.create("default", started=datetime.datetime(2024, 5, 1, 9, 30))
    store.append(session, Exchange(1, "What is the capital of France?", "Paris."))
    store.append(session, Exchange(2, "Tell me a long story", "Once upon a", interrupted=True))

    assert store.export_markdown(session) == (
        "# What is the capital of France?\n\n"
        "- Date: 2024-05-01 09:30\n"
        "- Persona: default\n"
        f"- Session: {session}\n\n"
        "**You:** What is the capital of France?\n\n"
        "**Vox:** Paris.\n\n"
        "**You:** Tell me a long story\n\n"
        "**Vox:** Once upon a *(interrupted)*\n"
    )


def test_a_file_that_is_not_a_database_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "sessions.db"
    bad.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(SessionStoreError) as e:
        SessionStore(bad)
    assert str(bad) in str(e.value) and "--state-dir" in str(e.value) and "\n" not in str(e.value)


def test_the_recorder_creates_the_session_on_the_first_exchange_and_survives_a_failing_store(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "s.db")
    record = SessionRecorder(store, persona="default")
    assert store.list() == []
    started = time.perf_counter()
    record(Exchange(1, "hello", "Hi there."))
    append_ms = (time.perf_counter() - started) * 1000
    assert record.session_id is not None and store.info(record.session_id).turns == 1
    assert append_ms < 1000  # a synced commit: milliseconds, not a stall of the conversation

    store.close()
    record(Exchange(2, "still there?", "Yes."))  # logged once; the conversation goes on
    assert record.saved == 1


def test_a_resumed_history_comes_before_this_run_and_only_what_fits_is_sent(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "s.db")
    session = store.create()
    for n in range(1, 51):
        store.append(session, Exchange(n, f"question number {n} " + "x" * 80, f"answer {n} " + "y" * 80))

    dialog = Dialog(max_history_chars=2000)
    dialog.restore([s.as_exchange() for s in store.load(session)])
    dialog.begin(1, "and now?")  # this run's first turn
    messages = dialog.messages()

    assert messages[-1] == {"role": "user", "content": "and now?"}
    assert sum(len(m["content"]) for m in messages[1:]) <= 2000
    assert "answer 50 " in messages[-2]["content"]  # the newest saved exchange is kept
    assert not any("question number 1 " in m["content"] for m in messages)  # the oldest are not
    # A context window that fits only a few messages trims further, newest kept.
    few = dialog.messages(fits=lambda m: len(m) <= 4)
    assert [m["role"] for m in few] == ["system", "user", "assistant", "user"]
    assert few[-1]["content"] == "and now?" and "answer 50 " in few[-2]["content"]


def test_a_process_killed_with_sigkill_loses_no_exchange_it_had_saved(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    db = tmp_path / "sessions.db"
    writer = (
        "import sys\n"
        "from pathlib import Path\n"
        "from voxloop.pipeline.assistant.session_store import SessionStore\n"
        "from voxloop.pipeline.dialog import Exchange\n"
        "store = SessionStore(Path(sys.argv[1]))\n"
        "session = store.create()\n"
        "n = 0\n"
        "while True:\n"
        "    n += 1\n"
        "    store.append(session, Exchange(n, f'q{n}', f'a{n}'))\n"
        "    print(n, flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", writer, str(db)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if int(line) == 5:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stdout.close()

    with SessionStore(db) as store:
        latest = store.latest()
        assert latest is not None
        saved = store.load(latest.id)
    assert len(saved) >= 5  # every append that had returned is there
    assert [s.user for s in saved[:5]] == ["q1", "q2", "q3", "q4", "q5"]
