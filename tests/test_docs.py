"""The documentation site builds from the repository (``bin/docs``), here without running the
lessons (``INVLAB_DOCS_EXECUTE=off``): warnings fail it, the API and command-line pages are
generated from the code."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from invlab.io import load_figures

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("jupyterlab")]  # one site build, shared


def build_site(folder: Path) -> Path:
    """The site built into ``folder`` without running the lessons; its root."""
    pytest.importorskip("myst_nb")
    out = folder / "html"
    env = {**os.environ, "INVLAB_DOCS_EXECUTE": "off"}
    done = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-c", "docs/site", "-b", "html",
                           "-d", str(folder / "doctrees"), ".", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_the_site_builds_with_its_api_and_cli_pages_made_from_the_code(site):
    out = site
    api = (out / "docs" / "site" / "api.html").read_text()
    for name in ("invlab.reconstruct", "SemiSupervisedLoss", "TrainConfig", "vat_perturbation", "RunLock",
                 "make_pruner", "load_dataset", "load_model", "invlab.transposed.register", "invlab.regions.segment"):
        assert name in api, name
    cli = (out / "docs" / "site" / "cli.html").read_text()
    for flag in ("--checkpoint-every", "--pruner", "--startup-trials", "--vat-eps", "--resume"):
        assert flag in cli, flag
    lessons = (out / "docs" / "site" / "lessons.html").read_text()
    notebooks = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert all(f"{nb}.html" in lessons for nb in notebooks) and len(notebooks) == 12
    assert (out / "docs" / "RESULTS.html").exists() and (out / "docs" / "site" / "index.html").exists()
    # no page loads a script, a style sheet or an image from the network
    remote = re.compile(
        r"""<(?:script|img|iframe)[^>]*\bsrc=["']?(?:https?:)?//|<link[^>]*\bhref=["']?(?:https?:)?//"""
    )
    fetched = [p.relative_to(out) for p in out.rglob("*.html") if remote.search(p.read_text(errors="replace"))]
    assert not fetched, fetched


def test_the_api_pages_maths_is_rendered_not_typed(site):
    """The docstrings' formulas reach the API page as MathJax maths, each entry of the inverse,
    the losses and VAT with some; no formula is left as typed text (``(df/dx)^T``)."""
    api = (site / "docs" / "site" / "api.html").read_text()
    entries = re.split(r'<dt class="sig sig-object py" id="', api)[1:]
    maths = {e.split('"', 1)[0]: e.count('class="math') for e in entries}
    for name in ("invlab.reconstruct", "invlab.templates", "invlab.forward_inverse",
                 "invlab.inverse.layer_reconstructions", "invlab.SemiSupervisedLoss", "invlab.reconstruction_loss",
                 "invlab.entropy_loss", "invlab.losses.marginal_entropy", "invlab.losses.LayerwiseLoss",
                 "invlab.methods.vat_perturbation", "invlab.methods.vat_step"):
        assert maths.get(name, 0) > 0, (name, sorted(maths))
    assert '<div class="math' in api  # the losses' display equations
    text = re.sub(r"<[^>]+>", "", api)
    assert not re.search(r"d[fz]/d[xz]\)\^T|\^T f\(x\)", text), "a formula typed as text"
    assert "*x.shape[1:]" in text  # a shape in a Returns field, not cut at its colon


def test_the_results_pages_draw_every_figure_they_cite_with_the_sites_plotly(site):
    """On the site, the results pages' pictures become the interactive figures themselves, and
    each figure's own page loads plotly.js from the site, not its CDN."""
    out = site
    STUDIES, cited_figures = _static_figures("STUDIES", "cited_figures")

    figures, drawn = [], 0
    for study in sorted(STUDIES.glob("*.md")):
        cited = cited_figures(study.read_text())
        html = (out / study.relative_to(ROOT)).with_suffix(".html").read_text()
        assert html.count('class="invlab-figure"') == len(cited), study.name
        assert html.count('class="plotly-graph-div"') >= len(cited) and "cdn.plot.ly" not in html, study.name
        figures += cited
        drawn += len(cited)
    assert drawn == len(figures) >= 10
    for figure in figures:
        page = (out / figure.relative_to(ROOT)).with_suffix(".html").read_text()
        assert "cdn.plot.ly" not in page and "_static/plotly.min.js" in page, figure
        assert page.count('class="plotly-graph-div"') == len(load_figures(figure)), figure


def test_every_figure_the_results_pages_cite_has_a_picture_that_they_show():
    """The results' evidence is seen wherever it is read: each interactive figure a results page
    cites is a figure file (its data, no script) with a PNG beside it (python -m
    docs/site/static_figures.py), and the page shows that PNG."""
    STUDIES, cited_figures, studies_text = _static_figures("STUDIES", "cited_figures", "studies_text")

    assert len(cited_figures(studies_text())) >= 10
    for study in sorted(STUDIES.glob("*.md")):
        text = study.read_text()
        for figure in cited_figures(text):
            png = figure.with_suffix(".png")
            assert png.exists() and png.stat().st_size > 5_000, png
            assert f"](../../{png.relative_to(ROOT / 'docs').as_posix()})" in text, (study.name, png)
        assert load_figures(figure) and "<script" not in figure.read_text(), figure


