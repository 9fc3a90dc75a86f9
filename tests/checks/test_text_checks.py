"""Text models: token_attributions and identity_substitution against closed forms, an
independent onnxruntime session, and the ground truth planted in the sample text model."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from pydantic import ValidationError

from check_support import run_check

from auditkit.adapters.base import AdapterSpec, load_adapter
from auditkit.checks.fairness.identity_substitution import IdentitySubstitutionParams
from auditkit.engine.context import AuditData
from auditkit.methods.identity_terms import DEFAULT_TERM_PAIRS, TermSwapper
from auditkit.methods.text_tokens import mean_by_token, occlude

PLANTED_UP = {"certified", "python", "mentored"}  # sample_models/build.py TEXT_DRIVERS, positive effects
PLANTED_DOWN = {"late", "incomplete"}
NUMBER_WORDS = {"one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"}


@pytest.fixture(scope="module")
def text_samples(samples: Path) -> Path:
    """The sample text model, added to an existing build made before it existed."""
    if not (samples / "text_screening.onnx").exists():
        subprocess.run([sys.executable, str(samples / "build.py"), "--text-only"], check=True)
    return samples


@pytest.fixture(scope="module")
def session(text_samples: Path) -> ort.InferenceSession:
    """The model straight from onnxruntime: the reference the checks' figures are compared with."""
    return ort.InferenceSession(str(text_samples / "text_screening.onnx"), providers=["CPUExecutionProvider"])


def onnx_score(session: ort.InferenceSession, texts: list[str]) -> np.ndarray:
    _, proba = session.run(None, {"note": np.asarray(texts, dtype=object).reshape(-1, 1)})
    return np.asarray(proba, dtype=np.float64)[:, 1]


def text_data(samples: Path, rows: int) -> AuditData:
    frame = pd.read_csv(samples / "text_notes.csv").iloc[:rows].rename_axis("row")
    spec = AdapterSpec(format="onnx", path=str(samples / "text_screening.onnx"))
    adapter = load_adapter(spec)
    scores = adapter.predict(frame)
    return AuditData(frame=frame, features=["note"], target="shortlisted", protected=["gender"], task="binary",
                     scores=scores, decisions=(scores >= 0.5).astype(np.int64),
                     y=frame["shortlisted"].to_numpy(float), score_kind="probability", adapter_spec=adapter.spec,
                     threshold=0.5, favorable_decision=1, classes=adapter.classes, text=["note"])


def test_a_single_string_input_is_fed_as_the_column_it_names(text_samples):
    adapter = load_adapter(AdapterSpec(format="onnx", path=str(text_samples / "text_screening.onnx")))
    assert adapter.input_features == ["note"]
    frame = pd.DataFrame({"application_id": [1, 2], "note": ["She is certified.", "He arrived late."]})
    assert adapter.predict(frame).shape == (2,)


# ---------------------------------------------------------------------------- occlusion
def test_occlusion_equals_the_score_with_the_word_removed(text_samples, session):
    data = text_data(text_samples, 40)
    out = run_check("token_attributions", data, {"max_rows": 40, "shap_rows": 0, "rows_shown": 40})
    records = out.tables["attributions"]
    assert len(records) > 200  # every word of 40 notes
    changes = []
    for record in records:
        text = data.frame.loc[record["row"], "note"]
        match = list(re.finditer(r"\w+", text))[record["position"]]
        assert match.group(0) == record["token"]
        removed = text[:match.start()] + text[match.end():]
        expected = onnx_score(session, [text])[0] - onnx_score(session, [removed])[0]
        changes.append((record["occlusion"], expected))
    got, expected = np.array(changes).T
    assert np.abs(expected).max() > 0.05  # some word matters: the comparison is not of zeros
    assert_allclose(got, expected, rtol=0, atol=1e-6)  # float32 model scored in other batches: rounding only


def test_occlusion_of_a_word_count_model_is_each_words_weight():
    weights = {"good": 2.0, "bad": -1.5}
    predict = lambda texts, owners: np.array([sum(weights.get(w.lower(), 0.0) for w in re.findall(r"\w+", t))
                                              for t in texts])
    (o,) = occlude(["Good, good and BAD."], predict)
    assert o.tokens == ["Good", "good", "and", "BAD"]
    assert_allclose(o.values[:, 0], [2.0, 2.0, 0.0, -1.5], rtol=0, atol=0)
    assert o.score[0] == 2.5


def test_planted_words_rank_on_top_of_their_class(text_samples):
    data = text_data(text_samples, 2000)
    out = run_check("token_attributions", data, {"max_rows": 300, "shap_rows": 0, "top_k": 5}, seed=3)
    top = {cls: [r["token"] for r in out.tables["top_tokens"] if r["class"] == cls] for cls in ("1", "0")}
    assert set(top["1"][:3]) == PLANTED_UP, top
    assert set(top["0"][:2]) == PLANTED_DOWN, top
    # the planted bias shows in the explanation too: identity terms hold part of the attributions
    assert out.metrics["identity_attribution_share"].value > 0.05


