"""Ctrl-C and SIGTERM: the first stops cleanly (files flushed and closed), the second at once."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable

logger = logging.getLogger(__name__)

FORCED_EXIT = 130


def install_stop_handlers(stop: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    received = 0

    def on_signal(signum: int) -> None:
        nonlocal received
        received += 1
        if received == 1:
            print(f"voxloop: {signal.Signals(signum).name}: stopping (again to force)", file=sys.stderr, flush=True)
            stop()
        else:
            # Everything written so far is already flushed (turn log per turn, wav per block).
            os._exit(FORCED_EXIT)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
