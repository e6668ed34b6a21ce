"""invlab.training.provenance: every result says where it came from (command, commit, versions,
machine), with no machine path."""

import json
from pathlib import Path

import torch

from invlab.cli import main

TRAIN = ["train", "--steps", "2", "--eval-every", "2", "--val-size", "200", "--labelled-batch", "10",
         "--unlabelled-batch", "10", "--no-progress"]

# 8 -----------------------------------------------------------------------------------
def test_metrics_carry_provenance(fake_mnist_root, tmp_path):
    out = tmp_path / "run"
    assert main([*TRAIN, "--out", str(out)]) == 0
    prov = json.loads((out / "metrics.json").read_text())["provenance"]
    assert set(prov) >= {"command", "commit", "dirty", "invlab", "torch", "python", "threads", "device",
                         "cpu_capability", "date"}
    assert prov["torch"] == torch.__version__ and prov["threads"] == torch.get_num_threads()
    assert prov["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert prov["invlab"] == "0.1.0" and "cores" in prov["device"] and prov["date"][:2] == "20"


def test_provenance_names_the_copied_commit(monkeypatch):
    """Code copied to another machine (a GPU node) says which commit it is, whatever .git it carries."""
    from invlab.training.provenance import provenance

    monkeypatch.setenv("INVLAB_COMMIT", "abc1234")
    assert (provenance(["x"])["commit"], provenance(["x"])["dirty"]) == ("abc1234", None)
    monkeypatch.delenv("INVLAB_COMMIT")
    assert provenance(["x"])["commit"] != "abc1234"


def test_provenance_commands_carry_no_machine_path():
    """`python -m benchmarks.NAME` puts the file's absolute path in argv[0]: recorded as typed."""
    from invlab.training.provenance import _REPO, provenance
    from invlab.viz.explain import runs_dir

    checkout = Path(__file__).resolve().parents[1]  # found from here, not from the module under test
    assert _REPO == checkout and runs_dir() == checkout / "runs"
    script = str(checkout / "benchmarks" / "speed" / "step_cost.py")
    assert provenance([script, "--part", "methods"])["command"] == "python -m benchmarks.speed.step_cost --part methods"
    assert provenance(["benchmarks/paper/table2.py", "--jobs", "2"])["command"] == "benchmarks/paper/table2.py --jobs 2"
    assert provenance(["/usr/bin/invlab", "train"])["command"] == "/usr/bin/invlab train"
    assert provenance([str(_REPO / ".venv" / "bin" / "invlab"), "train"])["command"] == "invlab train"
