""""Try the networks" in a real browser (Debian's headless Chromium, offline): the page computes what PyTorch
computes for every network on 30 test images, drawing with a mouse or a finger changes the prediction, no
console error, and the page stays light until used. Screenshots: _build/screenshots/try-*.png.

The site is built into a temporary folder with the shipped weights when every chapter has them, and
otherwise with stand-in weights trained here for a few steps (tests/tiny_weights.py)."""
from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from cnnbook import export, weights
from cnnbook.book import NETWORKS
from cnnbook.data import MEAN, STD

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "_build" / "screenshots"
TOLERANCE = 1e-4
MAX_BEFORE_USE = 1_000_000  # the page's own HTML, scripts and data before anything is picked or drawn


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory) -> Path:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("CNNBOOK_WEIGHTS_DIR", raising=False)
        if set(weights.available()) >= set(NETWORKS):
            return weights.weights_dir()
        folder = tmp_path_factory.mktemp("weights")
        patch.setenv("CNNBOOK_WEIGHTS_DIR", str(folder))
        from tiny_weights import train_tiny

        train_tiny(steps=5)
        return folder


@pytest.fixture(scope="module")
def site(tmp_path_factory, weights_dir) -> Path:
    if not export.ort_dist(ROOT).joinpath(export.ORT_FILES[0]).is_file():
        pytest.fail("onnxruntime-web is not installed: run `npm ci` (make setup does)")
    out = tmp_path_factory.mktemp("site")
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    command = [str(jupyter_book if jupyter_book.exists() else shutil.which("jupyter-book")),
               "build", str(ROOT), "--path-output", str(out), "-W", "-n", "--keep-going"]
    env = {**os.environ, "CNNBOOK_WEIGHTS_DIR": str(weights_dir)}
    run = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    log = run.stdout + run.stderr
    assert run.returncode == 0 and "WARNING" not in log, log[-5000:]
    return out / "_build" / "html"


@pytest.fixture(scope="module")
def expected(site, weights_dir) -> dict[str, list[list[float]]]:
    """PyTorch's probabilities for the page's test images, per network."""
    data = json.loads((site / "_static" / "try" / "try-data.json").read_text())
    import base64

    images = torch.stack([torch.frombuffer(bytearray(base64.b64decode(s["pixels"])), dtype=torch.uint8)
                          for s in data["samples"]]).reshape(-1, 1, 28, 28)
    X = (images.float() / 255 - MEAN) / STD
    probabilities = {}
    with pytest.MonkeyPatch.context() as patch, torch.no_grad():
        patch.setenv("CNNBOOK_WEIGHTS_DIR", str(weights_dir))
        for net in data["networks"]:
            model, record = export.trained_network(net["key"])
            scores = model(X) + (model(X.flip(-1)) if record.get("tta") else 0)  # chapter 12's mirrored view
            probabilities[net["key"]] = torch.softmax(scores, dim=1).tolist()
    return probabilities


class _Quiet(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm",
                      ".mjs": "text/javascript"}

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(site):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
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
                 "--disable-sync", "--window-size=1366,1000",
                 # offline: every host but this machine fails to resolve
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with webdriver.Chrome(service=Service(driver), options=options) as chrome:
        yield chrome


