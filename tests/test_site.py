"""The static site: built from verified results, every string escaped, and (in a real
headless Chromium driven by selenium) sortable, filterable, linked, script-free.

The browser tests need Debian's ``chromium`` and ``chromium-driver`` (``.ci/run``
installs them). Outside CI they are skipped when the browser is missing; under
``CI=true`` a missing browser fails them. Screenshots go to ``$MER_BENCH_SCREENSHOTS``
(default: the test's temporary folder) and their paths are printed.
"""

import json
import os
import re
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
    run(RunOptions(method="flow-svm", protocol="loso", method_overrides={"C": 0.5}, **common))
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


@pytest.fixture(scope="module")
def site_results(site):
    """The verified results the site was built from (its published copies)."""
    from mer_bench.report.results import load_result
    return [(p, load_result(p)) for p in sorted((site / "data").glob("*.json"))]


def test_the_site_has_an_index_a_robustness_page_and_a_page_per_result(site):
    index = (site / "index.html").read_text()
    assert index.count('<section class="setting"') >= 2
    pages = sorted(p.name for p in (site / "results").glob("*.html"))
    assert len(pages) == 6 and "evil-copy.html" in pages
    assert (site / "plots" / "robustness.png").exists()
    assert (site / "assets" / "site.js").exists() and (site / "assets" / "site.css").exists()
    page = next(p for p in (site / "results").glob("flow-svm__loso__*.html")
                if "mask" not in p.name).read_text()
    for part in ("mer-bench run --method flow-svm --protocol loso", "mer-bench reproduce",
                 "Confusion matrix", "Per subject", "Per class", "Environment",
                 "Against the table", "adapter source (methods/flow_svm.py)",
                 "result file (JSON, per-sample predictions)"):
        assert part in page
    for text in (index, page):  # no CDN, no network: nothing is loaded from elsewhere
        assert not re.search(r'(src|href)="(https?:)?//[^"]*\.(js|css|png|svg|woff2?)"', text)
        assert 'src="http' not in text
    # every result file is published beside the site, byte for byte, with the adapters' code
    for path in (site / "data").glob("*.json"):
        assert json.loads(path.read_text())["predictions"]
    assert len(list((site / "data").glob("*.json"))) == 6
    assert (site / "code" / "flow_svm.py.txt").read_text().startswith('"""')
    assert (site / "submit.html").exists() and 'href="submit.html"' in index


def test_reported_rows_are_apart_with_their_own_metric_and_paper_link(site):
    index = (site / "index.html").read_text().split('<footer id="legend">')[0]
    verified, rest = index.split('<section id="reported"', 1)
    reported, synthetic = rest.split('<section id="synthetic"', 1)
    assert "(reported)" not in verified + synthetic
    lightmannet = next(row for row in reported.split("<tr")[1:]
                       if row.startswith(' class="reported" data-method="lightmannet"')
                       and "F1 (paper&#x27;s) 0.920" in row)  # its CDE row
    assert "UF1 0.920" not in reported  # never under another metric's name
    assert 'href="https://arxiv.org/abs/2404.12024"' in lightmannet
    cde = reported.split("MEGC2019 composite (cde")[1].split("</table>")[0]
    for source in ("SMIC-HS", "CASME II", "SAMM"):
        assert f"{source} UF1 / UAR" in cde
    assert "0.680 / 0.701" in cde  # STSTNet's SMIC-HS UF1 / UAR


def test_synthetic_tables_link_the_twin_note_and_say_one_seed_once(site):
    index = (site / "index.html").read_text()
    synthetic = index.split('<section id="synthetic"', 1)[1]
    tables = synthetic.count('<section class="setting"')
    assert tables >= 2 and synthetic.count('href="#synthetic">What a synthetic twin') == tables
    assert "no training spread" not in synthetic.split("<tbody>")[1].split("</tbody>")[0]


def test_identical_re_runs_collapse_into_one_row(site_results):
    from mer_bench.report.tables import collapse_identical
    [(path, result)] = [(p, r) for p, r in site_results if r["method"]["name"] == "majority"]
    copy = json.loads(json.dumps(result)) | {"run_id": "copy"}
    [row] = collapse_identical([(path, result), (path.with_name("z.json"), copy)])
    assert row.result is result and row.copies == [path.with_name("z.json")]
    changed = json.loads(json.dumps(copy))
    changed["predictions"][0]["y_pred"] = 1 - changed["predictions"][0]["y_pred"]
    assert len(collapse_identical([(path, result), (path.with_name("z.json"), changed)])) == 2
    three = json.loads(json.dumps(result)) | {"seeds": [0, 1, 2]}  # a seed-independent method
    three["predictions"] = [p | {"seed": s} for s in (0, 1, 2) for p in result["predictions"]]
    [row] = collapse_identical([(path, result), (path.with_name("a.json"), three)])
    assert row.result is three and row.copies == [path]  # the row of more seeds is kept


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
    driver.root = str(site)
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


def test_no_page_scrolls_sideways_on_a_phone(browser, tmp_path):
    page = next(p.name for p in (Path(browser.root) / "results").glob("flow-svm__loso__*.html"))
    try:
        browser.set_window_size(390, 844)
        for name in ("index.html", f"results/{page}", "robustness.html", "submit.html"):
            browser.get(browser.base + name)
            assert browser.execute_script("return window.innerWidth") == 390
            width = browser.execute_script("return document.scrollingElement.scrollWidth")
            assert width <= 390, (name, width)
            _screenshot(browser, f"phone-{name.split('/')[0].removesuffix('.html')}", tmp_path)
    finally:
        browser.set_window_size(1400, 900)
    browser.get(browser.base + "index.html")
    _screenshot(browser, "desktop-index", tmp_path)


