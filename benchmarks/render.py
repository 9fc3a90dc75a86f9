"""Render benchmark: the demo's results.json drawn as report.html and report.pdf.

Runs ``auditkit report <results.json> --format html,pdf`` (the code path of the CLI, the same
``write_reports`` that ``auditkit run`` ends with) in a fresh subprocess, several times, and
prints for each run the wall time and the subprocess's peak resident memory
(``resource.getrusage(RUSAGE_CHILDREN)``: the largest child's maximum RSS). Then, in one more
subprocess each, HTML alone and PDF alone, so the two costs can be told apart. Last, the
page count of the PDF and its size.

Targets of issue #14: HTML + PDF together within 10 s on 2 cores, PDF within 400 MB peak.

Run: .venv/bin/python benchmarks/render.py [--results reports/credit_scoring/results.json]
     [--repeat 3] [--src DIR]
     (--src: the auditkit found in DIR instead, e.g. an export of an older commit, to compare:
     mkdir /tmp/before && git archive <commit> auditkit templates | tar -x -C /tmp/before;
     --src /tmp/before. Run it from a virtualenv without an editable install of auditkit: an
     editable install maps auditkit.templates to its own tree, and the older code would draw
     the newer templates. An older auditkit may also refuse a newer results.json.)
The results file defaults to the demo's (``make audit`` writes it); without it the script says
how to make it and exits 2.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO_RESULTS = ROOT / "reports" / "credit_scoring" / "results.json"


def render_once(results: Path, formats: str, out_dir: Path, src: Path | None) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system, all its processes) and peak RSS (MB) of one
    ``auditkit report`` in a fresh interpreter."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src) + os.pathsep + env.get("PYTHONPATH", "")
    command = [sys.executable, "-c", "from auditkit.cli import main; main()", "report", str(results),
               "--format", formats, "--out", str(out_dir)]
    # A fresh child per call: RUSAGE_CHILDREN's ru_maxrss is the largest of all children
    # waited for so far, so each measurement runs in its own grandchild process.
    probe = [sys.executable, "-c",
             "import resource, subprocess, sys, time\n"
             "t = time.perf_counter()\n"
             "code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
             "wall = time.perf_counter() - t\n"
             "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
             "print(code, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)\n", *command]
    done = subprocess.run(probe, env=env, capture_output=True, text=True, check=True)
    code, wall, cpu, peak_kb = done.stdout.split()
    if code not in ("0", "1"):
        raise SystemExit(f"auditkit report exited {code}: {done.stderr.strip()}")
    return float(wall), float(cpu), int(peak_kb) / 1024  # Linux: ru_maxrss in kB


def page_count(pdf: Path) -> str:
    try:
        import pypdf
    except ImportError:
        return "(pypdf not installed)"
    return str(len(pypdf.PdfReader(pdf).pages))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=DEMO_RESULTS)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--src", type=Path, default=None)
    args = parser.parse_args()
    if not args.results.is_file():
        print(f"{args.results} not found: run `make audit` first (it writes the demo's results.json)")
        return 2
    print(f"render benchmark: {args.results} ({args.results.stat().st_size / 1e6:.2f} MB), "
          f"{os.cpu_count()} cores{'' if args.src is None else f', auditkit from {args.src}'}")
    print(f"load average {os.getloadavg()[0]:.1f}: on a busy machine wall time overstates, CPU time does not")
    print(f"{'formats':<10} {'run':>4} {'wall s':>8} {'cpu s':>8} {'peak MB':>9}")
    with tempfile.TemporaryDirectory(prefix="auditkit-render-bench-") as tmp:
        out = Path(tmp)
        walls = []
        for i in range(args.repeat):
            wall, cpu, peak = render_once(args.results, "html,pdf", out, args.src)
            walls.append(wall)
            print(f"{'html,pdf':<10} {i + 1:>4} {wall:>8.2f} {cpu:>8.2f} {peak:>9.0f}")
        for formats in ("html", "pdf"):
            wall, cpu, peak = render_once(args.results, formats, out / formats, args.src)
            print(f"{formats:<10} {1:>4} {wall:>8.2f} {cpu:>8.2f} {peak:>9.0f}")
        pdf = out / "pdf" / "report.pdf"
        html = out / "html" / "report.html"
        print(f"html+pdf best of {args.repeat}: {min(walls):.2f} s (target 10 s); "
              f"report.html {html.stat().st_size / 1e6:.2f} MB; "
              f"report.pdf {pdf.stat().st_size / 1e6:.2f} MB, {page_count(pdf)} pages")
        shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
