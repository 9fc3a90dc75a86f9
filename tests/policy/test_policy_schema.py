"""`auditkit schema`: the policy's JSON Schema, for editors and CI linters, agrees with the loader."""
from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from support import ROOT

from auditkit.core.registry import get_registry

POLICIES = sorted((ROOT / "policies").glob("*.yaml"))


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    from typer.testing import CliRunner

    from auditkit.cli import app

    result = CliRunner().invoke(app, ["schema"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)  # the schema itself is a valid JSON Schema of its declared draft
    return cls(schema)


def plain_yaml(path) -> Any:
    """The policy as plain data (what an editor's YAML plugin hands to the schema)."""
    return YAML(typ="safe", pure=True).load(path.read_text())


def errors(validator: jsonschema.protocols.Validator, document: Any) -> list[str]:
    return [e.message for e in validator.iter_errors(document)]


def test_schema_is_draft_2020_12(schema):
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_check_variants_list_every_registered_type(schema):
    variants = schema["properties"]["checks"]["items"]["oneOf"]
    consts = [v["properties"]["type"]["const"] for v in variants]
    assert sorted(consts) == get_registry().names()
    assert {"performance", "data_integrity"} <= set(consts)


@pytest.mark.parametrize("policy", POLICIES, ids=[p.name for p in POLICIES])
def test_shipped_policies_validate_against_the_schema(validator, policy):
    assert errors(validator, plain_yaml(policy)) == []


def test_schema_rejects_an_unknown_top_level_key(validator):
    document = plain_yaml(ROOT / "policies" / "credit_scoring.yaml")
    document["modle"] = {"path": "m.onnx"}
    found = errors(validator, document)
    assert len(found) == 1 and "'modle' was unexpected" in found[0]


@pytest.mark.parametrize("edit", [
    pytest.param(lambda d: d["checks"][0].__setitem__("type", "perfomance"), id="unknown-check-type"),
    pytest.param(lambda d: d["checks"][0]["params"].__setitem__("bootstrap", -1), id="param-out-of-range"),
    pytest.param(lambda d: d["checks"][0]["params"].__setitem__("n_boot", 5), id="unknown-param"),
    pytest.param(lambda d: d["checks"][0]["thresholds"].__setitem__("roc_acu", {"min": 0.7}), id="unknown-metric"),
    pytest.param(lambda d: d["checks"][0]["thresholds"]["roc_auc"].__setitem__("on", "middle"), id="bad-on"),
])
def test_schema_rejects_what_the_loader_rejects_inside_a_check(validator, edit):
    document = plain_yaml(ROOT / "policies" / "credit_scoring.yaml")
    assert document["checks"][0]["type"] == "performance"
    broken = copy.deepcopy(document)
    edit(broken)
    assert errors(validator, document) == []
    assert errors(validator, broken) != []


def test_schema_accepts_per_attribute_metric_thresholds(validator):
    document = plain_yaml(ROOT / "policies" / "credit_scoring.yaml")
    document["checks"][1]["thresholds"]["missing_share[income]"] = {"max": 0.01}
    assert document["checks"][1]["type"] == "data_integrity"
    assert errors(validator, document) == []
