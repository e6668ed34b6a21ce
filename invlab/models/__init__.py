"""Networks of the paper, built by name: ``create_model("smallcnn-mean")``.

All are piecewise-affine (conv, dense, ReLU / inhibitor, mean / max pooling, residual
sums) and free of batch norm, so :mod:`invlab.inverse` applies exactly.
"""

from invlab.models import audio, cnn, resnet  # noqa: F401  (registers the models)
from invlab.models.audio import Bird10CNN
from invlab.models.cnn import LargeCNN, SmallCNN
from invlab.models.layers import LocalWinnerTakesAll
from invlab.models.registry import create_model, list_models, register_model
from invlab.models.resnet import ResNet

#: The 12 topologies of Table 2, in the paper's order.
TABLE2_MODELS = (
    "smallcnn-mean", "smallcnn-max", "smallucnn",
    "largecnn-mean", "largecnn-max", "largeucnn",
    "resnet2-32-mean", "resnet2-32-max", "uresnet2-32",
    "resnet3-16-mean", "resnet3-16-max", "uresnet3-16",
)

__all__ = [
    "Bird10CNN", "LargeCNN", "LocalWinnerTakesAll", "ResNet", "SmallCNN", "TABLE2_MODELS",
    "create_model", "list_models", "register_model",
]
