"""Forward-operator transposes shared by the rules (:mod:`invlab.transposed.kinds`).

Each function here computes W^T g for one linear map W with forward operators only (transposed
convolutions, matrix products, scatters), so that it exports to ONNX and is differentiable with
respect to the weights. Shapes: g (N, C, *out), results (N, C, *in); N need not equal the batch
of the forward (several cotangents for one example).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: A convolution with at most this many input channels (a network's first layer) is transposed by
#: :class:`FoldConvTranspose` on CPU: oneDNN's transposed convolution to one or three channels runs at
#: a fraction of its forward speed (22 ms against 2.3 ms for SmallCNN's first layer, batch 150).
FOLD_CHANNELS = 4


def as_tuple(v, n: int) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


def fit(full: torch.Tensor, start: tuple[int, ...], size: tuple[int, ...]) -> torch.Tensor:
    """``full[..., start_i : start_i + size_i]`` on the last len(size) axes, zero-padded at the end
    where ``full`` is shorter: a transposed map computed on padded coordinates, brought back to the
    input's own."""
    n = len(size)
    for i in range(n):
        axis = full.dim() - n + i
        full = full.narrow(axis, start[i], max(0, min(size[i], full.shape[axis] - start[i])))
    pad = []
    for i in reversed(range(n)):
        pad += [0, size[i] - full.shape[full.dim() - n + i]]
    return F.pad(full, pad) if any(pad) else full


