"""The policy file as typed, frozen models (DESIGN.md, "Policy (contract)").

Plain types only: ``data/`` and ``engine/`` import them. Validation that needs the check
registry (a check's params, which metrics it produces) lives in ``policy/load.py``.
"""
from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Label = Union[int, str]
ReportFormat = Literal["html", "pdf", "json", "junit", "md"]
ALL_FORMATS: tuple[str, ...] = ("json", "html", "pdf", "junit", "md")


class StrictModel(BaseModel):
    # DESIGN.md: every number in a policy is finite (load.py says where a NaN is; this is the backstop)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ModelSpec(StrictModel):
    """The model under audit, or the columns that hold its past outputs."""

    path: Optional[str] = Field(None, description="Model file, relative to the policy file. Not used in predictions mode.")
    format: Optional[Literal["onnx", "pickle", "joblib", "skops", "predictions"]] = Field(
        None, description="Inferred from the extension (.onnx, .pkl/.pickle, .joblib, .skops) when absent.")
    sha256: Optional[str] = Field(None, pattern=r"^[0-9a-fA-F]{64}$",
                                  description="Pin: the model file must have this SHA-256; required to unpickle without --trust-pickle.")
    task: Optional[Literal["binary", "multiclass", "regression"]] = Field(
        None, description="Inferred from the model's outputs when absent.")
    positive_class: Optional[Label] = Field(None, description="The class whose score is audited (binary). Default 1.")
    threshold: Optional[float] = Field(
        None, description="Decision threshold on the audited score: decision = 1 when score >= threshold. "
                          "Default 0.5 for probabilities, 0 for decision functions.")
    score_column: Optional[str] = Field(None, description="Predictions mode: the column holding the scores.")
    prediction_column: Optional[str] = Field(None, description="Predictions mode: the column holding the decisions.")
    trusted_types: list[str] = Field(default_factory=list,
                                     description="skops: types to trust beyond skops' defaults, after you have reviewed them.")
    name: Optional[str] = Field(None, description="The model's name, as the report's cover shows it.")
    version: Optional[str] = Field(None, description="The model's version, as the report's cover shows it.")
    owner: Optional[str] = Field(None, description="Who answers for the model (a person or a team).")
    decision_names: dict[Label, str] = Field(
        default_factory=dict, description="What each decision means to the person, e.g. {1: declined, 0: approved}: "
                                          "the report's sentences use these words.")

    @model_validator(mode="after")
    def _predictions_need_columns(self) -> "ModelSpec":
        if self.format == "predictions":
            if self.score_column is None and self.prediction_column is None:
                raise ValueError("format: predictions needs score_column and/or prediction_column")
        elif self.path is None:
            raise ValueError("path is required (or format: predictions with score_column/prediction_column)")
        return self


class DataSpec(StrictModel):
    """The audit data and the roles of its columns."""

    path: str = Field(description="CSV or Parquet file, relative to the policy file.")
    target: Optional[str] = Field(None, description="Observed outcome; optional when only unlabelled checks run.")
    protected: list[str] = Field(default_factory=list, description="Audited attributes; need not be model inputs.")
    features: Optional[list[str]] = Field(
        None, description="Model inputs. Default: the model's own input names, else every column but target, "
                          "ignore, protected-only and prediction columns.")
    ignore: list[str] = Field(default_factory=list, description="Columns that play no role (ids, free text).")
    text: list[str] = Field(
        default_factory=list, description="Model inputs that hold free text (notes, complaints), which the model "
                                          "tokenises itself: token_attributions and identity_substitution read them; "
                                          "checks that probe inputs as numbers or categories leave them alone.")
    favorable_label: Optional[Label] = Field(
        None, description="The decision that benefits the person (default: positive_class). Multiclass: the class "
                          "whose prediction benefits the person; it must be one of the model's classes.")
    reference: Optional[str] = Field(None, description="Reference data (e.g. training data): backgrounds, ranges, drift.")
    sample: Optional[int] = Field(None, ge=1, description="Cap on audit rows: a stratified, seeded sample.")
    query: Optional[str] = Field(None, description="Keep only the rows this pandas query selects (applied before sampling).")
    na_values: list[str] = Field(default_factory=list, description="Extra strings read as missing (empty cells always are).")
    label_names: dict[Label, str] = Field(
        default_factory=dict, description="What each observed outcome means, e.g. {1: defaulted, 0: repaid}: the "
                                          "report's sentences use these words.")
    proxies: list[str] = Field(
        default_factory=list, description="Model inputs known to stand in for a protected attribute: explanations "
                                          "that cite them are marked, and checks with exclude_from_reasons never cite them.")
    encoding: Optional[str] = Field(
        None, description="Text encoding of CSV files (data.path and data.reference), e.g. latin-1. Default: UTF-8; "
                          "a file that is not UTF-8 is read as Windows-1252, with a note.")


