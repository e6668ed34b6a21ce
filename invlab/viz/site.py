"""Figures as parts of a page that loads plotly.js once, from where the page says (the
documentation site's own copy: no network, no 4.7 MB per figure): :func:`figure_div` for a
figure, :func:`figure_file_divs` and :func:`figure_file_page` for a figure file
(:func:`invlab.io.save_figures`, as ``docs/figures/`` holds them). The documentation build
(``docs/site``) and ``benchmarks/static_figures.py`` draw with them."""

from __future__ import annotations

import os
import re


def building_site() -> bool:
    """True in a kernel that the documentation build started (``bin/docs`` sets
    ``INVLAB_DOCS_BUILD=1``): lessons 8 and 9 train for longer there, so that their pages show
    trained networks. A flag to read; the build's rendering hooks live in ``docs/site``."""
    return os.environ.get("INVLAB_DOCS_BUILD") == "1"


def _on_load(js: str) -> str:
    """``js`` run once the page has loaded: the site's theme loads plotly.js at the end of the
    page, after the lessons' outputs and the Results page's figures."""
    return f'<script>window.addEventListener("DOMContentLoaded", function () {{{js}}});</script>'


def figure_div(fig, validate: bool = True, default_height: str | None = None) -> str:
    """A figure as a ``<div>`` drawn once the page has loaded: the site's theme loads plotly.js
    at the end of the page, after the lessons' outputs."""
    import plotly.io as pio

    html = pio.to_html(fig, include_plotlyjs=False, full_html=False, validate=validate,
                       default_height=default_height or "100%")  # one <div> and one <script>
    script = re.search(r"<script[^>]*>(.*)</script>", html, re.S)
    if script is None or html.count("</script>") != 1:
        raise ValueError("plotly's figure HTML changed shape: expected one <script> element")
    return html[:script.start()] + _on_load(script.group(1)) + html[script.end():]


def embedded_figures(page: str) -> str:
    """The figures of a full plotly HTML page (as ``docs/figures/`` holds them, plotly.js from
    its CDN) as ``<div>`` elements for a page of the site, drawn once it has loaded by the site's
    own plotly.js: the Results page shows its figures live, with no network."""
    plots = [m for m in re.finditer(r"<script[^>]*>(.*?)</script>", page, re.S) if "Plotly.newPlot" in m.group(1)]
    divs = list(re.finditer(r'<div id="([^"]+)" class="plotly-graph-div" style="([^"]*)"></div>', page))
    if not plots or len(plots) != len(divs):
        raise ValueError("not a page of plotly figures: expected one plotly-graph-div per Plotly.newPlot script")
    out = []
    for div, plot in zip(divs, plots):
        style = div.group(2)
        if "height:100%" in style.replace(" ", ""):  # a full page sizes the figure by its wrapper
            wrapper = re.findall(r'<div style="(height:\s*\d+px[^"]*)">', page[:div.start()])
            style = wrapper[-1] if wrapper else "height:460px; width:100%;"
        out.append(
            f'<div id="{div.group(1)}" class="plotly-graph-div" style="{style}"></div>' + _on_load(plot.group(1))
        )
    return "".join(out)


def figure_file_divs(path) -> str:
    """The figures of a figure file (:func:`invlab.io.save_figures`, as ``docs/figures/`` holds
    them) as ``<div>`` elements for a page of the site, drawn by the site's own plotly.js once
    it has loaded: the results pages show their figures live, with no network."""
    from invlab.io import load_figures

    return "".join(figure_div(f, validate=False, default_height=_height(f)) for f in load_figures(path, as_dict=True))


def figure_file_page(path, plotly_js: str, title: str | None = None) -> str:
    """A figure file as a page of its own, plotly.js loaded from ``plotly_js`` (the site's copy,
    a relative address): no network."""
    from invlab.io import load_figures

    body = "".join(figure_div(f, validate=False, default_height=_height(f)) for f in load_figures(path, as_dict=True))
    name = title or os.path.basename(str(path))
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{name}</title>'
            '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
            f'<body style="margin:0">{body}<script charset="utf-8" src="{plotly_js}"></script></body></html>')


def _height(fig: dict) -> str:
    """The figure's own height, else plotly's default of a figure on a page."""
    height = (fig.get("layout") or {}).get("height")
    return f"{int(height)}px" if height else "460px"


def page_on_site(page: str, plotly_js: str) -> str:
    """A full plotly HTML page with plotly.js loaded from ``plotly_js`` (the site's copy, a
    relative address) instead of its CDN."""
    page, n = re.subn(r'<script[^>]*src="https://cdn\.plot\.ly/[^"]*"[^>]*></script>',
                      f'<script charset="utf-8" src="{plotly_js}"></script>', page)
    if n != 1:
        raise ValueError(f"expected one plotly.js <script> from the CDN, found {n}")
    return page
