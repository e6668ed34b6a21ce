"""The documentation site as ``bin/docs`` builds it (lessons executed, with their outputs), opened
from the file system in headless Chromium with every request off the machine refused.

It checks the built site in ``docs/_build/html`` where ``INVLAB_SITE_BUILT=1`` says that
``bin/docs`` has just built it from this tree: ``.ci/run`` does both before the test suite, so
there a missing site fails. Elsewhere it is skipped (a site left by an older ``bin/docs`` would
be checked instead of the code): run ``bin/docs && INVLAB_SITE_BUILT=1 bin/test tests/integration/test_site.py``.
The site built without running the lessons is checked on every other run of the suite
(``tests/integration/test_notebooks_in_browser.py``, ``tests/test_docs.py``).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from chromium import ARTIFACTS, ROOT, browser_page

SITE = ROOT / "docs" / "_build" / "html"
LESSONS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.xdist_group("jupyterlab")]

# every plotly figure of the page has drawn (plotly adds its SVG)
DRAWN = """() => Array.from(document.querySelectorAll('.plotly-graph-div'))
    .every(d => d.classList.contains('js-plotly-plot') && d.querySelector('.main-svg'))"""
TRACES = "() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(d => (d.data || []).length)"


def executed_site() -> Path:
    """``docs/_build/html`` where ``INVLAB_SITE_BUILT`` is set (a missing or unexecuted site
    fails); skipped elsewhere."""
    if not os.environ.get("INVLAB_SITE_BUILT"):
        pytest.skip(
            "checks the site bin/docs has just built: "
            "bin/docs && INVLAB_SITE_BUILT=1 bin/test tests/integration/test_site.py"
        )
    lesson = SITE / "notebooks" / f"{LESSONS[1]}.html"
    if not lesson.exists() or "cell_output" not in lesson.read_text():
        raise AssertionError(f"INVLAB_SITE_BUILT is set but {SITE} holds no executed site: run bin/docs")
    return SITE


def _not_blank(png: bytes) -> float:
    """The spread of a screenshot's grey levels (0 for a blank picture)."""
    from PIL import Image, ImageStat

    return ImageStat.Stat(Image.open(io.BytesIO(png)).convert("L")).stddev[0]


def test_the_built_site_offline_every_page_and_figure_draws():
    site = executed_site()
    pages = {"home": "docs/site/index.html", "api": "docs/site/api.html", "cli": "docs/site/cli.html",
             "results": "docs/site/results/baselines.html", "figure page": "docs/figures/generality.html",
             "findings": "docs/site/findings.html", "study": "docs/site/results/mnist.html",
             "archive": "docs/site/results/archive.html", "explore": "docs/site/explore.html",
             **{nb: f"notebooks/{nb}.html" for nb in LESSONS}}
    drawn, traces, spread = {}, {}, {}
    with browser_page("site-built", 1000) as (page, errors):
        console, remote = [], []
        page.on("console", lambda m: console.append(f"{page.url}: {m.text}") if m.type == "error" else None)

        def refuse(route):  # nothing leaves the machine: a request that tries is recorded and refused
            remote.append(route.request.url)
            route.abort()

        page.route("http*://**/*", refuse)
        page.goto((site / "index.html").as_uri())
        page.wait_for_url("**/docs/site/index.html", timeout=30_000)
        nav = page.evaluate("() => Array.from(document.querySelectorAll('a')).map(a => a.href)")
        for name, path in pages.items():
            page.goto((site / path).as_uri())
            page.wait_for_load_state("load")
            page.wait_for_function(DRAWN, timeout=60_000)
            traces[name] = page.evaluate(TRACES)  # the number of traces of each figure drawn
            drawn[name] = len(traces[name])
            if name in LESSONS:  # the lesson's first picture (a figure or an image) is not blank
                first = page.query_selector(".cell_output .js-plotly-plot, .cell_output img")
                if first is not None:
                    first.scroll_into_view_if_needed()
                    spread[name] = _not_blank(first.screenshot())
            if name in ("home", "api", "results", LESSONS[4]):
                page.screenshot(path=str(ARTIFACTS / f"site-{name}.png"))
            if name == "results":  # one of its live figures, as drawn
                figure = page.query_selector(".invlab-figure")
                figure.scroll_into_view_if_needed()
                figure.screenshot(path=str(ARTIFACTS / "site-results-figure.png"))
    assert not errors and not console, (errors, console)
    assert not remote, remote
    assert all(any(href.endswith(f"notebooks/{nb}.html") for href in nav) for nb in LESSONS), nav
    # the results pages show every figure they cite, drawn with its data, and so do the lessons
    assert drawn["results"] >= 2 and all(n > 0 for n in traces["results"]), traces["results"]
    assert drawn["figure page"] >= 1 and all(n > 0 for n in traces["figure page"])  # its own page, offline
    # the MNIST study's page: its figures live
    assert drawn["study"] >= 5 and all(n > 0 for n in traces["study"]), traces["study"]
    lessons_with_figures = [nb for nb in LESSONS if drawn[nb] > 0]
    assert len(lessons_with_figures) >= 8 and all(all(n > 0 for n in traces[nb]) for nb in LESSONS), traces
    assert len(spread) >= 8 and all(s > 5 for s in spread.values()), spread
