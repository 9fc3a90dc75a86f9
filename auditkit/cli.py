"""The command line: the only module that prints or exits.

Exit codes (DESIGN.md): 0 every check passed (warnings allowed unless --fail-on warn),
1 a check failed its thresholds, 2 the policy or an input is invalid (nothing was run),
3 a check could not complete (error/timeout) and none failed.
"""
from __future__ import annotations

import json
import shlex
import sys
import time
import traceback
from enum import IntEnum
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from auditkit.terminal import SafeConsole
from auditkit.terminal import safe_text as Text  # every text printed comes from inputs: escape controls

from auditkit import __version__
from auditkit.errors import AuditkitError, UserError


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    INVALID = 2
    INCOMPLETE = 3


STATUS_STYLE = {"pass": "green", "info": "blue", "warn": "yellow", "fail": "bold red", "error": "magenta", "skipped": "dim",
                "queued": "dim", "running": "cyan"}

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Audit a trained model against a YAML policy: explanations, fairness, robustness, "
                       "performance and data checks, with reports for engineers, CI and regulators.")
# Off a terminal (CI logs, pipes) long messages and paths stay on one line rather than being cut
out = SafeConsole(highlight=False, soft_wrap=not sys.stdout.isatty())
# soft_wrap: an error message stays one line (no hard wrap at 80 columns off a TTY), so a path is never split
err = SafeConsole(stderr=True, highlight=False, soft_wrap=True)
_state = {"debug": False}


def _fail(exc: BaseException) -> None:
    """One clear message (a traceback only with --debug), then the exit code the error means."""
    if _state["debug"]:
        err.print(Text("".join(traceback.format_exception(exc))))
    if isinstance(exc, UserError):
        err.print(Text("error: ", style="bold red") + Text(str(exc)))
        raise typer.Exit(ExitCode.INVALID)
    err.print(Text("internal error: ", style="bold red") + Text(f"{type(exc).__name__}: {exc}"))
    if not _state["debug"]:
        err.print("run again with --debug for the traceback")
    raise typer.Exit(ExitCode.INCOMPLETE)


def _print_policy_warnings(loaded: Any) -> None:
    for warning in loaded.warnings:
        err.print(Text("warning: ", style="bold yellow") + Text(warning))


def _guard(func: Callable[[], Any]) -> Any:
    try:
        return func()
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        err.print("interrupted before any check ran: nothing was written")
        raise typer.Exit(ExitCode.INCOMPLETE) from None
    except AuditkitError as exc:
        _fail(exc)
    except Exception as exc:  # a bug of ours: still one line unless --debug
        _fail(exc)


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
          version: bool = typer.Option(False, "--version", help="Print the version and exit.")) -> None:
    _state["debug"] = debug  # set afresh on every invocation (in-process runners reuse this module)
    if version:
        out.print(f"auditkit {__version__}")
        raise typer.Exit(0)


def _shown(path: Path) -> str:
    """A path as short as it can be said: relative to the working directory when inside it."""
    resolved = Path(path).resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(resolved)


def _split(values: Optional[list[str]]) -> list[str]:
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


# ---------------------------------------------------------------------------- run


