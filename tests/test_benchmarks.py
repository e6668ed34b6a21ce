"""The study and benchmark scripts run end to end on a tiny budget (their numbers are not checked here)."""

import importlib
import json
import re
import statistics
from pathlib import Path

import pytest

from invlab.io import load_figures

ROOT = Path(__file__).resolve().parents[1]


def _load(name):
    """A benchmark script as the module ``benchmarks.<name>`` (run as ``python -m benchmarks.<name>``)."""
    return importlib.import_module(f"benchmarks.{name}")


def test_bird10_study_tiny(tmp_path):
    study = _load("paper.bird10_study")
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
    page = (tmp_path / "curves.html").read_text()  # two figures on a page that opens offline
    assert page.count('class="plotly-graph-div"') == 2 and (tmp_path / "plotly.min.js").exists()


def test_step_cost_tiny(tmp_path, capsys):
    """The interleaved timing end to end; peak memory (one subprocess per mode in the benchmark,
    each paying torch's import) through the per-mode entry point those subprocesses run."""
    bench = _load("speed.step_cost")
    out = tmp_path / "cost.json"
    assert bench.main(["--models", "smallcnn-mean", "--batch", "6", "--labelled", "2", "--warmup", "1",
                       "--repeat", "3", "--threads", "1", "--no-memory", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    row = result["rows"][0]
    assert row["model"] == "smallcnn-mean" and row["ratio_inverse-autograd"] > 0 and row["speedup_vs_before"] > 0
    assert set(row["runs"]) == {
        "supervised",
        "inverse-autograd",
        "inverse-func",
        "inverse-before",
        "inverse-transposed",
    }
    for run in row["runs"].values():
        assert len(run["times_s"]) == 3 and run["q1_s"] <= run["median_s"] <= run["q3_s"]
        assert "peak_memory_mb" not in run
    assert (
        result["interleaved"]
        and result["threads"] == 1
        and "steps/s before → after" in (tmp_path / "cost.md").read_text()
    )
    assert "not measured" in (tmp_path / "cost.md").read_text()
    capsys.readouterr()
    assert bench.main(["--single", "smallcnn-mean", "inverse-autograd", "--batch", "6", "--labelled", "2"]) == 0
    memory = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert memory["peak_memory_mb"] > 0 and memory["memory_kind"] == "peak RSS"


def test_table2_reproduction_tiny(tmp_path):
    """Every part runs, writes the contracted JSON fields, and a second call reuses the cached runs."""
    table2 = _load("paper.table2")
    args = ["--models", "smallcnn-mean", "--seeds", "0", "--steps", "2", "--eval-every", "1", "--dataset", "synthetic",
            "--val-size", "50", "--grid-seeds", "0", "--grid-steps", "1", "--grid-eval-every", "1",
            "--grid-alphas", "0.7", "--grid-betas", "0.2", "0.5",
            "--labelled-batch", "4", "--unlabelled-batch", "4", "--device", "cpu",
            "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "table2.json"),
            "--grid-out", str(tmp_path / "grid.json"), "--figures", str(tmp_path / "fig")]
    assert table2.main(args + ["--parts", "table2", "ablations", "grid"]) == 0
    out = json.loads((tmp_path / "table2.json").read_text())
    assert {"models", "command", "commit", "date"} <= set(out)
    assert set(out["models"]) == {
        "smallcnn-mean",
        "smallcnn-mean/supervised-50",
        "smallcnn-mean/entropy-only",
        "smallcnn-mean/reconstruction-only",
    }
    main = out["models"]["smallcnn-mean"]
    assert (main["alpha"], main["beta"], main["steps"], main["paper"]) == (0.7, 0.2, 2, 99.07)
    assert len(main["test_accuracies"]) == 1 and {"mean", "std", "wall_time_s", "hardware"} <= set(main)
    assert (
        out["models"]["smallcnn-mean/entropy-only"]["beta"],
        out["models"]["smallcnn-mean/reconstruction-only"]["beta"],
    ) == (0.0, 1.0)
    grid = json.loads((tmp_path / "grid.json").read_text())
    assert set(grid["cells"]) == {"0.7,0.2", "0.7,0.5"} and grid["selected_on_validation"]["alpha"] == 0.7
    assert "Not run by this command" in (tmp_path / "table2.md").read_text()
    for name in ("table2_accuracy", "table2_curves", "ab_grid"):  # figure files: the site draws them
        assert len(load_figures(tmp_path / "fig" / f"{name}.json")) == 1
    folders = lambda: [d for d in (tmp_path / "runs").iterdir() if d.is_dir()]  # noqa: E731 - beside them: sweeps.db
    cached = len(folders())
    assert cached == 4 + 2
    before = (tmp_path / "table2.json").stat().st_mtime_ns
    assert table2.main(args + ["--parts", "ablations"]) == 0  # all cached: no new run files
    assert len(folders()) == cached
    assert (tmp_path / "table2.json").stat().st_mtime_ns != before


def test_table2_sup1000_takes_a_thousand_labels(tmp_path, fake_mnist_root):
    """Sup1000 needs 100 labelled images per class: the (fake) MNIST of 60 000, one evaluation."""
    table2 = _load("paper.table2")
    assert table2.main(["--models", "smallcnn-mean", "--seeds", "0", "--steps", "1", "--eval-every", "1",
                        "--val-size", "20", "--labelled-batch", "4", "--unlabelled-batch", "4", "--device", "cpu",
                        "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "t.json"), "--no-figures",
                        "--parts", "sup1000"]) == 0
    row = json.loads((tmp_path / "t.json").read_text())["models"]["smallcnn-mean/sup1000"]
    assert row["labels"] == 1000 and len(row["test_accuracies"]) == 1


def test_recipe_study_tiny_resumes_and_reports(tmp_path):
    """Two arms, one draw, a tiny budget: results, the test-selected comparison column, and a
    second call that reads every finished run back instead of training it again."""
    study = _load("recipe.recipe_study")
    args = ["--arms", "base-2k", "balance-2k", "--seeds", "0", "--steps", "2", "--eval-every", "1",
            "--dataset", "synthetic", "--val-size", "50", "--device", "cpu", "--runs-dir", str(tmp_path / "runs"),
            "--out", str(tmp_path / "study.json"), "--figure", str(tmp_path / "curves.html")]
    assert study.main(args) == 0
    out = json.loads((tmp_path / "study.json").read_text())
    arm = out["arms"]["balance-2k"]
    assert arm["config"]["balance"] == 1.0 and arm["steps"] == 2 and len(arm["test_accuracies"]) == 1
    assert arm["test_selected_accuracies"][0] >= arm["test_accuracies"][0]  # best test evaluation >= selected
    assert {"command", "commit", "date", "provenance"} <= set(out)
    assert "test-selected" in (tmp_path / "study.md").read_text()
    results = sorted((tmp_path / "runs").glob("*/result.json"))
    stamps = [p.stat().st_mtime_ns for p in results]
    assert len(results) == 2 and study.main(args) == 0
    assert [p.stat().st_mtime_ns for p in results] == stamps  # read back, not retrained


def test_confusion_tiny(tmp_path, fake_mnist_root):
    from invlab.train import TrainConfig, train

    train(TrainConfig(steps=2, eval_every=2, val_size=30, labelled_batch=10, unlabelled_batch=10),
          out_dir=tmp_path / "run", progress=False)
    bench = _load("paper.confusion")
    assert bench.main([str(tmp_path / "run"), "--out", str(tmp_path / "conf.json")]) == 0
    run = json.loads((tmp_path / "conf.json").read_text())["runs"][0]
    assert sum(map(sum, run["matrix"])) == 30 and len(run["most_confused"]) == 5


def test_table2_with_sweep_workers_gives_the_same_table(tmp_path):
    """--jobs 2 runs the plan as an invlab sweep study done by two worker processes: same numbers as --jobs 1."""
    table2 = _load("paper.table2")
    args = [
        "--parts",
        "table2",
        "--models",
        "smallcnn-mean",
        "smallcnn-max",
        "--seeds",
        "0",
        "1",
        "--steps",
        "3",
        "--eval-every",
        "3",
        "--dataset",
        "synthetic",
        "--val-size",
        "50",
        "--labelled-batch",
        "4",
        "--unlabelled-batch",
        "4",
        "--device",
        "cpu",
        "--no-figures",
    ]
    tables = {}
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}.json"
        assert table2.main(args + ["--jobs", str(jobs), "--runs-dir", str(tmp_path / f"runs{jobs}"),
                                   "--out", str(out)]) == 0
        tables[jobs] = {n: r["test_accuracies"] for n, r in json.loads(out.read_text())["models"].items()}
    assert tables[1] == tables[2] and set(tables[1]) == {"smallcnn-mean", "smallcnn-max"}
    assert (tmp_path / "runs2" / "sweeps.db").exists()


def test_extensions_tiny(tmp_path, fake_mnist_root):
    """Every part of the extensions benchmark runs and writes its contracted fields."""
    ext = _load("paper.extensions")
    out = tmp_path / "extensions.json"
    args = ["--seeds", "0", "--steps", "2", "--device", "cpu", "--dataset", "synthetic",
            "--runs-dir", str(tmp_path / "runs"), "--recipe-runs-dir", str(tmp_path / "none"), "--out", str(out),
            "--per-layer-figure", str(tmp_path / "pl.html"), "--ebgan-figure", str(tmp_path / "gan.png")]
    assert ext.main(args + ["--parts", "per_layer", "learned_weights", "clustering", "ebgan"]) == 0
    res = json.loads(out.read_text())
    for part in ("per_layer", "learned_weights"):
        assert len(res[part]["baseline"]) == len(res[part]["variant"]) == 1 and res[part]["command"]
    assert len(res["learned_weights"]["trajectory"][0]["alpha"]) >= 1
    assert set(res["clustering"]) >= {"cluster_accuracy", "nmi", "kmeans_accuracy"}
    assert res["ebgan"]["samples_scored"] == 1000 and len(res["ebgan"]["class_histogram"]) == 10
    assert (tmp_path / "pl.html").exists() and (tmp_path / "gan.png").exists()
    # a report of the finished runs keeps every part (the EBGAN is not rerun)
    assert ext.main(args + ["--parts", "per_layer", "learned_weights", "clustering", "ebgan", "--report-only"]) == 0
    again = json.loads(out.read_text())
    assert again["ebgan"] == res["ebgan"] and again["per_layer"]["variant"] == res["per_layer"]["variant"]


def test_restarts_tiny_reuses_the_plain_run(tmp_path):
    """Two draws, two restarts: restart 0 is the recipe study's run, read back; restart 1
    shares its labelled images and trains anew; the summary separates the two spreads."""
    study, restarts = _load("recipe.recipe_study"), _load("recipe.restarts")
    common = ["--seeds", "0", "1", "--steps", "2", "--eval-every", "1", "--dataset", "synthetic", "--val-size", "50",
              "--device", "cpu"]
    assert study.main(["--arms", "balance-maxabs-2k", *common, "--runs-dir", str(tmp_path / "recipe"),
                       "--out", str(tmp_path / "study.json"), "--figure", ""]) == 0
    plain = sorted((tmp_path / "recipe").glob("*/result.json"))
    stamps = [p.stat().st_mtime_ns for p in plain]
    args = [*common, "--restarts", "2", "--runs-dir", str(tmp_path / "restarts"), "--reuse", str(tmp_path / "recipe"),
            "--out", str(tmp_path / "restarts.json"), "--figure", str(tmp_path / "restarts.html")]
    assert restarts.main(args) == 0
    assert [p.stat().st_mtime_ns for p in plain] == stamps  # restart 0 read back, not retrained
    new = sorted((tmp_path / "restarts").glob("*/result.json"))
    assert len(new) == 2 and all("restart1" in p.parent.name for p in new)
    out = json.loads((tmp_path / "restarts.json").read_text())
    s = out["summary"]
    assert s["restarts_per_draw"] == {"0": 2, "1": 2} and s["validation_selected"]["n"] == 2
    for seed in ("0", "1"):
        d = s["draws"][seed]
        assert [x["train_seed"] for x in d["restarts"]] == [int(seed), int(seed) + 1000]
        best = max(d["restarts"], key=lambda x: x["val"])
        assert d["selected_test"] == best["test"] and d["best_test"] >= d["selected_test"]
    assert "test-selected" in (tmp_path / "restarts.md").read_text() and (tmp_path / "restarts.html").exists()


def test_generality_tiny_tunes_runs_and_reports(tmp_path):
    gen = _load("generality")
    common = [
        "--workers",
        "1",
        "--trials",
        "2",
        "--startup-trials",
        "1",
        "--seeds",
        "0",
        "--datasets",
        "synthetic",
        "--change-dataset",
        "synthetic",
        "--change-seeds",
        "0",
        "--hundred-dataset",
        "synthetic",
        "--hundred-labels",
        "3",
        "--more-labels",
        "6",
        "--steps",
        "2",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--record",
        str(tmp_path / "record"),
    ]
    gen.main(["--stage", "all", *common])
    out = tmp_path / "generality.json"
    gen.main(["--stage", "report", *common, "--out", str(out), "--figure", str(tmp_path / "g.html")])
    res = json.loads(out.read_text())
    md = (tmp_path / "generality.md").read_text()
    # tuning: every method, the paper's method included, on the data set it is judged on, pruned
    assert set(res["tuning"]) == {f"synthetic {m}" for m in gen.TUNED}
    assert all(t["finished_trials"] == 2 and t["completed_trials"] >= 1 for t in res["tuning"].values())
    assert res["protocol"]["pruner"].startswith("successive-halving")
    first = [r for r in res["runs"] if r["labels"] == 50 and "+" not in r["method"]]
    assert {(r["method"], r["reconstruction"]) for r in first} == set(gen.ARMS)
    # each run with its data set's tuned setting: the paper's method with its own tuned beta
    inv = next(r for r in first if r["method"] == "inversion")
    assert inv["config"]["beta"] == pytest.approx(res["tuning"]["synthetic inversion"]["best"]["params"]["beta"])
    vat = next(r for r in first if (r["method"], r["reconstruction"]) == ("vat", False))
    assert vat["config"]["lr"] == pytest.approx(res["tuning"]["synthetic vat"]["best"]["params"]["lr"])
    # the 500-label round: the method with the best validation accuracy without R, with and without R
    best = max(gen.BASELINES, key=lambda m: statistics.fmean(
        r["val_accuracy"] for r in first if r["method"] == m and not r["reconstruction"]))
    arms = {(r["method"], r["reconstruction"]) for r in res["runs"] if r["labels"] == 60}
    assert arms == {(best, False), (best, True)}
    # the 100-label round (here 30): the two arms of round one with the best validation accuracy
    val = {(r["method"], r["reconstruction"]): r["val_accuracy"] for r in first}
    top2 = sorted(val, key=val.get, reverse=True)[:2]
    assert {(r["method"], r["reconstruction"]) for r in res["runs"] if r["labels"] == 30} == set(top2)
    # is R's gain a low-label effect? the 60-label gain beside the 50-label gain on the same draw
    more = {r["reconstruction"]: r["test_accuracy"] for r in res["runs"] if r["labels"] == 60}
    few = {r["reconstruction"]: r["test_accuracy"] for r in first if r["method"] == best}
    effect = next(e for e in res["label_effect"] if e["labels"] == 60)
    assert (effect["method"], effect["draws"]) == (best, [0])
    assert effect["gain_of_R"] == pytest.approx(more[True] - more[False], abs=0.006)
    assert effect["gain_of_R_with_50_labels"] == pytest.approx(few[True] - few[False], abs=0.006)
    # the targets, on the draws every arm finished: the same best method, R's gain on it
    target = res["summary"]["synthetic"]
    test = {(r["method"], r["reconstruction"]): r["test_accuracy"] for r in first}
    assert target["draws"] == [0] and target["best_without_R"] == best
    assert target["gain_of_R_on_best"] == pytest.approx(test[(best, True)] - test[(best, False)], abs=0.011)
    assert target["gain_of_R_on_best_per_draw"]["0"] == pytest.approx(target["gain_of_R_on_best"], abs=0.011)
    assert target["invlab_minus_baseline"]["vat"] == pytest.approx(test[("inversion", True)] - test[("vat", False)],
                                                                   abs=0.011)
    best_r = max((a for a in gen.ARMS if a[1]), key=lambda a: val[a])
    assert target["invlab_best"] == f"{best_r[0]} with R"
    assert target["invlab_best_test"] == pytest.approx(test[best_r], abs=0.006)
    assert target["gain_of_R"]["vat"] == pytest.approx(test[("vat", True)] - test[("vat", False)], abs=0.011)
    top = max(test, key=test.get)
    assert target["highest_per_draw"]["0"] == {"method": top[0], "reconstruction": top[1], "test_accuracy": test[top]}
    by_val = max(val, key=val.get)
    assert target["best_by_validation_per_draw"]["0"]["method"] == by_val[0]
    assert target["best_by_validation_test_mean"] == test[by_val]
    # the changed arms join validation's choice: it picks the highest validation accuracy of all of them
    every = {(r["method"], r["reconstruction"]): r for r in res["runs"] if r["labels"] == 50}
    picked = target["best_by_validation_per_draw_with_changes"]["0"]
    chosen = every[(picked["method"], picked["reconstruction"])]
    assert picked["val_accuracy"] == chosen["val_accuracy"] == max(r["val_accuracy"] for r in every.values())
    assert target["best_by_validation_with_changes_test_mean"] == picked["test_accuracy"] == chosen["test_accuracy"]
    assert target["changed_with_R_minus_best_without_R"]["inversion+standardize"]["mean"] == pytest.approx(
        every[("inversion+standardize", True)]["test_accuracy"] - test[(best, False)], abs=0.006)
    # each arm's mean in the JSON, as the tables show them
    arm = next(a for a in res["arms"] if (a["method"], a["reconstruction"], a["labels"]) == ("vat", False, 50))
    assert arm["mean"] == pytest.approx(test[("vat", False)], abs=0.006) and arm["std"] is None
    assert f"{arm['mean']:.2f} (one draw)" in md and "## Targets" in md
    assert "50 labels: gain of R\"" in (tmp_path / "g.html").read_text()  # the title of the figure's second row
    # every round has finished: 11 arms + 4 changed + 2 (100 labels) + 2 (500 labels) + 1 (R on top)
    assert res["progress"]["remaining"] == 0 and res["progress"]["finished"] == res["progress"]["planned"] == 20
    assert res["progress"]["hours_left_two_workers"] == 0 and "vat with R" in res["progress"]["minutes_per_run"]
    per = res["progress"]["minutes_per_run"]
    assert res["progress"]["runs_per_round"] == {"runs": 11, "changes": 4, "hundred": 2, "more": 2, "on-top": 1}
    assert res["progress"]["rounds_hours_two_workers"] == pytest.approx(
        sum(per[f"{r['method'].split('+')[0]} {'with' if r['reconstruction'] else 'without'} R"]
            for r in res["runs"]) / 120, abs=0.051)
    assert res["tuning_hours_two_workers"] is not None and "The whole study at those medians" in md
    # the changes round: standardised inputs for VAT and the paper's method, without and with R
    ch = res["changes"]
    assert set(ch) == {"vat+standardize", "inversion+standardize", "vat+r-on-top"}
    assert set(ch["inversion+standardize"]) == {"with_R", "without_R", "gain_of_R"}
    assert set(ch["vat+standardize"]) == {"with_R", "without_R", "gain_of_R", "gain_over_round_one_without_R"}
    changed = {(r["method"], r["reconstruction"]): r for r in res["runs"] if "+" in r["method"]}
    assert all(r["config"]["preprocess"] == "standardize" for (m, _), r in changed.items() if "standardize" in m)
    assert changed[("inversion+standardize", False)]["config"]["beta"] == 0
    assert ch["vat+standardize"]["with_R"]["mean_change_val"] == pytest.approx(
        changed[("vat+standardize", True)]["val_accuracy"] - val[("vat", True)], abs=0.006)
    both = [changed[("vat+standardize", True)]["test_accuracy"]]
    assert ch["vat+standardize"]["with_R"]["test_mean"] == pytest.approx(statistics.fmean(both), abs=0.006)
    g = ch["inversion+standardize"]["gain_of_R"]
    assert g["per_draw"][0] == pytest.approx(changed[("inversion+standardize", True)]["test_accuracy"]
                                             - changed[("inversion+standardize", False)]["test_accuracy"], abs=0.006)
    # R on top of VAT: CE : U as without R (alpha lowered), R beside them; against round one's VAT without R
    on_top = changed[("vat+r-on-top", True)]["config"]
    a, b = on_top["alpha"], on_top["beta"]
    assert b == 0.2 and a < vat["config"]["alpha"]
    assert a / ((1 - a) * (1 - b)) == pytest.approx(vat["config"]["alpha"] / (1 - vat["config"]["alpha"]))
    assert set(ch["vat+r-on-top"]) == {"with_R", "gain_over_round_one_without_R"}
    assert ch["vat+r-on-top"]["gain_over_round_one_without_R"]["per_draw"][0] == pytest.approx(
        changed[("vat+r-on-top", True)]["test_accuracy"] - test[("vat", False)], abs=0.006)
    # the same setting trained twice: each tuning study's best trial is its round-one run on draw 0
    pairs = {(p["dataset"], p["method"]): p for p in res["repeats"]}
    assert set(pairs) >= {("synthetic", m) for m in gen.TUNED}
    assert all(p["difference"] == 0 for p in pairs.values())  # one machine, one thread: to the digit
    assert "### The same setting trained twice" in md
    assert "### The changes round" in md and "### invlab beside the published MNIST results" in md
    assert "against round one's arm without R" in md
    # every run's method term, unweighted, against its cross-entropy; dead ones are flagged
    assert next(r for r in first if r["method"] == "supervised")["term_ratio"] is None
    assert vat["term_ratio"] > 0  # (alive or not after 4 steps: tests/test_methods_at_scale.py measures that)
    assert res["dead_terms"] == [{k: r[k] for k in ("dataset", "labels", "method", "reconstruction", "seed",
                                                    "term_ratio")}
                                 for r in res["runs"] if r["term_ratio"] is not None and r["term_ratio"] < gen.ALIVE]
    # a fresh machine: the committed record restores the tuning and the finished runs, nothing retrains
    gen.main(["--stage", "save", *common])
    fresh = [*common[:-4], "--runs-dir", str(tmp_path / "fresh"), "--record", str(tmp_path / "record")]
    again = tmp_path / "again.json"
    gen.main(["--stage", "report", *fresh, "--out", str(again), "--figure", str(tmp_path / "g2.html")])
    res2 = json.loads(again.read_text())
    assert res2["summary"] == res["summary"] and res2["progress"]["remaining"] == 0
    assert {k: t["best"] for k, t in res2["tuning"].items()} == {k: t["best"] for k, t in res["tuning"].items()}
    # where R fails: the confusion pairs of the paper's method and a figure of its mistakes; a run
    # without its checkpoint (restored from the record) is trained again and must reproduce its result
    inv_dir = next(p.parent for p in (tmp_path / "runs" / "runs").glob("*/result.json")
                   if json.loads(p.read_text())["config"] == inv["config"])
    (inv_dir / "checkpoint.pt").unlink()
    gen.main(["--stage", "failures", *common, "--failures-out", str(tmp_path / "fail.json"),
              "--failures-figure", str(tmp_path / "fail.html"), "--show", "2"])
    fail = json.loads((tmp_path / "fail.json").read_text())
    assert [(r["dataset"], r["method"], r["seed"]) for r in fail["runs"]] == [("synthetic", "inversion", 0)]
    assert len(fail["runs"][0]["most_confused"]) == 5 and sum(map(sum, fail["runs"][0]["matrix"])) > 0
    assert (inv_dir / "checkpoint.pt").exists() and not inv_dir.with_name(inv_dir.name + ".again").exists()
    assert fail["runs"][0]["retrained"] == {"recorded_test_accuracy": inv["test_accuracy"],
                                            "retrained_test_accuracy": inv["test_accuracy"]}  # the same machine
    assert "Trained again on this machine" in (tmp_path / "fail.md").read_text()
    gen.main(["--stage", "failures", *common, "--failures-out", str(tmp_path / "fail2.json"),  # checkpoint there now
              "--failures-figure", str(tmp_path / "fail2.html"), "--show", "2"])
    assert json.loads((tmp_path / "fail2.json").read_text())["runs"][0]["retrained"] == fail["runs"][0]["retrained"]
    run = res["runs"][0]
    assert set(run) >= {"dataset", "labels", "method", "reconstruction", "seed", "test_accuracy", "val_accuracy",
                        "steps", "config", "minutes"}
    assert run["labels"] == 50 and run["steps"] == 2 and run["dataset"] == "synthetic"
    assert "provenance" in res and len(re.findall(r"^\| (synthetic +\| )?vat +\|", md, re.M)) >= 3


def test_generality_checks_vat_against_the_outside_implementation_once_its_draws_finish():
    gen = _load("generality.report")

    def row(seed, acc, method="vat", reconstruction=False, dataset="mnist"):
        return {"dataset": dataset, "labels": 50, "method": method, "reconstruction": reconstruction,
                "seed": seed, "test_accuracy": acc}

    partial = gen.outside_vat([row(0, 98.0), row(1, 80.0, reconstruction=True), row(2, 50.0, dataset="fashion-mnist")])
    assert partial["draws"] == [0] and partial["invlab_mean"] is None and partial["met"] is None
    assert "wait for draws 1, 2, 4" in gen.outside_vat_text(partial)
    outside = gen.OUTSIDE_VAT
    close = [row(d, outside[d] - 0.01) for d in outside]
    assert gen.outside_vat(close)["met"] is False and "not met" in gen.outside_vat_text(gen.outside_vat(close))
    above = gen.outside_vat([row(d, outside[d] + 0.5) for d in outside] + [row(3, 10.0)])  # draw 3 is not compared
    assert above["met"] is True and above["invlab_mean"] == pytest.approx(93.2050 + 0.5, abs=1e-3)


def test_mean_teacher_ema_needs_the_studys_run_and_says_so(tmp_path):
    bench = _load("methods.mean_teacher_ema")
    empty = tmp_path / "generality.json"
    empty.write_text(json.dumps({"runs": []}))
    with pytest.raises(SystemExit, match="no finished mean-teacher run on mnist draw 0"):
        bench.main(["--generality", str(empty), "--report-only", "--out", str(tmp_path / "mt.json")])
    row = {"dataset": "mnist", "labels": 50, "method": "mean-teacher", "reconstruction": False, "seed": 0,
           "val_accuracy": 90.0, "teacher_val_accuracy": 89.5, "test_accuracy": 89.0, "minutes": 5.0,
           "config": {"ema": 0.95, "lr": 0.007, "consistency": 26.0, "noise": 0.2}}
    empty.write_text(json.dumps({"runs": [row]}))
    assert bench.main(["--generality", str(empty), "--report-only", "--runs-dir", str(tmp_path / "runs"),
                       "--out", str(tmp_path / "mt.json")]) == 0
    out = json.loads((tmp_path / "mt.json").read_text())
    assert [r["ema"] for r in out["runs"]] == [0.95] and out["runs"][0]["source"] == "the study's run"


def test_generality_plans_on_cpu_minutes_where_an_arm_counted_them():
    """An arm with CPU-timed runs is planned on those alone (wall minutes include the pauses and
    the waits for shared cores); an arm without any, on its wall minutes."""
    rep = _load("generality.report")

    def row(method, with_r, minutes, cpu=None):
        return {"method": method, "reconstruction": with_r, "minutes": minutes, "cpu_minutes": cpu}

    rows = [row("vat", True, 19.3), row("vat", True, 17.0), row("vat", True, 7.6, 5.8),
            row("vat", False, 10.5), row("vat", False, 9.5), row("entropy+standardize", True, 4.0, 3.0)]
    assert rep.minutes_per_run(rows) == {"vat with R": 5.8, "vat without R": 10.0, "entropy with R": 3.0}


def test_zoo_tiny_exports_refuses_and_resumes(tmp_path, capsys):
    import json

    out = tmp_path / "zoo.json"
    _load("paper.zoo").main(["--models", "squeezenet1_1", "efficientnet_b0", "--out", str(out)])
    models = json.loads(out.read_text())["models"]
    squeeze, efficient = models["squeezenet1_1"], models["efficientnet_b0"]
    assert squeeze["status"] == "exported" and max(squeeze["onnx_errors"].values()) < 1e-4
    assert max(squeeze["pytorch_errors"].values()) < 1e-5 and squeeze["bytes"] > 1e6
    assert efficient["status"] == "refused" and "(SiLU)" in efficient["reason"]
    assert "squeezenet1_1" in out.with_suffix(".md").read_text()
    capsys.readouterr()
    _load("paper.zoo").main(["--models", "squeezenet1_1", "--out", str(out)])  # measured already: kept, not redone
    assert json.loads(out.read_text())["models"]["squeezenet1_1"]["export_s"] == squeeze["export_s"]


def test_regions_cost_tiny(tmp_path):
    import json

    out = tmp_path / "regions.json"
    _load("regions").main(["--models", "smallcnn-mean", "--pairs", "1", "--resolution", "16", "--threads", "1",
                           "--out", str(out)])
    row = json.loads(out.read_text())["models"]["smallcnn-mean"]
    assert row["pieces"][0] > 100 and row["pieces_per_s"][0] > 0 and 1 < row["plane_regions"] <= 256


def test_the_benchmarks_take_the_train_options():
    """The benchmarks take invlab train's options from the same description (invlab.training.options), with
    their own defaults."""
    table2, recipe_study = _load("paper.table2"), _load("recipe.recipe_study")
    for module in (table2, recipe_study):
        args = module.parse_args([])
        assert args.val_size == 10_000 and args.device == "auto" and args.dataset == "mnist"
    args = table2.parse_args(["--milestones", "0.3", "--no-bias", "--schedule", "cosine"])
    assert (args.milestones, args.bias, args.schedule) == ([0.3], False, "cosine")


def test_the_benchmarks_take_any_data_set(colour32):
    table2, recipe_study = _load("paper.table2"), _load("recipe.recipe_study")
    args = recipe_study.parse_args(["--dataset", "fashion-mnist", "--arms", "balance-maxabs-2k"])
    assert recipe_study.config_for("balance-maxabs-2k", 0, args).dataset == "fashion-mnist"
    args = table2.parse_args(["--dataset", f"npz:{colour32}", "--val-size", "6"])
    entry = next(e for e in table2.plan(args) if e.model == "smallcnn-mean")
    config = table2.config_for(entry, 0, args)
    assert config.dataset == f"npz:{colour32}" and config.labels_per_class == entry.labels // 6


def test_suite_time_tiny(tmp_path):
    """The suite-time benchmark runs bin/test (here a dozen quick checks, no workers) and records every test's CPU
    time through its plugin, with the run's wall and CPU time."""
    out = tmp_path / "test_time.json"
    hygiene = "tests/test_notebook_hygiene.py"  # a dozen checks of the committed notebooks, no torch to load
    _load("speed.suite_time").main(["--out", str(out), "--", "-n", "0", "--noconftest", hygiene, "-k", "no_outputs"])
    res = json.loads(out.read_text())
    tests = {r["test"] for r in res["per_test"]}
    assert res["tests"] == len(tests) > 3 and all(t.startswith(f"{hygiene}::") for t in tests)
    assert res["wall_s"] > 0 and res["cpu_s"] > 0 and " passed" in res["summary"]
    assert set(res["per_file_cpu_s"]) == {hygiene} and res["command"] and res["commit"]
    assert hygiene in (tmp_path / "test_time.md").read_text()
    line = res["timeline"]  # one worker ("main", no xdist): its busy time is its tests' wall time, within the run
    assert set(line["workers"]) == {"main"} and set(line["phases"]) == {"start", "both workers", "end"}
    main_worker = line["workers"]["main"]
    assert main_worker["busy_s"] == pytest.approx(sum(r["wall_s"] for r in res["per_test"]))
    assert 0 < main_worker["first_test_s"] < main_worker["last_test_done_s"] <= res["wall_s"]
    assert line["idle_share"] is None or 0 <= line["idle_share"] <= 1


def test_regions_report_pools_the_draws_and_says_what_is_missing(tmp_path):
    """The study's report from segment files (here written by hand): per-draw rows, and the draws pooled per
    network and pair type (mean ± std over every pair, the draws' means, near/middle as a ratio of means)."""
    regions = _load("regions")
    folder = tmp_path / "runs" / "segments"
    folder.mkdir(parents=True)

    def seg(pieces, near, mid, other=0, decisions=()):
        return {"pieces": pieces, "units_changed": pieces, "decisions": list(decisions), "start_class": 4,
                "end_class": 9 if decisions else 4, "pieces_start_class": pieces - other, "pieces_end_class": 0,
                "pieces_other": other, "pieces_near_data": near, "pieces_mid": mid,
                "first_decision": decisions[0][0] if decisions else None}

    draws = {1: [seg(100, 30, 10), seg(200, 60, 20, other=20, decisions=[(0.5, 4, 9)])], 4: [seg(300, 40, 40)]}
    for seed, segs in draws.items():
        (folder / f"paper-seed{seed}-4-9.json").write_text(json.dumps({"pairing": regions.pairing_of("4-9"),
                                                                       "segments": segs}))
    out = tmp_path / "regions.json"
    regions.main(["--part", "report", "--runs-dir", str(tmp_path / "runs"), "--variants", "paper", "untrained",
                  "--seeds", "1", "4", "--pair-types", "4-9", "--pairs", "2", "--out", str(out)])
    res = json.loads(out.read_text())
    assert not res["complete"] and res["segments_missing"] == 1 + 2 * 2  # draw 4 has one of two; untrained none
    (row,) = res["pooled"]
    assert (row["network"], row["pair"], row["segments"], row["draws"]) == ("paper", "4-9", 3, 2)
    assert row["pieces_mean"] == pytest.approx(200) and row["pieces_std"] == pytest.approx(100)
    assert row["draw_means"] == [150, 300]
    assert row["near_over_mid"] == pytest.approx((30 + 60 + 40) / (10 + 20 + 40))
    assert row["other_share"] == pytest.approx(20 / 600) and row["decision_changes_mean"] == pytest.approx(1 / 3)
    md = (tmp_path / "regions.md").read_text()
    assert "**Partial**" in md and "## Over the label draws" in md and "150 – 300" in md


def test_suite_compare_tiny(tmp_path):
    """Two commits' suites in one sitting (here a dozen quick checks, no workers, the same commit twice): each run from
    its own worktree, the ratio of their times; the worktrees removed afterwards."""
    import subprocess

    def worktrees():
        return subprocess.run(["git", "worktree", "list"], cwd=ROOT, capture_output=True, text=True).stdout

    before, out = worktrees(), tmp_path / "compare.json"
    _load("speed.suite_compare").main(["--base", "HEAD", "--rounds", "1", "--out", str(out), "--",
                                       "-n", "0", "--noconftest", "tests/test_notebook_hygiene.py", "-k", "no_outputs"])
    res = json.loads(out.read_text())
    assert res["base"] == res["head"] and res["order"] == [["base", "head"]]
    assert all(len(res["runs"][k]) == 1 and " passed" in res["runs"][k][0]["summary"] and res["runs"][k][0]["cpu_s"] > 0
               for k in ("base", "head"))
    assert res["ratio_wall"] > 0 and res["ratio_cpu"] > 0 and "the wall time" in (tmp_path / "compare.md").read_text()
    assert worktrees() == before
