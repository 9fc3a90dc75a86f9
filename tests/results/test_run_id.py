"""results.json's run_id: what names one run, carried by every report drawn from it (#13 item 3)."""
from __future__ import annotations

import copy
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pytest

from auditkit.results.io import validate_results
from auditkit.results.model import new_run_id

EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "example_results.json"


@pytest.fixture
def legacy_results() -> dict:
    results = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    assert "run_id" not in results  # a file written before run ids existed
    return results


def test_run_id_is_the_utc_start_then_48_random_bits():
    start = datetime(2026, 3, 14, 11, 15, 2, tzinfo=timezone(timedelta(hours=1)))
    run_id = new_run_id(start)
    assert re.fullmatch(r"20260314T101502Z-[0-9a-f]{12}", run_id), run_id


def test_run_ids_of_one_second_differ_and_later_runs_sort_after():
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    same_second = {new_run_id(start) for _ in range(1000)}
    assert len(same_second) == 1000
    assert max(same_second) < new_run_id(start + timedelta(seconds=1))


def test_results_without_a_run_id_still_validate(legacy_results):
    validate_results(legacy_results)


def test_a_run_id_is_validated_by_the_shipped_schema(legacy_results):
    results = copy.deepcopy(legacy_results)
    results["run_id"] = new_run_id(datetime.now(timezone.utc))
    validate_results(results)
    for bad in ("", "has space", "<script>", 42, "x" * 65):
        results["run_id"] = bad
        with pytest.raises(jsonschema.ValidationError):
            validate_results(results)
