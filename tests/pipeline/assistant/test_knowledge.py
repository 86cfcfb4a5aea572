"""The knowledge index over real files in a temporary folder, with the real SQLite FTS5 and
pypdf: what is found for spoken questions, what is refused, and what an update re-reads."""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import pytest
from voxloop.pipeline.assistant.knowledge import (
    KnowledgeConfig,
    KnowledgeError,
    KnowledgeIndex,
    KnowledgeLimits,
    OutsideRootsError,
    chunk_text,
    fts_query,
    knowledge_context,
)

BREAD = """# Sourdough

Feed the starter the night before, about twelve hours ahead.

For the loaf, bake the bread at 230 degrees Celsius for twenty minutes with the lid on, then
twenty five minutes without it. Let it cool for an hour before cutting.
"""
FRIDGE = "Keep the fridge at a temperature of four degrees and the freezer at minus eighteen.\n"
BREAD_HISTORY = "Bread is one of the oldest foods. People made flat bread from wild grains long before farming.\n"
PASTA = "Boil the pasta in salted water for nine minutes. The sauce needs garlic, tomatoes and basil.\n"
MANUAL_PAGES = [
    ["Garden notes, page one.", "Water the tomatoes every morning in summer."],
    ["Page two.", "The heat pump filter must be cleaned every three months.", "Use warm water, no soap."],
]


def write_pdf(path: Path, pages: list[list[str]]) -> None:
    """A minimal real PDF: one Helvetica text line per string, one page per list."""
    contents = ["".join(f"BT /F1 12 Tf 72 {720 - 20 * i} Td ({line}) Tj ET\n" for i, line in enumerate(lines)) for lines in pages]
    path.write_bytes(pdf_bytes([c.encode("latin-1") for c in contents]))


def pdf_bytes(contents: list[bytes], flate: bool = False) -> bytes:
    """A PDF with one page per content stream, compressed with FlateDecode if asked."""
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>", b"", b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for ops in contents:
        body = zlib.compress(ops, 9) if flate else ops
        objects.append(b"<< /Length %d%s >>\nstream\n%s\nendstream" % (len(body), b" /Filter /FlateDecode" if flate else b"", body))
        kids.append(len(objects) + 1)
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {len(objects)} 0 R "
            "/Resources << /Font << /F1 3 0 R >> >> >>".encode()
        )
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] /Count {len(kids)} >>".encode()
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    root = tmp_path / "notes"
    (root / "kitchen").mkdir(parents=True)
    (root / "kitchen" / "bread.md").write_text(BREAD, encoding="utf-8")
    (root / "kitchen" / "pasta.txt").write_text(PASTA, encoding="utf-8")
    (root / "fridge.txt").write_text(FRIDGE, encoding="utf-8")
    (root / "history.md").write_text(BREAD_HISTORY, encoding="utf-8")
    write_pdf(root / "house.pdf", MANUAL_PAGES)
    return root


@pytest.fixture
def index(notes: Path, tmp_path: Path) -> KnowledgeIndex:
    with KnowledgeIndex(tmp_path / "state" / "knowledge-test.db", [notes]) as ix:
        yield ix


def test_a_spoken_question_finds_the_passage_that_answers_it(index: KnowledgeIndex) -> None:
    report = index.update()

    assert report.indexed == 5 and report.skipped == 0
    top = index.search("according to my notes, what temperature do I bake bread at", k=3)
    assert top[0].file == "kitchen/bread.md"
    assert "230 degrees" in top[0].text
    assert top[0].score > top[-1].score


def test_pdf_text_is_searchable_with_its_page(index: KnowledgeIndex) -> None:
    index.update()

    top = index.search("how often do I clean the heat pump filter")

    assert top[0].file == "house.pdf"
    assert "every three months" in top[0].text
    assert top[0].page == 2
    assert top[0].source == "house.pdf, page 2"


@pytest.mark.parametrize(
    "question",
    [
        'what does "bread AND NOT pasta" mean',
        "bread NEAR(pasta, 2)",
        "bread* -pasta OR",
        "text: bread ^ pasta + (",
        '"',
        "AND OR NOT NEAR",
        "the a of",  # only stopwords: nothing to look for
        "",
        "{text}: bread",
        "’’ ‘bread’ … — 温度",
    ],
)
def test_query_syntax_in_speech_never_errors(index: KnowledgeIndex, question: str) -> None:
    index.update()

    found = index.search(question)

    # words are matched as words: an operator the user says is at most one more word
    assert all("bread" in p.text.lower() or "pasta" in p.text.lower() for p in found)


