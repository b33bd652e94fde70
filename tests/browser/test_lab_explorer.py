"""The HPA notebook's explorer in a real JupyterLab: a slider moves, the chart is redrawn.

JupyterLab runs on loopback with no token in a temporary folder holding a copy of the
shipped notebook; headless Chromium (the ``browser`` fixture) opens it, runs every cell,
moves the target-utilization slider one step and waits for the chart to change.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from rknb.report import list_notebooks

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[str]:
    shutil.copy(list_notebooks()["hpa_tuning"], tmp_path / "hpa_tuning.ipynb")
    port = _free_port()
    log = (tmp_path / "lab.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            f"--port={port}",
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.token=",
            "--ServerApp.password=",
            "--ServerApp.disable_check_xsrf=True",
            f"--ServerApp.root_dir={tmp_path}",
            "--LabApp.news_url=None",
            "--allow-root",
            "--LabApp.extension_manager=readonly",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((tmp_path / "lab.log").read_text()[-2000:]) from None
                time.sleep(0.25)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_moving_the_explorer_slider_redraws_the_chart(
    browser: object, lab: str, tmp_path: Path
) -> None:
    # The shared context is offline; here only loopback is let through, nothing else.
    browser.set_offline(False)  # type: ignore[attr-defined]
    page = browser.new_page()  # type: ignore[attr-defined]
    outside: list[str] = []

    def loopback_only(route: object) -> None:
        url = route.request.url  # type: ignore[attr-defined]
        if url.startswith(lab) or url.startswith(lab.replace("http", "ws")):
            route.continue_()  # type: ignore[attr-defined]
        else:
            outside.append(url)
            route.abort()  # type: ignore[attr-defined]

    page.route("**/*", loopback_only)
    try:
        page.goto(f"{lab}/lab/tree/hpa_tuning.ipynb", wait_until="domcontentloaded")
        page.wait_for_selector(".jp-Notebook", timeout=60_000)
        # JupyterLab sometimes asks which kernel to start; take the notebook's own.
        dialog = page.locator(".jp-Dialog button.jp-mod-accept")
        try:
            dialog.wait_for(timeout=10_000)
            dialog.click()
        except Exception:  # no dialog this time
            pass
        # The kernel must be up before "Run All" has something to run on.
        page.wait_for_selector(
            ".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000
        )
        page.click("text=Run", timeout=10_000)
        page.click("text=Run All Cells", timeout=10_000)

        slider = page.locator(".widget-slider").first
        try:
            slider.wait_for(timeout=240_000)
        except Exception:
            page.screenshot(path=str(tmp_path / "lab-failure.png"), full_page=True)
            raise
        chart = page.locator(".widget-vbox img").first
        chart.wait_for(timeout=60_000)
        before = chart.get_attribute("src")

        page.locator(".widget-slider .noUi-handle").first.focus()
        page.keyboard.press("ArrowRight")

        deadline = time.monotonic() + 60
        after = before
        while after == before and time.monotonic() < deadline:
            page.wait_for_timeout(250)
            image = page.locator(".widget-vbox img").first
            after = image.get_attribute("src") if image.count() else before
        assert after != before, "the chart did not change after the slider moved"
        readout = page.locator(".widget-slider .widget-readout").first.inner_text()
        assert readout.strip() == "0.75"  # 0.70 plus one 0.05 step
    finally:
        page.close()
        browser.set_offline(True)  # type: ignore[attr-defined]
