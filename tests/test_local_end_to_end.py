"""The local checks end to end through the CLI: ONNX, pickle and skops models give the same
kind of answer (and the ONNX and joblib copies of one model the same numbers); in predictions
mode they are skipped with the reason."""
from __future__ import annotations

import json

import pytest

from support import credit_policy, hiring_predictions_policy, write_policy

ROWS = [5, 17, 230]
NUMERIC = ["income", "debt_ratio", "credit_history_years", "n_late_payments", "loan_amount", "employment_years",
           "n_open_accounts"]


def _local_checks(features: list[str]) -> list[dict]:
    return [
        {"id": "why", "type": "local_explanations", "params": {"rows": ROWS, "lime_samples": 800}},
        {"id": "what-if", "type": "ceteris_paribus", "params": {"rows": ROWS, "features": features[:2], "grid_resolution": 8}},
        {"id": "rules", "type": "anchors", "params": {"rows": ROWS, "max_samples": 6000, "batch_size": 100}},
        {"id": "recourse", "type": "counterfactuals", "params": {"sample": 15, "immutable": ["n_late_payments"]}},
    ]


MODELS = {
    "onnx": ({"path": "credit_gbm.onnx"}, None),
    "joblib": ({"path": "credit_gbm.joblib"}, None),
    "pickle": ({"path": "credit_logreg.pkl"}, NUMERIC),
    "skops": ({"path": "credit_rf.skops", "trusted_types": ["numpy.dtype", "sklearn.tree._tree.Tree"]}, None),
}


@pytest.fixture(scope="module")
def runs(samples, tmp_path_factory):
    from typer.testing import CliRunner

    from auditkit.cli import app

    def cli(*args):
        return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)

    out = {}
    for name, (model, features) in MODELS.items():
        directory = tmp_path_factory.mktemp(name)
        manifest = json.loads((samples / "manifest.json").read_text())
        model = {**model, "path": str(samples / model["path"])}
        if name in ("joblib", "pickle"):
            model["sha256"] = manifest[model["path"].rsplit("/", 1)[-1]]["sha256"]
        data = {"sample": None, **({"features": features} if features else {})}
        policy = credit_policy(samples, directory / "out", model=model, data=data,
                               checks=_local_checks(features or ["income", "debt_ratio"]))
        result = cli("run", write_policy(directory, policy))
        assert result.exit_code == 0, result.stdout + result.stderr
        out[name] = {c["id"]: c for c in json.loads((directory / "out" / "results.json").read_text())["checks"]}
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_format_explains_the_same_rows_additively(runs, name):
    why = runs[name]["why"]
    assert why["status"] == "info"  # no threshold declared: reported, not assessed
    assert [e["row"] for e in why["tables"]["explanations"]] == ROWS
    assert why["metrics"]["additivity_error"]["value"] < 1e-4
    assert {p["kind"] for p in why["plots"]} == {"waterfall"}
    assert runs[name]["what-if"]["status"] == "info"
    anchors = runs[name]["rules"]
    assert anchors["status"] == "info" and [a["row"] for a in anchors["tables"]["anchors"]] == ROWS
    assert all(0 <= a["precision"] <= 1 and 0 <= a["coverage"] <= 1 for a in anchors["tables"]["anchors"])
    recourse = runs[name]["recourse"]
    assert recourse["status"] == "info" and len(recourse["tables"]["counterfactuals"]) == 15
    found = [r for r in recourse["tables"]["counterfactuals"] if r["found"]]
    assert found and all("n_late_payments" not in r["changes"] and r["score_before"] >= 0.5 > r["score_after"]
                         for r in found)


@pytest.mark.slow
def test_the_onnx_and_joblib_copies_of_one_model_give_the_same_shap_values(runs):
    def shap(name):
        return {(a["row"], a["feature"]): a["shap"] for a in runs[name]["why"]["tables"]["attributions"]}

    onnx, joblib = shap("onnx"), shap("joblib")
    assert onnx.keys() == joblib.keys()
    assert max(abs(onnx[k] - joblib[k]) for k in onnx) < 1e-4  # float32 thresholds in ONNX


def test_predictions_mode_skips_the_local_checks_with_the_reason(samples, tmp_path, cli):
    out_dir = tmp_path / "out"
    policy = write_policy(tmp_path, hiring_predictions_policy(samples, out_dir, [
        {"id": "why", "type": "local_explanations", "params": {"rows": [1, 2]}},
        {"id": "what-if", "type": "ceteris_paribus", "params": {"rows": [1, 2]}},
        {"id": "rules", "type": "anchors", "params": {"rows": [1, 2]}},
        {"id": "recourse", "type": "counterfactuals", "params": {"sample": 5}}]))
    result = cli("run", policy)
    assert result.exit_code == 0, result.stdout + result.stderr
    for check in json.loads((out_dir / "results.json").read_text())["checks"]:
        assert check["status"] == "skipped" and "no model to query" in check["notes"][0]
