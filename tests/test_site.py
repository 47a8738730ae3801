"""The site: it builds with zero warnings, its pages are light and their links resolve, and it works in a
real browser (Debian's headless Chromium driven by Selenium) as a reader sees it, at desktop and phone
width, offline: tables render as tables, formulas as formulas, figures at a readable size, nothing wider
than the screen, no request to another host. Screenshots of every page go to ``_build/screenshots/``."""
from __future__ import annotations

import base64
import functools
import http.server
import json
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


OFFLINE = "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"  # every other host fails to resolve, as with no network


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
                 "--disable-sync", "--window-size=1366,900", f"--host-resolver-rules={OFFLINE}",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    with webdriver.Chrome(service=Service(driver), options=options) as chrome:
        chrome.set_script_timeout(30)
        yield chrome


def _errors(chrome) -> list[str]:
    """The console errors logged since the last call (offline, a page that needs another host logs one)."""
    return [entry["message"] for entry in chrome.get_log("browser") if entry["level"] == "SEVERE"]


def _foreign_requests(chrome) -> list[str]:
    """URLs requested since the last call from any host but the local test server."""
    urls = []
    for entry in chrome.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            parts = urlsplit(url)
            if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname not in ("127.0.0.1", "localhost"):
                urls.append(url)
    return urls