class Threshold(StrictModel):
    """``{min: x}``, ``{max: x}`` or both; and/or bounds relative to a baseline run."""

    min: Optional[float] = None
    max: Optional[float] = None
    max_decrease: Optional[float] = Field(
        None, ge=0, description="Fail when the figure fell by more than this since the baseline run "
                                "(report.baseline or --baseline): baseline - current > max_decrease.")
    max_increase: Optional[float] = Field(
        None, ge=0, description="Fail when the figure rose by more than this since the baseline run: "
                                "current - baseline > max_increase.")
    severity: Literal["fail", "warn"] = "fail"
    on: Literal["value", "lower", "upper"] = Field(
        "value", description="Compare the figure itself, or the lower/upper end of its confidence interval.")

    @property
    def relative(self) -> bool:
        """Whether the threshold has a bound relative to a baseline."""
        return self.max_decrease is not None or self.max_increase is not None

    @model_validator(mode="after")
    def _has_a_bound(self) -> "Threshold":
        if self.min is None and self.max is None and not self.relative:
            raise ValueError("a threshold needs min, max, max_decrease or max_increase")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class CheckSpec(StrictModel):
    """One entry of ``checks``."""

    id: Optional[str] = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
                              description="Unique; defaults to the type.")
    type: str = Field(description="A registered check type (`auditkit checks` lists them).")
    params: dict[str, Any] = Field(default_factory=dict)
    thresholds: dict[str, Threshold] = Field(default_factory=dict)
    timeout_s: float = Field(600.0, gt=0, description="Past it the check ends as `error`; the others go on.")
    memory_mb: Optional[int] = Field(
        None, ge=64, description="Memory the check may use, in MB; past it the check ends as `error`, the others go "
                                 "on. Default: 75% of the machine's memory shared by the workers running at once.")
    retries: int = Field(
        0, ge=0, le=5, description="How many times to run the check again when its worker process dies (killed, "
                                   "out of memory, a crash in native code) before it ends as `error`. A check that "
                                   "raises or times out is not retried.")
    description: Optional[str] = None

    @property
    def check_id(self) -> str:
        return self.id or self.type


Regime = Literal["eu_ai_act", "nyc_ll144", "ecoa_reg_b", "sr_11_7"]


class Signatory(StrictModel):
    name: Optional[str] = None
    role: Optional[str] = None
    date: Optional[str] = Field(None, description="As written; an unquoted YAML date is kept as YYYY-MM-DD.")

    @field_validator("date", mode="before")
    @classmethod
    def _date_as_text(cls, value: Any) -> Any:
        return value.isoformat() if hasattr(value, "isoformat") else value


class SignoffSpec(StrictModel):
    """Who prepared, reviewed and approved the audit; absent entries print as blank lines to sign."""

    prepared: Optional[Signatory] = None
    reviewed: Optional[Signatory] = None
    approved: Optional[Signatory] = None


class ReportSpec(StrictModel):
    title: Optional[str] = None
    organization: Optional[str] = None
    intended_use: Optional[str] = Field(None, description="What the model is for and who it decides about.")
    subjects: Optional[str] = Field(None, description="Who the decisions are about, in the plural (e.g. applicants): "
                                                      "the report's sentences use it. Default: people.")
    classification: Optional[str] = Field(None, description="Label on the cover and every page, e.g. Confidential.")
    regimes: list[Regime] = Field(
        default_factory=list, description="Regulatory regimes whose obligations the report maps to the checks: "
                                          "eu_ai_act, nyc_ll144, ecoa_reg_b, sr_11_7.")
    signoff: SignoffSpec = Field(default_factory=SignoffSpec)
    formats: list[ReportFormat] = Field(default_factory=lambda: list(ALL_FORMATS))
    output_dir: Optional[str] = Field(None, description="Relative to the policy file. Default: reports/<policy file name>.")
    baseline: Optional[str] = Field(
        None, description="A results.json of an earlier audit (relative to the policy file) that the "
                          "thresholds' max_decrease / max_increase compare with; --baseline overrides it.")


class StatisticsSpec(StrictModel):
    """How group comparisons are judged across the whole audit."""

    multiple_comparisons: Literal["holm", "bh", "none"] = Field(
        "holm", description="Correction of the group comparisons' p-values across the audit: holm (family-wise), "
                            "bh (Benjamini-Hochberg false discovery rate) or none.")
    alpha: float = Field(0.05, gt=0, lt=1, description="Significance level of the group comparisons.")
    power: float = Field(0.8, gt=0, lt=1, description="Power at which the minimum detectable disparity is stated.")


class Policy(StrictModel):
    version: Literal[1] = Field(description="Policy format version.")
    name: str = Field(min_length=1)
    seed: int = Field(0, ge=0, description="Every figure is reproducible from this seed.")
    model: ModelSpec
    data: DataSpec
    checks: list[CheckSpec] = Field(min_length=1)
    report: ReportSpec = Field(default_factory=ReportSpec)
    statistics: StatisticsSpec = Field(default_factory=StatisticsSpec)

    @field_validator("checks")
    @classmethod
    def _unique_ids(cls, checks: list[CheckSpec]) -> list[CheckSpec]:
        seen: set[str] = set()
        for check in checks:
            if check.check_id in seen:
                raise ValueError(f"duplicate check id '{check.check_id}': give each check its own `id`")
            seen.add(check.check_id)
        return checks
