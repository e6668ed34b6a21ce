"""The raw-audio 1-D CNN of the Bird10 experiment (paper §3.2, appendix A.2)."""

from __future__ import annotations

import torch
import torch.nn as nn

from invlab.models.registry import InputShapeError, register_model, resolve_shape

#: One 500 ms segment of mono audio at 44.1 kHz, the paper's Bird10 input.
BIRD10_INPUT_SHAPE = (1, 22_050)
BIRD10_CLASSES = 10


def _conv_out(length: int, kernel: int, stride: int) -> int:
    return (length - kernel) // stride + 1


class Bird10CNN(nn.Module):
    """conv1d(42 filters, kernel 1024, stride 512) -> ReLU -> maxpool1d(4, 2) ->
    conv1d(42 filters, kernel 3, stride 2) -> ReLU -> dense(32) -> ReLU -> dropout(0.5) ->
    dense(num_classes), exactly as listed in the paper.

    Input (B, C, T), (C, T) = ``input_shape`` (or ``segment_length`` samples); the
    default, (1, 22 050), is a 500 ms mono segment at 44.1 kHz; T >= 4608. The ReLU after
    each layer is an assumption (the paper lists only the affine layers). Dropout is per sample, so the inverse stays
    per sample in training mode; it then inverts the thinned network of that step.
    """

    input_ndim = 3
    min_length = 4608

    def __init__(self, num_classes=BIRD10_CLASSES, in_channels=None, segment_length=None, filters=42,
                 hidden=32, dropout=0.5, bias=True, input_shape=None):
        super().__init__()
        if segment_length is not None:
            input_shape = (in_channels or BIRD10_INPUT_SHAPE[0], segment_length)
        in_channels, segment_length = self.input_shape = resolve_shape(input_shape, in_channels, BIRD10_INPUT_SHAPE,
                                                                       "Bird10CNN")
        t = _conv_out(_conv_out(_conv_out(segment_length, 1024, 512), 4, 2), 3, 2) if segment_length >= 1024 else 0
        if t < 1:
            raise InputShapeError(
                f"segment_length={segment_length} is too short for bird10-cnn "
                "(kernel 1024, stride 512, pool 4/2, kernel 3 stride 2): use at least 4608 samples")
        self.in_channels = in_channels
        self.segment_length = segment_length
        self.features = nn.Sequential(
            nn.Conv1d(in_channels, filters, 1024, stride=512, bias=bias), nn.ReLU(),
            nn.MaxPool1d(4, 2),
            nn.Conv1d(filters, filters, 3, stride=2, bias=bias), nn.ReLU(),
        )
        self.classifier = nn.Sequential(
            nn.Linear(filters * t, hidden, bias=bias), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, num_classes, bias=bias),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)  # (B, 42, t); t = 9 for 22 050 samples
        return self.classifier(h.flatten(1))  # (B, num_classes)


@register_model("bird10-cnn")
def bird10_cnn(**kw):
    return Bird10CNN(**kw)
