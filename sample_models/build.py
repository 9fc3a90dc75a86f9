"""Build the sample artefacts that auditkit's demo, tests and benchmarks audit.

Run ``python sample_models/build.py`` (from anywhere; paths are resolved relative
to this file). Everything is synthetic and deterministic: every random draw comes
from a seeded ``numpy.random.Generator`` and every estimator has a fixed
``random_state``, so a rerun with the same library versions rewrites byte-identical
files (the CSVs always; the ONNX graphs get fixed names and the skops zip is normalised
so that the model files are reproducible too).

What is built (all written into this directory, each file atomically):

* ``credit_train.csv`` / ``credit_test.csv``: a synthetic credit-scoring population
  with known ground truth: which features drive default, a feature with no effect
  (``n_open_accounts``), a proxy for race (``zip_region``), an injected historic bias
  against Black applicants, and (test file only) planted data-quality faults.
* ``credit_gbm.onnx`` (+ ``.joblib``), ``credit_logreg.onnx`` (+ ``.pkl``),
  ``credit_rf.joblib`` / ``credit_rf.skops`` and ``credit_rate_gbr.onnx``: models
  trained on ``credit_train.csv``; every ONNX export is checked against its sklearn
  original with onnxruntime before it is written.
* ``credit_gbm_candidate.onnx``: a retrained "candidate" of the demo GBM, same pipeline
  and hyper-parameters, fitted on training labels where a quarter of the repaid loans in
  the bias regions were recorded as defaults: a larger disparity against Black applicants
  (the planted regression that ``auditkit diff`` and relative thresholds must catch).
  ``python sample_models/build.py --candidate-only`` adds it to an existing build.
* ``credit_recent.csv``: a recent extract of applicants (8,000 rows) drawn from a shifted
  population: lower incomes and more debt-consolidation loans (the planted drift that the
  ``drift`` check must find; everything else drawn as before).
* ``credit_logreg.skops``: the logistic regression of ``credit_logreg.pkl`` saved with
  skops (a refittable model that loads without trusting a pickle: ``influential_instances``).
* ``hiring_decisions.csv``: a vendor's past decisions (no model) with an injected
  sex disparity, for auditkit's predictions-only mode.
* ``manifest.json``, written LAST: sha256/size/description of each artefact plus the
  ground-truth figures measured on this build. The Makefile uses it as the
  "already built" stamp, so it must only appear once everything else is in place.

See ``README.md`` next to this file for the ground truth in prose.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import re
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import onnxruntime as ort
import pandas as pd
import skops.io
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import r2_score, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

OUT_DIR = Path(__file__).resolve().parent
MANIFEST = "manifest.json"

# One master seed; each generator below derives its own stream from it so that
# changing one part of the data does not reshuffle the others.
SEED = 20240611

# --------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------
PROTECTED = ["sex", "race", "age_band"]
NUMERIC_FEATURES = [
    "income",
    "debt_ratio",
    "credit_history_years",
    "n_late_payments",
    "loan_amount",
    "employment_years",
    "n_open_accounts",
]
CATEGORICAL_FEATURES = ["home_ownership", "purpose", "zip_region"]
FEATURES = NUMERIC_FEATURES + CATEGORICAL_FEATURES
CREDIT_COLUMNS = (
    ["applicant_id"] + PROTECTED + FEATURES + ["interest_rate", "defaulted"]
)

RACES = ["White", "Black", "Hispanic", "Asian", "Other"]
RACE_P = [0.60, 0.15, 0.15, 0.07, 0.03]
AGE_BANDS = ["18-25", "26-40", "41-60", "60+"]
AGE_BAND_P = [0.15, 0.40, 0.33, 0.12]
REGIONS = [f"R{i:02d}" for i in range(1, 13)]
PURPOSES = ["car", "home_improvement", "debt_consolidation", "education", "business", "other"]
PURPOSE_P = [0.22, 0.15, 0.30, 0.08, 0.10, 0.15]

N_POPULATION = 50_000
N_TRAIN = 30_000
N_DUPLICATES = 150  # planted in credit_test.csv only
N_OUT_OF_RANGE = 40  # test incomes above the training maximum
MISSING_EMPLOYMENT_SHARE = 0.03

# Regions where Black applicants are concentrated (residential segregation): the
# historic-bias term of the label acts through these, never through race directly.
BIAS_REGIONS = ["R03", "R07", "R11"]
HISPANIC_REGIONS = ["R05", "R09"]  # a milder concentration, no bias term

# Generating logistic model of `defaulted` (logit scale, natural units). This is the
# ground truth the README documents; n_open_accounts, loan_amount and home_ownership
# have coefficient 0 and sex/race/age_band do not enter directly.
LOGIT_INTERCEPT = -2.00
LOGIT_COEF = {
    "log_income_over_45k": -1.65,  # per unit of ln(income / 45,000)
    "debt_ratio": 2.40,
    "n_late_payments": 0.68,
    "credit_history_years": -0.05,
    "employment_years": -0.09,
}
PURPOSE_EFFECT = {
    "car": 0.0,
    "home_improvement": -0.20,
    "debt_consolidation": 0.30,
    "education": 0.20,
    "business": 0.50,
    "other": 0.10,
}
REGION_BIAS = 1.00  # added to the logit for applicants living in BIAS_REGIONS
# Lower simulated incomes (multiplicative, on ln income): the second bias channel.
RACE_LOG_INCOME_SHIFT = {
    "White": 0.0, "Black": -0.30, "Hispanic": -0.18, "Asian": 0.05, "Other": -0.05,
}

# The candidate model's training labels: this share of the repaid loans (defaulted == 0) of
# applicants living in BIAS_REGIONS is recorded as a default, from its own seeded stream.
# Only labels change (same rows, features, pipeline and random_state as credit_gbm), so the
# candidate's larger racial disparity is the planted regression and nothing else moves much.
CANDIDATE_FLIP_SHARE = 0.25

# The recent extract (credit_recent.csv): the same generating process with two planted shifts.
N_RECENT = 8_000
RECENT_ID_START = 200_000  # applicant ids that the train and test files do not use
RECENT_LOG_INCOME_SHIFT = -0.25  # incomes x0.78: e.g. a new market segment of lower earners
RECENT_PURPOSE_P = [0.15, 0.10, 0.45, 0.08, 0.07, 0.15]  # debt consolidation 30% -> 45%, business 10% -> 7%, ...

# Hiring: women's vendor scores are shifted down by this many points.
HIRING_N = 6_000
HIRING_SEX_SHIFT = -3.5
HIRING_THRESHOLD = 60.0

# ORT float32 vs sklearn float64: tolerance for the post-export equality check.
ONNX_TOL = 1e-4
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


# --------------------------------------------------------------------------------------
# Atomic output
# --------------------------------------------------------------------------------------
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(name: str) -> Iterator[Path]:
    """Yield a temporary path in OUT_DIR; on success move it onto ``name``.

    Same directory, so ``os.replace`` is atomic: a reader (or an interrupted build)
    never sees a half-written artefact under its final name.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=OUT_DIR)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the usual permissions
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:  # make the bytes durable before the rename
            os.fsync(fh.fileno())
        os.replace(tmp_path, OUT_DIR / name)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes(name: str, data: bytes) -> None:
    with atomic_path(name) as tmp:
        tmp.write_bytes(data)


def write_csv(name: str, df: pd.DataFrame) -> None:
    # Explicit line terminator and empty na_rep: stable bytes, NaN -> empty cell.
    write_bytes(name, df.to_csv(index=False, lineterminator="\n", na_rep="").encode("utf-8"))


def write_with(name: str, dump: Callable[[Path], None]) -> None:
    with atomic_path(name) as tmp:
        dump(tmp)


