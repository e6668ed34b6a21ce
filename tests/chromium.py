"""Headless Chromium for the integration tests (Debian's, driven by Playwright): a test module
that imports this is skipped where Chromium is missing, and fails in CI (which installs it)."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "site"))  # the site's browser driver (docs/site/site_browser.py)
from site_browser import CHROMIUM_ARGS, chromium  # noqa: E402

CHROMIUM = chromium()
ARTIFACTS = ROOT / "test-artifacts"

playwright = pytest.importorskip("playwright.sync_api")
if CHROMIUM is None:
    if os.environ.get("CI"):
        raise RuntimeError("CI must have Debian's chromium installed (see .ci/run)")
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)


def launch(p):
    """Chromium from a Playwright handle, quiet: no network of its own, no GPU."""
    return p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


@contextlib.contextmanager
def browser_page(name: str, height: int):
    """A Chromium page collecting page errors; a last screenshot ``name-last.png`` whatever happens."""
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": height})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            yield page, errors
        finally:
            page.screenshot(path=str(ARTIFACTS / f"{name}-last.png"))
            browser.close()
