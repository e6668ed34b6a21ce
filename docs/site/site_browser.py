"""The site's browser driver: headless Chromium (Debian's, driven by Playwright) with the flags every
check and measurement of the site uses, and the Explore page's helpers — opening it, strokes by mouse and
by touch, reading its numbers. Used by the browser tests (``tests/``), the page's speed measurement
(``benchmarks/speed/explorer_speed.py``) and the figures' PNGs (``docs/site/static_figures.py``): one place for
the flags. Part of the site's build, beside ``explore_build.py``; the library never imports it.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
PAGE = Path("docs") / "site" / "explore.html"
ASSETS = Path("_static") / "explore"
#: quiet and offline: no GPU, no network of its own, no background updates
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
READY = "() => window.invlabExplorer && window.invlabExplorer.state.ready && window.invlabExplorer.idle()"
IDLE = "() => window.invlabExplorer.idle()"


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextlib.contextmanager
def explorer_page(url: str, width: int = 1200, height: int = 1400, has_touch: bool = False):
    """A Chromium page on the explorer at ``url``, ready; yields ``(page, log)``: ``log`` holds
    console errors, page errors and every request that tried to leave the machine (refused)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": width, "height": height}, has_touch=has_touch)
            page = context.new_page()
            log: dict[str, list[str]] = {"console": [], "errors": [], "remote": []}
            page.on("console", lambda m: log["console"].append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: log["errors"].append(str(e)))

            def refuse(route):
                host = route.request.url.split("/")[2].split(":")[0]
                if host in ("127.0.0.1", "localhost"):
                    return route.continue_()
                log["remote"].append(route.request.url)
                return route.abort()

            page.route("http*://**/*", refuse)
            page.goto(url)
            page.wait_for_function(READY, timeout=120_000)
            yield page, log
        finally:
            browser.close()


def wait_idle(page, updates_before: int | None = None) -> None:
    """Until the page has finished every update (and made at least one more than ``updates_before``)."""
    if updates_before is not None:
        page.wait_for_function(f"() => window.invlabExplorer.state.updates > {updates_before}", timeout=60_000)
    page.wait_for_function(IDLE, timeout=60_000)


def _canvas_points(page, points):
    canvas = page.locator("#invlab-canvas")
    canvas.scroll_into_view_if_needed()  # pointer events land where the canvas is on screen
    box = canvas.bounding_box()
    return [(box["x"] + box["width"] * u, box["y"] + box["height"] * v) for u, v in points]


def mouse_stroke(page, points) -> None:
    """A stroke with the mouse through ``points`` [(u, v)] in fractions of the canvas."""
    xy = _canvas_points(page, points)
    page.mouse.move(*xy[0])
    page.mouse.down()
    for x, y in xy[1:]:
        page.mouse.move(x, y, steps=2)
    page.mouse.up()


def touch_stroke(page, points) -> None:
    """The same with a finger: touch events (Chromium makes them pointer events of type touch)."""
    cdp = page.context.new_cdp_session(page)
    xy = _canvas_points(page, points)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": xy[0][0], "y": xy[0][1]}]})
    for x, y in xy[1:]:
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def page_result(page) -> dict:
    """The page's current numbers: ``raw`` (the image fed to the network), every output, the
    prediction, the readouts; arrays as numpy."""
    data = page.evaluate("""() => {
        const s = window.invlabExplorer.state, r = s.result, flat = (rows) => rows.flatMap((a) => Array.from(a));
        return {raw: Array.from(s.raw), input: Array.from(r.input), logits: Array.from(r.logits),
                probabilities: Array.from(r.probabilities), bias: Array.from(r.bias),
                templates: flat(r.templates), contributions: flat(r.contributions),
                reconstruction: Array.from(r.reconstruction), shares: Array.from(r.shares),
                prediction: r.prediction, largest_difference: r.largest_difference, changed: s.changedUnits,
                units: r.pattern.length, source: s.source, network: s.network.id, timing: s.timing,
                status: document.getElementById('invlab-status').textContent,
                error: document.getElementById('invlab-error').hidden ? null :
                       document.getElementById('invlab-error').textContent};
    }""")
    for k in ("raw", "input", "logits", "probabilities", "bias", "templates", "contributions", "reconstruction",
              "shares"):
        data[k] = np.asarray(data[k], dtype=np.float64)
    return data


def select_network(page, ident: str) -> None:
    before = page.evaluate("() => window.invlabExplorer.state.updates")
    page.select_option("#invlab-network", ident)
    page.wait_for_function(f"() => window.invlabExplorer.state.network.id === {ident!r}", timeout=60_000)
    wait_idle(page, before)


def networks(page) -> list[dict]:
    return page.evaluate("() => window.INVLAB_CATALOGUE.networks")
