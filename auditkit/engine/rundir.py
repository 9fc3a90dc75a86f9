"""One temporary directory per run, named after its owner, removed at the end of every run.

It holds everything temporary a run makes: the data bundle the workers read (several GB on a
large input), multiprocessing's forkserver socket and the workers' stderr log. A run killed
with SIGKILL cannot remove it; its name, ``auditkit-<pid>-<random>``, lets the next run see
that the owner is dead and remove it.
"""
from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

PREFIX = "auditkit-"
# tempfile.mkdtemp's random part is 8 characters of [a-z0-9_]; only names of this shape are ours
_NAME = re.compile(r"^auditkit-(?P<pid>[0-9]+)-[a-z0-9_]{8}$")


def create_run_directory() -> Path:
    """A fresh private (0700) directory for this run, after removing those of dead runs."""
    remove_stale_run_directories()
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))


def remove_run_directory(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


def remove_stale_run_directories(root: Path | None = None) -> list[Path]:
    """Remove run directories whose owner process is dead; return them.

    Only directories named like ours and owned by this user are considered; one whose owner
    pid is alive (or cannot be checked) is kept, so concurrent runs never lose their files.
    """
    base = Path(root) if root is not None else Path(tempfile.gettempdir())
    removed: list[Path] = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    uid = os.getuid() if hasattr(os, "getuid") else None
    for entry in entries:
        match = _NAME.match(entry.name)
        if match is None:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or (uid is not None and info.st_uid != uid):
            continue
        if owner_alive(int(match.group("pid")), created_at=info.st_mtime):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(Path(entry.path))
    return removed


def owner_alive(pid: int, *, created_at: float) -> bool:
    """Whether the run that made a directory at ``created_at`` may still be running as ``pid``.

    A live process with that pid that started after the directory was made is another
    process that reused the pid: the owner is gone.
    """
    if not process_alive(pid):
        return False
    started = process_start_time(pid)
    return started is None or started <= created_at + 1.0  # 1 s: the boot time is in whole seconds


def process_start_time(pid: int) -> float | None:
    """When a process started (seconds since the epoch), from /proc; None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            ticks = int(handle.read().rsplit(b")", 1)[1].split()[19])
        with open("/proc/stat", "rb") as handle:
            boot = next(int(line.split()[1]) for line in handle if line.startswith(b"btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def process_alive(pid: int) -> bool:
    """True unless the process is certainly gone (a zombie counts as gone: it runs no more)."""
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process: alive, and not ours to judge
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            state = handle.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return True