def test_the_first_screen_names_the_three_kinds_of_rows(browser):
    from selenium.webdriver.common.by import By
    browser.get(browser.base + "index.html")
    kinds = browser.find_elements(By.CSS_SELECTOR, "ul.kinds li a")
    assert [k.get_attribute("href").rsplit("#", 1)[1] for k in kinds] == \
        ["verified-real", "reported", "synthetic"]
    assert all(k.is_displayed() and k.rect["y"] < 900 for k in kinds)  # above the fold
    text = browser.find_element(By.CSS_SELECTOR, "ul.kinds").text
    for words in ("Verified on real data", "Reported by papers", "Synthetic twins"):
        assert words in text
    reported = browser.find_element(By.CSS_SELECTOR, 'tr.reported[data-method="lightmannet"]')
    assert reported.find_element(By.TAG_NAME, "a").get_attribute("href").startswith("https://")


def test_a_deep_link_opens_its_table(browser):
    from selenium.webdriver.common.by import By
    browser.get(browser.base + "index.html")
    anchor = _loso_section(browser).get_attribute("id")
    assert anchor.startswith("t-loso-synth-casme2")
    browser.get(browser.base + "index.html#" + anchor)
    top, height, scrolled = browser.execute_script(
        "return [document.getElementById(arguments[0]).getBoundingClientRect().top, "
        "window.innerHeight, window.scrollY]", anchor)
    assert -2 <= top < height / 2 and scrolled > 0  # scrolled to it, its heading in view
    assert browser.find_element(By.ID, anchor).is_displayed()


def test_a_url_restores_the_filters_and_an_empty_result_says_so(browser):
    from selenium.webdriver.common.by import By
    browser.get(browser.base + "index.html?protocol=holdout")
    assert browser.find_element(By.ID, "filter-protocol").get_attribute("value") == "holdout"
    shown = [s.get_attribute("data-protocol") for s in
             browser.find_elements(By.CSS_SELECTOR, "section.setting[data-protocol]")
             if s.is_displayed()]
    assert shown and set(shown) == {"holdout"}
    assert not browser.find_element(By.ID, "no-match").is_displayed()
    browser.get(browser.base + "index.html")
    browser.find_element(By.ID, "search").send_keys("no-such-method")
    assert browser.find_element(By.ID, "no-match").is_displayed()
    assert "q=no-such-method" in browser.current_url  # the search is in the URL too
    browser.get(browser.base + "index.html?q=c%3D0.5")  # the whole row: its config
    assert _methods(_loso_section(browser)) == ["flow-svm"]


def test_vs_best_sorts_by_number_and_the_confusion_matrix_does_not_sort(browser):
    from selenium.webdriver.common.by import By
    browser.get(browser.base + "index.html")
    section = _loso_section(browser)
    header = section.find_elements(By.CSS_SELECTOR, "thead th")[-1]
    assert header.text.startswith("vs best")
    header.click()
    header.click()  # ascending: the largest loss first, the best row last
    cells = [r.find_elements(By.TAG_NAME, "td")[-1] for r in
             section.find_elements(By.CSS_SELECTOR, "tbody tr")]
    values = [float(c.get_attribute("data-value")) for c in cells]
    assert values == sorted(values) and values[-1] == 0.0 and cells[-1].text == "best"
    page = next(p.name for p in (Path(browser.root) / "results").glob("flow-svm__loso__*.html"))
    browser.get(browser.base + f"results/{page}")
    matrix = browser.find_element(By.CSS_SELECTOR, "table.matrix")
    before = [r.text for r in matrix.find_elements(By.CSS_SELECTOR, "tbody tr")]
    matrix.find_elements(By.CSS_SELECTOR, "thead th")[1].click()
    assert [r.text for r in matrix.find_elements(By.CSS_SELECTOR, "tbody tr")] == before


def test_clicking_a_header_reorders_the_rows(browser):
    from selenium.webdriver.common.by import By
    browser.get(browser.base + "index.html")
    section = _loso_section(browser)
    before = _methods(section)
    assert before == ["flow-svm", "flow-svm", "majority"]  # by UF1, descending
    uf1 = section.find_elements(By.CSS_SELECTOR, "thead th")[2]
    uf1.click()                                   # descending: same order
    assert _methods(section) == before
    uf1.click()                                   # ascending
    assert _methods(section) == before[::-1]
    assert uf1.get_attribute("aria-sort") == "ascending"


def test_filters_and_search_hide_rows_and_tables(browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    browser.get(browser.base + "index.html")
    Select(browser.find_element(By.ID, "filter-protocol")).select_by_value("holdout")
    shown = [s.get_attribute("data-protocol") for s in
             browser.find_elements(By.CSS_SELECTOR, "section.setting[data-protocol]")
             if s.is_displayed()]
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
    rows = browser.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert rows and all(r.find_element(By.TAG_NAME, "a").get_attribute("href").endswith(".html")
                        and "synthetic" in r.text for r in rows)
    _screenshot(browser, "robustness", tmp_path)