class Progress:
    """Live view: one line per check with its status and elapsed time (plain lines off a TTY)."""

    def __init__(self, check_ids: list[str], types: dict[str, str], console: Console):
        self.console = console
        self.ids = check_ids
        self.types = types
        self.state = {cid: "queued" for cid in check_ids}
        self.started: dict[str, float] = {}
        self.elapsed: dict[str, float] = {}
        self.live: Live | None = None

    def table(self) -> Table:
        table = Table(box=None, show_header=True, header_style="bold", pad_edge=False, expand=False)
        table.add_column("check", overflow="ellipsis", max_width=34, no_wrap=True)
        table.add_column("type", style="dim", overflow="ellipsis", max_width=22, no_wrap=True)
        table.add_column("status", width=8)
        table.add_column("elapsed", justify="right", width=8)
        now = time.time()
        for cid in self.ids:
            status = self.state[cid]
            seconds = self.elapsed.get(cid, now - self.started[cid] if cid in self.started else None)
            table.add_row(Text(cid), Text(self.types[cid]), Text(status, style=STATUS_STYLE.get(status, "")),
                          f"{seconds:.1f}s" if seconds is not None else "")
        return table

    def __enter__(self) -> "Progress":
        if self.console.is_terminal:
            self.live = Live(self.table(), console=self.console, refresh_per_second=8, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.update(self.table())
            self.live.__exit__(*exc)

    def on_event(self, event: Any) -> None:
        if event.kind == "started":
            self.state[event.check_id] = "running"
            self.started[event.check_id] = event.at
        elif event.kind == "finished":
            outcome = event.outcome
            self.state[event.check_id] = "done" if outcome is not None and outcome.error is None else "error"
            self.elapsed[event.check_id] = outcome.duration_s if outcome is not None else 0.0
            if self.live is None:
                state = self.state[event.check_id]
                self.console.print(Text(f"  {state:<7} ", style=STATUS_STYLE.get(state, "")) +
                                   Text(f"{event.check_id} ({self.types[event.check_id]})  "
                                        f"{self.elapsed[event.check_id]:.1f}s"))
        if self.live is not None:
            self.live.update(self.table())

    def finalize(self, results: dict[str, Any]) -> None:
        for check in results["checks"]:
            self.state[check["id"]] = check["status"]
            self.elapsed[check["id"]] = check["duration_s"]
        if self.live is not None:
            self.live.update(self.table())


class WritingProgress:
    """One line per report file while it is written: ``writing report.pdf … done (12.3 s)``.

    The PDF takes the longest (tens of seconds for a large audit); the line is printed when the
    file starts, so the terminal never sits silent, and finished when it is staged.
    """

    def __init__(self, console: Console) -> None:
        self.console = console

    def __call__(self, name: str, seconds: float | None, ok: bool = True) -> None:
        if seconds is None:
            self.console.print(Text(f"writing {name} …", style="dim"), end="")
            self.console.file.flush()
        elif ok:
            self.console.print(Text(f" done ({seconds:.1f} s)", style="dim"))
        else:
            self.console.print(Text(f" not written ({seconds:.1f} s; see below)", style="yellow"))


def _key_figures(check: dict[str, Any], limit: int = 2) -> str:
    if check["status"] == "error" and check.get("error"):
        return check["error"]
    if check["status"] == "skipped":
        return (check.get("notes") or [""])[0]
    findings = sorted(check["findings"], key=lambda f: {"fail": 0, "error": 1, "warn": 2, "pass": 3}[f["status"]])
    if findings:
        return "; ".join(f["message"] for f in findings[:limit]) + (f" (+{len(findings) - limit})" if len(findings) > limit else "")
    parts = []
    for name, metric in list(check["metrics"].items())[:limit]:
        value = metric.get("value")
        parts.append(f"{name} = {value:.4g}" if isinstance(value, (int, float)) else f"{name} = -")
    return "; ".join(parts)


def _exit_after_writing(code: int, outcomes: dict[str, Any]) -> int:
    """A requested report not written makes a passing run incomplete (3); a failure (1) stands."""
    if code == ExitCode.OK and any(not outcome.ok for outcome in outcomes.values()):
        return ExitCode.INCOMPLETE
    return code


def _print_unwritten(outcomes: dict[str, Any]) -> None:
    for outcome in outcomes.values():
        if outcome.error:
            err.print(Text("error: ", style="bold red") + Text(outcome.error))


def print_summary(results: dict[str, Any], console: Console, *, exit_code: int | None = None) -> None:
    table = Table(title="Audit summary", title_justify="left", show_lines=False, expand=False)
    table.add_column("check", overflow="fold", max_width=24)
    table.add_column("status", width=7)
    table.add_column("key figures", overflow="fold", max_width=44)
    for check in results["checks"]:
        table.add_row(Text(check["id"]), Text(check["status"], style=STATUS_STYLE[check["status"]]),
                      Text(_key_figures(check)))
    console.print(table)
    counts: dict[str, int] = {}
    for check in results["checks"]:
        counts[check["status"]] = counts.get(check["status"], 0) + 1
    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    status = results["status"]
    # "INFO" alone reads like a verdict; it means that nothing was judged
    meaning = " (not assessed: no check had a threshold)" if status == "info" else ""
    console.print(Text("audit status: ", style="bold") + Text(status.upper(), style=STATUS_STYLE[status]) +
                  Text(meaning) +
                  Text(f"  ({summary}; exit code {results['exit_code'] if exit_code is None else exit_code})"))


@app.command(epilog="Example: auditkit run policies/credit_scoring.yaml --workers 2 --format html,pdf")
def run(
    policy: Path = typer.Argument(..., help="The policy YAML file."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Output directory (default: the policy's report.output_dir)."),
    formats: Optional[list[str]] = typer.Option(None, "--format", help="Comma-separated: html,pdf,json,junit,md."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Worker processes (default: one per core)."),
    executor: str = typer.Option("local", "--executor", help="local (process pool), dask (a Dask cluster; "
                                 "needs auditkit[dask]) or inline (one process, for debugging)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="With --executor dask: a Dask scheduler's "
                                            "address, e.g. tcp://10.0.0.5:8786 (default: a local cluster of "
                                            "--workers processes)."),
    only: Optional[list[str]] = typer.Option(None, "--only", help="Run only these check ids (repeat or comma-separate)."),
    fail_on: str = typer.Option("fail", "--fail-on", help="fail (default) or warn: which status makes the exit code 1."),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, help="Override the policy's seed."),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help="Unpickle a pickle/joblib model that has no sha256 pin."),
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="results.json of an earlier audit that "
                                            "max_decrease/max_increase thresholds compare with (overrides report.baseline)."),
    no_baseline: bool = typer.Option(False, "--no-baseline", help="No baseline on purpose (a first release): "
                                     "relative thresholds are recorded as not assessed."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    """Run the audit a policy declares and write its reports.

    Exit codes: 0 passed, 1 a check failed, 2 invalid input (nothing run), 3 a check could
    not complete or a requested report could not be written, and none failed.
    """
    _state["debug"] = debug or _state["debug"]
    from auditkit.engine.run import RunOptions, run_audit
    from auditkit.policy.load import load_policy
    from auditkit.policy.models import ALL_FORMATS

    def _go() -> int:
        if fail_on not in ("fail", "warn"):
            raise UserError(f"--fail-on must be fail or warn, got {fail_on!r}")
        if executor not in ("local", "dask", "inline"):
            raise UserError(f"--executor {executor!r}: unknown; choose local, dask or inline")
        if scheduler is not None and executor != "dask":
            raise UserError("--scheduler needs --executor dask")
        if executor == "dask":
            from auditkit.engine.dask_executor import dask_available

            if not dask_available():
                raise UserError("--executor dask needs the distributed package: pip install 'auditkit[dask]'")
        wanted = _split(formats)
        bad = [f for f in wanted if f not in ALL_FORMATS]
        if bad:
            raise UserError(f"--format {','.join(bad)}: unknown; choose from {', '.join(ALL_FORMATS)}")
        loaded = load_policy(policy)
        _print_policy_warnings(loaded)
        out.print(Text(f"auditkit {__version__} · {loaded.policy.name}", style="bold"))
        options = RunOptions(out=out_dir, formats=wanted or None, workers=workers, executor=executor, scheduler=scheduler,
                             only=_split(only), fail_on=fail_on, seed=seed, trust_pickle=trust_pickle,
                             command=shlex.join(["auditkit", *sys.argv[1:]]) if sys.argv else "auditkit run",
                             baseline=baseline, no_baseline=no_baseline, debug=_state["debug"])
        ids = [c.check_id for c in loaded.policy.checks if not options.only or c.check_id in options.only]
        types = {c.check_id: c.type for c in loaded.policy.checks}
        progress = Progress(ids, types, out)
        with progress:
            audit = run_audit(loaded, options, on_event=progress.on_event,
                              on_stage=lambda message: out.print(Text(message, style="dim")) if progress.live is None else None,
                              on_notice=lambda message: out.print(Text(message)))
            progress.finalize(audit.results)
        from auditkit.render import write_reports

        report_formats = list(dict.fromkeys(["json", *(options.formats or loaded.policy.report.formats)]))
        try:
            outcomes = write_reports(audit.results, audit.out_dir, report_formats, progress=WritingProgress(out))
        except KeyboardInterrupt:
            # write_reports finishes a commit it started, so the folder holds one run's whole set
            err.print(f"interrupted while writing the reports: {_shown(audit.out_dir)}/ holds one run's complete "
                      "set (its run id is in results.json)")
            raise typer.Exit(ExitCode.INCOMPLETE) from None
        for note in (audit.results.get("inputs") or {}).get("data", {}).get("notes") or []:
            out.print(Text("note: ", style="yellow") + Text(note))
        code = _exit_after_writing(audit.exit_code, outcomes)
        print_summary(audit.results, out, exit_code=code)
        _print_unwritten(outcomes)
        written = [o.path.name for o in outcomes.values() if o.path is not None]
        out.print(Text(f"reports: {_shown(audit.out_dir)}/ ({', '.join(written) or 'none written'})", style="dim"))
        if audit.results.get("interrupted"):
            where = "are in results.json" if outcomes.get("json") is not None and outcomes["json"].ok else \
                "could not be written (see above)"
            err.print(f"interrupted: the results of the checks that finished {where}")
        return code

    from auditkit.engine.interrupt import sigterm_as_interrupt

    with sigterm_as_interrupt():  # SIGTERM as Ctrl-C: finished checks kept, workers and temporary files gone
        code = _guard(_go)
    raise typer.Exit(code)


# ---------------------------------------------------------------------------- validate


@app.command(epilog="Example: auditkit validate policies/credit_scoring.yaml")
def validate(
    policy: Path = typer.Argument(..., help="The policy YAML file."),
    policy_only: bool = typer.Option(False, "--policy-only", help="Check the policy file alone; do not load the "
                                                                   "data and model."),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help="Unpickle a pickle/joblib model that has no "
                                                                     "sha256 pin."),
) -> None:
    """Check a policy and its inputs without running any check. Exit 0 or 2.

    The policy (syntax, keys, check types, params, thresholds), then the inputs as `run` would
    load them: the data and model load, every column the policy names exists, the model takes
    the data and its output has the expected shape, and the output folder is writable.
    """
    from auditkit.policy.load import load_policy

    def _go() -> None:
        loaded = load_policy(policy)
        _print_policy_warnings(loaded)
        n_checks = len(loaded.policy.checks)
        if policy_only:
            out.print(Text("valid: ", style="green") + Text(f"{policy} ({n_checks} checks; inputs not loaded)"))
            return
        from auditkit.engine.run import check_inputs

        prepared = check_inputs(loaded, trust_pickle=trust_pickle)
        data = prepared.inputs["data"]
        model = prepared.inputs["model"]
        out.print(Text("valid: ", style="green") + Text(f"{policy} ({n_checks} checks)"))
        out.print(Text(f"  data: {data['path']}: {data['rows_used']:,} rows used of {data['rows']:,}, "
                       f"{len(data['features'])} features"
                       + (f", target '{data['target']}'" if data.get("target") else "")
                       + (f", protected {', '.join(data['protected'])}" if data.get("protected") else "")))
        out.print(Text(f"  model: {model.get('kind') or model.get('format')}, task {model.get('task')}"))
        for note in data.get("notes") or []:
            out.print(Text("  note: ", style="yellow") + Text(note))

    _guard(_go)


# ---------------------------------------------------------------------------- checks


def _params_doc(check_type: Any) -> list[dict[str, Any]]:
    schema = check_type.params.model_json_schema()
    required = set(schema.get("required", []))
    fields = []
    for name, info in schema.get("properties", {}).items():
        fields.append({"name": name, "type": _type_text(info), "default": info.get("default"),
                       "required": name in required, "description": info.get("description", "")})
    return fields


def _type_text(info: dict[str, Any]) -> str:
    if "anyOf" in info:
        return " | ".join(_type_text(i) for i in info["anyOf"])
    if "enum" in info:
        return "one of " + ", ".join(map(str, info["enum"]))
    if info.get("type") == "array":
        return f"list[{_type_text(info.get('items', {}))}]"
    return str(info.get("type", "any"))


FAMILY_ORDER = ("performance", "data", "explanations", "local", "fairness", "robustness", "influence")


def catalogue_markdown(types: list[Any]) -> str:
    """The check catalogue as README.md shows it: one row per type, by family, from the
    registry (tests/cli/test_cli_checks.py fails when README.md's copy differs)."""
    def order(t: Any) -> tuple[int, str]:
        return (FAMILY_ORDER.index(t.family) if t.family in FAMILY_ORDER else len(FAMILY_ORDER), t.type)

    lines = ["| type | family | what it measures |", "| --- | --- | --- |"]
    for t in sorted(types, key=order):
        lines.append(f"| `{t.type}` | {t.family} | {t.description.replace('|', chr(92) + '|')} |")
    return "\n".join(lines) + "\n"


@app.command(name="checks", epilog="Examples: auditkit checks · auditkit checks performance · auditkit checks --json")
def checks_command(
    check_type: Optional[str] = typer.Argument(None, metavar="[TYPE]", help="Show one check type in full."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    as_markdown: bool = typer.Option(False, "--markdown", help="The catalogue as a Markdown table (README.md's)."),
) -> None:
    """List the check types, or show one with its parameters, metrics and an example."""
    from auditkit.core.registry import get_registry

    def _go() -> None:
        registry = get_registry()
        types = [registry.get(check_type)] if check_type else registry.types()
        if as_markdown:
            sys.stdout.write(catalogue_markdown(types))
            return
        records = [{"type": t.type, "family": t.family, "description": t.description, "params": _params_doc(t),
                    "metrics": list(t.metrics), "needs_model": t.needs_model, "needs_target": t.needs_target,
                    "example": {"type": t.type, **t.example}} for t in types]
        if as_json:
            sys.stdout.write(json.dumps(records, indent=2) + "\n")
            return
        if check_type is None:
            table = Table(box=None, show_header=True, header_style="bold")
            table.add_column("type")
            table.add_column("family", style="dim")
            table.add_column("what it measures", overflow="fold")
            for record in records:
                table.add_row(record["type"], record["family"], Text(record["description"]))
            out.print(table)
            out.print(Text("auditkit checks TYPE shows parameters, metrics and an example", style="dim"))
            return
        t = types[0]
        out.print(Text(f"{t.type}", style="bold") + Text(f"  ({t.family})", style="dim"))
        out.print(Text(t.documentation))  # Text, not markup: "[from, to]" and "metric[attribute]" stay
        out.print(Text("\nparameters", style="bold"))
        for field in records[0]["params"]:
            default = "required" if field["required"] else f"default {field['default']!r}"
            out.print(Text(f"  {field['name']}: {field['type']} ({default})  {field['description']}"))
        out.print(Text("\nmetrics", style="bold"))
        out.print(Text("  " + ", ".join(t.metrics)))
        out.print(Text("\nexample", style="bold"))
        from io import StringIO

        from ruamel.yaml import YAML

        buffer = StringIO()
        yaml = YAML()
        yaml.default_flow_style = None
        yaml.dump({"checks": [records[0]["example"]]}, buffer)
        out.print(Text(buffer.getvalue()))

    _guard(_go)


# ---------------------------------------------------------------------------- report


@app.command(epilog="Example: auditkit report reports/credit_scoring/results.json --format pdf")
def report(
    results_file: Path = typer.Argument(..., metavar="RESULTS.json", help="A results.json from auditkit run."),
    formats: Optional[list[str]] = typer.Option(None, "--format", help="Comma-separated: html,pdf,junit,md (default: all)."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Output directory (default: beside the results file)."),
) -> None:
    """Re-render reports from a saved results.json, without re-running any check."""
    from auditkit.engine.run import ensure_writable
    from auditkit.policy.models import ALL_FORMATS
    from auditkit.render import write_reports
    from auditkit.results.io import load_results

    def _go() -> int:
        wanted = _split(formats) or [f for f in ALL_FORMATS if f != "json"]
        bad = [f for f in wanted if f not in ALL_FORMATS]
        if bad:
            raise UserError(f"--format {','.join(bad)}: unknown; choose from {', '.join(ALL_FORMATS)}")
        results = load_results(results_file)
        target = out_dir or results_file.parent
        ensure_writable(target)
        outcomes = write_reports(results, target, wanted, progress=WritingProgress(out))
        for outcome in outcomes.values():
            if outcome.ok:
                out.print(f"wrote {outcome.path}")
        _print_unwritten(outcomes)
        return _exit_after_writing(ExitCode.OK, outcomes)

    raise typer.Exit(_guard(_go))


# ---------------------------------------------------------------------------- diff / verify


@app.command(epilog="Example: auditkit diff reports/v2/results.json reports/v3/results.json --tolerance 0.02 "
                    "--out reports/diff")
def diff(
    baseline: Path = typer.Argument(..., metavar="BASELINE.json", help="results.json of the baseline (production) audit."),
    current: Path = typer.Argument(..., metavar="CURRENT.json", help="results.json of the current (candidate) audit."),
    formats: Optional[list[str]] = typer.Option(None, "--format", help="Comma-separated: md,json,html. With --out, the "
                                                "files to write (default all); without, the one format to print."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Write diff.md, diff.json and diff.html here."),
    tolerance: Optional[list[str]] = typer.Option(None, "--tolerance", help="How much worse a figure may get: X for "
                                                  "every metric, METRIC=X or CHECK:METRIC=X for one (repeatable)."),
    alpha: Optional[float] = typer.Option(None, "--alpha", min=0.0, max=1.0, help="Count a worsening only when the "
                                          "test of the difference is significant at this level."),
) -> None:
    """Compare two audits: per check and metric, the change, whether it regressed, and the inputs that differ.

    Exit codes: 0 nothing regressed beyond the tolerances, 1 a regression, 2 invalid input.
    """
    from auditkit.compare.diff import DiffOptions, diff_results
    from auditkit.results.io import read_results
    from auditkit.compare.tolerance import parse_tolerances

    def _go() -> int:
        wanted = _split(formats)
        bad = [f for f in wanted if f not in ("md", "json", "html")]
        if bad:
            raise UserError(f"--format {','.join(bad)}: unknown; choose from md, json, html")
        if out_dir is None and len(wanted) > 1:
            raise UserError("--format without --out prints one format; give one, or --out DIR to write several")
        options = DiffOptions(tolerances=parse_tolerances(tolerance or []), alpha=alpha)
        result = diff_results(read_results(baseline, role="baseline"), read_results(current, role="current"), options)
        if out_dir is None and wanted:
            sys.stdout.write(_diff_document(result, wanted[0]))
            return int(result["exit_code"])
        _print_diff(result)
        if out_dir is not None:
            from auditkit.engine.run import ensure_writable
            from auditkit.results.io import atomic_write_text

            ensure_writable(out_dir, source=None)
            for fmt in wanted or ["md", "json", "html"]:
                path = out_dir / f"diff.{fmt}"
                atomic_write_text(path, _diff_document(result, fmt))
                out.print(Text(f"wrote {_shown(path)}", style="dim"))
        return int(result["exit_code"])

    raise typer.Exit(_guard(_go))


def _diff_document(result: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        from auditkit.results.io import dumps
        from auditkit.results.model import to_jsonable

        return dumps(to_jsonable(result))
    if fmt == "html":
        from auditkit.render.diff_html import render_diff_html

        return render_diff_html(result)
    from auditkit.render.diff_md import render_diff_markdown

    return render_diff_markdown(result)


def _print_diff(result: dict[str, Any]) -> None:
    from auditkit.render.diff_view import headline, input_lines

    differ, _ = input_lines(result)
    out.print(Text(f"baseline {result['baseline']['path']} → current {result['current']['path']}", style="dim"))
    out.print(Text("inputs that differ: ", style="bold") + Text("; ".join(differ) if differ else "none"))
    for note in result["notes"]:
        out.print(Text("note: ", style="yellow") + Text(note))
    for regression in result["regressions"]:
        out.print(Text("  regression ", style="bold red") + Text(regression["text"]))
    summary = result["summary"]
    style = "bold red" if result["regressed"] else "green"
    out.print(Text(headline(result), style=style) + Text(
        f"  ({summary['metrics_compared']} figures compared, {summary['metrics_changed']} changed; "
        f"{summary['checks_added']} checks added, {summary['checks_removed']} removed; exit code {result['exit_code']})"))


@app.command(epilog="Example: auditkit verify reports/credit_scoring/results.json --workers 2")
def verify(
    results_file: Path = typer.Argument(..., metavar="RESULTS.json", help="A results.json from auditkit run."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Worker processes for the re-run "
                                          "(default: as recorded; figures must not depend on it)."),
    policy: Optional[Path] = typer.Option(None, "--policy", help="The audit's policy file, when it is not where the "
                                          "results record it."),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help="Unpickle a pickle/joblib model that has no sha256 pin."),
    as_json: bool = typer.Option(False, "--json", help="Print the verification as JSON."),
) -> None:
    """Re-run the audit a results.json records, on the same inputs (SHA-256 checked first), and compare every figure.

    Exit codes: 0 every figure identical, 1 a figure differs, 2 an input changed or is missing.
    """
    from auditkit.compare.verify import VerifyOptions, verify as verify_audit

    def _go() -> int:
        options = VerifyOptions(workers=workers, trust_pickle=trust_pickle, policy=policy)
        stage = (lambda message: None) if as_json else (lambda message: out.print(Text(message, style="dim")))
        outcome = verify_audit(results_file, options, on_stage=stage)
        if as_json:
            sys.stdout.write(json.dumps(outcome.to_dict(), indent=2, ensure_ascii=False, default=str) + "\n")
            return ExitCode.OK if outcome.identical else ExitCode.FAILED
        _print_verification(outcome)
        return ExitCode.OK if outcome.identical else ExitCode.FAILED

    raise typer.Exit(_guard(_go))


def _print_verification(outcome: Any) -> None:
    if outcome.identical:
        out.print(Text(f"{outcome.figures} of {outcome.figures} figures identical", style="bold green") +
                  Text(f" (and every status and label: {outcome.values} values)"))
        return
    table = Table(title=f"{len(outcome.differences)} values differ", title_justify="left")
    table.add_column("check", overflow="fold", max_width=24)
    table.add_column("where", overflow="fold", max_width=40)
    table.add_column("recorded", overflow="fold", max_width=24)
    table.add_column("re-run", overflow="fold", max_width=24)
    for difference in outcome.differences[:50]:
        table.add_row(Text(difference.check), Text(difference.path), Text(repr(difference.recorded)),
                      Text(repr(difference.rerun)))
    out.print(table)
    if len(outcome.differences) > 50:
        out.print(Text(f"and {len(outcome.differences) - 50} more (--json lists them all)"))
    for item in outcome.environment:
        out.print(Text("note: ", style="yellow") + Text(f"{item['name']} {item['recorded']} at the audit, "
                                                        f"{item['rerun']} now"))
    out.print(Text(f"{outcome.figures_identical} of {outcome.figures} figures identical", style="bold red"))


# ---------------------------------------------------------------------------- init / schema


@app.command(epilog="Example: auditkit init --model sample_models/credit_gbm.onnx --data sample_models/credit_test.csv")
def init(
    model: Optional[Path] = typer.Option(None, "--model", help="Model file (.onnx, .skops, .pkl, .joblib); omit for predictions mode."),
    data: Path = typer.Option(..., "--data", help="The audit data (CSV or Parquet)."),
    output: Path = typer.Option(Path("policy.yaml"), "--output", "-o", help="Where to write the starter policy."),
    target: Optional[str] = typer.Option(None, "--target", help="The outcome column (guessed when absent)."),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help="Allow opening an unpinned pickle/joblib model."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a starter policy for a model and a dataset: task, features, protected columns (guessed: review them), default checks."""
    from auditkit.init import write_starter_policy

    def _go() -> None:
        path, review = write_starter_policy(model=model, data=data, output=output, target=target,
                                            trust_pickle=trust_pickle, force=force)
        out.print(Text("wrote ", style="green") + Text(str(path)))
        for line in review:
            out.print(Text("  review: ", style="yellow") + Text(line))
        out.print(f"next: auditkit validate {path} && auditkit run {path}")

    _guard(_go)


@app.command(epilog="Example: auditkit schema > policy.schema.json")
def schema() -> None:
    """Print the policy's JSON Schema (from the pydantic models, with every check's params)."""
    from auditkit.policy.schema import policy_json_schema

    sys.stdout.write(json.dumps(_guard(policy_json_schema), indent=2) + "\n")


def main() -> None:
    # Typer/Click turn a usage error into exit 2, as DESIGN.md wants for invalid input.
    app(prog_name="auditkit")


if __name__ == "__main__":
    main()