def conv_transpose(g: torch.Tensor, weight: torch.Tensor, in_size: tuple[int, ...], stride, padding, dilation,
                   groups: int, exportable: bool) -> torch.Tensor:
    """The transpose of ``conv{1,2}d(·, weight, stride, padding, dilation, groups)`` at input size
    ``in_size``: (N, C_out, *out) -> (N, C_in, *in_size). ``padding`` may be ``"same"``/``"valid"``."""
    n = g.dim() - 2
    stride, dilation = as_tuple(stride, n), as_tuple(dilation, n)
    kernel = weight.shape[2:]
    if padding == "valid":
        padding = (0,) * n
    if padding == "same":  # PyTorch pads d(k-1) in all, the smaller half first
        total = [dilation[i] * (kernel[i] - 1) for i in range(n)]
        if any(t % 2 for t in total):  # asymmetric: transpose on the padded grid, then crop
            conv_t = F.conv_transpose2d if n == 2 else F.conv_transpose1d
            full = conv_t(g, weight, None, stride, 0, 0, groups, dilation)
            return fit(full, tuple(t // 2 for t in total), in_size)
        padding = tuple(t // 2 for t in total)
    padding = as_tuple(padding, n)
    if n == 2 and groups == 1 and weight.shape[1] <= FOLD_CHANNELS and not exportable and g.device.type == "cpu":
        return FoldConvTranspose.apply(g, weight, tuple(in_size), stride, padding, dilation)
    # the rows and columns the convolution's stride skipped at the end come back as zeros
    extra = tuple(in_size[i] - ((g.shape[2 + i] - 1) * stride[i] - 2 * padding[i]
                                + dilation[i] * (kernel[i] - 1) + 1) for i in range(n))
    conv_t = F.conv_transpose2d if n == 2 else F.conv_transpose1d
    return conv_t(g, weight, None, stride, padding, extra, groups, dilation)


class FoldConvTranspose(torch.autograd.Function):
    """conv_transpose2d(g, W) as a matrix product and a col2im (``F.fold``): (B, C_out, H', W')
    -> (B, C_in, H, W). Its backward is the convolution's own forward (the cotangent's gradient)
    and weight gradient: exact, first-order (a loss on the reconstruction needs no more)."""

    @staticmethod
    def forward(ctx, g, weight, size, stride, padding, dilation):
        b, c = g.shape[:2]
        # one (C_in·kh·kw, C_out) @ (C_out, H'·W') product per example: no transposed copies
        cols = torch.bmm(weight.reshape(c, -1).t().expand(b, -1, -1), g.reshape(b, c, -1))  # (B, C_in·kh·kw, H'·W')
        ctx.save_for_backward(g, weight)
        ctx.conv = (stride, padding, dilation)
        return F.fold(cols, size, weight.shape[2:], dilation=dilation, padding=padding, stride=stride)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        g, weight = ctx.saved_tensors
        stride, padding, dilation = ctx.conv
        grad_g = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_g = F.conv2d(grad, weight, None, stride, padding, dilation)
        if ctx.needs_input_grad[1]:
            grad_w = torch.ops.aten.convolution_backward(g, grad, weight, None, list(stride), list(padding),
                                                         list(dilation), False, [0, 0], 1,
                                                         [False, True, False])[1]
        return grad_g, grad_w, None, None, None, None


def pool_windows(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool) -> int:
    """The number of pooling windows along one axis, as PyTorch counts them (a last window that
    would start in the right padding is dropped)."""
    span = size + 2 * padding - kernel
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def avg_pool_scale(in_size, out_size, kernel, stride, padding, count_include_pad: bool,
                   divisor_override) -> list[list[float]]:
    """Per axis, 1/divisor of each window, as PyTorch's average pooling divides (a window's
    divisor is the product of its per-axis extents, clipped to the padded or the real input)."""
    scales = []
    for size, out, k, s, p in zip(in_size, out_size, kernel, stride, padding):
        axis = []
        for o in range(out):
            start = o * s - p
            end = min(start + k, size + p)
            extent = end - start if count_include_pad else min(end, size) - max(start, 0)
            axis.append(1.0 / extent)
        scales.append(axis)
    return scales


def avg_pool(h: torch.Tensor, kernel, stride, padding, out_size, scale: torch.Tensor) -> torch.Tensor:
    """Average pooling with any divisors as a sum over each window (a depthwise convolution with a
    kernel of ones on the zero-padded input) times ``scale`` (*out): PyTorch's windows and divisors
    exactly, where ONNX's AveragePool counts ceil_mode's windows and divisors its own way."""
    n, c = h.dim() - 2, h.shape[1]
    pad = []
    for i in reversed(range(n)):
        extra = max(0, (out_size[i] - 1) * stride[i] + kernel[i] - (h.shape[2 + i] + 2 * padding[i]))
        pad += [padding[i], padding[i] + extra]
    conv = F.conv2d if n == 2 else F.conv1d
    sums = conv(F.pad(h, pad), h.new_ones((c, 1, *kernel)), None, stride, 0, 1, c)
    for i in range(n):
        sums = sums.narrow(2 + i, 0, out_size[i])
    return sums * scale


def avg_pool_transpose(g: torch.Tensor, in_size, kernel, stride, padding, scale: torch.Tensor) -> torch.Tensor:
    """The transpose of an average pooling with any divisors (``scale`` (*out), 1/divisor per window):
    each window's cotangent, divided, spread over the window by a depthwise transposed convolution with
    a kernel of ones on the padded grid, then cropped to the input."""
    n, c = g.dim() - 2, g.shape[1]
    weight = g.new_ones((c, 1, *kernel))
    conv_t = F.conv_transpose2d if n == 2 else F.conv_transpose1d
    full = conv_t(g * scale, weight, None, stride, 0, 0, c)
    return fit(full, tuple(padding), tuple(in_size))


def avg_pool_uniform_transpose(g: torch.Tensor, in_size, kernel, stride, padding) -> torch.Tensor:
    """The transpose of an average pooling whose every window divides by the kernel's size."""
    n, c = g.dim() - 2, g.shape[1]
    weight = g.new_full((c, 1, *kernel), 1.0 / math.prod(kernel))  # each input averaged in
    extra = tuple(in_size[i] - ((g.shape[2 + i] - 1) * stride[i] - 2 * padding[i] + kernel[i]) for i in range(n))
    conv_t = F.conv_transpose2d if n == 2 else F.conv_transpose1d
    return conv_t(g, weight, None, stride, padding, extra, c)


def adaptive_matrix(size: int, out: int, like: torch.Tensor) -> torch.Tensor:
    """(out, size): row i averages the inputs [floor(i·size/out), ceil((i+1)·size/out)), as adaptive
    average pooling does; a separable linear map, so pooling is P_h X P_wᵀ and its transpose P_hᵀ G P_w."""
    rows = []
    for i in range(out):
        lo, hi = (i * size) // out, -(-((i + 1) * size) // out)
        rows.append([1.0 / (hi - lo) if lo <= j < hi else 0.0 for j in range(size)])
    return torch.tensor(rows, dtype=like.dtype, device=like.device)


def adaptive_avg(h: torch.Tensor, out_size: tuple[int, ...]) -> torch.Tensor:
    """Adaptive average pooling by its matrices (exports to ONNX at any sizes)."""
    if h.dim() == 3:
        return h @ adaptive_matrix(h.shape[2], out_size[0], h).t()
    return adaptive_matrix(h.shape[2], out_size[0], h) @ h @ adaptive_matrix(h.shape[3], out_size[1], h).t()


def adaptive_avg_transpose(g: torch.Tensor, in_size: tuple[int, ...]) -> torch.Tensor:
    if g.dim() == 3:
        return g @ adaptive_matrix(in_size[0], g.shape[2], g)
    return adaptive_matrix(in_size[0], g.shape[2], g).t() @ g @ adaptive_matrix(in_size[1], g.shape[3], g)


def adaptive_windows(in_size: tuple[int, ...], out_size: tuple[int, ...]) -> list[list[int]]:
    """Per output cell (row-major), the flat input positions of its adaptive window (row-major)."""
    def axis(size, out):
        return [range((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]

    if len(in_size) == 1:
        return [list(r) for r in axis(in_size[0], out_size[0])]
    width = in_size[1]
    return [[r * width + c for r in rows for c in cols]
            for rows in axis(in_size[0], out_size[0]) for cols in axis(in_size[1], out_size[1])]


def adaptive_max(h: torch.Tensor, out_size: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Adaptive max pooling and its flat indices from gathers and a max (ONNX has no such operator):
    each window's inputs padded to the longest window with -inf; ties go to the first, as PyTorch's."""
    windows = adaptive_windows(tuple(h.shape[2:]), out_size)
    plane = math.prod(h.shape[2:])
    longest = max(len(w) for w in windows)
    table = torch.tensor([w + [plane] * (longest - len(w)) for w in windows], device=h.device)  # (O, K)
    flat = torch.cat([h.flatten(2), h.new_full((*h.shape[:2], 1), float("-inf"))], 2)  # (B, C, P + 1)
    values = flat.index_select(2, table.flatten()).view(*h.shape[:2], *table.shape)  # (B, C, O, K)
    out, k = values.max(dim=3)  # (B, C, O)
    idx = table.expand(*h.shape[:2], -1, -1).gather(3, k.unsqueeze(3)).squeeze(3)  # (B, C, O)
    return out.view(*h.shape[:2], *out_size), idx.view(*h.shape[:2], *out_size)


def max_pool(h: torch.Tensor, kernel, stride, padding, dilation, ceil_mode: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Max pooling and its flat indices as PyTorch computes them — windows, -inf padding, ceil_mode's last
    windows, ties to the first in row-major order — from a gather and a max (for ONNX, whose MaxPool
    breaks ties and counts ceil_mode's windows its own way)."""
    n = h.dim() - 2
    size = tuple(h.shape[2:])
    out = [pool_windows(size[i], dilation[i] * (kernel[i] - 1) + 1, stride[i], padding[i], ceil_mode) for i in range(n)]

    def axis(i):  # per output position along axis i, the input positions of its window (-1: outside)
        return [[o * stride[i] - padding[i] + dilation[i] * j if 0 <= o * stride[i] - padding[i] + dilation[i] * j
                 < size[i] else -1 for j in range(kernel[i])] for o in range(out[i])]

    plane = math.prod(size)
    if n == 1:
        windows = [[p if p >= 0 else plane for p in w] for w in axis(0)]
    else:
        rows, cols = axis(0), axis(1)
        windows = [[r * size[1] + c if r >= 0 and c >= 0 else plane for r in rw for c in cw]
                   for rw in rows for cw in cols]
    table = torch.tensor(windows, device=h.device)  # (O, K)
    flat = torch.cat([h.flatten(2), h.new_full((*h.shape[:2], 1), float("-inf"))], 2)  # (B, C, P + 1)
    values = flat.index_select(2, table.flatten()).view(*h.shape[:2], *table.shape)  # (B, C, O, K)
    best, k = values.max(dim=3)  # (B, C, O)
    idx = table.expand(*h.shape[:2], -1, -1).gather(3, k.unsqueeze(3)).squeeze(3)
    return best.view(*h.shape[:2], *out), idx.view(*h.shape[:2], *out)


def scatter_to_indices(g: torch.Tensor, idx: torch.Tensor, in_size: tuple[int, ...]) -> torch.Tensor:
    """Each window's cotangent added to the input its max chose (``idx``: flat positions in the
    input plane, as PyTorch's max pooling returns them; overlapping windows add up)."""
    n, c = g.shape[:2]
    flat = g.new_zeros(n, c, math.prod(in_size))
    flat = flat.scatter_add(2, idx.flatten(2).expand(n, -1, -1), g.flatten(2))
    return flat.view(n, c, *in_size)


def gather_at_indices(h: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """The max pooling with its choices frozen: each window takes the input at ``idx``."""
    return h.flatten(2).gather(2, idx.flatten(2).expand(h.shape[0], -1, -1)).view(h.shape[0], *idx.shape[1:])


def unbroadcast(g: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """The transpose of broadcasting an input of ``shape`` (batch first) to g's shape: summed over
    the non-batch axes it was repeated along."""
    if g.dim() != len(shape):
        raise ValueError(f"an input of shape {tuple(shape)} broadcast to {tuple(g.shape[1:])} per example")
    dims = [i for i in range(1, g.dim()) if shape[i] == 1 and g.shape[i] != 1]
    return g.sum(dims, keepdim=True) if dims else g


def lwta(h: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """LocalWinnerTakesAll's output and its winners' mask (1 for a group's largest unit, ties all
    kept), the same values as the layer computes; channels-last images grouped as views."""
    b, c = h.shape[:2]
    if c % k:
        raise ValueError(f"{c} channels cannot be split into groups of {k}")
    if h.dim() == 4 and not h.is_contiguous() and h.is_contiguous(memory_format=torch.channels_last):
        v = h.permute(0, 2, 3, 1)  # (B, H, W, C), contiguous
        grp = v.reshape(*v.shape[:3], c // k, k)  # (B, H, W, C/k, k)
        winner = (grp == grp.amax(dim=-1, keepdim=True)).to(h.dtype)
        return (grp * winner).reshape(v.shape).permute(0, 3, 1, 2), winner.reshape(v.shape).permute(0, 3, 1, 2)
    grp = h.reshape(b, c // k, k, *h.shape[2:])  # (B, C/k, k, *)
    winner = (grp == grp.amax(dim=2, keepdim=True)).to(h.dtype)  # 1 for the group's largest unit (ties all kept)
    return (grp * winner).reshape(h.shape), winner.reshape(h.shape)
