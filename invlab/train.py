"""Training with the paper's semi-supervised loss: config, loop, callbacks, checkpoints.

Each step draws a labelled batch (cycling the small labelled set, reshuffled every pass)
and an unlabelled batch (cycling the unlabelled pool), concatenates them with a boolean
``labelled`` mask and takes one Adam step on :class:`~invlab.losses.SemiSupervisedLoss`.
The loop never plots: progress bars, widgets and live figures hang on callbacks.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from .data import SemiSupervisedData, load_dataset
from .data.preprocess import PREPROCESSING, Preprocess, check_preprocess, preprocess_data
from .evaluate import accuracy, predictions, vote_accuracy
from .graphs import GraphedStep
from .loop import BalancedSampler, CyclingSampler, resolve_device, schedule_factor
from .inverse import check_input, check_model
from .io import check_writable_target, ensure_writable_dir, load_torch, save_json, save_torch
from .hyper import HyperWeights, holdout_split
from .losses import LOSS_KEYS, LayerwiseLoss, SemiSupervisedLoss
from .methods import DEFAULTS as METHOD_DEFAULTS, METHODS, Method
from .options import option
from .data.mnist import MNIST_INPUT_SHAPE
from .models import create_model, list_models
from .models.audio import BIRD10_INPUT_SHAPE
from .models.custom import build_custom_model, model_source
from .models.registry import INITS
from .provenance import provenance
from .schedules import WeightSchedule

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.json"
_FORMAT = 1
SCHEDULES = ("constant", "cosine", "step", "invsqrt")


#: The recipe that ``invlab train``'s defaults and ``bin/run`` use, on top of TrainConfig's,
#: chosen on validation accuracy by ``benchmarks/recipe_study.py`` (docs/RESULTS.md):
#: cosine decay, per-image centring and max-abs scaling, and the class-balance term.
#: TrainConfig's own defaults stay the paper's bare setting (eq. 10, raw pixels).
RECOMMENDED = {"schedule": "cosine", "preprocess": "center-maxabs", "balance": 1.0, "steps": 2000}


def default_lr(model: str) -> float:
    """Adam learning rate of the paper (§3): 0.01 for SmallCNN, 0.01/3 for ResNets and
    LargeCNN. ``bird10-cnn`` gets 0.001 (not given in the paper: an assumption)."""
    if model.startswith("small"):
        return 0.01
    if model.startswith("bird10") or model not in list_models():
        return 1e-3  # bird10-cnn and networks of your own (--model-file): Adam's usual rate
    return 0.01 / 3


@dataclass
class TrainConfig:
    """Everything that defines a training run (overridable by keyword).

    ``steps`` counts optimiser steps; ``epochs``, when given, overrides it with
    ceil(epochs · n_unlabelled / unlabelled_batch), one epoch being a pass over the
    unlabelled pool. ``lr=None`` takes :func:`default_lr`.

    Learning-rate schedules (factor applied to ``lr`` at step t of T):

    * ``"constant"`` — 1;
    * ``"cosine"`` — (1 + cos(pi t / T)) / 2, down to 0 at the end;
    * ``"step"`` — ``lr_decay`` ** (number of ``milestones`` (fractions of T) passed),
      e.g. ÷5 at 50 % and 75 % of the run, as the first author's later code did at
      epochs 60, 120, 160;
    * ``"invsqrt"`` — 1 / sqrt(1 + t / E), E the steps of one epoch (one pass over the
      unlabelled pool): lr / sqrt(epoch), another of the author's choices.

    The input preprocessing (``preprocess``), biases (``bias``) and initialisation
    (``init``) are recorded in the checkpoint, so :func:`load_model` rebuilds the same
    network and hands back the same input transform.

    The paper's extensions (its §4): ``alpha`` and ``beta`` may be schedules over the run
    (eq. 13, :mod:`invlab.schedules`, e.g. ``alpha="0.3:0.7"``); ``layers`` adds the
    reconstruction of hidden layers, {module name: gamma} (eqs. 11-12,
    :class:`~invlab.losses.LayerwiseLoss`); ``learn_weights`` learns alpha and beta by
    hypergradient (eqs. 14-15, :mod:`invlab.hyper`), holding ``hyper_holdout`` labelled
    examples per class out of the loss for its objective. Every evaluation record holds
    the weights in use (``alpha``, ``beta``, ``gamma:<layer>``).
    """

    # Every field is an option of `invlab train`, of the benchmarks and of sweep spaces
    # (invlab.options builds them from the help, choices and flags given here).
    model: str = option("smallcnn-mean", "network: a name of `invlab models`", metavar="NAME")
    model_file: str | None = option(None, "a network of your own: FACTORY() in FILE.py returns an nn.Module (it "
                                          "may take input_shape and num_classes); replaces --model; the checkpoint "
                                          "records it for load_model", metavar="FILE.py:FACTORY")
    outputs: int | None = option(None, "the network's outputs (default: the data set's class count); clustering "
                                       "without labels (alpha 0) may ask for another number of clusters", metavar="K")
    dataset: str = option("mnist", "a name of `invlab data list`: mnist, fashion-mnist, kmnist, cifar10, svhn, bird10 "
                                   "(real recordings under --data-root, else a synthetic stand-in), synthetic, "
                                   "folder:PATH, npz:PATH", metavar="NAME", type="dataset")
    resize: tuple[int, int] | None = option(None, "folder: data sets: resize every image to H x W (else images of "
                                                  "different sizes are refused)", metavar=("H", "W"))
    labels_per_class: int | None = option(5, "labelled training examples of each class (None: all labelled, "
                                             "Bird10's setting)", metavar="K")
    alpha: float | str = option(0.7, "weight of the supervised cross-entropy, in [0, 1]; a number or a schedule over "
                                     "the run, START:END[:linear|cosine|step][@FRACTION], e.g. 0.3:0.7 (invlab."
                                     "schedules)", metavar="WEIGHT", type="weight")
    beta: float | str = option(0.2, "reconstruction share of the unsupervised part, in [0, 1]; a number or a schedule "
                                    "like --alpha's (default 0.2; on the command line 0 with a --method other than "
                                    "inversion)", metavar="WEIGHT", type="weight")
    layers: dict = option({}, "reconstruction at a hidden layer too (eqs. 11-12), weight GAMMA (a number or a "
                              "schedule); repeat for several layers; NAME from the model's named_modules(), e.g. "
                              "--layer features.2=0.06", flag="--layer", metavar="NAME=GAMMA", type="layers")
    method: str = option("inversion", "the unsupervised term: inversion (the paper: entropy, balance and R), "
                                      "supervised, entropy, pseudo-label (Lee 2013), vat (Miyato et al. 2018), "
                                      "mean-teacher (Tarvainen & Valpola 2017); beta > 0 adds R to any of them",
                         choices=METHODS)
    pl_threshold: float = option(METHOD_DEFAULTS["pl_threshold"], "pseudo-label: confidence needed for a hard label")
    rampup: float = option(METHOD_DEFAULTS["rampup"], "pseudo-label, mean-teacher: fraction of the run over which "
                                                      "the weight ramps up")
    vat_eps: float = option(METHOD_DEFAULTS["vat_eps"], "vat: L2 norm of the adversarial perturbation")
    vat_xi: float = option(METHOD_DEFAULTS["vat_xi"], "vat: step of the power iteration")
    ema: float = option(METHOD_DEFAULTS["ema"], "mean-teacher: decay of the teacher's moving average")
    consistency: float = option(METHOD_DEFAULTS["consistency"], "mean-teacher: weight of the consistency cost")
    noise: float = option(METHOD_DEFAULTS["noise"], "mean-teacher: std of the Gaussian input noise")
    learn_weights: bool = option(False, "learn alpha and beta by hypergradient through one update (eqs. 14-15), "
                                        "starting from --alpha and --beta; the objective is the cross-entropy of "
                                        "--hyper-holdout labelled examples per class kept out of the loss")
    hyper_lr: float = option(0.02, "Adam step of the learned weights' logits")
    hyper_every: int = option(10, "training steps between hypergradient steps")
    hyper_holdout: int = option(1, "labelled examples per class held out for the hypergradient")
    balance: float = option(0.0, "weight of a class-balance term beside the entropy, log C - H(mean prediction) over "
                                 "the unlabelled samples (not in the paper; 0 = the paper's loss; 1 = mutual "
                                 "information)")
    seed: int = option(0, "the label draw; also the initialisation and batch order unless --train-seed is given")
    train_seed: int | None = option(None, "seed of the initialisation and batches only, the label draw kept "
                                          "(--seed): a restart of the same draw (default: --seed)")
    steps: int = option(1000, "optimiser steps")
    epochs: float | None = option(None, "passes over the unlabelled pool; overrides --steps")
    labelled_batch: int = option(50, "labelled samples per step, cycling the labelled set")
    unlabelled_batch: int = option(100, "unlabelled samples per step, cycling the unlabelled pool")
    balanced: bool = option(False, "draw labelled batches class-balanced (LABELLED_BATCH / classes of each class)")
    lr: float | None = option(None, "Adam learning rate (default: the paper's, 0.01 for SmallCNN, 0.01/3 for LargeCNN "
                                    "and ResNets, 0.001 for bird10-cnn and networks of your own)")
    schedule: str = option("constant", "learning-rate schedule: constant, cosine (decay to 0), step (x LR_DECAY at "
                                       "each of MILESTONES), invsqrt (lr / sqrt(1 + epoch))", choices=SCHEDULES)
    milestones: tuple[float, ...] = option((0.5, 0.75), "step schedule: fractions of the run where the rate drops",
                                           metavar="FRACTION")
    lr_decay: float = option(0.2, "step schedule: factor applied at each milestone")
    preprocess: str = option("none", "per-example input transform for train, validation and test: none, "
                                     "center-maxabs (centre, divide by max |x|), standardize (zero mean, unit "
                                     "variance)", choices=PREPROCESSING)
    bias: bool | None = option(None, "biases in every layer (default: the model's own; the inhibitor 'U' models have "
                                     "none); --no-bias makes f(x) = A[x]x exactly")
    init: str = option("default", "weight initialisation: default (PyTorch's) or xavier (uniform, zero biases)",
                       choices=INITS)
    reconstruction: str = option("mse", "reconstruction loss R", choices=("mse", "cosine"))
    reduce_dims: str = option("mean", "average or sum R over input dimensions", choices=("mean", "sum"))
    inverse_method: str = option("autograd", "how (df/dx)^T f is computed: torch.autograd.grad or torch.func.vjp "
                                             "(benchmarks/step_cost.py)", choices=("autograd", "func"))
    eval_every: int = option(250, "steps between evaluations and checkpoints")
    val_size: int | None = option(None, "validation examples carved from the training set (default: the data set's "
                                        "own, 10 000 on mnist, fashion-mnist and kmnist, else 10 % of training)",
                                  metavar="N")
    data_root: str | None = option(None, "the data set's folder (default: the data folder, or its <name>/ "
                                         "subfolder)", metavar="DIR")
    device: str = option("auto", "auto uses a CUDA GPU when there is one; cpu, cuda or cuda:K", metavar="DEVICE")
    log_unweighted: bool = option(True, "compute R for the logs even when its weight is 0 (one extra pass)")
    cuda_graph: bool = option(False, "replay each training step as one CUDA graph on a GPU: the same maths, far "
                                     "fewer kernel launches (needs --device cuda, constant alpha and beta)")

    # Fields that may differ when resuming (a longer run, another machine, quieter logs);
    # a schedule tied to the run's length (cosine, step) then stretches from the resumed step on.
    RESUMABLE_CHANGES = ("steps", "epochs", "eval_every", "device", "log_unweighted", "inverse_method",
                         "cuda_graph")

    def __post_init__(self):
        if self.model_file is not None:
            if self.model not in ("custom", "smallcnn-mean"):
                raise ValueError(f"give a registry model ({self.model!r}) or a model_file, not both")
            self.model = "custom"
        elif self.model == "custom":
            raise ValueError("model 'custom' needs model_file='FILE.py:FACTORY' (--model-file)")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.method not in ("inversion", "entropy") and (self.layers or self.learn_weights or self.cuda_graph):
            raise ValueError(f"method {self.method!r} runs eq. 10's input reconstruction only: drop layers, "
                             "learn_weights and cuda_graph, or use method 'inversion'")
        if not (0 < self.pl_threshold <= 1 and 0 <= self.rampup <= 1 and self.vat_eps > 0 and self.vat_xi > 0
                and 0 <= self.ema < 1 and self.consistency >= 0 and self.noise >= 0):
            raise ValueError("method knobs out of range: need 0 < pl_threshold <= 1, 0 <= rampup <= 1, vat_eps > 0, "
                             "vat_xi > 0, 0 <= ema < 1, consistency >= 0, noise >= 0")
        if self.resize is not None:
            self.resize = tuple(int(v) for v in self.resize)
            if len(self.resize) != 2 or min(self.resize) < 1:
                raise ValueError(f"resize must be two positive integers (H, W), got {self.resize}")
        schedules = self.schedules()  # validates the forms
        for name in ("alpha", "beta"):
            schedules[name].check_range(name)
        for name, sched in schedules["layers"].items():
            sched.check_range(f"the weight of layer {name!r}", high=None)
        for a in (schedules["alpha"].start, schedules["alpha"].end):  # validates the rest
            SemiSupervisedLoss(a, schedules["beta"].start, self.reconstruction, self.reduce_dims, balance=self.balance)
        if "input" in self.layers:
            raise ValueError("layers: the input's reconstruction is eq. 10's beta term; name hidden layers only")
        if self.layers and (self.reconstruction, self.reduce_dims) != ("mse", "mean"):
            raise ValueError("per-layer reconstruction (layers) uses the squared error averaged over each layer's "
                             "dimensions: keep reconstruction='mse' and reduce_dims='mean'")
        if self.learn_weights:
            if not (schedules["alpha"].constant and schedules["beta"].constant):
                raise ValueError("learn_weights starts from constant alpha and beta; give numbers, not schedules")
            if not (0 < schedules["alpha"].start < 1 and 0 < schedules["beta"].start < 1):
                raise ValueError("learn_weights needs alpha and beta strictly inside (0, 1) to start from")
            if self.hyper_every < 1 or self.hyper_holdout < 1 or not self.hyper_lr > 0:
                raise ValueError("hyper_every and hyper_holdout must be at least 1 and hyper_lr positive")
        if self.cuda_graph and (self.learn_weights or self.layers or not (
                schedules["alpha"].constant and schedules["beta"].constant)):
            raise ValueError("cuda_graph replays one fixed training step: it needs constant alpha and beta, "
                             "and neither learn_weights nor layers; drop cuda_graph for those runs")
        if self.train_seed is not None and (isinstance(self.train_seed, bool) or not isinstance(self.train_seed, int)
                                            or self.train_seed < 0):
            raise ValueError(f"train_seed must be a non-negative integer or None, got {self.train_seed!r}")
        if self.train_seed == self.seed:
            self.train_seed = None  # the same run: keep its name (run_key) the plain run's
        if self.labels_per_class is not None and self.labels_per_class < 1:
            raise ValueError(f"labels_per_class must be at least 1 (or None for all), got {self.labels_per_class}")
        if self.eval_every < 1:
            raise ValueError(f"eval_every must be at least 1, got {self.eval_every}")
        if self.labelled_batch < 0 or (self.labelled_batch == 0 and max(schedules["alpha"].start,
                                                                         schedules["alpha"].end) > 0):
            raise ValueError(f"labelled_batch must be at least 1 (0 only without labels: alpha = 0), got "
                             f"{self.labelled_batch} with alpha = {self.alpha}")
        if self.outputs is not None and (isinstance(self.outputs, bool) or not isinstance(self.outputs, int)
                                         or self.outputs < 2):
            raise ValueError(f"outputs must be an integer of at least 2 (or None for the class count), got "
                             f"{self.outputs!r}")
        if self.unlabelled_batch < 0:
            raise ValueError(f"unlabelled_batch must be >= 0, got {self.unlabelled_batch}")
        if self.unlabelled_batch == 0 and min(schedules["alpha"].start, schedules["alpha"].end) < 1:
            raise ValueError(f"unlabelled_batch is 0 but alpha = {self.alpha} < 1 gives the unlabelled terms a "
                             "weight: use a positive unlabelled batch, or alpha = 1 for supervised training")
        if self.val_size is not None and self.val_size < 1:
            raise ValueError(f"val_size must be at least 1 (or None for the data set's default), got {self.val_size}")
        if self.epochs is None and self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if self.epochs is not None and self.epochs <= 0:
            raise ValueError(f"epochs must be positive, got {self.epochs}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        self.milestones = tuple(float(m) for m in self.milestones)
        if any(not 0 < m < 1 for m in self.milestones) or list(self.milestones) != sorted(self.milestones):
            raise ValueError(f"milestones must be increasing fractions of the run in (0, 1), got {self.milestones}")
        if not 0 < self.lr_decay <= 1:
            raise ValueError(f"lr_decay must lie in (0, 1], got {self.lr_decay}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        check_preprocess(self.preprocess)
        if self.inverse_method not in ("autograd", "func"):
            raise ValueError(f"inverse_method must be 'autograd' or 'func', got {self.inverse_method!r}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")

    def schedules(self) -> dict:
        """The loss weights as :class:`~invlab.schedules.WeightSchedule`: alpha, beta, layers."""
        return {"alpha": WeightSchedule.parse(self.alpha), "beta": WeightSchedule.parse(self.beta),
                "layers": {k: WeightSchedule.parse(v) for k, v in self.layers.items()}}

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else default_lr(self.model)

    def total_steps(self, n_unlabelled: int) -> int:
        if self.epochs is None:
            return self.steps
        return max(1, math.ceil(self.epochs * n_unlabelled / max(self.unlabelled_batch, 1)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_data(config: TrainConfig) -> SemiSupervisedData:
    """The data set named by ``config.dataset`` with the config's label draw (see
    :func:`invlab.data.load_dataset`)."""
    return load_dataset(config.dataset, config.labels_per_class, config.seed, config.val_size,
                        root=config.data_root, resize=config.resize)


def describe_data(config: TrainConfig, data: SemiSupervisedData) -> TrainConfig:
    """``config`` with what ``data`` (given to :func:`train` directly) says of itself: its
    name, labels per class and validation size, so that the run records the data it used."""
    counts = torch.bincount(data.y_labelled, minlength=data.num_classes)
    per_class = (None if len(data.labelled) == len(data.x_train) else
                 int(counts[0]) if bool((counts == counts[0]).all()) else config.labels_per_class)
    changes = {"dataset": data.name, "labels_per_class": per_class, "val_size": len(data.x_val)}
    if config.dataset == "mnist" and data.name == "mnist" and config.val_size is None and len(data.x_val) == 10_000:
        changes["val_size"] = None  # MNIST's default, as build_data would load it
    return dataclasses.replace(config, **changes)


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
    model: nn.Module | None = field(default=None, repr=False)  # the selected (best-validation) model
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
        # Images in channels-last layout: faster oneDNN convolutions on CPU, same maths.
        self.memory_format = (torch.channels_last if getattr(self.model, "input_ndim", None) == 4
                              else torch.contiguous_format)
        self.model.to(memory_format=self.memory_format)
        self._check_fit()
        self.schedules = config.schedules()
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
        self.eval_time_s = 0.0  # seconds spent evaluating in this process (see TrainResult.extra)
        self.elapsed_s = 0.0  # wall time of the run over all its sessions, kept by studies.Clock
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
        """The loss of ``step``: eq. 10 with that step's weights, plus eqs. 11-12's layer terms."""
        alpha, beta, gammas = self.weights(step)
        if gammas:
            return LayerwiseLoss.from_eq10(alpha, beta, gammas, balance=self.config.balance)
        self.loss_fn.alpha, self.loss_fn.beta = alpha, beta
        return self.loss_fn

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
            "format": _FORMAT, "config": self.config.to_dict(), "step": self.step,
            "data": self.data.summary(), "model_source": self.model_source,
            "model": self.model.state_dict(), "optimizer": optimizer,
            "scheduler": scheduler, "history": self.history,
            "best_val": self.best_val, "best_step": self.best_step, "best_state": self.best_state,
            "samplers": [self.labelled_sampler.state_dict(), self.unlabelled_sampler.state_dict()],
            "torch_rng": torch.get_rng_state(), "sums": self._sums, "elapsed_s": self.elapsed_s,
            **({"hyper": self.hyper.state_dict()} if self.hyper is not None else {}),
            **({"method": self.method.state_dict()} if self.method is not None else {}),
        }

    def load_state_dict(self, state: dict, source: str = "checkpoint") -> None:
        if state.get("format") != _FORMAT:
            raise ValueError(f"{source} has format {state.get('format')!r}, expected {_FORMAT}: "
                             "it was written by another invlab version; start a new run")
        mine, theirs = _comparable(self.config.to_dict()), _comparable({**TrainConfig().to_dict(), **state["config"]})
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
        if self.hyper is not None:
            self.hyper.load_state_dict(state["hyper"])
        if self.method is not None:
            self.method.load_state_dict(state["method"], self.model)

    def save_checkpoint(self, path: str | Path) -> Path:
        return save_torch(self.state_dict(), path)

    def load_checkpoint(self, path: str | Path) -> None:
        try:
            state = load_torch(path)
        except Exception as err:
            raise ValueError(f"cannot read checkpoint {path} ({type(err).__name__}: {err}); "
                             "it is corrupt or not an invlab checkpoint: use a new --out folder") from err
        self.load_state_dict(state, str(path))

    # -- the loop ------------------------------------------------------------------------
    def run(self, callbacks=(), progress: bool = True, checkpoint_path: str | Path | None = None,
            checkpoint_every: int | None = None) -> TrainResult:
        """Train up to ``total_steps`` (continuing from ``self.step``) and return the result."""
        t0 = time.perf_counter()
        every = self.config.eval_every
        checkpoint_every = checkpoint_every or every
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not progress,
                   desc=f"{self.config.model} a={self.config.alpha} b={self.config.beta}", unit="step")
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
            if checkpoint_path is not None and (self.step % checkpoint_every == 0 or self.step == self.total_steps):
                self.save_checkpoint(checkpoint_path)
            bar.update(1)
        bar.close()
        if not self.history or self.history[-1]["step"] != self.step:  # stopped between evaluations
            _call(callbacks, "on_eval", self, self.evaluate())
        result = self.result(time.perf_counter() - t0)
        _call(callbacks, "on_end", self, result)
        return result

    def result(self, wall_time_s: float) -> TrainResult:
        # The best state was snapshotted at an evaluation, whose record holds its test accuracy.
        best_test = next(r["test_accuracy"] for r in self.history if r["step"] == self.best_step)
        best_model = copy.deepcopy(self.model)
        best_model.load_state_dict(self.best_state)
        d = self.data
        extra = {"labelled_train_accuracy": accuracy(best_model, d.x_train, d.y_train, index=d.labelled),
                 "eval_time_s": self.eval_time_s}
        for split, x, y, groups in (("val", d.x_val, d.y_val, d.groups_val), ("test", d.x_test, d.y_test, d.groups_test)):
            if groups is not None:
                extra[f"{split}_recording_accuracy"] = vote_accuracy(predictions(best_model, x), y, groups)
        return TrainResult(
            config=self.config.to_dict(), history=self.history,
            test_accuracy=best_test, final_test_accuracy=self.history[-1]["test_accuracy"], best_val_accuracy=self.best_val, best_step=self.best_step,
            steps_done=self.step, wall_time_s=wall_time_s, device=str(self.device),
            data=self.data.summary(), extra=extra, model=best_model, data_ref=self.data)


def load_model(checkpoint: str | Path, best: bool = True, device: str = "cpu",
               model: nn.Module | None = None) -> nn.Module:
    """The model stored in a checkpoint written by :func:`train` (``invlab train``).

    ``best=True`` gives the weights of the step with the best validation accuracy, else
    the last step's. The network is rebuilt from the checkpoint: a registry model for the
    recorded data set's input shape and class count, or the ``--model-file`` factory it
    records; a network that was handed to :func:`train` as a module cannot be rebuilt
    from a name, so pass a fresh instance as ``model`` to receive the weights. Eval mode.

    The run's input preprocessing comes with it as ``model.preprocess`` (a
    :class:`~invlab.data.preprocess.Preprocess`): apply it to raw inputs before the
    model, ``model(model.preprocess(x))``, exactly as training, validation and test did.
    ``model.data_info`` is the data set's record (name, input shape, class names, source).
    """
    try:
        state = load_torch(checkpoint, map_location=device)
    except Exception as err:
        raise ValueError(f"cannot read checkpoint {checkpoint} ({type(err).__name__}: {err})") from err
    config, info = state["config"], state.get("data", {})
    weights = state["best_state"] if best and state.get("best_state") else state["model"]
    if "input_shape" in info:
        shape, classes = tuple(info["input_shape"]), config.get("outputs") or info["num_classes"]
    else:  # checkpoints written before the data set was recorded: MNIST digits or Bird10 segments
        first = next(v for k, v in state["model"].items() if k.endswith("weight"))  # the first layer's
        default = BIRD10_INPUT_SHAPE if first.ndim == 3 else MNIST_INPUT_SHAPE
        shape, classes = (first.shape[1], *default[1:]), next(reversed(state["model"].values())).shape[0]
    source = state.get("model_source", {"kind": "registry", "name": config["model"]})
    if model is None:
        if source["kind"] == "file":
            model, _ = build_custom_model(source["spec"], shape, classes)
        elif source["kind"] == "registry":
            model = create_model(source["name"], input_shape=shape, num_classes=classes, bias=config.get("bias"))
        else:
            raise ValueError(f"{checkpoint} holds a network that was given to train() as a module "
                             f"({source.get('class')}); rebuild it and pass it: load_model(path, model=MyNet())")
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        raise ValueError(f"the weights in {checkpoint} do not fit the network rebuilt for it "
                         f"({str(err).splitlines()[0]})") from err
    model.preprocess = Preprocess(config.get("preprocess", "none"))
    model.data_info = info
    return model.to(device).eval()


def _comparable(fields: dict) -> dict:
    """A config's fields with MNIST's default validation size written as the default (None):
    runs and checkpoints made before val_size defaulted to the data set's own are the same runs."""
    if fields.get("dataset") == "mnist" and fields.get("val_size") == 10_000:
        fields = {**fields, "val_size": None}
    return fields


