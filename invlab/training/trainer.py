"""Training with the paper's semi-supervised loss: the loop, callbacks and checkpoints.

Each step draws a labelled batch (cycling the small labelled set, reshuffled every pass)
and an unlabelled batch (cycling the unlabelled pool), concatenates them with a boolean
``labelled`` mask and takes one Adam step on :class:`~invlab.losses.SemiSupervisedLoss`.
The loop never plots: progress bars, widgets and live figures hang on callbacks.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Protocol

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from invlab.data import SemiSupervisedData
from invlab.data.preprocess import Preprocess, preprocess_data
from invlab.inverse import check_input, check_model
from invlab.io import check_writable_target, ensure_writable_dir, load_torch, save_json, save_torch
from invlab.losses import LOSS_KEYS, LayerwiseLoss, SemiSupervisedLoss
from invlab.methods import DEFAULTS as METHOD_DEFAULTS
from invlab.methods import Method
from invlab.models import create_model
from invlab.models.custom import build_custom_model, model_source
from invlab.training.checkpoints import CHECKPOINT, CHECKPOINT_FORMAT, METRICS
from invlab.training.config import TrainConfig, build_data, comparable_config, describe_data, stored_config
from invlab.training.device import resolve_device
from invlab.training.evaluate import accuracy, predictions, vote_accuracy
from invlab.training.graphs import GraphedStep
from invlab.training.guard import GracefulInterrupt, RunLock, checkpoint_cadence, named_fault
from invlab.training.hyper import HyperWeights, holdout_split
from invlab.training.lr_schedules import schedule_factor
from invlab.training.provenance import provenance
from invlab.training.sampling import BalancedSampler, CyclingSampler


def lr_factor(config: TrainConfig, step: int, total_steps: int, steps_per_epoch: int) -> float:
    """Factor applied to the learning rate at ``step`` of ``total_steps`` (see TrainConfig)."""
    return schedule_factor(config.schedule, step, total_steps, steps_per_epoch, config.milestones, config.lr_decay)


class Callback(Protocol):
    """Hooks called by :func:`train`; implement any subset (missing ones are skipped).

    ``on_step(trainer, step, losses)`` after every optimiser step (losses: floats);
    ``on_eval(trainer, record)`` after each evaluation (record: the history entry);
    ``on_end(trainer, result)`` once at the end. Set ``trainer.stop = True`` to stop early.
    """


@dataclass
class TrainResult:
    config: dict
    history: list[dict]
    test_accuracy: float  # of the model with the best validation accuracy
    final_test_accuracy: float
    best_val_accuracy: float
    best_step: int
    steps_done: int
    wall_time_s: float
    device: str
    data: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # labelled-train accuracy, per-recording accuracies
    interrupted: bool = False  # stopped by SIGINT or SIGTERM at steps_done (a checkpoint was written there)
    stop_signal: str | None = None  # "SIGINT" or "SIGTERM"
    inverse_method: str | None = None  # how (df/dx)^T f was computed: "transposed", "autograd" or "func"
    # the selected (best-validation) model; model.preprocess is the run's input transform (as load_model's)
    model: nn.Module | None = field(default=None, repr=False)
    data_ref: SemiSupervisedData | None = field(default=None, repr=False)  # the data it was trained on

    def to_dict(self) -> dict:
        """JSON-ready fields (everything but the model and the data)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("model", "data_ref")}


