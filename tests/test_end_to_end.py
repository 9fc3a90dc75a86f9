"""The demo audit from the command line, as a user and a CI job see it."""
from __future__ import annotations

import json
import re
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from support import ROOT

from auditkit.results.io import validate_results


@pytest.fixture(scope="module")
def demo(samples, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("demo")
    completed = subprocess.run(
        [sys.executable, "-m", "auditkit", "run", str(ROOT / "policies" / "credit_scoring.yaml"), "--out", str(out_dir)],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "80"}, cwd=ROOT, timeout=600)
    return completed, out_dir


@pytest.mark.slow
def test_demo_exits_1_with_the_planted_failures_in_the_terminal(demo):
    completed, _ = demo
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert "Traceback" not in completed.stdout + completed.stderr
    out = completed.stdout
    assert "selection_rate_ratio[race] = 0.74" in out  # the injected disparity (sample_models/README.md)
    assert "duplicate_rows = 150" in out  # the planted double import
    assert "audit status: FAIL" in out
    # the tables fit an 80-column terminal; off a terminal, prose lines are left unwrapped
    table_lines = [line for line in out.splitlines() if line[:1] in "┏┃┡│└"]
    assert table_lines and max(len(line) for line in table_lines) <= 80


@pytest.mark.slow
def test_demo_writes_every_report_and_results_validate_against_the_schema(demo):
    _, out_dir = demo
    names = {p.name for p in out_dir.iterdir()}
    assert {"results.json", "report.html", "report.pdf", "junit.xml", "summary.md"} <= names
    assert not [n for n in names if n.startswith(".")]  # no temporary file left behind
    results = json.loads((out_dir / "results.json").read_text())
    validate_results(results)
    by_id = {c["id"]: c for c in results["checks"]}
    assert by_id["approval-parity"]["status"] == "fail"
    assert by_id["data-quality"]["status"] == "fail"
    assert by_id["discrimination"]["status"] == "pass"
    assert by_id["attribute-flips"]["status"] == "skipped"
    html = (out_dir / "report.html").read_text()
    # in the policy's words (report.subjects, model.decision_names)
    assert "Applicants in race group &#39;Black&#39; were approved at 0.74 times the rate" in html
    assert "duplicate_rows" in html
    assert (out_dir / "report.pdf").read_bytes().startswith(b"%PDF")
    suite = ET.parse(out_dir / "junit.xml").getroot().find("testsuite")
    failed = sum(c["status"] == "fail" for c in results["checks"])
    assert failed >= 3  # the planted fairness, proxy and data-quality failures
    assert suite is not None and int(suite.get("failures")) == failed
    assert int(suite.get("tests")) == len(results["checks"])
    assert "FAIL" in (out_dir / "summary.md").read_text().upper()



@pytest.mark.slow
def test_demo_report_has_a_case_file_per_explained_applicant(demo):
    _, out_dir = demo
    results = json.loads((out_dir / "results.json").read_text())
    by_id = {c["id"]: c for c in results["checks"]}
    assert by_id["declined-recourse"]["status"] == "pass"  # every declined applicant has a verified recourse
    assert by_id["recourse-burden"]["status"] == "warn"  # recourse costs some race group more
    html = (out_dir / "report.html").read_text()
    for row in (6, 21, 74):
        case = html[html.index(f'id="case-{row}"'):]
        case = case[: case.find("</article>")]
        assert "Principal reasons for the decision" in case and "What would change the decision" in case
        assert "A rule that holds around this case" in case


@pytest.mark.slow
def test_report_command_re_renders_the_same_html_without_running_checks(demo, tmp_path, cli):
    _, out_dir = demo
    result = cli("report", out_dir / "results.json", "--format", "html,md", "--out", tmp_path)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert (tmp_path / "report.html").read_text() == (out_dir / "report.html").read_text()
    assert not (tmp_path / "results.json").exists()


@pytest.mark.slow
def test_demo_pdf_reads_back_with_every_check_its_figures_a_contents_page_and_metadata(demo):
    pypdf = pytest.importorskip("pypdf", reason="pypdf is not installed (the dev extra has it)")
    from auditkit.render.format import format_number

    _, out_dir = demo
    results = json.loads((out_dir / "results.json").read_text())
    reader = pypdf.PdfReader(str(out_dir / "report.pdf"))
    pages = [page.extract_text() for page in reader.pages]
    text = " ".join(" ".join(pages).split())
    contents = " ".join(" ".join(pages[1:3]).split())
    for part in ("Executive summary", "At a glance", "What was audited", "Checks", "Limitations and assumptions",
                 "Reproducibility", "Sign-off", "Case files"):
        assert part in contents
    for check in results["checks"]:
        assert f"{check['id']} ({check['status']})" in contents  # the contents list every check with its status
        for finding in check["findings"]:
            assert format_number(finding["value"]) in text  # each judged figure, as the report displays it
    metadata = reader.metadata
    assert metadata.title == results["report"]["title"]  # once, not "... audit report · audit report"
    assert metadata.author == "Example Bank (demo data)"
    assert "Confidential" in (metadata.get("/Keywords") or "")
    assert "Confidential" in pages[-1]  # the classification in every page's footer
    assert "Page 2 of" in pages[1]
    assert "Chief risk officer" in text and "Prepared by" in text  # the sign-off block


