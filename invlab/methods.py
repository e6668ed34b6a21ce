"""The classic semi-supervised baselines as the unsupervised term of one loss.

Every method trains with the same loss shape, eq. 10 with the method's unsupervised term
U in the place of the entropy:

    L = alpha·(n_L/B)·CE + (1 - alpha)·[beta·R + (1 - beta)·U]

so ``beta > 0`` adds the paper's reconstruction R to any of them ("does R help on top of
X" is one flag) and ``method="entropy"`` with ``beta > 0`` is the paper's method
(``"inversion"``). The methods, each with its published defaults:

* ``supervised`` — U = 0: cross-entropy on the labelled examples only.
* ``entropy`` / ``inversion`` — U = (n_U/B)·[E + balance·(log C - H(p̄))]: entropy
  minimisation with the class-balance term (the recipe).
* ``pseudo-label`` — Lee 2013: U = w(t)·mean over unlabelled samples of
  1{max p >= threshold}·CE(argmax p, p), the hard label of a confident prediction taken
  as a target (no gradient through it); w(t) ramps linearly from 0 to 1 over the first
  ``rampup`` of the run (Lee's schedule, shortened as in Oliver et al. 2018).
* ``vat`` — Miyato et al. 2018: U = LDS + (n_U/B)·E, LDS = mean KL(p(x) || p(x + r_adv)),
  r_adv = eps·H d/||H d|| per example, H the Hessian of r -> KL(p(x) || p(x + r)) at 0 and d
  a random unit direction (one power iteration, H d by a finite difference of step xi
  relative to the input's scale, see :func:`vat_perturbation`); p(x) is held fixed.
* ``mean-teacher`` — Tarvainen & Valpola 2017: U = w(t)·consistency·mean ||softmax(f(x + n1))
  - softmax(f_T(x + n2))||² / C, f_T the exponential moving average of the student's
  weights (decay ``ema``), n1, n2 Gaussian input noise of std ``noise``, w(t) =
  exp(-5(1 - t/T_r)²) up to the end of the ramp-up T_r, then 1.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

#: Names of ``TrainConfig.method``; ``inversion`` is ``entropy`` with the reconstruction term.
METHODS = ("inversion", "supervised", "entropy", "pseudo-label", "vat", "mean-teacher")

#: Published defaults of each method's own knobs (``TrainConfig`` fields of the same names):
#: pseudo-label's threshold 0.95 and the 40 % ramp-up as in Oliver et al. 2018's reimplementation;
#: VAT's eps 0.3, the authors' setting for semi-supervised MNIST (Miyato et al.'s code for
#: 1507.00677), with the power iteration's step xi relative to the input's scale (xi 0, see vat_step:
#: their absolute 1e-6 is below float32's resolution); the mean teacher's EMA decay 0.99 (Tarvainen & Valpola's ramp-up
#: value), Gaussian input noise of std 0.15 (their SVHN setting) and consistency weight 8
#: (Oliver et al. 2018).
DEFAULTS = {"pl_threshold": 0.95, "rampup": 0.4, "vat_eps": 0.3, "vat_xi": 0.0, "ema": 0.99,
            "consistency": 8.0, "noise": 0.15}


def sigmoid_rampup(progress: float, length: float) -> float:
    """exp(-5 (1 - t)^2) with t = progress / length clipped to [0, 1] (Laine & Aila 2017)."""
    if length <= 0:
        return 1.0
    t = min(max(progress / length, 0.0), 1.0)
    return math.exp(-5.0 * (1.0 - t) ** 2)


def linear_rampup(progress: float, length: float) -> float:
    """t / length clipped to [0, 1] (Lee 2013's schedule, in fractions of the run)."""
    return 1.0 if length <= 0 else min(max(progress / length, 0.0), 1.0)


def softmax_kl(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of KL(softmax(p) || softmax(q)), p held as given."""
    logp, logq = F.log_softmax(p_logits, 1), F.log_softmax(q_logits, 1)
    return (logp.exp() * (logp - logq)).sum(1).mean()


def unit_directions(d: torch.Tensor, fallback: torch.Tensor | None = None) -> torch.Tensor:
    """Each example's direction scaled to unit L2 norm over its dimensions.

    The direction is first divided by its largest absolute entry (Miyato et al.'s
    ``get_normalized_vector``): the power iteration's gradients can be of order 1e-20 in
    float32, whose squares underflow to 0, so the plain norm would be 0 and the direction
    lost. An example whose direction is exactly zero (or not finite) takes ``fallback``'s
    (already unit) direction instead, so that every example gets a unit vector."""
    flat = d.flatten(1)  # (B, D)
    peak = flat.abs().amax(1, keepdim=True)  # (B, 1)
    dead = ~(peak.isfinite() & (peak > 0))
    flat = flat / torch.where(dead, torch.ones_like(peak), peak)
    flat = flat / flat.norm(dim=1, keepdim=True).clamp_min(torch.finfo(flat.dtype).tiny)
    if fallback is not None:
        flat = torch.where(dead, fallback.flatten(1), flat)
    return flat.view_as(d)


def vat_step(x: torch.Tensor, xi: float = 0.0) -> float:
    r"""The finite-difference step of VAT's power iteration: ``xi`` when positive, else
    :math:`\sqrt{\epsilon_\text{float}}` times the batch's mean L2 norm (3.3e-3 for MNIST
    scaled by ``center-maxabs``, whose images have norms near 9.5).

    The difference :math:`q(x + \xi d) - p(x)` that the gradient carries is a difference of two
    nearly equal softmax outputs, resolved to about float epsilon (1.2e-7 in float32); its
    truncation error grows as xi. The classic balance of the two is a step of
    sqrt(epsilon) relative to the scale of x. Miyato et al.'s absolute 1e-6 is below
    float32's resolution for such inputs: the gradient is rounding noise (direction cosine
    with the exact Hessian-vector product near 0 on an untrained smallcnn-mean, against
    0.98 at the relative step) and exactly 0 for 2 of 32 MNIST images."""
    if xi > 0:
        return float(xi)
    eps = torch.finfo(x.dtype).eps if x.is_floating_point() else torch.finfo(torch.float32).eps
    scale = float(x.detach().flatten(1).norm(dim=1).mean())
    return math.sqrt(eps) * (scale if scale > 0 else 1.0)


def vat_perturbation(model: nn.Module, x: torch.Tensor, logits: torch.Tensor, eps: float, xi: float = 0.0,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    r"""VAT's adversarial perturbation :math:`r_\text{adv}` (B, \*D), one power iteration per example.

    With :math:`D(r) = \mathrm{KL}(p(x) \,\Vert\, p(x + r))` (:math:`p(x)` held fixed),
    :math:`D(0) = 0` and :math:`\nabla D(0) = 0`, so :math:`D(r) \approx r^\top H r / 2`: the most
    sensitive direction is :math:`H`'s leading eigenvector, which one power iteration from a
    random unit direction :math:`d` approximates by :math:`H d`, itself the gradient of
    :math:`D` at :math:`r = \xi d` divided by :math:`\xi` (Miyato et al.'s finite difference;
    :math:`\xi` from :func:`vat_step`). Then :math:`r_\text{adv} = \epsilon\, H d / \lVert H d\rVert`:
    of L2 norm ``eps`` for every example.

    The gradient is taken with respect to :math:`r = \xi d` and rescaled by its largest absolute
    entry before it is normalised (:func:`_unit`, as in the authors' code): on a batch-mean
    KL its entries are of order 1e-12 to 1e-20, whose squares underflow in float32, and a
    plain normalisation turned them into a perturbation 1e5 times smaller than eps. An
    example whose gradient is exactly 0 (a prediction saturated in float32) keeps the
    random direction d rather than no perturbation.

    Args:
        x: (B, *D) inputs; logits: (B, C) the model's logits at x (detached here).
        eps: L2 norm of r_adv per example. xi: the finite-difference step (0: relative, see
            :func:`vat_step`).
        generator: the random start direction's (drawn on the CPU, so runs match across devices).
    """
    d = unit_directions(torch.randn(x.shape, generator=generator, device="cpu").to(x.device, x.dtype))  # (B, *D)
    r = (vat_step(x, xi) * d).requires_grad_(True)
    (g,) = torch.autograd.grad(softmax_kl(logits.detach(), model(x.detach() + r)), r)  # ~ xi·H d / B
    return eps * unit_directions(g.detach(), fallback=d)


class Method:
    """A method's unsupervised term U and its state (a teacher, a ramp-up).

    ``progress`` (the fraction of the run done) is set by the trainer before each step;
    :meth:`after_step` runs after each optimiser step (the teacher's update).
    """

    def __init__(self, name: str = "entropy", balance: float = 0.0, **knobs):
        if name not in METHODS:
            raise ValueError(f"unknown method {name!r}; use one of {', '.join(METHODS)}")
        self.name = "entropy" if name == "inversion" else name
        self.balance = balance
        self.knobs = {**DEFAULTS, **{k: v for k, v in knobs.items() if v is not None}}
        self.progress = 0.0
        self.teacher: nn.Module | None = None
        self.generator = torch.Generator().manual_seed(0)

    def unsupervised(self, model: nn.Module, x: torch.Tensor, logits: torch.Tensor, unlab, n_u: int,
                     ent: torch.Tensor, imbalance: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """U for the batch (the (1 - beta) share of eq. 10's unsupervised part) and extra logs."""
        b, k = x.shape[0], self.knobs
        zero = logits.new_zeros(())
        if self.name == "supervised":
            return zero, {}
        if self.name == "entropy":
            return (n_u / b) * (ent + self.balance * imbalance if self.balance else ent), {}
        if self.name == "pseudo-label":
            if not n_u:
                return zero, {"pseudo": zero}
            lu = logits[unlab]
            conf, target = F.softmax(lu.detach(), 1).max(1)
            mask = (conf >= k["pl_threshold"]).float()
            pl = (F.cross_entropy(lu, target, reduction="none") * mask).mean()
            return (n_u / b) * linear_rampup(self.progress, k["rampup"]) * pl, {"pseudo": pl.detach(),
                                                                                  "confident": mask.mean()}
        if self.name == "vat":
            r_adv = vat_perturbation(model, x, logits, k["vat_eps"], k["vat_xi"], self.generator)
            lds = softmax_kl(logits.detach(), model(x.detach() + r_adv))
            return lds + (n_u / b) * (ent + self.balance * imbalance if self.balance else ent), {"lds": lds.detach()}
        # mean teacher
        if self.teacher is None:
            self.teacher = _frozen_copy(model)
        noise = k["noise"]
        n1 = torch.randn(x.shape, generator=self.generator).to(x.device, x.dtype) * noise
        n2 = torch.randn(x.shape, generator=self.generator).to(x.device, x.dtype) * noise
        with torch.no_grad():
            p_t = F.softmax(self.teacher(x.detach() + n2), 1)
        p_s = F.softmax(model(x.detach() + n1), 1)
        cons = F.mse_loss(p_s, p_t)  # mean over examples and classes
        w = k["consistency"] * sigmoid_rampup(self.progress, k["rampup"])
        return w * cons, {"consistency": cons.detach()}

    @torch.no_grad()
    def after_step(self, model: nn.Module) -> None:
        """Mean teacher: teacher <- ema·teacher + (1 - ema)·student (buffers copied)."""
        if self.name != "mean-teacher":
            return
        if self.teacher is None:
            self.teacher = _frozen_copy(model)
            return
        decay = self.knobs["ema"]
        for t, s in zip(self.teacher.parameters(), model.parameters()):
            t.mul_(decay).add_(s.detach(), alpha=1 - decay)
        for t, s in zip(self.teacher.buffers(), model.buffers()):
            t.copy_(s)

    def state_dict(self) -> dict:
        return {"teacher": None if self.teacher is None else self.teacher.state_dict(),
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict, model: nn.Module) -> None:
        self.generator.set_state(state["generator"])
        if state.get("teacher") is not None:
            self.teacher = _frozen_copy(model)
            self.teacher.load_state_dict(state["teacher"])


def _frozen_copy(model: nn.Module) -> nn.Module:
    teacher = copy.deepcopy(model)
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


__all__ = ["DEFAULTS", "METHODS", "Method", "linear_rampup", "sigmoid_rampup", "softmax_kl", "unit_directions",
           "vat_perturbation", "vat_step"]
