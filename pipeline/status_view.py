"""What ``voxloop chat`` shows: a live terminal view, timestamped lines, or nothing.

* ``TerminalView`` (rich): the phase (listening / hearing you / thinking / speaking), a live
  input level meter, what recognition has made of your words, the reply as it is spoken (the
  words already played bright, the rest of what was generated dim), each turn's latency, and the
  device and xrun counts. Finished turns scroll above the panel as a transcript.
* ``PlainReporter``, for scripts and non-terminals: one timestamped line on stdout per state
  change. The first is ``ready: listening on ...``; a script can wait for it.
* ``QuietReporter``: nothing but warnings and errors (on stderr, through logging).
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, TextIO

from voxloop.voice.devices import DeviceEvent

from .live import DEVICE_LOST, HEARING, LISTENING, SPEAKING, THINKING, ChatStatus
from .turn_log import TurnRecord

logger = logging.getLogger(__name__)


def timestamp() -> str:
    return datetime.datetime.now().isoformat(sep=" ", timespec="milliseconds")


def _latency(record: TurnRecord) -> str:
    return f"{record.latency_ms:.0f} ms" if record.latency_ms is not None else "no latency"


class QuietReporter:
    def opened(self, status: ChatStatus) -> None:
        pass

    def loading(self, status: ChatStatus) -> None:
        pass

    def ready(self, status: ChatStatus) -> None:
        pass

    def phase(self, status: ChatStatus) -> None:
        pass

    def refresh(self, status: ChatStatus) -> None:
        pass

    def turn(self, status: ChatStatus, record: TurnRecord) -> None:
        pass

    def device(self, status: ChatStatus, event: DeviceEvent) -> None:
        pass

    def finished(self, status: ChatStatus, summary: str) -> None:
        pass


class PlainReporter(QuietReporter):
    """State changes as timestamped lines on ``out``; loading progress on ``err``."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    def _line(self, text: str) -> None:
        print(f"{timestamp()} {text}", file=self.out, flush=True)

    def opened(self, status: ChatStatus) -> None:
        print(f"voxloop: {status.device}; loading the models...", file=self.err, flush=True)

    def loading(self, status: ChatStatus) -> None:
        print(f"voxloop: {status.loading} ({status.load_step}/{status.load_steps})", file=self.err, flush=True)

    def ready(self, status: ChatStatus) -> None:
        self._line(f"ready: listening on the {status.device}")

    def phase(self, status: ChatStatus) -> None:
        self._line(status.phase)

    def turn(self, status: ChatStatus, record: TurnRecord) -> None:
        mark = " [interrupted]" if record.interrupted else ""
        self._line(f"turn {record.turn_id} you: {record.user_text}")
        self._line(f"turn {record.turn_id} vox ({_latency(record)}){mark}: {record.assistant_text}")

    def device(self, status: ChatStatus, event: DeviceEvent) -> None:
        self._line(f"device {event.kind}: {event.message}")

    def finished(self, status: ChatStatus, summary: str) -> None:
        self._line(f"stopped: {summary}")


_PHASE_STYLE = {
    "starting": ("○", "dim"),
    "loading": ("◌", "yellow"),
    LISTENING: ("●", "green"),
    HEARING: ("◉", "bold cyan"),
    THINKING: ("◐", "bold yellow"),
    SPEAKING: ("◆", "bold magenta"),
    DEVICE_LOST: ("✖", "bold red"),
}


def level_bar(level_db: float, width: int = 30, floor_db: float = -70.0) -> tuple[int, str]:
    """Cells filled for ``level_db`` on a ``floor_db``..0 dBFS scale, and its colour."""
    fraction = min(1.0, max(0.0, (level_db - floor_db) / -floor_db))
    cells = round(fraction * width)
    colour = "red" if level_db > -3 else "yellow" if level_db > -20 else "green"
    return cells, colour


