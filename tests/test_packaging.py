"""Packaging: ranges in pyproject.toml, exact builds in constraints.txt, and a complete
environment.yml for conda users."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"soundfile": "pysoundfile"}  # PyPI name -> conda-forge name, where they differ


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower()


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_library_dependencies_are_ranges_and_the_trio_is_pinned_in_constraints():
    deps = _pyproject()["dependencies"]
    assert not [d for d in deps if "==" in d], "exact pins belong in constraints.txt, not the library's dependencies"
    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    assert set(pins) == {"torch", "torchvision", "torchaudio", "onnx", "onnxscript", "onnxruntime"}
    assert "-c constraints.txt" in (ROOT / "bin" / "setup").read_text()


def test_environment_yml_lists_every_dependency():
    project = _pyproject()
    wanted = {_name(d) for d in project["dependencies"] + project["optional-dependencies"]["test"]
              + project["optional-dependencies"]["notebooks"] + project["optional-dependencies"]["export"]}
    listed = {_name(line.strip()[2:]) for line in (ROOT / "environment.yml").read_text().splitlines()
              if line.strip().startswith("- ")}
    missing = sorted(d for d in wanted if CONDA_NAMES.get(d, d) not in listed)
    assert not missing, f"environment.yml lacks {missing}"
    text = (ROOT / "environment.yml").read_text()
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            assert f"- {line}" in text, f"environment.yml must pin {line} as constraints.txt does"


def test_the_public_names_keep_working_after_the_regroup():
    """The names users import stay where they were: the package's layout is free to change under them."""
    import importlib

    import invlab
    from invlab import sweep
    from invlab.experiments import sweep as home

    assert sweep.__all__ and all(getattr(sweep, n) is getattr(home, n) for n in sweep.__all__)
    assert callable(sweep.create_runs) and callable(sweep.work) and callable(sweep.opened)
    assert all(callable(getattr(invlab, n)) for n in ("reconstruct", "templates", "SemiSupervisedLoss", "create_model"))
    assert callable(importlib.import_module("invlab.inverse").layer_reconstructions)
    train = importlib.import_module("invlab.train")
    for name in ("TrainConfig", "train", "Trainer", "RECOMMENDED", "load_model", "run_key"):
        assert hasattr(train, name), name
    assert train.Trainer.__module__ == "invlab.training.trainer"
    # the tree shows the groups: no module of the old flat layout is left at the top level
    top = {p.stem for p in Path(invlab.__file__).parent.glob("*.py")}
    assert top == {"__init__", "cli", "inverse", "regions", "export", "io", "losses", "methods", "train", "sweep"}
    assert (Path(invlab.__file__).parent / "transposed" / "rules.py").is_file()  # one rule per layer kind


def test_the_library_draws_and_reads_networks_without_importing_torchvision():
    """Importing torchvision loads torch._dynamo: about two seconds in every new process (a CLI call, a kernel).
    The transposed pass names torchvision's FrozenBatchNorm2d by path and the plots tile images themselves, so
    a process that neither loads a torchvision data set nor builds a torchvision network never pays it."""
    import subprocess
    import sys

    code = ("import sys, torch\n"
            "import invlab.cli, invlab.transposed, invlab.regions, invlab.export\n"
            "from invlab.viz.plots import image_rows, reconstruction_grid\n"
            "x = torch.rand(2, 1, 5, 5)\n"
            "image_rows({'a': x}); reconstruction_grid(x, x)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torchvision'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_a_process_that_only_opens_a_study_needs_no_torch(tmp_path):
    """``invlab.experiments.storage`` (sweeps' storage: Optuna, SQLite's locking) and the package's own
    ``__init__`` load no torch: a process that only feeds or reads a study starts in a fraction of a second
    (``tests/sweep_workers.py`` starts four such processes per test). ``invlab.reconstruct`` still works as
    before, loaded when first used."""
    import subprocess
    import sys

    code = ("import sys\n"
            "import invlab, invlab.experiments.storage as storage, optuna\n"
            f"with storage.opened('sqlite:///{tmp_path / 's.db'}') as st:\n"
            "    optuna.create_study(study_name='s', storage=st)\n"
            "print('torch' in sys.modules)\n"
            "from invlab import reconstruct, sweep\n"
            "print('torch' in sys.modules, sweep.opened is storage.opened, callable(reconstruct))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True", "True", "True"], out
