"""SIGTERM, SIGKILL and temporary files: a run leaves no process and no file behind (#13, item 7).

The runs are real `python -m auditkit run` processes with their own TMPDIR, so that every
temporary file they make (the data bundle, multiprocessing's socket, the workers' log) can be
seen, and their process trees are read from /proc.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests_support import ENGINE_TESTS, register_faulty_checks

from support import credit_policy, write_policy

from auditkit.engine.rundir import process_alive, remove_stale_run_directories

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads process trees from /proc")


@pytest.fixture(autouse=True)
def faulty() -> None:
    register_faulty_checks()


@pytest.fixture
def run_tmp() -> Iterator[Path]:
    """The run's TMPDIR: short, because pytest's tmp_path can be too long to hold multiprocessing's
    socket (an AF_UNIX path has at most 107 bytes), which then stays out of the run's directory."""
    path = Path(tempfile.mkdtemp(prefix="ak-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _env(tmpdir: Path) -> dict[str, str]:
    return {**os.environ, "AUDITKIT_PLUGINS": "faulty_checks", "TMPDIR": str(tmpdir), "COLUMNS": "120",
            "PYTHONPATH": os.pathsep.join([str(ENGINE_TESTS), os.environ.get("PYTHONPATH", "")])}


def _start(policy: Path, tmpdir: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "auditkit", *args, "run", str(policy), "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(tmpdir))


def _wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                parent = int(handle.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(parent, []).append(int(entry))
    return tree


def _descendants(pid: int) -> set[int]:
    tree, found, todo = _children(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _workers_started(main: int, count: int) -> Callable[[], bool]:
    """True once the forkserver of ``main`` has forked ``count`` workers."""
    def started() -> bool:
        servers = [p for p in _descendants(main) if "multiprocessing.forkserver" in _cmdline(p)]
        return any(len(_descendants(server)) >= count for server in servers)
    return started


def _alive(pids: set[int]) -> set[int]:
    return {pid for pid in pids if process_alive(pid)}


def _leftovers(tmpdir: Path) -> list[str]:
    return sorted(p.name for p in tmpdir.iterdir())


def _slow_policy(samples: Path, tmp_path: Path, out_dir: Path) -> Path:
    """A quick check, and one that sleeps 2 minutes after writing its worker's pid to slow.pid."""
    return write_policy(tmp_path, credit_policy(samples, out_dir, checks=[
        {"id": "quick", "type": "test_random_draws"},
        {"id": "slow", "type": "test_sleeps", "params": {"seconds": 120, "pid_file": str(tmp_path / "slow.pid")}}]))


@pytest.mark.slow
def test_sigterm_keeps_finished_checks_and_leaves_no_process_or_temporary_file(samples, tmp_path, run_tmp):
    out_dir, tmpdir = tmp_path / "out", run_tmp
    policy = _slow_policy(samples, tmp_path, out_dir)
    process = _start(policy, tmpdir)
    assert process.stdout is not None
    seen = []
    for line in process.stdout:  # the quick check has finished (its result reached the parent)
        seen.append(line)
        if "quick" in line and "done" in line:
            break
    _wait_until(lambda: (tmp_path / "slow.pid").exists(), 60, "the slow check to start")
    family = _descendants(process.pid)
    worker = int((tmp_path / "slow.pid").read_text())
    assert worker in family and any("forkserver" in _cmdline(p) for p in family), family

    process.send_signal(signal.SIGTERM)
    rest, errors = process.communicate(timeout=60)

    output = "".join(seen) + rest + errors
    assert process.returncode == 3, output
    assert "Traceback" not in output
    assert "interrupted: the results of the checks that finished are in results.json" in errors
    results = json.loads((out_dir / "results.json").read_text())
    by_id = {c["id"]: c for c in results["checks"]}
    assert results["interrupted"] is True
    assert by_id["quick"]["status"] == "info" and by_id["quick"]["metrics"]["mean_draw"]["value"] is not None
    assert by_id["slow"]["status"] == "error"
    assert by_id["slow"]["error"] == "interrupted (SIGTERM) before the check finished"
    assert _leftovers(tmpdir) == []  # no bundle, no multiprocessing socket or pymp-* directory, no log
    _wait_until(lambda: not _alive(family), 10, f"the run's processes {_alive(family)} to end")


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_while_loading_writes_nothing_and_leaves_nothing(samples, tmp_path, run_tmp, signum):
    out_dir, tmpdir = tmp_path / "out", run_tmp
    policy = write_policy(tmp_path, credit_policy(samples, out_dir, checks=[
        {"id": "slow-to-validate", "type": "test_slow_to_validate", "params": {"seconds": 120}},
        {"id": "quick", "type": "test_random_draws"}]))
    process = _start(policy, tmpdir)
    # the workers are up while the parent is still loading (its params check sleeps)
    _wait_until(_workers_started(process.pid, 2), 60, "the workers to start")
    family = _descendants(process.pid)

    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)

    assert process.returncode == 3, stdout + stderr
    assert stderr.strip() == "interrupted before any check ran: nothing was written"
    assert "Traceback" not in stdout + stderr
    assert not out_dir.exists()
    assert _leftovers(tmpdir) == []
    _wait_until(lambda: not _alive(family), 10, f"the run's processes {_alive(family)} to end")


@pytest.mark.slow
def test_workers_exit_when_the_parent_is_killed_and_the_next_run_removes_its_files(samples, tmp_path, run_tmp):
    out_dir, tmpdir = tmp_path / "out", run_tmp
    process = _start(_slow_policy(samples, tmp_path, out_dir), tmpdir)
    _wait_until(lambda: (tmp_path / "slow.pid").exists(), 60, "the slow check to start")
    family = _descendants(process.pid)
    assert int((tmp_path / "slow.pid").read_text()) in family

    process.kill()
    process.communicate(timeout=30)
    killed_at = time.monotonic()
    _wait_until(lambda: not _alive(family), 5, f"the orphaned processes {_alive(family)} to end")
    assert time.monotonic() - killed_at < 5
    left = _leftovers(tmpdir)
    assert left and all(name.startswith(f"auditkit-{process.pid}-") for name in left), left  # SIGKILL: no cleanup

    quick = write_policy(tmp_path, credit_policy(samples, tmp_path / "out2", checks=[
        {"id": "quick", "type": "test_random_draws"}]), name="quick.yaml")
    completed = subprocess.run([sys.executable, "-m", "auditkit", "run", str(quick), "--workers", "1"],
                               capture_output=True, text=True, env=_env(tmpdir), timeout=120)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert _leftovers(tmpdir) == []  # the dead run's directory went with the next run's own


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_next_run_removes_stale_directories_of_dead_runs_only(samples, tmp_path, run_tmp):
    tmpdir = run_tmp
    dead = tmpdir / f"auditkit-{_dead_pid()}-abcd1234"
    live = tmpdir / f"auditkit-{os.getpid()}-abcd1234"
    not_ours = [tmpdir / "auditkit-abcd1234", tmpdir / f"auditkit-{_dead_pid()}-x", tmpdir / "pymp-abcd1234"]
    for directory in (dead, live, *not_ours):
        directory.mkdir()
        (directory / "audit-data.pkl").write_bytes(b"x")
    policy = write_policy(tmp_path, credit_policy(samples, tmp_path / "out", checks=[
        {"id": "quick", "type": "test_random_draws"}]))
    completed = subprocess.run([sys.executable, "-m", "auditkit", "run", str(policy), "--workers", "1"],
                               capture_output=True, text=True, env=_env(tmpdir), timeout=120)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert not dead.exists()
    assert live.exists() and (live / "audit-data.pkl").exists()
    assert all(directory.exists() for directory in not_ours)
    assert _leftovers(tmpdir) == sorted(p.name for p in (live, *not_ours))  # the run's own directory is gone


def test_a_directory_whose_pid_now_belongs_to_a_later_process_is_stale(tmp_path):
    reused = tmp_path / f"auditkit-{os.getpid()}-abcd1234"  # this test's pid, "reused" by this process
    reused.mkdir()
    an_hour_ago = time.time() - 3600  # before this process started (pytest started a moment ago)
    os.utime(reused, (an_hour_ago, an_hour_ago))
    fresh = tmp_path / f"auditkit-{os.getpid()}-efgh5678"
    fresh.mkdir()
    assert remove_stale_run_directories(tmp_path) == [reused]
    assert fresh.exists()


def test_sigterm_raises_terminated_only_inside_the_block_and_the_previous_handler_comes_back():
    from auditkit.engine.interrupt import Terminated, interruption, sigterm_as_interrupt

    received: list[int] = []

    def previous(signum, frame):
        received.append(signum)

    saved = signal.signal(signal.SIGTERM, previous)
    try:
        with pytest.raises(Terminated) as caught:
            with sigterm_as_interrupt():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)  # the handler raises here, in the main thread
        assert isinstance(caught.value, KeyboardInterrupt)  # so every Ctrl-C path handles it
        assert interruption(caught.value) == "SIGTERM" and interruption(KeyboardInterrupt()) == "Ctrl-C"
        assert signal.getsignal(signal.SIGTERM) is previous
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.1)
        assert received == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, saved)


def test_a_second_sigterm_while_stopping_does_not_interrupt_the_cleanup():
    from auditkit.engine.interrupt import Terminated, sigterm_as_interrupt

    cleaned = False
    with pytest.raises(Terminated):
        with sigterm_as_interrupt():
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)
            finally:
                os.kill(os.getpid(), signal.SIGTERM)  # a second one, while workers are being stopped
                time.sleep(0.2)
                cleaned = True
    assert cleaned


