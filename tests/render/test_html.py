"""render.html: the self-contained HTML report."""
from __future__ import annotations

import html as html_lib
import re
import shutil
from pathlib import Path

import markupsafe
import pytest

from auditkit.render.format import format_ci, format_number, format_threshold
from auditkit.render.html import PRINT_ROW_LIMIT, TABLE_ROW_LIMIT, build_environment, environment, render_html

#: The hostile column name of tests/data/example_results.json.
EVIL_COLUMN = '=HYPERLINK("http://evil")<script>alert(1)</script>'


def visible_text(page: str) -> str:
    """The page's text with tags removed and entities decoded (roughly what a reader sees)."""
    page = re.sub(r"<svg.*?</svg>", " ", page, flags=re.S)
    page = re.sub(r"<style.*?</style>", " ", page, flags=re.S)
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_example_report_has_the_contents_in_order(example_results):
    page = render_html(example_results)
    text = visible_text(page)
    headings = ["Credit model audit", "Overall result", "Contents", "1 Executive summary", "2 At a glance",
                "3 What was audited", "4 Checks", "4.1 discrimination", "4.2 data-quality", "4.3 crashy", "4.4 lofo",
                "5 Limitations and assumptions", "6 Reproducibility", "7 Sign-off"]
    positions = [text.find(h) for h in headings]
    assert -1 not in positions, dict(zip(headings, positions))
    assert positions == sorted(positions)


def test_cover_gives_title_organization_status_and_exit_code(example_results):
    text = visible_text(render_html(example_results))
    assert "Example Bank" in text
    assert "FAIL" in text and "At least one check failed its thresholds." in text
    assert "Exit code 1 (failed: a threshold was missed)" in text
    assert "2026-11-23 10:00 UTC" in text


def test_title_falls_back_to_the_policy_name(example_results):
    del example_results["report"]
    page = render_html(example_results)
    assert "<title>Consumer credit scoring model — pre-deployment audit &lt;demo&gt;</title>" in page


def test_findings_metrics_and_reasons_are_shown(example_results):
    text = visible_text(render_html(example_results))
    # Findings: value against threshold, on, severity, status word (capitals come from CSS).
    assert "roc_auc 0.81 ≥ 0.75 value fail pass" in text
    assert "accuracy 0.76 ≥ 0.8 value warn warn" in text
    assert "duplicate_rows 150 ≤ 0 value fail fail" in text
    # Metrics: value, CI with matching decimals, n with separators; null with its note; the
    # interval method, the same for every interval, said once under the table.
    assert "roc_auc 0.81 [0.80, 0.82] 20,150 accuracy 0.76 [0.75, 0.77] 20,150" in text
    assert "log_loss — the model outputs labels only Method: percentile bootstrap, 1000 resamples." in text
    # Error and skip reasons: in the glance table and the sections; an error also in the
    # executive summary, and both in the limitations (checks that did not run or complete).
    assert text.count("timed out after 600 s (timeout_s)") == 4
    assert text.count("predictions mode: this check needs to query a model") == 3
    # Summary key figures: the worst finding first.
    assert "accuracy = 0.76 (threshold ≥ 0.8) warn roc_auc = 0.81 (threshold ≥ 0.75)" in text


def test_what_was_audited_lists_inputs_engine_and_hashes(example_results):
    text = visible_text(render_html(example_results))
    for expected in ["File sample_models/credit_gbm.onnx", "Format onnx", "SHA-256 " + "ab" * 32,
                     "Task binary", "Positive class 1", "Decision threshold 0.5",
                     "Kind onnx: ZipMap probabilities, 10 named inputs", "Rows 20,150", "Rows used 20,150",
                     "Columns 16", "Target defaulted", "Protected attributes sex, race, age_band",
                     "Features income, debt_ratio", "File policies/credit_scoring.yaml", "SHA-256 " + "ef" * 32,
                     "Seed 42", "Executor local", "Workers 2", "Overhead 1.2 s"]:
        assert expected in text, expected


