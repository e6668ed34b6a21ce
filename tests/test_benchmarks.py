"""The study and benchmark scripts run end to end on a tiny budget (their numbers are not checked here)."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bird10_study_tiny(tmp_path):
    study = _load("bird10_study")
    out = tmp_path / "bird10.json"
    assert study.main(["--steps", "2", "--eval-every", "2", "--seeds", "0", "--settings", "1,0;0.7,0.3",
                       "--recordings-per-species", "3", "--labelled-batch", "8", "--unlabelled-batch", "8",
                       "--data-root", str(tmp_path / "no-real-data"), "--out", str(out),
                       "--figure", str(tmp_path / "curves.html")]) == 0
    result = json.loads(out.read_text())
    assert result["dataset"] == "synthetic"
    assert [(s["alpha"], s["beta"]) for s in result["settings"]] == [(1.0, 0.0), (0.7, 0.3)]
    assert all(len(s[k]) == 1 for s in result["settings"] for k in ("train", "valid", "test"))
    assert {"command", "commit", "hardware", "date"} <= set(result)
    assert "synthetic" in (tmp_path / "bird10.md").read_text()
    assert (tmp_path / "curves.html").stat().st_size > 0


def test_step_cost_tiny(tmp_path):
    bench = _load("step_cost")
    out = tmp_path / "cost.json"
    assert bench.main(["--models", "smallcnn-mean", "--batch", "6", "--labelled", "2", "--warmup", "1",
                       "--repeat", "2", "--out", str(out)]) == 0
    row = json.loads(out.read_text())["rows"][0]
    assert row["model"] == "smallcnn-mean" and row["ratio_inverse-autograd"] > 0
    assert set(row["runs"]) == {"supervised", "inverse-autograd", "inverse-func"}
