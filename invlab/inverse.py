"""The inverse of a piecewise-affine network (paper §2.2, eqs. 5-7).

A network built from affine maps and piecewise-affine nonlinearities is an affine spline:
on the region that contains x,

    f(x) = A[x] x + b[x],      A[x] = df/dx  (C x D),   b[x] in R^C,

with f the pre-softmax logits. The paper's inverse is

    f^{-1}(x) = A[x]^T f(x) = (df/dx)^T f(x) = sum_c f_c(x) A[x]_c,

a single vector-Jacobian product of the logits with themselves: one backward pass that
reuses the forward pass's activation states ("activation sharing").

Per-sample: for a batch (B, *D) the logits (B, C) are summed against themselves in one
backward pass. Because sample n's logits depend on sample n's input only, the
vector-Jacobian product of the batch splits into B independent per-sample products. A
layer that mixes samples (batch norm in training mode) breaks this, so it is refused.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def check_model(model: nn.Module) -> None:
    """Refuse a model whose forward pass mixes the samples of a batch.

    Batch norm in training mode normalises with batch statistics, so sample n's output
    depends on every other sample and the batch VJP is no longer per-sample.
    """
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.training:
            raise RuntimeError(
                f"module {name or type(model).__name__!r} ({type(module).__name__}) is in training "
                "mode: batch statistics mix the samples of a batch, so (df/dx)^T f(x) is not a "
                "per-sample inverse. Call model.eval() (or use a network without batch norm, "
                "as the paper does).")


def check_input(model: nn.Module, x: torch.Tensor) -> None:
    """Validate a model input: tensor, floating dtype, rank and channels, finite values."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor input, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"input has dtype {x.dtype}; the inverse needs a floating-point tensor "
            "(convert with x.float(), e.g. uint8 images as x.float() / 255)")
    ndim = getattr(model, "input_ndim", None)
    if ndim is not None and x.ndim != ndim:
        layout = "(B, C, T)" if ndim == 3 else "(B, C, H, W)"
        raise ValueError(
            f"input has shape {tuple(x.shape)} but {type(model).__name__} expects {ndim} "
            f"dimensions {layout}; add the missing batch/channel axis with x.unsqueeze(...)")
    channels = getattr(model, "in_channels", None)
    if channels is not None and x.ndim >= 2 and x.shape[1] != channels:
        raise ValueError(
            f"input has {x.shape[1]} channels (shape {tuple(x.shape)}) but the model was built "
            f"for in_channels={channels}")
    if x.shape[0] == 0:
        raise ValueError("input batch is empty")
    if not torch.isfinite(x).all():
        raise ValueError("input contains NaN or infinite values; clean or mask the data first")


#: The ways :func:`forward_inverse` computes (df/dx)^T f(x); "auto" picks "transposed" when it can.
METHODS = ("auto", "transposed", "autograd", "func")


