"""The documentation site builds from the repository (``bin/docs``), here without running the
lessons (``INVLAB_DOCS_EXECUTE=off``): warnings fail it, the API and command-line pages are
generated from the code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


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


def test_the_site_builds_with_its_api_and_cli_pages_made_from_the_code(tmp_path):
    out = build_site(tmp_path)
    api = (out / "docs" / "site" / "api.html").read_text()
    for name in ("invlab.reconstruct", "SemiSupervisedLoss", "TrainConfig", "vat_perturbation", "RunLock",
                 "make_pruner", "load_dataset", "load_model"):
        assert name in api, name
    cli = (out / "docs" / "site" / "cli.html").read_text()
    for flag in ("--checkpoint-every", "--pruner", "--startup-trials", "--vat-eps", "--resume"):
        assert flag in cli, flag
    lessons = (out / "docs" / "site" / "lessons.html").read_text()
    notebooks = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert all(f"{nb}.html" in lessons for nb in notebooks) and len(notebooks) == 10
    assert (out / "docs" / "RESULTS.html").exists() and (out / "docs" / "site" / "index.html").exists()


def test_every_figure_results_cites_has_a_picture_that_results_shows():
    """RESULTS.md's evidence is seen wherever it is read: each interactive figure it cites has a
    PNG beside it (python -m benchmarks.static_figures) and RESULTS shows that PNG."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.static_figures import RESULTS, cited_figures

    text = RESULTS.read_text()
    figures = cited_figures(text)
    assert len(figures) >= 10
    for html in figures:
        png = html.with_suffix(".png")
        assert png.exists() and png.stat().st_size > 5_000, png
        assert f"]({png.relative_to(ROOT / 'docs').as_posix()})" in text, png
