"""The paper's losses (§2.3, eqs. 8-10).

    R(X) = || (df(X)/dX)^T f(X) - X ||^2                                    (8)
    E(X) = - sum_c yhat_c log yhat_c,   yhat = softmax(f(X))                 (9)
    L(X, Y) = 1{Y != 0}·alpha·CE(Y, yhat)
              + (1 - alpha)·[beta·R(X) + (1 - beta)·E(X)·1{Y = 0}]          (10)

CE applies to labelled samples only, R to every sample, E to unlabelled samples only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from invlab.inverse import METHODS, check_input, check_model, forward_inverse, resolve_method

#: The scalar terms every loss of this module reports (with ``total``), logged at every step.
LOSS_KEYS = ("total", "ce", "reconstruction", "entropy", "imbalance")


def reconstruction_loss(rec: torch.Tensor, x: torch.Tensor, kind: str = "mse",
                        reduce_dims: str = "mean", reduction: str = "mean") -> torch.Tensor:
    r"""Reconstruction error :math:`R` between :math:`\mathrm{rec} = (\partial f/\partial x)^\top f(x)`
    and :math:`x` (paper eq. 8).

    Args:
        rec, x: (B, *D), same shape.
        kind: ``"mse"`` — squared error :math:`\lVert \mathrm{rec} - x\rVert^2`; ``"cosine"`` —
            :math:`1 - \cos(\mathrm{rec}, x)`,
            which ignores the scale of the reconstruction (the paper: "any
            differentiable reconstruction loss, e.g. cosine, works").
        reduce_dims: for ``"mse"``, ``"mean"`` (default) averages the squared error over
            the D input dimensions, ``"sum"`` sums it (the literal squared norm of eq. 8).
            The mean is the default because it keeps R on the same scale whatever the
            input size (784 MNIST pixels or 22 050 audio samples), so a given beta means
            the same trade-off against CE and entropy; it is also what the first author's
            later code did. ``"sum"`` equals D times ``"mean"``.
        reduction: ``"mean"`` over the batch, or ``"none"`` for per-sample values (B,).
    """
    if rec.shape != x.shape:
        raise ValueError(f"rec has shape {tuple(rec.shape)} but x has shape {tuple(x.shape)}")
    if kind == "mse":
        sq = (rec - x).pow(2).flatten(1)  # (B, D)
        if reduce_dims == "mean":
            per_sample = sq.mean(1)
        elif reduce_dims == "sum":
            per_sample = sq.sum(1)
        else:
            raise ValueError(f"reduce_dims must be 'mean' or 'sum', got {reduce_dims!r}")
    elif kind == "cosine":
        per_sample = 1 - F.cosine_similarity(rec.flatten(1), x.flatten(1), dim=1, eps=1e-8)
    else:
        raise ValueError(f"unknown reconstruction loss {kind!r}; use 'mse' or 'cosine'")
    return _reduce(per_sample, reduction)


def entropy_loss(logits: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    r"""Entropy of the softmax prediction, :math:`E = -\sum_c p_c \log p_c` (paper eq. 9), in nats.

    Computed from ``log_softmax`` so that large logits neither overflow nor give :math:`0 \log 0`.
    logits (B, C) -> scalar (``"mean"`` over the batch) or (B,) (``"none"``).
    """
    logp = F.log_softmax(logits, dim=1)  # (B, C)
    return _reduce(-(logp.exp() * logp).sum(1), reduction)


def marginal_entropy(logits: torch.Tensor) -> torch.Tensor:
    r"""Entropy of the batch-mean prediction, :math:`H(\bar p)` with
    :math:`\bar p = \frac1B \sum_n \mathrm{softmax}(f(x_n))`, in nats.

    logits (B, C) -> scalar in :math:`[0, \log C]`. Maximising it keeps the predicted classes of a
    batch spread out; minus the mean per-sample entropy it is the batch estimate of the
    mutual information between inputs and predicted classes (Krause et al. 2010, RIM).
    """
    p_mean = F.softmax(logits, dim=1).mean(0)  # (C,)
    return -(p_mean * torch.log(p_mean.clamp_min(1e-12))).sum()


def _reduce(per_sample: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "none":
        return per_sample
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def _check_unit(name: str, value: float) -> float:
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1] (paper eq. 10), got {value}")
    return float(value)


@dataclass
class SemiSupervisedLoss:
    r"""The paper's loss, eq. 10, averaged over a mixed batch.

    For a batch of :math:`B` samples with the boolean mask ``labelled``,

    .. math::

        \mathrm{total} = \frac1B \sum_n L(x_n, y_n)
        = \alpha \frac{n_L}{B}\, \mathrm{CE}
        + (1 - \alpha) \Big[\beta R + (1 - \beta) \frac{n_U}{B}\, E\Big]

    where CE is the mean cross-entropy over the :math:`n_L` labelled samples, :math:`R` the
    mean reconstruction error over all :math:`B` samples, and :math:`E` the mean entropy
    over the :math:`n_U` unlabelled samples (each 0 when its group is empty). The batch
    composition therefore sets the effective weights, exactly as eq. 10 averaged over
    samples does.

    Args:
        alpha: weight of the supervised term, in [0, 1]; alpha = 1 is plain supervision.
        beta: share of reconstruction versus entropy in the unsupervised term, in [0, 1].
        reconstruction: ``"mse"`` or ``"cosine"`` (see :func:`reconstruction_loss`).
        reduce_dims: ``"mean"`` or ``"sum"`` of the squared error over input dimensions.
        report_unweighted: when R has zero weight (alpha = 1 or beta = 0), still compute
            it without a graph for the logs (one extra backward pass); if False it is NaN.
        balance: weight :math:`\lambda \ge 0` of a class-balance term beside the entropy, not
            in the paper (0, the default, is eq. 10 exactly). The entropy term becomes
            :math:`(1 - \beta) \frac{n_U}{B} \big[E + \lambda (\log C - H(\bar p))\big]`
            with :math:`H(\bar p)` the entropy of the mean prediction over the unlabelled samples
            (:func:`marginal_entropy`). Entropy minimisation alone lets one class absorb
            the cluster of another (all the unlabelled 9s predicted as 4s, say): confident
            and wrong costs it nothing. The balance term charges a batch whose predictions
            pile onto few classes; with :math:`\lambda = 1` the unsupervised term is :math:`\log C` minus the
            mutual information between inputs and predicted classes. It assumes the classes
            of the unlabelled data are roughly balanced.
    """

    alpha: float = 0.7
    beta: float = 0.2
    reconstruction: str = "mse"
    reduce_dims: str = "mean"
    report_unweighted: bool = True
    #: how (df/dx)^T f is computed (invlab.inverse.forward_inverse): "auto" takes the explicit transposed
    #: pass when the network is supported (one backward pass per step, no double backward), else autograd
    method: str = "auto"
    balance: float = 0.0
    #: another method's unsupervised term in the place of the entropy (invlab.methods.Method); None: eq. 10
    unsupervised: object = None

    def __post_init__(self):
        self.alpha = _check_unit("alpha", self.alpha)
        self.beta = _check_unit("beta", self.beta)
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        self.method_used: str | None = None  # the last call's: "transposed", "autograd" or "func"
        if not self.balance >= 0:
            raise ValueError(f"balance must be >= 0, got {self.balance}")
        if self.reconstruction not in ("mse", "cosine"):
            raise ValueError(f"reconstruction must be 'mse' or 'cosine', got {self.reconstruction!r}")
        if self.reduce_dims not in ("mean", "sum"):
            raise ValueError(f"reduce_dims must be 'mean' or 'sum', got {self.reduce_dims!r}")

    @property
    def needs_reconstruction(self) -> bool:
        return self.alpha < 1 and self.beta > 0

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 labelled: torch.Tensor | int, check: bool = True, *,
                 alpha: float | None = None, beta: float | None = None) -> dict[str, torch.Tensor]:
        """Loss of ``model`` on the batch.

        Args:
            x: (B, *D) inputs. y: (B,) int64 class indices (values at unlabelled
                positions are ignored). labelled: (B,) bool mask, or an int n: the first
                n samples are the labelled ones (the same loss, computed without a
                device-to-host synchronisation, which CUDA-graph capture forbids).
            check: validate the model, the input and the labels first (each check reads
                device values: ``False`` inside a CUDA graph).
            alpha, beta: this call's weights (a training step's, when they follow a schedule);
                ``None``: the loss's own. The loss object is left as it was.

        Returns:
            dict of scalars: ``total`` (differentiable), ``ce``, ``reconstruction``,
            ``entropy`` (group means as above), ``imbalance`` (log C - H(p̄) over the
            unlabelled samples, reported whatever ``balance`` is), and the counts ``n_labelled``,
            ``n_unlabelled``. Only the terms with non-zero weight are differentiable;
            the others are reported detached.
        """
        if check:
            check_model(model)
            check_input(model, x)
        labelled = _check_batch(x, y, labelled, check)
        alpha = self.alpha if alpha is None else _check_unit("alpha", alpha)
        beta = self.beta if beta is None else _check_unit("beta", beta)
        needs_reconstruction = alpha < 1 and beta > 0
        if needs_reconstruction:
            self.method_used = resolve_method(model, self.method)
            logits, rec = forward_inverse(model, x, create_graph=True, check=False, method=self.method_used)
            rec_loss = reconstruction_loss(rec, x, self.reconstruction, self.reduce_dims)
        else:  # R has zero weight: no double backward; report R without a graph.
            logits = model(x)
            rec_loss = logits.new_full((), float("nan"))
            if self.report_unweighted:
                rec = forward_inverse(model, x, create_graph=False, check=False)[1]
                rec_loss = reconstruction_loss(rec, x, self.reconstruction, self.reduce_dims)
        b = x.shape[0]
        ce, ent, imbalance, n_l, n_u = prediction_terms(logits, y, labelled)
        extra = {}
        if self.unsupervised is None:  # eq. 10
            total = eq10_total(alpha, beta, ce, rec_loss if needs_reconstruction else None, ent,
                               imbalance, n_l / b, n_u / b, self.balance)
        else:  # eq. 10's shape with a baseline's unsupervised term (invlab.methods)
            unlab = slice(labelled, None) if isinstance(labelled, int) else ~labelled
            u, logs = self.unsupervised.unsupervised(model, x, logits, unlab, n_u, ent, imbalance)
            r_term = beta * rec_loss if needs_reconstruction else 0.0
            total = alpha * (n_l / b) * ce + (1 - alpha) * (r_term + (1 - beta) * u)
            extra = {f"m:{k}": v for k, v in logs.items()}
        return {"total": total, "ce": ce, "reconstruction": rec_loss, "entropy": ent, "imbalance": imbalance,
                **extra, "n_labelled": torch.tensor(n_l), "n_unlabelled": torch.tensor(n_u)}


def prediction_terms(logits: torch.Tensor, y: torch.Tensor, labelled: torch.Tensor):
    """CE over the labelled samples, entropy and imbalance log C - H(p̄) (>= 0, zero when the
    predictions are spread evenly over the classes) over the unlabelled ones, each 0 for an
    empty group; and the two group sizes."""
    if isinstance(labelled, int):  # the first n_l rows: slices, no synchronisation
        n_l = labelled
        lab, unlab = slice(None, n_l), slice(n_l, None)
    else:
        n_l = int(labelled.sum())
        lab, unlab = labelled, ~labelled
    n_u = logits.shape[0] - n_l
    zero = logits.new_zeros(())
    ce = F.cross_entropy(logits[lab], y[lab]) if n_l else zero
    ent = entropy_loss(logits[unlab]) if n_u else zero
    imbalance = math.log(logits.shape[1]) - marginal_entropy(logits[unlab]) if n_u else zero
    return ce, ent, imbalance, n_l, n_u


def eq10_total(alpha, beta, ce, rec, ent, imbalance, share_l: float, share_u: float, balance: float = 0.0):
    """Eq. 10 from its terms: alpha·share_l·ce + (1 - alpha)·[beta·rec + (1 - beta)·share_u·(ent + balance·imbalance)].

    ``alpha`` and ``beta`` may be tensors (learned weights, :mod:`invlab.training.hyper`); ``rec``
    None leaves the reconstruction term out (its weight is zero)."""
    unsup = ent + balance * imbalance if balance else ent
    r_term = beta * rec if rec is not None else 0.0
    return alpha * share_l * ce + (1 - alpha) * (r_term + (1 - beta) * share_u * unsup)


def _check_batch(x: torch.Tensor, y: torch.Tensor, labelled: torch.Tensor | int,
                 check_labels: bool = True) -> torch.Tensor | int:
    b = x.shape[0]
    if isinstance(labelled, int) and not isinstance(labelled, bool):
        if not 0 <= labelled <= b or y.shape != (b,):
            raise ValueError(f"labelled = {labelled} first samples and y {tuple(y.shape)} do not fit a "
                             f"batch of {b}: give 0 <= labelled <= {b} and y of shape ({b},)")
        if check_labels and labelled and y[:labelled].min() < 0:
            raise ValueError("labelled samples have negative class indices; mark them unlabelled")
        return labelled
    labelled = torch.as_tensor(labelled, device=x.device)
    if labelled.dtype != torch.bool:
        raise TypeError(f"labelled must be a boolean mask, got dtype {labelled.dtype}")
    if labelled.shape != (b,) or y.shape != (b,):
        raise ValueError(f"labelled {tuple(labelled.shape)} and y {tuple(y.shape)} must both have "
                         f"shape ({b},) to match the batch")
    if check_labels and labelled.any() and y[labelled].min() < 0:
        raise ValueError("labelled samples have negative class indices; mark them unlabelled")
    return labelled


@dataclass
class LayerwiseLoss:
    r"""Reconstruction at every layer, the paper's eqs. 11-12 (its proposed extension):

    .. math::

        \mathrm{total} = \alpha \frac{n_L}{B}\, \mathrm{CE}
        + \beta \frac{n_U}{B} \big[E + \mathrm{balance} \cdot \mathrm{imbalance}\big]
        + \sum_l \gamma_l R_l

    with :math:`R_l` the batch mean of :math:`\lVert (\partial f/\partial z_l)^\top f(x) - z_l\rVert^2`
    averaged over the dimensions of :math:`z_l` (:func:`~invlab.inverse.layer_reconstructions`,
    one backward pass for all layers). ``gammas`` maps layer names (``"input"`` for x itself, else names from
    ``model.named_modules()``) to their weights. Targets z_l of hidden layers are the
    layer's outputs themselves, kept in the graph as eq. 12 writes them.

    Eq. 10 is the special case ``gammas = {"input": (1 - a)·b}``, :math:`\alpha = a`,
    :math:`\beta = (1 - a)(1 - b)`: :meth:`from_eq10` builds it, adding hidden-layer terms.
    """

    alpha: float = 0.7
    beta: float = 0.24
    gammas: dict = None  # {layer name: weight}
    balance: float = 0.0
    method: str = "auto"  # "auto": the explicit transposed pass when it takes the network, else autograd

    def __post_init__(self):
        self.gammas = dict(self.gammas or {})
        for name, value in (("alpha", self.alpha), ("beta", self.beta), ("balance", self.balance),
                            *((f"gamma[{k}]", v) for k, v in self.gammas.items())):
            if not float(value) >= 0:
                raise ValueError(f"{name} must be >= 0, got {value}")

    @classmethod
    def from_eq10(cls, alpha: float, beta: float, layers: dict | None = None, balance: float = 0.0):
        """Eq. 10 with weights (alpha, beta), plus ``layers`` = {hidden layer: gamma}."""
        alpha, beta = _check_unit("alpha", alpha), _check_unit("beta", beta)
        extra = dict(layers or {})
        if "input" in extra:
            raise ValueError("eq. 10 already weighs the input's reconstruction by (1 - alpha)·beta; "
                             "give hidden layers only")
        return cls(alpha, (1 - alpha) * (1 - beta), {"input": (1 - alpha) * beta, **extra}, balance)

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 labelled: torch.Tensor | int, check: bool = True) -> dict[str, torch.Tensor]:
        """The loss of ``model`` on the batch: ``total``, ``ce``, ``entropy``, ``imbalance``,
        ``reconstruction`` (the input's R, NaN when not weighted) and ``R:<layer>`` for
        every weighted layer. Arguments as :class:`SemiSupervisedLoss`'s."""
        from invlab.inverse import forward_layer_reconstructions

        if check:
            check_model(model)
            check_input(model, x)
        labelled = _check_batch(x, y, labelled, check)
        layers = [k for k, v in self.gammas.items() if v > 0]
        if layers:
            logits, recs = forward_layer_reconstructions(model, x, layers, create_graph=True, check=False,
                                                         method=self.method)
        else:
            logits, recs = model(x), {}
        b = x.shape[0]
        ce, ent, imbalance, n_l, n_u = prediction_terms(logits, y, labelled)
        rs = {f"R:{k}": reconstruction_loss(rec, z) for k, (rec, z) in recs.items()}
        total = self.alpha * (n_l / b) * ce + self.beta * (n_u / b) * (ent + self.balance * imbalance)
        for k in layers:
            total = total + self.gammas[k] * rs[f"R:{k}"]
        return {"total": total, "ce": ce, "entropy": ent, "imbalance": imbalance,
                "reconstruction": rs.get("R:input", logits.new_full((), float("nan"))), **rs,
                "n_labelled": torch.tensor(n_l), "n_unlabelled": torch.tensor(n_u)}


_prediction_terms = prediction_terms  # its former name
