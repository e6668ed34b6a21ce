"""How the lessons render on the documentation site (``bin/docs`` sets ``INVLAB_DOCS_BUILD=1``
for the kernels that execute them).

* plotly figures are written as ``<div>`` elements without plotly.js (the site loads its own
  copy once for every page: no network, no 4.7 MB per figure);
* a ``FigureWidget`` is drawn as the same figure, as it stands when shown;
* other widgets (sliders, buttons, the drawing canvas) become one line saying what the live
  notebook adds (a static page cannot retrain or take a drawing), followed by the figures and
  text they hold, as they stand when shown.
"""

from __future__ import annotations

import os
import re

LIVE_ONLY = ("<p class='invlab-live-only'><em>Interactive controls here in the live notebook "
             "(JupyterLab): sliders, buttons or a canvas that retrain or redraw the figures below.</em></p>")


def building_site() -> bool:
    return os.environ.get("INVLAB_DOCS_BUILD") == "1"


def _on_load(js: str) -> str:
    """``js`` run once the page has loaded: the site's theme loads plotly.js at the end of the
    page, after the lessons' outputs and the Results page's figures."""
    return f'<script>window.addEventListener("DOMContentLoaded", function () {{{js}}});</script>'


def figure_div(fig) -> str:
    """A figure as a ``<div>`` drawn once the page has loaded: the site's theme loads plotly.js
    at the end of the page, after the lessons' outputs."""
    import plotly.io as pio

    html = pio.to_html(fig, include_plotlyjs=False, full_html=False)  # one <div> and one <script>
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


def page_on_site(page: str, plotly_js: str) -> str:
    """A full plotly HTML page with plotly.js loaded from ``plotly_js`` (the site's copy, a
    relative address) instead of its CDN."""
    page, n = re.subn(r'<script[^>]*src="https://cdn\.plot\.ly/[^"]*"[^>]*></script>',
                      f'<script charset="utf-8" src="{plotly_js}"></script>', page)
    if n != 1:
        raise ValueError(f"expected one plotly.js <script> from the CDN, found {n}")
    return page


def install() -> None:
    """Make plotly and ipywidgets render as static HTML (see the module docstring)."""
    import ipywidgets
    import plotly.graph_objects as go
    import plotly.io as pio
    from plotly.io.base_renderers import MimetypeRenderer

    class SiteRenderer(MimetypeRenderer):
        def to_mimebundle(self, fig_dict):
            return {"text/html": figure_div(fig_dict)}

    pio.renderers["invlab_site"] = SiteRenderer()
    pio.renderers.default = "invlab_site"

    def html(widget) -> str:
        """A widget as a page can show it: its figures and text, its controls left out."""
        if isinstance(widget, go.FigureWidget):
            return figure_div(widget)
        if isinstance(widget, ipywidgets.Box):
            return "".join(html(child) for child in widget.children)
        if isinstance(widget, (ipywidgets.HTML, ipywidgets.Label)):
            return f"<div>{widget.value}</div>"
        return ""

    go.FigureWidget._repr_mimebundle_ = lambda self, include=None, exclude=None, **kw: {"text/html": html(self)}
    ipywidgets.Widget._repr_mimebundle_ = lambda self, include=None, exclude=None, **kw: {
        "text/html": LIVE_ONLY + html(self)}
