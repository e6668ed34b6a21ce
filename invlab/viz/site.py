"""How the lessons render on the documentation site (``bin/docs`` sets ``INVLAB_DOCS_BUILD=1``
for the kernels that execute them).

* plotly figures are written as ``<div>`` elements without plotly.js (the site loads its own
  copy once for every page: no network, no 4.7 MB per figure);
* a ``FigureWidget`` is drawn as the same figure, as it stands when shown;
* other widgets (sliders, buttons, the drawing canvas) become one line saying what the live
  notebook adds: a static page cannot retrain or take a drawing.
"""

from __future__ import annotations

import os

LIVE_ONLY = ("<p class='invlab-live-only'><em>Interactive controls here in the live notebook "
             "(JupyterLab): sliders, buttons or a canvas that retrain or redraw the figures below.</em></p>")


def building_site() -> bool:
    return os.environ.get("INVLAB_DOCS_BUILD") == "1"


def install() -> None:
    """Make plotly and ipywidgets render as static HTML (see the module docstring)."""
    import ipywidgets
    import plotly.graph_objects as go
    import plotly.io as pio

    class SiteRenderer:
        def to_mimebundle(self, fig_dict):
            return {"text/html": pio.to_html(fig_dict, include_plotlyjs=False, full_html=False)}

    pio.renderers["invlab_site"] = SiteRenderer()
    pio.renderers.default = "invlab_site"

    def figure_html(self, include=None, exclude=None, **kwargs):
        return {"text/html": pio.to_html(self, include_plotlyjs=False, full_html=False)}

    go.FigureWidget._repr_mimebundle_ = figure_html
    ipywidgets.Widget._repr_mimebundle_ = lambda self, include=None, exclude=None, **kwargs: {"text/html": LIVE_ONLY}