class Trainer:
    """Holds the model, optimiser, samplers and history of one run (see :func:`train`)."""

    def __init__(self, config: TrainConfig, data: SemiSupervisedData | None = None,
                 model: nn.Module | None = None):
        if data is not None:  # the run records the data it was given, not the config's defaults
            config = describe_data(config, data)
        self.config = config
        # The data arrive as loaded; the run's preprocessing applies to every split.
        self.data = preprocess_data(data if data is not None else build_data(config), config.preprocess)
        self.device = resolve_device(config.device)
        rng_seed = config.seed if config.train_seed is None else config.train_seed  # the label draw is config.seed
        torch.manual_seed(rng_seed)
        shape = self.data.input_shape  # (C, H, W) or (C, L)
        classes = self.outputs = config.outputs or self.data.num_classes
        if model is not None:
            self.model_source = model_source(model)
        elif config.model_file is not None:
            model, self.model_source = build_custom_model(config.model_file, shape, classes)
        else:
            model = create_model(config.model, num_classes=classes, input_shape=shape, bias=config.bias,
                                 init=config.init)
            self.model_source = {"kind": "registry", "name": config.model}
        self.model = model.to(self.device)
        # The inputs' transform goes with the network, as load_model gives it: model(model.preprocess(x_raw)).
        self.model.preprocess = Preprocess(config.preprocess)
        # Images in channels-last layout: faster oneDNN convolutions on CPU, same maths.
        self.memory_format = (torch.channels_last if getattr(self.model, "input_ndim", None) == 4
                              else torch.contiguous_format)
        self.model.to(memory_format=self.memory_format)
        self._check_fit()
        self.schedules = config.loss_weights()
        self.holdout, self.hyper = None, None
        if config.learn_weights:  # the hypergradient's objective: labelled examples the loss never sees
            kept, held = holdout_split(self.data.labelled, self.data.y_labelled, config.hyper_holdout)
            self.data = dataclasses.replace(self.data, labelled=kept)
            self.holdout = (self.data.x_train[held].to(self.device).contiguous(memory_format=self.memory_format),
                            self.data.y_train[held].to(self.device))
        self.loss_fn = SemiSupervisedLoss(self.schedules["alpha"].start, self.schedules["beta"].start,
                                          config.reconstruction, config.reduce_dims,
                                          report_unweighted=config.log_unweighted, balance=config.balance,
                                          method=config.inverse_method)
        self.method = None
        if config.method not in ("inversion", "entropy"):  # a baseline's term in the place of the entropy
            self.method = Method(config.method, balance=config.balance,
                                 **{k: getattr(config, k) for k in METHOD_DEFAULTS})
            self.method.generator.manual_seed(rng_seed + 3)
            self.loss_fn.unsupervised = self.method
        if config.learn_weights:
            self.hyper = HyperWeights(self.loss_fn.alpha, self.loss_fn.beta, config.hyper_lr, self.loss_fn, self.device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(self.params, lr=config.learning_rate)
        self.total_steps = config.total_steps(len(self.data.x_train))
        self.steps_per_epoch = max(1, math.ceil(len(self.data.x_train) / max(config.unlabelled_batch, 1)))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.graphed = GraphedStep(self) if config.cuda_graph else None
        self.labelled_sampler = (BalancedSampler(self.data.y_labelled, rng_seed + 1) if config.balanced
                                 else CyclingSampler(len(self.data.labelled), rng_seed + 1))
        self.unlabelled_sampler = CyclingSampler(len(self.data.x_train), rng_seed + 2)
        self.step = 0
        self.history: list[dict] = []
        self.best_val, self.best_step, self.best_state = -1.0, 0, None
        self.stop = False
        self.stop_reason: str | None = None  # why a callback stopped the run (a pruned trial: "pruned")
        self.interrupted: str | None = None  # the signal that stopped the run ("SIGINT", "SIGTERM")
        self.last_checkpoint_step: int | None = None  # of the last checkpoint this process wrote or read
        self.eval_time_s = 0.0  # seconds spent evaluating in this process (see TrainResult.extra)
        self.elapsed_s = 0.0  # wall time of the run over all its sessions, kept by studies.Clock
        self.cpu_s: float | None = 0.0  # CPU time of the same (None: resumed from a checkpoint without it)
        self._sums: dict[str, float] = {}

    def _check_fit(self) -> None:
        """Fail early, with the shapes in the message, if the data does not fit the model
        (or a layer named for per-layer reconstruction is not one of its modules)."""
        modules = dict(self.model.named_modules())
        unknown = [name for name in self.config.layers if name not in modules or not name]
        if unknown:
            raise ValueError(f"layers {unknown} are not modules of {self.config.model!r}; available: "
                             f"{', '.join(n for n in modules if n)}")
        x = self.data.x_train[:2].to(self.device)
        check_model(self.model.train())  # batch norm in training mode mixes samples: refused
        check_input(self.model, x)
        try:
            with torch.no_grad():
                out = self.model(x)
        except RuntimeError as err:
            raise ValueError(f"inputs of shape {tuple(x.shape[1:])} do not fit model {self.config.model!r} "
                             f"({str(err).splitlines()[0]}); check the dataset and the model's input size") from err
        if out.shape != (len(x), self.outputs):
            raise ValueError(f"model {self.config.model!r} returns shape {tuple(out.shape)} for a batch of "
                             f"{len(x)}, expected ({len(x)}, {self.outputs}) logits")

    def _lr_factor(self, step: int) -> float:
        return lr_factor(self.config, step, self.total_steps, self.steps_per_epoch)

    def batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Next mixed batch: labelled first, then unlabelled. Returns x, y, labelled mask."""
        x, y, n_labelled = self._batch()
        mask = torch.zeros(len(y), dtype=torch.bool)
        mask[:n_labelled] = True
        return x, y, mask.to(self.device)

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Next mixed batch as x, y and the number of labelled samples, which come first."""
        d, c = self.data, self.config
        li = d.labelled[self.labelled_sampler.next(c.labelled_batch)]
        ui = self.unlabelled_sampler.next(c.unlabelled_batch)
        idx = torch.cat([li, ui])
        y = d.y_train[idx].clone()
        y[len(li):] = -1  # unlabelled: the label is never looked at
        x = d.x_train[idx].to(self.device).contiguous(memory_format=self.memory_format)
        return x, y.to(self.device), len(li)

    def weights(self, step: int | None = None) -> tuple[float, float, dict[str, float]]:
        """alpha, beta and the hidden layers' gammas used at ``step`` (default: the next one)."""
        step = self.step if step is None else step
        if self.hyper is not None:
            alpha, beta = self.hyper.weights
        else:
            alpha = self.schedules["alpha"](step, self.total_steps)
            beta = self.schedules["beta"](step, self.total_steps)
        return alpha, beta, {k: sch(step, self.total_steps) for k, sch in self.schedules["layers"].items()}

    def loss_at(self, step: int | None = None):
        """The loss of ``step``: eq. 10 with that step's weights (passed to the loss, which keeps
        its own), plus eqs. 11-12's layer terms."""
        alpha, beta, gammas = self.weights(step)
        if gammas:
            loss = LayerwiseLoss.from_eq10(alpha, beta, gammas, balance=self.config.balance)
            loss.method = self.config.inverse_method
            return loss
        return functools.partial(self.loss_fn, alpha=alpha, beta=beta)

    def inverse_method_used(self) -> str:
        """How this run computes (df/dx)^T f(x) in its training steps (recorded in metrics.json)."""
        from invlab.inverse import resolve_method

        if self.loss_fn.method_used is not None:
            return self.loss_fn.method_used
        training = self.model.training
        try:
            return resolve_method(self.model.train(), self.config.inverse_method)
        finally:
            self.model.train(training)

    def train_step(self) -> dict[str, float]:
        self.model.train()
        # the labelled samples as "the first n": the same loss as with a mask, without a sync
        x, y, n_labelled = self._batch()
        if self.graphed is not None:  # the same step, replayed as one CUDA graph
            keys, values = LOSS_KEYS, self.graphed.step(x, y, n_labelled)
        else:
            if self.hyper is not None and self.step % self.config.hyper_every == 0:
                mask = torch.arange(len(y), device=self.device) < n_labelled
                self.hyper.step(self.model, (x, y, mask), self.holdout, inner_lr=self.optimizer.param_groups[0]["lr"])
            if self.method is not None:
                self.method.progress = self.step / self.total_steps
            out = self.loss_at()(self.model, x, y, n_labelled)
            self.optimizer.zero_grad(set_to_none=True)
            # Gradients for the parameters only: the inverse made x a graph input, and its
            # gradient (a transposed convolution through the first layer) is never used.
            torch.autograd.backward(out["total"], inputs=self.params)
            self.optimizer.step()
            if self.method is not None:
                self.method.after_step(self.model)
            keys = (*LOSS_KEYS, *(k for k in out if k.startswith(("R:", "m:"))))
            values = torch.stack([out[k].detach().float() for k in keys])
        self.scheduler.step()
        self.step += 1
        # one device-to-host copy for all the losses (each .item() would wait for the GPU)
        losses = dict(zip(keys, values.tolist()))
        if not math.isfinite(losses["total"]):
            raise FloatingPointError(
                f"the loss became {losses['total']} at step {self.step} ({losses}); lower the "
                "learning rate (--lr) or use --reduce-dims mean")
        return losses

    def evaluate(self) -> dict:
        n = max(1, self._sums.pop("_n", 1))
        t0 = time.perf_counter()
        alpha, beta, gammas = self.weights(max(self.step - 1, 0))  # those of the last step taken
        record = {"step": self.step, **{k: v / n for k, v in self._sums.items()},
                  "lr": float(self.optimizer.param_groups[0]["lr"]), "alpha": alpha, "beta": beta,
                  **{f"gamma:{k}": g for k, g in gammas.items()},
                  "val_accuracy": accuracy(self.model, self.data.x_val, self.data.y_val),
                  # tracked for learning curves and the final report; never used for selection
                  "test_accuracy": accuracy(self.model, self.data.x_test, self.data.y_test)}
        teacher = getattr(self.method, "teacher", None)
        if teacher is not None:  # the mean teacher's promise: a teacher better than its student
            record["teacher_val_accuracy"] = accuracy(teacher, self.data.x_val, self.data.y_val)
        self.eval_time_s += time.perf_counter() - t0  # kept out of the history (deterministic)
        self._sums = {}
        if record["val_accuracy"] > self.best_val:
            self.best_val, self.best_step = record["val_accuracy"], self.step
            self.best_state = copy.deepcopy(self.model.state_dict())
        self.history.append(record)
        return record

    # -- checkpoints -------------------------------------------------------------------
    def state_dict(self) -> dict:
        optimizer, scheduler = self.optimizer.state_dict(), self.scheduler.state_dict()
        if self.graphed is not None:  # written as an eager run would: resumable anywhere
            optimizer, scheduler = GraphedStep.portable(optimizer, scheduler)
        return {
            "format": CHECKPOINT_FORMAT, "config": self.config.to_dict(), "step": self.step,
            "data": self.data.summary(), "model_source": self.model_source,
            "model": self.model.state_dict(), "optimizer": optimizer,
            "scheduler": scheduler, "history": self.history,
            "best_val": self.best_val, "best_step": self.best_step, "best_state": self.best_state,
            "samplers": [self.labelled_sampler.state_dict(), self.unlabelled_sampler.state_dict()],
            "torch_rng": torch.get_rng_state(), "sums": self._sums, "elapsed_s": self.elapsed_s,
            "cpu_s": self.cpu_s,
            **({"hyper": self.hyper.state_dict()} if self.hyper is not None else {}),
            **({"method": self.method.state_dict()} if self.method is not None else {}),
        }

    def load_state_dict(self, state: dict, source: str = "checkpoint") -> None:
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{source} has format {state.get('format')!r}, expected {CHECKPOINT_FORMAT}: "
                             "it was written by another invlab version; start a new run")
        mine = comparable_config(self.config.to_dict())
        theirs = comparable_config(stored_config(state["config"]))
        diff = {k: (theirs.get(k), mine[k]) for k in mine
                if k not in TrainConfig.RESUMABLE_CHANGES and theirs.get(k) != mine[k]}
        if diff:
            detail = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in diff.items())
            raise ValueError(f"cannot resume from {source}: the run settings differ ({detail}). "
                             "Resume with the same settings, or use a new --out folder")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.graphed is not None:  # new optimiser tensors: warm up and capture again
            self.graphed.reset()
        self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.history = state["step"], state["history"]
        self.best_val, self.best_step, self.best_state = state["best_val"], state["best_step"], state["best_state"]
        self.labelled_sampler.load_state_dict(state["samplers"][0])
        self.unlabelled_sampler.load_state_dict(state["samplers"][1])
        torch.set_rng_state(state["torch_rng"])
        self._sums = state["sums"]
        self.elapsed_s = state.get("elapsed_s", 0.0)
        self.cpu_s = state.get("cpu_s", 0.0 if self.step == 0 else None)
        if self.hyper is not None:
            self.hyper.load_state_dict(state["hyper"])
        if self.method is not None:
            self.method.load_state_dict(state["method"], self.model)

    def save_checkpoint(self, path: str | Path) -> Path:
        """Write the checkpoint atomically (the previous one survives a failed write); a full
        disk or a read-only folder is a RuntimeError that names it and the last good checkpoint."""
        path = Path(path)
        try:
            save_torch(self.state_dict(), path)
        except OSError as err:
            raise RuntimeError(named_fault(err, path, self.last_checkpoint_step, path)) from err
        self.last_checkpoint_step = self.step
        return path

    def load_checkpoint(self, path: str | Path) -> None:
        try:
            state = load_torch(path)
        except Exception as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ValueError(f"cannot resume from {path}: the checkpoint is truncated or corrupt ({first}); "
                             "a checkpoint is replaced whole or not at all, so this file was cut or changed "
                             "outside invlab: start again with --overwrite, or use a new --out folder") from err
        self.load_state_dict(state, str(path))
        self.last_checkpoint_step = self.step

    # -- the loop ------------------------------------------------------------------------
    def run(self, callbacks=(), progress: bool = True, checkpoint_path: str | Path | None = None,
            checkpoint_every: int | str | None = None) -> TrainResult:
        """Train up to ``total_steps`` (continuing from ``self.step``) and return the result.

        With ``checkpoint_path``, a checkpoint is written every ``checkpoint_every`` steps (an
        int), or every so many minutes (``"10m"``), or by default at every evaluation and at
        least every 5 minutes of training; and at the end. SIGINT or SIGTERM stops the run
        after the current step, with a checkpoint there (:class:`~invlab.training.guard.GracefulInterrupt`):
        the result then has ``interrupted`` set and no further evaluation, so that resuming
        gives the same numbers as an uninterrupted run.
        """
        t0 = time.perf_counter()
        every = self.config.eval_every
        every_steps, every_s = checkpoint_cadence(checkpoint_every)
        at_evals = every_steps is None and every_s is None
        every_s = 300.0 if at_evals else every_s
        last_save = time.monotonic()
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not progress,
                   desc=f"{self.config.model} a={self.config.alpha} b={self.config.beta}", unit="step")
        with GracefulInterrupt() as interrupt:
            while self.step < self.total_steps and not self.stop:
                losses = self.train_step()
                for k, v in losses.items():
                    self._sums[k] = self._sums.get(k, 0.0) + v
                self._sums["_n"] = self._sums.get("_n", 0) + 1
                _call(callbacks, "on_step", self, self.step, losses)
                if self.step % every == 0 or self.step == self.total_steps:
                    record = self.evaluate()
                    bar.set_postfix(loss=f"{record['total']:.3f}", val=f"{record['val_accuracy']:.2f}%")
                    _call(callbacks, "on_eval", self, record)
                if checkpoint_path is not None and (
                        self.step == self.total_steps or interrupt.signum is not None
                        or (every_steps is not None and self.step % every_steps == 0)
                        or (at_evals and self.step % every == 0)
                        or (every_s is not None and time.monotonic() - last_save >= every_s)):
                    self.save_checkpoint(checkpoint_path)
                    last_save = time.monotonic()
                bar.update(1)
                if interrupt.signum is not None:
                    self.interrupted = interrupt.name
                    break
        bar.close()
        if self.interrupted is None and (not self.history or self.history[-1]["step"] != self.step):
            _call(callbacks, "on_eval", self, self.evaluate())  # stopped between evaluations
        result = self.result(time.perf_counter() - t0)
        _call(callbacks, "on_end", self, result)
        return result

    def result(self, wall_time_s: float) -> TrainResult:
        # The best state was snapshotted at an evaluation, whose record holds its test accuracy.
        best_model = copy.deepcopy(self.model)
        if self.best_state is None:  # interrupted before the first evaluation: the model as it stands
            best_test = float("nan")
        else:
            best_test = next(r["test_accuracy"] for r in self.history if r["step"] == self.best_step)
            best_model.load_state_dict(self.best_state)
        d = self.data
        extra = {"labelled_train_accuracy": accuracy(best_model, d.x_train, d.y_train, index=d.labelled),
                 "eval_time_s": self.eval_time_s}
        for split, x, y, groups in (
            ("val", d.x_val, d.y_val, d.groups_val),
            ("test", d.x_test, d.y_test, d.groups_test),
        ):
            if groups is not None:
                extra[f"{split}_recording_accuracy"] = vote_accuracy(predictions(best_model, x), y, groups)
        return TrainResult(
            config=self.config.to_dict(),
            history=self.history,
            test_accuracy=best_test,
            final_test_accuracy=self.history[-1]["test_accuracy"] if self.history else float("nan"),
            best_val_accuracy=self.best_val,
            best_step=self.best_step,
            steps_done=self.step,
            wall_time_s=wall_time_s,
            device=str(self.device),
            data=self.data.summary(),
            extra=extra,
            model=best_model,
            data_ref=self.data,
            interrupted=self.interrupted is not None,
            stop_signal=self.interrupted,
            inverse_method=self.inverse_method_used(),
        )