def test_mean_by_token_counts_absent_rows_as_zero():
    table = mean_by_token([(["a", "A", "b"], np.array([[1.0], [2.0], [4.0]])), (["b"], np.array([[2.0]]))], 4)
    assert_allclose(table["a"][0], [0.75]) and table["a"][1] == 1
    assert_allclose(table["b"][0], [1.5]) and table["b"][1] == 2


def test_text_checks_skip_without_a_declared_text_input(text_samples):
    data = text_data(text_samples, 20)
    data.text = []
    for check_type in ("token_attributions", "identity_substitution"):
        out = run_check(check_type, data, {})
        assert out.skipped and "data.text" in out.skipped


# ---------------------------------------------------------------------------- SHAP
@pytest.mark.slow  # shap compiles its Partition explainer with numba on first use (~20 s)
def test_partition_shap_of_a_word_count_model_is_each_words_weight_and_adds_up():
    from auditkit.methods.text_shap import token_shap

    weights = {"good": 2.0, "bad": -1.5, "fine": 0.5}
    predict = lambda texts, i: np.array([sum(weights.get(w.lower(), 0.0) for w in re.findall(r"\w+", t))
                                         for t in texts])
    texts = ["Good, good and BAD.", "fine day; bad day, good day"]
    for text, s in zip(texts, token_shap(texts, predict)):
        # an additive model has no interactions: Owen values are Shapley values, each word's weight
        assert s.tokens == re.findall(r"\w+", text)
        assert_allclose(s.values[:, 0], [weights.get(t.lower(), 0.0) for t in s.tokens], rtol=0, atol=1e-12)
        assert_allclose(s.base + s.values.sum(axis=0), s.score, rtol=0, atol=1e-12)


@pytest.mark.slow
def test_shap_over_words_adds_up_to_the_onnx_score_and_ranks_the_planted_words(text_samples, session):
    data = text_data(text_samples, 2000)
    out = run_check("token_attributions", data, {"max_rows": 60, "shap_rows": 60, "top_k": 6}, seed=5)
    rows = [r for r in out.tables["explanations"] if r["shap_base_value"] is not None]
    assert len(rows) == 60
    texts = [data.frame.loc[r["row"], "note"] for r in rows]
    # base value: every word masked, i.e. a text with no word, scored by onnxruntime directly
    assert_allclose([r["shap_base_value"] for r in rows], onnx_score(session, [""]).repeat(60), atol=1e-6)
    assert_allclose([r["shap_base_value"] + r["shap_sum"] for r in rows], onnx_score(session, texts),
                    atol=1e-6)  # float32 scores: rounding of the sum only
    assert out.metrics["additivity_error"].value < 1e-6
    shap_top = {cls: sorted((r for r in out.tables["top_tokens"] if r["class"] == cls and r["shap"] is not None),
                            key=lambda r: -r["shap"]) for cls in ("1", "0")}
    assert PLANTED_UP <= {r["token"] for r in shap_top["1"][:4]}, shap_top["1"]
    # towards "not shortlisted", besides the planted words: number words (the planted effect of years of
    # experience, "two years") and "tags" (the tag line comes with the tags, and the model offsets it)
    down = [r["token"] for r in shap_top["0"]]
    not_planted = [t for t in down if t not in PLANTED_DOWN | NUMBER_WORDS | {"tags"}]
    assert all(down.index(p) < down.index(t) for p in PLANTED_DOWN for t in not_planted), down
    assert out.metrics["top_token_agreement"].value >= 0.6


# ---------------------------------------------------------------------------- identity substitution
def test_swapper_keeps_case_whole_words_and_the_longest_term():
    swapper = TermSwapper([("he", "she"), ("his", "her"), ("him", "her"), ("himself", "herself")])
    swap = swapper.swap("SHE thanked Herself; her hero Hershey saw him.")
    assert swap.text == "HE thanked Himself; his hero Hershey saw her."
    assert (swap.first, swap.second) == (1, 3)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["he", "She", "MAN", "woman", "the", "cat", "Hers", ",", " "]), max_size=12))
def test_swapping_a_one_to_one_term_list_twice_gives_the_text_back(words):
    swapper = TermSwapper([("he", "she"), ("man", "woman")])
    text = " ".join(words)
    once = swapper.swap(text)
    assert swapper.swap(once.text).text == text
    assert once.changed == bool(re.search(r"\b(he|she|man|woman)\b", text, re.IGNORECASE))


