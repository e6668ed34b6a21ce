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

project = "invlab"
author = "the invlab authors"
copyright = "invlab authors"
root_doc = "docs/site/index"
extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.mathjax", "sphinxarg.ext"]
include_patterns = ["docs/site/*.md", "docs/RESULTS.md", "notebooks/*.ipynb"]
exclude_patterns = ["docs/_build/**", ".venv/**"]
html_theme = "furo"
html_title = "invlab"
html_static_path = []
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
# Notebooks: executed with a cache (an unchanged notebook is not run again); a cell error fails
# the build. INVLAB_DOCS_EXECUTE=off builds the pages without running anything (a quick check).
nb_execution_mode = os.environ.get("INVLAB_DOCS_EXECUTE", "cache")
nb_execution_cache_path = os.path.join(os.path.dirname(__file__), "..", "_build", ".jupyter_cache")
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_merge_streams = True
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


def setup(app):
    app.connect("autodoc-process-docstring", _plain_maths)
