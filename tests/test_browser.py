"""Notebooks in a real browser: JupyterLab on loopback, driven by headless Chromium.

* Notebook 6: runs every cell, moves the α slider, sets more steps, presses Train and
  checks that the live accuracy curve grows.
* Notebook 0 (the explorer): runs every cell, draws a stroke with the mouse on the canvas
  and checks that the prediction and the reconstruction image changed.

Both check that no widget shows an error and save screenshots to ``test-artifacts/``.
Chromium is Debian's (``.ci/run`` installs it); where it is missing outside CI the tests
are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "notebooks/06_train_with_sliders.ipynb"
EXPLORER = "notebooks/00_explore.ipynb"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = ROOT / "test-artifacts"

playwright = pytest.importorskip("playwright.sync_api")
if CHROMIUM is None:
    if os.environ.get("CI"):
        raise RuntimeError("CI must have Debian's chromium installed (see .ci/run)")
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path):
    """JupyterLab on loopback serving a copy of the notebook (the committed file stays clean)."""
    port, token = _free_port(), "invlab-browser-test"
    served = tmp_path / "served"
    served.mkdir()
    for notebook in (NOTEBOOK, EXPLORER):
        shutil.copy(ROOT / notebook, served)
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={served}", "--ServerApp.open_browser=False", "--allow-root",
           "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           # a fresh workspace and settings per test: JupyterLab would otherwise reopen the
           # notebooks an earlier test left open, and run the wrong one
           f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}", f"--LabApp.user_settings_dir={tmp_path / 'settings'}"]
    log = open(tmp_path / "jupyterlab.log", "w")
    proc = subprocess.Popen(cmd, cwd=served, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    json.load(r)
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"JupyterLab did not start: {(tmp_path / 'jupyterlab.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _val_points(page) -> int:
    return page.evaluate("""() => {
        const gd = Array.from(document.querySelectorAll('.js-plotly-plot'))
            .find(g => g.layout && g.layout.title && String(g.layout.title.text).includes('live training'));
        if (!gd) return -1;
        const t = gd.data.find(t => t.name === 'val_accuracy');
        return t && t.x ? t.x.length : 0;
    }""")


def _accept_dialogs(page) -> None:
    """Accept a dialog that came up late (on a slow machine the kernel choice can appear
    after the notebook is idle) instead of letting it block the menu clicks."""
    accept = page.locator(".jp-Dialog .jp-mod-accept")
    if accept.count():
        accept.first.click()


def _run_all_cells(page, tries: int = 6) -> None:
    """Run > Run All Cells, again if the kernel was not ready to take it (nothing started)."""
    started = ("() => Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt'))"
               ".some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))")
    for _ in range(tries):
        _accept_dialogs(page)
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-item", has_text="Run All Cells").first.click()
        try:
            page.wait_for_function(started, timeout=15_000)
            return
        except playwright.Error:
            page.keyboard.press("Escape")
    raise AssertionError("Run All Cells never started the notebook")


def _launch(p):
    return p.chromium.launch(executable_path=CHROMIUM, args=[
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"])


def _open_and_run(page, base, token, notebook) -> None:
    page.goto(f"{base}/lab/tree/{Path(notebook).name}?token={token}", timeout=120_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
    select_kernel = page.locator(".jp-Dialog button", has_text="Select")
    try:  # first start on a fresh profile asks which kernel, sometimes only after a while
        select_kernel.first.wait_for(timeout=10_000)
        select_kernel.first.click()
    except playwright.Error:
        pass
    _run_all_cells(page)


def _wait_all_cells_done(page, timeout=300_000) -> None:
    page.wait_for_function("() => Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt'))"
                           ".every(p => /^\\[\\d+\\]:$/.test(p.textContent.trim()))", timeout=timeout)


def _no_errors_shown(page, errors) -> None:
    assert page.locator("text=Error displaying widget").count() == 0
    assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']:has-text('Traceback')").count() == 0
    assert not errors, errors


def _plot_data(page, title_part: str):
    """The data arrays of the plotly figure whose title contains ``title_part``."""
    return page.evaluate("""(part) => {
        const gd = Array.from(document.querySelectorAll('.js-plotly-plot'))
            .find(g => g.layout && g.layout.title && String(g.layout.title.text).includes(part));
        if (!gd) return null;
        return gd.data.map(t => JSON.stringify(t.y !== undefined && t.type === 'bar' ? t.y : t.z));
    }""", title_part)


@contextlib.contextmanager
def _browser_page(name: str, height: int):
    """A Chromium page collecting page errors; a last screenshot ``name-last.png`` whatever happens."""
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = _launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": height})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            yield page, errors
        finally:
            page.screenshot(path=str(ARTIFACTS / f"{name}-last.png"))
            browser.close()


def test_explorer_draw_in_chromium(jupyterlab):
    base, token = jupyterlab
    with _browser_page("explorer", 1100) as (page, errors):
        _open_and_run(page, base, token, EXPLORER)
        _wait_all_cells_done(page)
        canvas = page.locator(".jp-OutputArea canvas").first
        canvas.wait_for(timeout=60_000)
        canvas.scroll_into_view_if_needed()
        probs_before = _plot_data(page, "class probabilities")
        images_before = _plot_data(page, "input and its reconstruction")
        assert probs_before and images_before, "the explorer's figures are not shown"
        box = canvas.bounding_box()
        x0, y0 = box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.15
        page.mouse.move(x0, y0)
        page.mouse.down()
        for k in range(1, 13):  # a vertical stroke down the middle: a "1"
            page.mouse.move(x0, y0 + box["height"] * 0.7 * k / 12, steps=2)
        page.mouse.up()
        page.wait_for_function("() => Array.from(document.querySelectorAll('.widget-html-content'))"
                               ".some(e => e.textContent.includes('your drawing'))", timeout=60_000)
        page.wait_for_function("""([part, before]) => {
            const gd = Array.from(document.querySelectorAll('.js-plotly-plot'))
                .find(g => g.layout && g.layout.title && String(g.layout.title.text).includes(part));
            return gd && JSON.stringify(gd.data[0].y) !== before;
        }""", arg=["class probabilities", probs_before[0]], timeout=60_000)
        probs_after = _plot_data(page, "class probabilities")
        images_after = _plot_data(page, "input and its reconstruction")
        page.screenshot(path=str(ARTIFACTS / "explorer-chromium.png"), full_page=True)
        assert probs_after[0] != probs_before[0], "the prediction did not change after drawing"
        assert images_after[0] != images_before[0], "the input image did not change after drawing"
        assert images_after[1] != images_before[1], "the reconstruction did not change after drawing"
        _no_errors_shown(page, errors)


def test_notebook6_in_chromium(jupyterlab):
    base, token = jupyterlab
    with _browser_page("notebook6", 1000) as (page, errors):
        _open_and_run(page, base, token, NOTEBOOK)
        # The notebook's own cells train twice (30 + 60 steps); wait for the last one.
        train_button = page.locator(".widget-button", has_text="Train").first
        train_button.wait_for(timeout=180_000)
        _wait_all_cells_done(page)
        before = _val_points(page)
        # 60 steps evaluated every 10, plus one point where the notebook pressed Stop.
        assert 6 <= before <= 7, f"the notebook's own runs left {before} validation points"
        # Move the α slider with the keyboard, ask for 90 steps, press Train.
        handle = page.locator(".widget-slider", has_text="α").first.locator(".noUi-handle").first
        handle.focus()
        page.keyboard.press("ArrowLeft")
        steps_box = page.locator(".widget-text", has_text="steps").first.locator("input")
        steps_box.fill("90")
        steps_box.press("Enter")
        train_button.click()
        page.wait_for_function("() => Array.from(document.querySelectorAll('.widget-html-content'))"
                               ".some(e => e.textContent.includes('done at step 90'))", timeout=300_000)
        after = _val_points(page)
        news = page.locator(".jp-toast-button", has_text="No")
        if news.count():
            news.first.click()
        page.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "notebook6-chromium.png"))
        status = " ".join(page.locator(".widget-html-content").all_inner_texts())
        assert after == 9 > before, (before, after)
        assert "error" not in status.lower(), status
        _no_errors_shown(page, errors)
