"""The static site: built from verified results, every string escaped, and (in a real
headless Chromium driven by selenium) sortable, filterable, linked, script-free.

The browser tests need Debian's ``chromium`` and ``chromium-driver`` (``.ci/run``
installs them). Outside CI they are skipped when the browser is missing; under
``CI=true`` a missing browser fails them. Screenshots go to ``$MER_BENCH_SCREENSHOTS``
(default: the test's temporary folder) and their paths are printed.
"""

import json
import os
import shutil
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mer_bench.report.leaderboard import collect
from mer_bench.report.site import build_site, esc
from mer_bench.runner import RunOptions, run

EVIL = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">|\n### x'
LINK = "javascript:window.pwned=3"


@pytest.fixture(scope="module")
def site(tmp_path_factory, shared_cache):
    """A site of three settings: flow-svm and majority on loso, a robustness point, a
    holdout row, and one flow-svm copy whose config value and device hold markup (a
    method name with markup is refused by the schema: names are of a safe alphabet)."""
    out = tmp_path_factory.mktemp("site-results")
    common = dict(preset="smoke", out_dir=out, cache_dir=shared_cache, progress=False)
    for method in ("flow-svm", "majority"):
        run(RunOptions(method=method, protocol="loso", **common))
    run(RunOptions(method="flow-svm", protocol="holdout", protocol_params={"repeats": 2}, **common))
    from mer_bench.features.corruptions import Corruption
    run(RunOptions(method="flow-svm", protocol="loso", corruption=Corruption("mask", 0.3), **common))
    [holdout] = out.glob("flow-svm__holdout__*.json")
    evil = json.loads(holdout.read_text())
    evil["method"]["config"]["C"] = EVIL
    evil["timing"]["device"] = LINK
    evil["run_id"] = "evil-copy"
    (out / "evil.json").write_text(json.dumps(evil))
    root = tmp_path_factory.mktemp("site")
    build_site(collect(out, skip_invalid=True), root)
    return root


def test_the_site_has_an_index_a_robustness_page_and_a_page_per_result(site):
    index = (site / "index.html").read_text()
    assert index.count('<section class="setting"') >= 2
    pages = sorted(p.name for p in (site / "results").glob("*.html"))
    assert len(pages) == 5 and "evil-copy.html" in pages
    assert (site / "plots" / "robustness.png").exists()
    assert (site / "assets" / "site.js").exists() and (site / "assets" / "site.css").exists()
    page = next(p for p in (site / "results").glob("flow-svm__loso__*.html")
                if "mask" not in p.name).read_text()
    for part in ("mer-bench run --method flow-svm --protocol loso", "mer-bench reproduce",
                 "Confusion matrix", "Per subject", "Per class", "Environment",
                 "Against the table"):
        assert part in page
    assert "http://" not in index and "https://" not in index  # no CDN, no network


def test_every_string_from_a_result_is_escaped(site):
    for page in [site / "index.html", site / "results" / "evil-copy.html"]:
        text = page.read_text()
        assert "<script>window.pwned" not in text and "<img src=x" not in text
        assert esc("<script>window.pwned=1</script>") in text
        assert f'href="{LINK}' not in text and "href=\"javascript:" not in text


# --- in a real browser ------------------------------------------------------------------

class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _chromium():
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    if os.environ.get("CI") == "true":
        pytest.fail("CI must run the browser tests: install Debian's chromium and "
                    "chromium-driver (.ci/run does)")
    pytest.skip("no chromium/chromedriver here (apt-get install chromium chromium-driver)")


@pytest.fixture(scope="module")
def browser(site):
    binary, driver_path = _chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--window-size=1400,1800"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.base = f"http://127.0.0.1:{server.server_address[1]}/"
    yield driver
    driver.quit()
    server.shutdown()


def _screenshot(driver, name: str, tmp_path: Path) -> Path:
    folder = Path(os.environ.get("MER_BENCH_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def _loso_section(driver):
    from selenium.webdriver.common.by import By
    return next(s for s in driver.find_elements(By.CSS_SELECTOR, "section.setting")
                if s.get_attribute("data-protocol") == "loso"
                and s.get_attribute("data-dataset") == "synth-casme2")


def _methods(section):
    from selenium.webdriver.common.by import By
    return [r.get_attribute("data-method") for r in section.find_elements(By.CSS_SELECTOR, "tbody tr")
            if r.is_displayed()]


def test_the_index_loads_without_console_errors(browser, tmp_path):
    browser.get(browser.base + "index.html")
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    assert "mer-bench leaderboard" in browser.title
    _screenshot(browser, "index", tmp_path)


def test_clicking_a_header_reorders_the_rows(browser):
    from selenium.webdriver.common.by import By
    browser.get(browser.base + "index.html")
    section = _loso_section(browser)
    before = _methods(section)
    assert before == ["flow-svm", "majority"]  # by UF1, descending
    uf1 = section.find_elements(By.CSS_SELECTOR, "thead th")[2]
    uf1.click()                                   # descending: same order
    assert _methods(section) == ["flow-svm", "majority"]
    uf1.click()                                   # ascending
    assert _methods(section) == ["majority", "flow-svm"]
    assert uf1.get_attribute("aria-sort") == "ascending"


def test_filters_and_search_hide_rows_and_tables(browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    browser.get(browser.base + "index.html")
    Select(browser.find_element(By.ID, "filter-protocol")).select_by_value("holdout")
    shown = [s.get_attribute("data-protocol") for s in
             browser.find_elements(By.CSS_SELECTOR, "section.setting") if s.is_displayed()]
    assert shown and set(shown) == {"holdout"}
    Select(browser.find_element(By.ID, "filter-protocol")).select_by_value("")
    browser.find_element(By.ID, "search").send_keys("majority")
    section = _loso_section(browser)
    assert _methods(section) == ["majority"]


def test_a_row_opens_its_result_page(browser):
    from selenium.webdriver.common.by import By
    browser.get(browser.base + "index.html")
    _loso_section(browser).find_element(By.CSS_SELECTOR, "tbody tr a").click()
    assert "/results/flow-svm__loso__" in browser.current_url
    assert "mer-bench run --method flow-svm" in browser.find_element(By.TAG_NAME, "pre").text


def test_markup_in_a_method_name_does_not_execute(browser, tmp_path):
    from selenium.webdriver.common.by import By
    for page in ("index.html", "results/evil-copy.html"):
        browser.get(browser.base + page)
        assert browser.execute_script("return window.pwned === undefined")
        assert "<script>window.pwned=1</script>" in browser.find_element(By.TAG_NAME, "body").text
    _screenshot(browser, "escaped-result-page", tmp_path)


def test_the_robustness_page_shows_one_figure(browser, tmp_path):
    from selenium.webdriver.common.by import By
    browser.get(browser.base + "robustness.html")
    figures = browser.find_elements(By.CSS_SELECTOR, "img.figure")
    assert len(figures) == 1
    assert browser.execute_script("return arguments[0].naturalWidth", figures[0]) > 0
    _screenshot(browser, "robustness", tmp_path)