def stable_skops_bytes(model: Any) -> bytes:
    """``skops.io.dumps`` made byte-reproducible.

    skops names its array members and ``__id__`` fields after ``id(obj)`` (memory
    addresses) and stamps zip entries with the current time, so two dumps of the same
    model differ. We renumber the ids in order of first appearance in schema.json and
    rewrite the zip with a fixed timestamp. The ids are only memo keys for the loader,
    so the renumbered file loads identically (build_rf_skops checks that round trip).
    """
    raw = zipfile.ZipFile(io.BytesIO(skops.io.dumps(model)))
    schema = raw.read("schema.json").decode("utf-8")
    new_id: dict[str, str] = {}
    for old in re.findall(r'"__id__": (\d+)', schema):
        new_id.setdefault(old, str(len(new_id) + 1))
    members = [n for n in raw.namelist() if n != "schema.json"]
    for name in members:  # any member not named after an id (e.g. uuid .bin files)
        new_id.setdefault(name.rsplit(".", 1)[0], str(len(new_id) + 1))

    def rename(member: str) -> str:
        stem, ext = member.rsplit(".", 1)
        return f"{new_id[stem]}.{ext}"

    schema = re.sub(r'"__id__": (\d+)', lambda m: f'"__id__": {new_id[m.group(1)]}', schema)
    schema = re.sub(r'"file": "([^"]+)"', lambda m: f'"file": "{rename(m.group(1))}"', schema)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as dst:
        entries = [(rename(n), raw.read(n)) for n in members] + [("schema.json", schema.encode())]
        for name, data in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            dst.writestr(info, data)
    return out.getvalue()


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------------------
# 1. Credit-scoring population
# --------------------------------------------------------------------------------------
def region_probabilities() -> dict[str, np.ndarray]:
    """P(zip_region | race). Black applicants live mostly in BIAS_REGIONS, which is
    what makes zip_region a proxy for race."""
    def dist(weights: dict[str, float], rest: float) -> np.ndarray:
        p = np.array([weights.get(r, rest) for r in REGIONS], dtype=float)
        return p / p.sum()

    black = {r: 0.26 for r in BIAS_REGIONS}  # ~78% of Black applicants in 3 regions
    hispanic = {r: 0.22 for r in HISPANIC_REGIONS} | {r: 0.06 for r in BIAS_REGIONS}
    white = {r: 0.03 for r in BIAS_REGIONS}
    return {
        "White": dist(white, 0.10),
        "Black": dist(black, 0.025),
        "Hispanic": dist(hispanic, 0.05),
        "Asian": dist({"R01": 0.20, "R02": 0.15, "R03": 0.05, "R07": 0.05, "R11": 0.05}, 0.07),
        "Other": dist({}, 1.0),
    }


def generate_population(rng: np.random.Generator, n: int, *, log_income_shift: float = 0.0,
                        purpose_p: list[float] | None = None) -> pd.DataFrame:
    """Draw the whole applicant population (train and test come from the same one).

    ``log_income_shift`` and ``purpose_p`` shift the population for the recent extract; their
    defaults leave every draw as it was (the train and test files do not change)."""
    sex = rng.choice(["F", "M"], size=n)
    race = rng.choice(RACES, size=n, p=RACE_P)
    age_idx = rng.choice(len(AGE_BANDS), size=n, p=AGE_BAND_P)
    age_band = np.array(AGE_BANDS)[age_idx]

    region_p = region_probabilities()
    zip_region = np.empty(n, dtype=object)
    for r in RACES:
        mask = race == r
        zip_region[mask] = rng.choice(REGIONS, size=int(mask.sum()), p=region_p[r])

    # Income grows with age band (career progression) and carries the race shift.
    age_log_income = np.array([-0.35, 0.0, 0.15, -0.05])[age_idx]
    race_shift = np.array([RACE_LOG_INCOME_SHIFT[r] for r in race])
    log_income = np.log(45_000) + age_log_income + race_shift + rng.normal(0.0, 0.45, n)
    if log_income_shift:
        log_income = log_income + log_income_shift
    income = np.round(np.exp(log_income), -1).astype(np.int64)  # whole tens of dollars

    debt_ratio = np.clip(rng.gamma(2.2, 0.16, n), 0.0, 1.5).round(3)

    # Credit history cannot be longer than adult life: bounded by the age band.
    lo = np.array([0, 1, 5, 10])[age_idx]
    hi = np.array([7, 20, 35, 40])[age_idx]
    credit_history_years = np.floor(lo + (hi - lo) * rng.beta(2.0, 2.0, n)).astype(int)

    n_late_payments = rng.poisson(0.3 + 1.2 * debt_ratio)

    purpose = rng.choice(PURPOSES, size=n, p=PURPOSE_P if purpose_p is None else purpose_p)
    purpose_loan = {"car": 15_000, "home_improvement": 20_000, "debt_consolidation": 12_000,
                    "education": 18_000, "business": 30_000, "other": 6_000}
    base_loan = np.array([purpose_loan[p] for p in purpose], dtype=float)
    loan_amount = np.round(base_loan * (income / 45_000) ** 0.4 * rng.lognormal(0.0, 0.45, n), -2)
    loan_amount = np.maximum(loan_amount, 500.0).astype(np.int64)

    max_emp = np.array([8, 22, 40, 45])[age_idx]
    employment_years = np.minimum(rng.gamma(2.0, 3.5, n), max_emp).round(1)

    # Independent of everything, including the label: the "model should ignore it" feature.
    n_open_accounts = rng.poisson(4.0, n)

    # Home ownership rises with age and income (correlated, but no direct label effect).
    own_score = 0.6 * (age_idx - 1.5) + 0.8 * (log_income - np.log(45_000)) + rng.normal(0, 1, n)
    home_ownership = np.where(own_score < -0.2, "RENT",
                              np.where(own_score < 1.0, "MORTGAGE", "OWN"))

    df = pd.DataFrame({
        "applicant_id": np.arange(100_000, 100_000 + n),
        "sex": sex, "race": race, "age_band": age_band,
        "income": income, "debt_ratio": debt_ratio,
        "credit_history_years": credit_history_years, "n_late_payments": n_late_payments,
        "loan_amount": loan_amount, "employment_years": employment_years,
        "n_open_accounts": n_open_accounts, "home_ownership": home_ownership,
        "purpose": purpose, "zip_region": zip_region.astype(str),
    })
    df["defaulted"] = draw_default(rng, df)
    df["interest_rate"] = draw_interest_rate(rng, df)

    # Missingness is applied AFTER the label and rate were drawn from the true values:
    # the applicant had an employment history, the lender just failed to record it.
    missing = rng.random(n) < MISSING_EMPLOYMENT_SHARE
    df.loc[missing, "employment_years"] = np.nan
    return df[CREDIT_COLUMNS]


def default_logit(df: pd.DataFrame) -> np.ndarray:
    """The generating logistic model of `defaulted` (documented in README.md)."""
    c = LOGIT_COEF
    logit = (
        LOGIT_INTERCEPT
        + c["log_income_over_45k"] * np.log(df["income"].to_numpy() / 45_000)
        + c["debt_ratio"] * df["debt_ratio"].to_numpy()
        + c["n_late_payments"] * df["n_late_payments"].to_numpy()
        + c["credit_history_years"] * df["credit_history_years"].to_numpy()
        + c["employment_years"] * df["employment_years"].to_numpy()
        + df["purpose"].map(PURPOSE_EFFECT).to_numpy(dtype=float)
        # Historic bias: enters through where people live, not through race itself.
        + REGION_BIAS * df["zip_region"].isin(BIAS_REGIONS).to_numpy()
    )
    return logit


def draw_default(rng: np.random.Generator, df: pd.DataFrame) -> np.ndarray:
    p = 1.0 / (1.0 + np.exp(-default_logit(df)))
    return (rng.random(len(df)) < p).astype(int)


def draw_interest_rate(rng: np.random.Generator, df: pd.DataFrame) -> np.ndarray:
    """Regression target: priced on the applicant's features plus noise (percent p.a.)."""
    purpose_premium = df["purpose"].map(
        {"car": -0.5, "home_improvement": 0.0, "debt_consolidation": 0.8,
         "education": 0.3, "business": 1.5, "other": 1.0}).to_numpy(dtype=float)
    rate = (
        7.0
        - 2.0 * np.log(df["income"].to_numpy() / 45_000)
        + 4.0 * df["debt_ratio"].to_numpy()
        + 0.9 * df["n_late_payments"].to_numpy()
        - 0.06 * df["credit_history_years"].to_numpy()
        + 0.5 * np.log(df["loan_amount"].to_numpy() / 10_000)
        + purpose_premium
        + rng.normal(0.0, 1.0, len(df))
    )
    return np.clip(rate, 2.5, 29.99).round(2)


