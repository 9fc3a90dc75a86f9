"""Issue #13: inputs that used to slip through, each refused or handled as the contract says.

Non-finite numbers in a policy, YAML nested deep enough to exhaust the parser's recursion,
escape sequences from inputs reaching the terminal, text files that are not UTF-8, infinite
values in the data, blame for a bad --out, an errored check with a blank message, `validate`
checking the inputs, and `init` writing a policy that runs.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from support import credit_policy, write_policy
from test_cli_bad_input import assert_refused, base_yaml, run_policy


# --------------------------------------------------------------------------- 5. NaN and infinity


@pytest.mark.parametrize("replaced, edit, line_no, key", [
    pytest.param("  task: binary", "  task: binary\n  threshold: .nan", 7, "model.threshold", id="model-threshold-nan"),
    pytest.param("    params: {metrics: [roc_auc], bootstrap: 20}",
                 "    params: {metrics: [roc_auc], bootstrap: 20}\n    thresholds: {roc_auc: {min: .nan}}", 17,
                 "checks[0].thresholds.roc_auc.min", id="threshold-min-nan"),
    pytest.param("    params: {metrics: [roc_auc], bootstrap: 20}",
                 "    params: {metrics: [roc_auc], bootstrap: 20}\n    thresholds: {roc_auc: {max: .inf}}", 17,
                 "checks[0].thresholds.roc_auc.max", id="threshold-max-inf"),
    pytest.param("    params: {metrics: [roc_auc], bootstrap: 20}",
                 "    params: {metrics: [roc_auc], bootstrap: 20, confidence: -.inf}", 16,
                 "checks[0].params.confidence", id="param-minus-inf"),
])
def test_non_finite_number_in_a_policy_is_refused_with_its_line(cli, samples, tmp_path, replaced, edit, line_no, key):
    out_dir = tmp_path / "out"
    lines = base_yaml(samples, out_dir)
    lines[lines.index(replaced)] = edit
    text = "\n".join(lines) + "\n"
    for command in ("run", "validate"):
        result = cli(command, write_policy(tmp_path, text))
        assert_refused(result, out_dir, f"policy.yaml:{line_no}:", key, "must be a finite number")


# --------------------------------------------------------------------------- 9. deep nesting


def test_deeply_nested_yaml_is_refused_with_its_line_not_a_recursion_error(cli, tmp_path):
    text = "version: 1\nname: deep\nchecks: " + "[" * 300 + "]" * 300 + "\n"
    assert len(text) < 5_000
    for command in ("run", "validate"):
        result = cli(command, write_policy(tmp_path, text))
        message = assert_refused(result, tmp_path / "reports", "policy.yaml:3:", "nested more than 32 levels")
        assert "Recursion" not in message


# --------------------------------------------------------------------------- 10. escape sequences

ESCAPES = "\x1b[2J\x1b]0;owned\x07\x1b[32mPASS\x1b[0m\x9b31m\u202e"


def test_escape_sequences_from_the_policy_name_never_reach_the_terminal(cli, samples, tmp_path):
    policy = credit_policy(samples, tmp_path / "out", name=f"evil {ESCAPES}")
    policy["checks"] = [{"id": "integrity", "type": "data_integrity"}]
    result = run_policy(cli, tmp_path, policy)
    assert result.exit_code == 0, result.stderr
    both = result.stdout + result.stderr
    assert "evil" in both
    for control in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert control not in both
    assert "\u241b[2J" in both  # shown, as a visible ESC picture, not executed


def test_escape_sequences_in_a_column_name_never_reach_the_terminal(cli, samples, tmp_path):
    policy = credit_policy(samples, tmp_path / "out")
    policy["data"]["protected"] = [f"sex{ESCAPES}"]
    result = run_policy(cli, tmp_path, policy)
    assert result.exit_code == 2
    both = result.stdout + result.stderr
    assert "data.protected[0]" in both
    for control in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert control not in both


def test_printable_keeps_length_and_ordinary_text():
    from auditkit.terminal import printable

    assert printable("income ≥ 40k\tok\n") == "income ≥ 40k\tok\n"
    assert printable(ESCAPES) != ESCAPES
    assert len(printable(ESCAPES)) == len(ESCAPES)


# --------------------------------------------------------------------------- 11. text encodings


@pytest.fixture
def latin1_data(samples: Path, tmp_path: Path) -> Path:
    """The first 400 test rows, with a category value that has an accent, written as Latin-1."""
    frame = pd.read_csv(samples / "credit_test.csv", nrows=400)
    frame["purpose"] = frame["purpose"].astype(str)
    frame.loc[frame.index[::2], "purpose"] = "rénovation"
    path = tmp_path / "latin1.csv"
    path.write_bytes(frame.to_csv(index=False).encode("latin-1"))
    return path


def _integrity_policy(samples: Path, out_dir: Path, data: Path, **data_keys: object) -> dict:
    policy = credit_policy(samples, out_dir)
    policy["data"] = {**policy["data"], "path": str(data), "sample": None, **data_keys}
    policy["checks"] = [{"id": "integrity", "type": "data_integrity"}]
    return policy


def test_latin1_file_is_decoded_and_said_not_replaced(cli, samples, tmp_path, latin1_data):
    out_dir = tmp_path / "out"
    result = run_policy(cli, tmp_path, _integrity_policy(samples, out_dir, latin1_data))
    assert result.exit_code == 0, result.stderr
    results = json.loads((out_dir / "results.json").read_text())
    notes = " ".join(results["inputs"]["data"]["notes"])
    assert "latin1.csv is not UTF-8 (byte 0xe9 at line" in notes and "read as cp1252" in notes
    assert "note: latin1.csv is not UTF-8" in " ".join(result.stdout.split())
    from auditkit.data.load import read_table

    frame = read_table(latin1_data).frame
    assert (frame["purpose"] == "rénovation").sum() == 200
    assert not frame["purpose"].str.contains("\ufffd").any()


def test_declared_encoding_is_honoured_without_a_note(cli, samples, tmp_path, latin1_data):
    out_dir = tmp_path / "out"
    result = run_policy(cli, tmp_path, _integrity_policy(samples, out_dir, latin1_data, encoding="latin-1"))
    assert result.exit_code == 0, result.stderr
    notes = json.loads((out_dir / "results.json").read_text())["inputs"]["data"]["notes"]
    assert not any("UTF-8" in note for note in notes)


def test_declared_encoding_that_does_not_fit_is_refused(cli, samples, tmp_path, latin1_data):
    out_dir = tmp_path / "out"
    result = run_policy(cli, tmp_path, _integrity_policy(samples, out_dir, latin1_data, encoding="utf-8"))
    assert_refused(result, out_dir, "data.encoding", "latin1.csv", "0xe9")


def test_first_invalid_utf8_byte_is_found_across_chunk_boundaries(tmp_path):
    from auditkit.data.load import first_invalid_utf8

    path = tmp_path / "t.csv"
    path.write_bytes("a,b\n1,é\n2,".encode() + b"caf\xe9\n")
    expected = (len("a,b\n1,é\n2,caf".encode()), 3, 0xE9)
    for chunk_size in (1, 2, 3, 7, 1 << 20):
        assert first_invalid_utf8(path, chunk_size=chunk_size) == expected
    path.write_bytes("a,b\n1,é\n".encode())
    assert first_invalid_utf8(path) is None


# --------------------------------------------------------------------------- 11. infinite values


def test_infinite_values_are_counted_by_data_integrity(cli, samples, tmp_path):
    frame = pd.read_csv(samples / "credit_test.csv", nrows=400)
    frame["income"] = frame["income"].astype(float)
    frame.loc[[3, 10, 11], "income"] = [np.inf, -np.inf, np.inf]
    frame.loc[5, "debt_ratio"] = -np.inf
    data = tmp_path / "inf.csv"
    frame.to_csv(data, index=False)
    out_dir = tmp_path / "out"
    policy = _integrity_policy(samples, out_dir, data)
    policy["checks"][0]["thresholds"] = {"infinite_values": {"max": 0}}
    policy["checks"][0]["params"] = {"columns": ["income", "debt_ratio", "loan_amount"]}
    result = run_policy(cli, tmp_path, policy, "--only", "integrity")
    assert result.exit_code == 1, result.stdout + result.stderr
    check = json.loads((out_dir / "results.json").read_text())["checks"][0]
    assert check["metrics"]["infinite_values[income]"]["value"] == 3
    assert check["metrics"]["infinite_values[debt_ratio]"]["value"] == 1
    assert check["metrics"]["infinite_values[loan_amount]"]["value"] == 0
    assert check["metrics"]["infinite_cells"]["value"] == 4
    income = next(r for r in check["tables"]["columns"] if r["column"] == "income")
    finite = frame["income"][np.isfinite(frame["income"])]
    assert income["min"] == pytest.approx(finite.min()) and income["max"] == pytest.approx(finite.max())
    assert {f["metric"]: f["status"] for f in check["findings"]} == {
        "infinite_values[income]": "fail", "infinite_values[debt_ratio]": "fail", "infinite_values[loan_amount]": "pass"}


# --------------------------------------------------------------------------- 11. blame and blank messages


def test_unwritable_out_option_is_blamed_not_the_policy_key(cli, samples, tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("x\n")
    policy = credit_policy(samples, tmp_path / "fine")
    message = assert_refused(run_policy(cli, tmp_path, policy, "--out", str(blocker / "sub")), blocker / "sub",
                             "--out", "not writable")
    assert "report.output_dir" not in message


def test_check_in_error_through_its_findings_says_why(cli, samples, tmp_path):
    out_dir = tmp_path / "out"
    policy = credit_policy(samples, out_dir)
    # rows has no confidence interval: comparing its lower bound cannot be done
    policy["checks"] = [{"id": "integrity", "type": "data_integrity", "thresholds": {"rows": {"min": 10, "on": "lower"}}}]
    result = run_policy(cli, tmp_path, policy)
    assert result.exit_code == 3, result.stdout
    check = json.loads((out_dir / "results.json").read_text())["checks"][0]
    assert check["status"] == "error"
    assert check["error"] == "rows has no confidence interval, so on: lower cannot be compared"
    assert "rows has no confidence interval" in " ".join(result.stdout.split())


# --------------------------------------------------------------------------- validate checks the inputs


def test_validate_refuses_a_misspelt_protected_column_with_a_suggestion(cli, samples, tmp_path):
    policy = credit_policy(samples, tmp_path / "out")
    policy["data"]["protected"] = ["sex", "rcae"]
    result = cli("validate", write_policy(tmp_path, policy))
    assert_refused(result, tmp_path / "out", "data.protected[1]", "'rcae'", "did you mean 'race'?")


def test_validate_refuses_data_without_the_models_inputs(cli, samples, tmp_path, credit_rows):
    data = tmp_path / "no_income.csv"
    credit_rows.drop(columns=["income"]).to_csv(data, index=False)
    policy = credit_policy(samples, tmp_path / "out")
    policy["data"]["path"] = str(data)
    result = cli("validate", write_policy(tmp_path, policy))
    assert_refused(result, tmp_path / "out", "the model needs column 'income'")


def test_validate_reports_the_inputs_it_checked(cli, samples, tmp_path):
    policy = credit_policy(samples, tmp_path / "out")
    result = cli("validate", write_policy(tmp_path, policy))
    assert result.exit_code == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "3,000 rows used of 20,150" in text and "target 'defaulted'" in text
    assert not (tmp_path / "out").exists()  # validate writes nothing


def test_validate_policy_only_does_not_load_the_inputs(cli, samples, tmp_path):
    policy = credit_policy(samples, tmp_path / "out")
    policy["data"]["path"] = str(tmp_path / "absent.csv")
    assert cli("validate", write_policy(tmp_path, policy)).exit_code == 2
    result = cli("validate", "--policy-only", write_policy(tmp_path, policy))
    assert result.exit_code == 0, result.stderr


@pytest.fixture
def credit_rows(samples: Path) -> pd.DataFrame:
    return pd.read_csv(samples / "credit_test.csv", nrows=400)


# --------------------------------------------------------------------------- init writes a policy that runs


@pytest.fixture(scope="module")
def breast_cancer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scikit-learn's breast-cancer data with the outcome named `malignant`, and a pipeline
    fitted on a bare matrix (no feature names), saved with joblib."""
    import joblib
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    directory = tmp_path_factory.mktemp("breast_cancer")
    bunch = load_breast_cancer(as_frame=True)
    bunch.frame.rename(columns={"target": "malignant"}).to_csv(directory / "cancer.csv", index=False)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(bunch.data.to_numpy(), bunch.target)
    joblib.dump(model, directory / "model.joblib")
    return directory