# ---------------------------------------------------------------------------- the demo's PDF read back (#14)

#: Pages of the demo's PDF at most: a guard against growth, not the goal. Issue #14 asks for 35;
#: 71 before; 47 with the front matter, the regulatory mapping (three regimes) and the limitations;
#: 37 with wide tables kept on portrait pages and a case file's figures printed there only;
#: 35 (issue #14's bound) with 15-16 mm page margins and 1.35 line spacing.
MAX_DEMO_PAGES = 35


@pytest.fixture(scope="module")
def demo_pdf(demo):
    pypdf = pytest.importorskip("pypdf", reason="pypdf reads the PDF back (the dev extra installs it)")
    _, out_dir = demo
    reader = pypdf.PdfReader(out_dir / "report.pdf")
    return [page.extract_text() for page in reader.pages]


@pytest.mark.slow
def test_demo_terminal_says_which_report_is_being_written_within_80_columns(demo):
    completed, _ = demo
    lines = [line for line in completed.stdout.splitlines() if line.startswith("writing ")]
    assert any(line.startswith("writing report.pdf … done (") and line.endswith(" s)") for line in lines), lines
    assert {line.split()[1] for line in lines} >= {"results.json", "report.html", "report.pdf"}
    assert max(len(line) for line in lines) <= 80


@pytest.mark.slow
def test_demo_pdf_is_short_and_every_check_is_in_it(demo, demo_pdf):
    _, out_dir = demo
    assert len(demo_pdf) <= MAX_DEMO_PAGES, len(demo_pdf)
    text = "\n".join(demo_pdf)
    results = json.loads((out_dir / "results.json").read_text())
    for check in results["checks"]:
        assert check["id"] in text, check["id"]
    # tables have human titles, never the internal "TABLE: DUPLICATE_ROWS" (a param "immutable:" is fine)
    assert not re.search(r"\bTABLE:\s*[A-Z_]+\b", text), re.search(r"\bTABLE:\s*[A-Z_]+\b", text)


@pytest.mark.slow
def test_demo_long_tables_are_cut_in_the_pdf_and_whole_in_the_html(demo, demo_pdf):
    _, out_dir = demo
    results = json.loads((out_dir / "results.json").read_text())
    burden = next(i for i, c in enumerate(results["checks"]) if c["id"] == "recourse-burden")
    found = [r for r in results["checks"][burden]["tables"]["counterfactuals"] if r["found"]]
    assert len(found) > 100
    from auditkit.render.html import PRINT_ROW_LIMIT

    text = " ".join(" ".join(demo_pdf).split())
    assert f"First {PRINT_ROW_LIMIT} of {len(found):,} rows; all rows in results.json" in text
    html = (out_dir / "report.html").read_text()
    section = html[html.index(f'id="check-{burden + 1}"'):]
    section = section[:section.index("</section>")]
    # every counterfactual is in the HTML (the ones past those printed under a <details>)
    for record in found:
        assert f'>{record["row"]}</td>' in section, record["row"]
    assert "<details" in section


@pytest.mark.slow
def test_demo_charts_are_never_empty_or_degenerate(demo):
    from auditkit.charts.svg import draw_plot

    _, out_dir = demo
    results = json.loads((out_dir / "results.json").read_text())
    html = (out_dir / "report.html").read_text()
    for check in results["checks"]:
        for plot in check["plots"]:
            chart = draw_plot(plot)
            if not chart.svg:  # said in words, never drawn as an empty frame
                assert chart.reason.startswith("nothing to draw"), (check["id"], plot["title"], chart.reason)
                assert f"Nothing to draw: {chart.reason[17:]}" in html
    # the group-fairness rates: one chart per rate with every attribute, not one per rate and attribute
    fairness = next(c for c in results["checks"] if c["type"] == "group_fairness")
    assert len(fairness["plots"]) == 4
    assert {s for p in fairness["plots"] for s in p["data"]["sections"]} == {"sex", "race", "sex & race"}


@pytest.mark.slow
def test_demo_changes_are_in_each_feature_resolution(demo):
    import pandas as pd

    _, out_dir = demo
    results = json.loads((out_dir / "results.json").read_text())
    data = pd.read_csv(ROOT / "sample_models" / "credit_test.csv")
    integer_valued = {c for c in data.columns
                      if pd.api.types.is_numeric_dtype(data[c]) and (data[c].dropna() % 1 == 0).all()}
    assert {"income", "n_late_payments", "credit_history_years"} <= integer_valued
    tables = [(c["id"], c["tables"].get(name, [])) for c in results["checks"]
              for name in ("counterfactuals", "examples") if c["type"] in ("counterfactuals", "adversarial")]
    seen = 0
    for check_id, records in tables:
        for record in records:
            for feature, (before, after) in (record.get("changes") or {}).items():
                assert before != after, (check_id, record["row"], feature)  # only features that changed
                if feature in integer_valued:
                    assert isinstance(after, int) and isinstance(before, int), (check_id, feature, before, after)
                    seen += 1
    assert seen > 10