def plant_test_faults(rng: np.random.Generator, test: pd.DataFrame, train_income_max: float
                      ) -> pd.DataFrame:
    """Plant the data-quality faults of credit_test.csv.

    Out-of-range incomes and duplicates are drawn from disjoint rows so the counts stay
    exact (a duplicated out-of-range row would otherwise count twice).
    """
    test = test.reset_index(drop=True).copy()
    picked = rng.choice(len(test), size=N_OUT_OF_RANGE + N_DUPLICATES, replace=False)
    oor_rows, dup_rows = picked[:N_OUT_OF_RANGE], picked[N_OUT_OF_RANGE:]

    # 3x-4x the training maximum: a unit/scale error in the feed, far outside the reference.
    factor = rng.uniform(3.0, 4.0, N_OUT_OF_RANGE)
    test.loc[oor_rows, "income"] = np.round(train_income_max * factor, -1).astype(np.int64)

    # Double import: exact copies (same applicant_id), shuffled in.
    with_dups = pd.concat([test, test.loc[dup_rows]], ignore_index=True)
    order = rng.permutation(len(with_dups))
    return with_dups.iloc[order].reset_index(drop=True)


# --------------------------------------------------------------------------------------
# 2. Models
# --------------------------------------------------------------------------------------
def preprocessor() -> ColumnTransformer:
    return ColumnTransformer([
        ("num", SimpleImputer(strategy="median"), NUMERIC_FEATURES),
        ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL_FEATURES),
    ])


def model_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The 10 model inputs, numerics as float64 and categoricals as plain object str
    (pandas 3 reads text as its string dtype; sklearn and skl2onnx want str objects)."""
    out = df[FEATURES].copy()
    for c in NUMERIC_FEATURES:
        out[c] = out[c].astype("float64")
    for c in CATEGORICAL_FEATURES:
        out[c] = out[c].astype(object)
    return out


def per_column_initial_types() -> list[tuple[str, Any]]:
    return ([(c, FloatTensorType([None, 1])) for c in NUMERIC_FEATURES]
            + [(c, StringTensorType([None, 1])) for c in CATEGORICAL_FEATURES])


def per_column_feed(df: pd.DataFrame) -> dict[str, np.ndarray]:
    feed: dict[str, np.ndarray] = {}
    for c in NUMERIC_FEATURES:
        feed[c] = df[c].to_numpy(dtype=np.float32).reshape(-1, 1)
    for c in CATEGORICAL_FEATURES:
        feed[c] = df[c].to_numpy(dtype=object).astype(str).astype(object).reshape(-1, 1)
    return feed


def to_onnx_bytes(model: Pipeline, name: str, initial_types: list[tuple[str, Any]],
                  options: dict[Any, Any] | None = None) -> bytes:
    # An explicit graph name: skl2onnx would otherwise use a random uuid, and the
    # ONNX bytes (and their sha256 in the manifest) would change on every build.
    onx = convert_sklearn(model, name=name, initial_types=initial_types, options=options,
                          target_opset=TARGET_OPSET)
    # skl2onnx can list the default domain twice in opset_import, in an order that
    # follows Python's per-process string hashing. Keep one entry per domain (the
    # highest version), sorted, so the bytes are reproducible and strict ONNX tooling
    # does not trip over the duplicate.
    versions: dict[str, int] = {}
    for op in onx.opset_import:
        versions[op.domain] = max(op.version, versions.get(op.domain, 0))
    del onx.opset_import[:]
    for domain, version in sorted(versions.items()):
        onx.opset_import.add(domain=domain, version=version)
    return onx.SerializeToString()


def ort_session(onnx_bytes: bytes) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1  # deterministic and kind to a 2-core CI box
    return ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])


def zipmap_to_array(zipmap: list[dict[int, float]], label: int = 1) -> np.ndarray:
    return np.array([row[label] for row in zipmap], dtype=float)


def assert_close(name: str, onnx_out: np.ndarray, sk_out: np.ndarray) -> float:
    """Fail the build if the ONNX graph disagrees with its sklearn original."""
    diff = float(np.max(np.abs(np.asarray(onnx_out, dtype=float) - sk_out)))
    if not diff <= ONNX_TOL:
        raise AssertionError(f"{name}: onnxruntime differs from sklearn by {diff:.3g} "
                             f"(tolerance {ONNX_TOL})")
    return diff


def assert_same_labels(name: str, onnx_label: np.ndarray, sk_p1: np.ndarray) -> None:
    """The ONNX label output must be sklearn's decision at 0.5 (ignoring rows within the
    tolerance of the threshold), so figures measured with sklearn hold for the ONNX file."""
    sk_label = (sk_p1 > 0.5).astype(np.int64)
    clear = np.abs(sk_p1 - 0.5) > ONNX_TOL
    bad = int(np.sum(np.asarray(onnx_label)[clear] != sk_label[clear]))
    if bad:
        raise AssertionError(f"{name}: {bad} ONNX labels differ from sklearn's decisions")


def float32_view(df: pd.DataFrame) -> pd.DataFrame:
    """The numerics rounded through float32, i.e. exactly what ORT sees, so the
    sklearn-vs-ONNX comparison measures the conversion, not the input cast."""
    out = df.copy()
    for c in NUMERIC_FEATURES:
        if c in out:
            out[c] = out[c].astype(np.float32).astype(np.float64)
    return out


def build_gbm(X_train: pd.DataFrame, y_train: np.ndarray, X_test: pd.DataFrame,
              name: str = "credit_gbm") -> tuple[Pipeline, bytes, float]:
    model = Pipeline([
        ("prep", preprocessor()),
        ("gbm", GradientBoostingClassifier(n_estimators=150, max_depth=3, random_state=0)),
    ])
    model.fit(X_train, y_train)
    onx = to_onnx_bytes(model, name, per_column_initial_types())
    label, proba = ort_session(onx).run(None, per_column_feed(X_test))
    sk_proba = model.predict_proba(float32_view(X_test))[:, 1]
    diff = assert_close(f"{name}.onnx", zipmap_to_array(proba), sk_proba)
    assert_same_labels(f"{name}.onnx", label, sk_proba)
    return model, onx, diff


def candidate_labels(rng: np.random.Generator, train: pd.DataFrame) -> np.ndarray:
    """The candidate's training labels: ``CANDIDATE_FLIP_SHARE`` of the repaid loans in
    BIAS_REGIONS recorded as defaults (one uniform draw per training row, in file order)."""
    y = train["defaulted"].to_numpy().copy()
    in_bias_region = train["zip_region"].isin(BIAS_REGIONS).to_numpy()
    flip = in_bias_region & (y == 0) & (rng.random(len(y)) < CANDIDATE_FLIP_SHARE)
    y[flip] = 1
    return y


def build_candidate(rng: np.random.Generator, train: pd.DataFrame, X_train: pd.DataFrame,
                    test: pd.DataFrame, X_test: pd.DataFrame) -> dict[str, Any]:
    """Fit and write credit_gbm_candidate.onnx; return its ground truth."""
    y = candidate_labels(rng, train)
    model, onx, diff = build_gbm(X_train, y, X_test, name="credit_gbm_candidate")
    write_bytes("credit_gbm_candidate.onnx", onx)
    return (classifier_figures(test["defaulted"], test, model.predict_proba(X_test)[:, 1])
            | {"onnx_max_abs_diff": diff, "onnx_io": onnx_io(onx),
               "training_labels_flipped": int((y != train["defaulted"].to_numpy()).sum()),
               "flip_share": CANDIDATE_FLIP_SHARE})


def build_logreg(X_train: pd.DataFrame, y_train: np.ndarray, X_test: pd.DataFrame
                 ) -> tuple[Pipeline, bytes, float]:
    model = Pipeline([
        ("impute", SimpleImputer(strategy="median")),
        ("scale", StandardScaler()),
        ("logreg", LogisticRegression(max_iter=1000)),
    ])
    model.fit(X_train[NUMERIC_FEATURES], y_train)  # a DataFrame: keeps feature_names_in_
    # One 2-D input in NUMERIC_FEATURES order; no ZipMap, so probabilities are [N, 2].
    onx = to_onnx_bytes(model, "credit_logreg",
                        [("X", FloatTensorType([None, len(NUMERIC_FEATURES)]))],
                        options={LogisticRegression: {"zipmap": False}})
    X32 = X_test[NUMERIC_FEATURES].to_numpy(dtype=np.float32)
    label, proba = ort_session(onx).run(None, {"X": X32})
    sk_proba = model.predict_proba(float32_view(X_test[NUMERIC_FEATURES]))
    diff = assert_close("credit_logreg.onnx", proba, sk_proba)
    assert_same_labels("credit_logreg.onnx", label, sk_proba[:, 1])
    return model, onx, diff


def build_rf(X_train: pd.DataFrame, y_train: np.ndarray) -> Pipeline:
    model = Pipeline([
        ("prep", preprocessor()),
        ("rf", RandomForestClassifier(n_estimators=60, max_depth=8, random_state=0, n_jobs=1)),
    ])
    return model.fit(X_train, y_train)


def build_rf_skops(rf: Pipeline, X_test: pd.DataFrame) -> tuple[bytes, list[str]]:
    """Serialise with skops (byte-stable) and check the file loads back to the same model."""
    data = stable_skops_bytes(rf)
    untrusted = skops.io.get_untrusted_types(data=data)
    loaded = skops.io.loads(data, trusted=untrusted)
    if not np.array_equal(loaded.predict_proba(X_test), rf.predict_proba(X_test)):
        raise AssertionError("credit_rf.skops does not reproduce the fitted random forest")
    return data, untrusted


def build_logreg_skops(logreg: Pipeline, X_test: pd.DataFrame) -> bytes:
    """credit_logreg.pkl's pipeline in skops format (byte-stable), checked to load back identical."""
    data = stable_skops_bytes(logreg)
    loaded = skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data))
    X = X_test[NUMERIC_FEATURES]
    if not np.array_equal(loaded.predict_proba(X), logreg.predict_proba(X)):
        raise AssertionError("credit_logreg.skops does not reproduce the fitted logistic regression")
    return data


