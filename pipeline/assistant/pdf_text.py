"""The text of one PDF, extracted in a child process that the knowledge index can kill.

A few kilobytes of PDF can hold a compressed content stream that repeats a text operator a
million times, or a page tree that sends the reader round in circles: its text is worth a
process of its own, with a memory limit (``RLIMIT_AS``), a CPU-time limit as a backstop, and a
wall-clock timeout kept by the parent (:func:`voxloop.pipeline.assistant.knowledge.pdf_pages`).

The child is this module::

    python -I -m voxloop.pipeline.assistant.pdf_text PAGE_CHARS FILE_CHARS MEMORY_BYTES CPU_SECONDS < file.pdf

It reads the PDF's bytes on stdin (it never opens a file itself) and writes one JSON object on
stdout: ``{"pages": [...], "truncated": bool}`` or ``{"error": "memory" | "encrypted" |
"<type>: <message>"}``. The page and file caps are enforced while pypdf extracts: a page stops
as soon as its text reaches ``PAGE_CHARS``, the file as soon as its text reaches
``FILE_CHARS``, so a bomb costs at most the caps, not the text it would expand to.
"""

from __future__ import annotations

import io
import json
import sys
from typing import Any


class _PageFull(BaseException):
    """Raised from pypdf's text visitor to stop a page's extraction at its cap. A
    BaseException: pypdf catches ``Exception`` around form XObjects and would go on."""


def page_text(page: Any, max_chars: int) -> tuple[str, bool]:
    """The page's text, at most ``max_chars``, and whether there was more.

    pypdf hands its text to a visitor as it goes (at each line or text block); the page stops
    once that passes ``max_chars``. A page that shows text but never ends a line would not
    reach the visitor until its end: it stops when the strings it shows pass four times the
    cap (two bytes a glyph in CID fonts, and room to spare), with the text seen so far."""
    if max_chars <= 0:
        return "", True
    pieces: list[str] = []
    count = shown = 0

    def visit_text(text: str, *_: object) -> None:
        nonlocal count
        pieces.append(text)
        count += len(text)
        if count > max_chars:
            raise _PageFull

    def visit_operator(operator: bytes, operands: list[Any], *_: object) -> None:
        nonlocal shown
        if operator in _SHOW_TEXT:
            shown += sum(len(o) for o in _strings(operands))
            if shown > 4 * max_chars:
                raise _PageFull

    try:
        text = page.extract_text(visitor_text=visit_text, visitor_operand_before=visit_operator) or ""
    except _PageFull:
        return "".join(pieces)[:max_chars], True
    return text[:max_chars], len(text) > max_chars


_SHOW_TEXT = frozenset((b"Tj", b"TJ", b"'", b'"'))


def _strings(operands: list[Any]) -> list[str | bytes]:
    """The strings a text-showing operator shows (a TJ array's, or its own operands)."""
    flat = [o for a in operands for o in (a if isinstance(a, list) else [a])]
    return [o for o in flat if isinstance(o, (str, bytes))]


def pdf_pages(data: bytes, page_chars: int, file_chars: int) -> dict[str, Any]:
    """What the child writes: the pages' text under the caps, or why there is none. Raises
    what pypdf raises on a malformed file."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted and not reader.decrypt(""):
        return {"error": "encrypted"}
    pages: list[str] = []
    total = 0
    truncated = False
    for page in reader.pages:
        if total >= file_chars:
            truncated = True
            break
        text, cut = page_text(page, min(page_chars, file_chars - total))
        pages.append(text)
        total += len(text)
        truncated = truncated or cut
    return {"pages": pages, "truncated": truncated}


def _limit(memory_bytes: int, cpu_seconds: int) -> None:
    """Cap this process's address space and CPU time (where the system allows: macOS does not
    enforce ``RLIMIT_AS``; the parent's wall-clock timeout still applies)."""
    try:
        import resource
    except ImportError:  # not a Unix
        return
    for kind, value in ((resource.RLIMIT_AS, memory_bytes), (resource.RLIMIT_CPU, cpu_seconds)):
        try:
            resource.setrlimit(kind, (value, value + (1 if kind == resource.RLIMIT_CPU else 0)))
        except (ValueError, OSError):
            pass


def main(argv: list[str]) -> int:
    page_chars, file_chars, memory_bytes, cpu_seconds = (int(a) for a in argv)
    _limit(memory_bytes, cpu_seconds)
    # pypdf warns about every oddity of a malformed file; the parent only wants the outcome.
    import logging
    import warnings

    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    data = sys.stdin.buffer.read()
    try:
        result = pdf_pages(data, page_chars, file_chars)
    except MemoryError:
        result = {"error": "memory"}
    # pypdf raises many exception types on malformed files; any of them means "cannot read it".
    except Exception as e:  # noqa: BLE001
        result = {"error": f"{type(e).__name__}: {e}"[:300]}
    del data
    sys.stdout.write(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
