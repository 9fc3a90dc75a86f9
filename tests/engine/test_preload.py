"""The forkserver imports what the plan's checks import, so a check's duration is its computation
(issue #17: "start-up paid once per audit")."""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from auditkit.core.registry import CheckParams, check, get_registry
from auditkit.engine.preload import DISABLE_ENV, imports_of, modules_to_preload
from support import credit_policy, write_policy
from tests_support import ENGINE_TESTS


def test_preload_names_what_a_check_imports_inside_its_functions() -> None:
    group_fairness = get_registry().get("group_fairness")
    names = modules_to_preload([group_fairness])
    assert names[0] == group_fairness.func.__module__  # the check's own module first
    # group_fairness imports scipy.stats inside a function, never at the top of its module
    assert "scipy.stats" in names
    # and so does proxy_detection sklearn.metrics
    assert any(name.startswith("sklearn.metrics") for name in modules_to_preload([get_registry().get("proxy_detection")]))


def test_preload_follows_the_methods_a_check_calls() -> None:
    # shap_importance imports neither itself: auditkit.methods.shap_values imports shap inside
    # a function, and auditkit.methods.onnx_trees imports onnx
    names = modules_to_preload([get_registry().get("shap_importance")])
    assert "shap" in names and "onnx" in names


def test_preload_of_several_checks_is_their_union_without_repeats() -> None:
    registry = get_registry()
    types = [registry.get("group_fairness"), registry.get("performance"), registry.get("group_fairness")]
    names = modules_to_preload(types)
    assert len(names) == len(set(names))
    assert set(names) == set(modules_to_preload(types[:1])) | set(modules_to_preload(types[1:2]))


def test_preload_leaves_out_the_standard_library_annotations_and_auditkit(tmp_path, monkeypatch) -> None:
    package = tmp_path / "plugin_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helpers.py").write_text("import otherlib.sub\n")
    (package / "check_mod.py").write_text(textwrap.dedent("""
        from __future__ import annotations
        import json
        from typing import TYPE_CHECKING
        from auditkit.core.registry import CheckParams, check
        from . import helpers
        if TYPE_CHECKING:
            import annotations_only
        else:
            import at_run_time

        def compute():
            import collections.abc
            from fancy import thing
            from .helpers import something
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    # `from fancy import thing` is preloaded as fancy.thing: a submodule or, failing that, fancy
    assert set(imports_of("plugin_pkg.check_mod")) == {"at_run_time", "fancy.thing", "otherlib.sub"}


def test_declared_preload_modules_are_added_to_those_found() -> None:
    class Params(CheckParams):
        pass

    @check("test_declares_preload", family="data", params=Params, metrics=["x"], preload=["declared_lib"])
    def declares(ctx, params):
        """Declares a module its source does not show."""

    spec = declares.__auditkit_check__
    assert spec.preload == ("declared_lib",)
    assert "declared_lib" in modules_to_preload([spec])


@pytest.mark.parametrize("preload", ["shap", ["not a module"], [3]])
def test_preload_must_be_a_list_of_module_names(preload) -> None:
    class Params(CheckParams):
        pass

    with pytest.raises(ValueError, match="preload must be a list of module names"):
        check("test_bad_preload", family="data", params=Params, metrics=["x"], preload=preload)


def test_preload_is_switched_off_by_the_environment(monkeypatch) -> None:
    monkeypatch.setenv(DISABLE_ENV, "1")
    assert modules_to_preload([get_registry().get("group_fairness")]) == []


def _register_preload_check() -> None:
    if str(ENGINE_TESTS) not in sys.path:
        sys.path.insert(0, str(ENGINE_TESTS))
    import preload_checks

    registry = get_registry()
    if "test_sees_preload" not in registry:
        registry.register_module(preload_checks)


@pytest.mark.parametrize("disabled", [False, True])
def test_a_workers_check_starts_with_its_lazy_imports_done(samples: Path, tmp_path: Path, monkeypatch,
                                                           disabled: bool) -> None:
    from auditkit.engine.run import RunOptions, run_audit
    from auditkit.policy.load import load_policy

    _register_preload_check()
    assert "preload_probe" not in sys.modules  # imported only by the check, in its worker
    if disabled:
        monkeypatch.setenv(DISABLE_ENV, "1")
    policy = write_policy(tmp_path, credit_policy(samples, tmp_path / "o", checks=[
        {"id": "probe", "type": "test_sees_preload"}]))
    result = run_audit(load_policy(policy), RunOptions(workers=1)).results["checks"][0]
    assert result["status"] == "info", result
    assert result["metrics"]["preloaded"]["value"] == (0.0 if disabled else 1.0)