def _wait(condition, timeout: float = 10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    return condition()


# --- what a reader sees, at desktop and phone width, offline -------------------------------------

WIDTHS = {"desktop": (1366, 900, False), "phone": (390, 844, True)}  # width, height, mobile
DARK_PAGES = ("book/intro.html", "chapters/07_googlenet.html")  # also looked at in the theme's dark mode
MIN_FIGURE_SCALE = 0.6  # a figure (they all contain text) is shown at >= 60 % of its natural width
MAX_THUMBNAIL_SCALE = 2.5  # a thumbnail is served at most 2.5 times the width it is shown at (retina)
MAX_SCREENSHOT_HEIGHT = 24_000

# One pass over the page in the browser: everything the reader-facing checks need.
INSPECT = r"""
const article = document.querySelector("article.bd-article") || document.body;
const code = "pre, code, script, style, mjx-container, .MathJax, math, svg, textarea, .highlight";
const blocks = [];
for (const el of article.querySelectorAll("p, li, td, th, dt, dd, h1, h2, h3, h4, summary, div.math, span.math, .cell_output div")) {
  if (el.closest(code)) continue;
  if (el.matches(".cell_output div") && el.querySelector("p, li, td, div, pre, img")) continue;
  const clone = el.cloneNode(true);
  clone.querySelectorAll(code).forEach(e => e.remove());
  const text = clone.textContent.trim();
  if (text) blocks.push(text);
}
const width = arguments[0];  // the screen's width (a phone widens its layout to fit a too-wide page)
const wide = [];
if (document.documentElement.scrollWidth > width + 1) {
  for (const el of document.body.querySelectorAll("*")) {
    const r = el.getBoundingClientRect();
    if (r.right > width + 1 && r.width > 0) {
      let boxed = false;
      for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
        const o = getComputedStyle(p).overflowX;
        if (o === "auto" || o === "scroll" || o === "hidden") { boxed = true; break; }
      }
      if (!boxed) wide.push(el.tagName.toLowerCase() + (el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\s+/).join(".") : "") + ` (${Math.round(r.right)} px)`);
    }
  }
}
const images = Array.from(article.querySelectorAll("img")).map(img => {
  const r = img.getBoundingClientRect();
  let bg = "";
  for (let p = img; p; p = p.parentElement) { const c = getComputedStyle(p).backgroundColor; if (c && c !== "rgba(0, 0, 0, 0)" && c !== "transparent") { bg = c; break; } }
  return {src: img.getAttribute("src"), alt: img.getAttribute("alt") || "", natural: img.naturalWidth,
          shown: r.width, loaded: img.complete && img.naturalWidth > 0, thumb: img.classList.contains("cnnbook-thumb"),
          hidden: r.width === 0 || !!img.closest("details:not([open])"), background: bg};
});
const cards = Array.from(document.querySelectorAll(".cnnbook-card-body p:not(.cnnbook-when)")).map(p => p.textContent.trim());
const exercises = Array.from(document.querySelectorAll(".cnnbook-exercises tbody tr")).map(tr => {
  const last = tr.cells[tr.cells.length - 1];
  return {chapter: tr.querySelector("td a") ? tr.querySelector("td a").textContent.trim() : "",
          counts: last.firstChild ? last.firstChild.textContent.trim() : "",
          items: Array.from(tr.querySelectorAll("li")).map(li => li.textContent.trim())};
});
const results = document.querySelector(".cnnbook-results");
let hiddenColumns = [];
if (results) {
  const box = results.parentElement.getBoundingClientRect();
  hiddenColumns = Array.from(results.querySelectorAll("th")).filter(th => th.getBoundingClientRect().right > box.right + 1).map(th => th.textContent.trim());
}
// every table whose columns run past the right edge of its scrolling box (at desktop width a reader
// would have to find a scrollbar to see them): its first header cell and the hidden headers
const clippedTables = [];
for (const table of article.querySelectorAll("table")) {
  if (table.getBoundingClientRect().width === 0) continue;
  const box = (table.closest("div") || table.parentElement).getBoundingClientRect();
  const hidden = Array.from(table.querySelectorAll("th")).filter(th => th.getBoundingClientRect().right > box.right + 1);
  if (hidden.length) clippedTables.push(`${(table.querySelector("th") || table).textContent.trim().slice(0, 30)}...: `
                                        + hidden.map(th => th.textContent.trim()).join(", "));
}
// every code box whose text runs past its right edge (the reader scrolls sideways to read it): code cells,
// code in the prose, printed output; and every printed table (torchinfo's) that only fits by wrapping
const scrollingCode = [];
for (const pre of article.querySelectorAll("pre")) {
  if (pre.getBoundingClientRect().width === 0) continue;
  const line = pre.textContent.split("\n").reduce((a, b) => (b.length > a.length ? b : a), "");
  const where = pre.closest(".cell_input") ? "code cell" : pre.closest(".cell_output") ? "output" : "code block";
  if (pre.scrollWidth > pre.clientWidth + 1) {
    scrollingCode.push(`${where}, ${line.length} characters in a ${pre.clientWidth}px box: ${line.trim().slice(0, 50)}`);
  } else if (where === "output" && /^={20,}$/m.test(pre.textContent)) {
    const wrap = pre.style.whiteSpace;
    pre.style.whiteSpace = "pre";
    if (pre.scrollWidth > pre.clientWidth + 1) scrollingCode.push(`printed table wraps, ${line.length} characters: ${line.trim().slice(0, 50)}`);
    pre.style.whiteSpace = wrap;
  }
}
function luminance(rgb) {
  const m = rgb.match(/[\d.]+/g); if (!m) return 1;
  const [r, g, b] = m.slice(0, 3).map(v => { v = v / 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
function background(el) {
  for (let p = el; p; p = p.parentElement) { const c = getComputedStyle(p).backgroundColor; if (c && !c.startsWith("rgba(0, 0, 0, 0)") && c !== "transparent") return c; }
  return "rgb(255, 255, 255)";
}
const lowContrast = [];
for (const el of article.querySelectorAll("p, li, td, th, pre, .cnnbook-card-body")) {
  if (!el.textContent.trim() || el.getBoundingClientRect().width === 0) continue;
  const a = luminance(getComputedStyle(el).color), b = luminance(background(el));
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  if (ratio < 4.5) lowContrast.push(`${el.tagName.toLowerCase()} "${el.textContent.trim().slice(0, 40)}" (${ratio.toFixed(1)}:1)`);
}
return {width: width, scrollWidth: Math.max(document.documentElement.scrollWidth, window.innerWidth), wide: wide.slice(0, 5), blocks: blocks,
        images: images, cards: cards, exercises: exercises, hiddenColumns: hiddenColumns, clippedTables: clippedTables, scrollingCode: scrollingCode, lowContrast: lowContrast.slice(0, 5),
        theme: document.documentElement.dataset.theme || ""};
"""

WAIT_FOR_MATH = r"""
const done = arguments[arguments.length - 1];
if (!document.querySelector(".math")) { done("no math"); return; }
const start = Date.now();
(function poll() {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    MathJax.startup.promise.then(() => done("typeset"), () => done("failed"));
  } else if (Date.now() - start > 10000) { done("no renderer"); } else { setTimeout(poll, 100); }
})();
"""

RAW_TABLE = re.compile(r"(^|\n)\s*\|.*\|\s*($|\n)|\|\s*:?-{3,}:?\s*\|")
RAW_EMPHASIS = re.compile(r"(^|[^\w*\\])(\*{1,2})[^\s*](?:[^*\n]*?[^\s*])?\2(?![\w*])")
# MyST's "replacements" extension turns "(c)" into "©": exercise option (c) once read "© Because..."
REPLACED_SYMBOL = re.compile(r"[®™]|©(?! Copyright)")  # the theme's footer may say "© Copyright"
RAW_TEX = re.compile(r"\\[\[\(]|\$\$|\\(frac|left|right|text|begin|mathrm|mathbf|lfloor|rfloor|cdot|times|sum|sqrt)\b")
STOP_WORDS = {"a", "an", "the", "and", "or", "of", "to", "with", "that", "for", "in", "by", "on", "from", "as"}


def _slug(page: str) -> str:
    return page.removesuffix(".html").replace("/", "-")


# What a reader sees on opening a page, to hold each full-page screenshot against: the page's title and the
# sidebar's logo, where they lie wholly inside the first screen (on a phone the sidebar is folded away).
LANDMARKS = {"title": "article.bd-article h1", "sidebar logo": ".bd-sidebar-primary .navbar-brand"}
LANDMARK_BOXES = r"""
const boxes = {};
for (const [name, selector] of Object.entries(arguments[0])) {
  const el = document.querySelector(selector);
  if (!el) continue;
  const r = el.getBoundingClientRect();
  if (r.width >= 1 && r.height >= 1 && r.left >= 0 && r.top >= 0
      && r.right <= document.documentElement.clientWidth && r.bottom <= document.documentElement.clientHeight)
    boxes[name] = [Math.round(r.left), Math.round(r.top), Math.round(r.width), Math.round(r.height)];
}
return boxes;
"""


def _landmarks(chrome) -> dict[str, dict]:
    """The landmarks as the reader sees them, the page scrolled to the top at the view's screen size:
    {name: {"box": [x, y, width, height], "png": base64 PNG of that part of the screen}}."""
    chrome.execute_script("window.scrollTo(0, 0)")
    found = {}
    for name, (x, y, w, h) in chrome.execute_script(LANDMARK_BOXES, LANDMARKS).items():
        shot = chrome.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "clip": {"x": x, "y": y, "width": w, "height": h, "scale": 1}})
        found[name] = {"box": [x, y, w, h], "png": shot["data"]}
    return found