def test_init_on_a_matrix_model_finds_the_target_from_the_models_classes(cli, breast_cancer, tmp_path):
    from ruamel.yaml import YAML

    output = tmp_path / "policy.yaml"
    result = cli("init", "--model", breast_cancer / "model.joblib", "--data", breast_cancer / "cancer.csv",
                 "-o", output, "--trust-pickle")
    assert result.exit_code == 0, result.stdout + result.stderr
    policy = YAML(typ="safe", pure=True).load(output.read_text())
    assert policy["data"]["target"] == "malignant"
    assert "malignant" not in policy["data"]["features"] and len(policy["data"]["features"]) == 30
    assert "whose values are its classes (0, 1)" in " ".join(result.stdout.split())
    assert cli("validate", output).exit_code == 0  # pinned: no --trust-pickle needed any more
    run = cli("run", output, "--out", tmp_path / "out", "--format", "json")
    assert run.exit_code in (0, 1), run.stdout + run.stderr
    statuses = {c["id"]: c["status"] for c in json.loads((tmp_path / "out" / "results.json").read_text())["checks"]}
    assert statuses["performance"] == "pass"


@pytest.mark.slow
def test_init_with_protected_columns_writes_a_fairness_battery_that_runs(cli, samples, tmp_path):
    output = tmp_path / "policy.yaml"
    result = cli("init", "--model", samples / "credit_gbm.onnx", "--data", samples / "credit_test.csv", "-o", output)
    assert result.exit_code == 0, result.stdout + result.stderr
    from ruamel.yaml import YAML

    policy = YAML(typ="safe", pure=True).load(output.read_text())
    types = [c["type"] for c in policy["checks"]]
    assert types == ["performance", "data_integrity", "group_fairness", "proxy_detection", "local_explanations"]
    assert policy["data"]["favorable_label"] == 0  # "defaulted" names a harm: approval is the favourable decision
    run = cli("run", output, "--out", tmp_path / "out", "--format", "json")
    # the sample model's planted race disparity fails the four-fifths rule: exit 1, never 2 or 3
    assert run.exit_code == 1, run.stdout + run.stderr
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert all(c["status"] != "error" for c in results["checks"])
    fairness = next(c for c in results["checks"] if c["type"] == "group_fairness")
    assert fairness["metrics"]["selection_rate_ratio[race]"]["value"] < 0.8


