"""Notebooks stay clean in git: committed without outputs, and running one in JupyterLab
cannot dirty the checkout (the nbstripout filter of .gitattributes, set up by bin/setup)."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _git(*args, **kw):
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, **kw)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_has_no_outputs(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert not [i for i, c in enumerate(code) if c.get("outputs")], "outputs committed: strip them (bin/setup)"
    assert all(c.get("execution_count") is None for c in code)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert code[0]["metadata"].get("tags") == ["parameters"], "the first code cell must be the parameters cell"


def test_every_notebook_is_in_the_readme_table():
    readme = (ROOT / "README.md").read_text()
    missing = [p.stem for p in NOTEBOOKS if f"`{p.stem}`" not in readme]
    assert not missing, f"README's notebook table lacks {missing}"


def test_git_strips_notebook_outputs_on_add(tmp_path):
    if shutil.which("git") is None or _git("rev-parse", "--git-dir").returncode:
        pytest.skip("not a git checkout")
    attr = _git("check-attr", "filter", "--", "notebooks/01_spline_view_and_inverse.ipynb").stdout
    assert attr.strip().endswith("nbstripout"), ".gitattributes must route notebooks through nbstripout"
    clean = _git("config", "--get", "filter.nbstripout.clean").stdout.strip()
    assert clean, "the nbstripout filter is not configured: run bin/setup"
    nb = json.loads(NOTEBOOKS[0].read_text())
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code")
    cell["execution_count"] = 3
    cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["a 2 300-line output\n"]}]
    out = subprocess.run(clean, shell=True, input=json.dumps(nb), capture_output=True, text=True, cwd=ROOT, check=True)
    stripped = json.loads(out.stdout)
    assert all(not c.get("outputs") for c in stripped["cells"] if c["cell_type"] == "code")
    assert [c["source"] for c in stripped["cells"]] == [c["source"] for c in nb["cells"]]


def test_a_fresh_clone_is_clean_after_the_filter_is_set_up(tmp_path):
    """Notebooks are committed exactly as nbstripout writes them: setting up the filter
    (bin/setup) leaves a fresh clone's `git status` empty.

    Checked with the configured clean command's own ``--verify`` (nbstripout's check that
    stripping would change no file) on a fresh clone's notebooks: one process for all of
    them, where `git add --renormalize` starts the filter once per notebook (seconds
    against half a minute). That the filter is wired into git is the test above."""
    if shutil.which("git") is None or _git("rev-parse", "--git-dir").returncode:
        pytest.skip("not a git checkout")
    clean = _git("config", "--get", "filter.nbstripout.clean").stdout.strip()
    if not clean:
        pytest.skip("the nbstripout filter is not configured: run bin/setup")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    notebooks = sorted(p.relative_to(clone).as_posix() for p in (clone / "notebooks").glob("*.ipynb"))
    assert len(notebooks) == len(NOTEBOOKS)
    check = subprocess.run(f"{clean} --verify {' '.join(notebooks)}", shell=True, cwd=clone, capture_output=True,
                           text=True)
    assert check.returncode == 0, f"notebooks the filter rewrites (commit them as it writes them):\n{check.stdout}"
