"""The explorer: the decomposition it shows, the drawing pipeline, and the app headless."""

import numpy as np
import pytest
import torch

from invlab import create_model, reconstruct
from invlab.data import Preprocess
from invlab.viz.explain import Brush, add_noise, explain, ink_to_digit, model_input


def test_explanation_decomposes_the_reconstruction():
    torch.manual_seed(0)
    model = create_model("smallcnn-mean").double().eval()
    x = torch.rand(1, 1, 28, 28, dtype=torch.float64)
    ex = explain(model, x)
    assert torch.allclose(ex.logits, model(x)[0])
    assert torch.allclose(ex.reconstruction, reconstruct(model, x, create_graph=False)[0])
    assert torch.allclose(ex.contributions.sum(0), ex.reconstruction)
    assert ex.shares.sum().item() == pytest.approx(1.0)
    assert torch.allclose(ex.probs.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert ex.templates.shape == (10, 1, 28, 28) and ex.prediction == int(model(x).argmax())
    with pytest.raises(ValueError, match="one input"):
        explain(model, torch.rand(2, 1, 28, 28, dtype=torch.float64))


def test_ink_is_framed_like_mnist():
    ink = np.zeros((280, 280), dtype=np.float32)
    ink[20:120, 200:240] = 1.0  # a tall bar drawn in the top-right corner
    digit = ink_to_digit(ink)
    assert digit.shape == (1, 28, 28) and 0 <= digit.min() and digit.max() <= 1
    rows, cols = (digit[0] > 0).any(1).nonzero(), (digit[0] > 0).any(0).nonzero()
    assert rows.max() - rows.min() + 1 == 20  # the long side fits the 20-pixel box
    assert cols.max() - cols.min() + 1 == 8  # the aspect ratio (100 x 40) is kept
    mass = digit[0].sum()
    cy = (digit[0].sum(1) * torch.arange(28)).sum() / mass
    cx = (digit[0].sum(0) * torch.arange(28)).sum() / mass
    assert abs(cy - 13.5) <= 1 and abs(cx - 13.5) <= 1  # centred by mass
    assert torch.equal(ink_to_digit(np.zeros((280, 280))), torch.zeros(1, 28, 28))


def test_brush_strokes():
    brush = Brush(size=100, radius=5)
    brush.stroke([(10, 50), (90, 50)])
    assert brush.ink[50, 10:91].min() == 1.0 and brush.ink[50 + 8, 50] == 0.0 and brush.ink[5, 5] == 0.0
    brush.clear()
    assert brush.ink.max() == 0


def test_noise_and_preprocessing():
    x = torch.zeros(1, 1, 4, 4)
    assert torch.equal(add_noise(x, 0.0), x) and not torch.equal(add_noise(x, 0.3), x)
    assert torch.equal(add_noise(x, 0.3, seed=1), add_noise(x, 0.3, seed=1))
    model = create_model("smallcnn-mean")
    assert model_input(model, x) is x
    model.preprocess = Preprocess("standardize")
    y = torch.rand(1, 1, 4, 4)
    assert torch.allclose(model_input(model, y).mean(), torch.tensor(0.0), atol=1e-6)


def test_explorer_app_headless():
    from invlab.viz.explorer import ExplorerApp

    torch.manual_seed(0)
    model = create_model("smallcnn-mean").eval()
    images = torch.rand(5, 1, 28, 28)
    app = ExplorerApp(model, images, checkpoints=[])
    first = list(app.probs_fig.data[0].y)
    assert sum(first) == pytest.approx(1.0, abs=1e-5) and "test image #0" in app.status.value
    app.index.value = 3  # picking a test image updates every view
    assert torch.equal(app.raw_input(), images[3:4]) and "test image #3" in app.status.value
    rec_before = np.array(app.images_fig.data[1].z)
    app.stroke([(140, 40), (140, 240)])  # a vertical bar: a drawn "1"
    assert app.source == "drawing" and "your drawing" in app.status.value
    assert list(app.probs_fig.data[0].y) != first
    assert not np.array_equal(np.array(app.images_fig.data[1].z), rec_before)
    assert sum(app.shares_fig.data[0].y) == pytest.approx(1.0, abs=1e-4)
    before = np.array(app.images_fig.data[0].z)
    app.noise.value = 0.5  # noise changes the input shown
    assert not np.array_equal(np.array(app.images_fig.data[0].z), before)
    app.clear()
    assert app.source == "test image" and app.brush.ink.max() == 0


def test_explorer_fits_the_notebook_and_says_what_it_shows():
    """The browser review's items: views within the output area, templates on their own
    scale with labelled thumbnails, the true label beside the prediction, the drawing
    cleared when a test image is picked, each checkpoint listed once, long slider tracks."""
    from invlab.viz.explorer import OUTPUT_WIDTH, ExplorerApp

    torch.manual_seed(0)
    model = create_model("smallcnn-mean").eval()
    model.data_info = {"class_names": [f"c{k}" for k in range(10)]}
    images, labels = torch.rand(5, 1, 28, 28), torch.tensor([7, 2, 1, 0, 4])
    app = ExplorerApp(model, images, test_labels=labels, checkpoints=["runs/a/checkpoint.pt", "runs/b/checkpoint.pt",
                                                                      "runs/a/checkpoint.pt"],
                      model_path="runs/a/checkpoint.pt", model_label="bin/run's model")
    assert app.images_fig.layout.width + app.shares_fig.layout.width <= OUTPUT_WIDTH
    assert app.templates_fig.layout.width <= OUTPUT_WIDTH
    assert app.probs_fig.layout.width + 280 + 20 <= OUTPUT_WIDTH  # beside the canvas
    assert list(app.probs_fig.data[0].x) == [f"c{k}" for k in range(10)]  # class names on the bars
    templates, contributions = app.templates_fig.data
    assert templates.zmax == pytest.approx(float(app.explanation.templates.abs().max()), rel=1e-5)
    assert contributions.zmax == pytest.approx(float(app.explanation.contributions.abs().max()), rel=1e-5)
    assert list(app.templates_fig.layout.xaxis.ticktext) == [f"c{k}" for k in range(10)]  # every thumbnail named
    assert [v for _, v in app.checkpoint.options] == ["runs/a/checkpoint.pt", "runs/b/checkpoint.pt"]
    assert int(app.index.layout.width.rstrip("px")) >= 400
    app.stroke([(140, 40), (140, 240)])
    app.index.value = 1
    assert app.brush.ink.max() == 0 and app.source == "test image"  # the old drawing is gone
    assert "true class <b>c2</b>" in app.status.value and "predicted <b>c" in app.status.value


def test_explorer_shows_colour_images_without_a_canvas():
    from invlab.viz.explorer import ExplorerApp

    torch.manual_seed(0)
    model = create_model("resnet3-16-mean", input_shape=(3, 20, 20), num_classes=4).eval()
    app = ExplorerApp(model, torch.rand(3, 3, 20, 20), checkpoints=[], class_names=["a", "b", "c", "d"])
    assert not app.drawable and app.images_fig.data[0].type == "image"  # an RGB picture
    assert app.templates_fig.data[0].type == "image" and len(app.templates_fig.data) == 2
    with pytest.raises(ValueError, match="colour"):
        app.stroke([(1, 1), (2, 2)])
    app.index.value = 2
    assert "test image #2" in app.status.value and list(app.probs_fig.data[0].x) == ["a", "b", "c", "d"]


def test_ink_is_framed_for_any_image_size():
    ink = np.zeros((280, 280), dtype=np.float32)
    ink[20:120, 200:240] = 1.0
    image = ink_to_digit(ink, (64, 48))
    rows = (image[0] > 0).any(1).nonzero()
    assert image.shape == (1, 64, 48) and rows.max() - rows.min() + 1 == round(20 / 28 * 48)


def test_explorer_loads_a_selected_checkpoint(task, tmp_path):
    from invlab.train import TrainConfig, load_model, train
    from invlab.viz.explorer import ExplorerApp

    train(TrainConfig(steps=2, eval_every=2, labelled_batch=10, unlabelled_batch=10, val_size=100), data=task,
          out_dir=tmp_path / "run", progress=False)
    app = ExplorerApp(
        create_model("smallcnn-mean").eval(),
        task.x_test[:3],
        checkpoints=[tmp_path / "run" / "checkpoint.pt"],
        load=load_model,
        model_label="untrained",
    )
    assert app.checkpoint.label == "untrained"
    before = list(app.probs_fig.data[0].y)
    app.checkpoint.value = str(tmp_path / "run" / "checkpoint.pt")
    assert list(app.probs_fig.data[0].y) != before
    assert hasattr(app.model, "preprocess")