def test_every_engine_field_a_run_records_has_a_label_in_words(example_results):
    # the keys engine/run.py writes for the local and the Dask executor; a raw key such as
    # "Checks wall s" or "Memory mb default" must never reach the reader
    example_results["engine"].update({
        "cores": 2, "prepare_s": 2.5, "checks_wall_s": 21.3, "checks_time_s": 27.8, "memory_mb_default": 9039,
        "scheduler": "tcp://10.0.0.5:8786", "dashboard": "http://10.0.0.5:8787/status", "scheduler_lost": False,
        "partitions": 4, "worker_memory_mb": 2048})
    text = visible_text(render_html(example_results))
    for expected in ["Cores 2", "Loading and predicting 2.5 s", "Checks, wall time 21.3 s",
                     "Time in checks (sum) 27.8 s", "Memory limit per check (MB) 9,039",
                     "Dask scheduler tcp://10.0.0.5:8786", "Data files read by partition 4",
                     "Memory limit per worker (MB) 2,048"]:
        assert expected in text, expected
    for raw in ["Prepare s", "Checks wall s", "Memory mb default", "Worker memory mb"]:
        assert raw not in text


def test_reproduce_section_gives_command_versions_and_hashes(example_results):
    text = visible_text(render_html(example_results))
    tail = text[text.index("6 Reproducibility", text.index("4.4 lofo")):]
    for expected in ["auditkit run policies/credit_scoring.yaml", "auditkit 0.1.0", "Python 3.11.7",
                     "numpy 2.4.6", "shap 0.51.0", "Seed 42", "cd" * 32]:
        assert expected in tail, expected


def test_untrusted_strings_are_escaped(example_results):
    example_results["checks"][0]["id"] = "<img src=x onerror=alert(1)>"
    example_results["checks"][0]["params"] = {"<b>key</b>": "<i>value</i>"}
    example_results["inputs"]["data"]["path"] = "data/<script>.csv"
    page = render_html(example_results)
    assert "<script>" not in page and "<b>" not in page and "<i>" not in page and "<img" not in page
    assert str(markupsafe.escape(EVIL_COLUMN)) in page  # the column name, shown as text
    assert "a $lone dollar and &lt;b&gt;markup&lt;/b&gt; from a column name" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;b&gt;key&lt;/b&gt;" in page
    assert "Consumer credit scoring model — pre-deployment audit &lt;demo&gt;" in page


def test_autoescape_is_on_for_every_template():
    env = environment()
    assert env.autoescape is True  # not select_autoescape(): it skips ".html.j2"
    assert env.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"


def test_page_is_self_contained(example_results):
    page = render_html(example_results)
    # The only URL is inside the escaped hostile column name.
    assert page.count("http://") == 1
    without_user_text = page.replace(str(markupsafe.escape(EVIL_COLUMN)), "")
    assert "http://" not in without_user_text and "https://" not in without_user_text
    assert not re.search(r"\bsrc\s*=", without_user_text)
    assert "<script" not in page and "<link" not in page and "<iframe" not in page
    assert "@import" not in page and "url(" not in page.replace("url(#c", "")  # only in-SVG references
    assert re.search(r'<meta http-equiv="Content-Security-Policy" content="default-src \'none\'', page)
    # Inline CSS and one inline SVG per plot.
    assert "<style>" in page and "@page" in page
    assert page.count("<svg ") == sum(len(c["plots"]) for c in example_results["checks"])


def test_element_ids_are_unique(example_results):
    page = render_html(example_results)
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert len(ids) > 20
    assert len(ids) == len(set(ids))
    for target in re.findall(r'href="#([^"]+)"', page):
        assert target in ids, target


def test_same_results_give_the_same_page(example_results):
    assert render_html(example_results) == render_html(example_results)


def test_zero_checks(empty_results):
    page = render_html(empty_results)
    text = visible_text(page)
    assert "PASS" in text and "Every check passed its thresholds." in text
    assert "No check was run" in text
    assert "Exit code 0" in text
    assert "(predictions in the data)" in text


def test_a_check_with_only_the_required_keys_renders(empty_results):
    empty_results["checks"] = [{"id": "bare", "type": "performance", "status": "pass", "duration_s": 0.5,
                                "metrics": {"x": {"value": 1}}, "findings": [], "tables": {}, "plots": [],
                                "notes": [], "error": None}]
    text = visible_text(render_html(empty_results))
    assert "4.1 bare pass type performance · 0.5 s" in text
    assert "x = 1" in text  # the glance table falls back on the first metrics