# --------------------------------------------------------------------------- status info (#14)


def test_a_check_without_thresholds_is_info_never_pass_and_keeps_exit_0(cli, samples, tmp_path):
    out_dir = tmp_path / "out"
    policy = credit_policy(samples, out_dir)
    policy["checks"] = [{"id": "integrity", "type": "data_integrity"}]
    policy["report"]["formats"] = ["json", "junit", "md"]
    result = run_policy(cli, tmp_path, policy)
    assert result.exit_code == 0, result.stdout + result.stderr
    results = json.loads((out_dir / "results.json").read_text())
    assert results["checks"][0]["status"] == "info" and results["status"] == "info"
    assert "audit status: INFO (not assessed: no check had a threshold)" in " ".join(result.stdout.split())
    junit = (out_dir / "junit.xml").read_text()
    assert 'failures="0"' in junit and "<skipped" not in junit
    assert "info: not assessed (the policy declares no threshold)" in junit
    assert "info" in (out_dir / "summary.md").read_text()


def test_an_audit_with_one_assessed_check_is_pass_not_info():
    from auditkit.results.model import worst_status

    assert worst_status(["info", "pass", "skipped"]) == "pass"
    assert worst_status(["info", "skipped"]) == "info"
    assert worst_status(["info", "warn"]) == "warn"
