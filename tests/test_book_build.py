"""The whole book builds warning-free in the smoke profile, and every page looks right in a browser.

The build (`jupyter-book build . -W --keep-going`, SRET_PROFILE=smoke) goes to _build/smoke, so it
never touches the `make book` output in _build/html. It runs once per test session, however many
xdist workers there are: the Makefile keeps these tests on one worker (`--dist loadgroup`), and a
file lock makes any other worker wait for the first build and reuse it.

The browser is Debian's Chromium (`/usr/bin/chromium`, or $CHROMIUM), driven by Playwright. Pages
are opened from disk, as a reader opens the book offline: any request over the network (for
anything but a file:, data: or blob: URL) fails the test, and so does a local file that does not
load. MathJax is served from the book itself (book/_ext/offline_mathjax.py), so every formula must
be typeset, with no TeX left showing. A full-page screenshot of every page is saved in
_build/screenshots/. To check the `make book` output instead of a fresh smoke build:
`SRET_BOOK_HTML=_build/html pytest tests/test_book_build.py -k page`.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest
from test_notebooks import kernel_env, toc_files

ROOT = Path(__file__).parents[1]
SMOKE = ROOT / "_build" / "smoke"
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
BUILD_TIMEOUT_S = 1800
MATHJAX_TIMEOUT_MS = 30_000
SESSION = os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex  # one id per `pytest` run

pytestmark = pytest.mark.xdist_group("book_build")

# what a page must not show: myst-nb's error and traceback outputs, docutils' error boxes, and
# formulas that MathJax could not parse
ERROR_SELECTORS = (
    ".output.error",
    ".output.traceback",
    "div.traceback",
    ".system-message",
    ".problematic",
    "mjx-merror",
)
# MathJax's first typeset of the page: done, or why not (its script failed to load, or it is stuck)
MATHJAX_TYPESET = """ms => !window.MathJax?.startup?.promise ? 'MathJax did not load' : Promise.race([
    MathJax.startup.promise.then(() => 'typeset', e => `MathJax failed: ${e}`),
    new Promise(done => setTimeout(() => done(`MathJax still typesetting after ${ms} ms`), ms))])"""


def jupyter_book() -> str:
    local = Path(sys.executable).with_name("jupyter-book")
    return str(local) if local.exists() else "jupyter-book"


def build_smoke_book() -> dict:
    """Build the book in the smoke profile into _build/smoke; return the exit code, log and duration."""
    SMOKE.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, SRET_PROFILE="smoke", **kernel_env())
    command = [jupyter_book(), "build", str(ROOT), "-W", "--keep-going", "--path-output", str(SMOKE)]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, cwd=ROOT)
        returncode, log = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as e:
        returncode, log = -1, f"the build took more than {BUILD_TIMEOUT_S} s\n{e.stdout or ''}{e.stderr or ''}"
    reports = SMOKE / "_build" / "html" / "reports"
    if reports.is_dir():  # the tracebacks of chapters that failed to execute
        log += "".join(f"\n--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(reports.glob("**/*.err.log")))
    return dict(session=SESSION, returncode=returncode, log=log, seconds=time.perf_counter() - start)


@pytest.fixture(scope="session")
def smoke_build() -> dict:
    """The smoke build of this test session, built by whichever worker asks first."""
    SMOKE.parent.mkdir(parents=True, exist_ok=True)
    result_file = SMOKE.parent / "smoke-build.json"
    with open(SMOKE.parent / "smoke-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if result_file.exists():
            result = json.loads(result_file.read_text())
            if result.get("session") == SESSION:
                return result
        result = build_smoke_book()
        result_file.write_text(json.dumps(result))
        return result


@pytest.fixture(scope="session")
def html_dir(request) -> Path:
    """The built HTML to check: $SRET_BOOK_HTML if set, else this session's smoke build."""
    if os.environ.get("SRET_BOOK_HTML"):
        return Path(os.environ["SRET_BOOK_HTML"]).resolve()
    request.getfixturevalue("smoke_build")
    return SMOKE / "_build" / "html"


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium (or set CHROMIUM=/path/to/it)")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="make install adds playwright")
    with playwright_api.sync_playwright() as playwright:
        # never `playwright install`: it downloads a browser; Debian's Chromium works offline
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        yield chromium
        chromium.close()