def test_a_long_table_is_whole_in_the_html_and_cut_to_its_first_rows_in_print(example_results, edit_check):
    rows = [{"feature": f"f{i}", "mean_abs_shap": 1 / (i + 1), "rank": i + 1} for i in range(120)]
    results = edit_check(example_results, 1, tables={"importance": rows})
    screen = render_html(results)
    assert all(f">f{i}<" in screen for i in range(120))  # every row, the ones past the printed under a <details>
    assert "<details" in screen and f"The other {120 - PRINT_ROW_LIMIT} rows" in visible_text(screen)
    printed = render_html(results, medium="print")
    assert f">f{PRINT_ROW_LIMIT - 1}<" in printed and f">f{PRINT_ROW_LIMIT}<" not in printed
    assert "<details" not in printed
    note = re.sub(r"\s+([)])|([(])\s+", r"\1\2", visible_text(printed))
    assert (f"First {PRINT_ROW_LIMIT} of 120 rows; all rows in results.json (checks[1].tables.importance) "
            "and the HTML report.") in note


def test_a_table_a_little_longer_than_the_print_cut_is_printed_whole(example_results, edit_check):
    from auditkit.render.html import PRINT_CUT_AFTER

    assert PRINT_CUT_AFTER > PRINT_ROW_LIMIT
    rows = [{"feature": f"f{i}", "rank": i + 1} for i in range(PRINT_CUT_AFTER)]
    printed = render_html(edit_check(example_results, 1, tables={"importance": rows}), medium="print")
    assert f">f{PRINT_CUT_AFTER - 1}<" in printed and "First " not in visible_text(printed)


def test_a_cells_long_list_prints_as_its_length_first_and_last_values_and_the_html_keeps_it_whole(
        example_results, edit_check):
    # A partial-dependence table printed its whole grid and curve in each cell: pages of raw vectors.
    grid = [round(0.25 * i, 2) for i in range(21)]
    rows = [{"feature": "income", "grid": grid, "pdp": [0.5] * 20 + [0.75]}]
    results = edit_check(example_results, 1, tables={"partial_dependence": rows})
    printed = visible_text(render_html(results, medium="print"))
    assert "21 values: 0, 0.25, 0.5 … 5" in printed and "21 values: 0.5, 0.5, 0.5 … 0.75" in printed
    assert "1.25, 1.5" not in printed
    assert "Lists of more than 4 values are shortened" in printed
    from auditkit.render.format import format_long_list
    assert format_long_list([17153, 20938, 24723, 30000, 89071], 4) == "5 values: 17,153; 20,938; 24,723 … 89,071"
    screen = visible_text(render_html(results))
    assert "0, 0.25, 0.5, 0.75, 1, 1.25" in screen and "21 values:" not in screen


def test_rows_past_the_html_limit_are_left_to_results_json(example_results, edit_check):
    rows = [{"feature": f"f{i}", "rank": i + 1} for i in range(TABLE_ROW_LIMIT + 70)]
    page = render_html(edit_check(example_results, 1, tables={"importance": rows}))
    assert f">f{TABLE_ROW_LIMIT - 1}<" in page and f">f{TABLE_ROW_LIMIT}<" not in page
    assert "70 more rows in results.json" in visible_text(page)


def test_tables_have_human_titles_not_internal_names(example_results, edit_check):
    results = edit_check(example_results, 1, tables={"duplicate_rows": [{"row": 3, "duplicate_of": 1}],
                                                     "least_stable_rows": [{"row": 3}]})
    assert results["checks"][1]["type"] == "data_integrity"
    page = render_html(results)
    text = visible_text(page)
    assert "Duplicated rows, each with the earlier row it repeats" in text  # the check type's own title
    assert "Least stable rows" in text  # an unknown table: its name in words
    assert "Table:" not in text and not re.search(r"<h4[^>]*>duplicate_rows", page)


def test_changes_list_the_features_that_changed_before_and_after(example_results, edit_check):
    rows = [{"row": 7, "changes": {"income": [15960, 16495], "n_open_accounts": [1, 1], "debt_ratio": [0.138, 0.14]}}]
    text = visible_text(render_html(edit_check(example_results, 1, tables={"examples": rows})))
    assert "income 15,960 → 16,495; debt_ratio 0.138 → 0.14" in text
    assert "n_open_accounts" not in text