def test_no_committed_file_loads_a_script_from_the_network():
    """The figures, pages and notebooks in the repository work offline: none names a script on
    another host (plotly.js from its CDN was the case: the site and static_figures draw with a
    local copy)."""
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    offenders = []
    for name in listed.stdout.splitlines():
        if name.endswith((".py", ".png", ".onnx", ".pt", ".gz")) or not (ROOT / name).is_file():
            continue  # code may name a CDN (save_figure_html's option); binaries hold no script tags
        text = (ROOT / name).read_text(errors="ignore")
        if re.search(r"<script[^>]*\bsrc=[\"']?(https?:)?//", text) or "cdn.plot.ly" in text:
            offenders.append(name)
    assert not offenders


def test_on_the_site_widgets_become_their_figures_and_a_line_on_the_live_version(tmp_path):
    """In a kernel started as the site's build starts those that run the lessons (IPYTHONDIR
    from docs/site/static_render.py's kernel_profile): plotly figures are plain divs (the site
    loads plotly.js once), a box of controls and figures shows its figures after a line saying
    what the live notebook adds. A kernel started otherwise renders as JupyterLab does."""
    import runpy

    from jupyter_client.manager import start_new_kernel

    code = """
import ipywidgets as W, plotly.graph_objects as go, plotly.io as pio
fig = go.FigureWidget(go.Scatter(x=[1, 2], y=[3, 4]))
box = W.VBox([W.FloatSlider(description="alpha"), fig, W.HTML("press Train")])
html = box._repr_mimebundle_().get("text/html", "")
bundle = pio.renderers[pio.renderers.default].to_mimebundle(go.Figure().to_dict())
print(pio.renderers.default, "Interactive controls here in the live notebook" in html,
      html.count("plotly-graph-div") == 1 and "press Train" in html and "alpha" not in html,
      "plotly-graph-div" in bundle.get("text/html", "") and "cdn.plot.ly" not in bundle.get("text/html", ""))
"""
    profile = runpy.run_path(str(ROOT / "docs" / "site" / "static_render.py"))["kernel_profile"]
    printed = {}
    for name, env in (("site", {"IPYTHONDIR": profile(str(tmp_path / "ipython"))}),
                      ("plain", {"IPYTHONDIR": str(tmp_path / "plain")})):
        manager, client = start_new_kernel(kernel_name="python3", env={**os.environ, **env})
        try:
            out = []
            client.execute_interactive(code, timeout=120, output_hook=lambda msg, out=out: out.append(
                msg["content"].get("text", "")) if msg["msg_type"] == "stream" else None)
            printed[name] = "".join(out).split()
        finally:
            client.stop_channels()
            manager.shutdown_kernel(now=True)
    assert printed["site"] == ["invlab_site", "True", "True", "True"], printed
    assert printed["plain"][:2] != ["invlab_site", "True"], printed


def test_each_lesson_page_opens_with_its_title_and_introduction(site):
    """The ``parameters`` cell follows the lesson's title and opening paragraphs on the site."""
    for page in sorted((site / "notebooks").glob("*.html")):
        html = page.read_text()
        title, cell = html.find("<h1"), html.find("tag_parameters")
        assert 0 <= title < cell, page.name
        assert html.count("<p>", title, cell) >= 1, page.name  # at least a paragraph of introduction first



def test_the_library_page_draws_the_import_contracts_layers():
    """One layer diagram: the guide's, equal to the import-linter contract that CI checks (bottom first)."""
    import re

    text = (ROOT / "pyproject.toml").read_text()  # the first contract's layers (tomllib is 3.11's; invlab runs on 3.10)
    block = text.split('name = "invlab\'s layers"', 1)[1].split("layers = [", 1)[1].split("]", 1)[0]
    layers = re.findall(r'"([^"]+)"', block)
    want = " → ".join("/".join(p.strip().removeprefix("invlab.") for p in re.split(r"[|:]", layer))
                      for layer in reversed(layers))
    page = (ROOT / "docs" / "site" / "guide" / "library.md").read_text()
    drawn = page.split("<!-- layers:begin", 1)[1].split("-->", 1)[1].split("<!-- layers:end -->", 1)[0].strip()
    assert drawn == want
    assert "README" not in (ROOT / "invlab" / "__init__.py").read_text().split('"""')[1]


def _static_figures(*names):
    """Names of the site build's figure tool, docs/site/static_figures.py (tests read the site build)."""
    import runpy

    module = runpy.run_path(str(ROOT / "docs" / "site" / "static_figures.py"))
    return tuple(module[n] for n in names)
