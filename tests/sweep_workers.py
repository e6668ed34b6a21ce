"""Sweep workers as separate processes, for the sweep tests on SQLite (tests/test_experiments_sweep.py)
and on PostgreSQL (tests/integration/test_sweep_postgresql.py): a study of four runs with one of
its two workers killed mid-trial, and workers taking waiting trials at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from invlab import sweep  # noqa: E402

SPACE = {"base": {"dataset": "synthetic", "model": "smallcnn-mean", "steps": 40, "eval_every": 10,
                  "labelled_batch": 10, "unlabelled_batch": 10, "val_size": 100, "log_unweighted": False},
         "grid": {"alpha": [0.5, 0.7], "seed": [0, 1]}}


def start_worker(url, study, runs_dir, cwd):
    cmd = [sys.executable, "-m", "invlab.cli", "sweep", "work", "--study", study, "--storage", url,
           "--runs-dir", str(runs_dir), "--heartbeat", "1", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def study_trials(url, study):
    with sweep.opened(url) as storage:  # polled every 50 ms: a storage set up once (a fifth of a second each)
        return optuna.load_study(study_name=study, storage=storage).get_trials()


def kill_mid_trial(url, study, worker, timeout=120):
    """Wait until ``worker`` runs a trial that has written a checkpoint, then kill it mid-training; the trial's
    number. Race-free by construction: the worker is stopped (SIGSTOP) before the trial's state and folder are
    read again, so the trial cannot finish between the read and the kill. A trial that finished before the stop
    lets the worker go on (SIGCONT) and the wait continues; so does one whose run wrote its ``result.json`` but
    was not yet told to the study (its retry would read the result back, not resume a checkpoint)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for t in study_trials(url, study):
            mine = str(t.user_attrs.get("worker", "")).endswith(f":{worker.pid}")
            run_dir = t.user_attrs.get("run_dir")
            if t.state.name == "RUNNING" and mine and run_dir and (Path(run_dir) / "checkpoint.pt").exists():
                worker.send_signal(signal.SIGSTOP)
                try:
                    now = next(u for u in study_trials(url, study) if u.number == t.number)
                except Exception:  # noqa: BLE001 (stopped inside a write: let it finish, look again)
                    now = None
                if now is not None and now.state.name == "RUNNING" and not (Path(run_dir) / "result.json").exists():
                    worker.send_signal(signal.SIGKILL)
                    worker.wait()
                    return t.number
                worker.send_signal(signal.SIGCONT)
        if worker.poll() is not None:
            raise AssertionError(f"worker ended before it could be killed: {worker.stdout.read()}")
        time.sleep(0.05)
    raise AssertionError("no trial of the first worker reached a checkpoint in time")


def study_with_a_killed_worker(url, tmp_path):
    space = tmp_path / "tiny.json"
    space.write_text(json.dumps(SPACE))
    runs = tmp_path / "runs"
    assert sweep.create("tiny", url, str(space)) == 4
    with pytest.raises(ValueError, match="already exists"):
        sweep.create("tiny", url, str(space))
    first, second = start_worker(url, "tiny", runs, tmp_path), start_worker(url, "tiny", runs, tmp_path)
    try:
        killed = kill_mid_trial(url, "tiny", first)
        out, _ = second.communicate(timeout=300)
        assert second.returncode == 0, out
    finally:
        for w in (first, second):
            if w.poll() is None:
                w.kill()
                w.wait()
            w.stdout.close()
    trials = study_trials(url, "tiny")
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    # every grid point exactly once
    assert Counter((t.params["alpha"], t.params["seed"]) for t in complete) == {
        (a, s): 1 for a in (0.5, 0.7) for s in (0, 1)
    }
    # the killed trial was failed by its missing heartbeat, retried, and resumed from its checkpoint
    assert next(t for t in trials if t.number == killed).state.name == "FAIL"
    retry = next(t for t in complete if t.system_attrs.get("failed_trial") == killed)
    result = json.loads((Path(retry.user_attrs["run_dir"]) / "result.json").read_text())
    assert result["resumed_from"] > 0
    # the report's numbers are the trials' numbers
    rep = sweep.report("tiny", url, tmp_path / "report.json", figures=tmp_path / "figures")
    for entry, row in rep["entries"].items():
        mine = sorted(
            (t.user_attrs["seed"], t.user_attrs["test_accuracy"]) for t in complete if t.user_attrs["entry"] == entry
        )
        assert list(zip(row["seeds"], row["test_accuracies"])) == mine
        assert row["mean"] == pytest.approx(sum(a for _, a in mine) / len(mine))
    assert (tmp_path / "report.md").exists() and (tmp_path / "figures" / "history.html").exists()
    history = (tmp_path / "figures" / "history.html").read_text()  # opens offline: plotly.js beside it
    assert "cdn.plot.ly" not in history and (tmp_path / "figures" / "plotly.min.js").stat().st_size > 1e6
    return rep


POP = """
import sys, time
from pathlib import Path
import optuna
from invlab.experiments.storage import opened  # no torch: four of these start at once
url, go, ready = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
with opened(url) as storage:
    study = optuna.load_study(study_name="queue", storage=storage)
    ready.touch()
    while not go.exists():
        time.sleep(0.001)
    taken = []
    while (trial_id := study._pop_waiting_trial_id()) is not None:
        taken.append(trial_id)
print(" ".join(map(str, taken)))
"""


def pop_concurrently(url, tmp_path, workers=4, waiting=40):
    """``workers`` processes take the waiting trials of one study at once; what each took."""
    with sweep.opened(url) as storage:
        study = optuna.create_study(study_name="queue", storage=storage)
        for i in range(waiting):
            study.enqueue_trial({"x": i})
    go, ready = tmp_path / "go", [tmp_path / f"ready{i}" for i in range(workers)]
    procs = [subprocess.Popen([sys.executable, "-c", POP, url, str(go), str(r)], stdout=subprocess.PIPE, text=True)
             for r in ready]
    deadline = time.monotonic() + 120
    while not all(r.exists() for r in ready):  # every worker connected and waiting
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "a worker never got ready"
        time.sleep(0.01)
    go.touch()
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    return [[int(t) for t in out.split()] for out in outs]
