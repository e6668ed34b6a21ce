"""Sphinx configuration of invlab's documentation site (``bin/docs``).

Sphinx with MyST-NB: the project's Markdown and notebooks are the pages, the API reference
comes from the docstrings (autodoc), the command-line reference from the parser itself
(sphinx-argparse). The source folder is the repository root (``sphinx-build -c docs/site .``),
so that the notebooks and ``docs/RESULTS.md`` are read where they live; only the pages named
in ``include_patterns`` are read. Notebooks run at build time through MyST-NB's cache
(jupyter-cache): an unchanged notebook is not run again.
"""

from __future__ import annotations

import os
import sys

project = "invlab"
author = "the invlab authors"
copyright = "invlab authors"
root_doc = "docs/site/index"
extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.mathjax", "sphinxarg.ext"]
include_patterns = ["docs/site/*.md", "docs/site/guide/*.md", "docs/site/results/*.md", "docs/RESULTS.md",
                    "notebooks/*.ipynb"]
exclude_patterns = ["docs/_build/**", ".venv/**", "docs/site/explore/**"]
html_theme = "furo"
html_title = "invlab"
# plotly.js once for the whole site (the lessons' figures are plain <div>s: invlab.viz.site)
_static = os.path.join(os.path.dirname(__file__), "..", "_build", "_static_plotly")
os.makedirs(_static, exist_ok=True)
import shutil  # noqa: E402

import plotly  # noqa: E402

shutil.copy(os.path.join(os.path.dirname(plotly.__file__), "package_data", "plotly.min.js"), _static)
# MathJax from the site too (bin/setup installs the npm package into the environment): the pages'
# maths render offline. The combined TeX component, its fonts and the TeX extensions it loads on demand.
_mathjax = os.path.join(sys.prefix, "share", "npm", "node_modules", "mathjax", "es5")
if not os.path.exists(os.path.join(_mathjax, "tex-mml-chtml.js")):
    raise RuntimeError(f"MathJax is missing ({_mathjax}): run bin/setup, which installs it with npm "
                       "(npm install --prefix .venv/share/npm mathjax@3.2.2)")
for _part in ("tex-mml-chtml.js", "output", "input", "a11y", "ui", "adaptors", "sre"):
    _src, _dst = os.path.join(_mathjax, _part), os.path.join(_static, "mathjax", _part)
    if os.path.isdir(_src):
        shutil.copytree(_src, _dst, dirs_exist_ok=True)
    else:
        os.makedirs(os.path.dirname(_dst), exist_ok=True)
        shutil.copy(_src, _dst)
mathjax_path = "mathjax/tex-mml-chtml.js"
# The Explore page's files (explore_build.py, beside this file: the site's build, not the library):
# onnxruntime-web's wasm build, the lesson networks as invlab export writes them, a sample of test
# images, the ONNX contract, the page's scripts. Made once per build.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from explore_build import build_assets  # noqa: E402

build_assets(os.path.join(_static, "explore"))
html_static_path = [_static]
html_js_files = ["plotly.min.js"]
# the site's front door: index.html at the top of the build, pointing at the home page
_extra = os.path.join(os.path.dirname(__file__), "..", "_build", "_extra")
os.makedirs(_extra, exist_ok=True)
with open(os.path.join(_extra, "index.html"), "w") as _f:
    _f.write('<!doctype html><meta charset="utf-8"><title>invlab</title>'
             '<meta http-equiv="refresh" content="0; url=docs/site/index.html">'
             '<a href="docs/site/index.html">invlab documentation</a>\n')
html_extra_path = [_extra]
os.environ["INVLAB_DOCS_BUILD"] = "1"  # lessons 8 and 9 read it (invlab.viz.site.building_site): a longer budget
# The kernels that run the lessons render figures and widgets for a static page (static_render.py, beside
# this file): they start from an IPython folder whose startup file installs it. Only they inherit it.
import runpy  # noqa: E402

os.environ["IPYTHONDIR"] = runpy.run_path(os.path.join(os.path.dirname(__file__), "static_render.py"))[
    "kernel_profile"](os.path.join(os.path.dirname(__file__), "..", "_build", "ipython"))
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
# Notebooks: executed with a cache (an unchanged notebook is not run again); a cell error fails
# the build. INVLAB_DOCS_EXECUTE=off builds the pages without running anything (a quick check).
nb_execution_mode = os.environ.get("INVLAB_DOCS_EXECUTE", "cache")
nb_execution_cache_path = os.path.join(os.path.dirname(__file__), "..", "_build", ".jupyter_cache")
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_merge_streams = True
# the lessons' widgets are drawn as their figures (static_render.py): no widget manager from a CDN
nb_ipywidgets_js = {}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
suppress_warnings = ["myst.header"]