def test_random_text_never_errors(index: KnowledgeIndex) -> None:
    index.update()
    rng = random.Random(7)
    alphabet = 'abc "*-^:()+{}NEAR AND OR NOT \\\'\x00\u2019\u00e9\u6e29'
    for _ in range(300):
        index.search("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))))


def test_every_word_is_quoted_so_none_is_an_operator() -> None:
    assert fts_query('Bread NEAR "pasta" -oven*') == '"bread" OR "near" OR "pasta" OR "oven"'
    assert fts_query("according to my notes, what is it") == ""


def test_a_symlink_out_of_the_folder_is_skipped(notes: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("The bank password is hunter2.\n", encoding="utf-8")
    (notes / "link.txt").symlink_to(secret)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "diary.md").write_text("Dear diary, the password is swordfish.\n", encoding="utf-8")
    (notes / "linked-folder").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (notes / "inside.txt").symlink_to(notes / "fridge.txt")  # inside the folder: fine, indexed once

    with caplog.at_level(logging.WARNING), KnowledgeIndex(tmp_path / "k.db", [notes]) as index:
        report = index.update()
        assert index.search("what is the password") == []
        assert "link.txt" not in index.files()
        assert report.indexed == 5
    assert "points outside the knowledge folders" in caplog.text


def test_names_that_leave_the_folder_are_refused(index: KnowledgeIndex, notes: Path, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("secret\n", encoding="utf-8")
    (notes / "link.txt").symlink_to(tmp_path / "secret.txt")

    assert index.resolve("kitchen/bread.md") == notes / "kitchen" / "bread.md"
    for name in ("../secret.txt", "kitchen/../../secret.txt", str(tmp_path / "secret.txt"), "link.txt", "", "nope.md"):
        with pytest.raises(OutsideRootsError):
            index.resolve(name)


def test_binary_and_unreadable_files_are_skipped_with_a_log_line(
    notes: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (notes / "photo.md").write_bytes(bytes(range(256)) * 40)
    (notes / "fake.pdf").write_text("not really a pdf\n", encoding="utf-8")
    (notes / "broken.pdf").write_bytes(b"%PDF-1.4\n" + os.urandom(2000))
    (notes / "locked.txt").write_text("bread\n", encoding="utf-8")
    (notes / "locked.txt").chmod(0)
    os.mkfifo(notes / "pipe.txt")  # opening a FIFO would block the whole index
    (notes / "photo.jpg").write_bytes(b"\xff\xd8 not text at all")  # not a knowledge type: ignored
    (notes / ".obsidian").mkdir()
    (notes / ".obsidian" / "workspace.md").write_text("bread\n", encoding="utf-8")  # hidden: ignored
    (notes / ".draft.md").write_text("bread\n", encoding="utf-8")

    with caplog.at_level(logging.WARNING), KnowledgeIndex(tmp_path / "k.db", [notes]) as index:
        report = index.update()

    readable_as_root = os.geteuid() == 0
    assert report.indexed == 5 + readable_as_root
    assert report.skipped == 4 - readable_as_root
    for name in ("photo.md", "fake.pdf", "broken.pdf", "pipe.txt"):
        assert name in caplog.text
    assert "photo.jpg" not in caplog.text
    with KnowledgeIndex(tmp_path / "k.db", [notes]) as index:
        assert not any(f.startswith(".") for f in index.files())


def test_an_update_reads_only_what_changed_and_drops_what_is_gone(index: KnowledgeIndex, notes: Path) -> None:
    index.update()

    again = index.update()
    assert (again.indexed, again.unchanged, again.removed) == (0, 5, 0)

    bread = notes / "kitchen" / "bread.md"
    bread.write_text(BREAD.replace("230 degrees", "250 degrees"), encoding="utf-8")
    os.utime(bread, ns=(time.time_ns(), time.time_ns() + 10**9))  # a clock tick coarser than the writes
    (notes / "fridge.txt").unlink()
    (notes / "new.txt").write_text("The bread tin is in the left cupboard.\n", encoding="utf-8")
    changed = index.update()

    assert (changed.indexed, changed.unchanged, changed.removed) == (2, 3, 1)
    top = index.search("what temperature do I bake bread at")[0]
    assert "250 degrees" in top.text and "230" not in top.text
    assert index.search("fridge temperature") == []
    assert "new.txt" in index.files()


def test_the_index_survives_a_restart_and_a_corrupt_file(notes: Path, tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    with KnowledgeIndex(db, [notes]) as index:
        index.update()
    with KnowledgeIndex(db, [notes]) as index:
        assert index.update().unchanged == 5
    db.write_bytes(b"this is not a database" * 100)
    with KnowledgeIndex(db, [notes]) as index:
        assert index.update().indexed == 5


def test_passages_keep_sentences_whole_and_overlap_a_little() -> None:
    sentences = [f"Sentence number {i} says something about item {i}." for i in range(40)]
    text = " ".join(sentences[:20]) + "\n\n" + " ".join(sentences[20:])

    chunks = chunk_text(text, size=200, overlap=80)

    assert all(len(passage) <= 200 for _, passage in chunks)
    for _, passage in chunks:
        assert passage.startswith("Sentence") and passage.endswith(".")
    joined = " ".join(p for _, p in chunks)
    assert all(s in joined for s in sentences)
    overlaps = sum(chunks[i][1].split(". ")[0] in chunks[i - 1][1] for i in range(1, len(chunks)))
    assert overlaps >= len(chunks) // 2
    assert [text[offset : offset + 8] for offset, _ in chunks] == ["Sentence"] * len(chunks)


def test_a_very_long_sentence_is_cut_at_spaces() -> None:
    chunks = chunk_text("word " * 500, size=100, overlap=20)

    assert all(len(p) <= 100 and "wor " not in p + " " for _, p in chunks)
    assert sum(p.count("word") for _, p in chunks) == 500


def test_the_prompt_context_stays_inside_its_budget(index: KnowledgeIndex) -> None:
    index.update()

    passages = knowledge_context(index, "bread bake temperature pasta tomatoes", k=3, budget_chars=300)

    assert passages and sum(len(p.text) for p in passages) <= 300
    assert knowledge_context(None, "bread") == []


def test_several_folders_name_their_files_by_folder(notes: Path, tmp_path: Path) -> None:
    other = tmp_path / "recipes"
    other.mkdir()
    (other / "bread.md").write_text("Rye bread wants a long proof in the fridge.\n", encoding="utf-8")

    with KnowledgeIndex(tmp_path / "k.db", [notes, other]) as index:
        index.update()
        assert index.search("rye bread proof")[0].file == "recipes/bread.md"
        assert index.resolve("recipes/bread.md") == other / "bread.md"
        assert index.resolve("notes/kitchen/bread.md") == notes / "kitchen" / "bread.md"


def test_fifty_files_index_in_well_under_a_second_and_search_takes_milliseconds(tmp_path: Path) -> None:
    root = tmp_path / "many"
    root.mkdir()
    rng = random.Random(1)
    words = (BREAD + FRIDGE + BREAD_HISTORY + PASTA).split()
    for i in range(50):
        paragraphs = [" ".join(rng.choice(words) for _ in range(80)) + "." for _ in range(22)]
        (root / f"note{i:02}.md").write_text("\n\n".join(paragraphs), encoding="utf-8")
    size = sum(f.stat().st_size for f in root.iterdir())

    with KnowledgeIndex(tmp_path / "k.db", [root]) as index:
        report = index.update()
        timings = []
        for question in ["what temperature do I bake bread at", "how long do I boil pasta", "fridge"] * 20:
            began = time.perf_counter()
            index.search(question)
            timings.append(time.perf_counter() - began)
    median_ms = statistics.median(timings) * 1000
    print(f"\nindexed {report.indexed} files, {size / 1000:.0f} kB, {report.passages} passages in "
          f"{report.seconds * 1000:.0f} ms; search median {median_ms:.2f} ms, max {max(timings) * 1000:.2f} ms")
    assert report.indexed == 50 and size > 250_000
    assert report.seconds < 5
    assert median_ms < 20


def test_a_sqlite_without_fts5_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fts5(self: KnowledgeIndex) -> None:
        raise sqlite3.OperationalError("no such module: fts5")

    monkeypatch.setattr(KnowledgeIndex, "_connect", no_fts5)

    with pytest.raises(KnowledgeError, match="has no FTS5, which the knowledge search needs. Use a Python"):
        KnowledgeIndex(tmp_path / "k.db", [tmp_path])


def test_searches_go_on_while_a_big_folder_is_indexed(notes: Path, tmp_path: Path) -> None:
    with KnowledgeIndex(tmp_path / "k.db", [notes]) as index:
        index.update()
        for i in range(30):
            (notes / f"more{i}.txt").write_text(PASTA * 200, encoding="utf-8")
        with ThreadPoolExecutor(1) as pool:
            updating = pool.submit(index.update)
            found = [index.search("bake bread temperature") for _ in range(20)]
            assert updating.result(timeout=60).indexed == 30
    assert all(f and f[0].file == "kitchen/bread.md" for f in found)


# --- what indexing may cost -------------------------------------------------------------------

LINE = b"(Knead the dough until smooth, then bake the bread until golden.) '\n"
"""One line of text a time (the ' operator: next line, show the string): 64 characters."""


def bomb(lines: int, pages: int = 1) -> bytes:
    """A PDF of a few kilobytes whose compressed pages expand to ``lines`` lines of text each."""
    return pdf_bytes([b"BT /F1 12 Tf 72 720 Td 14 TL\n" + LINE * lines + b"ET\n"] * pages, flate=True)


def slow_pdf() -> bytes:
    """About 30 KB that take pypdf several seconds: 200 000 text blocks to parse."""
    return pdf_bytes([b"BT /F1 12 Tf 72 720 Td (bread) Tj ET\n" * 200_000], flate=True)


def stored_chars(db: Path) -> dict[str, int]:
    with closing(sqlite3.connect(db)) as c:
        return dict(c.execute("SELECT name, chars FROM files"))


def limits(**caps: float) -> KnowledgeConfig:
    return KnowledgeConfig(limits=KnowledgeLimits(**caps))  # type: ignore[arg-type]


def warnings_about(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and name in r.getMessage()]


def test_a_small_pdf_that_expands_to_megabytes_of_text_is_cut_at_its_caps_while_extracting(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "notes"
    root.mkdir()
    (root / "bomb.pdf").write_bytes(bomb(30_000, pages=3))  # 22 KB: 3 pages of 1.9 MB of text each
    # No line ends at all: pypdf would hand the text over only at the end of the page.
    (root / "flat.pdf").write_bytes(pdf_bytes([b"BT /F1 12 Tf 72 720 Td\n" + b"(bread and butter ) Tj\n" * 100_000], flate=True))
    assert all(f.stat().st_size < 50_000 for f in root.iterdir())
    caps = KnowledgeLimits()

    with caplog.at_level(logging.WARNING), KnowledgeIndex(tmp_path / "k.db", [root]) as index:
        began = time.perf_counter()
        report = index.update()
        seconds = time.perf_counter() - began
        found = index.search("how long do I knead the dough")

    chars = stored_chars(tmp_path / "k.db")
    assert chars.get("bomb.pdf") == 3 * caps.page_chars  # each page stopped at its cap
    assert (report.indexed, report.skipped, report.truncated) == (1, 1, 1)
    assert seconds < caps.pdf_seconds  # stopped by the caps, not by the timeout
    assert len(warnings_about(caplog, "bomb.pdf")) == 1
    assert found[0].file == "bomb.pdf" and found[0].page in (1, 2, 3)
    # Stopped once it had shown four times the cap, with nothing handed over: nothing indexed.
    assert "flat.pdf" not in chars
    assert warnings_about(caplog, "flat.pdf") == [f"{root / 'flat.pdf'}: no text found within the caps (20000 characters a page); skipped"]


def test_a_pdf_stops_at_its_file_cap_and_a_text_file_is_read_only_up_to_its_cap(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "notes"
    root.mkdir()
    (root / "manual.pdf").write_bytes(bomb(100, pages=10))  # 10 pages of 6 400 characters
    with (root / "log.txt").open("wb") as f:
        f.write(b"The bread recipe says to knead for ten minutes. " * 20_000)  # about 1 MB of text
        f.truncate(2 * 10**9)  # and 2 GB in all: reading it whole would take a while

    with caplog.at_level(logging.WARNING), KnowledgeIndex(tmp_path / "k.db", [root], limits(page_chars=5_000, file_chars=12_000)) as index:
        began = time.perf_counter()
        report = index.update()
        seconds = time.perf_counter() - began
        pages = {p.page for p in index.search("knead the dough bake bread golden", k=50) if p.file == "manual.pdf"}

    assert (report.indexed, report.truncated) == (2, 2)
    assert stored_chars(tmp_path / "k.db") == {"manual.pdf": 12_000, "log.txt": 12_000}
    assert pages == {1, 2, 3}  # 5 000 + 5 000 + 2 000: the pages after were never read
    assert seconds < 5
    assert len(warnings_about(caplog, "manual.pdf")) == 1 and len(warnings_about(caplog, "log.txt")) == 1


def test_a_pdf_slower_than_its_time_limit_is_killed_and_skipped_with_one_line(
    notes: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (notes / "slow.pdf").write_bytes(slow_pdf())
    config = limits(page_chars=10**9, file_chars=10**9, pdf_seconds=0.5)

    with caplog.at_level(logging.WARNING), KnowledgeIndex(tmp_path / "k.db", [notes], config) as index:
        began = time.perf_counter()
        report = index.update()
        seconds = time.perf_counter() - began
        assert "slow.pdf" not in index.files()
        assert index.search("heat pump filter")[0].file == "house.pdf"

    assert (report.indexed, report.skipped) == (5, 1)
    assert warnings_about(caplog, "slow.pdf") == [f"{notes / 'slow.pdf'}: reading the PDF took longer than 0.5 s; skipped"]
    assert seconds < 3  # killed at 0.5 s, not waited for


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS is enforced on Linux")
def test_a_pdf_that_needs_more_memory_than_its_limit_is_skipped_with_one_line(
    notes: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # 60 KB that inflate to a 60 MB content stream, which pypdf holds several times over.
    (notes / "greedy.pdf").write_bytes(pdf_bytes([b"BT /F1 12 Tf 72 720 Td (bread) Tj ET\n" + b" " * 60_000_000], flate=True))
    config = limits(pdf_memory_bytes=128 * 1024 * 1024)

    with caplog.at_level(logging.WARNING), KnowledgeIndex(tmp_path / "k.db", [notes], config) as index:
        report = index.update()

    assert (report.indexed, report.skipped) == (5, 1)
    assert warnings_about(caplog, "greedy.pdf") == [f"{notes / 'greedy.pdf'}: reading the PDF needs more than 128 MB of memory; skipped"]


def test_a_folder_over_its_caps_indexes_what_fits_and_says_once_what_it_left_out(
    notes: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "k.db"
    with KnowledgeIndex(db, [notes]) as index:
        assert index.update().indexed == 5

    # Found in this order: fridge.txt, history.md, house.pdf, kitchen/bread.md, kitchen/pasta.txt
    with caplog.at_level(logging.WARNING), KnowledgeIndex(db, [notes], limits(folder_files=3)) as index:
        report = index.update()
        assert index.files() == ["fridge.txt", "history.md", "house.pdf"]
    assert (report.unchanged, report.removed, report.full_folders) == (3, 2, 1)
    [said] = [r.getMessage() for r in caplog.records]
    assert said == f"{notes}: over the folder's cap of 3 files; indexed what fits and left out kitchen/bread.md and the files after it"

    caplog.clear()
    with caplog.at_level(logging.WARNING), KnowledgeIndex(db, [notes], limits(folder_chars=len(FRIDGE) + len(BREAD_HISTORY))) as index:
        report = index.update()
        assert index.files() == ["fridge.txt", "history.md"]
    assert report.full_folders == 1
    [said] = [r.getMessage() for r in caplog.records]
    assert said.endswith(f"characters of text; indexed what fits and left out house.pdf and the files after it")


def test_closing_the_index_stops_an_update_in_the_middle_of_a_pdf(
    notes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (notes / "slow.pdf").write_bytes(slow_pdf())
    reading = threading.Event()
    popen = subprocess.Popen

    def started(*args: object, **kwargs: object) -> subprocess.Popen[bytes]:
        child = popen(*args, **kwargs)  # type: ignore[call-overload]
        reading.set()
        return child

    monkeypatch.setattr(subprocess, "Popen", started)
    index = KnowledgeIndex(tmp_path / "k.db", [notes], limits(page_chars=10**9, file_chars=10**9, pdf_seconds=60))
    with ThreadPoolExecutor(1) as pool:
        updating = pool.submit(index.update)
        assert reading.wait(30)
        began = time.perf_counter()
        index.close()
        report = updating.result(timeout=30)
    assert report.stopped
    assert time.perf_counter() - began < 2