class TerminalView(QuietReporter):
    """The live panel (rich). Call ``close()`` at the end."""

    def __init__(self, console: Any | None = None) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = console or Console()
        self._live = Live(console=self.console, refresh_per_second=10, transient=False, auto_refresh=True)
        self._started = False
        self._peak_db = -120.0
        self._peak_at = 0.0
        self._device_message = ""

    def _ensure(self) -> None:
        if not self._started:
            self._live.start()
            self._started = True

    def close(self) -> None:
        if self._started:
            self._live.stop()
            self._started = False

    def opened(self, status: ChatStatus) -> None:
        self._ensure()
        status.phase = "loading"
        self._live.console.print(f"[dim]{status.device}[/]")
        self.refresh(status)

    def loading(self, status: ChatStatus) -> None:
        self.refresh(status)

    def ready(self, status: ChatStatus) -> None:
        self._live.console.print("[green]ready[/]: listening. Speak; Ctrl-C to quit.")
        self.refresh(status)

    def phase(self, status: ChatStatus) -> None:
        if status.phase != DEVICE_LOST:
            self._device_message = ""
        self.refresh(status)

    def refresh(self, status: ChatStatus) -> None:
        self._ensure()
        self._live.update(self.render(status))

    def turn(self, status: ChatStatus, record: TurnRecord) -> None:
        from rich.text import Text

        you = Text.assemble(("you ", "bold cyan"), record.user_text or "")
        vox = Text.assemble(
            ("vox ", "bold magenta"),
            record.assistant_text or "",
            (f"  ({_latency(record)}{', interrupted' if record.interrupted else ''})", "dim"),
        )
        self._live.console.print(you)
        self._live.console.print(vox)

    def device(self, status: ChatStatus, event: DeviceEvent) -> None:
        self._device_message = event.message if event.kind == "lost" else ""
        self._live.console.print(f"[{'red' if event.kind == 'lost' else 'green'}]{event.message}[/]")
        self.refresh(status)

    def finished(self, status: ChatStatus, summary: str) -> None:
        self.close()
        self.console.print(f"[dim]stopped: {summary}[/]")

    def render(self, status: ChatStatus) -> Any:
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        now = time.monotonic()
        if status.level_db >= self._peak_db or now - self._peak_at > 1.0:
            self._peak_db, self._peak_at = status.level_db, now
        mark, style = _PHASE_STYLE.get(status.phase, ("?", ""))
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold", no_wrap=True, width=6)
        grid.add_column(ratio=1)

        title = Text.assemble((f"{mark} {status.phase}", style))
        if status.phase == "loading":
            spinner = "|/-\\"[int(now * 8) % 4]
            title.append(f"  {spinner} {status.loading} ({status.load_step}/{status.load_steps})", "yellow")
        elif status.phase == DEVICE_LOST and self._device_message:
            title.append(f"  {self._device_message}", "red")
        grid.add_row("", title)

        width = 30
        cells, colour = level_bar(status.level_db, width)
        peak_cell = level_bar(self._peak_db, width)[0]
        bar = Text()
        bar.append("█" * cells, colour)
        bar.append("░" * max(0, width - cells))
        if peak_cell > cells:
            bar = Text.assemble(bar[: peak_cell - 1], ("│", "bold"), bar[peak_cell:])
        bar.append(f" {max(status.level_db, -99):5.0f} dB", "dim")
        grid.add_row("mic", bar)

        if status.you:
            grid.add_row("you", Text(status.you, style="cyan"))
        else:
            grid.add_row("you", Text("…" if status.phase == HEARING else "", style="dim cyan"))
        # Played words bright; the rest of what was generated dim. (The spoken form of numbers
        # and dates differs from the text, so the rest shows only while it still lines up.)
        reply = Text(status.heard, style="magenta")
        if not status.heard:
            reply.append(status.reply, "dim")
        elif status.reply.startswith(status.heard):
            reply.append(status.reply[len(status.heard) :], "dim")
        elif status.phase == SPEAKING:
            reply.append(" …", "dim")
        grid.add_row("vox", reply)

        latencies = [f"{t.latency_ms:.0f}" for t in status.turns[-5:] if t.latency_ms is not None]
        s = status.stats
        footer = Text(
            f"turns {len(status.turns)}"
            + (f" · latency ms {' '.join(latencies)}" if latencies else "")
            + f" · xruns in {s.input_overflows + s.input_gaps} out {s.output_underflows + s.output_gaps}"
            + (f" · reopened {s.reopens}" if s.reopens else ""),
            style="dim",
        )
        return Panel(Group(grid, footer), title="voxloop", title_align="left", border_style=style.split()[-1] or "white")


@contextlib.contextmanager
def native_stderr_to_log() -> Iterator[None]:
    """While the view is on, keep C libraries (PortAudio, ALSA) from writing over it.

    File descriptor 2 goes to a pipe; a thread sends PortAudio's and ALSA's diagnostics to the
    debug log and passes every other line through to the real stderr (so a Python traceback is
    never hidden). ``sys.stderr`` itself is pointed at the real stderr.
    """
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    read_fd, write_fd = os.pipe()
    real = os.fdopen(os.dup(saved), "w", buffering=1, errors="replace")
    old_sys_stderr = sys.stderr
    os.dup2(write_fd, 2)
    os.close(write_fd)
    sys.stderr = real

    def pump() -> None:
        with os.fdopen(read_fd, "r", errors="replace") as pipe:
            for line in pipe:
                if line.startswith(("Expression '", "ALSA lib ", "PaAlsa", "Cannot connect to server")):
                    logger.debug("native: %s", line.rstrip())
                else:
                    real.write(line)

    thread = threading.Thread(target=pump, name="native-stderr", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr = old_sys_stderr
        os.dup2(saved, 2)  # closes the pipe's last writer: the pump ends
        os.close(saved)
        thread.join(timeout=1)
        real.close()
