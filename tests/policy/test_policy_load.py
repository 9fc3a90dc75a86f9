"""`load_policy`: every error names file:line:column and the key, with what was expected and found.

The policies are written as block YAML text, so each test knows the line its error must name.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from support import ROOT, credit_policy, write_policy

from auditkit.errors import PolicyError, UnknownCheckError
from auditkit.policy.load import LoadedPolicy, load_policy

POLICIES = sorted((ROOT / "policies").glob("*.yaml"))

HEAD = """\
version: 1
name: policy under test
model:
  path: model.onnx
data:
  path: data.csv
"""  # 6 lines; the files need not exist: loading does not open them


def load_text(tmp_path: Path, text: str) -> LoadedPolicy:
    return load_policy(write_policy(tmp_path, text))


def refusal(tmp_path: Path, text: str, error: type[PolicyError] = PolicyError) -> str:
    with pytest.raises(error) as info:
        load_text(tmp_path, text)
    return str(info.value)


def test_valid_policy_loads_with_validated_params(tmp_path):
    loaded = load_text(tmp_path, HEAD + """\
checks:
  - type: data_integrity
  - id: perf
    type: performance
    params: {metrics: [roc_auc], bootstrap: 10}
    thresholds:
      roc_auc: {min: 0.7, on: lower, severity: warn}
""")
    assert [c.check_id for c in loaded.policy.checks] == ["data_integrity", "perf"]
    assert loaded.params["perf"].bootstrap == 10
    threshold = loaded.policy.checks[1].thresholds["roc_auc"]
    assert (threshold.min, threshold.max, threshold.on, threshold.severity) == (0.7, None, "lower", "warn")
    assert len(loaded.sha256) == 64


def test_error_deep_in_check_params_names_file_line_column_and_key(tmp_path):
    message = refusal(tmp_path, HEAD + """\
checks:
  - type: data_integrity
  - id: perf
    type: performance
    params:
      metrics: [roc_auc]
      bootstrap: -1
""")
    assert message.startswith(f"{tmp_path / 'policy.yaml'}:13:7 checks[1].params.bootstrap: ")
    assert "greater than or equal to 0" in message
    assert "got -1" in message


def test_unknown_param_suggests_the_closest_param(tmp_path):
    message = refusal(tmp_path, HEAD + """\
checks:
  - type: performance
    params: {metric: [roc_auc]}
""")
    assert "policy.yaml:9:14 checks[0].params.metric: unknown key 'metric'; did you mean 'metrics'?" in message


def test_unknown_metric_name_in_params_lists_choices_and_suggests(tmp_path):
    message = refusal(tmp_path, HEAD + """\
checks:
  - type: performance
    params: {metrics: [roc_acu]}
""")
    assert "policy.yaml:9:24 checks[0].params.metrics[0]:" in message
    assert "'roc_auc'" in message and "got 'roc_acu'" in message
    assert "hint: did you mean 'roc_auc'?" in message


def test_wrong_type_names_the_key_and_the_value_found(tmp_path):
    message = refusal(tmp_path, HEAD.replace("name: policy under test\n", "name: policy under test\nseed: abc\n") + """\
checks:
  - type: data_integrity
""")
    assert "policy.yaml:3:1 seed:" in message
    assert "valid integer" in message
    assert "got 'abc'" in message


def test_threshold_without_min_or_max_is_refused(tmp_path):
    message = refusal(tmp_path, HEAD + """\
checks:
  - type: performance
    thresholds:
      roc_auc: {severity: warn}
""")
    assert "policy.yaml:10:7 checks[0].thresholds.roc_auc: a threshold needs min, max, max_decrease or max_increase" in message


def test_threshold_with_min_above_max_is_refused(tmp_path):
    message = refusal(tmp_path, HEAD + """\
checks:
  - type: performance
    thresholds:
      roc_auc: {min: 0.9, max: 0.1}
""")
    assert "policy.yaml:10:7 checks[0].thresholds.roc_auc: min (0.9) is greater than max (0.1)" in message


def test_threshold_given_as_a_bare_number_is_refused_without_internal_class_names(tmp_path):
    message = refusal(tmp_path, HEAD + """\
checks:
  - type: performance
    thresholds:
      roc_auc: 0.7
""")
    assert "policy.yaml:10:7 checks[0].thresholds.roc_auc: input should be a valid dictionary, got 0.7" in message
    assert "instance of" not in message  # pydantic's model class names mean nothing to a policy author


def test_threshold_on_must_be_value_lower_or_upper(tmp_path):
    message = refusal(tmp_path, HEAD + """\
checks:
  - type: performance
    thresholds:
      roc_auc: {min: 0.7, on: middle}
""")
    assert "policy.yaml:10:27 checks[0].thresholds.roc_auc.on:" in message
    assert "'value', 'lower' or 'upper'" in message
    assert "got 'middle'" in message


def test_misspelt_threshold_on_suggests_the_closest_option(tmp_path):
    message = refusal(tmp_path, HEAD + """\
checks:
  - type: performance
    thresholds:
      roc_auc: {min: 0.7, on: lowr}