def resolve_method(model: nn.Module, method: str = "auto") -> str:
    """The way ``method`` computes the inverse of ``model`` now: ``"auto"`` is ``"transposed"``
    when :mod:`invlab.transposed` takes the network (and no dropout layer is drawing masks),
    else ``"autograd"``; other names are themselves."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if method != "auto":
        return method
    from invlab.transposed import transposed_pass, usable

    return "transposed" if usable(transposed_pass(model)) else "autograd"


def forward_inverse(model: nn.Module, x: torch.Tensor, create_graph: bool | None = None,
                    check: bool = True, method: str = "autograd") -> tuple[torch.Tensor, torch.Tensor]:
    r"""Logits :math:`f(x)` and reconstruction :math:`(\partial f/\partial x)^\top f(x)` from one
    forward and one backward pass.

    Args:
        model: piecewise-affine network mapping (B, *D) to logits (B, C).
        x: input batch (B, C_in, T) or (B, C_in, H, W).
        create_graph: keep the graph of the backward pass so that the reconstruction can
            be differentiated with respect to the parameters (needed inside a loss).
            Default: ``torch.is_grad_enabled()`` at the call.
        check: validate the model and the input first.
        method: ``"autograd"`` — ``torch.autograd.grad`` with the logits as ``grad_outputs``;
            ``"func"`` — ``torch.func.vjp``; ``"transposed"`` — the explicit transposed pass of
            :mod:`invlab.transposed` (the forward's masks and pooling indices reused, the
            transposed layers run with the same weights): an ordinary differentiable
            computation, so a loss on rec needs one backward pass instead of a backward
            through a backward; ``"auto"`` — ``"transposed"`` when the network is supported,
            else ``"autograd"`` (:func:`resolve_method`). All are exact and give the same
            values and parameter gradients; ``benchmarks/speed/step_cost.py`` times them.

    Returns:
        ``(logits, rec)``: logits (B, C) and rec (B, \*D),
        :math:`\mathrm{rec}_n = A[x_n]^\top f(x_n)`.
    """
    if check:
        check_model(model)
        check_input(model, x)
    if create_graph is None:
        create_graph = torch.is_grad_enabled()
    method = resolve_method(model, method)
    if method == "transposed":
        from invlab.transposed import transposed_pass

        with torch.set_grad_enabled(create_graph):
            # strict: a network it cannot take is refused by name (method="auto" falls back to autograd)
            return transposed_pass(model, strict=True)(x)  # (B, C) logits, (B, *D) = A[x]^T f(x)
    with torch.enable_grad():
        if method == "func":
            logits, vjp_fn = torch.func.vjp(model, x)  # (B, C); parameters stay in the outer graph
            (rec,) = vjp_fn(logits)
        elif method == "autograd":
            xg = x if x.requires_grad else x.detach().requires_grad_(True)
            logits = model(xg)  # (B, C)
            # VJP with the logits as cotangent; with create_graph the cotangent stays in the
            # graph too, so d rec / d theta flows through both A[x] and f(x).
            (rec,) = torch.autograd.grad(logits, xg, grad_outputs=logits, create_graph=create_graph)
        else:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if not create_graph:
        logits, rec = logits.detach(), rec.detach()
    return logits, rec  # (B, C), (B, *D)


INPUT = "input"  # the name of x itself in :func:`layer_reconstructions`


def forward_layer_reconstructions(model: nn.Module, x: torch.Tensor, layers, create_graph: bool | None = None,
                                  check: bool = True, method: str = "auto",
                                  ) -> tuple[torch.Tensor, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """Logits f(x) and, for every named layer, (rec, z) from one forward and one backward pass.

    For a layer whose output is z = z^(l)(x) (paper eq. 12),

        rec^(l) = (df/dz^(l))^T f(x),

    the inverse of the part of the network above that layer, applied to the logits. The
    logits' vector-Jacobian product with themselves is taken with respect to x and every
    z^(l) at once: one backward pass gives all of them. ``"input"`` names x itself
    (rec^(0) is :func:`reconstruct`'s). For a network without biases above the layer,
    f = (df/dz^(l)) z^(l) exactly, so rec^(l) = A_l^T A_l z^(l).

    Args:
        model: piecewise-affine network mapping (B, *D) to logits (B, C).
        x: input batch.
        layers: names from ``model.named_modules()`` (each module must run once per
            forward pass and return one tensor), or ``"input"``.
        create_graph: keep the graph, so that rec and z can be differentiated with respect
            to the parameters (inside a loss). Default: ``torch.is_grad_enabled()``.
        method: ``"auto"`` — the explicit transposed pass (:mod:`invlab.transposed`) when it
            takes the network and every named layer runs once, else autograd's backward pass
            with hooks; ``"autograd"`` — always the latter. The same values and gradients.

    Returns:
        ``(logits, {name: (rec, z)})``: logits (B, C); rec and z with the shape of the
        layer's output, z^(l) as computed in this forward pass (x for ``"input"``).
    """
    names = list(dict.fromkeys(layers))
    if not names:
        raise ValueError("layers is empty: name at least one module (model.named_modules()) or 'input'")
    modules = dict(model.named_modules())
    unknown = [n for n in names if n != INPUT and n not in modules]
    if unknown:
        known = [INPUT] + [n for n in modules if n]
        raise ValueError(f"unknown layer(s) {unknown} for {type(model).__name__}; available: {', '.join(known)}")
    if check:
        check_model(model)
        check_input(model, x)
    if create_graph is None:
        create_graph = torch.is_grad_enabled()
    if resolve_method(model, method) == "transposed":
        from invlab.transposed import transposed_pass

        tp = transposed_pass(model, strict=True)
        nodes = tp.node_names(names)
        if nodes is not None:
            with torch.set_grad_enabled(create_graph):
                logits, states = tp.forward(x, keep=tuple(nodes.values()))
                _, recs = tp.transpose(logits, states, capture=set(nodes.values()))
            return logits, {n: (recs[nodes[n]], states["z"][nodes[n]]) for n in names}
    captured: dict[str, torch.Tensor] = {}

    def capture(name):
        def hook(module, inputs, output):
            if name in captured:
                raise RuntimeError(f"module {name!r} ran twice in one forward pass: its output z is ambiguous; "
                                   "name a module that runs once")
            if not isinstance(output, torch.Tensor):
                raise TypeError(f"module {name!r} returns {type(output).__name__}, not one tensor")
            captured[name] = output
        return hook

    handles = [modules[n].register_forward_hook(capture(n)) for n in names if n != INPUT]
    try:
        with torch.enable_grad():
            xg = x if x.requires_grad else x.detach().requires_grad_(True)
            logits = model(xg)  # (B, C)
            zs = [xg if n == INPUT else captured[n] for n in names]
            recs = torch.autograd.grad(logits, zs, grad_outputs=logits, create_graph=create_graph)
    finally:
        for h in handles:
            h.remove()
    out = {n: (r, z) if create_graph else (r.detach(), z.detach()) for n, r, z in zip(names, recs, zs)}
    return (logits if create_graph else logits.detach()), out


def layer_reconstructions(model: nn.Module, x: torch.Tensor, layers,
                          create_graph: bool | None = None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    r"""Per-layer reconstructions (paper eqs. 11-12): ``{name: (rec, z)}`` with
    :math:`\mathrm{rec} = (\partial f/\partial z)^\top f(x)` for each layer output :math:`z`
    named in ``layers`` (``"input"``: :math:`x` itself), all from one backward pass. See
    :func:`forward_layer_reconstructions`."""
    return forward_layer_reconstructions(model, x, layers, create_graph)[1]


def reconstructable_layers(model: nn.Module) -> list[str]:
    """Names accepted by :func:`layer_reconstructions`: ``"input"`` and every leaf module."""
    return [INPUT] + [n for n, m in model.named_modules() if n and not list(m.children())]


def reconstruct(model: nn.Module, x: torch.Tensor, create_graph: bool | None = None) -> torch.Tensor:
    r"""Reconstruction :math:`f^{-1}(x) = (\partial f/\partial x)^\top f(x)` (paper eqs. 5-7), same
    shape as ``x``.

    Args:
        model: piecewise-affine network, logits (B, C) = model(x).
        x: (B, C_in, T) or (B, C_in, H, W).
        create_graph: see :func:`forward_inverse`; by default differentiable with respect
            to the model's parameters whenever autograd is on.

    Returns:
        The reconstructions :math:`\mathrm{rec}_n = \sum_c f_c(x_n)\, A[x_n]_c`, computed per
        sample, of shape ``(B, *x.shape[1:])``.
    """
    return forward_inverse(model, x, create_graph=create_graph)[1]


def templates(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Per-class templates :math:`A[x]` and biases :math:`b[x]` of the affine spline at ``x``
    (paper eq. 1).

    :math:`A[x]_c = \partial f_c/\partial x` is row :math:`c` of the per-sample Jacobian and
    :math:`b[x] = f(x) - \langle A[x], x\rangle`. For piecewise-affine networks
    :math:`f(x) = \langle A[x], x\rangle + b[x]` holds exactly (up to floating-point rounding).

    Args:
        model: piecewise-affine network, logits (B, C) = model(x).
        x: (B, C_in, T) or (B, C_in, H, W).

    Returns:
        ``(A, b)``: A of shape ``(B, C, *x.shape[1:])``, b of shape ``(B, C)``. Both are detached.
    """
    check_model(model)
    check_input(model, x)
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        logits = model(xg)  # (B, C)
        n_classes = logits.shape[1]
        # One-hot cotangents e_c, broadcast over the batch: (C, B, C). The batched VJP
        # (vmap over the backward pass) returns all C Jacobian rows at once: (C, B, *D).
        eye = torch.eye(n_classes, dtype=logits.dtype, device=logits.device)
        cotangents = eye[:, None, :].expand(n_classes, *logits.shape)
        (rows,) = torch.autograd.grad(logits, xg, grad_outputs=cotangents, is_grads_batched=True)
    A = rows.transpose(0, 1).contiguous()  # (B, C, *D)
    b = logits.detach() - (A * x.detach().unsqueeze(1)).flatten(2).sum(-1)  # (B, C)
    return A, b