# Before the screen is made as tall as the page: the sticky and fixed boxes (the sidebars, the header) keep
# the height they have on the reader's screen (the theme sizes them from the screen's height: 100vh), so the
# sidebar scrolls inside itself as it does for the reader instead of showing every entry.
FREEZE_SCREEN_BOXES = r"""
window.cnnbookFrozen = [];
for (const el of document.body.querySelectorAll("*")) {
  const style = getComputedStyle(el);
  if (style.position !== "sticky" && style.position !== "fixed") continue;
  window.cnnbookFrozen.push([el, el.style.height, el.style.maxHeight]);
  el.style.setProperty("height", style.height, "important");
  el.style.setProperty("max-height", style.maxHeight, "important");
}
"""
UNFREEZE_SCREEN_BOXES = r"""
for (const [el, height, maxHeight] of window.cnnbookFrozen || []) { el.style.height = height; el.style.maxHeight = maxHeight; }
delete window.cnnbookFrozen;
"""
FINISH_TRANSITIONS = "document.getAnimations().forEach(a => { try { a.finish(); } catch (e) {} });"


def _screenshot(chrome, path: Path, size: str) -> None:
    """The whole page (up to MAX_SCREENSHOT_HEIGHT pixels) as a PNG, laid out as the reader sees it.

    Not Chrome's ``captureBeyondViewport``: to draw below the fold it resizes the page, which passes through
    a tiny window on the way (a resize event reports 1 x 1 px), so the theme's narrow-screen layout applies
    for a moment: the sidebar slides out (a 0.25 s margin transition) and back, and the shot caught it on the
    way. At desktop width pages came out shifted left by up to the sidebar's width and more (chapter 9's
    title read "...connections"), and, without the scrollbar, laid out 15 px wider than the reader's.
    Instead the screen is made as tall as the page, at the same width, one pixel short (so a desktop keeps
    the reader's scrollbar, hence the same layout width), with the sidebars and header held at the height
    they have on the reader's screen; any transition the resize starts is finished at once; the screen is
    captured as it is, then restored. Known difference: the contents box (right) highlights a section
    further down, as if the reader had scrolled there."""
    width, height, mobile = WIDTHS[size]
    page = chrome.execute_script("return Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)")
    metrics = {"width": width, "height": min(page - 1, MAX_SCREENSHOT_HEIGHT) if page > height else height,
               "deviceScaleFactor": 1, "mobile": mobile}
    chrome.execute_script("window.scrollTo(0, 0);" + FREEZE_SCREEN_BOXES)
    chrome.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    chrome.execute_script(FINISH_TRANSITIONS)
    shot = chrome.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
    chrome.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {**metrics, "height": height})
    chrome.execute_script(UNFREEZE_SCREEN_BOXES)
    path.write_bytes(base64.b64decode(shot["data"]))


