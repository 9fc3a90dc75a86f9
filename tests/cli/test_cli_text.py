"""The text model through the CLI: data.text validated before anything runs, and the demo
text policy end to end (planted words found, planted bias failing identity_substitution)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support import ROOT, write_policy


@pytest.fixture(scope="module")
def text_samples(samples: Path) -> Path:
    if not (samples / "text_screening.onnx").exists():
        subprocess.run([sys.executable, str(samples / "build.py"), "--text-only"], check=True)
    return samples


def text_policy(samples: Path, out_dir: Path, **data: Any) -> dict[str, Any]:
    return {"version": 1, "name": "text", "seed": 1,
            "model": {"path": str(samples / "text_screening.onnx"), "task": "binary", "positive_class": 1},
            "data": {"path": str(samples / "text_notes.csv"), "target": "shortlisted", "protected": ["gender"],
                     "ignore": ["application_id"], "text": ["note"], **data},
            "checks": [{"id": "swap", "type": "identity_substitution", "params": {"max_rows": 100, "bootstrap": 50},
                        "thresholds": {"flip_rate": {"max": 0.01}}}],
            "report": {"formats": ["json"], "output_dir": str(out_dir)}}


@pytest.mark.parametrize("text, expected", [(["notes"], "column 'notes' is not in"),
                                            (["gender"], "data.text names 'gender', which is not a model input")])
def test_a_text_column_that_is_missing_or_not_a_model_input_exits_2_naming_the_key(cli, text_samples, tmp_path,
                                                                                    text, expected):
    path = write_policy(tmp_path, text_policy(text_samples, tmp_path / "out", text=text))
    result = cli("run", path)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert expected in result.stderr and "data.text[0]" in result.stderr
    assert not (tmp_path / "out" / "results.json").exists()


def test_the_text_model_runs_without_declaring_its_features(cli, text_samples, tmp_path):
    result = cli("run", write_policy(tmp_path, text_policy(text_samples, tmp_path / "out")))
    assert result.exit_code == 1, result.stdout + result.stderr  # the planted bias fails flip_rate
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["inputs"]["data"]["features"] == ["note"] and results["inputs"]["data"]["text"] == ["note"]
    (check,) = results["checks"]
    assert check["status"] == "fail" and check["metrics"]["flip_rate"]["value"] > 0


@pytest.mark.slow  # SHAP's first call compiles with numba (~20 s), and the HTML report is drawn
def test_text_screening_policy_finds_the_planted_words_and_the_planted_bias(cli, text_samples, tmp_path):
    result = cli("run", ROOT / "policies" / "text_screening.yaml", "--out", tmp_path, "--format", "json,html")
    assert result.exit_code == 1, result.stdout + result.stderr
    checks = {c["id"]: c for c in json.loads((tmp_path / "results.json").read_text())["checks"]}
    assert {i: c["status"] for i, c in checks.items()} == {
        "discrimination": "pass", "words": "warn", "pronoun-swap": "fail", "typos": "warn", "gender-fairness": "fail"}
    top = checks["words"]["tables"]["top_tokens"]
    assert {r["token"] for r in top if r["class"] == "1" and r["rank"] <= 3} == {"certified", "python", "mentored"}
    assert {r["token"] for r in top if r["class"] == "0" and r["rank"] <= 2} == {"late", "incomplete"}
    swap = checks["pronoun-swap"]["metrics"]
    assert swap["mean_score_change[female_to_male]"]["ci"][0] > 0 > swap["mean_score_change[male_to_female]"]["ci"][1]
    html = (tmp_path / "report.html").read_text()
    assert "identity_substitution" in html and "token_attributions" in html


def test_init_declares_a_text_input_and_adds_the_text_checks(cli, text_samples, tmp_path):
    import yaml

    output = tmp_path / "policy.yaml"
    result = cli("init", "--model", text_samples / "text_screening.onnx", "--data", text_samples / "text_notes.csv",
                 "-o", output)
    assert result.exit_code == 0, result.stdout + result.stderr
    policy = yaml.safe_load(output.read_text())
    assert policy["data"]["text"] == ["note"]
    types = [c["type"] for c in policy["checks"]]
    assert {"token_attributions", "identity_substitution", "text_noise"} <= set(types)
    assert "proxy_detection" not in types and "local_explanations" not in types  # they would only skip
    assert cli("validate", output).exit_code == 0


def test_init_leaves_categorical_string_inputs_alone(cli, samples, tmp_path):
    import yaml

    output = tmp_path / "policy.yaml"
    assert cli("init", "--model", samples / "credit_gbm.onnx", "--data", samples / "credit_test.csv",
               "-o", output).exit_code == 0
    assert "text" not in yaml.safe_load(output.read_text())["data"]