# ---------------------------------------------------------------- worker stderr (item 11)


def test_worker_output_reaches_the_terminal_only_with_debug(samples, tmp_path, run_tmp):
    from faulty_checks import STRAY_MARKER

    tmpdir = run_tmp
    policy = write_policy(tmp_path, credit_policy(samples, tmp_path / "out", checks=[
        {"id": "noisy", "type": "test_writes_stderr"}]))
    runs = {}
    for flags in ([], ["--debug"]):
        runs[bool(flags)] = subprocess.run([sys.executable, "-m", "auditkit", *flags, "run", str(policy), "--workers", "1"],
                                           capture_output=True, text=True, env=_env(tmpdir), timeout=120)
    quiet, debug = runs[False], runs[True]
    assert quiet.returncode == 0 and debug.returncode == 0, quiet.stderr + debug.stderr
    assert STRAY_MARKER not in quiet.stdout + quiet.stderr
    assert f"{STRAY_MARKER} from sys.stderr" in debug.stderr and f"{STRAY_MARKER} from fd 2" in debug.stderr
    assert _leftovers(tmpdir) == []


def test_a_process_the_forkserver_starts_outside_the_pool_writes_to_the_run_log(tmp_path, capfd):
    """What multiprocessing prints in a new worker before our code runs in it (the SemLock
    traceback of a replacement worker started while the pool shuts down) goes to the log."""
    import multiprocessing

    import faulty_checks

    from auditkit.engine.executors import WORKER_LOG_NAME, LocalExecutor

    executor = LocalExecutor(1, workdir=tmp_path)
    try:
        executor._ready(1)  # the pool, and so its forkserver, are up
        child = multiprocessing.get_context("forkserver").Process(target=faulty_checks.raise_in_child)
        child.start()
        child.join(30)
        assert child.exitcode == 1
    finally:
        executor.close()
    captured = capfd.readouterr()
    assert faulty_checks.STRAY_MARKER not in captured.err + captured.out
    log = (tmp_path / WORKER_LOG_NAME).read_text()
    assert f"RuntimeError: {faulty_checks.STRAY_MARKER}" in log
    assert not list(tmp_path.glob("listener-*"))  # the forkserver's socket went with the forkserver
