"""Views: plots and figures (`plots`), the (alpha, beta) slider trainer (`widgets`), the drawing
explorer (`explorer`) and per-class explanations (`explain`); `site`: how they render on the
documentation site."""

from invlab.viz import site as _site

if _site.building_site():  # a kernel executing a lesson for bin/docs
    _site.install()
