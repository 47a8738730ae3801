"""The site: it builds with zero warnings, its pages are light and their links resolve, and it works in a
real browser (Debian's headless Chromium driven by Selenium)."""
from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
SCREENSHOTS = ROOT / "_build" / "screenshots"
MAX_PAGE_BYTES = 1_000_000  # HTML + images of one page


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """Build the book once, warnings as errors, into a temporary folder; return its html folder."""
    out = tmp_path_factory.mktemp("site")
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    command = [str(jupyter_book if jupyter_book.exists() else shutil.which("jupyter-book")),
               "build", str(ROOT), "--path-output", str(out), "-W", "-n", "--keep-going"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=900)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-5000:]
    assert "WARNING" not in log, log[-5000:]
    return out / "_build" / "html"


def pages(site: Path) -> list[Path]:
    """The book's HTML pages (not the theme's template fragments under _static)."""
    return sorted(p for p in site.rglob("*.html") if "_static" not in p.relative_to(site).parts)


def test_book_builds_with_every_page(site):
    for page in ("index.html", "book/intro.html", "book/how-to-use.html", "book/classroom.html",
                 "book/references.html"):
        assert (site / page).is_file(), page
    for chapter in CHAPTERS:
        html = (site / "chapters" / f"{chapter.stem}.html").read_text()
        assert "<img" in html, f"{chapter.name}: no figure rendered"


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag in ("img", "script") and attrs.get("src"):
            (self.images if tag == "img" else self.links).append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.links.append(attrs["href"])


def _local(url: str) -> bool:
    parts = urlsplit(url)
    return not parts.scheme and not parts.netloc and bool(parts.path)


def test_pages_are_light_and_internal_links_resolve(site):
    broken, heavy = [], []
    for page in pages(site):
        parser = _Links()
        parser.feed(page.read_text(errors="replace"))
        size = page.stat().st_size
        for src in parser.images:
            if _local(src):
                target = (page.parent / unquote(urlsplit(src).path)).resolve()
                size += target.stat().st_size if target.is_file() else 0
        if size > MAX_PAGE_BYTES:
            heavy.append(f"{page.relative_to(site)}: {size:,} bytes")
        for url in parser.links + parser.images:
            if _local(url):
                target = (page.parent / unquote(urlsplit(url).path)).resolve()
                if not target.exists():
                    broken.append(f"{page.relative_to(site)} -> {url}")
    assert not heavy, heavy
    assert not broken, broken[:20]


# --- in a real browser ----------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        message = "Debian's chromium and chromium-driver are needed (make setup installs them)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 "--disable-sync", "--window-size=1280,1000",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with webdriver.Chrome(service=Service(driver), options=options) as chrome:
        yield chrome


def _errors(chrome) -> list[str]:
    """Console errors, leaving out external resources: this machine has no internet (the deployed
    site loads MathJax from its CDN, which fails here and only here)."""
    messages = [entry["message"] for entry in chrome.get_log("browser") if entry["level"] == "SEVERE"]
    return [m for m in messages if not re.match(r"https?://(?!127\.0\.0\.1)", m)]


def _wait(condition, timeout: float = 10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    return condition()


def test_every_page_loads_without_errors_and_with_its_images(site, server, browser):
    problems = []
    for page in pages(site):
        url = f"{server}/{page.relative_to(site).as_posix()}"
        browser.get(url)
        _wait(lambda: browser.execute_script("return document.readyState") == "complete")
        problems += [f"{page.name}: console: {e}" for e in _errors(browser)]
        broken = browser.execute_script(
            "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
        problems += [f"{page.name}: image did not load: {src}" for src in broken]
    assert not problems, problems


def test_sidebar_lists_every_chapter_and_landing_shows_cards_and_results(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(f"{server}/index.html")
    _wait(lambda: browser.find_elements(By.CSS_SELECTOR, ".cnnbook-card"))
    sidebar = browser.find_element(By.CSS_SELECTOR, ".bd-sidebar-primary").text
    for chapter in CHAPTERS:
        title = re.search(r"^#\s+(.+)$", nbformat.read(chapter, as_version=4).cells[0].source, re.M).group(1)
        assert title.split(":")[0] in sidebar, f"{chapter.name} ({title}) is not in the sidebar"
    assert len(browser.find_elements(By.CSS_SELECTOR, ".cnnbook-card")) == len(CHAPTERS)
    assert browser.find_elements(By.CSS_SELECTOR, ".cnnbook-results td")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.set_window_size(1280, 1700)
    browser.save_screenshot(str(SCREENSHOTS / "landing.png"))


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_chapter_has_colab_link_and_folded_solutions(server, browser, chapter):
    from selenium.webdriver.common.by import By

    browser.get(f"{server}/chapters/{chapter.stem}.html")
    links = [a.get_attribute("href") or "" for a in browser.find_elements(By.TAG_NAME, "a")]
    colab = f"https://colab.research.google.com/github/cnnbook/cnnbook/blob/main/chapters/{chapter.name}"
    assert colab in links, f"no Colab link of the form {colab}"
    details = browser.find_elements(By.TAG_NAME, "details")
    assert details, "no folded solutions"
    solution = details[-1]
    body = solution.find_elements(By.XPATH, "./*[not(self::summary)]")
    assert body and not any(e.is_displayed() for e in body), "the solution is visible before a click"
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", solution)
    solution.find_element(By.TAG_NAME, "summary").click()
    assert _wait(lambda: any(e.is_displayed() for e in body)), "the solution stays hidden after a click"
    if chapter == CHAPTERS[-1]:
        browser.set_window_size(1280, 1700)
        browser.execute_script("window.scrollTo(0, 0)")
        browser.save_screenshot(str(SCREENSHOTS / "chapter.png"))


def test_search_finds_residual(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(f"{server}/search.html?q=residual")
    found = _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#search-results li"), timeout=15)
    assert found, "searching for 'residual' found nothing"
