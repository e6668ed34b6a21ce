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

from invlab.data.mnist import MNIST_CLASSES, MNIST_INPUT_SHAPE
from invlab.models.layers import activation, pool2d
from invlab.models.registry import InputShapeError, bias_free, register_model, resolve_shape


def smallcnn_side(size: int) -> int:
    """Side of SmallCNN's last feature maps for an input side: two 5x5 valid convolutions, two 2x2 poolings."""
    return ((size - 4) // 2 - 4) // 2


class SmallCNN(nn.Module):
    """conv 32@5x5 -> act -> pool 2 -> conv 64@5x5 -> act -> pool 2 -> dense.

    Input (B, C, H, W) with (C, H, W) = ``input_shape`` (default MNIST's (1, 28, 28);
    H, W >= 16); output logits (B, num_classes). ``pool`` is "mean" or "max"; ``act``
    "relu" or "lwta". The dense layer is sized for ``input_shape``.
    """

    input_ndim = 4
    min_side = 16

    def __init__(self, num_classes=len(MNIST_CLASSES), in_channels=None, pool="mean", act="relu", bias=True,
                 input_shape=None, group_size=2, image_size=None):
        super().__init__()
        if image_size is not None:  # older keyword: a square image
            input_shape = (in_channels or MNIST_INPUT_SHAPE[0], image_size, image_size)
        in_channels, h, w = self.input_shape = resolve_shape(input_shape, in_channels, MNIST_INPUT_SHAPE, "SmallCNN")
        if min(smallcnn_side(h), smallcnn_side(w)) < 1:
            raise InputShapeError(f"needs images of at least {self.min_side}x{self.min_side} (two 5x5 valid "
                                  f"convolutions and two 2x2 poolings), got {h}x{w}")
        self.in_channels = in_channels
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 5, bias=bias), activation(act, group_size), pool2d(pool),
            nn.Conv2d(32, 64, 5, bias=bias), activation(act, group_size), pool2d(pool),
        )
        self.classifier = nn.Linear(64 * smallcnn_side(h) * smallcnn_side(w), num_classes, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)  # (B, 64, (H-12)//4, (W-12)//4) roughly: see smallcnn_side
        return self.classifier(h.flatten(1))  # (B, num_classes)


class LargeCNN(nn.Module):
    """ConvLarge without batch norm: 3x conv 96, pool, 3x conv 192, pool, conv 192 (valid),
    conv 192@1x1, global average pool, dense. Input (B, C, H, W), H, W >= 12 (any size
    above: the global pooling makes the dense layer independent of it)."""

    input_ndim = 4
    min_side = 12

    def __init__(self, num_classes=len(MNIST_CLASSES), in_channels=None, pool="mean", act="relu", bias=True,
                 group_size=2, input_shape=None):
        super().__init__()
        in_channels, h, w = self.input_shape = resolve_shape(input_shape, in_channels, MNIST_INPUT_SHAPE, "LargeCNN")
        if min(h // 4, w // 4) < 3:
            raise InputShapeError(f"needs images of at least {self.min_side}x{self.min_side} (two 2x2 poolings, then "
                                  f"a 3x3 valid convolution), got {h}x{w}")
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
