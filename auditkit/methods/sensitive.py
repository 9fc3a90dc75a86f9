"""Features an explanation must not rely on: ``exclude_from_reasons``, shared by the local checks.

An adverse-action notice (Regulation B, 12 CFR 1002.9(b)(2)) that cites a protected attribute
or a proxy for one states a prohibited basis as a reason; recourse that asks an applicant to
change one is not recourse. ``exclude_from_reasons`` names the features that reasons never
cite, counterfactuals never change and anchors never condition on. Checks run apart, so this
cannot use what ``proxy_detection`` finds in the same run: the cross-check findings
(``engine/cross_checks.py``) flag those after the run, and the policy lists known proxies in
``data.proxies``.
"""
from __future__ import annotations

from typing import Any, Literal, Union

from auditkit.errors import CheckError, did_you_mean

#: false: nothing excluded; true or "proxies": the protected attributes and data.proxies; a list: those columns.
ExcludeFromReasons = Union[bool, Literal["proxies"], list[str]]
EXCLUDE_DESCRIPTION = ("Features the explanations never rely on: true (or \"proxies\") for the protected attributes "
                       "and data.proxies, or a list of columns. Reasons never cite them, counterfactuals never "
                       "change them (immutable), anchors never condition on them.")


def excluded_features(setting: ExcludeFromReasons | None, data: Any) -> dict[str, str]:
    """Columns excluded by ``setting``, each with why, in the order given."""
    if setting is None or setting is False:
        return {}
    if setting is True or setting == "proxies":
        out = {name: "protected attribute" for name in data.protected}
        for name in getattr(data, "proxies", []):
            out.setdefault(name, "declared proxy (data.proxies)")
        return out
    return {str(name): "params.exclude_from_reasons" for name in setting}


def validate_excluded(setting: ExcludeFromReasons | None, data: Any) -> None:
    """A listed name must be a column of the data (a typo would silently exclude nothing)."""
    if not isinstance(setting, list):
        return
    columns = [str(c) for c in data.frame.columns]
    for name in setting:
        if name not in data.frame.columns:
            raise CheckError(f"params.exclude_from_reasons: '{name}' is not a column of the data; "
                             f"{did_you_mean(name, columns)}")


def exclusion_note(excluded: dict[str, str], features: list[str], what: str) -> str | None:
    """One note saying which model inputs were excluded, and why; None when none was asked for."""
    if not excluded:
        return None
    inputs = [f"{name} ({why})" for name, why in excluded.items() if name in features]
    if not inputs:
        return f"exclude_from_reasons: none of {', '.join(excluded)} is a model input; nothing to exclude"
    return f"exclude_from_reasons: {what} {', '.join(inputs)}"