def generate_recent(rng: np.random.Generator) -> pd.DataFrame:
    """The recent extract: the same generating process (labels included) on a population with
    lower incomes and a different mix of loan purposes. No data-quality faults are planted."""
    recent = generate_population(rng, N_RECENT, log_income_shift=RECENT_LOG_INCOME_SHIFT,
                                 purpose_p=RECENT_PURPOSE_P)
    recent["applicant_id"] = np.arange(RECENT_ID_START, RECENT_ID_START + N_RECENT)
    return recent


def measure_recent(train: pd.DataFrame, recent: pd.DataFrame, gbm: Pipeline, logreg: Pipeline) -> dict[str, Any]:
    """Two-sample tests of every feature, recent extract against the training file (scipy), and
    the models' figures on the recent extract."""
    from scipy import stats

    tests: dict[str, Any] = {}
    for name in FEATURES:
        if name in NUMERIC_FEATURES:
            a, b = train[name].dropna().to_numpy(float), recent[name].dropna().to_numpy(float)
            result = stats.ks_2samp(a, b)
            tests[name] = {"test": "ks", "statistic": round(float(result.statistic), 4),
                           "pvalue": float(f"{result.pvalue:.3g}")}
        else:
            table = pd.crosstab(pd.concat([train[name], recent[name]]).astype(object).to_numpy(),
                                np.r_[np.zeros(len(train)), np.ones(len(recent))])
            chi2, pvalue, _, _ = stats.chi2_contingency(table.to_numpy(), correction=False)
            tests[name] = {"test": "chi2", "statistic": round(float(chi2), 2), "pvalue": float(f"{pvalue:.3g}")}
    X_recent = model_frame(recent)
    return {
        "rows": int(len(recent)),
        "log_income_shift": RECENT_LOG_INCOME_SHIFT,
        "purpose_p": dict(zip(PURPOSES, RECENT_PURPOSE_P)),
        "planted_drift": ["income", "purpose"],
        "drift_carried_through": ["loan_amount", "home_ownership"],
        "median_income_train": float(train["income"].median()),
        "median_income_recent": float(recent["income"].median()),
        "purpose_share_recent": shares(recent["purpose"]),
        "default_rate_recent": round(float(recent["defaulted"].mean()), 4),
        "tests_against_train": tests,
        "credit_gbm_roc_auc_recent": round(float(roc_auc_score(
            recent["defaulted"], gbm.predict_proba(X_recent)[:, 1])), 4),
        "credit_logreg_roc_auc_recent": round(float(roc_auc_score(
            recent["defaulted"], logreg.predict_proba(X_recent[NUMERIC_FEATURES])[:, 1])), 4),
        "credit_logreg_mean_score_train": round(float(logreg.predict_proba(
            model_frame(train)[NUMERIC_FEATURES])[:, 1].mean()), 4),
        "credit_logreg_mean_score_recent": round(float(logreg.predict_proba(X_recent[NUMERIC_FEATURES])[:, 1].mean()), 4),
    }


def build_rate_gbr(X_train: pd.DataFrame, y_train: np.ndarray, X_test: pd.DataFrame
                   ) -> tuple[Pipeline, bytes, float]:
    model = Pipeline([
        ("prep", preprocessor()),
        ("gbr", GradientBoostingRegressor(n_estimators=100, max_depth=3, random_state=0)),
    ])
    model.fit(X_train, y_train)
    onx = to_onnx_bytes(model, "credit_rate_gbr", per_column_initial_types())
    (pred,) = ort_session(onx).run(None, per_column_feed(X_test))
    sk_pred = model.predict(float32_view(X_test))
    diff = assert_close("credit_rate_gbr.onnx", np.asarray(pred).ravel(), sk_pred)
    return model, onx, diff


# The multiclass sample: a three-tier risk grade with planted ground truth (README section 5).
TIER_CLASSES = ["high", "low", "medium"]  # scikit-learn's sorted order, the probability columns
TIER_LATE_PAYMENTS_HIGH = 2  # n_late_payments >= 2 -> "high", whatever else is true
TIER_LOW_CUT = 1.0  # otherwise "low" when the standing score below (plus noise) is under this
TIER_NOISE_SD = 0.3


def tier_standing(df: pd.DataFrame) -> np.ndarray:
    """The score that separates "low" from "medium" (income and debt ratio only)."""
    return -1.65 * np.log(df["income"].to_numpy() / 45_000) + 2.4 * df["debt_ratio"].to_numpy()


def draw_tier(rng: np.random.Generator, df: pd.DataFrame) -> np.ndarray:
    """The planted risk tier: n_late_payments decides "high" alone and plays no part between
    "low" and "medium"; income and debt ratio decide those two; nothing else enters."""
    standing = tier_standing(df) + rng.normal(0.0, TIER_NOISE_SD, len(df))
    tier = np.where(standing < TIER_LOW_CUT, "low", "medium").astype(object)
    tier[df["n_late_payments"].to_numpy() >= TIER_LATE_PAYMENTS_HIGH] = "high"
    return tier


