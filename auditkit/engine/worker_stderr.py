"""Worker output goes to a log file in the run's directory, not to the user's terminal.

Workers inherit their stderr from the forkserver that forks them, and a worker can print
before any of our code runs in it: a replacement worker forked while the pool shuts down
fails to unpickle the pool's semaphores (already unlinked) and prints that traceback from
multiprocessing's bootstrap. So the forkserver itself redirects its stderr, on importing this
module first among its preloads: the parent names the file in :data:`ENV_VAR` while it starts
the forkserver (``<parent pid>:<path>``; the parent never redirects itself). ``--debug``
leaves the variable unset, and workers write to the terminal.
"""
from __future__ import annotations

import os
import sys

ENV_VAR = "AUDITKIT_WORKER_STDERR"


def redirect_stderr(path: str) -> None:
    """Send this process's fd 2 (Python tracebacks, warnings, native libraries) to ``path``."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError:
        return
    try:
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass
    os.dup2(fd, 2)
    os.close(fd)


def _redirect_from_environment() -> None:
    owner, _, path = os.environ.get(ENV_VAR, "").partition(":")
    if path and owner.isdigit() and int(owner) != os.getpid():
        redirect_stderr(path)


_redirect_from_environment()
