"""`auditkit diff` and the baseline options of `auditkit run` through the CLI: exit codes and messages."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from results_factory import check, metric, results, write
from support import write_policy
from test_cli_bad_input import assert_refused, base_yaml


def pair(tmp_path: Path, before: float, after: float) -> tuple[Path, Path]:
    def doc(auc: float) -> dict:
        return results([check("perf", "performance", {"roc_auc": metric(auc)})])

    return write(tmp_path, "base.json", doc(before)), write(tmp_path, "cur.json", doc(after))


def test_diff_without_regression_exits_0(cli, tmp_path):
    base, cur = pair(tmp_path, 0.80, 0.81)
    result = cli("diff", base, cur)
    assert result.exit_code == 0, result.stderr
    assert "no regression since the baseline" in result.stdout


def test_diff_with_a_regression_exits_1_and_names_it(cli, tmp_path):
    base, cur = pair(tmp_path, 0.80, 0.70)
    result = cli("diff", base, cur, "--tolerance", "0.05")
    assert result.exit_code == 1, result.stderr
    assert "regression perf: roc_auc fell from 0.8 to 0.7 (-0.1; higher is better; tolerance 0.05)" in result.stdout
    assert "1 regression since the baseline" in result.stdout


def test_diff_tolerance_covers_the_change(cli, tmp_path):
    base, cur = pair(tmp_path, 0.80, 0.70)
    assert cli("diff", base, cur, "--tolerance", "roc_auc=0.1").exit_code == 0


def test_diff_prints_one_format_to_stdout(cli, tmp_path):
    base, cur = pair(tmp_path, 0.80, 0.70)
    result = cli("diff", base, cur, "--format", "json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["regressions"][0]["metric"] == "roc_auc"
    markdown = cli("diff", base, cur, "--format", "md")
    assert markdown.stdout.startswith("## ❌ auditkit diff: 1 regression since the baseline")


def test_diff_writes_the_formats_into_out(cli, tmp_path):
    base, cur = pair(tmp_path, 0.80, 0.70)
    out_dir = tmp_path / "diff"
    result = cli("diff", base, cur, "--out", out_dir)
    assert result.exit_code == 1
    assert sorted(p.name for p in out_dir.iterdir()) == ["diff.html", "diff.json", "diff.md"]
    only_md = cli("diff", base, cur, "--out", tmp_path / "md-only", "--format", "md")
    assert sorted(p.name for p in (tmp_path / "md-only").iterdir()) == ["diff.md"]
    assert only_md.exit_code == 1


def test_diff_of_another_schema_version_exits_2_naming_it(cli, tmp_path):
    base, cur = pair(tmp_path, 0.80, 0.80)
    document = json.loads(cur.read_text()) | {"schema_version": 2}
    cur.write_text(json.dumps(document))
    out_dir = tmp_path / "diff-out"
    assert_refused(cli("diff", base, cur, "--out", out_dir), out_dir, f"current results file {cur} has schema_version 2",
                   "this auditkit reads schema_version 1")


@pytest.mark.parametrize("args, fragment", [
    (["--tolerance", "-1"], "--tolerance -1: must be a finite number >= 0"),
    (["--format", "pdf"], "--format pdf: unknown; choose from md, json, html"),
    (["--format", "md,json"], "--format without --out prints one format"),
])
def test_diff_bad_options_exit_2(cli, tmp_path, args, fragment):
    base, cur = pair(tmp_path, 0.80, 0.80)
    assert_refused(cli("diff", base, cur, *args), tmp_path / "none", fragment)


def test_diff_of_a_missing_file_exits_2(cli, tmp_path):
    base, _ = pair(tmp_path, 0.80, 0.80)
    assert_refused(cli("diff", base, tmp_path / "nope.json"), tmp_path / "none", "current results file not found")


# --------------------------------------------------------------------------- run: relative bounds


def relative_policy(samples: Path, tmp_path: Path, extra: str = "") -> tuple[Path, Path]:
    out_dir = tmp_path / "out"
    lines = base_yaml(samples, out_dir)
    index = lines.index("    params: {metrics: [roc_auc], bootstrap: 20}")
    lines.insert(index + 1, "    thresholds: {roc_auc: {min: 0.7, max_decrease: 0.01}}")
    text = "\n".join(lines) + "\n" + extra
    return write_policy(tmp_path, text), out_dir


def test_a_relative_bound_without_a_baseline_exits_2_naming_the_key(cli, samples, tmp_path):
    policy, out_dir = relative_policy(samples, tmp_path)
    assert_refused(cli("run", policy), out_dir, "policy.yaml:17:", "checks[0].thresholds.roc_auc.max_decrease",
                   "a relative bound needs a baseline run to compare with", max_lines=2)


def test_a_missing_report_baseline_exits_2_naming_the_key(cli, samples, tmp_path):
    policy, out_dir = relative_policy(samples, tmp_path, "  baseline: ../v2/results.json\n")
    assert_refused(cli("run", policy), out_dir, "report.baseline", "baseline results file not found",
                   "v2/results.json")


def test_a_baseline_of_another_schema_version_exits_2(cli, samples, tmp_path):
    policy, out_dir = relative_policy(samples, tmp_path)
    old = write(tmp_path, "old.json", results([check("perf", "performance", {})]) | {"schema_version": 0})
    assert_refused(cli("run", policy, "--baseline", old), out_dir, "--baseline", "has schema_version 0")


def test_baseline_and_no_baseline_contradict(cli, samples, tmp_path):
    policy, out_dir = relative_policy(samples, tmp_path)
    base, _ = pair(tmp_path, 0.8, 0.8)
    assert_refused(cli("run", policy, "--baseline", base, "--no-baseline"), out_dir,
                   "--baseline and --no-baseline contradict each other")


def test_validate_checks_a_declared_baseline(cli, samples, tmp_path):
    policy, out_dir = relative_policy(samples, tmp_path, "  baseline: missing.json\n")
    assert_refused(cli("validate", policy), out_dir, "report.baseline", "baseline results file not found")


def test_validate_accepts_relative_bounds_left_to_run_time(cli, samples, tmp_path):
    """A CI job may give --baseline to `run` only: validate does not demand one."""
    policy, _ = relative_policy(samples, tmp_path)
    result = cli("validate", policy, "--policy-only")
    assert result.exit_code == 0, result.stderr


def test_the_policy_schema_offers_the_relative_bounds(cli):
    schema = json.loads(cli("schema").stdout)
    threshold = schema["$defs"]["Threshold"]["properties"]
    assert {"max_decrease", "max_increase"} <= set(threshold)
    assert "baseline" in schema["$defs"]["ReportSpec"]["properties"]