def test_identity_substitution_finds_the_planted_bias_against_women(text_samples, session):
    data = text_data(text_samples, 400)
    out = run_check("identity_substitution", data, {"bootstrap": 300}, seed=2)
    m = out.metrics
    assert m["changed_share"].value == 1.0  # every note uses pronouns
    assert m["flip_rate"].value > 0.05
    # the planted sign: women's notes rewritten about men score higher, men's about women lower
    assert m["mean_score_change[female_to_male]"].ci[0] > 0
    assert m["mean_score_change[male_to_female]"].ci[1] < 0
    # the figures against a recomputation by hand with onnxruntime
    swapper = TermSwapper(DEFAULT_TERM_PAIRS)
    texts = data.frame["note"].tolist()
    before = onnx_score(session, texts)
    after = onnx_score(session, [swapper.swap(t).text for t in texts])
    flips = (before >= 0.5) != (after >= 0.5)
    female = (data.frame["gender"] == "F").to_numpy()
    assert m["flip_rate"].value == pytest.approx(flips.mean(), abs=1e-12)
    assert m["mean_score_change[female_to_male]"].value == pytest.approx((after - before)[female].mean(), abs=1e-6)
    assert m["mean_abs_score_change"].value == pytest.approx(np.abs(after - before).mean(), abs=1e-6)
    for example in out.tables["examples"]:
        assert example["score_after"] == pytest.approx(onnx_score(session, [example["after"]])[0], abs=1e-6)


def test_terms_no_text_holds_test_nothing_and_say_so(text_samples):
    out = run_check("identity_substitution", text_data(text_samples, 50), {"term_pairs": [["zebra", "giraffe"]]})
    assert out.metrics["changed_share"].value == 0.0 and "flip_rate" not in out.metrics
    assert any("nothing was swapped" in note for note in out.notes)


@pytest.mark.parametrize("params, key", [({"term_pairs": [["he"]]}, "term_pairs"),
                                         ({"term_pairs": [["he", "HE"]]}, "term_pairs"),
                                         ({"term_pairs": [["he", "two words"]]}, "term_pairs"),
                                         ({"groups": ["a", "a"]}, "groups"),
                                         ({"groups": ["male", "fe-male"]}, "groups")])
def test_bad_identity_params_are_rejected_by_name(params, key):
    with pytest.raises(ValidationError, match=key):
        IdentitySubstitutionParams(**params)


@pytest.mark.parametrize("check_type", ["partial_dependence", "noise_robustness", "shap_importance", "proxy_detection"])
def test_checks_that_probe_inputs_skip_a_model_whose_every_input_is_text(text_samples, check_type):
    out = run_check(check_type, text_data(text_samples, 50), {})
    assert out.skipped and "every input of this model is free text (data.text: note)" in out.skipped


def test_checks_that_read_whole_rows_still_run_on_a_text_model(text_samples):
    out = run_check("missing_values", text_data(text_samples, 50), {})
    assert out.skipped is None and "error_rate[note]" in out.metrics


# ---------------------------------------------------------------------------- typos
@pytest.mark.parametrize("kind, step", [("delete", -1), ("insert", 1)])
def test_at_rate_one_every_word_of_two_or_more_characters_gets_one_edit(seed, kind, step):
    from auditkit.methods.text_noise import add_typos

    text = "She is certified, a python mentor: 10 years."
    noisy, edited, eligible = add_typos(text, 1.0, np.random.default_rng(seed), [kind])
    words, noisy_words = re.findall(r"\w+", text), re.findall(r"\w+", noisy)
    assert edited == eligible == 7  # every word but "a", too short to edit
    assert [len(b) - len(a) for a, b in zip(words, noisy_words)] == [0 if len(w) < 2 else step for w in words]
    assert re.sub(r"\w+", "", noisy) == re.sub(r"\w+", "", text)  # spaces and punctuation untouched


def test_typos_flip_more_decisions_at_higher_rates_and_scores_match_onnxruntime(text_samples, session):
    data = text_data(text_samples, 300)
    out = run_check("text_noise", data, {"levels": [0.05, 0.5]}, seed=4)
    m = out.metrics
    assert 0 < m["flip_rate[0.05]"].value < m["flip_rate[0.5]"].value
    low, high = (r["words_edited"] for r in out.tables["levels"])
    assert abs(low - 0.05) < 0.02 and abs(high - 0.5) < 0.05  # binomial draws over ~5,000 words: 3+ sigma
    for example in out.tables["examples"]:
        assert example["score_after"] == pytest.approx(onnx_score(session, [example["after"]])[0], abs=1e-6)
        assert example["score_before"] == pytest.approx(onnx_score(session, [example["before"]])[0], abs=1e-6)


def test_the_documentation_lists_every_default_term_pair():
    from auditkit.core.registry import get_registry

    documentation = " ".join(get_registry().get("identity_substitution").documentation.split())
    for first, second in DEFAULT_TERM_PAIRS:
        assert f"{first}/{second}" in documentation