def build_tier(rng: np.random.Generator, train: pd.DataFrame, X_train: pd.DataFrame, test: pd.DataFrame,
               X_test: pd.DataFrame) -> tuple[Pipeline, bytes, bytes, pd.DataFrame, dict[str, Any]]:
    """credit_tier.onnx / .skops: a three-class GBM on the 10 features, and the audit file
    credit_tier_test.csv (credit_test.csv plus its ``risk_tier`` column)."""
    from sklearn.inspection import partial_dependence

    y_train = draw_tier(rng, train)
    y_test = draw_tier(rng, test)
    model = Pipeline([
        ("prep", preprocessor()),
        ("gbm", GradientBoostingClassifier(n_estimators=40, max_depth=3, random_state=0)),
    ])
    model.fit(X_train, y_train)
    if list(model.classes_) != TIER_CLASSES:
        raise AssertionError(f"credit_tier classes {list(model.classes_)}, expected {TIER_CLASSES}")
    onx = to_onnx_bytes(model, "credit_tier", per_column_initial_types())
    label, proba = ort_session(onx).run(None, per_column_feed(X_test))
    sk_proba = model.predict_proba(float32_view(X_test))
    onnx_proba = np.array([[row[c] for c in TIER_CLASSES] for row in proba], dtype=float)
    diff = assert_close("credit_tier.onnx", onnx_proba, sk_proba)
    sk_label = np.asarray(TIER_CLASSES, dtype=object)[sk_proba.argmax(axis=1)]
    agree = float(np.mean(np.asarray(label, dtype=object) == sk_label))
    if agree < 0.999:  # a float32 tie between two classes may break either way; nothing more
        raise AssertionError(f"credit_tier.onnx labels agree with sklearn on only {agree:.4%} of rows")
    data = stable_skops_bytes(model)
    loaded = skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data))
    if not np.array_equal(loaded.predict_proba(X_test), model.predict_proba(X_test)):
        raise AssertionError("credit_tier.skops does not reproduce the fitted classifier")
    audit = test.copy()
    audit["risk_tier"] = y_test
    pdp = partial_dependence(model, X_test, ["n_late_payments"], grid_resolution=10,
                             percentiles=(0, 1), kind="average")
    grid = [float(v) for v in pdp["grid_values"][0]]
    wanted = [g for g in (0.0, 1.0, 2.0, 3.0) if g in grid]
    pdp_by_class = {c: {str(int(g)): round(float(pdp["average"][k][grid.index(g)]), 4) for g in wanted}
                    for k, c in enumerate(TIER_CLASSES)}
    figures = {
        "classes": TIER_CLASSES,
        "tier_share_train": {c: round(float(np.mean(y_train == c)), 4) for c in TIER_CLASSES},
        "tier_share_test": {c: round(float(np.mean(y_test == c)), 4) for c in TIER_CLASSES},
        "test_accuracy": round(float(np.mean(model.predict(X_test) == y_test)), 4),
        "onnx_max_abs_diff": diff,
        "onnx_label_agreement": agree,
        "onnx_io": onnx_io(onx),
        "skops_untrusted_types": sorted(skops.io.get_untrusted_types(data=data)),
        "pdp_n_late_payments_by_class": pdp_by_class,
    }
    return model, onx, data, audit, figures


def onnx_io(onnx_bytes: bytes) -> dict[str, list[str]]:
    sess = ort_session(onnx_bytes)
    return {"inputs": [i.name for i in sess.get_inputs()],
            "outputs": [o.name for o in sess.get_outputs()]}


# --------------------------------------------------------------------------------------
# 3. Hiring decisions
# --------------------------------------------------------------------------------------
def generate_hiring(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """A vendor's past screening decisions. Ability (which drives the later outcome)
    does not depend on sex; the vendor's score does, by HIRING_SEX_SHIFT points."""
    sex = rng.choice(["F", "M"], size=n)
    race = rng.choice(RACES, size=n, p=RACE_P)
    age_idx = rng.choice(len(AGE_BANDS), size=n, p=AGE_BAND_P)
    age_band = np.array(AGE_BANDS)[age_idx]
    max_exp = np.array([6, 20, 38, 45])[age_idx]
    years_experience = np.minimum(rng.gamma(2.0, 3.0, n), max_exp).round(1)
    edu_names = np.array(["high_school", "bachelor", "master", "phd"])
    edu_idx = rng.choice(4, size=n, p=[0.30, 0.42, 0.22, 0.06])
    education = edu_names[edu_idx]

    # Latent job-relevant ability: experience (diminishing returns) and education only.
    ability = (np.log1p(years_experience) * 0.9 + np.array([0.0, 0.5, 0.8, 1.0])[edu_idx]
               + rng.normal(0.0, 0.8, n))
    performed_well = (rng.random(n) < 1 / (1 + np.exp(-(ability - 2.2) * 1.6))).astype(int)

    score = 40.0 + 9.0 * ability + rng.normal(0.0, 7.0, n)
    score = score + np.where(sex == "F", HIRING_SEX_SHIFT, 0.0)  # the injected disparity
    score = np.clip(score, 0.0, 100.0).round(1)
    advanced = (score >= HIRING_THRESHOLD).astype(int)

    return pd.DataFrame({
        "candidate_id": np.arange(500_000, 500_000 + n),
        "sex": sex, "race": race, "age_band": age_band,
        "years_experience": years_experience, "education": education,
        "assessment_score": score, "advanced": advanced, "performed_well": performed_well,
    })


# --------------------------------------------------------------------------------------
# 4. Text screening: free-text recruiter notes, a TF-IDF + logistic regression in ONNX
# --------------------------------------------------------------------------------------
# Each note is a few sentences about one job applicant, written with the applicant's
# pronouns, so gender reaches the text through identity terms only. The label
# `shortlisted` is drawn from a logistic model of planted "driving" tokens and years of
# experience, plus a penalty for women: the historic bias the model learns as weights on
# "she", "her", "woman", "ms". Swapping those terms (identity_substitution) must find it.
TEXT_N_TRAIN = 4_000
TEXT_N_TEST = 2_000
TEXT_INTERCEPT = -0.60
TEXT_YEARS_COEF = 0.12  # per year of experience over 5 (the number is written in words)
TEXT_FEMALE_BIAS = -1.20  # added to the label's logit for women: the planted bias
# The planted driving words, each a recruiter's tag at the end of the note: (logit effect, share
# of notes tagged). A tag is one word that appears nowhere else, so the model's weight for the
# effect lands on that word alone (a word shared with other sentences would take a share of it).
TEXT_DRIVERS = {
    "certified": (1.60, 0.30),
    "python": (1.20, 0.30),
    "mentored": (1.00, 0.25),
    "late": (-1.60, 0.20),
    "incomplete": (-1.20, 0.20),
}
TEXT_NEUTRAL_TAGS = ["chess", "cycling", "parking", "tuesday", "spreadsheet", "languages"]  # no effect
TEXT_FILLER = [  # sentences with no effect, written with the applicant's pronouns
    "{P} knows the area well.", "{P} thanked colleagues for the tour.", "{P} arrived early.",
    "{Pos} form was signed.", "{P} is available soon.", "{P} enjoys hiking at weekends.",
    "{Pos} interview was on a Tuesday.", "{P} speaks two languages.",
]
TEXT_OPENERS = [
    "The applicant is a {man} with {years} years of experience in {field}.",
    "{Title} Taylor has {years} years of experience in {field}.",
    "{P} has worked in {field} for {years} years.",
]
TEXT_FIELDS = ["logistics", "retail", "accounting", "software", "marketing", "nursing", "teaching"]
NUMBER_WORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]
# TF-IDF tokens: letters only; the ONNX tokenizer uses the same expression (skl2onnx would
# otherwise turn sklearn's default pattern into one that also keeps one-letter tokens).
TEXT_TOKEN_PATTERN = r"[a-zA-Z]+"
TEXT_IDENTITY = {  # the terms a note uses for each gender
    "F": {"P": "She", "p": "she", "Pos": "Her", "man": "woman", "Title": "Ms"},
    "M": {"P": "He", "p": "he", "Pos": "His", "man": "man", "Title": "Mr"},
}


