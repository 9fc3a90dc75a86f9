"""The policy's JSON Schema, generated from the pydantic models and the registered checks."""
from __future__ import annotations

import copy
from typing import Any

from auditkit.core.registry import get_registry
from auditkit.policy.models import CheckSpec, Policy


def policy_json_schema() -> dict[str, Any]:
    """JSON Schema of a policy; each check entry is one of the registered types with its params."""
    schema = Policy.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "auditkit policy (version 1)"
    defs = schema.setdefault("$defs", {})
    check_base = defs.get(CheckSpec.__name__) or CheckSpec.model_json_schema()
    variants = []
    for check_type in get_registry().types():
        params = check_type.params.model_json_schema()
        for name, sub in params.pop("$defs", {}).items():
            defs.setdefault(name, sub)
        variant = copy.deepcopy(check_base)
        variant["title"] = check_type.type
        variant["description"] = check_type.description
        variant["properties"]["type"] = {"const": check_type.type, "description": check_type.description}
        variant["properties"]["params"] = params
        names = sorted({m[:-3] if m.endswith("[*]") else m for m in check_type.metrics})
        variant["properties"]["thresholds"] = {
            "type": "object",
            "propertyNames": {"anyOf": [{"enum": names}, {"pattern": r"^[A-Za-z0-9_]+\[.+\]$"}]},
            "additionalProperties": {"$ref": "#/$defs/Threshold"},
        }
        variants.append(variant)
    schema["properties"]["checks"] = {"type": "array", "minItems": 1, "items": {"oneOf": variants},
                                      "description": "The checks to run (`auditkit checks` lists the types)."}
    return schema