def _plain_maths(app, what, name, obj, options, lines):
    """invlab's docstrings write their maths in plain text ("(B, *D)", "||x||^2"): keep ``*``
    and ``|`` literal (reStructuredText would read emphasis and substitutions), except a
    bullet's leading ``*``."""
    import re

    for i, line in enumerate(lines):
        bullet = re.match(r"^(\s*)\* ", line)
        head, rest = (line[: bullet.end()], line[bullet.end():]) if bullet else ("", line)
        parts = re.split(r"(``[^`]*``)", rest)  # leave inline code alone
        lines[i] = head + "".join(p if p.startswith("``") else p.replace("*", r"\*").replace("|", r"\|")
                                  for p in parts)


def _drop_widget_state(app, doctree):
    """The lessons' widgets are drawn as static figures (static_render.py), so the widget state
    that the executed notebook carries (megabytes of figure data per page, for a widget manager
    the site does not load) is not written into the page."""
    from myst_nb.sphinx_ import NbMetadataCollector

    data = NbMetadataCollector.get_doc_data(app.env).get(app.env.docname, {})
    data.get("js_files", {}).pop("ipywidgets_state", None)


_REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
_INTERACTIVE = r"\(interactive: (docs/figures/[A-Za-z0-9_./-]+\.json)\)"


def _cited_figures():
    """The interactive figures the results pages cite (their text; the pages' images are found
    in the doctree by :func:`_live_figures`)."""
    import glob
    import re

    text = "".join(open(p, encoding="utf-8").read()
                   for p in sorted(glob.glob(os.path.join(_REPO, "docs", "site", "results", "*.md"))))
    return sorted(set(re.findall(_INTERACTIVE, text)))


def _live_figures(app, doctree, docname):
    """On the results pages, each picture of an interactive figure ("(interactive:
    docs/figures/X.json)" in its alt text: the figure file, invlab.io.save_figures; the PNG is what
    a Markdown viewer shows) becomes the figure itself, drawn by the site's plotly.js, with a link
    to its page of its own."""
    import re

    from docutils import nodes
    from sphinx.util import logging

    from invlab.viz.site import figure_file_divs

    if not docname.startswith("docs/site/results/"):
        return  # the study pages
    for image in list(doctree.findall(nodes.image)):
        cited = re.search(_INTERACTIVE, image.get("alt", ""))
        if not cited:
            continue
        path = os.path.join(_REPO, cited.group(1))
        if not os.path.exists(path):
            logging.getLogger(__name__).warning(f"{docname}.md cites a missing figure: {cited.group(1)}",
                                                location=image)
            continue
        figure = figure_file_divs(path)
        page = cited.group(1)[:-len(".json")] + ".html"
        link = os.path.relpath(page, os.path.dirname(docname)).replace(os.sep, "/")
        raw = nodes.raw("", f'<div class="invlab-figure">{figure}<p class="invlab-figure-link">'
                        f'<a href="{link}">{os.path.basename(page)}</a> (the figure on a page of its own)</p></div>',
                        format="html")
        parent = image.parent
        if isinstance(parent, nodes.paragraph) and len(parent.children) == 1:
            parent.replace_self(raw)
        else:
            image.replace_self(raw)


def _figure_pages(app, exception):
    """Each cited figure file on a page of its own (docs/figures/X.html on the site), drawn by
    the site's plotly.js: no network."""
    if exception is not None or app.builder.format != "html":
        return
    from invlab.io import atomic_write
    from invlab.viz.site import figure_file_page

    for name in _cited_figures():
        src = os.path.join(_REPO, name)
        dst = os.path.join(app.outdir, name[:-len(".json")] + ".html")
        if not os.path.exists(src):
            continue  # warned by _live_figures
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        plotly_js = os.path.relpath(os.path.join(app.outdir, "_static", "plotly.min.js"), os.path.dirname(dst))
        page = figure_file_page(src, plotly_js.replace(os.sep, "/"), title=os.path.basename(dst))
        atomic_write(dst, lambda p, page=page: p.write_text(page, encoding="utf-8"))


def _parameters_after_introduction(app, doctree):
    """A lesson opens with its title and what the reader will see: its ``parameters`` cell (the
    notebook's first, the knobs nbmake and the tests turn) moves below the introduction: the
    first section's opening paragraphs and lists."""
    from docutils import nodes

    if not app.env.docname.startswith("notebooks/"):
        return
    cells = [n for n in doctree.findall(nodes.container) if "tag_parameters" in n.get("classes", [])]
    sections = list(doctree.findall(nodes.section))
    if not cells or not sections:
        return
    cell, section = cells[0], sections[0]
    cell.parent.remove(cell)
    intro = 0
    for i, child in enumerate(section.children):
        if isinstance(child, (nodes.title, nodes.paragraph, nodes.bullet_list, nodes.enumerated_list,
                              nodes.math_block, nodes.target)):
            intro = i + 1
        else:
            break
    cell["classes"].append("invlab-parameters")
    section.insert(intro, cell)


def setup(app):
    app.connect("doctree-read", _parameters_after_introduction)
    app.connect("autodoc-process-docstring", _plain_maths)
    app.connect("doctree-read", _drop_widget_state)
    app.connect("doctree-resolved", _live_figures)
    app.connect("build-finished", _figure_pages)