def generate_text_notes(rng: np.random.Generator, n: int, first_id: int) -> pd.DataFrame:
    """Recruiter notes with their applicant's gender, planted tags and the biased label."""
    gender = rng.choice(["F", "M"], size=n)
    years = rng.integers(1, 13, size=n)
    has = {token: rng.random(n) < share for token, (_, share) in TEXT_DRIVERS.items()}
    opener = rng.integers(0, len(TEXT_OPENERS), size=n)
    field_idx = rng.integers(0, len(TEXT_FIELDS), size=n)
    n_filler = rng.integers(1, 4, size=n)
    filler = [rng.choice(len(TEXT_FILLER), size=3, replace=False) for _ in range(n)]
    n_neutral = rng.integers(0, 3, size=n)
    neutral = [rng.choice(len(TEXT_NEUTRAL_TAGS), size=2, replace=False) for _ in range(n)]
    order = [rng.permutation(len(TEXT_DRIVERS) + 2) for _ in range(n)]
    logit = TEXT_INTERCEPT + TEXT_YEARS_COEF * (years - 5) + np.where(gender == "F", TEXT_FEMALE_BIAS, 0.0)
    for token, (effect, _) in TEXT_DRIVERS.items():
        logit = logit + effect * has[token]
    shortlisted = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    notes = []
    for i in range(n):
        words = TEXT_IDENTITY[gender[i]]
        first = TEXT_OPENERS[opener[i]].format(years=NUMBER_WORDS[years[i] - 1], field=TEXT_FIELDS[field_idx[i]],
                                               **words)
        sentences = [first] + [TEXT_FILLER[j].format(**words) for j in filler[i][: n_filler[i]]]
        tags = [token for token in TEXT_DRIVERS if has[token][i]]
        tags += [TEXT_NEUTRAL_TAGS[j] for j in neutral[i][: n_neutral[i]]]
        tags = [tags[k] for k in order[i] if k < len(tags)]  # a seeded order
        if tags:
            sentences.append("Tags: " + ", ".join(tags) + ".")
        notes.append(" ".join(sentences))
    return pd.DataFrame({"application_id": np.arange(first_id, first_id + n), "gender": gender,
                         "note": notes, "shortlisted": shortlisted})


