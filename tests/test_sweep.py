"""invlab sweep against real databases: two worker processes, one killed mid-trial.

The PostgreSQL test starts a server from Debian's ``postgresql`` package on 127.0.0.1 in a
temporary folder (as the ``postgres`` user when run as root: initdb refuses root) and
stops it at the end; it is skipped where PostgreSQL is not installed.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from invlab import sweep  # noqa: E402

SPACE = {"base": {"dataset": "synthetic", "model": "smallcnn-mean", "steps": 40, "eval_every": 10,
                  "labelled_batch": 10, "unlabelled_batch": 10, "val_size": 100, "log_unweighted": False},
         "grid": {"alpha": [0.5, 0.7], "seed": [0, 1]}}


def _worker(url, study, runs_dir, cwd):
    cmd = [sys.executable, "-m", "invlab.cli", "sweep", "work", "--study", study, "--storage", url,
           "--runs-dir", str(runs_dir), "--heartbeat", "1", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _trials(url, study):
    with sweep._opened(url) as storage:  # polled every 50 ms: a storage set up once (a fifth of a second each)
        return optuna.load_study(study_name=study, storage=storage).get_trials()


def _kill_mid_trial(url, study, worker, timeout=120):
    """Wait until ``worker`` runs a trial that has written a checkpoint, SIGKILL it; the trial's number."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for t in _trials(url, study):
            mine = str(t.user_attrs.get("worker", "")).endswith(f":{worker.pid}")
            run_dir = t.user_attrs.get("run_dir")
            if t.state.name == "RUNNING" and mine and run_dir and (Path(run_dir) / "checkpoint.pt").exists():
                worker.send_signal(signal.SIGKILL)
                worker.wait()
                return t.number
        if worker.poll() is not None:
            raise AssertionError(f"worker ended before it could be killed: {worker.stdout.read()}")
        time.sleep(0.05)
    raise AssertionError("no trial of the first worker reached a checkpoint in time")


def _study_with_a_killed_worker(url, tmp_path):
    space = tmp_path / "tiny.json"
    space.write_text(json.dumps(SPACE))
    runs = tmp_path / "runs"
    assert sweep.create("tiny", url, str(space)) == 4
    with pytest.raises(ValueError, match="already exists"):
        sweep.create("tiny", url, str(space))
    first, second = _worker(url, "tiny", runs, tmp_path), _worker(url, "tiny", runs, tmp_path)
    try:
        killed = _kill_mid_trial(url, "tiny", first)
        out, _ = second.communicate(timeout=300)
        assert second.returncode == 0, out
    finally:
        for w in (first, second):
            if w.poll() is None:
                w.kill()
                w.wait()
            w.stdout.close()
    trials = _trials(url, "tiny")
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


def test_sqlite_study_survives_a_killed_worker(tmp_path):
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    rep = _study_with_a_killed_worker(url, tmp_path)
    assert rep["counts"]["COMPLETE"] == 4


def _pg_tool(name):
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


