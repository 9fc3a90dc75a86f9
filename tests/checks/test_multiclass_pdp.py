"""partial_dependence on a multiclass model: one PDP per class, equal to scikit-learn's (#18)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import skops.io
from numpy.testing import assert_allclose

from check_support import run_check
from task_support import TIER_FEATURES, TIER_TRUSTED, model_data


@pytest.fixture(scope="module")
def tier(samples):
    frame = pd.read_csv(samples / "credit_tier_test.csv").iloc[:300]
    data = model_data(samples / "credit_tier.skops", frame, TIER_FEATURES, "risk_tier", task="multiclass",
                      fmt="skops", trusted=TIER_TRUSTED)
    return data, frame


def test_pdp_of_every_class_equals_scikit_learn_partial_dependence(samples, tier):
    from sklearn.inspection import partial_dependence as sk_pd

    data, frame = tier
    output = run_check("partial_dependence", data, {"features": ["income", "n_late_payments"], "max_rows": 5000})
    pipeline = skops.io.load(samples / "credit_tier.skops", trusted=list(TIER_TRUSTED))
    X = frame[TIER_FEATURES].copy()
    for c in TIER_FEATURES:  # scikit-learn refuses integer columns; the model reads floats either way
        X[c] = X[c].astype(object) if c in ("home_ownership", "purpose", "zip_region") else X[c].astype(float)
    records = output.tables["pdp"]
    assert {(r["feature"], r["class"]) for r in records} == {
        (f, c) for f in ("income", "n_late_payments") for c in ("high", "low", "medium")}
    for feature in ("income", "n_late_payments"):
        reference = sk_pd(pipeline, X, [feature], kind="average", grid_resolution=20, percentiles=(0.05, 0.95),
                          method="brute")
        for k, label in enumerate(pipeline.classes_):
            record = next(r for r in records if r["feature"] == feature and r["class"] == label)
            assert_allclose(record["grid"], reference["grid_values"][0], rtol=1e-12)
            assert_allclose(record["pdp"], reference["average"][k], atol=1e-12)  # same model, same rows
    # the planted step (sample_models/README.md section 5): P(high) jumps from 1 to 2 late payments
    late = {r["class"]: dict(zip(r["grid"], r["pdp"])) for r in records if r["feature"] == "n_late_payments"}
    assert late["high"][2.0] - late["high"][1.0] > 0.9
    assert output.metrics["pdp_range[n_late_payments]"].note == "largest over the classes: P(high)"
    assert len(output.plots) == 2 and len(output.plots[0].data["series"]) == 3


def test_monotone_directions_on_a_multiclass_model_need_a_target_class(tier):
    from auditkit.engine.worker import CheckTask, execute

    data, _ = tier
    outcome = execute(CheckTask(check_id="c", type="partial_dependence", seed=0, timeout_s=60,
                                params={"features": ["income"], "monotone": {"income": "decreasing"}}), data)
    assert outcome.error is not None and "params.target_class" in outcome.error
    output = run_check("partial_dependence", data, {"features": ["n_late_payments"], "target_class": "high",
                                                    "monotone": {"n_late_payments": "increasing"}, "max_rows": 100})
    # P(high) never falls as late payments rise: the planted rule is a step up
    assert output.metrics["monotonicity_violation[n_late_payments]"].value == 0.0
    assert "P(high)" in output.plots[0].title
