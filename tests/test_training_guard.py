"""Interrupted runs lose nothing: Ctrl-C and SIGTERM save and say how to resume, one writer
per run folder, a full disk named as such. Real `invlab train` processes, signalled mid-run."""

from __future__ import annotations

import errno
import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from invlab.cli import main
from invlab.train import TrainConfig, train

TRAIN = ["train", "--dataset", "synthetic", "--labels", "20", "--val-size", "100", "--labelled-batch", "10",
         "--unlabelled-batch", "10", "--eval-every", "50", "--no-progress"]
FAST = dict(dataset="synthetic", labels_per_class=2, val_size=100, labelled_batch=10, unlabelled_batch=10,
            eval_every=10, steps=30, schedule="cosine", preprocess="center-maxabs", balance=1.0, device="cpu")


PAUSED = Path(__file__).with_name("paused_invlab.py")


def _invlab(*args, hold: tuple[int, Path], cwd=None) -> subprocess.Popen:
    """A real `invlab` process that waits before training step ``hold[0]`` until released through the folder
    ``hold[1]`` (tests/paused_invlab.py): a signal sent while it waits lands at a known step. What needs no
    signal runs in the test's own process (``main``): another process would only load torch again."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    hold[1].mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(PAUSED), str(hold[0]), str(hold[1]), *args]
    return subprocess.Popen(command, cwd=cwd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _signal_while_held(proc: subprocess.Popen, folder: Path, sig: int) -> None:
    """Wait until ``proc`` waits at its step, send ``sig``, and let it go on: it cannot have finished."""
    _wait_for(folder / "paused", proc)
    proc.send_signal(sig)
    if sig != signal.SIGKILL:
        (folder / "go").write_text("")


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before {path.name} appeared: {proc.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {path} after {timeout} s")
        time.sleep(0.02)


def _history(folder: Path) -> list[tuple]:
    """(step, loss, validation accuracy) of every evaluation; the losses to float32 summation-order noise."""
    metrics = json.loads((folder / "metrics.json").read_text())
    return [(h["step"], pytest.approx(h["total"], rel=1e-4), h["val_accuracy"]) for h in metrics["history"]]


def test_a_signal_mid_run_checkpoints_says_how_to_resume_and_resume_matches_an_uninterrupted_run(tmp_path):
    """Ctrl-C (SIGINT, exit 130) and SIGTERM (143), each sent to a real run mid-way; both resumed
    with the printed command end as an uninterrupted run does."""
    steps = ["--steps", "30", "--checkpoint-every", "5", "--eval-every", "10"]
    signals = {"int": (signal.SIGINT, 130), "term": (signal.SIGTERM, 143)}
    cuts = {name: _invlab(*TRAIN, *steps, "--out", str(tmp_path / name), hold=(12, tmp_path / f"{name}-hold"))
            for name in signals}
    resumes = {}
    for name, (sig, code) in signals.items():
        cut, folder = cuts[name], tmp_path / name
        _signal_while_held(cut, tmp_path / f"{name}-hold", sig)  # before step 12: it stops after that step
        out, err = cut.communicate(timeout=120)
        assert cut.returncode == code, (out, err)
        assert "Traceback" not in err
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["interrupted"] is True and metrics["stop_signal"] == sig.name and metrics["steps_done"] == 13
        line = next(ln for ln in err.splitlines() if ln.startswith("interrupted at step"))
        assert line.startswith(f"interrupted at step {metrics['steps_done']} of 30; continue with: invlab train ")
        assert f"--out {folder}" in line and line.endswith(" --resume")
        state = torch.load(folder / "checkpoint.pt", weights_only=True)
        assert state["step"] == metrics["steps_done"]  # the checkpoint is at the step reached
        resumes[name] = line.split("continue with: invlab ", 1)[1].split()  # the printed command, as typed
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the runs beside them (OMP_NUM_THREADS=1): the same summation order
    try:
        assert main([*TRAIN, *steps, "--out", str(tmp_path / "whole")]) == 0  # the uninterrupted run
        for name, command in resumes.items():
            assert main(command) == 0, name
    finally:
        torch.set_num_threads(threads)
    for name in signals:
        assert _history(tmp_path / name) == _history(tmp_path / "whole"), name


def test_a_second_run_on_the_same_folder_fails_at_once_naming_the_first(tmp_path, capsys):
    hold = tmp_path / "hold"
    first = _invlab(*TRAIN, "--steps", "600", "--out", str(tmp_path / "x"), hold=(3, hold))
    _wait_for(hold / "paused", first)  # holding the lock, at step 3 until released
    for extra in ([], ["--resume"]):  # from this process, another than the first's: at once, the first held
        assert main([*TRAIN, "--steps", "600", "--out", str(tmp_path / "x"), *extra]) == 2
        err = capsys.readouterr().err
        assert f"is in use by process {first.pid} on " in err and "running since" in err
    assert first.poll() is None
    _signal_while_held(first, hold, signal.SIGINT)  # untouched by them: it stops as an interrupted run does
    out, err = first.communicate(timeout=300)
    assert first.returncode == 130, err
    assert (tmp_path / "x" / "checkpoint.pt").exists()
    assert not (tmp_path / "x" / ".lock.json").exists()  # released at the end


def test_a_lock_left_by_a_run_killed_with_sigkill_is_taken_over(tmp_path):
    run = _invlab(*TRAIN, "--steps", "100", "--checkpoint-every", "5", "--out", str(tmp_path / "x"),
                  hold=(12, tmp_path / "hold"))
    _signal_while_held(run, tmp_path / "hold", signal.SIGKILL)  # killed at step 12, checkpoint of step 10 there
    run.communicate()
    assert torch.load(tmp_path / "x" / "checkpoint.pt", weights_only=True)["step"] == 10
    assert json.loads((tmp_path / "x" / ".lock.json").read_text())["pid"] == run.pid  # left behind
    assert main([*TRAIN, "--steps", "100", "--out", str(tmp_path / "x"), "--resume"]) == 0
    assert json.loads((tmp_path / "x" / "metrics.json").read_text())["steps_done"] == 100


def test_a_full_disk_during_a_checkpoint_is_named_and_the_earlier_checkpoint_survives(tmp_path, monkeypatch, capsys):
    real = pathlib.Path.write_bytes
    calls = []

    def full_after_the_first(self, data):
        if self.name.startswith(".checkpoint.pt."):
            calls.append(self)
            if len(calls) > 1:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", full_after_the_first)
    assert main([*TRAIN, "--steps", "30", "--checkpoint-every", "10", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (f"invlab: error: cannot write checkpoint.pt in {tmp_path / 'x'}: no space left on the device; "
                   f"free some space there; the last good checkpoint is step 10 ({tmp_path / 'x' / 'checkpoint.pt'}): "
                   "continue with --resume once fixed")
    assert torch.load(tmp_path / "x" / "checkpoint.pt", weights_only=True)["step"] == 10  # intact
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == [".lock", "checkpoint.pt"]  # no temp file left


def test_a_read_only_folder_is_named(tmp_path, monkeypatch, capsys):
    def read_only(self, data):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    monkeypatch.setattr(pathlib.Path, "write_bytes", read_only)
    assert main([*TRAIN, "--steps", "20", "--checkpoint-every", "10", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "the file system is read-only; make it writable; no checkpoint was written yet" in err
    assert not (tmp_path / "x").exists()  # nothing to resume: no folder left behind


def test_resume_from_a_truncated_checkpoint_says_so(tmp_path, capsys):
    assert main([*TRAIN, "--steps", "20", "--out", str(tmp_path / "x")]) == 0
    ckpt = tmp_path / "x" / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    assert main([*TRAIN, "--steps", "40", "--out", str(tmp_path / "x"), "--resume"]) == 2
    err = capsys.readouterr().err
    assert f"cannot resume from {ckpt}: the checkpoint is truncated or corrupt" in err and "Traceback" not in err


def test_a_run_that_fails_before_its_first_checkpoint_leaves_no_folder(tmp_path, monkeypatch):
    from invlab.training.trainer import Trainer

    def diverge(self):
        raise FloatingPointError("the loss became nan at step 1")

    monkeypatch.setattr(Trainer, "train_step", diverge)
    with pytest.raises(FloatingPointError):
        train(TrainConfig(**FAST), out_dir=tmp_path / "x", progress=False)
    assert not (tmp_path / "x").exists()
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(TrainConfig(**FAST), out_dir=tmp_path / "y", resume=True, progress=False)
    assert not (tmp_path / "y").exists()


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals need the main thread")
def test_an_interrupt_in_a_notebook_stops_the_run_and_leaves_the_model_and_history_usable(tmp_path):
    class CtrlC:  # what Jupyter's "interrupt the kernel" sends
        def on_step(self, trainer, step, losses):
            if step == 17:
                os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)
    result = train(TrainConfig(**FAST), out_dir=tmp_path / "x", progress=False, callbacks=[CtrlC()])
    assert signal.getsignal(signal.SIGINT) is before  # the notebook's own handler is back
    assert result.interrupted and result.stop_signal == "SIGINT" and result.steps_done == 17
    assert [h["step"] for h in result.history] == [10]  # no evaluation added at the interruption
    assert result.model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert torch.load(tmp_path / "x" / "checkpoint.pt", weights_only=True)["step"] == 17
    done = train(TrainConfig(**FAST), out_dir=tmp_path / "x", resume=True, progress=False)
    whole = train(TrainConfig(**FAST), progress=False)
    assert [round(h["total"], 5) for h in done.history] == [round(h["total"], 5) for h in whole.history]


def test_a_checkpoint_cadence_in_minutes_or_steps_is_checked():
    from invlab.training.guard import checkpoint_cadence

    assert checkpoint_cadence("10m") == (None, 600.0) and checkpoint_cadence("250") == (250, None)
    assert checkpoint_cadence(None) == (None, None)
    for bad in ("0", "ten", "-5m", "0m"):
        with pytest.raises(ValueError, match="checkpoint-every"):
            checkpoint_cadence(bad)


def test_a_sweep_worker_given_sigterm_queues_its_trial_and_another_worker_resumes_it(tmp_path):
    optuna = pytest.importorskip("optuna")
    from invlab import sweep

    url = f"sqlite:///{tmp_path / 's.db'}"
    runs = {"only": (TrainConfig(**{**FAST, "steps": 100, "eval_every": 5}), tmp_path / "run")}
    sweep.create_runs("r", url, runs)
    cmd = ["sweep", "work", "--study", "r", "--storage", url, "--device", "cpu", "--heartbeat", "1"]
    first = _invlab(*cmd, cwd=tmp_path, hold=(30, tmp_path / "hold"))
    _signal_while_held(first, tmp_path / "hold", signal.SIGTERM)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 143, err
    assert "the trial is queued again" in err
    states = sorted(t.state.name for t in optuna.load_study(study_name="r", storage=url).get_trials())
    assert states == ["FAIL", "WAITING"]
    at = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["step"]
    assert main(cmd) == 0  # another worker (this process) takes the queued trial
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["resumed_from"] == at == 31 and result["steps_done"] == 100  # held before step 30: stopped after it


def test_a_full_disk_on_a_real_small_tmpfs_is_named(tmp_path, capsys):
    """The same on a real 1.5 MB file system (mounted where the tests may: root on Linux)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1500k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()}); the patched write covers it")
    try:
        assert main([*TRAIN, "--steps", "200", "--checkpoint-every", "20", "--out", str(disk / "x")]) == 2
        err = capsys.readouterr().err
        assert err.strip().splitlines()[-1] == (
            f"invlab: error: cannot write checkpoint.pt in {disk / 'x'}: no space left on the device; free some space "
            f"there; the last good checkpoint is step 20 ({disk / 'x' / 'checkpoint.pt'}): continue with --resume "
            "once fixed")
        assert torch.load(disk / "x" / "checkpoint.pt", weights_only=True)["step"] == 20
        assert sorted(p.name for p in (disk / "x").iterdir()) == [".lock", "checkpoint.pt"]
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
