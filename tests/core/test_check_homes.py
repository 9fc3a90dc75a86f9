"""Every check has one home: auditkit/checks/<family>/<type>.py holds exactly one registered
check, of that type and that family, and nothing else lives among the checks (issue #17)."""
from __future__ import annotations

import importlib

from auditkit.core.registry import _MARK, builtin_check_modules, get_registry


def test_each_check_module_registers_one_check_named_after_it_in_its_familys_folder():
    seen = set()
    for name in builtin_check_modules():
        module = importlib.import_module(name)
        marked = [getattr(v, _MARK) for v in vars(module).values() if callable(v) and hasattr(v, _MARK)
                  and getattr(v, "__module__", None) == name]
        assert len(marked) == 1, f"{name} should register exactly one check, found {len(marked)}"
        spec = marked[0]
        *_, folder, module_name = name.split(".")
        assert spec.type == module_name, f"{name} registers '{spec.type}'"
        assert spec.family == folder, f"{name} is in folder '{folder}' but declares family '{spec.family}'"
        seen.add(spec.type)
    assert seen == set(get_registry().names()) - {t for t in get_registry().names() if t.startswith("test_")}
