"""Every kind of bad input to `auditkit run` ends with exit code 2 and one clear message.

DESIGN.md: exit code 2 means "the policy or an input is invalid (nothing was run)". For each
bad input we pin that contract through the CLI: the exit code, a short message on stderr that
names the file, key or column and what was expected or found, no traceback unless --debug,
and no report (nor a temporary file) left in the output directory.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import pytest

from support import credit_policy, write_policy

LOGREG_FEATURES = ["income", "debt_ratio", "credit_history_years", "n_late_payments", "loan_amount",
                   "employment_years", "n_open_accounts"]


# --------------------------------------------------------------------------- helpers


def files_under(directory: Path) -> list[str]:
    """Every file (hidden temporaries included) under ``directory``; [] when it does not exist."""
    if not directory.exists():
        return []
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if not p.is_dir())


def assert_refused(result: Any, out_dir: Path, *expected: str, max_lines: int = 2) -> str:
    """Exit 2, a short `error:` message holding every ``expected`` fragment, no traceback, no output file."""
    both = result.stdout + result.stderr
    assert result.exit_code == 2, f"exit code {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in both
    message = result.stderr.strip()
    assert message.startswith("error: "), message
    lines = message.splitlines()
    assert len(lines) <= max_lines, f"expected a short message, got {len(lines)} lines:\n{message}"
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in:\n{message}"
    assert files_under(out_dir) == [], "an invalid input must leave no file in the output directory"
    return message


def run_policy(cli: Callable[..., Any], tmp_path: Path, policy: dict[str, Any] | str, *args: str) -> Any:
    return cli("run", write_policy(tmp_path, policy), *args)


@pytest.fixture(scope="module")
def credit_rows(samples: Path) -> pd.DataFrame:
    """The first few hundred rows of the test data, to derive broken copies from."""
    return pd.read_csv(samples / "credit_test.csv", nrows=400)


# Block YAML (not JSON) so that the line numbers the errors must show are known.
BASE_YAML = """\
version: 1
name: test audit
seed: 3
model:
  path: {model}
  task: binary
data:
  path: {data}
  target: defaulted
  protected: [sex, race, age_band]
  ignore: [applicant_id, interest_rate]
  sample: 3000
checks:
  - id: perf
    type: performance
    params: {{metrics: [roc_auc], bootstrap: 20}}
  - id: integrity
    type: data_integrity
report:
  formats: [json]
  output_dir: {out}
