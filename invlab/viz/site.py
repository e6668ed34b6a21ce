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


def figure_div(fig) -> str:
    """A figure as a ``<div>`` drawn once the page has loaded: the site's theme loads plotly.js
    at the end of the page, after the lessons' outputs."""
    import plotly.io as pio

    html = pio.to_html(fig, include_plotlyjs=False, full_html=False)  # one <div> and one <script>
    opening = re.search(r"<script[^>]*>", html)
    if opening is None or html.count("</script>") != 1:
        raise ValueError("plotly's figure HTML changed shape: expected one <script> element")
    return (html[:opening.end()] + 'window.addEventListener("DOMContentLoaded", function () {'
            + html[opening.end():].replace("</script>", "});</script>"))


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
