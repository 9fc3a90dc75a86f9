"""Per-check memory limits, enforced inside the worker that runs the check.

A check may grow its worker's memory by ``memory_mb`` (the policy's per-check key, else the
default below). Two guards, both relative to the worker's state when the check starts (the
shared data and the model are loaded before, so they do not count):

- the address space (``RLIMIT_AS``) may grow by ``memory_mb`` plus :data:`ADDRESS_SLACK_MB`:
  one allocation far past the limit fails at once with ``MemoryError`` instead of pushing
  the machine into swap or the OOM killer. The slack covers address space that is reserved
  but not used: shared libraries a check imports (scikit-learn and scipy map ~200 MB, shap
  ~250 MB more), thread stacks, allocator arenas.
- a watchdog thread reads the worker's private resident memory (``/proc/self/statm``:
  resident minus file-backed pages, so the memory-mapped audit data a check reads does not
  count) every :data:`WATCH_INTERVAL_S` and ends the process with :data:`MEMORY_EXIT_CODE`
  once it exceeds ``memory_mb``; the parent turns that exit code into the check's error.

Either way the check ends as ``error: exceeded its memory limit of N MB``; the others go on.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import contextmanager
from typing import Callable, Final, Iterator

MIN_MEMORY_MB: Final = 64
# The default limit per check: 75% of the memory this machine (or its cgroup) offers, shared
# by the workers that run at once; the remaining quarter is left to the parent (which holds
# the audit data), the page cache and everything else on the machine.
DEFAULT_MEMORY_SHARE: Final = 0.75
ADDRESS_SLACK_MB: Final = 1024
WATCH_INTERVAL_S: Final = 0.05
# A worker that outgrew its check's memory limit exits with this code (an unusual one, so the
# parent can tell it from a check's own os._exit)
MEMORY_EXIT_CODE: Final = 86
_MB: Final = 1024 * 1024


def memory_message(memory_mb: int) -> str:
    """The error of a check that outgrew its limit."""
    return f"exceeded its memory limit of {memory_mb} MB (memory_mb)"


def usable_memory_mb() -> int | None:
    """Physical memory, or the cgroup's memory limit where it is lower (a container)."""
    sizes = []
    try:
        sizes.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // _MB)
    except (ValueError, OSError, AttributeError):
        pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as handle:
                text = handle.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:  # "max", or v1's "unlimited" 2**63 - page
            sizes.append(int(text) // _MB)
    return min(sizes) if sizes else None


def default_memory_mb(workers: int) -> int:
    """``DEFAULT_MEMORY_SHARE`` x usable memory / workers running at once (at least the minimum).

    Without a known machine size (no sysconf, no cgroup) 4096 MB per check.
    """
    usable = usable_memory_mb()
    if usable is None:
        return 4096
    return max(MIN_MEMORY_MB, int(DEFAULT_MEMORY_SHARE * usable / max(1, workers)))


def _statm() -> tuple[int, int]:
    """(address space, private resident memory) of this process, in bytes."""
    with open("/proc/self/statm", "rb") as handle:
        fields = handle.read().split()
    page = os.sysconf("SC_PAGE_SIZE")
    return int(fields[0]) * page, (int(fields[1]) - int(fields[2])) * page


class _Watchdog:
    """One thread per worker; it acts only while a check with a limit runs."""

    def __init__(self) -> None:
        self.ceiling: int | None = None  # private resident bytes allowed, None while idle
        self.thread: threading.Thread | None = None

    def ensure_running(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._watch, name="auditkit-memory-watchdog", daemon=True)
            self.thread.start()

    def _watch(self) -> None:
        while True:
            time.sleep(WATCH_INTERVAL_S)
            ceiling = self.ceiling
            if ceiling is None:
                continue
            try:
                _, private = _statm()
            except (OSError, ValueError, IndexError, MemoryError):
                continue
            if private > ceiling:
                # no Python cleanup: the process is past its budget and must go now
                os._exit(MEMORY_EXIT_CODE)


_WATCHDOG = _Watchdog()


@contextmanager
def memory_limit(memory_mb: int | None) -> Iterator[None]:
    """Hold the code in the block to ``memory_mb`` of growth (see the module docstring).

    Where ``/proc`` or ``resource`` are missing (not Linux) the limit is not enforced.
    """
    if not memory_mb or not sys.platform.startswith("linux"):
        yield
        return
    try:
        address, private = _statm()
    except (OSError, ValueError, IndexError):
        yield
        return
    budget = memory_mb * _MB
    restore = _limit_address_space(address + budget + ADDRESS_SLACK_MB * _MB)
    _WATCHDOG.ensure_running()
    _WATCHDOG.ceiling = private + budget
    try:
        yield
    finally:
        _WATCHDOG.ceiling = None
        restore()


def _limit_address_space(limit: int) -> Callable[[], None]:
    """Lower the soft RLIMIT_AS to ``limit`` (never raise it); return how to restore it."""
    try:
        import resource
    except ImportError:
        return lambda: None
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    wanted = limit if soft == resource.RLIM_INFINITY else min(soft, limit)
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))
    except (ValueError, OSError):
        return lambda: None

    def restore() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))

    return restore
