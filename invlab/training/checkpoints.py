"""Checkpoints of :class:`~invlab.training.trainer.Trainer`: their file names and format, and
:func:`load_model`, the network of a checkpoint rebuilt with its input transform."""

from __future__ import annotations

from pathlib import Path

import torch.nn as nn

from invlab.data.mnist import MNIST_INPUT_SHAPE
from invlab.data.preprocess import Preprocess
from invlab.io import load_torch
from invlab.models import create_model
from invlab.models.audio import BIRD10_INPUT_SHAPE
from invlab.models.custom import build_custom_model

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.json"
CHECKPOINT_FORMAT = 1  # the version of the checkpoint layout
_FORMAT = CHECKPOINT_FORMAT  # its former name


def load_model(checkpoint: str | Path, best: bool = True, device: str = "cpu",
               model: nn.Module | None = None) -> nn.Module:
    """The model stored in a checkpoint written by :func:`train` (``invlab train``).

    ``best=True`` gives the weights of the step with the best validation accuracy, else
    the last step's. The network is rebuilt from the checkpoint: a registry model for the
    recorded data set's input shape and class count, or the ``--model-file`` factory it
    records; a network that was handed to :func:`train` as a module cannot be rebuilt
    from a name, so pass a fresh instance as ``model`` to receive the weights. Eval mode.

    The run's input preprocessing comes with it as ``model.preprocess`` (a
    :class:`~invlab.data.preprocess.Preprocess`): apply it to raw inputs before the
    model, ``model(model.preprocess(x))``, exactly as training, validation and test did.
    ``model.data_info`` is the data set's record (name, input shape, class names, source).
    """
    try:
        state = load_torch(checkpoint, map_location=device)
    except Exception as err:
        raise ValueError(f"cannot read checkpoint {checkpoint} ({type(err).__name__}: {err})") from err
    config, info = state["config"], state.get("data", {})
    weights = state["best_state"] if best and state.get("best_state") else state["model"]
    if "input_shape" in info:
        shape, classes = tuple(info["input_shape"]), config.get("outputs") or info["num_classes"]
    else:  # checkpoints written before the data set was recorded: MNIST digits or Bird10 segments
        first = next(v for k, v in state["model"].items() if k.endswith("weight"))  # the first layer's
        default = BIRD10_INPUT_SHAPE if first.ndim == 3 else MNIST_INPUT_SHAPE
        shape, classes = (first.shape[1], *default[1:]), next(reversed(state["model"].values())).shape[0]
    source = state.get("model_source", {"kind": "registry", "name": config["model"]})
    if model is None:
        if source["kind"] == "file":
            model, _ = build_custom_model(source["spec"], shape, classes)
        elif source["kind"] == "registry":
            model = create_model(source["name"], input_shape=shape, num_classes=classes, bias=config.get("bias"))
        else:
            raise ValueError(f"{checkpoint} holds a network that was given to train() as a module "
                             f"({source.get('class')}); rebuild it and pass it: load_model(path, model=MyNet())")
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        raise ValueError(f"the weights in {checkpoint} do not fit the network rebuilt for it "
                         f"({str(err).splitlines()[0]})") from err
    model.preprocess = Preprocess(config.get("preprocess", "none"))
    model.data_info = info
    return model.to(device).eval()
