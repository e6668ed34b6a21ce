"""Loss weights learned by backpropagation through one update, the paper's eqs. 14-15.

The weights alpha and beta of eq. 10 are sigmoids of two free parameters w (so they stay
in (0, 1)). Every few training steps, a hypergradient step on w:

    theta'(w) = theta - lambda · grad_theta L(theta; w)                (eq. 14, one SGD step)
    w <- w - eta · d L_out(theta'(w)) / d w                            (eq. 15)

differentiating through the update with ``torch.func`` (``grad`` of a function that
itself takes ``grad``; the reconstruction inside L is a ``torch.func.vjp``, so the
hypergradient is a third derivative of the network).

The outer objective L_out is **not** the weighted loss L itself (that would simply drive
the weights towards whatever term is smallest): it is the cross-entropy on a labelled
hold-out batch, ``hyper_holdout`` examples per class carved out of the labelled set and
never used by the training loss. So the weights move towards the setting whose next
update generalises best to labelled data the model has not fitted.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from invlab.losses import SemiSupervisedLoss, eq10_total


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


class _Bound(nn.Module):
    """``model`` called with the parameters ``params`` (``torch.func.functional_call``)."""

    def __init__(self, model: nn.Module, params: dict):
        super().__init__()
        self.model, self.params = model, params
        self.input_ndim = getattr(model, "input_ndim", None)
        self.in_channels = getattr(model, "in_channels", None)

    def forward(self, x):
        return torch.func.functional_call(self.model, self.params, (x,))


def holdout_split(labelled: torch.Tensor, targets: torch.Tensor, per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split labelled indices into (kept, held out): the first ``per_class`` of every class are held out.

    labelled: (n,) indices into the training set; targets: (n,) their labels."""
    held = torch.zeros(len(labelled), dtype=torch.bool)
    for c in targets.unique():
        members = (targets == c).nonzero().flatten()
        if len(members) <= per_class:
            raise ValueError(f"class {int(c)} has {len(members)} labelled examples: holding out {per_class} "
                             "leaves none to train on; lower hyper_holdout or label more examples")
        held[members[:per_class]] = True
    return labelled[~held], labelled[held]


class HyperWeights:
    """alpha = sigmoid(w[0]), beta = sigmoid(w[1]), learned by :meth:`step` (module docstring)."""

    def __init__(self, alpha: float, beta: float, lr: float, loss: SemiSupervisedLoss, device=None):
        self.w = torch.tensor([_logit(alpha), _logit(beta)], device=device, requires_grad=True)
        self.optimizer = torch.optim.Adam([self.w], lr=lr)
        # the terms of eq. 10, unweighted (alpha and beta here only switch every term on)
        self.terms = SemiSupervisedLoss(0.5, 0.5, loss.reconstruction, loss.reduce_dims, report_unweighted=False,
                                        balance=loss.balance, method="func")

    @property
    def weights(self) -> tuple[float, float]:
        a, b = torch.sigmoid(self.w.detach()).tolist()
        return a, b

    def loss(self, model: nn.Module, params: dict, w: torch.Tensor, x, y, mask) -> torch.Tensor:
        """The weighted training loss L(theta; w) of eq. 10 at parameters ``params``."""
        out = self.terms(_Bound(model, params), x, y, mask)
        n_l, n_u = int(out["n_labelled"]), int(out["n_unlabelled"])
        a, b = torch.sigmoid(w).unbind()
        return eq10_total(a, b, out["ce"], out["reconstruction"], out["entropy"], out["imbalance"],
                          n_l / len(x), n_u / len(x), self.terms.balance)

    def hypergradient(self, model: nn.Module, batch, holdout, inner_lr: float) -> torch.Tensor:
        """d L_out(theta - inner_lr · grad L(theta; w)) / d w at the current w, (2,)."""
        x, y, mask = batch
        xh, yh = holdout
        params = {k: v.detach() for k, v in model.named_parameters()}

        def outer(w):
            g = torch.func.grad(lambda p: self.loss(model, p, w, x, y, mask))(params)
            updated = {k: params[k] - inner_lr * g[k] for k in params}  # eq. 14
            return F.cross_entropy(torch.func.functional_call(model, updated, (xh,)), yh)

        return torch.func.grad(outer)(self.w.detach())

    def step(self, model: nn.Module, batch, holdout, inner_lr: float) -> torch.Tensor:
        """One hypergradient step on w (eq. 15); returns the hypergradient."""
        grad = self.hypergradient(model, batch, holdout, inner_lr)
        self.optimizer.zero_grad(set_to_none=True)
        self.w.grad = grad
        self.optimizer.step()
        return grad

    def state_dict(self) -> dict:
        return {"w": self.w.detach().clone(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            self.w.copy_(state["w"])
        self.optimizer.load_state_dict(state["optimizer"])
