"""report.html in a real browser: it loads with no console error and requests nothing.

Runs Debian's Chromium headless through selenium and chromedriver; skipped with the reason
where they are absent (.ci/run installs them, so CI runs it).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from auditkit.render.html import render_html
from results_factory import check, finding, metric, results

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="Chromium and chromedriver are not installed (Debian: apt-get install chromium chromium-driver)")


@pytest.fixture(scope="module")
def browser() -> Any:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the dev extra has it)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1600,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    yield driver
    driver.quit()


def _report(tmp_path: Path) -> Path:
    hostile = '<img src="https://attacker.example/x.png" onerror="alert(1)">'
    audit = results([
        check("perf", "performance", {"roc_auc": metric(0.7, (0.68, 0.72), n=500)},
              [finding("roc_auc", 0.7, "fail", min=0.75)], status="fail"),
        check(f"data {hostile}", "data_integrity", {"duplicate_rows": metric(3.0)}, status="info"),
    ])
    audit["report"] = {"title": f"Audit {hostile}", "classification": hostile, "intended_use": hostile,
                       "signoff": {"prepared": {"name": hostile, "role": "analyst", "date": "2026-12-01"}}}
    path = tmp_path / "report.html"
    path.write_text(render_html(audit), encoding="utf-8")
    return path


def test_report_loads_in_chromium_without_console_errors_or_requests(browser: Any, tmp_path: Path) -> None:
    path = _report(tmp_path)
    browser.get(path.as_uri())
    assert "Executive summary" in browser.page_source
    console = [entry for entry in browser.get_log("browser") if entry.get("level") in ("SEVERE", "ERROR")]
    assert console == []
    requested = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            requested.append(message["params"]["request"]["url"])
    leaving = [url for url in requested if not url.startswith(("file:", "data:"))]
    assert leaving == []
    assert requested and all(url.startswith(("file:", "data:")) for url in requested)


def test_side_navigation_stays_in_view_when_the_reader_scrolls(browser: Any, tmp_path: Path) -> None:
    browser.get(_report(tmp_path).as_uri())
    nav = browser.find_element("css selector", "nav.toc")
    before = nav.location_once_scrolled_into_view  # noqa: F841 - scrolls the page to the top
    browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")
    rect = browser.execute_script("return arguments[0].getBoundingClientRect().top", nav)
    assert rect == 0  # fixed at the top of the window on a wide screen
    links = [a.get_attribute("href") for a in nav.find_elements("css selector", "a")]
    assert any(link.endswith("#limitations") for link in links)
    assert any(link.endswith("#signoff") for link in links)
