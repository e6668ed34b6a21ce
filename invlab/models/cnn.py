"""SmallCNN and LargeCNN, the plain convolutional topologies of Table 2.

The paper gives no layer-by-layer topology. Sources for the choices below:

* SmallCNN — the first author's later public code: conv 32@5x5 -> pool 2 ->
  conv 64@5x5 -> pool 2 -> dense. Convolutions are unpadded ("valid"), so a 28x28
  digit becomes 64 maps of 4x4 before the dense layer.
* LargeCNN — the classic "ConvLarge" of the semi-supervised literature (Laine & Aila
  2017; Miyato et al. 2018): conv 96@3x3 x3 (padded) -> pool 2 -> conv 192@3x3 x3
  (padded) -> pool 2 -> conv 192@3x3 (valid) -> conv 192@1x1 -> global average pool ->
  dense. ConvLarge's dropout and batch norm are left out (no batch norm in this paper);
  ReLU replaces its leaky ReLU so that all models share one nonlinearity.
* The "U" variants (SmallUCNN, LargeUCNN) swap ReLU for the inhibitor nonlinearity
  :class:`~invlab.models.layers.LocalWinnerTakesAll` and drop every bias (the inhibitor
  "removes bias units"); they pool with the mean. This is an assumption: see that class.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .layers import activation, pool2d
from .registry import bias_free, register_model


class SmallCNN(nn.Module):
    """conv 32@5x5 -> act -> pool 2 -> conv 64@5x5 -> act -> pool 2 -> dense.

    Input (B, in_channels, S, S) with S = ``image_size`` (28 for MNIST); output logits
    (B, num_classes). ``pool`` is "mean" or "max"; ``act`` "relu" or "lwta".
    """

    input_ndim = 4

    def __init__(self, num_classes=10, in_channels=1, pool="mean", act="relu", bias=True,
                 image_size=28, group_size=2):
        super().__init__()
        side = ((image_size - 4) // 2 - 4) // 2
        if side < 1:
            raise ValueError(f"SmallCNN needs images of at least 12x12, got image_size={image_size}")
        self.in_channels = in_channels
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 5, bias=bias), activation(act, group_size), pool2d(pool),
            nn.Conv2d(32, 64, 5, bias=bias), activation(act, group_size), pool2d(pool),
        )
        self.classifier = nn.Linear(64 * side * side, num_classes, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)  # (B, 64, side, side)
        return self.classifier(h.flatten(1))  # (B, num_classes)


class LargeCNN(nn.Module):
    """ConvLarge without batch norm: 3x conv 96, pool, 3x conv 192, pool, conv 192 (valid),
    conv 192@1x1, global average pool, dense. Input (B, in_channels, H, W), H, W >= 12."""

    input_ndim = 4

    def __init__(self, num_classes=10, in_channels=1, pool="mean", act="relu", bias=True,
                 group_size=2):
        super().__init__()
        self.in_channels = in_channels

        def conv(cin, cout, k, pad):
            return [nn.Conv2d(cin, cout, k, padding=pad, bias=bias), activation(act, group_size)]

        self.features = nn.Sequential(
            *conv(in_channels, 96, 3, 1), *conv(96, 96, 3, 1), *conv(96, 96, 3, 1), pool2d(pool),
            *conv(96, 192, 3, 1), *conv(192, 192, 3, 1), *conv(192, 192, 3, 1), pool2d(pool),
            *conv(192, 192, 3, 0), *conv(192, 192, 1, 0),
        )
        self.classifier = nn.Linear(192, num_classes, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)  # (B, 192, H/4 - 2, W/4 - 2)
        return self.classifier(h.mean(dim=(2, 3)))  # global average pool -> (B, num_classes)


@register_model("smallcnn-mean")
def smallcnn_mean(**kw):
    return SmallCNN(pool="mean", **kw)


@register_model("smallcnn-max")
def smallcnn_max(**kw):
    return SmallCNN(pool="max", **kw)


@register_model("smallucnn")
@bias_free
def smallucnn(**kw):
    return SmallCNN(pool="mean", act="lwta", bias=False, **kw)


@register_model("largecnn-mean")
def largecnn_mean(**kw):
    return LargeCNN(pool="mean", **kw)


@register_model("largecnn-max")
def largecnn_max(**kw):
    return LargeCNN(pool="max", **kw)


@register_model("largeucnn")
@bias_free
def largeucnn(**kw):
    return LargeCNN(pool="mean", act="lwta", bias=False, **kw)
