"""Residual networks of Table 2: Resnet2-32 and Resnet3-16 (mean, max, inhibitor).

Paper eq. 3 writes each residual layer as (A_sigma C_in + C_out): a nonlinear branch
plus a *linear* skip, which gives a direct linear path from x to every layer. The
blocks below follow that form (pre-activation residual blocks, He et al. 2016, without
batch norm): h -> h + conv(act(conv(act(h)))), so the skip is never rectified.

Assumptions (the paper gives no topology), with sources:

* ``ResNet(blocks, width)``: a 3x3 stem conv of ``width`` maps, then three stages of
  widths w, 2w, 4w with ``blocks`` residual blocks each, then global average pooling and
  a dense layer — the (depth, width) parameterisation of the first author's later code.
  "Resnet2-32" is read as 2 blocks per stage at width 32 and "Resnet3-16" as 3 blocks
  at width 16; the paper calls Resnet2-32 "wide", which fits.
* Downsampling between stages is a 2x2 pooling of the stage input, mean or max: this is
  where the "mean" and "max" variants differ. When the width changes, the skip is a
  1x1 convolution (linear, as in eq. 3).
* The "U" variants use the inhibitor nonlinearity and no biases (see
  :class:`~invlab.models.layers.LocalWinnerTakesAll`) with mean pooling.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from invlab.data.mnist import MNIST_CLASSES, MNIST_INPUT_SHAPE
from invlab.models.layers import activation, pool2d
from invlab.models.registry import InputShapeError, bias_free, register_model, resolve_shape


class ResidualBlock(nn.Module):
    """y = P h + conv2(act(conv1(act(h)))), P the identity or a 1x1 conv. (B, Cin, H, W) -> (B, Cout, H, W)."""

    def __init__(self, cin, cout, act, bias, group_size):
        super().__init__()
        self.act1 = activation(act, group_size)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=bias)
        self.act2 = activation(act, group_size)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=bias)
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1, bias=bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.skip(h) + self.conv2(self.act2(self.conv1(self.act1(h))))


class ResNet(nn.Module):
    """Stem conv -> 3 stages (w, 2w, 4w) x ``blocks`` -> act -> global average pool -> dense.

    Input (B, C, H, W), (C, H, W) = ``input_shape`` (default MNIST's), H, W >= 4;
    output (B, num_classes).
    """

    input_ndim = 4
    min_side = 4

    def __init__(self, blocks, width, num_classes=len(MNIST_CLASSES), in_channels=None, pool="mean", act="relu",
                 bias=True, group_size=2, input_shape=None):
        super().__init__()
        in_channels, h, w = self.input_shape = resolve_shape(input_shape, in_channels, MNIST_INPUT_SHAPE, "ResNet")
        if min(h, w) < self.min_side:
            raise InputShapeError(f"needs images of at least {self.min_side}x{self.min_side} (two 2x2 poolings), "
                                  f"got {h}x{w}")
        self.in_channels = in_channels
        self.stem = nn.Conv2d(in_channels, width, 3, padding=1, bias=bias)
        layers: list[nn.Module] = []
        cin = width
        for stage, cout in enumerate((width, 2 * width, 4 * width)):
            if stage > 0:
                layers.append(pool2d(pool))  # 28 -> 14 -> 7 on MNIST
            for _ in range(blocks):
                layers.append(ResidualBlock(cin, cout, act, bias, group_size))
                cin = cout
        self.stages = nn.Sequential(*layers)
        self.final_act = activation(act, group_size)
        self.classifier = nn.Linear(cin, num_classes, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.final_act(self.stages(self.stem(x)))  # (B, 4w, H/4, W/4)
        return self.classifier(h.mean(dim=(2, 3)))  # (B, num_classes)


def _register_resnet(blocks: int, width: int) -> None:
    tag = f"{blocks}-{width}"
    register_model(f"resnet{tag}-mean")(lambda **kw: ResNet(blocks, width, pool="mean", **kw))
    register_model(f"resnet{tag}-max")(lambda **kw: ResNet(blocks, width, pool="max", **kw))
    register_model(f"uresnet{tag}")(bias_free(
        lambda **kw: ResNet(blocks, width, pool="mean", act="lwta", bias=False, **kw)))


_register_resnet(2, 32)
_register_resnet(3, 16)