def _visit(chrome, url: str, size: str, dark: bool = False) -> dict:
    width, height, mobile = WIDTHS[size]
    chrome.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})
    chrome.get(url)
    if dark:
        chrome.execute_script('localStorage.setItem("mode", "dark"); localStorage.setItem("theme", "dark");')
        chrome.refresh()
    _wait(lambda: chrome.execute_script("return document.readyState") == "complete")
    math = chrome.execute_async_script(WAIT_FOR_MATH)
    time.sleep(0.3)
    report = chrome.execute_script(INSPECT, width)
    report["math"] = math
    if dark:
        chrome.execute_script('localStorage.setItem("mode", "light"); localStorage.setItem("theme", "light");')
    return report


@pytest.fixture(scope="module")
def seen(site, server, browser) -> dict[tuple[str, str], dict]:
    """Every page at desktop and phone width (and two pages in dark mode), offline: what the reader sees,
    the console errors and the requests to other hosts. Saves a screenshot of each view."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    browser.get_log("browser"), browser.get_log("performance")
    views = {}
    for page in pages(site):
        name = page.relative_to(site).as_posix()
        for size in WIDTHS:
            for dark in (False, True) if name in DARK_PAGES else (False,):
                report = _visit(browser, f"{server}/{name}", size, dark)
                report["landmarks"] = _landmarks(browser)
                report["errors"] = _errors(browser)
                report["foreign"] = _foreign_requests(browser)
                view = f"{size}-dark" if dark else size
                _screenshot(browser, SCREENSHOTS / f"{_slug(name)}-{view}.png", size)
                views[name, view] = report
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    readable = {f"{p} [{v}]": {**r, "landmarks": {n: m["box"] for n, m in r["landmarks"].items()}}
                for (p, v), r in views.items()}
    (SCREENSHOTS / "seen.json").write_text(json.dumps(readable, indent=1))
    return views


def _problems(seen: dict, check) -> list[str]:
    found = []
    for (page, view), report in seen.items():
        found += [f"{page} [{view}]: {problem}" for problem in check(report)]
    return found


def test_no_console_errors_and_no_request_to_another_host(seen):
    problems = _problems(seen, lambda r: [f"console: {e}" for e in r["errors"]]
                         + [f"request to another host: {u}" for u in r["foreign"]])
    assert not problems, "\n".join(problems[:40])


def test_no_page_is_wider_than_the_screen(seen):
    problems = _problems(seen, lambda r: [f"page is {r['scrollWidth']} px wide on a {r['width']} px screen: "
                                          + ", ".join(r["wide"])] if r["scrollWidth"] > r["width"] + 1 else [])
    assert not problems, "\n".join(problems)


def test_prose_shows_no_raw_markdown_or_tex(seen):
    def check(report):
        found = []
        for text in report["blocks"]:
            for what, pattern in (("raw Markdown table", RAW_TABLE), ("raw emphasis", RAW_EMPHASIS),
                                  ("raw TeX", RAW_TEX), ("a symbol typed as (c), (r) or (tm)",
                                                         REPLACED_SYMBOL)):
                if pattern.search(text):
                    found.append(f"{what}: {text[:90]!r}")
        if report["math"] in ("failed", "no renderer"):
            found.append(f"formulas not rendered ({report['math']})")
        return sorted(set(found))
    problems = _problems(seen, check)
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:60])


def test_figures_load_are_readable_and_described(seen):
    def check(report):
        found = []
        for image in report["images"]:
            name = image["src"].rsplit("/", 1)[-1]
            if not image["loaded"]:
                found.append(f"image did not load: {name}")
                continue
            alt = image["alt"].strip()
            if not alt or re.search(r"\.(png|jpe?g|svg|gif)$", alt, re.I):
                found.append(f"no alt text: {name}")
            if image["hidden"]:
                continue
            scale = image["shown"] / image["natural"]
            if image["thumb"]:
                if scale < 1 / MAX_THUMBNAIL_SCALE:
                    found.append(f"thumbnail served at {image['natural']} px, shown at {image['shown']:.0f} px: {name}")
            elif scale < MIN_FIGURE_SCALE:
                found.append(f"figure shown at {scale:.0%} of its natural width "
                             f"({image['natural']} -> {image['shown']:.0f} px): {alt[:50] or name}")
        return found
    problems = _problems(seen, check)
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:60])


def test_dark_mode_keeps_text_and_figures_readable(seen):
    def check(report):
        found = [f"low contrast: {c}" for c in report["lowContrast"]]
        if report["theme"] != "dark":
            found.append(f"theme is {report['theme']!r}, not dark")
        for image in report["images"]:
            if not image["hidden"] and not image["thumb"]:
                m = re.findall(r"[\d.]+", image["background"] or "rgb(0, 0, 0)")
                if sum(float(v) for v in m[:3]) / 3 < 200:
                    found.append(f"figure on a dark background ({image['background'] or 'none'}): {image['alt'][:40]}")
        return found
    dark = {k: v for k, v in seen.items() if k[1].endswith("-dark")}
    assert len(dark) == 2 * len(DARK_PAGES)
    problems = _problems(dark, check)
    assert not problems, "\n".join(problems[:40])


def _what_you_will_learn(nb) -> str:
    """The first item of a chapter's "What you will learn" list, as plain text."""
    match = re.search(r"^- (.+(?:\n  .+)*)", nb.cells[0].source, re.M)
    text = " ".join(line.strip() for line in match.group(1).splitlines()) if match else ""
    text = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", text).replace("`", "").replace("*", "")
    return text.rstrip(";.") + "."


def test_cards_show_a_whole_sentence(seen):
    landing = seen["book/intro.html", "desktop"]
    assert len(landing["cards"]) == len(CHAPTERS), landing["cards"]
    problems = []
    for chapter, card in zip(CHAPTERS, landing["cards"]):
        expected = _what_you_will_learn(nbformat.read(chapter, as_version=4))
        words = re.findall(r"\w+", card)
        if not re.search(r"[.?!]$", card) or not words or words[-1].lower() in STOP_WORDS \
                or card.split() != expected.split():
            problems.append(f"{chapter.stem}: card says {card!r}, the chapter {expected!r}")
    assert not problems, "\n".join(problems)


def test_results_table_shows_what_readers_want_first(seen):
    for view in WIDTHS:
        hidden = seen["book/intro.html", view]["hiddenColumns"]
        assert not {"network", "test accuracy"} & set(hidden), f"{view}: hidden behind the scrollbar: {hidden}"
    assert not seen["book/intro.html", "desktop"]["hiddenColumns"], seen["book/intro.html", "desktop"]["hiddenColumns"]


def test_no_table_hides_columns_at_desktop_width(seen):
    """Found on the speed page: a nine-column table whose last column sat behind a scrollbar at 1366 px.
    (On a phone a wide table may scroll; on a desktop every column must be in view.)"""
    problems = [f"{page}: {table}" for (page, view), report in seen.items() if view == "desktop"
                for table in report["clippedTables"]]
    assert not problems, "columns hidden at desktop width:\n" + "\n".join(problems)


def test_no_code_box_scrolls_at_desktop_width(seen):
    """Found in 57 code cells, 10 code blocks and most printed outputs: lines of up to 104 characters
    (outputs: 356) in a box that showed 84 at 1366 px, so a reader scrolled sideways to read the setup
    cell, much of the model code and the Settings line. (On a phone code may scroll.)"""
    problems = [f"{page}: {box}" for (page, view), report in seen.items() if view == "desktop"
                for box in report["scrollingCode"]]
    assert not problems, "code boxes that scroll sideways at desktop width:\n" + "\n".join(problems)


def _exercise_counts(nb, chapter: Path) -> tuple[int, int, list[str]]:
    """(checked, open, solutions' first words) of a chapter's "## Exercises" section. Checked is what
    cnnbook.exercises registers for the chapter (the page once counted only the items marked exactly
    "(checked)", missing "(checked, why)" and "(checked, coding)")."""
    from cnnbook import exercises as registry

    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    section = text[text.index("## Exercises") + 12:] if "## Exercises" in text else ""
    exercises, _, solutions = section.partition("<details>")
    exercises = re.split(r"\n#{1,3} ", exercises)[0]
    items = re.findall(r"^\d+\.\s+(.*)$", exercises, re.M)
    module = registry.CHAPTERS[CHAPTERS.index(chapter)]
    checked = len(module.EXERCISES)
    assert checked == sum(item.startswith("**(checked") for item in items), (
        f"{chapter.name}: the items marked checked are not the exercises cnnbook.exercises registers")
    answers = [a.strip()[:40] for a in re.findall(r"^\d+\.\s+(.*)$", solutions, re.M) if len(a.strip()) > 20]
    return checked, len(items) - checked, answers


def test_classroom_table_matches_the_chapters(seen):
    rows = seen["book/classroom.html", "desktop"]["exercises"]
    assert len(rows) == len(CHAPTERS), rows
    problems = []
    for chapter, row in zip(CHAPTERS, rows):
        checked, open_, answers = _exercise_counts(nbformat.read(chapter, as_version=4), chapter)
        if row["counts"] != f"{checked} checked, {open_} open":
            problems.append(f"{chapter.stem}: page says {row['counts']!r}, the chapter has {checked} checked, {open_} open")
        if len(row["items"]) != checked + open_:
            problems.append(f"{chapter.stem}: {len(row['items'])} exercises listed, {checked + open_} in the chapter")
        for item in row["items"]:
            words = re.findall(r"\w+", item)
            if not re.search(r"[.?!)]$", item) or not words or words[-1].lower() in STOP_WORDS:
                problems.append(f"{chapter.stem}: exercise text cut: {item[-60:]!r}")
            if any(item.startswith(a) for a in answers):
                problems.append(f"{chapter.stem}: a solution is listed as an exercise: {item[:60]!r}")
    assert not problems, "\n".join(problems)


def test_screenshots_of_every_page(site, seen):
    shots = {p.name for p in SCREENSHOTS.glob("*.png")}
    for page in pages(site):
        for view in WIDTHS:
            assert f"{_slug(page.relative_to(site).as_posix())}-{view}.png" in shots
    assert sum("-dark" in s for s in shots) == 2 * len(DARK_PAGES)


LANDMARK_TOLERANCE = 1.0  # mean difference per colour channel (0-255); the same rendering differs by 0


@functools.lru_cache(maxsize=2)  # a shot's landmarks are checked one after the other
def _top_of(path: Path, rows: int, whole: bool = False):
    """The screenshot's first ``rows`` rows as an RGB array, decoding only a prefix of the PNG unless ``whole``
    (a 20,000-pixel page takes 0.7 s to decode in full). Rows past the prefix come back black."""
    import io

    import numpy as np
    from PIL import Image, ImageFile

    data = path.read_bytes()
    with Image.open(io.BytesIO(data)) as probe:
        height = probe.height
    if not whole:
        data = data[:min(len(data), 65536 + len(data) * 3 * rows // height)]
    truncated, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, True
    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.crop((0, 0, image.width, min(rows, image.height))).convert("RGB")).astype(np.int16)
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = truncated


def _landmark_problem(shot: Path, landmark: dict, screen_height: int) -> str | None:
    """None when the screenshot shows the landmark (on the first screen) where the reader sees it; otherwise
    what it shows there."""
    import io

    import numpy as np
    from PIL import Image

    x, y, w, h = landmark["box"]
    seen_by_reader = np.asarray(Image.open(io.BytesIO(base64.b64decode(landmark["png"]))).convert("RGB"))
    seen_by_reader = seen_by_reader.astype(np.int16)
    h, w = seen_by_reader.shape[:2]
    for whole in (False, True):  # a mismatch is confirmed on the whole image, never blamed on the prefix
        top = _top_of(shot, screen_height, whole)
        if top.shape[0] >= y + h and top.shape[1] >= x + w:
            difference = np.abs(top[y:y + h, x:x + w] - seen_by_reader).mean()
            if difference <= LANDMARK_TOLERANCE:
                return None
        else:
            difference = float("nan")
    band = top[y:y + h]
    shifts = {dx: np.abs(band[:, x + dx:x + dx + w] - seen_by_reader).mean()
              for dx in range(-x, band.shape[1] - x - w + 1)} if band.shape[0] == h else {}
    where = f"box x={x} y={y} {w}x{h}, mean difference {difference:.1f} of 255"
    if shifts and min(shifts.values()) <= LANDMARK_TOLERANCE:
        dx = min(shifts, key=shifts.get)
        return f"is drawn {abs(dx)} px to the {'left' if dx < 0 else 'right'} of where the reader sees it ({where})"
    return f"is not in the screenshot where the reader sees it, nor anywhere on its rows ({where})"


def test_screenshots_show_what_the_reader_sees(seen):
    """Found reviewing _build/screenshots/: at desktop width some pages were drawn cut at the left (chapter 9's
    title read "...connections", the sidebar half gone), a layout no reader sees. Each full-page screenshot
    must show the page's title (and, where it is on the first screen, the sidebar's logo) pixel for pixel
    where the reader sees them on opening the page at that screen size."""
    problems, titles = [], 0
    for (page, view), report in seen.items():
        shot = SCREENSHOTS / f"{_slug(page)}-{view}.png"
        for name, landmark in report["landmarks"].items():
            titles += name == "title"
            problem = _landmark_problem(shot, landmark, WIDTHS[view.split("-")[0]][1])
            if problem:
                problems.append(f"{shot.name}: the {name} {problem}")
    assert not problems, "screenshots that show what no reader sees:\n" + "\n".join(problems)
    assert titles >= 2 * len(CHAPTERS), f"only {titles} views had a title on their first screen"


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


def test_search_finds_residual(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(f"{server}/search.html?q=residual")
    found = _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#search-results li"), timeout=15)
    assert found, "searching for 'residual' found nothing"
