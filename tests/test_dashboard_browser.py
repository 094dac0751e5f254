"""The dashboard in a real headless browser (issue 13): Debian's chromium driven by Playwright, against `make run`'s
server (gunicorn and a job runner) on a loopback port.

Load `/`, fill the generated form, run a job and watch its progress bar finish, sort the table, open a crypto and
see its charts with their markers, read an error as the API's problem, reopen a past batch, and the same page on a
narrow window. Screenshots go to test-artifacts/browser/ (TEST_ARTIFACTS overrides the folder): they are the
artifacts a reviewer looks at, not temporary files.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.served import ROOT, request_json, running_serve

ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS") or ROOT / "test-artifacts") / "browser"
# as the machine notes say: without the background-networking flags chromium keeps dialling out of a closed network
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]
TIMEOUT_MS = 30_000
pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(300)]


def _chromium() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("the browser test needs Debian's chromium: `make test` installs it (apt-get install chromium); "
                    "or set CHROMIUM to a chromium binary")
    return path


@pytest.fixture
def browser_page(db_url: str, demo_db) -> Iterator[tuple[str, object, list[str]]]:
    """(base URL, a page at 1280x800, the console errors seen) with the server and the browser stopped after."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with running_serve(db_url) as (base, _server, _log), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(TIMEOUT_MS)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
            page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
            page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            yield base, page, errors
        finally:
            browser.close()


def _shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _sorted_desc(values: list) -> bool:
    present = [v for v in values if v is not None]
    return present == sorted(present, reverse=True) and values[len(present):] == [None] * (len(values) - len(present))


def test_the_dashboard_runs_a_job_sorts_opens_a_chart_and_shows_problems(browser_page) -> None:
    base, page, errors = browser_page
    page.goto(base + "/")
    # the form comes from GET /api/strategies: the RSI strategy's own parameters, defaults and bounds
    page.wait_for_selector("#strategy option[value='1']", state="attached")
    page.select_option("#strategy", "1")
    rsi = page.locator("#param-rsi_period")
    assert rsi.input_value() == "14" and rsi.get_attribute("min") == "2"
    assert page.locator("label[for='param-rsi_period']").count() == 1
    assert page.locator("#param-execution").evaluate("e => [...e.options].map(o => o.value)") == ["close",
                                                                                                    "next_open"]
    rsi.fill("9")
    _shot(page, "1-form")

    # run it as a job and watch the progress bar to its end
    page.evaluate("""() => { window.__states = []; const s = document.querySelector('#job-status');
        new MutationObserver(() => window.__states.push(s.dataset.state)).observe(s, {attributes: true}); }""")
    page.click("#run")
    page.wait_for_selector("#job-status[data-state='succeeded']")
    states = page.evaluate("window.__states")
    assert states[-1] == "succeeded" and {"queued", "running"} & set(states), states
    bar = page.locator("#job-progress")
    assert bar.get_attribute("value") == bar.get_attribute("max") == "24"
    _, jobs = request_json(base + "/api/jobs?limit=1")
    job = jobs["jobs"][0]
    assert job["state"] == "succeeded" and job["request"]["parameters"]["rsi_period"] == 9
    _, batch = request_json(base + job["result_url"])
    by_symbol = {r["symbol"]: r for r in batch["results"]}

    # the ranked table: the stored batch's rows in its order, then sorted by a metric both ways
    page.wait_for_selector("#results tbody tr[data-symbol]")
    shown = lambda: page.eval_on_selector_all("#results tbody tr[data-symbol]", "rs => rs.map(r => r.dataset.symbol)")
    assert shown() == [r["symbol"] for r in batch["results"]]
    _shot(page, "2-results")
    sharpe = page.locator("#results th button[data-sort='sharpe_ratio']")
    sharpe.click()
    header = page.locator("#results th:has(button[data-sort='sharpe_ratio'])")
    assert header.get_attribute("aria-sort") == "descending"
    assert _sorted_desc([by_symbol[s]["sharpe_ratio"] for s in shown()])
    sharpe.click()
    assert header.get_attribute("aria-sort") == "ascending"
    ascending = [by_symbol[s]["sharpe_ratio"] for s in shown()]
    present = [v for v in ascending if v is not None]
    assert present == sorted(present) and ascending[len(present):] == [None] * (len(ascending) - len(present))

    # open the best crypto: candles with a marker per entry and exit, equity vs buy and hold, drawdown
    best = batch["results"][0]["symbol"]
    page.click(f"#results tr[data-symbol='{best}'] button.open-crypto")
    page.wait_for_selector("#price-chart[data-ready='true']")
    page.wait_for_selector("#equity-chart[data-ready='true']")
    page.wait_for_selector("#drawdown-chart[data-ready='true']")
    assert best in page.locator("#detail-title").inner_text()
    _, single = request_json(base + "/api/crypto/backtest", {
        "strategy_id": 1, "parameters": batch["summary"]["parameters"], "symbol": best, "store": False})
    trades = single["result"]["trades"]
    markers = sum(1 + (t["exit_time"] is not None) for t in trades)
    assert markers > 0 and page.locator("#price-chart").get_attribute("data-markers") == str(markers)
    for chart in ("#price-chart", "#equity-chart", "#drawdown-chart"):
        assert page.locator(f"{chart} canvas").count() > 0
    assert page.locator("#attribution").is_visible() and "TradingView" in page.locator("#attribution").inner_text()
    logo = page.locator("#price-chart a[href*='tradingview']")  # the chart's own attribution logo, named
    assert logo.count() == 1 and logo.get_attribute("aria-label")
    page.locator("#detail").scroll_into_view_if_needed()
    _shot(page, "3-chart")

    # a bad parameter: the API's problem as text, the field marked, nothing raw
    assert errors == [], "\n".join(errors)
    page.locator("#param-rsi_period").fill("1")
    page.click("#run")
    error = page.locator("#error")
    error.wait_for(state="visible")
    text = error.inner_text()
    assert "rsi_period" in text and "must be at least 2" in text and "{" not in text and "[object" not in text
    assert page.locator("#param-rsi_period").get_attribute("aria-invalid") == "true"
    covered = page.evaluate("""() => { const r = document.querySelector('#param-rsi_period').getBoundingClientRect();
        const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
        return hit === null ? 'nothing' : (hit.id === 'param-rsi_period' ? '' : hit.outerHTML.slice(0, 80)); }""")
    assert covered == "", f"the invalid field is hidden under {covered}"  # in view, not under the run bar
    _shot(page, "4-problem")
    assert [e for e in errors if not e.startswith("console:")] == [f"400 {base}/api/jobs"]  # that one, no other
    errors.clear()

    # past batches: the job's batch is listed and reopens in the table
    page.reload()
    item = page.locator(f"#batches button[data-batch-id='{job['batch_id']}']")
    item.click()
    page.wait_for_selector(f"#results tbody tr[data-symbol='{best}']")
    assert shown() == [r["symbol"] for r in batch["results"]]

    # keyboard: the run button is reached with Tab from the strategy choice
    page.focus("#strategy")
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "run":
            break
    assert page.evaluate("document.activeElement.id") == "run"

    # a narrow window: one column, no sideways scroll of the page
    page.set_viewport_size({"width": 375, "height": 800})
    page.wait_for_function("() => document.documentElement.scrollWidth <= 375")  # once the layout has settled
    assert page.locator("#results").is_visible()
    _shot(page, "5-narrow")
    assert errors == [], "\n".join(errors)
