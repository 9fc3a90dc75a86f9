"""Worker memory benchmark: peak memory of `auditkit run` summed over the parent and its workers.

Writes a synthetic CSV (default 2,000,000 rows x 20 numeric columns, no `sample`), audits it in
predictions mode (recorded scores: no model to load) and samples the whole process tree every
0.1 s: the parent, the forkserver and the workers. Two batteries:

- light: one accuracy check per worker, so that every worker loads the data while the checks
  themselves need little memory: what a worker's copy of the data costs;
- integrity+perf: data_integrity (reads every column, and needs several times the data's size
  for itself) and performance (roc_auc on every row).

Prints, for 1 and 2 workers, the peak of the summed PSS (proportional set size: a page shared
by n processes counts 1/n in each, so memory-mapped data shared by the workers counts once;
from /proc/<pid>/smaps_rollup) and of the summed RSS (shared pages counted in every process),
the parent's own peak PSS, and the peak of the PSS summed over everything else (forkserver,
workers, multiprocessing's resource tracker).

Run: .venv/bin/python benchmarks/worker_memory.py [--rows N] [--columns N] [--src DIR]
     (--src: run the auditkit found in DIR instead, e.g. an export of an older commit, to
     compare: git archive <commit> auditkit | tar -x -C /tmp/before; --src /tmp/before)
Linux only (reads /proc).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def write_data(path: Path, rows: int, columns: int, seed: int = 0) -> None:
    """Numeric features, a score and a binary label; written in chunks to keep this script small."""
    rng = np.random.default_rng(seed)
    chunk = 250_000
    with open(path, "w") as handle:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            frame = pd.DataFrame(rng.normal(size=(n, columns)).round(4), columns=[f"x{i}" for i in range(columns)])
            frame["score"] = rng.random(n).round(4)
            frame["label"] = (rng.random(n) < frame["score"]).astype(int)
            frame.to_csv(handle, index=False, header=start == 0)


BATTERIES = {
    "light": lambda workers: [{"id": f"accuracy-{i}", "type": "performance",
                               "params": {"metrics": ["accuracy"], "bootstrap": 0}} for i in range(workers)],
    "integrity+perf": lambda workers: [
        {"id": "integrity", "type": "data_integrity"},
        {"id": "perf", "type": "performance", "params": {"metrics": ["roc_auc"], "bootstrap": 0}}],
}


def write_policy(directory: Path, data: Path, battery: str, workers: int) -> Path:
    policy = {
        "version": 1, "name": "worker memory benchmark",
        "model": {"format": "predictions", "score_column": "score", "threshold": 0.5},
        "data": {"path": str(data), "target": "label"},
        "checks": BATTERIES[battery](workers),
        "report": {"formats": ["json"], "output_dir": str(directory / "out")},
    }
    path = directory / f"policy-{battery}-{workers}.yaml"
    path.write_text(json.dumps(policy))
    return path


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    parent = int(handle.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = [root], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _memory_kb(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of a process in kB; (0, 0) once it is gone."""
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
    except (OSError, ValueError):
        pass
    return pss, rss


def measure(policy: Path, workers: int, src: Path | None) -> dict[str, float]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")])
    started = time.perf_counter()
    # cwd: `python -m` puts the working directory first on sys.path, before PYTHONPATH (--src)
    process = subprocess.Popen([sys.executable, "-m", "auditkit", "run", str(policy), "--workers", str(workers)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                               cwd=policy.parent)
    peak_pss = peak_rss = peak_parent = peak_workers = 0
    while process.poll() is None:
        sizes = {pid: _memory_kb(pid) for pid in _tree(process.pid)}
        peak_pss = max(peak_pss, sum(p for p, _ in sizes.values()))
        peak_rss = max(peak_rss, sum(r for _, r in sizes.values()))
        parent = sizes.pop(process.pid, (0, 0))[0]
        peak_parent = max(peak_parent, parent)
        peak_workers = max(peak_workers, sum(p for p, _ in sizes.values()))  # forkserver, workers, tracker
        time.sleep(0.1)
    wall = time.perf_counter() - started
    if process.returncode not in (0, 1):
        raise SystemExit(f"auditkit exited {process.returncode}: {process.stderr.read() if process.stderr else ''}")
    return {"pss_mb": peak_pss / 1024, "rss_mb": peak_rss / 1024, "parent_mb": peak_parent / 1024,
            "workers_mb": peak_workers / 1024, "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--src", type=Path, default=None, help="directory holding the auditkit package to run")
    args = parser.parse_args()
    if not Path("/proc/self/smaps_rollup").exists():
        raise SystemExit("needs Linux's /proc/<pid>/smaps_rollup")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        data = directory / "big.csv"
        write_data(data, args.rows, args.columns)
        size = data.stat().st_size / 2 ** 20
        print(f"{args.rows:,} rows x {args.columns} numeric columns ({size:,.0f} MB CSV, "
              f"{args.rows * (args.columns + 2) * 8 / 2 ** 20:,.0f} MB in memory); auditkit from {args.src or ROOT}")
        print(f"{'battery':<15} {'workers':>7} {'peak PSS sum MB':>15} {'peak RSS sum MB':>15} {'parent PSS MB':>13} "
              f"{'workers PSS MB':>14} {'wall s':>7}")
        for battery in BATTERIES:
            for workers in (1, 2):
                figures = measure(write_policy(directory, data, battery, workers), workers, args.src)
                print(f"{battery:<15} {workers:>7} {figures['pss_mb']:>15,.0f} {figures['rss_mb']:>15,.0f} "
                      f"{figures['parent_mb']:>13,.0f} {figures['workers_mb']:>14,.0f} {figures['wall_s']:>7.1f}", flush=True)


if __name__ == "__main__":
    main()