""")
    assert "hint: did you mean 'lower'?" in message


@pytest.mark.parametrize("checks, line, duplicate", [
    pytest.param("  - id: same\n    type: performance\n  - id: same\n    type: data_integrity\n", 10, "same",
                 id="explicit-ids"),
    pytest.param("  - type: data_integrity\n  - type: data_integrity\n", 9, "data_integrity", id="ids-from-type"),
])
def test_duplicate_check_ids_are_refused(tmp_path, checks, line, duplicate):
    message = refusal(tmp_path, HEAD + "checks:\n" + checks)
    assert f"policy.yaml:{line}:" in message
    assert f"checks[1]: duplicate check id '{duplicate}' (also checks[0])" in message


def test_unknown_check_type_is_an_unknown_check_error_with_suggestion(tmp_path):
    message = refusal(tmp_path, HEAD + "checks:\n  - type: perfomance\n", UnknownCheckError)
    assert "policy.yaml:8:5 checks[0].type: unknown check type 'perfomance'; did you mean 'performance'?" in message


def test_empty_check_list_is_refused(tmp_path):
    message = refusal(tmp_path, HEAD + "checks: []\n")
    assert "policy.yaml:7:1 checks: list should have at least 1 item" in message


def test_several_errors_are_reported_together(tmp_path):
    message = refusal(tmp_path, HEAD.replace("name: policy under test\n", "nmae: x\n") + """\
checks:
  - type: data_integrity
    thresholds: {rows: {min: 5, max: 1}}
""")
    lines = message.splitlines()
    assert any("name: required key is missing" in line for line in lines)
    assert any("policy.yaml:2:1 nmae: unknown key 'nmae'; did you mean 'name'?" in line for line in lines)
    assert any("checks[0].thresholds.rows: min (5.0) is greater than max (1.0)" in line for line in lines)


# --------------------------------------------------------------------------- paths


def test_paths_are_resolved_relative_to_the_policy_file(tmp_path):
    subdir = tmp_path / "policies" / "team"
    subdir.mkdir(parents=True)
    loaded = load_policy(write_policy(subdir, """\
version: 1
name: relative paths
model:
  path: ../../models/m.onnx
data:
  path: ../../data/test.csv
  reference: train.csv
checks:
  - type: data_integrity
report:
  output_dir: out/reports
"""))
    assert loaded.data_path.resolve() == (tmp_path / "data" / "test.csv").resolve()
    assert loaded.model_path is not None and loaded.model_path.resolve() == (tmp_path / "models" / "m.onnx").resolve()
    assert loaded.reference_path is not None and loaded.reference_path.resolve() == (subdir / "train.csv").resolve()
    assert loaded.output_dir().resolve() == (subdir / "out" / "reports").resolve()
    assert loaded.output_dir(tmp_path / "cli-out") == tmp_path / "cli-out"  # --out wins


def test_absolute_paths_stay_as_written(samples, tmp_path):
    subdir = tmp_path / "deep" / "er"
    subdir.mkdir(parents=True)
    loaded = load_policy(write_policy(subdir, credit_policy(samples, tmp_path / "out")))
    assert loaded.data_path == samples / "credit_test.csv"
    assert loaded.model_path == samples / "credit_gbm.onnx"


# --------------------------------------------------------------------------- auditkit validate


@pytest.mark.parametrize("policy", POLICIES, ids=[p.name for p in POLICIES])
def test_validate_accepts_the_shipped_policies(cli, policy):
    result = cli("validate", policy)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("valid: ")


def test_the_shipped_policies_are_found():
    assert [p.name for p in POLICIES] == ["ci_gate.yaml", "credit_candidate.yaml", "credit_monitoring.yaml",
                                          "credit_rate.yaml", "credit_rate_explain.yaml", "credit_scoring.yaml",
                                          "credit_tier.yaml", "hiring_decisions.yaml", "text_screening.yaml"]


def test_validate_refuses_a_bad_policy_with_exit_code_2(cli, samples, tmp_path):
    policy = credit_policy(samples, tmp_path / "out")
    policy["checks"][0]["thresholds"] = {"roc_auc": {"min": 0.9, "max": 0.1}}
    result = cli("validate", write_policy(tmp_path, policy))
    assert result.exit_code == 2
    assert "checks[0].thresholds.roc_auc: min (0.9) is greater than max (0.1)" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "valid:" not in result.stdout


def test_a_parameter_given_by_its_former_name_loads_with_a_warning(samples, tmp_path):
    """Renamed parameters (repeats -> n_repeats, grid_size -> grid_resolution, interaction
    sample -> max_rows) keep old policies working, with a warning naming the line (#17)."""
    from support import credit_policy, write_policy

    policy = credit_policy(samples, tmp_path / "out")
    policy["checks"] = [{"id": "noise", "type": "noise_robustness", "params": {"levels": [0.1], "repeats": 3}},
                        {"id": "h", "type": "interaction_strength", "params": {"sample": 50}}]
    loaded = load_policy(write_policy(tmp_path, policy))
    assert loaded.params["noise"].n_repeats == 3
    assert loaded.params["h"].max_rows == 50
    assert len(loaded.warnings) == 2
    assert "checks[0].params.repeats: 'repeats' is now called 'n_repeats'" in loaded.warnings[0]
    assert "checks[1].params.sample: 'sample' is now called 'max_rows'" in loaded.warnings[1]


def test_a_parameter_given_by_both_names_is_refused(samples, tmp_path):
    from support import credit_policy, write_policy

    policy = credit_policy(samples, tmp_path / "out")
    policy["checks"] = [{"id": "noise", "type": "noise_robustness", "params": {"repeats": 3, "n_repeats": 4}}]
    with pytest.raises(PolicyError, match="'repeats' is the former name of 'n_repeats'"):
        load_policy(write_policy(tmp_path, policy))
