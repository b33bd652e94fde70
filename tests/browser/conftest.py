"""Headless Chromium (Debian's ``chromium``) driven by Playwright, with no browser download.

The tests skip when Playwright or the browser is missing, unless ``RKNB_REQUIRE_BROWSER=1``
(CI) turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rknb import report

CHROMIUM = os.environ.get("RKNB_CHROMIUM", "/usr/bin/chromium")
DATA = Path(__file__).parents[1] / "data"

# The machine has no network: without these Chromium keeps trying to reach Google.
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _unavailable(reason: str) -> None:
    if os.environ.get("RKNB_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}, and RKNB_REQUIRE_BROWSER=1 requires the browser tests")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed (pip install playwright)")
    if not Path(CHROMIUM).is_file():
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    profile = tempfile.mkdtemp(prefix="rknb-chromium-")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=ARGS,
            viewport={"width": 1200, "height": 900},
            offline=True,
        )
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


class Page:
    """An opened page and every request it made."""

    def __init__(self, page: object, requests: list[str]) -> None:
        self.page = page
        self.requests = requests


@pytest.fixture
def open_page(browser):
    pages = []

    def open_(path: Path) -> Page:
        page = browser.new_page()
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        # Anything but the file itself and inline data is refused, and still recorded.
        page.route(
            "**/*",
            lambda route: (
                route.continue_()
                if route.request.url.startswith(("file://", "data:"))
                else route.abort()
            ),
        )
        page.goto(path.resolve().as_uri(), wait_until="load")
        pages.append(page)
        return Page(page, requests)

    yield open_
    for page in pages:
        page.close()


@pytest.fixture(scope="session")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, report.RunResult]:
    """A real report (latency on the demo), one with the code shown, and a failed run."""
    out = tmp_path_factory.mktemp("browser-reports")
    jobs = {
        "latency": ("latency_analysis", {}, {}),
        "code": (DATA / "report" / "nosentinel.ipynb", {"value": "7"}, {"show_code": True}),
        "raises": (DATA / "report" / "raises.ipynb", {}, {}),
    }
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {
            label: pool.submit(report.run_notebook, nb, params, output_dir=out, **options)
            for label, (nb, params, options) in jobs.items()
        }
        runs = {label: future.result() for label, future in futures.items()}
    report.update_index(out)
    return runs
