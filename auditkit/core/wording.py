"""The reader's words for a decision: who it is about and what each decision means to them.

A policy may say ``report.subjects: applicants`` and ``model.decision_names: {1: declined,
0: approved}``; plain-language sentences (a finding's reading, the executive summary) then say
"applicants ... were approved" instead of "received the favourable decision". Without them
the sentences stay generic but never name a rate without saying what it counts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class Wording:
    subjects: str = "people"
    favorable: str | None = None  # the decision that benefits the person, e.g. "approved"
    unfavorable: str | None = None
    label_names: Mapping[str, str] = field(default_factory=dict)
    favorable_label: str | None = None
    decision_names: Mapping[str, str] = field(default_factory=dict)

    def rate_gloss(self, rate: str) -> str:
        """What a confusion-matrix rate counts, in the reader's words, e.g. "the share of
        applicants who defaulted that were declined" for the true positive rate (decision 1 and
        outcome 1 are the positive ones)."""
        who = self.subjects
        decided = {True: self._name(self.decision_names, "1", "given decision 1"),
                   False: self._name(self.decision_names, "0", "given decision 0")}
        outcome = {True: self._name(self.label_names, "1", "with outcome 1", verb=True),
                   False: self._name(self.label_names, "0", "with outcome 0", verb=True)}
        glosses = {
            "true positive rate": f"the share of {who} {outcome[True]} that were {decided[True]}",
            "false negative rate": f"the share of {who} {outcome[True]} that were {decided[False]}",
            "false positive rate": f"the share of {who} {outcome[False]} that were {decided[True]}",
            "true negative rate": f"the share of {who} {outcome[False]} that were {decided[False]}",
            "positive predictive value": f"among {who} that were {decided[True]}, the share {outcome[True]}",
            "selection rate": f"the share of {who} {self.favorable_outcome}",
            # a regression's group means (group_fairness on a regression model)
            "mean prediction": "the model's average prediction",
            "mean absolute error": "the average size of the model's errors",
            "mean residual": "prediction minus outcome, on average; above 0 is over-prediction",
        }
        return glosses.get(rate, "")

    @staticmethod
    def _name(names: Mapping[str, str], key: str, default: str, verb: bool = False) -> str:
        name = names.get(key)
        if name is None:
            return default
        return f"who {name}" if verb else name

    @property
    def favorable_outcome(self) -> str:
        """"approved", else "given the favourable decision"."""
        return self.favorable or "given the favourable decision"

    @property
    def unfavorable_outcome(self) -> str:
        return self.unfavorable or "given the unfavourable decision"

    def subjects_capitalised(self) -> str:
        return self.subjects[:1].upper() + self.subjects[1:]


def wording_of(results: Mapping[str, Any]) -> Wording:
    """The wording a results.json records (its ``report`` header and the favourable decision)."""
    report = results.get("report") if isinstance(results.get("report"), Mapping) else {}
    inputs = results.get("inputs") if isinstance(results.get("inputs"), Mapping) else {}
    data = inputs.get("data") if isinstance(inputs.get("data"), Mapping) else {}
    names = report.get("decision_names") if isinstance(report.get("decision_names"), Mapping) else {}
    names = {str(k): str(v) for k, v in names.items()}
    favorable = data.get("favorable_decision", data.get("favorable_label"))
    favorable_key = None if favorable is None else str(favorable)
    unfavorable = [v for k, v in names.items() if k != favorable_key]
    labels = report.get("label_names") if isinstance(report.get("label_names"), Mapping) else {}
    subjects = report.get("subjects")
    return Wording(
        subjects=str(subjects) if isinstance(subjects, str) and subjects.strip() else "people",
        favorable=names.get(favorable_key) if favorable_key is not None else None,
        unfavorable=unfavorable[0] if len(unfavorable) == 1 else None,
        label_names={str(k): str(v) for k, v in labels.items()},
        favorable_label=favorable_key, decision_names=names)