def test_metrics_with_different_methods_say_each(example_results, edit_check):
    metrics = {"a": {"value": 0.5, "ci": [0.4, 0.6], "method": "bootstrap"},
               "b": {"value": 0.1, "ci": [0.05, 0.15], "method": "Wilson"}}
    text = visible_text(render_html(edit_check(example_results, 0, metrics=metrics)))
    assert "a 0.5 [0.4, 0.6] bootstrap b 0.1 [0.05, 0.15] Wilson" in text
    assert "Method:" not in text
    metrics["c"] = {"value": 0.2, "ci": [0.1, 0.3], "method": "bootstrap"}
    text = visible_text(render_html(edit_check(example_results, 0, metrics=metrics)))
    assert "a 0.5 [0.4, 0.6] b 0.1 [0.05, 0.15] Wilson c 0.2 [0.1, 0.3]" in text
    assert "Method: bootstrap, unless a row says otherwise." in text


def test_very_wide_tables_are_cut_into_parts_repeating_the_key_columns(example_results, edit_check):
    record = {"attribute": "sex", "group": "F", **{f"rate_{i}": i / 100 for i in range(20)}, "row": 12345}
    page = render_html(edit_check(example_results, 1, tables={"groups": [record]}))
    text = visible_text(page)
    assert "Groups (1 of 2)" in text and "Groups (2 of 2)" in text
    assert text.count("attribute group") == 2  # the key columns head both parts
    assert "12345" in text and "12,345" not in text  # a row number is not a quantity


def test_interval_columns_are_shown_under_their_value(example_results, edit_check):
    rows = [{"group": "F", "selection_rate": 0.41, "selection_rate_ci": [0.39, 0.43], "n": 812}]
    page = render_html(edit_check(example_results, 1, tables={"groups": rows}))
    text = visible_text(page)
    assert "F 0.41 [0.39, 0.43] 812" in text
    assert ">selection_rate_ci<" not in page


def test_unknown_plot_kind_is_said_not_drawn(example_results, edit_check):
    results = edit_check(example_results, 1, plots=[{"kind": "sankey", "title": "Flows", "data": {}}])
    text = visible_text(render_html(results))
    assert "Flows" in text and "is not drawn by this version" in text


def test_a_check_type_with_its_own_section_template_uses_it(example_results, tmp_path: Path):
    shipped = Path(environment().loader.root)  # type: ignore[union-attr]
    templates = tmp_path / "templates"
    shutil.copytree(shipped, templates, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    (templates / "sections" / "data_integrity.html.j2").write_text(
        '{% extends "sections/generic.html.j2" %}'
        "{% block tables %}<p>custom integrity section for {{ check.id }}</p>{% endblock %}",
        encoding="utf-8",
    )
    page = render_html(example_results, env=build_environment(templates))
    assert page.count("custom integrity section") == 1
    assert "custom integrity section for data-quality" in page
    assert "Confusion matrix: decisions against outcomes" in page  # the performance check uses the generic section


def test_a_check_type_cannot_name_a_template_outside_sections(example_results):
    choose = environment().globals["section_template"]
    assert choose("../report") == "sections/generic.html.j2"
    assert choose("performance") == "sections/generic.html.j2"
    example_results["checks"][0]["type"] = "../../report"
    assert "4.1" in render_html(example_results)


@pytest.mark.parametrize(("value", "text"), [
    (None, "—"), (0, "0"), (0.0, "0"), (20150, "20,150"), (150.0, "150"), (0.0074, "0.0074"),
    (0.123456, "0.1235"), (1234.5678, "1,235"), (-0.25, "-0.25"), (1.5e-6, "1.5e-06"), (True, "yes"),
])
def test_format_number(value, text):
    assert format_number(value) == text


def test_format_ci_and_threshold():
    assert format_ci([0.8, 0.82]) == "[0.80, 0.82]"
    assert format_ci([0.75, 0.77]) == "[0.75, 0.77]"
    assert format_ci([0.0003129, 0.0158745]) == "[0.00031, 0.01587]"  # 4 digits on the larger end
    assert format_ci([0.9732, 0.9981]) == "[0.9732, 0.9981]"
    assert format_ci([0.958, 0.99999]) == "[0.958, 1.000]"  # the ends differ, so they print differently
    assert format_ci([3, 7]) == "[3, 7]"
    assert format_ci([1200, 3000]) == "[1,200, 3,000]"
    assert format_ci([None, 0.5]) == "[—, 0.5]"
    assert format_ci(None) == "—"
    assert format_threshold({"min": 0.75}) == "≥ 0.75"
    assert format_threshold({"max": 0.1}) == "≤ 0.1"
    assert format_threshold({"min": 0.8, "max": 1.25}) == "≥ 0.8 and ≤ 1.25"
    assert format_threshold({}) == "—"
