"""A training run's settings: :class:`TrainConfig` (every field an option of `invlab train`,
the benchmarks and sweep spaces, :mod:`invlab.training.options`), its validation, the data
it names, and :func:`run_key`, the name of a cached or resumable run."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

from invlab.data import SemiSupervisedData, load_dataset
from invlab.data.preprocess import PREPROCESSING, check_preprocess
from invlab.methods import DEFAULTS as METHOD_DEFAULTS
from invlab.methods import METHODS
from invlab.models import list_models
from invlab.models.registry import INITS
from invlab.training.loss_weights import WeightSchedule
from invlab.training.options import option

SCHEDULES = ("constant", "cosine", "step", "invsqrt")


#: The two recipes a :class:`TrainConfig` can start from (``recipe``); each fills the fields
#: it names that are not given. ``"recommended"``, the default of TrainConfig and of
#: ``invlab train`` alike, was chosen on validation accuracy by ``benchmarks/recipe/recipe_study.py``
#: (the site's results, "The recipe"): cosine decay, per-image centring and max-abs scaling,
#: the class-balance term, 2000 steps. ``"paper"`` is the paper's bare setting: eq. 10 on raw
#: pixels at a constant learning rate, 1000 steps (Table 2's reproduction uses it).
RECIPES = {
    "recommended": {"schedule": "cosine", "preprocess": "center-maxabs", "balance": 1.0, "steps": 2000},
    "paper": {"schedule": "constant", "preprocess": "none", "balance": 0.0, "steps": 1000},
}
RECOMMENDED = RECIPES["recommended"]  # the name the benchmarks and notebooks use

#: beta when none is given: the paper's method reconstructs (eq. 10's 0.2); the other methods train
#: without R unless a beta is given (the same from Python and from `invlab train`)
DEFAULT_BETA = {"inversion": 0.2}
PAPER = RECIPES["paper"]


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

    ``TrainConfig()`` is the recommended recipe, the same run as ``invlab train``'s defaults;
    ``TrainConfig(recipe="paper")`` is the paper's bare eq. 10 (:data:`RECIPES`). A recipe
    fills ``schedule``, ``preprocess``, ``balance`` and ``steps`` where they are not given
    (left ``None``); a value given wins. Once built, the fields hold the values in use.

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
    (eq. 13, :mod:`invlab.training.loss_weights`, e.g. ``alpha="0.3:0.7"``); ``layers`` adds the
    reconstruction of hidden layers, {module name: gamma} (eqs. 11-12,
    :class:`~invlab.losses.LayerwiseLoss`); ``learn_weights`` learns alpha and beta by
    hypergradient (eqs. 14-15, :mod:`invlab.training.hyper`), holding ``hyper_holdout`` labelled
    examples per class out of the loss for its objective. Every evaluation record holds
    the weights in use (``alpha``, ``beta``, ``gamma:<layer>``).
    """

    # Every field is an option of `invlab train`, of the benchmarks and of sweep spaces
    # (invlab.training.options builds them from the help, choices and flags given here).
    recipe: str = option("recommended", "the defaults of --schedule, --preprocess, --balance and --steps: "
                                        "recommended (cosine, center-maxabs, balance 1, 2000 steps; chosen on "
                                        "validation accuracy) or paper (the paper's bare eq. 10: constant, none, "
                                        "balance 0, 1000 steps); an option given wins", choices=tuple(RECIPES))
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
                                     "training.loss_weights)", metavar="WEIGHT", type="weight")
    beta: float | str | None = option(None, "reconstruction share of the unsupervised part, in [0, 1]; a number or a "
                                           "schedule like --alpha's (default: 0.2 with method inversion, 0 with the "
                                           "others, to which a beta > 0 adds R)", metavar="WEIGHT", type="weight")
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
    vat_xi: float = option(METHOD_DEFAULTS["vat_xi"], "vat: finite-difference step of the power iteration; 0 "
                                                       "(default): sqrt(float eps) x the inputs' mean L2 norm "
                                                       "(Miyato et al.'s absolute 1e-6 is below float32's resolution)")
    ema: float = option(METHOD_DEFAULTS["ema"], "mean-teacher: decay of the teacher's moving average")
    consistency: float = option(METHOD_DEFAULTS["consistency"], "mean-teacher: weight of the consistency cost")
    noise: float = option(METHOD_DEFAULTS["noise"], "mean-teacher: std of the Gaussian input noise")
    learn_weights: bool = option(False, "learn alpha and beta by hypergradient through one update (eqs. 14-15), "
                                        "starting from --alpha and --beta; the objective is the cross-entropy of "
                                        "--hyper-holdout labelled examples per class kept out of the loss")
    hyper_lr: float = option(0.02, "Adam step of the learned weights' logits")
    hyper_every: int = option(10, "training steps between hypergradient steps")
    hyper_holdout: int = option(1, "labelled examples per class held out for the hypergradient")
    balance: float | None = option(None, "weight of a class-balance term beside the entropy, log C - H(mean "
                                         "prediction) over the unlabelled samples (not in the paper; 0 = the paper's "
                                         "loss; 1 = mutual information) (default: the recipe's, 1; paper: 0)")
    seed: int = option(0, "the label draw; also the initialisation and batch order unless --train-seed is given")
    train_seed: int | None = option(None, "seed of the initialisation and batches only, the label draw kept "
                                          "(--seed): a restart of the same draw (default: --seed)")
    steps: int | None = option(None, "optimiser steps (default: the recipe's, 2000; paper: 1000)")
    epochs: float | None = option(None, "passes over the unlabelled pool; overrides --steps")
    labelled_batch: int = option(50, "labelled samples per step, cycling the labelled set")
    unlabelled_batch: int = option(100, "unlabelled samples per step, cycling the unlabelled pool")
    balanced: bool = option(False, "draw labelled batches class-balanced (LABELLED_BATCH / classes of each class)")
    lr: float | None = option(None, "Adam learning rate (default: the paper's, 0.01 for SmallCNN, 0.01/3 for LargeCNN "
                                    "and ResNets, 0.001 for bird10-cnn and networks of your own)")
    schedule: str | None = option(None, "learning-rate schedule: constant, cosine (decay to 0), step (x LR_DECAY at "
                                        "each of MILESTONES), invsqrt (lr / sqrt(1 + epoch)) (default: the "
                                        "recipe's, cosine; paper: constant)", choices=SCHEDULES)
    milestones: tuple[float, ...] = option((0.5, 0.75), "step schedule: fractions of the run where the rate drops",
                                           metavar="FRACTION")
    lr_decay: float = option(0.2, "step schedule: factor applied at each milestone")
    preprocess: str | None = option(
        None,
        "per-example input transform for train, validation and test: none, "
        "center-maxabs (centre, divide by the largest absolute value), standardize (zero mean, unit "
        "variance) (default: the recipe's, center-maxabs; paper: none)",
        choices=PREPROCESSING,
    )
    bias: bool | None = option(None, "biases in every layer (default: the model's own; the inhibitor 'U' models have "
                                     "none); --no-bias makes f(x) = A[x]x exactly")
    init: str = option("default", "weight initialisation: default (PyTorch's) or xavier (uniform, zero biases)",
                       choices=INITS)
    reconstruction: str = option("mse", "reconstruction loss R", choices=("mse", "cosine"))
    reduce_dims: str = option("mean", "average or sum R over input dimensions", choices=("mean", "sum"))
    inverse_method: str = option("auto", "how (df/dx)^T f is computed: auto takes the explicit transposed pass "
                                         "(invlab.transposed: no double backward) when the network is supported, "
                                         "else torch.autograd.grad; transposed, autograd or func (torch.func.vjp) "
                                         "force one (benchmarks/speed/step_cost.py); the same numbers",
                                 choices=("auto", "transposed", "autograd", "func"))
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
        """Fill the defaults (the recipe's, beta's per method), read the loss weights once, and check
        every field; each group of fields is checked in one method below."""
        self._fill_defaults()
        self._check_method()
        self._check_loss()
        self._check_data()
        self._check_optimisation()
        self._check_runtime()

    def _fill_defaults(self) -> None:
        if self.recipe not in RECIPES:
            raise ValueError(f"recipe must be one of {', '.join(RECIPES)}, got {self.recipe!r}")
        for name, value in RECIPES[self.recipe].items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if self.model_file is not None:
            if self.model not in ("custom", "smallcnn-mean"):
                raise ValueError(f"give a registry model (model={self.model!r}, --model) or a network of your own "
                                 f"(model_file={self.model_file!r}, --model-file), not both")
            self.model = "custom"
        elif self.model == "custom":
            raise ValueError("model 'custom' needs model_file='FILE.py:FACTORY' (--model-file)")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.beta is None:
            self.beta = DEFAULT_BETA.get(self.method, 0.0)
        if self.train_seed == self.seed:
            self.train_seed = None  # the same run: keep its name (run_key) the plain run's

    def _check_method(self) -> None:
        if self.method not in ("inversion", "entropy") and (self.layers or self.learn_weights or self.cuda_graph):
            raise ValueError(f"method {self.method!r} runs eq. 10's input reconstruction only: drop layers, "
                             "learn_weights and cuda_graph, or use method 'inversion'")
        if not (0 < self.pl_threshold <= 1 and 0 <= self.rampup <= 1 and self.vat_eps > 0 and self.vat_xi >= 0
                and 0 <= self.ema < 1 and self.consistency >= 0 and self.noise >= 0):
            raise ValueError("method knobs out of range: need 0 < pl_threshold <= 1, 0 <= rampup <= 1, vat_eps > 0, "
                             "vat_xi >= 0, 0 <= ema < 1, consistency >= 0, noise >= 0")

    def _check_loss(self) -> None:
        """The loss weights, read here once (:meth:`loss_weights` gives them to the trainer): a
        weight written as text is kept in one form (a constant as a number, a schedule in full),
        so a run names the same weights from Python and from the command line."""
        alpha, beta = WeightSchedule.parse(self.alpha), WeightSchedule.parse(self.beta)
        alpha.check_range("alpha")
        beta.check_range("beta")
        layers = {name: WeightSchedule.parse(v) for name, v in dict(self.layers).items()}
        for name, sched in layers.items():
            sched.check_range(f"the weight of layer {name!r}", high=None)
        self._weights = {"alpha": alpha, "beta": beta, "layers": layers}
        self.alpha, self.beta = _written(self.alpha, alpha), _written(self.beta, beta)
        self.layers = {name: _written(v, layers[name]) for name, v in dict(self.layers).items()}
        self._read = (self.alpha, self.beta, dict(self.layers))  # what _weights was read from
        if self.reconstruction not in ("mse", "cosine"):
            raise ValueError(f"reconstruction must be 'mse' or 'cosine', got {self.reconstruction!r}")
        if self.reduce_dims not in ("mean", "sum"):
            raise ValueError(f"reduce_dims must be 'mean' or 'sum', got {self.reduce_dims!r}")
        if not self.balance >= 0:
            raise ValueError(f"balance must be >= 0, got {self.balance}")
        if "input" in layers:
            raise ValueError("layers: the input's reconstruction is eq. 10's beta term; name hidden layers only")
        if layers and (self.reconstruction, self.reduce_dims) != ("mse", "mean"):
            raise ValueError("per-layer reconstruction (layers) uses the squared error averaged over each layer's "
                             "dimensions: keep reconstruction='mse' and reduce_dims='mean'")
        if self.learn_weights:
            if not (alpha.constant and beta.constant):
                raise ValueError("learn_weights starts from constant alpha and beta; give numbers, not schedules")
            if not (0 < alpha.start < 1 and 0 < beta.start < 1):
                raise ValueError("learn_weights needs alpha and beta strictly inside (0, 1) to start from")
            if self.hyper_every < 1 or self.hyper_holdout < 1 or not self.hyper_lr > 0:
                raise ValueError("hyper_every and hyper_holdout must be at least 1 and hyper_lr positive")
        if self.cuda_graph and (self.learn_weights or layers or not (alpha.constant and beta.constant)):
            raise ValueError("cuda_graph replays one fixed training step: it needs constant alpha and beta, "
                             "and neither learn_weights nor layers; drop cuda_graph for those runs")
        if self.labelled_batch < 0 or (self.labelled_batch == 0 and max(alpha.start, alpha.end) > 0):
            raise ValueError(f"labelled_batch must be at least 1 (0 only without labels: alpha = 0), got "
                             f"{self.labelled_batch} with alpha = {self.alpha}")
        if self.unlabelled_batch < 0:
            raise ValueError(f"unlabelled_batch must be >= 0, got {self.unlabelled_batch}")
        if self.unlabelled_batch == 0 and min(alpha.start, alpha.end) < 1:
            raise ValueError(f"unlabelled_batch is 0 but alpha = {self.alpha} < 1 gives the unlabelled terms a "
                             "weight: use a positive unlabelled batch, or alpha = 1 for supervised training")

    def _check_data(self) -> None:
        if self.resize is not None:
            self.resize = tuple(int(v) for v in self.resize)
            if len(self.resize) != 2 or min(self.resize) < 1:
                raise ValueError(f"resize must be two positive integers (H, W), got {self.resize}")
        if self.labels_per_class is not None and self.labels_per_class < 1:
            raise ValueError(f"labels_per_class must be at least 1 (or None for all), got {self.labels_per_class}")
        if self.val_size is not None and self.val_size < 1:
            raise ValueError(f"val_size must be at least 1 (or None for the data set's default), got {self.val_size}")
        if self.outputs is not None and (isinstance(self.outputs, bool) or not isinstance(self.outputs, int)
                                         or self.outputs < 2):
            raise ValueError(f"outputs must be an integer of at least 2 (or None for the class count), got "
                             f"{self.outputs!r}")
        check_preprocess(self.preprocess)

    def _check_optimisation(self) -> None:
        if self.train_seed is not None and (isinstance(self.train_seed, bool) or not isinstance(self.train_seed, int)
                                            or self.train_seed < 0):
            raise ValueError(f"train_seed must be a non-negative integer or None, got {self.train_seed!r}")
        if self.eval_every < 1:
            raise ValueError(f"eval_every must be at least 1, got {self.eval_every}")
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

    def _check_runtime(self) -> None:
        if self.inverse_method not in ("auto", "transposed", "autograd", "func"):
            raise ValueError(f"inverse_method must be 'auto', 'transposed', 'autograd' or 'func', "
                             f"got {self.inverse_method!r}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")

    def loss_weights(self) -> dict:
        """The loss weights as :class:`~invlab.training.loss_weights.WeightSchedule`: alpha, beta, layers
        (read when the config was made, and again if a field was set since)."""
        if (self.alpha, self.beta, dict(self.layers)) != self._read:
            self._check_loss()
        return {**self._weights, "layers": dict(self._weights["layers"])}

    def schedules(self) -> dict:
        """The former name of :meth:`loss_weights` ("schedule" means the learning rate)."""
        return self.loss_weights()

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else default_lr(self.model)

    def total_steps(self, n_unlabelled: int) -> int:
        if self.epochs is None:
            return self.steps
        return max(1, math.ceil(self.epochs * n_unlabelled / max(self.unlabelled_batch, 1)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _written(given, schedule: WeightSchedule):
    """A loss weight in the one form a config keeps: a number as given, text as the schedule reads it
    (a constant as a number, a schedule in full: "0.3:0.7" is "0.3:0.7:linear")."""
    if isinstance(given, (int, float)) and not isinstance(given, bool):
        return given
    return schedule.start if schedule.constant else schedule.spec()


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


def comparable_config(fields: dict) -> dict:
    """A config's fields as they shape a run: without ``recipe`` (the fields it filled say
    what it did; runs made before it existed name none), and with MNIST's default validation
    size written as the default (None): runs and checkpoints made before val_size defaulted
    to the data set's own are the same runs."""
    fields = {k: v for k, v in fields.items() if k != "recipe"}
    if fields.get("dataset") == "mnist" and fields.get("val_size") == 10_000:
        fields["val_size"] = None
    return fields


def stored_config(fields: dict) -> dict:
    """The full fields of a config stored by an earlier invlab (a checkpoint, a study): a
    field it did not know yet takes the value that kept its behaviour, the paper recipe's."""
    return {**_baseline(), **fields}


@functools.cache
def _baseline() -> dict:
    """The fields every run key is taken against: the paper recipe, TrainConfig's defaults
    before the recipes existed, so that keys made then stay valid."""
    return comparable_config(TrainConfig(recipe="paper").to_dict())


def run_key(config: TrainConfig) -> str:
    """Short hash of everything in ``config`` that shapes a run's numbers (not the device,
    whether unweighted terms are logged, CUDA graphs, nor the way the inverse is computed: every
    way gives the same numbers): the name of a cached or resumable run.

    Only the fields that differ from the paper recipe's enter the hash (the recipe itself
    does not: the fields it filled do), so a new option added with a default that keeps the
    old behaviour leaves existing keys (and the runs cached under them) valid, and
    ``TrainConfig()`` names the same run as ``TrainConfig(recipe="paper", **RECOMMENDED)``."""
    defaults = _baseline()
    fields_ = comparable_config(config.to_dict())
    blob = json.dumps({k: v for k, v in fields_.items()
                       if k not in ("device", "log_unweighted", "cuda_graph", "inverse_method") and v != defaults[k]},
                      sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


_comparable = comparable_config  # its former name
