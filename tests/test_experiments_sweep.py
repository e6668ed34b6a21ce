"""invlab.experiments.sweep on SQLite: worker processes, one killed mid-trial; concurrent pops;
refusals, pruners, failed runs redone (PostgreSQL: tests/integration/test_sweep_postgresql.py)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from sweep_workers import (  # noqa: E402
    SPACE,
    pop_concurrently,
    start_worker,
    study_trials,
    study_with_a_killed_worker,
)

from invlab.experiments import sweep  # noqa: E402


def test_sqlite_study_survives_a_killed_worker(tmp_path):
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    rep = study_with_a_killed_worker(url, tmp_path)
    assert rep["counts"]["COMPLETE"] == 4


def test_a_sqlite_storage_is_set_up_once_per_file_and_keeps_its_locking(tmp_path):
    """Reusing a storage must keep ``BEGIN IMMEDIATE`` and the busy timeout on the
    connections it opens after a close; a file deleted and made anew gets a new storage."""
    path = tmp_path / "s.db"
    url = f"sqlite:///{path}"
    with sweep.opened(url) as first:
        optuna.create_study(study_name="s", storage=first)
    with sweep.opened(url) as again:
        assert again is first
        with again.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == sweep.SQLITE_BUSY_TIMEOUT_MS
        assert [s.study_name for s in optuna.get_all_study_summaries(again)] == ["s"]
    with sweep.opened(url, heartbeat=5) as beating:  # other options: another storage
        assert beating is not first and beating.heartbeat_interval == 5
    path.unlink()
    with sweep.opened(url) as fresh:
        assert fresh is not first and optuna.get_all_study_summaries(fresh) == []  # the schema made anew


def test_sqlite_workers_never_take_the_same_trial(tmp_path):
    """SQLite ignores ``SELECT ... FOR UPDATE``: without invlab's ``BEGIN IMMEDIATE`` about a
    quarter of these pops were duplicates (Optuna issue #4002)."""
    taken = pop_concurrently(f"sqlite:///{tmp_path / 'queue.db'}", tmp_path)
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
    assert Counter(t.state.name for t in study_trials(url, "r")) == {"COMPLETE": 1, "FAIL": 1}
    (tmp_path / "run1").unlink()  # the cause fixed: the same command again
    assert sweep.work("r", url, device="cpu", runs_dir=tmp_path) == 0  # work alone does not retry a failure
    assert sweep.create_runs("r", url, runs) == 1
    sweep.work("r", url, device="cpu", runs_dir=tmp_path)
    done = {t.params["run"] for t in study_trials(url, "r") if t.state.name == "COMPLETE"}
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
    assert Counter(t.state.name for t in study_trials(url, "r")) == {"FAIL": 1, "COMPLETE": 1}
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
    workers = [start_worker(url, "p", runs, tmp_path) for _ in range(2)]
    for w in workers:
        out, _ = w.communicate(timeout=300)
        assert w.returncode == 0, out
    # a worker that asked just after the other took the last waiting point made a trial of no point: pruned
    # at once, named as such, no run (invlab.experiments.sweep._Objective); the grid's four are the rest
    every = study_trials(url, "p")
    strays = [t for t in every if t.user_attrs.get("failure") == "no grid point left to run"]
    assert all(t.state.name == "PRUNED" and not t.params and "run_dir" not in t.user_attrs for t in strays)
    trials = {t.params["lr"]: t for t in every if t not in strays}
    assert len(trials) == 4
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
    trials = study_trials(url, "s")
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
    assert Counter(t.state.name for t in study_trials(url, "n")) == {"COMPLETE": 4}