def _call(callbacks, hook: str, *args) -> None:
    for cb in callbacks:
        fn = getattr(cb, hook, None)
        if fn is not None:
            fn(*args)


def train(config: TrainConfig, data: SemiSupervisedData | None = None, callbacks=(),
          out_dir: str | Path | None = None, resume: bool = False, progress: bool = True,
          overwrite: bool = False, model: nn.Module | None = None,
          checkpoint_every: int | str | None = None) -> TrainResult:
    """Train ``config.model`` with the paper's loss; return the history and accuracies.

    ``data`` (default: ``config.dataset`` loaded by :func:`build_data`) and ``model`` (default:
    ``config.model`` from the registry, or ``config.model_file``, sized from the data) may
    be given directly; the run then records the data set and the module's class.

    With ``out_dir``: takes the folder's lock first (:class:`~invlab.training.guard.RunLock`: a
    second run or ``--resume`` of the same folder fails at once, naming the first), checks
    every setting, the data and that the folder can be written, then writes
    ``checkpoint.pt`` (at every evaluation and at least every 5 minutes, or every
    ``checkpoint_every`` steps or ``"Nm"`` minutes) and ``metrics.json`` (with its
    ``provenance``) at the end, both atomically. A folder that already holds a run is
    refused unless ``resume=True`` (continue it; its settings must match) or
    ``overwrite=True`` (replace it). A run that fails before its first checkpoint leaves no
    folder behind.

    SIGINT (Ctrl-C, a notebook's interrupt) or SIGTERM stops the run after the current step
    with a checkpoint there and ``metrics.json`` marked ``"interrupted": true``; the result
    is returned as it stands (``result.interrupted``), its model and history usable.
    Model selection: ``test_accuracy`` is that of the step with the best validation
    accuracy; the test set never steers training.
    """
    if out_dir is None:
        return Trainer(config, data, model=model).run(callbacks, progress=progress)
    out_dir = Path(out_dir)
    ckpt = out_dir / CHECKPOINT
    check_writable_target(out_dir)
    created = out_dir  # the top-most folder this call creates (the lock needs the folder): removed on failure
    while not created.parent.exists():
        created = created.parent
    created = None if out_dir.exists() else created
    lock = RunLock(out_dir).acquire()  # before the checks: a second process on this folder stops here
    try:
        if resume and not ckpt.exists():
            raise FileNotFoundError(f"--resume: no checkpoint at {ckpt}; drop --resume to start a new run")
        if not resume and not overwrite and (ckpt.exists() or (out_dir / METRICS).exists()):
            raise FileExistsError(f"{out_dir} already holds a run ({CHECKPOINT} or {METRICS}); continue it with "
                                  "--resume, replace it with --overwrite, or choose another --out folder")
        trainer = Trainer(config, data, model=model)  # loads the data and builds the model: may fail
        if resume:
            trainer.load_checkpoint(ckpt)
        ensure_writable_dir(out_dir)
        result = trainer.run(callbacks, progress=progress, checkpoint_path=ckpt, checkpoint_every=checkpoint_every)
        try:
            save_json({**result.to_dict(), "provenance": provenance(device=result.device)}, out_dir / METRICS)
        except OSError as err:
            raise RuntimeError(named_fault(err, out_dir / METRICS, trainer.last_checkpoint_step, ckpt)) from err
        return result
    except BaseException:
        if created is not None and not ckpt.exists():  # nothing to resume: leave no folder behind
            lock.release()
            _remove_empty_run_folder(out_dir, created)
        raise
    finally:
        lock.release()


def _remove_empty_run_folder(folder: Path, top: Path) -> None:
    """Remove ``folder`` if it holds nothing but the run lock's files, then its parents up to
    ``top`` (the first folder the run created) while they are empty."""
    import shutil

    from invlab.training.guard import HOLDER, LOCK

    if not (folder.is_dir() and {p.name for p in folder.iterdir()} <= {LOCK, HOLDER}):
        return
    shutil.rmtree(folder, ignore_errors=True)
    while folder != top and folder.parent != folder:
        folder = folder.parent
        try:
            folder.rmdir()  # only if empty
        except OSError:
            return