def test_the_book_builds_in_the_smoke_profile_without_warnings(smoke_build):
    assert smoke_build["returncode"] == 0, f"jupyter-book build -W failed:\n{smoke_build['log'][-8000:]}"


@pytest.mark.parametrize("page", toc_files())
def test_page_loads_every_image_and_shows_no_error_in_a_browser(page, html_dir, browser):
    html = html_dir / f"{page}.html"
    assert html.is_file(), f"{html} was not built"
    blocked, unloaded = [], []

    def stay_on_this_machine(route):
        if urlparse(route.request.url).scheme in ("file", "data", "blob"):  # data: and blob: never leave the page
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    def record_unloaded(request):  # a local file missing or unreadable (the requests blocked above fail too)
        if urlparse(request.url).scheme == "file":
            unloaded.append(request.url)

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        tab = context.new_page()
        tab.route("**/*", stay_on_this_machine)
        tab.on("requestfailed", record_unloaded)
        tab.goto(html.as_uri(), wait_until="load")
        formulas = tab.locator(".math").count()  # Sphinx's math nodes, from $...$, $$...$$ and {math}
        mathjax = tab.evaluate(MATHJAX_TYPESET, MATHJAX_TIMEOUT_MS) if formulas else None
        untypeset = tab.locator(".math:not(:has(mjx-container))").count()
        tab.wait_for_function("Array.from(document.images).every(img => img.complete)", timeout=30_000)
        images = tab.eval_on_selector_all(
            "img",
            "imgs => imgs.map(img => ({src: img.currentSrc || img.src, ok: img.complete && img.naturalWidth > 0}))",
        )
        errors = {s: tab.locator(s).count() for s in ERROR_SELECTORS}
        text = tab.inner_text("body")
        stderr = [t for t in tab.locator(".cell_output .stderr").all_inner_texts() if "Error" in t or "Warning" in t]
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(SCREENSHOTS / f"{Path(page).name}.png"), full_page=True)
        output_images = tab.locator(".cell_output img").count()
        # code shown in outputs (the package's source, book.source) fits the column: no sideways scroll
        scrolling = tab.eval_on_selector_all(
            ".cell_output div.highlight pre",
            "pres => pres.filter(p => p.scrollWidth > p.clientWidth + 1).map(p => p.textContent.slice(0, 60))",
        )
    finally:
        context.close()

    if formulas:
        assert mathjax == "typeset", f"{page}: {mathjax} (requests blocked: {blocked})"
        assert untypeset == 0, f"{untypeset} of the {formulas} formulas on {page} are not typeset"
    tex = [d for d in ("\\(", "\\[") if d in text]
    assert not tex, f"{page} shows TeX delimiters {tex} as text: MathJax did not typeset it"
    assert blocked == [], f"{page} requested files over the network: {blocked}"
    assert unloaded == [], f"local files that {page} could not load: {unloaded}"
    failed = [i["src"] for i in images if not i["ok"]]
    assert failed == [], f"images that did not load on {page}"
    assert not any(errors.values()), f"{page} shows error outputs: {errors}"
    assert "Traceback (most recent call last)" not in text, f"{page} shows a traceback"
    assert not stderr, f"{page} shows errors or warnings on stderr: {stderr}"
    assert not scrolling, f"{page} shows code that scrolls sideways at 1280 px (starting {scrolling})"
    if (ROOT / f"{page}.ipynb").is_file():
        assert output_images > 0, f"{page} is a chapter but shows no figure"