"""


def base_yaml(samples: Path, out_dir: Path) -> list[str]:
    """The lines of a valid block-YAML policy (line n is element n - 1)."""
    return BASE_YAML.format(model=samples / "credit_gbm.onnx", data=samples / "credit_test.csv",
                            out=out_dir).splitlines()


def test_base_yaml_is_valid(cli, samples, tmp_path):
    """The YAML the line-number tests edit is valid as written (so each edit is the only fault)."""
    path = write_policy(tmp_path, "\n".join(base_yaml(samples, tmp_path / "out")) + "\n")
    result = cli("validate", path)
    assert result.exit_code == 0, result.stderr


# --------------------------------------------------------------------------- the policy file


def test_missing_policy_file_is_named(cli, tmp_path):
    missing = tmp_path / "no-such-policy.yaml"
    assert_refused(cli("run", missing), tmp_path, str(missing), "not found")


def test_empty_policy_file_is_refused(cli, tmp_path):
    assert_refused(run_policy(cli, tmp_path, ""), tmp_path / "reports", "policy.yaml", "empty")


def test_policy_that_is_not_a_mapping_says_what_it_found(cli, tmp_path):
    message = assert_refused(run_policy(cli, tmp_path, "- perf\n- integrity\n"), tmp_path / "reports", "policy.yaml:1:1",
                             "mapping", "got a list")
    assert "Commented" not in message  # the YAML library's internal type names mean nothing to a user


def test_policy_file_over_the_size_cap_is_refused_unread(cli, samples, tmp_path):
    out_dir = tmp_path / "out"
    text = "\n".join(base_yaml(samples, out_dir)) + "\n" + ("# padding\n" * 110_000)
    assert len(text.encode()) > 1_000_000
    assert_refused(run_policy(cli, tmp_path, text), out_dir, "policy.yaml", "limit is 1,000,000")


def test_yaml_syntax_error_shows_its_line(cli, samples, tmp_path):
    out_dir = tmp_path / "out"
    lines = base_yaml(samples, out_dir)
    assert lines[5] == "  task: binary"
    lines[5] = "  task: binary: oops"  # line 6
    assert_refused(run_policy(cli, tmp_path, "\n".join(lines) + "\n"), out_dir, "policy.yaml:6:", "YAML syntax error")


@pytest.mark.parametrize("replaced, edit, line_no, expected", [
    pytest.param("seed: 3", "seed: &the_seed 3", 3, "anchors and aliases are not allowed", id="anchor"),
    pytest.param("name: test audit", "name: !!python/object/apply:os.mkdir ['{marker}']", 2,
                 "python/object/apply:os.mkdir", id="python-object-tag"),
    pytest.param("model:", "seed: 4\nmodel:", 4, "duplicate key", id="duplicate-key"),
])
def test_unsafe_or_ambiguous_yaml_is_refused_with_its_line(cli, samples, tmp_path, replaced, edit, line_no, expected):
    out_dir = tmp_path / "out"
    marker = tmp_path / "created-by-yaml"
    lines = base_yaml(samples, out_dir)
    index = lines.index(replaced)
    lines[index] = edit.format(marker=marker)
    assert_refused(run_policy(cli, tmp_path, "\n".join(lines) + "\n"), out_dir, f"policy.yaml:{line_no}:", expected)
    assert not marker.exists(), "a YAML tag must never construct a Python object"


def test_unknown_check_level_key_suggests_thresholds(cli, samples, tmp_path):
    out_dir = tmp_path / "out"
    policy = credit_policy(samples, out_dir)
    policy["checks"][0]["threshholds"] = policy["checks"][0].pop("thresholds")
    assert_refused(run_policy(cli, tmp_path, policy), out_dir, "checks[0].threshholds", "unknown key",
                   "did you mean 'thresholds'?")


def test_unknown_top_level_key_suggests_model(cli, samples, tmp_path):
    out_dir = tmp_path / "out"
    lines = base_yaml(samples, out_dir)
    assert lines[3] == "model:"
    lines[3] = "modle:"
    message = assert_refused(run_policy(cli, tmp_path, "\n".join(lines) + "\n"), out_dir,
                             "policy.yaml:4:1 modle: unknown key 'modle'; did you mean 'model'?", max_lines=3)
    assert "model: required key is missing" in message  # the consequence, reported too


def test_unknown_check_type_suggests_closest_name(cli, samples, tmp_path):
    out_dir = tmp_path / "out"
    policy = credit_policy(samples, out_dir)
    policy["checks"][0]["type"] = "perfomance"
    assert_refused(run_policy(cli, tmp_path, policy), out_dir, "checks[0].type", "unknown check type 'perfomance'",
                   "did you mean 'performance'?")


def test_threshold_on_a_metric_the_check_does_not_produce_suggests_closest(cli, samples, tmp_path):
    out_dir = tmp_path / "out"
    policy = credit_policy(samples, out_dir)
    policy["checks"][0]["thresholds"] = {"roc_acu": {"min": 0.7}}
    assert_refused(run_policy(cli, tmp_path, policy), out_dir, "checks[0].thresholds.roc_acu",
                   "does not produce metric 'roc_acu'", "did you mean 'roc_auc'?")


# --------------------------------------------------------------------------- the model file


def _model_missing(tmp_path: Path, samples: Path) -> Path:
    return tmp_path / "absent.onnx"


def _model_empty(tmp_path: Path, samples: Path) -> Path:
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    return path


def _model_random_bytes(tmp_path: Path, samples: Path) -> Path:
    path = tmp_path / "corrupt.onnx"
    path.write_bytes(bytes(range(256)) * 8)
    return path


def _model_csv_renamed(tmp_path: Path, samples: Path) -> Path:
    path = tmp_path / "table.onnx"
    path.write_bytes((samples / "credit_test.csv").read_bytes()[:20_000])
    return path


@pytest.mark.parametrize("make_model, expected", [
    pytest.param(_model_missing, "model file not found", id="missing"),
    pytest.param(_model_empty, "model file is empty", id="empty"),
    pytest.param(_model_random_bytes, "is not a valid ONNX model", id="random-bytes"),
    pytest.param(_model_csv_renamed, "is not a valid ONNX model", id="csv-renamed-onnx"),
])
def test_unusable_model_file_is_named(cli, samples, tmp_path, make_model, expected):
    out_dir = tmp_path / "out"
    model = make_model(tmp_path, samples)
    policy = credit_policy(samples, out_dir, model={"path": str(model)})
    assert_refused(run_policy(cli, tmp_path, policy), out_dir, "model.path", str(model), expected)


def _pickle_policy(samples: Path, out_dir: Path, **model: Any) -> dict[str, Any]:
    """The logistic regression pickle, checked for data integrity only (a fast, model-light audit)."""
    return credit_policy(
        samples, out_dir,
        model={"path": str(samples / "credit_logreg.pkl"), **model},
        data={"features": LOGREG_FEATURES},
        checks=[{"id": "integrity", "type": "data_integrity"}])


def test_unpinned_untrusted_pickle_is_refused_with_the_danger_and_its_sha256(cli, samples, tmp_path):
    out_dir = tmp_path / "out"
    digest = hashlib.sha256((samples / "credit_logreg.pkl").read_bytes()).hexdigest()
    message = assert_refused(run_policy(cli, tmp_path, _pickle_policy(samples, out_dir)), out_dir,
                             "refusing to unpickle", "credit_logreg.pkl", "arbitrary code", "--trust-pickle",
                             f"sha256: {digest}", max_lines=8)
    assert message.splitlines()[0].count("credit_logreg.pkl") >= 1  # the first line alone says which file


def test_sha256_mismatch_shows_both_digests(cli, samples, tmp_path):
    out_dir = tmp_path / "out"
    actual = hashlib.sha256((samples / "credit_gbm.onnx").read_bytes()).hexdigest()
    wrong = "0" * 64
    policy = credit_policy(samples, out_dir, model={"sha256": wrong})
    assert_refused(run_policy(cli, tmp_path, policy), out_dir, "model.sha256", "sha256 mismatch", wrong, actual)


def test_trusted_pickle_runs(cli, samples, tmp_path):
    out_dir = tmp_path / "out"
    result = run_policy(cli, tmp_path, _pickle_policy(samples, out_dir), "--trust-pickle")
    assert result.exit_code in (0, 1), result.stderr
    results = json.loads((out_dir / "results.json").read_text())
    assert results["inputs"]["model"]["format"] == "pickle"
    assert results["inputs"]["model"]["pinned"] is False
    assert [c["id"] for c in results["checks"]] == ["integrity"]


def test_pickle_pinned_by_its_sha256_loads_without_trust_flag(cli, samples, tmp_path):
    out_dir = tmp_path / "out"
    digest = hashlib.sha256((samples / "credit_logreg.pkl").read_bytes()).hexdigest()
    result = run_policy(cli, tmp_path, _pickle_policy(samples, out_dir, sha256=digest))
    assert result.exit_code in (0, 1), result.stderr
    results = json.loads((out_dir / "results.json").read_text())
    assert results["inputs"]["model"]["sha256"] == digest
    assert results["inputs"]["model"]["pinned"] is True


def test_onnx_input_width_not_matching_the_features_is_refused(cli, samples, tmp_path):
    out_dir = tmp_path / "out"
    policy = credit_policy(samples, out_dir, model={"path": str(samples / "credit_logreg.onnx")},
                           data={"features": LOGREG_FEATURES[:6]})
    assert_refused(run_policy(cli, tmp_path, policy), out_dir, "data.features", "takes 7 columns",
                   "6 features were resolved")


# --------------------------------------------------------------------------- the data file


def _data_missing(tmp_path: Path) -> Path:
    return tmp_path / "absent.csv"


def _data_directory(tmp_path: Path) -> Path:
    path = tmp_path / "data.csv"
    path.mkdir()
    return path


def _data_garbage_parquet(tmp_path: Path) -> Path:
    path = tmp_path / "data.parquet"
    path.write_bytes(b"\x00\xffnot parquet at all" * 64)
    return path


def _data_header_only(tmp_path: Path) -> Path:
    path = tmp_path / "header-only.csv"
    path.write_text("applicant_id,sex,race,age_band,income,defaulted\n")
    return path


@pytest.mark.parametrize("make_data, expected", [
    pytest.param(_data_missing, "data file not found", id="missing"),
    pytest.param(_data_directory, "no Parquet files (*.parquet, *.pq) in the directory", id="directory"),  # a dataset (#15)
    pytest.param(_data_garbage_parquet, "cannot read", id="garbage-parquet"),
    pytest.param(_data_header_only, "no rows in the file", id="header-only-csv"),
])
def test_unreadable_data_file_is_named(cli, samples, tmp_path, make_data, expected):
    out_dir = tmp_path / "out"
    data = make_data(tmp_path)
    policy = credit_policy(samples, out_dir, data={"path": str(data)})
    assert_refused(run_policy(cli, tmp_path, policy), out_dir, "data.path", str(data), expected)


def test_missing_feature_column_suggests_closest(cli, samples, tmp_path):
    out_dir = tmp_path / "out"
    policy = credit_policy(samples, out_dir, model={"path": str(samples / "credit_logreg.onnx")},
                           data={"features": [*LOGREG_FEATURES[:6], "n_open_acounts"]})
    assert_refused(run_policy(cli, tmp_path, policy), out_dir, "data.features[6]", "column 'n_open_acounts'",
                   "credit_test.csv", "did you mean 'n_open_accounts'?")


def test_target_with_a_single_class_is_refused(cli, samples, tmp_path, credit_rows):
    out_dir = tmp_path / "out"
    only_repaid = credit_rows[credit_rows["defaulted"] == 0]
    assert len(only_repaid) > 200  # a few hundred rows, every one of class 0
    data = tmp_path / "repaid.csv"
    only_repaid.to_csv(data, index=False)
    policy = credit_policy(samples, out_dir, data={"path": str(data)})
    assert_refused(run_policy(cli, tmp_path, policy), out_dir, "data.target", "'defaulted'", "single class (0)")


def test_text_in_a_numeric_feature_names_column_value_and_row(cli, samples, tmp_path, credit_rows):
    out_dir = tmp_path / "out"
    broken = credit_rows.astype({"income": object})
    broken.loc[17, "income"] = "unknown"
    data = tmp_path / "with-text.csv"
    broken.to_csv(data, index=False)
    policy = credit_policy(samples, out_dir, data={"path": str(data)})
    assert_refused(run_policy(cli, tmp_path, policy), out_dir, "with-text.csv", "column 'income'", "'unknown'",
                   "row 17")


def test_query_that_keeps_no_rows_is_refused(cli, samples, tmp_path):
    out_dir = tmp_path / "out"
    policy = credit_policy(samples, out_dir, data={"query": "income < 0"})
    message = assert_refused(run_policy(cli, tmp_path, policy), out_dir, " data.query: no rows left",
                             "'income < 0' kept 0 of 20,150 rows", "credit_test.csv")
    assert "data.path" not in message  # the query is the cause, not the file


# --------------------------------------------------------------------------- output and options


def test_output_directory_under_a_regular_file_is_refused(cli, samples, tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("a file, not a directory\n")
    out_dir = blocker / "sub"
    policy = credit_policy(samples, out_dir)
    assert_refused(run_policy(cli, tmp_path, policy), out_dir, "report.output_dir", str(out_dir), "not writable")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "policy.yaml"]
    assert blocker.read_text() == "a file, not a directory\n"


def test_only_an_unknown_check_id_is_refused_listing_the_ids(cli, samples, tmp_path):
    out_dir = tmp_path / "out"
    policy = credit_policy(samples, out_dir)
    assert_refused(run_policy(cli, tmp_path, policy, "--only", "nonexistent-id"), out_dir, "--only nonexistent-id",
                   "integrity", "perf")


# --------------------------------------------------------------------------- --debug


def test_debug_shows_the_traceback_and_still_exits_2(cli, tmp_path):
    missing = tmp_path / "no-such-policy.yaml"
    result = cli("--debug", "run", missing)
    assert result.exit_code == 2
    assert "Traceback" in result.stderr
    assert "PolicyError" in result.stderr
    assert str(missing) in result.stderr


def test_debug_does_not_leak_into_the_next_invocation(cli, tmp_path):
    missing = tmp_path / "no-such-policy.yaml"
    assert "Traceback" in cli("--debug", "run", missing).stderr
    assert_refused(cli("run", missing), tmp_path, "not found")


def test_run_accepts_debug_after_the_command_too(cli, tmp_path):
    missing = tmp_path / "no-such-policy.yaml"
    result = cli("run", missing, "--debug")
    assert result.exit_code == 2
    assert "Traceback" in result.stderr
