"""Predictions mode on real data nobody here made: ProPublica's COMPAS scores (../shared)."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from sklearn import metrics as skm

from support import SHARED, write_policy

COMPAS = SHARED / "datasets" / "compas" / "compas-scores-two-years.csv"
pytestmark = pytest.mark.skipif(not COMPAS.exists(), reason="../shared/datasets/compas is not present "
                                "(it ships with the development workspace, not with a clone)")


def test_compas_decile_scores_audited_as_recorded_decisions(tmp_path, cli):
    out_dir = tmp_path / "out"
    policy = write_policy(tmp_path, {
        "version": 1, "name": "COMPAS recorded scores",
        # ProPublica's cut: decile >= 5 ("Medium" or "High") counts as predicted to reoffend
        "model": {"format": "predictions", "score_column": "decile_score", "threshold": 5, "positive_class": 1},
        "data": {"path": str(COMPAS), "target": "two_year_recid", "protected": ["race", "sex", "age_cat"],
                 "features": ["age", "priors_count", "juv_fel_count", "c_charge_degree"], "favorable_label": 0},
        "checks": [{"id": "perf", "type": "performance", "params": {"bootstrap": 200},
                    "thresholds": {"roc_auc": {"min": 0.65}, "brier_score": {"max": 0.3}}},
                   {"id": "dq", "type": "data_integrity"}],
        "report": {"formats": ["json"], "output_dir": str(out_dir)}})
    result = cli("run", policy)
    # brier_score needs probabilities; a decile score is not one: the gate cannot be evaluated (exit 3)
    assert result.exit_code == 3, result.stdout + result.stderr
    results = json.loads((out_dir / "results.json").read_text())
    raw = pd.read_csv(COMPAS)
    perf = {c["id"]: c for c in results["checks"]}["perf"]
    y, score = raw["two_year_recid"], raw["decile_score"]
    assert perf["metrics"]["roc_auc"]["value"] == pytest.approx(skm.roc_auc_score(y, score), abs=1e-12)
    assert perf["metrics"]["accuracy"]["value"] == pytest.approx(skm.accuracy_score(y, score >= 5), abs=1e-12)
    assert perf["metrics"]["brier_score"]["value"] is None
    brier = next(f for f in perf["findings"] if f["metric"] == "brier_score")
    assert brier["status"] == "error" and "not probabilities" in brier["message"]
    notes = " ".join(results["inputs"]["data"]["notes"])
    assert "'decile_score' appears 2 times" in notes and "identical values" in notes
    # the personal identifiers never reach results.json
    assert "miguel hernandez" not in (out_dir / "results.json").read_text()
