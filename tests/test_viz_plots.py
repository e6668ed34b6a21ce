"""invlab.viz.plots: the figures, their updates, image rows and the reconstruction PNG."""

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from invlab.viz.plots import bar_chart, image_rows, learning_curves, reconstruction_grid, region_figure, signals_figure


def test_reconstruction_grid_pairs_rows():
    x = torch.zeros(5, 1, 4, 4)
    rec = torch.ones(5, 1, 4, 4)
    grid = reconstruction_grid(x, rec, nrow=3)
    assert grid.shape == (3, 4 * (4 + 2) + 2, 3 * (4 + 2) + 2)  # 4 rows (2 pairs) of 3 images
    with pytest.raises(ValueError, match="same|one shape"):
        reconstruction_grid(x, rec[:2])


def test_figures_are_built_and_updated():
    history = [{"step": 10, "total": 1.0, "ce": 0.5, "reconstruction": 0.3, "entropy": 0.2,
                "val_accuracy": 50.0, "test_accuracy": 49.0}]
    fig = go.FigureWidget(learning_curves([]))
    learning_curves(history, fig=fig)
    val = next(t for t in fig.data if t.name == "val_accuracy")
    assert list(val.x) == [10] and list(val.y) == [50.0]
    rows = image_rows({"a": torch.rand(3, 1, 5, 5), "b": torch.randn(3, 1, 5, 5)}, signed=True)
    assert len(rows.data) == 2 and rows.data[0].z.shape == (7, 19)
    with pytest.raises(ValueError, match="B, 1, H, W"):
        image_rows({"bad": torch.rand(3, 5, 5)})
    assert len(region_figure(torch.arange(3.0), torch.arange(2.0), torch.tensor([[0, 1, 1], [2, 2, 0]])).data) == 1
    assert len(signals_figure({"p": {"x": torch.ones(4), "y": torch.zeros(4)}}).data) == 2
    assert list(bar_chart({"a": 1.0, "b": 2.0}).data[0].y) == [1.0, 2.0]


def test_image_rows_draw_no_grid_lines_over_the_digits():
    fig = image_rows({"a": torch.rand(3, 1, 6, 6), "b": torch.rand(3, 1, 6, 6)}, signed=False)
    axes = [fig.layout[k] for k in fig.layout if k.startswith(("xaxis", "yaxis"))]
    assert len(axes) == 4 and all(a.showgrid is False and a.zeroline is False for a in axes)


def test_image_rows_take_any_number_of_rows_with_the_same_gap():
    """Plotly's spacing between rows is a fraction of the figure: a fixed fraction fails past
    a dozen rows (32 rows: "Vertical spacing cannot be greater than 0.032")."""
    few = image_rows({f"r{i}": torch.rand(2, 1, 6, 6) for i in range(4)})
    many = image_rows({f"r{i}": torch.rand(2, 1, 6, 6) for i in range(32)})

    def gap_px(fig):
        top, below = fig.layout.yaxis.domain, fig.layout.yaxis2.domain
        return (top[0] - below[1]) * (fig.layout.height - 70)  # the plotting area: height less the margins

    assert len(many.data) == 32 and gap_px(many) == pytest.approx(gap_px(few), rel=0.1)


def test_loss_axis_labels_powers_of_ten_only():
    from invlab.viz.plots import learning_curves

    fig = learning_curves([{"step": 1, "total": 2.3, "ce": 2.2, "reconstruction": 0.5, "entropy": 1.9,
                            "val_accuracy": 10.0, "test_accuracy": 10.0}])
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis.dtick == 1


def test_image_rows_store_pictures_as_8_bit_grey_levels():
    """Unsigned rows are pictures: 0-255 levels in one byte each (a quarter of float32's
    bytes in a saved figure), the darkest pixel of each image at 0 and the lightest at 255."""
    x = torch.rand(2, 1, 6, 6)
    z = np.asarray(image_rows({"a": x}).data[0].z)
    assert z.dtype == np.uint8 and z.shape == (8, 15)
    first = z[1:7, 1:7]  # inside the one-pixel padding
    assert first.min() == 0 and first.max() == 255
    assert np.array_equal(first.argmax(), x[0, 0].flatten().argmax().numpy())
    signed = np.asarray(image_rows({"a": x - 0.5}, signed=True).data[0].z)
    assert signed.dtype.kind == "f"  # templates keep their values and sign


def test_the_reconstruction_png_is_large_and_names_its_rows(tmp_path):
    """runs/<name>/reconstructions.png was 242 x 122 px with no word on it: now at least four
    times the pixels, each row named on its left, a title above."""
    from PIL import Image

    from invlab.models import create_model
    from invlab.viz.plots import save_reconstruction_figure

    path = save_reconstruction_figure(create_model("smallcnn-mean"), torch.rand(16, 1, 28, 28), tmp_path / "r.png")
    image = Image.open(path).convert("L")
    assert image.width * image.height >= 4 * 242 * 122
    pixels = torch.from_numpy(np.asarray(image).copy())  # (H, W) grey levels
    image_left = image.width - (8 * (28 + 2) + 2) * 3  # the grid: 8 images of 28 px, padding 2, drawn 3x
    assert image_left > 100  # a column of labels
    top = 36  # 12 * scale
    for k in range(4):  # input, reconstruction, input, reconstruction
        centre = top + (2 + k * 30 + 14) * 3
        band = pixels[centre - 6:centre + 6, : image_left - 4]
        assert (band < 128).any(), f"row {k} has no label"
    assert (pixels[:top, image_left:] < 128).any()  # the title


@pytest.mark.parametrize("count", [1, 5, 11])
@pytest.mark.parametrize("channels", [1, 3])
def test_the_grid_is_torchvisions(count, channels):
    """invlab draws its image grids itself (importing torchvision costs seconds per process); the reference is
    torchvision.utils.make_grid, per-image scaling (scale_each) as invlab uses it, a constant image included."""
    from torchvision.utils import make_grid as reference

    from invlab.viz.plots import make_grid

    x = torch.randn(count, channels, 7, 5)
    x[0] = 2.0
    for kw in (dict(nrow=4, padding=1, pad_value=0.0), dict(nrow=3, padding=2, normalize=True, pad_value=1.0),
               dict(nrow=count, padding=1, normalize=True, pad_value=1.0)):
        want = reference(x.clone(), scale_each=kw.get("normalize", False), **kw)
        assert torch.allclose(make_grid(x, **kw), want, atol=1e-6), kw
