"""`auditkit init`: a starter policy for a model and a dataset, with every guess flagged for review."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import onnxruntime as ort
import pytest
from ruamel.yaml import YAML

from auditkit.policy.load import load_policy


def flat(text: str) -> str:
    """The text with runs of whitespace made one space (the console wraps long lines off a TTY)."""
    return " ".join(text.split())


def read_yaml(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path.read_text())


@pytest.fixture
def gbm_init(cli, samples, tmp_path):
    """`auditkit init` on the GBM and the test data, written one directory down: (result, policy path)."""
    output = tmp_path / "audits" / "policy.yaml"
    result = cli("init", "--model", samples / "credit_gbm.onnx", "--data", samples / "credit_test.csv", "-o", output)
    return result, output


def test_init_writes_a_policy_that_validate_accepts(cli, gbm_init):
    result, output = gbm_init
    assert result.exit_code == 0, result.stderr
    assert output.is_file()
    assert f"wrote {output}" in flat(result.stdout)
    validated = cli("validate", output)
    assert validated.exit_code == 0, validated.stderr


def test_init_guesses_the_target(gbm_init):
    result, output = gbm_init
    assert read_yaml(output)["data"]["target"] == "defaulted"
    assert "review: target guessed as 'defaulted'" in flat(result.stdout)


def test_init_guesses_protected_attributes_and_flags_them_for_review(gbm_init):
    result, output = gbm_init
    assert read_yaml(output)["data"]["protected"] == ["sex", "race", "age_band"]
    assert "review: protected attributes guessed from column names: sex, race, age_band" in flat(result.stdout)


def test_init_takes_the_features_from_the_models_inputs(samples, gbm_init):
    _, output = gbm_init
    session = ort.InferenceSession(str(samples / "credit_gbm.onnx"), providers=["CPUExecutionProvider"])
    model_inputs = [i.name for i in session.get_inputs()]
    assert len(model_inputs) == 10  # the per-column GBM (sample_models/README.md)
    features = read_yaml(output)["data"]["features"]
    assert features == model_inputs
    assert not {"defaulted", "sex", "race", "age_band", "applicant_id"} & set(features)


def test_init_writes_paths_relative_to_the_policy_file(samples, gbm_init):
    _, output = gbm_init
    policy = read_yaml(output)
    assert not Path(policy["data"]["path"]).is_absolute()
    loaded = load_policy(output)
    assert loaded.data_path.resolve() == (samples / "credit_test.csv").resolve()
    assert loaded.model_path is not None and loaded.model_path.resolve() == (samples / "credit_gbm.onnx").resolve()


def test_init_policy_runs(cli, gbm_init, tmp_path):
    """The starter policy is runnable as written (the fast check only, to keep the test quick)."""
    _, output = gbm_init
    out_dir = tmp_path / "run"
    result = cli("run", output, "--only", "data-quality", "--format", "json", "--out", out_dir, "--executor", "inline")
    assert result.exit_code in (0, 1), result.stderr
    results = json.loads((out_dir / "results.json").read_text())
    assert [c["id"] for c in results["checks"]] == ["data-quality"]
    assert results["checks"][0]["status"] in ("pass", "warn", "fail")


def test_init_refuses_to_overwrite_without_force(cli, samples, gbm_init):
    _, output = gbm_init
    output.write_text("# my edited policy\n")
    args = ("init", "--model", samples / "credit_gbm.onnx", "--data", samples / "credit_test.csv", "-o", output)
    refused = cli(*args)
    assert refused.exit_code == 2
    assert f"{output} exists; pass --force to overwrite it" in flat(refused.stderr)
    assert "Traceback" not in refused.stdout + refused.stderr
    assert output.read_text() == "# my edited policy\n"
    forced = cli(*args, "--force")
    assert forced.exit_code == 0, forced.stderr
    assert read_yaml(output)["data"]["target"] == "defaulted"


def test_init_with_an_untrusted_pickle_exits_2_and_writes_nothing(cli, samples, tmp_path):
    output = tmp_path / "policy.yaml"
    result = cli("init", "--model", samples / "credit_logreg.pkl", "--data", samples / "credit_test.csv", "-o", output)
    assert result.exit_code == 2
    assert "refusing to unpickle" in result.stderr and "credit_logreg.pkl" in result.stderr
    assert "--trust-pickle" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert list(tmp_path.iterdir()) == []


def test_init_with_a_trusted_pickle_pins_its_sha256(cli, samples, tmp_path):
    output = tmp_path / "policy.yaml"
    model = samples / "credit_logreg.pkl"
    result = cli("init", "--model", model, "--data", samples / "credit_test.csv", "-o", output, "--trust-pickle")
    assert result.exit_code == 0, result.stderr
    policy = read_yaml(output)
    assert policy["model"]["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert policy["model"]["format"] == "pickle"
    assert "review: model.sha256 pins the pickle" in flat(result.stdout)
    assert cli("validate", output).exit_code == 0