def _wait(condition, timeout: float = 60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    return condition()


def _console_errors(chrome) -> list[str]:
    return [e["message"] for e in chrome.get_log("browser") if e["level"] == "SEVERE"]


def _requests(chrome) -> list[dict]:
    return chrome.execute_script(
        "return [performance.getEntriesByType('navigation')[0], ...performance.getEntriesByType('resource')]"
        ".map(e => ({url: e.name, type: e.initiatorType, bytes: e.encodedBodySize}))")


def _finished(chrome, input_id: str) -> bool:
    return chrome.execute_script(
        "const s = window.cnnbookTry; return !!s && s.done === arguments[0] && !s.busy && !s.pending", input_id)


def _page_probabilities(chrome) -> dict[str, list[float]]:
    return chrome.execute_script(
        "const r = {}; document.querySelectorAll('.cnnbook-try-card').forEach("
        "c => r[c.dataset.net] = JSON.parse(c.dataset.probabilities || 'null')); return r")


def _open(chrome, url: str):
    chrome.get(url)
    assert _wait(lambda: chrome.execute_script("return !!(window.cnnbookTry && window.cnnbookTry.ready)"), 20), \
        chrome.find_element("id", "try-status").text


def test_page_matches_pytorch_offline_and_stays_light(server, browser, expected):
    browser.get_log("browser")  # start with an empty console
    _open(browser, f"{server}/book/try.html?net=resnet")
    before = _requests(browser)
    assert all(r["url"].startswith(server) for r in before), [r["url"] for r in before]
    # the page's own HTML, script, style and data (the theme's files are every page's, cached after the first)
    own = sum(r["bytes"] for r in before if r["type"] == "navigation" or "/_static/try/" in r["url"])
    assert own <= MAX_BEFORE_USE, f"{own:,} bytes before use"
    assert not any("/models/" in r["url"] or "/ort/" in r["url"] for r in before), "loaded before use"
    assert browser.execute_script("return document.querySelector('.cnnbook-try-selected').dataset.net") == "resnet"

    differences = {key: 0.0 for key in expected}
    thumbs = browser.find_elements("css selector", ".cnnbook-try-thumb")
    assert len(thumbs) >= 20
    for i, thumb in enumerate(thumbs):
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", thumb)
        thumb.click()
        assert _wait(lambda: _finished(browser, f"sample-{i}")), f"sample {i}: no result"
        page = _page_probabilities(browser)
        for key, reference in expected.items():
            got, want = page[key], reference[i]
            assert got is not None, f"{key}: no probabilities"
            assert max(range(10), key=got.__getitem__) == max(range(10), key=want.__getitem__), (key, i)
            differences[key] = max(differences[key], max(abs(a - b) for a, b in zip(got, want)))
    print("\nlargest probability difference, page vs PyTorch:",
          {k: f"{v:.1e}" for k, v in differences.items()})
    assert max(differences.values()) <= TOLERANCE, differences

    after = _requests(browser)
    assert all(r["url"].startswith(server) for r in after), [r["url"] for r in after]
    total_before = sum(r["bytes"] for r in before)
    total_after = sum(r["bytes"] for r in after)
    print(f"page weight: its own HTML, script, style and data {own:,} bytes before use; with the theme's files"
          f" {total_before:,} bytes; {total_after:,} bytes after running every network")
    assert not browser.execute_script("return window.cnnbookTry.errors")
    assert not _console_errors(browser)


def _draw_with_mouse(browser, path):
    from selenium.webdriver.common.action_chains import ActionChains

    canvas = browser.find_element("id", "try-canvas")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
    size = canvas.size
    (x0, y0), rest = path[0], path[1:]
    to_offset = lambda x, y: (round((x - 0.5) * size["width"]), round((y - 0.5) * size["height"]))  # noqa: E731
    chain = ActionChains(browser).move_to_element_with_offset(canvas, *to_offset(x0, y0)).click_and_hold()
    for x, y in rest:
        chain = chain.move_to_element_with_offset(canvas, *to_offset(x, y))
    chain.release().perform()


def _draw_with_finger(browser, path):
    box = browser.execute_script("const b = document.getElementById('try-canvas').getBoundingClientRect();"
                                 "return [b.left, b.top, b.width, b.height]")
    points = [{"x": box[0] + x * box[2], "y": box[1] + y * box[3]} for x, y in path]
    browser.execute_cdp_cmd("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [points[0]]})
    for point in points[1:]:
        browser.execute_cdp_cmd("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
    browser.execute_cdp_cmd("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def _last_input(browser) -> str:
    return browser.execute_script("return window.cnnbookTry.input && window.cnnbookTry.input.id")


def test_drawing_changes_the_prediction(server, browser, expected):
    browser.get_log("browser")
    _open(browser, f"{server}/book/try.html")
    browser.find_element("id", "try-clear").click()
    # a pair of trouser legs, with the mouse
    _draw_with_mouse(browser, [(0.35, 0.1), (0.65, 0.1), (0.7, 0.9)])
    _draw_with_mouse(browser, [(0.35, 0.1), (0.3, 0.9)])
    first = _last_input(browser)
    assert first and first.startswith("drawing-"), "drawing made no input"
    assert _wait(lambda: _finished(browser, first))
    trousers = _page_probabilities(browser)
    seen = browser.execute_script("return Array.from(window.cnnbookTry.input.pixels)")
    assert max(seen) > 200 and min(seen) == 0 and sum(v > 0 for v in seen) > 60, "the 28x28 input is not a drawing"

    # a wide bag below it, with a finger: the prediction changes
    browser.find_element("id", "try-clear").click()
    browser.execute_script("document.getElementById('try-brush').value = 40")
    for y in (0.45, 0.55, 0.65, 0.75, 0.85):
        _draw_with_finger(browser, [(0.1, y), (0.5, y), (0.9, y)])
    second = _last_input(browser)
    assert second != first, "touch drawing made no input"
    assert _wait(lambda: _finished(browser, second))
    bag = _page_probabilities(browser)
    change = {k: max(abs(a - b) for a, b in zip(bag[k], trousers[k])) for k in bag}
    print("\nlargest change of a probability, trousers -> bag:", {k: round(v, 4) for k, v in change.items()})
    # every network that tells test images apart answers differently (far beyond rounding, ~1e-7), and some
    # by a lot (the stand-in weights of a few training steps can leave a network almost constant)
    responsive = [k for k, p in expected.items()
                  if max(abs(a - b) for row in p for a, b in zip(row, p[0])) > 0.05]
    assert responsive and min(change[k] for k in responsive) > 1e-4, (responsive, change)
    assert max(change.values()) > 0.05, change

    # the selected network's first-layer feature maps are shown for the drawing
    browser.find_element("css selector", ".cnnbook-try-card[data-net='lenet']").click()
    maps = browser.find_elements("css selector", ".cnnbook-try-maps canvas")
    assert maps and "net=lenet" in browser.current_url
    assert not browser.execute_script("return window.cnnbookTry.errors")
    assert not _console_errors(browser)


def test_screenshots_desktop_phone_dark(server, browser):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, width, height, dark in (("try-desktop", 1366, 1500, False), ("try-phone", 390, 2600, False),
                                      ("try-dark", 1366, 1500, True)):
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 500})
        browser.get(f"{server}/book/try.html?net=resnet")
        browser.execute_script("localStorage.setItem('theme', arguments[0]); localStorage.setItem('mode', arguments[0])",
                               "dark" if dark else "light")
        _open(browser, f"{server}/book/try.html?net=resnet")
        assert browser.execute_script("return document.documentElement.dataset.theme") == ("dark" if dark else "light")
        browser.find_elements("css selector", ".cnnbook-try-thumb")[9].click()
        assert _wait(lambda: _finished(browser, "sample-9"))
        overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name}: the page is {overflow} px wider than the window"
        browser.execute_script("document.getElementById('try-app').scrollIntoView()")
        browser.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    browser.execute_script("localStorage.setItem('theme', 'light'); localStorage.setItem('mode', 'light')")
    assert not _console_errors(browser)