@pytest.fixture
def postgres_url():
    initdb, pg_ctl = _pg_tool("initdb"), _pg_tool("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL is not installed (Debian's postgresql package; .ci/run installs it)")
    pytest.importorskip("psycopg")
    root = Path(tempfile.mkdtemp(prefix="invlab-pg-"))
    as_pg = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres user
        shutil.chown(root, "postgres")
        as_pg = ["runuser", "-u", "postgres", "--"]
    data, log = root / "data", root / "server.log"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(
        as_pg + [initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"], check=True, capture_output=True
    )
    subprocess.run(
        as_pg
        + [
            pg_ctl,
            "-D",
            str(data),
            "-l",
            str(log),
            "-w",
            "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        yield url
    finally:
        subprocess.run(as_pg + [pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.integration
def test_postgresql_study_survives_a_killed_worker(tmp_path, postgres_url):
    rep = _study_with_a_killed_worker(postgres_url, tmp_path)
    assert rep["counts"]["COMPLETE"] == 4


_POP = """
import sys, time
from pathlib import Path
import optuna
from invlab import sweep
url, go, ready = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
with sweep._opened(url) as storage:
    study = optuna.load_study(study_name="queue", storage=storage)
    ready.touch()
    while not go.exists():
        time.sleep(0.001)
    taken = []
    while (trial_id := study._pop_waiting_trial_id()) is not None:
        taken.append(trial_id)
print(" ".join(map(str, taken)))
"""


def _pop_concurrently(url, tmp_path, workers=4, waiting=40):
    """``workers`` processes take the waiting trials of one study at once; what each took."""
    with sweep._opened(url) as storage:
        study = optuna.create_study(study_name="queue", storage=storage)
        for i in range(waiting):
            study.enqueue_trial({"x": i})
    go, ready = tmp_path / "go", [tmp_path / f"ready{i}" for i in range(workers)]
    procs = [subprocess.Popen([sys.executable, "-c", _POP, url, str(go), str(r)], stdout=subprocess.PIPE, text=True)
             for r in ready]
    deadline = time.monotonic() + 120
    while not all(r.exists() for r in ready):  # every worker connected and waiting
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "a worker never got ready"
        time.sleep(0.01)
    go.touch()
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    return [[int(t) for t in out.split()] for out in outs]


def test_a_sqlite_storage_is_set_up_once_per_file_and_keeps_its_locking(tmp_path):
    """Reusing a storage must keep ``BEGIN IMMEDIATE`` and the busy timeout on the
    connections it opens after a close; a file deleted and made anew gets a new storage."""
    path = tmp_path / "s.db"
    url = f"sqlite:///{path}"
    with sweep._opened(url) as first:
        optuna.create_study(study_name="s", storage=first)
    with sweep._opened(url) as again:
        assert again is first
        with again.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == sweep.SQLITE_BUSY_TIMEOUT_MS
        assert [s.study_name for s in optuna.get_all_study_summaries(again)] == ["s"]
    with sweep._opened(url, heartbeat=5) as beating:  # other options: another storage
        assert beating is not first and beating.heartbeat_interval == 5
    path.unlink()
    with sweep._opened(url) as fresh:
        assert fresh is not first and optuna.get_all_study_summaries(fresh) == []  # the schema made anew


def test_sqlite_workers_never_take_the_same_trial(tmp_path):
    """SQLite ignores ``SELECT ... FOR UPDATE``: without invlab's ``BEGIN IMMEDIATE`` about a
    quarter of these pops were duplicates (Optuna issue #4002)."""
    taken = _pop_concurrently(f"sqlite:///{tmp_path / 'queue.db'}", tmp_path)
    flat = [t for ids in taken for t in ids]
    assert sorted(flat) == sorted(set(flat)) and len(flat) == 40


@pytest.mark.integration
def test_postgresql_workers_never_take_the_same_trial(tmp_path, postgres_url):
    taken = _pop_concurrently(postgres_url, tmp_path)
    flat = [t for ids in taken for t in ids]
    assert sorted(flat) == sorted(set(flat)) and len(flat) == 40


def test_sweep_refuses_bad_input(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    with pytest.raises(ValueError, match="unknown space"):
        sweep.create("x", url, "nope")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"base": {}}))
    with pytest.raises(ValueError, match="either a 'grid'"):
        sweep.create("x", url, str(bad))
    with pytest.raises(ValueError, match="no study 'missing'"):
        sweep.work("missing", url)
    table2 = sweep.load_space("table2")
    points = sweep.grid_points(table2)
    assert len(points) == 60 and sweep.config_for(table2, {"model": "smallucnn", "seed": 3}).alpha == 0.5
    grid = sweep.load_space("grid")
    assert len(sweep.grid_points(grid)) == 45


def test_a_search_worker_called_one_trial_at_a_time_draws_new_points(tmp_path):
    """work(trials=1) called again by the same process must not sample the first point again."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    space = tmp_path / "search.json"
    space.write_text(json.dumps({"base": {**SPACE["base"], "steps": 1, "eval_every": 1}, "seeds": [0],
                                 "search": {"lr": {"low": 1e-4, "high": 1e-1, "log": True}}}))
    sweep.create("s", url, str(space))
    for _ in range(3):
        sweep.work("s", url, trials=1, device="cpu", runs_dir=tmp_path / "runs")
    lrs = [t.params["lr"] for t in optuna.load_study(study_name="s", storage=url).get_trials()]
    assert len(set(lrs)) == 3


def test_creating_a_study_of_runs_again_redoes_the_runs_that_failed(tmp_path):
    from invlab.train import TrainConfig

    url = f"sqlite:///{tmp_path / 's.db'}"
    runs = {f"seed{s}": (TrainConfig(**{**SPACE["base"], "steps": 4, "eval_every": 2, "seed": s}), tmp_path / f"run{s}")
            for s in (0, 1)}
    (tmp_path / "run1").write_text("a file where the run's folder goes")  # run1 fails
    assert sweep.create_runs("r", url, runs) == 2
    sweep.work("r", url, device="cpu", runs_dir=tmp_path)
    assert Counter(t.state.name for t in _trials(url, "r")) == {"COMPLETE": 1, "FAIL": 1}
    (tmp_path / "run1").unlink()  # the cause fixed: the same command again
    assert sweep.work("r", url, device="cpu", runs_dir=tmp_path) == 0  # work alone does not retry a failure
    assert sweep.create_runs("r", url, runs) == 1
    sweep.work("r", url, device="cpu", runs_dir=tmp_path)
    done = {t.params["run"] for t in _trials(url, "r") if t.state.name == "COMPLETE"}
    assert done == {"seed0", "seed1"} and sweep.create_runs("r", url, runs) == 0


def test_a_worker_whose_trial_was_failed_after_a_missed_heartbeat_goes_on(tmp_path, monkeypatch):
    """A worker suspended past the grace period finds its trial failed by another worker when
    it comes back: it must go on with the next trial, not crash (Optuna refuses the tell)."""
    from invlab.train import TrainConfig

    url = f"sqlite:///{tmp_path / 's.db'}"
    runs = {f"seed{s}": (TrainConfig(**{**SPACE["base"], "steps": 2, "eval_every": 2, "seed": s}), tmp_path / f"run{s}")
            for s in (0, 1)}
    assert sweep.create_runs("r", url, runs) == 2
    finish = sweep._Objective.__call__

    def failed_meanwhile(self, trial):
        value = finish(self, trial)
        if trial.number == 0:  # as another worker's fail_stale_trials would have done
            trial.study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
        return value

    monkeypatch.setattr(sweep._Objective, "__call__", failed_meanwhile)
    with pytest.warns(UserWarning, match="missed heartbeat"):
        assert sweep.work("r", url, device="cpu", runs_dir=tmp_path) == 2
    assert Counter(t.state.name for t in _trials(url, "r")) == {"FAIL": 1, "COMPLETE": 1}
    assert (tmp_path / "run0" / "result.json").exists()  # the failed trial's run is on disk for its retry


def test_a_pruned_study_with_two_workers_stops_the_hopeless_trials_and_marks_their_folders(tmp_path):
    """`invlab sweep create --pruner successive-halving`: every trial reports its validation
    accuracy at each evaluation; with two workers, the trials of a learning rate far too low
    to learn are stopped at the first rung (10 steps of 40), their folders keep a checkpoint
    and stopped.json but no result.json, and a later run of such a folder continues it."""
    from invlab.cli import main
    from invlab.experiments.studies import RESULT, STOPPED, run_resumable

    url = f"sqlite:///{tmp_path / 's.db'}"
    space = tmp_path / "lr.json"
    # two good learning rates first (the workers take them first), then two that cannot learn in 40 steps
    space.write_text(json.dumps({"base": SPACE["base"], "grid": {"lr": [0.003, 0.002, 1e-7, 2e-7]}}))
    assert main(["sweep", "create", "--study", "p", "--storage", url, "--space", str(space),
                 "--pruner", "successive-halving", "--min-resource", "10"]) == 0
    st = optuna.load_study(study_name="p", storage=url)
    assert st.user_attrs["space"]["pruner"] == {
        "name": "successive-halving",
        "min_resource": 10,
        "max_resource": 40,
        "reduction_factor": 2,
    }
    runs = tmp_path / "runs"
    workers = [_worker(url, "p", runs, tmp_path) for _ in range(2)]
    for w in workers:
        out, _ = w.communicate(timeout=300)
        assert w.returncode == 0, out
    trials = {t.params["lr"]: t for t in _trials(url, "p")}
    states = {lr: t.state.name for lr, t in trials.items()}
    assert states[1e-7] == states[2e-7] == "PRUNED", states  # hopeless: stopped at the first rung
    # a good rate may also be cut (successive halving keeps the top half at each rung), never both
    assert "COMPLETE" in (states[0.003], states[0.002]) and set(states.values()) == {"COMPLETE", "PRUNED"}
    for lr, t in trials.items():
        steps = sorted(t.intermediate_values)
        assert steps == (
            [10, 20, 30, 40] if t.state.name == "COMPLETE" else list(range(10, t.user_attrs["pruned_at"] + 1, 10))
        )
        folder = Path(t.user_attrs["run_dir"])
        assert (folder / "checkpoint.pt").exists()
        assert (folder / RESULT).exists() == (t.state.name == "COMPLETE")
        assert (folder / STOPPED).exists() == (t.state.name == "PRUNED")
    pruned = Path(trials[1e-7].user_attrs["run_dir"])
    assert json.loads((pruned / STOPPED).read_text())["reason"] == "pruned"
    at = trials[1e-7].user_attrs["pruned_at"]
    assert at in (10, 20)  # the first rung, or the second when it reached the first before its peers
    # the marked folder is an unfinished run: continued from step 10, never read back as a result
    from invlab.train import TrainConfig

    res = run_resumable(TrainConfig(**{**SPACE["base"], "lr": 1e-7, "device": "cpu"}), pruned)
    assert res["resumed_from"] == at and res["steps_done"] == 40
    assert (pruned / RESULT).exists() and not (pruned / STOPPED).exists()


def test_sweep_pruner_and_startup_trials_are_checked_and_recorded(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    space = tmp_path / "search.json"
    space.write_text(json.dumps({"base": {**SPACE["base"], "steps": 20, "eval_every": 5}, "seeds": [0],
                                 "search": {"lr": {"low": 1e-4, "high": 1e-1, "log": True}}}))
    with pytest.raises(ValueError, match="unknown pruner 'fast'"):
        sweep.create("s", url, str(space), pruner="fast")
    with pytest.raises(ValueError, match="min_resource must lie in"):
        sweep.create("s", url, str(space), pruner="median", min_resource=50)
    two = tmp_path / "two.json"
    two.write_text(json.dumps({**json.loads(space.read_text()), "seeds": [0, 1]}))
    with pytest.raises(ValueError, match="one run per trial"):
        sweep.create("s", url, str(two), pruner="median")
    sweep.create("s", url, str(space), pruner="median", startup_trials=1)
    spec = optuna.load_study(study_name="s", storage=url).user_attrs["space"]
    assert spec["pruner"]["min_resource"] == 5 and spec["startup_trials"] == 1
    sweep.work("s", url, trials=3, device="cpu", runs_dir=tmp_path / "runs")
    trials = _trials(url, "s")
    assert all(sorted(t.intermediate_values)[:1] == [5] for t in trials)  # every trial reported
    assert {t.state.name for t in trials} <= {"COMPLETE", "PRUNED"}


def test_a_study_without_a_pruner_never_prunes(tmp_path):
    """Optuna gives a loaded study a median pruner by default: invlab must not, now that trials report."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    space = tmp_path / "lr.json"
    space.write_text(json.dumps({"base": {**SPACE["base"], "steps": 20, "eval_every": 5},
                                 "grid": {"lr": [0.003, 1e-7, 2e-7, 3e-7]}}))
    sweep.create("n", url, str(space))
    sweep.work("n", url, device="cpu", runs_dir=tmp_path / "runs")
    assert Counter(t.state.name for t in _trials(url, "n")) == {"COMPLETE": 4}
