"""Figures as parts of a page that loads plotly.js once, from where the page says (the
documentation site's own copy: no network, no 4.7 MB per figure): :func:`figure_div` for a
figure, :func:`figure_file_divs` and :func:`figure_file_page` for a figure file
(:func:`invlab.io.save_figures`, as ``docs/figures/`` holds them). The documentation build
(``docs/site``) and ``docs/site/static_figures.py`` draw with them."""

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


def figure_file_divs(path) -> str:
    """The figures of a figure file (:func:`invlab.io.save_figures`, as ``docs/figures/`` holds
    them) as ``<div>`` elements for a page of the site, drawn by the site's own plotly.js once
    it has loaded: the results pages show their figures live, with no network."""
    from invlab.io import load_figures

    return "".join(figure_div(f, validate=False, default_height=_height(f)) for f in load_figures(path, as_dict=True))


def figure_file_page(path, plotly_js: str, title: str | None = None) -> str:
    """A figure file as a page of its own, plotly.js loaded from ``plotly_js`` (the site's copy,
    a relative address): no network."""
    body = figure_file_divs(path)
    name = title or os.path.basename(str(path))
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{name}</title>'
            '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
            f'<body style="margin:0">{body}<script charset="utf-8" src="{plotly_js}"></script></body></html>')


def _height(fig: dict) -> str:
    """The figure's own height, else plotly's default of a figure on a page."""
    height = (fig.get("layout") or {}).get("height")
    return f"{int(height)}px" if height else "460px"
