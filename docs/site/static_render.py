"""How the lessons render on the documentation site, installed in the kernels that execute
them for ``bin/docs`` (by :func:`kernel_profile`, which ``conf.py`` calls; ``invlab`` itself
installs nothing for the site):

* plotly figures are written as ``<div>`` elements without plotly.js (the site loads its own
  copy once for every page: no network, no 4.7 MB per figure; :func:`invlab.viz.site.figure_div`);
* a ``FigureWidget`` is drawn as the same figure, as it stands when shown;
* other widgets (sliders, buttons, the drawing canvas) become one line saying what the live
  notebook adds (a static page cannot retrain or take a drawing), followed by the figures and
  text they hold, as they stand when shown.
"""

from __future__ import annotations

import os

from invlab.io import atomic_write

LIVE_ONLY = ("<p class='invlab-live-only'><em>Interactive controls here in the live notebook "
             "(JupyterLab): sliders, buttons or a canvas that retrain or redraw the figures below.</em></p>")


def kernel_profile(ipython_dir: str) -> str:
    """An IPython folder (``IPYTHONDIR``) whose startup file calls :func:`install` from this
    file: the kernels that run the lessons for the site start with it, and nothing else does."""
    startup = os.path.join(ipython_dir, "profile_default", "startup")
    os.makedirs(startup, exist_ok=True)
    here = os.path.abspath(__file__)
    code = ("import runpy as _runpy\n"
            f"_runpy.run_path({here!r})['install']()\n"
            "del _runpy\n")
    atomic_write(os.path.join(startup, "00-invlab-site.py"), lambda p: p.write_text(code, encoding="utf-8"))
    return ipython_dir


def install() -> None:
    """Make plotly and ipywidgets render as static HTML (see the module docstring)."""
    import ipywidgets
    import plotly.graph_objects as go
    import plotly.io as pio
    from plotly.io.base_renderers import MimetypeRenderer

    from invlab.viz.site import figure_div

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
