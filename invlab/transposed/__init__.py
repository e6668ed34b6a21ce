"""The inverse as an explicit transposed pass: the forward's states reused, no autograd.

For a piecewise-affine network, the Jacobian at x is a product of the layers' linear parts
on x's region: A[x] = W_L M_{L-1} W_{L-1} ... M_1 W_1, with W_l a convolution, a dense
layer or a pooling's averaging, and M_l the diagonal (or selection) matrix of the
nonlinearity's state at x: a ReLU's on/off mask, a max-pool's chosen inputs, an inhibitor
group's winners. Its transpose applied to a cotangent u,

    A[x]^T u = W_1^T M_1 W_2^T ... M_{L-1} W_L^T u,

is the same computation run backwards with *forward* operators only: a transposed
convolution with the convolution's own weights, a mask product, a pooling's transpose
(a depthwise transposed convolution with the constant averaging kernel, or a scatter to
the saved max-pool indices), a multiplication by the dense weights. This is what
``torch.autograd.grad(logits, x, u)`` computes, written out:

* it exports to ONNX (autograd's ``convolution_backward`` does not), so the browser can
  compute templates and reconstructions (``invlab export``);
* with u = f(x) and the weights in autograd's graph, it is an ordinary differentiable
  computation: the gradient of a loss on A[x]^T f(x) needs one backward pass, not a
  backward through a backward (``forward_inverse(..., method="transposed")``).

The network is read with ``torch.fx``; each node is handled by one rule per layer kind
(:mod:`invlab.transposed.rules`, the built-in kinds in :mod:`invlab.transposed.kinds`): modules,
their functional and method forms (``nn.ReLU``, ``F.relu``, ``x.relu()``), batch norm in eval
mode, poolings with every option, and the plumbing of real networks (reshapes, concatenation,
chunks, channel shuffles, residual sums). Anything else is refused before any work, naming the
first node that is not piecewise affine, its place in the network and what is supported
(:class:`UnsupportedLayerError`; :data:`SUPPORTED` is generated from the rules). A layer of your
own is one :func:`register` call.

Shapes: the forward takes x (B, *D); the transposed pass takes cotangents (N, C) with N = B
(one per example) or B = 1 and any N (several cotangents for one example, e.g. the C
one-hot rows that give the templates A[x]).
"""

from __future__ import annotations

from invlab.transposed import kinds as _kinds  # noqa: F401 (registers the built-in rules)
from invlab.transposed.graph import TransposedPass, transposed_pass, usable
from invlab.transposed.rules import (
           Rule,
           Step,
           UnsupportedLayerError,
           register,
           supported,
           supported_markdown,
           supported_text,
)

#: What the refusal message lists (generated from the registered rules).
SUPPORTED = supported_text()

__all__ = ["SUPPORTED", "Rule", "Step", "TransposedPass", "UnsupportedLayerError", "register", "supported",
           "supported_markdown", "supported_text", "transposed_pass", "usable"]
