"""Static pictures of the interactive figures that the results pages (``docs/site/results/*.md``)
cite, so that they show their evidence wherever they are read (a Markdown viewer, a code-hosting
site, the documentation site).

Each cited figure file ``docs/figures/**/NAME.json`` (:func:`invlab.io.save_figures`: the
figures' data and layout) is drawn by plotly.js in headless Chromium (Debian's, driven by
Playwright; plotly.js from the installed plotly package, so no network is needed) and saved as
``NAME.png`` beside it; the page shows the PNG, and the site draws the figure itself.

    python docs/site/static_figures.py            # every cited figure
    python docs/site/static_figures.py --check    # exit 1 if a cited figure has no PNG

Part of the site's build (beside ``explore_build.py``; Chromium through ``site_browser.py``).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STUDIES = ROOT / "docs" / "site" / "results"


def studies_text() -> str:
    """The results pages, one after the other: what the figures are cited from."""
    return "".join(p.read_text(encoding="utf-8") for p in sorted(STUDIES.glob("*.md")))


def cited_figures(text: str) -> list[Path]:
    """The figure files (``docs/figures/...json``) a Markdown text names, each once, in order."""
    names = re.findall(r"(?:docs/)?(figures/[A-Za-z0-9_./-]+?\.json)", text)
    return [ROOT / "docs" / n for n in dict.fromkeys(names) if (ROOT / "docs" / n).exists()]


def render(figures: list[Path], chromium: str) -> list[Path]:
    """Screenshot each figure file's figures to ``.png`` beside it."""
    import plotly
    from playwright.sync_api import sync_playwright

    from invlab.io import atomic_write
    from invlab.viz.site import figure_file_page

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from site_browser import CHROMIUM_ARGS  # the site's browser driver: one place for Chromium's flags

    plotly_js = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").as_uri()
    written = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort())
        for figure in figures:
            html = Path(tmp) / "figure.html"
            html.write_text(figure_file_page(figure, plotly_js), encoding="utf-8")
            page.goto(html.as_uri())
            page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
            page.wait_for_timeout(300)  # let plotly finish its layout
            plots = page.locator(".js-plotly-plot")
            png = (plots.first if plots.count() == 1 else page.locator("body")).screenshot()
            written.append(atomic_write(figure.with_suffix(".png"), lambda path, data=png: path.write_bytes(data)))
            print(f"{figure.relative_to(ROOT)} -> {figure.with_suffix('.png').name} ({len(png) // 1024} KiB)",
                  flush=True)
        browser.close()
    return written


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="only check that every cited figure has its PNG")
    p.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    args = p.parse_args(argv)
    figures = cited_figures(studies_text())
    if args.check:
        missing = [f for f in figures if not f.with_suffix(".png").exists()]
        for f in missing:
            print(f"no picture of {f.relative_to(ROOT)}: run python docs/site/static_figures.py", file=sys.stderr)
        return 1 if missing else 0
    if not args.chromium:
        raise SystemExit("Chromium is needed (Debian: apt-get install chromium; bin/setup installs it)")
    render(figures, args.chromium)
    return 0


if __name__ == "__main__":
    sys.exit(main())