def run_key(config: TrainConfig) -> str:
    """Short hash of everything in ``config`` that shapes a run's numbers (not the device,
    whether unweighted terms are logged, nor CUDA graphs): the name of a cached or resumable run.

    Only the fields that differ from :class:`TrainConfig`'s defaults enter the hash, so a
    new option added with a default that keeps the old behaviour leaves existing keys
    (and the runs cached under them) valid."""
    defaults = TrainConfig().to_dict()
    fields_ = _comparable(config.to_dict())
    blob = json.dumps({k: v for k, v in fields_.items()
                       if k not in ("device", "log_unweighted", "cuda_graph") and v != defaults[k]},
                      sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def _call(callbacks, hook: str, *args) -> None:
    for cb in callbacks:
        fn = getattr(cb, hook, None)
        if fn is not None:
            fn(*args)


def train(config: TrainConfig, data: SemiSupervisedData | None = None, callbacks=(),
          out_dir: str | Path | None = None, resume: bool = False, progress: bool = True,
          overwrite: bool = False, model: nn.Module | None = None) -> TrainResult:
    """Train ``config.model`` with the paper's loss; return the history and accuracies.

    ``data`` (default: ``config.dataset`` loaded by :func:`build_data`) and ``model`` (default:
    ``config.model`` from the registry, or ``config.model_file``, sized from the data) may
    be given directly; the run then records the data set and the module's class.

    With ``out_dir``: checks every setting, the data and that the folder can be written
    before creating it (a failed start leaves nothing behind), then writes
    ``checkpoint.pt`` every ``eval_every`` steps and ``metrics.json`` (with its
    ``provenance``) at the end, both atomically. A folder that already holds a run is
    refused unless ``resume=True`` (continue it; its settings must match) or
    ``overwrite=True`` (replace it).
    Model selection: ``test_accuracy`` is that of the step with the best validation
    accuracy; the test set never steers training.
    """
    ckpt = None
    if out_dir is not None:  # every check first: a failed start leaves no folder behind
        out_dir = Path(out_dir)
        ckpt = out_dir / CHECKPOINT
        if resume and not ckpt.exists():
            raise FileNotFoundError(f"--resume: no checkpoint at {ckpt}; drop --resume to start a new run")
        if not resume and not overwrite and (ckpt.exists() or (out_dir / METRICS).exists()):
            raise FileExistsError(f"{out_dir} already holds a run ({CHECKPOINT} or {METRICS}); continue it with "
                                  "--resume, replace it with --overwrite, or choose another --out folder")
        check_writable_target(out_dir)
    trainer = Trainer(config, data, model=model)  # loads the data and builds the model: may fail
    if resume:
        trainer.load_checkpoint(ckpt)
    if out_dir is not None:
        ensure_writable_dir(out_dir)
    result = trainer.run(callbacks, progress=progress, checkpoint_path=ckpt)
    if out_dir is not None:
        save_json({**result.to_dict(), "provenance": provenance(device=result.device)}, out_dir / METRICS)
    return result


__all__ = ["BalancedSampler", "Callback", "CyclingSampler", "RECOMMENDED", "describe_data", "SCHEDULES", "TrainConfig", "TrainResult", "Trainer",
           "build_data", "default_lr", "load_model", "lr_factor", "run_key", "resolve_device", "train"]
