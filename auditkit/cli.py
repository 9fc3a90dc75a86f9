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
from rich.text import Text

from auditkit import __version__
from auditkit.errors import AuditkitError, UserError


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    INVALID = 2
    INCOMPLETE = 3


STATUS_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "error": "magenta", "skipped": "dim",
                "queued": "dim", "running": "cyan"}

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Audit a trained model against a YAML policy: explanations, fairness, robustness, "
                       "performance and data checks, with reports for engineers, CI and regulators.")
# Off a terminal (CI logs, pipes) long messages and paths stay on one line rather than being cut
out = Console(highlight=False, soft_wrap=not sys.stdout.isatty())
# soft_wrap: an error message stays one line (no hard wrap at 80 columns off a TTY), so a path is never split
err = Console(stderr=True, highlight=False, soft_wrap=True)
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


def _key_figures(check: dict[str, Any], limit: int = 2) -> str:
    if check["status"] == "error":
        return check.get("error") or ""
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


def print_summary(results: dict[str, Any], console: Console) -> None:
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
    console.print(Text("audit status: ", style="bold") + Text(status.upper(), style=STATUS_STYLE[status]) +
                  Text(f"  ({summary}; exit code {results['exit_code']})"))


@app.command(epilog="Example: auditkit run policies/credit_scoring.yaml --workers 2 --format html,pdf")
def run(
    policy: Path = typer.Argument(..., help="The policy YAML file."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Output directory (default: the policy's report.output_dir)."),
    formats: Optional[list[str]] = typer.Option(None, "--format", help="Comma-separated: html,pdf,json,junit,md."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Worker processes (default: one per core)."),
    executor: str = typer.Option("local", "--executor", help="local (process pool) or inline (one process, for debugging)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Address of a distributed scheduler (not available yet)."),
    only: Optional[list[str]] = typer.Option(None, "--only", help="Run only these check ids (repeat or comma-separate)."),
    fail_on: str = typer.Option("fail", "--fail-on", help="fail (default) or warn: which status makes the exit code 1."),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, help="Override the policy's seed."),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help="Unpickle a pickle/joblib model that has no sha256 pin."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    """Run the audit a policy declares and write its reports.

    Exit codes: 0 passed, 1 a check failed, 2 invalid input (nothing run), 3 a check could
    not complete and none failed.
    """
    _state["debug"] = debug or _state["debug"]
    from auditkit.engine.run import RunOptions, run_audit
    from auditkit.policy.load import load_policy
    from auditkit.policy.models import ALL_FORMATS

    def _go() -> int:
        if fail_on not in ("fail", "warn"):
            raise UserError(f"--fail-on must be fail or warn, got {fail_on!r}")
        if executor not in ("local", "inline"):
            raise UserError(f"--executor {executor!r} is not available; use local (dask is planned)")
        if scheduler is not None:
            raise UserError("--scheduler needs the dask executor, which is not available yet")
        wanted = _split(formats)
        bad = [f for f in wanted if f not in ALL_FORMATS]
        if bad:
            raise UserError(f"--format {','.join(bad)}: unknown; choose from {', '.join(ALL_FORMATS)}")
        loaded = load_policy(policy)
        out.print(Text(f"auditkit {__version__} · {loaded.policy.name}", style="bold"))
        options = RunOptions(out=out_dir, formats=wanted or None, workers=workers, executor=executor,
                             only=_split(only), fail_on=fail_on, seed=seed, trust_pickle=trust_pickle,
                             command=shlex.join(["auditkit", *sys.argv[1:]]) if sys.argv else "auditkit run",
                             debug=_state["debug"])
        ids = [c.check_id for c in loaded.policy.checks if not options.only or c.check_id in options.only]
        types = {c.check_id: c.type for c in loaded.policy.checks}
        progress = Progress(ids, types, out)
        with progress:
            audit = run_audit(loaded, options, on_event=progress.on_event,
                              on_stage=lambda message: out.print(Text(message, style="dim")) if progress.live is None else None)
            progress.finalize(audit.results)
        from auditkit.render import write_reports

        report_formats = list(dict.fromkeys(["json", *(options.formats or loaded.policy.report.formats)]))
        outcomes = write_reports(audit.results, audit.out_dir, report_formats)
        print_summary(audit.results, out)
        for fmt, outcome in outcomes.items():
            if outcome.error:
                err.print(Text(f"{fmt}: ", style="bold yellow") + Text(outcome.error))
        written = [o.path.name for o in outcomes.values() if o.path is not None]
        out.print(Text(f"reports: {_shown(audit.out_dir)}/ ({', '.join(written)})", style="dim"))
        if audit.results.get("interrupted"):
            err.print("interrupted: the results of the checks that finished are in results.json")
        return audit.exit_code

    from auditkit.engine.interrupt import sigterm_as_interrupt

    with sigterm_as_interrupt():  # SIGTERM as Ctrl-C: finished checks kept, workers and temporary files gone
        code = _guard(_go)
    raise typer.Exit(code)


# ---------------------------------------------------------------------------- validate


@app.command(epilog="Example: auditkit validate policies/credit_scoring.yaml")
def validate(policy: Path = typer.Argument(..., help="The policy YAML file.")) -> None:
    """Check a policy (syntax, keys, check types, params, thresholds) without running it. Exit 0 or 2."""
    from auditkit.policy.load import load_policy

    loaded = _guard(lambda: load_policy(policy))
    out.print(Text("valid: ", style="green") + Text(f"{policy} ({len(loaded.policy.checks)} checks)"))


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


@app.command(name="checks", epilog="Examples: auditkit checks · auditkit checks performance · auditkit checks --json")
def checks_command(
    check_type: Optional[str] = typer.Argument(None, metavar="[TYPE]", help="Show one check type in full."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List the check types, or show one with its parameters, metrics and an example."""
    from auditkit.engine.registry import get_registry

    def _go() -> None:
        registry = get_registry()
        types = [registry.get(check_type)] if check_type else registry.types()
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
        outcomes = write_reports(results, target, wanted)
        failed = 0
        for fmt, outcome in outcomes.items():
            if outcome.error:
                failed += 1
                err.print(Text(f"{fmt}: ", style="bold yellow") + Text(outcome.error))
            else:
                out.print(f"wrote {outcome.path}")
        return ExitCode.INCOMPLETE if failed else ExitCode.OK

    raise typer.Exit(_guard(_go))


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
