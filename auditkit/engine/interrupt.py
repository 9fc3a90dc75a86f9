"""SIGTERM handled like Ctrl-C during a run: the finished checks are kept, nothing is left behind.

By default SIGTERM ends Python at once (exit 143): no ``finally`` runs, so the data bundle,
multiprocessing's sockets and the workers outlive the run, and the finished checks are lost.
During ``auditkit run`` SIGTERM raises :class:`Terminated` in the main thread instead, a
``KeyboardInterrupt`` subclass, so every path that already handles Ctrl-C handles it too.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from types import FrameType
from typing import Iterator


class Terminated(KeyboardInterrupt):
    """SIGTERM received during a run (a CI job cancelled, ``kill``, a container stopping)."""


def interruption(exc: BaseException) -> str:
    """How a run was interrupted, as said in each unfinished check's error."""
    return "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C"


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated`; the previous handler is restored after.

    Only the first SIGTERM raises: further ones arrive while workers are being stopped and
    temporary files removed, and an exception there would leave them behind. Outside the main
    thread (a library caller) signals cannot be handled, and nothing is changed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal raised
        if raised:
            return
        raised = True
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