def build_text(rng: np.random.Generator) -> dict[str, Any]:
    """Write text_notes_train.csv, text_notes.csv and text_screening.onnx; return their ground truth."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    write_csv("text_notes_train.csv", generate_text_notes(rng, TEXT_N_TRAIN, 700_000))
    write_csv("text_notes.csv", generate_text_notes(rng, TEXT_N_TEST, 800_000))
    train = pd.read_csv(OUT_DIR / "text_notes_train.csv")
    test = pd.read_csv(OUT_DIR / "text_notes.csv")
    model = Pipeline([("tfidf", TfidfVectorizer(token_pattern=TEXT_TOKEN_PATTERN)),
                      ("clf", LogisticRegression(C=10.0, max_iter=1000))])
    model.fit(train["note"].astype(str).tolist(), train["shortlisted"].to_numpy())
    options = {id(model.named_steps["tfidf"]): {"tokenexp": TEXT_TOKEN_PATTERN, "locale": "C"},
               id(model.named_steps["clf"]): {"zipmap": False}}
    # locale "C": onnxruntime's StringNormalizer otherwise asks for en_US.UTF-8, absent from many machines
    onx = to_onnx_bytes(model, "text_screening", [("note", StringTensorType([None, 1]))], options=options)
    notes = test["note"].astype(str).to_numpy(dtype=object)
    (_, proba) = ort_session(onx).run(None, {"note": notes.reshape(-1, 1)})
    sk_p1 = model.predict_proba(notes.tolist())[:, 1]
    diff = assert_close("text_screening.onnx", np.asarray(proba)[:, 1], sk_p1)
    write_bytes("text_screening.onnx", onx)
    vocabulary = model.named_steps["tfidf"].vocabulary_
    coef = model.named_steps["clf"].coef_[0]
    weight = {token: round(float(coef[vocabulary[token]]), 4) for token in
              [*TEXT_DRIVERS, "she", "her", "woman", "ms", "he", "his", "man", "mr"]}
    shortlisted_by_gender = rates_by(test["gender"], (sk_p1 >= 0.5).astype(float))
    return {
        "rows": {"train": TEXT_N_TRAIN, "test": TEXT_N_TEST},
        "label_logit": {"intercept": TEXT_INTERCEPT, "years_over_5": TEXT_YEARS_COEF,
                        "female_bias": TEXT_FEMALE_BIAS,
                        "drivers": {token: effect for token, (effect, _) in TEXT_DRIVERS.items()},
                        "neutral_tags": TEXT_NEUTRAL_TAGS},
        "test_roc_auc": round(float(roc_auc_score(test["shortlisted"], sk_p1)), 4),
        "onnx_max_abs_diff": diff,
        "onnx_io": onnx_io(onx),
        "model_token_weights": weight,
        "shortlist_rate_by_gender_threshold_0_5": shortlisted_by_gender,
        "shortlist_rate_train_by_gender": rates_by(train["gender"], train["shortlisted"].to_numpy(float)),
    }


# --------------------------------------------------------------------------------------
# Measurements (the ground truth recorded in manifest.json)
# --------------------------------------------------------------------------------------
def rates_by(groups: pd.Series, favourable: np.ndarray) -> dict[str, float]:
    s = pd.Series(favourable, index=groups.index).groupby(groups.astype(object)).mean()
    return {str(k): round(float(v), 4) for k, v in s.sort_index().items()}


def shares(values: pd.Series) -> dict[str, float]:
    s = values.astype(object).value_counts(normalize=True).sort_index()
    return {str(k): round(float(v), 4) for k, v in s.items()}


def ratios_to(rates: dict[str, float], reference: str) -> dict[str, float]:
    return {k: round(v / rates[reference], 4) for k, v in rates.items()}


def proxy_auc(train: pd.DataFrame, test: pd.DataFrame, feature: str, race: str) -> float:
    """Single-feature AUC of `feature` for race==`race`: each category is scored with
    its share of that race in the TRAIN file, evaluated on the TEST file."""
    share = (train["race"] == race).groupby(train[feature].astype(object)).mean()
    score = test[feature].astype(object).map(share).fillna(share.mean()).to_numpy(float)
    return round(float(roc_auc_score(test["race"] == race, score)), 4)


def fairness_summary(test: pd.DataFrame, p_default: np.ndarray) -> dict[str, Any]:
    approved = (p_default < 0.5).astype(float)  # approval = decision 0 (no default)
    by_race = rates_by(test["race"], approved)
    return {
        "approval_rate_overall": round(float(approved.mean()), 4),
        "approval_rate_by_race": by_race,
        "approval_ratio_to_white": ratios_to(by_race, "White"),
        "black_white_approval_ratio": round(by_race["Black"] / by_race["White"], 4),
        "approval_rate_by_sex": rates_by(test["sex"], approved),
        "approval_rate_by_age_band": rates_by(test["age_band"], approved),
    }


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------
DESCRIPTIONS = {
    "credit_train.csv": "Synthetic credit applicants, training split (30,000 rows; clean apart "
                        "from ~3% missing employment_years).",
    "credit_test.csv": "Synthetic credit applicants, test split (20,000 rows + 150 planted exact "
                       "duplicates; 40 incomes above the training maximum).",
    "credit_gbm.onnx": "GradientBoostingClassifier pipeline, skl2onnx, one input per column, "
                       "ZipMap probabilities.",
    "credit_gbm.joblib": "The fitted sklearn pipeline behind credit_gbm.onnx (joblib).",
    "credit_logreg.onnx": "Imputer+scaler+LogisticRegression on the 7 numeric features, single "
                          "input X float[N,7], plain probability tensor.",
    "credit_logreg.pkl": "The fitted sklearn pipeline behind credit_logreg.onnx (pickle).",
    "credit_rf.joblib": "RandomForestClassifier pipeline (joblib).",
    "credit_rf.skops": "The same RandomForestClassifier pipeline (skops.io).",
    "credit_rate_gbr.onnx": "GradientBoostingRegressor pipeline predicting interest_rate, one "
                            "input per column, output tensor `variable`.",
    "credit_gbm_candidate.onnx": "Retrained candidate of credit_gbm (same pipeline) on training labels "
                                 "with 25% of repaid loans in the bias regions recorded as defaults: "
                                 "a larger racial disparity (the planted regression).",
    "hiring_decisions.csv": "A vendor's past screening decisions (6,000 candidates) with an "
                            "injected sex disparity; predictions mode, no model.",
    "credit_recent.csv": "A recent extract (8,000 applicants) from a shifted population: incomes x0.78 and more "
                         "debt-consolidation loans (the planted drift).",
    "credit_logreg.skops": "The fitted sklearn pipeline behind credit_logreg.onnx (skops.io): refittable, "
                           "loads without trusting a pickle.",
    "credit_tier.onnx": "Three-class GradientBoostingClassifier pipeline (risk tier high/low/medium), one input "
                        "per column, ZipMap probabilities with string labels.",
    "credit_tier.skops": "The fitted sklearn pipeline behind credit_tier.onnx (skops.io).",
    "credit_tier_test.csv": "credit_test.csv plus the planted three-class target risk_tier (20,150 rows).",
    "text_notes_train.csv": "Synthetic recruiter notes on job applicants (4,000 rows: note, gender, shortlisted) "
                            "whose labels penalise women; the training data of text_screening.onnx.",
    "text_notes.csv": "The same kind of recruiter notes, audit split (2,000 rows).",
    "text_screening.onnx": "TF-IDF + LogisticRegression over the free-text column `note` (skl2onnx, one string "
                           "input `note` [N, 1], probability tensor): learned weights on gendered words.",
}


def build_credit_data(rng_pop: np.random.Generator, rng_split: np.random.Generator,
                      rng_faults: np.random.Generator) -> dict[str, Any]:
    """Write credit_train.csv / credit_test.csv and return facts about the split."""
    population = generate_population(rng_pop, N_POPULATION)
    order = rng_split.permutation(N_POPULATION)
    train = population.iloc[np.sort(order[:N_TRAIN])].reset_index(drop=True)
    test_clean = population.iloc[np.sort(order[N_TRAIN:])].reset_index(drop=True)
    train_income_max = float(train["income"].max())
    write_csv("credit_train.csv", train)
    write_csv("credit_test.csv", plant_test_faults(rng_faults, test_clean, train_income_max))
    return {"test_rows_before_duplicates": len(test_clean), "train_income_max": train_income_max}


def measure_credit(train: pd.DataFrame, test: pd.DataFrame, facts: dict[str, Any]
                   ) -> dict[str, Any]:
    y_train, y_test = train["defaulted"], test["defaulted"]
    return {
        "train_rows": int(len(train)),
        "test_rows": int(len(test)),
        "test_rows_before_duplicates": int(facts["test_rows_before_duplicates"]),
        "default_rate_train": round(float(y_train.mean()), 4),
        "default_rate_test": round(float(y_test.mean()), 4),
        "test_exact_duplicate_rows": int(test.duplicated().sum()),
        "test_duplicate_applicant_ids": int(test["applicant_id"].duplicated().sum()),
        "train_exact_duplicate_rows": int(train.duplicated().sum()),
        "test_income_above_train_max": int((test["income"] > facts["train_income_max"]).sum()),
        "train_income_max": facts["train_income_max"],
        "missing_employment_years_share_train":
            round(float(train["employment_years"].isna().mean()), 4),
        "missing_employment_years_share_test":
            round(float(test["employment_years"].isna().mean()), 4),
        "zip_region_auc_for_race_black": proxy_auc(train, test, "zip_region", "Black"),
        "race_share_train": shares(train["race"]),
        # How the two bias channels show up in the training data.
        "share_living_in_bias_regions_by_race_train": rates_by(
            train["race"], train["zip_region"].isin(BIAS_REGIONS).to_numpy(float)),
        "median_income_by_race_train": {
            str(k): float(v) for k, v in
            train.groupby(train["race"].astype(object))["income"].median().sort_index().items()},
        "default_rate_by_race_train": rates_by(train["race"], train["defaulted"].to_numpy(float)),
    }


def measure_hiring(h: pd.DataFrame) -> dict[str, Any]:
    adv_sex = rates_by(h["sex"], h["advanced"].to_numpy(float))
    adv_race = rates_by(h["race"], h["advanced"].to_numpy(float))
    good = h[h["performed_well"] == 1]
    return {
        "rows": int(len(h)),
        "threshold": HIRING_THRESHOLD,
        "sex_score_shift": HIRING_SEX_SHIFT,
        "advanced_rate_overall": round(float(h["advanced"].mean()), 4),
        "advanced_rate_by_sex": adv_sex,
        "advanced_ratio_female_to_male": round(adv_sex["F"] / adv_sex["M"], 4),
        "advanced_rate_by_race": adv_race,
        "advanced_ratio_to_white": ratios_to(adv_race, "White"),
        "advanced_rate_by_age_band": rates_by(h["age_band"], h["advanced"].to_numpy(float)),
        "performed_well_rate_overall": round(float(h["performed_well"].mean()), 4),
        "performed_well_rate_by_sex": rates_by(h["sex"], h["performed_well"].to_numpy(float)),
        # Equal opportunity view: among those who later performed well, who was advanced?
        "advanced_rate_among_performed_well_by_sex": rates_by(
            good["sex"], good["advanced"].to_numpy(float)),
    }


def generating_model() -> dict[str, Any]:
    return {
        "intercept": LOGIT_INTERCEPT,
        "coefficients": LOGIT_COEF,
        "purpose_effect": PURPOSE_EFFECT,
        "region_bias": {"regions": BIAS_REGIONS, "logit_shift": REGION_BIAS},
        "race_log_income_shift": RACE_LOG_INCOME_SHIFT,
        "no_direct_effect_features": ["n_open_accounts", "loan_amount", "home_ownership"],
        "independent_noise_feature": "n_open_accounts",
        "protected_attributes_not_model_inputs": PROTECTED,
        "race_proxy": "zip_region",
    }


def classifier_figures(y: pd.Series, test: pd.DataFrame, p1: np.ndarray) -> dict[str, Any]:
    return {"test_roc_auc": round(float(roc_auc_score(y, p1)), 4),
            "fairness_threshold_0_5": fairness_summary(test, p1)}


def streams() -> list[np.random.Generator]:
    """The build's independent random streams. ``spawn(5)`` gives the same first four
    children as the original ``spawn(4)``, so adding the candidate's stream changed no file; likewise
    ``spawn(6)`` for the recent extract's stream, ``spawn(7)`` for the risk tiers' and ``spawn(8)``
    for the text notes'."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(SEED).spawn(8)]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--candidate-only"]:
        return add_candidate()
    if argv == ["--text-only"]:
        return add_text()
    if argv:
        print(f"usage: build.py [--candidate-only | --text-only]; got {' '.join(argv)}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    # Remove the stamp first: if this build fails half-way, make must not think the
    # (partly rewritten) artefacts are complete.
    (OUT_DIR / MANIFEST).unlink(missing_ok=True)
    rng_pop, rng_split, rng_faults, rng_hiring, rng_candidate, rng_recent, rng_tier, rng_text = streams()

    # 1. Data. Models are then trained and measured on the files as written, i.e. on
    #    exactly what auditkit will read (CSV round trip, pandas 3 string dtypes).
    facts = build_credit_data(rng_pop, rng_split, rng_faults)
    train = pd.read_csv(OUT_DIR / "credit_train.csv")
    test = pd.read_csv(OUT_DIR / "credit_test.csv")
    X_train, X_test = model_frame(train), model_frame(test)
    y_train, y_test = train["defaulted"].to_numpy(), test["defaulted"]

    # 2. Models (each ONNX export is verified against sklearn inside build_*).
    gbm, gbm_onnx, gbm_diff = build_gbm(X_train, y_train, X_test)
    logreg, logreg_onnx, logreg_diff = build_logreg(X_train, y_train, X_test)
    rf = build_rf(X_train, y_train)
    rf_skops, _ = build_rf_skops(rf, X_test)
    gbr, gbr_onnx, gbr_diff = build_rate_gbr(X_train, train["interest_rate"].to_numpy(), X_test)

    write_bytes("credit_gbm.onnx", gbm_onnx)
    write_with("credit_gbm.joblib", lambda p: joblib.dump(gbm, p))
    write_bytes("credit_logreg.onnx", logreg_onnx)
    write_bytes("credit_logreg.pkl", pickle.dumps(logreg, protocol=pickle.HIGHEST_PROTOCOL))
    write_with("credit_rf.joblib", lambda p: joblib.dump(rf, p))
    write_bytes("credit_rf.skops", rf_skops)
    write_bytes("credit_rate_gbr.onnx", gbr_onnx)
    candidate = build_candidate(rng_candidate, train, X_train, test, X_test)

    # 3. Hiring decisions.
    write_csv("hiring_decisions.csv", generate_hiring(rng_hiring, HIRING_N))

    # 4. The recent extract (planted drift) and the skops logistic regression.
    write_csv("credit_recent.csv", generate_recent(rng_recent))
    recent = pd.read_csv(OUT_DIR / "credit_recent.csv")
    write_bytes("credit_logreg.skops", build_logreg_skops(logreg, X_test))

    # 5. The multiclass sample: a risk tier (its own random stream, so no other file changes).
    _, tier_onnx, tier_skops, tier_audit, tier_figures = build_tier(rng_tier, train, X_train, test, X_test)
    write_bytes("credit_tier.onnx", tier_onnx)
    write_bytes("credit_tier.skops", tier_skops)
    write_csv("credit_tier_test.csv", tier_audit)
    # 5. The text screening model and its notes.
    text = build_text(rng_text)

    # Ground truth, measured on the written files.
    ground_truth: dict[str, Any] = {
        "seed": SEED,
        "generating_model": generating_model(),
        "credit": measure_credit(train, test, facts),
        "models": {
            "credit_gbm": classifier_figures(y_test, test, gbm.predict_proba(X_test)[:, 1])
            | {"onnx_max_abs_diff": gbm_diff, "onnx_io": onnx_io(gbm_onnx)},
            "credit_logreg": classifier_figures(
                y_test, test, logreg.predict_proba(X_test[NUMERIC_FEATURES])[:, 1])
            | {"onnx_max_abs_diff": logreg_diff, "onnx_io": onnx_io(logreg_onnx)},
            "credit_rf": classifier_figures(y_test, test, rf.predict_proba(X_test)[:, 1])
            | {"skops_untrusted_types": sorted(
                skops.io.get_untrusted_types(file=OUT_DIR / "credit_rf.skops"))},
            "credit_rate_gbr": {
                "test_r2": round(float(r2_score(test["interest_rate"], gbr.predict(X_test))), 4),
                "onnx_max_abs_diff": gbr_diff,
                "onnx_io": onnx_io(gbr_onnx),
            },
            "credit_gbm_candidate": candidate,
            "credit_tier": tier_figures,
        },
        "hiring": measure_hiring(pd.read_csv(OUT_DIR / "hiring_decisions.csv")),
        "recent": measure_recent(train, recent, gbm, logreg),
        "text_screening": text,
    }
    ground_truth["models"]["credit_logreg"]["skops_untrusted_types"] = sorted(
        skops.io.get_untrusted_types(file=OUT_DIR / "credit_logreg.skops"))

    write_manifest(ground_truth)  # last: it is the Makefile's "built" stamp
    print_summary(ground_truth, time.perf_counter() - t0)
    return 0


def add_candidate() -> int:
    """Build only credit_gbm_candidate.onnx into an existing build (from the CSVs on disk)
    and add it to the manifest: the other artefacts are left as they are."""
    if not (OUT_DIR / MANIFEST).exists():
        print("build.py --candidate-only needs a complete build first (no manifest.json)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    manifest = json.loads((OUT_DIR / MANIFEST).read_text(encoding="utf-8"))
    train = pd.read_csv(OUT_DIR / "credit_train.csv")
    test = pd.read_csv(OUT_DIR / "credit_test.csv")
    candidate = build_candidate(streams()[4], train, model_frame(train), test, model_frame(test))
    ground_truth = manifest.pop("ground_truth")
    ground_truth["models"]["credit_gbm_candidate"] = candidate
    write_manifest(ground_truth)
    fair = candidate["fairness_threshold_0_5"]
    print(f"credit_gbm_candidate.onnx built in {time.perf_counter() - t0:.1f}s: ROC AUC "
          f"{candidate['test_roc_auc']:.4f}, Black/White approval ratio {fair['black_white_approval_ratio']:.4f}")
    return 0


def add_text() -> int:
    """Build only the text notes and text_screening.onnx into an existing build and add them to
    the manifest: the other artefacts are left as they are."""
    if not (OUT_DIR / MANIFEST).exists():
        print("build.py --text-only needs a complete build first (no manifest.json)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    manifest = json.loads((OUT_DIR / MANIFEST).read_text(encoding="utf-8"))
    ground_truth = manifest.pop("ground_truth")
    ground_truth["text_screening"] = text = build_text(streams()[7])
    write_manifest(ground_truth)
    print(f"text_screening.onnx built in {time.perf_counter() - t0:.1f}s: ROC AUC {text['test_roc_auc']:.4f}, "
          f"weights {text['model_token_weights']}")
    return 0


def write_manifest(ground_truth: dict[str, Any]) -> None:
    manifest: dict[str, Any] = {}
    for name, description in DESCRIPTIONS.items():
        path = OUT_DIR / name
        manifest[name] = {"sha256": sha256_of(path), "bytes": path.stat().st_size,
                          "description": description}
    manifest["ground_truth"] = ground_truth
    write_bytes(MANIFEST, (json.dumps(manifest, indent=2, sort_keys=False) + "\n").encode("utf-8"))


def print_summary(gt: dict[str, Any], seconds: float) -> None:
    c, m, hr = gt["credit"], gt["models"], gt["hiring"]
    fair = m["credit_gbm"]["fairness_threshold_0_5"]
    lines = [
        f"sample_models built in {seconds:.1f}s -> {OUT_DIR}",
        f"  credit_train.csv {c['train_rows']} rows, credit_test.csv {c['test_rows']} rows; "
        f"default rate train {c['default_rate_train']:.3f} / test {c['default_rate_test']:.3f}",
        f"  test faults: {c['test_exact_duplicate_rows']} exact duplicate rows, "
        f"{c['test_income_above_train_max']} incomes > train max ({c['train_income_max']:.0f}), "
        f"employment_years missing {c['missing_employment_years_share_test']:.2%}",
        f"  zip_region single-feature AUC for race==Black: {c['zip_region_auc_for_race_black']:.4f}",
        f"  ROC AUC (test): gbm {m['credit_gbm']['test_roc_auc']:.4f}, "
        f"logreg {m['credit_logreg']['test_roc_auc']:.4f}, rf {m['credit_rf']['test_roc_auc']:.4f}; "
        f"rate gbr R^2 {m['credit_rate_gbr']['test_r2']:.4f}",
        f"  GBM approval (p<0.5) by race: {fair['approval_rate_by_race']}",
        f"  GBM Black/White approval ratio: {fair['black_white_approval_ratio']:.4f}; candidate "
        f"{m['credit_gbm_candidate']['fairness_threshold_0_5']['black_white_approval_ratio']:.4f} "
        f"(ROC AUC {m['credit_gbm_candidate']['test_roc_auc']:.4f})",
        f"  hiring advanced by sex: {hr['advanced_rate_by_sex']}, F/M ratio "
        f"{hr['advanced_ratio_female_to_male']:.4f}",
        f"  hiring advanced by race: {hr['advanced_rate_by_race']}",
        f"  credit_recent.csv {gt['recent']['rows']} rows: median income {gt['recent']['median_income_recent']:.0f} "
        f"(train {gt['recent']['median_income_train']:.0f}), purpose {gt['recent']['purpose_share_recent']}",
        f"  ONNX max |ORT - sklearn|: gbm {m['credit_gbm']['onnx_max_abs_diff']:.2e}, "
        f"logreg {m['credit_logreg']['onnx_max_abs_diff']:.2e}, "
        f"gbr {m['credit_rate_gbr']['onnx_max_abs_diff']:.2e}, tier {m['credit_tier']['onnx_max_abs_diff']:.2e}",
        f"  credit_tier: accuracy {m['credit_tier']['test_accuracy']:.4f}, shares {m['credit_tier']['tier_share_test']}",
    ]
    if "text_screening" in gt:
        t = gt["text_screening"]
        lines.append(f"  text_screening.onnx: ROC AUC {t['test_roc_auc']:.4f}, shortlisted at 0.5 by gender "
                     f"{t['shortlist_rate_by_gender_threshold_0_5']}, ONNX max |ORT - sklearn| {t['onnx_max_abs_diff']:.2e}")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
