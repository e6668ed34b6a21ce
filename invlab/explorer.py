"""The reconstruction explorer of ``notebooks/00_explore``: draw a digit (or pick a test
digit) and watch, live, the predicted class probabilities, the reconstruction
(df/dx)^T f(x), the ten per-class templates A[x]_c, each class's contribution
f_c(x)·A[x]_c and its share of the reconstruction (see :mod:`invlab.explain`).

The app is a thin layer of widgets over :func:`invlab.explain.explain`; every view is a
plotly ``FigureWidget`` updated in place, and the drawing is kept server-side
(:class:`~invlab.explain.Brush`), so the same code runs in a browser and headless.
"""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go
import torch
import torch.nn as nn

from .explain import CANVAS_SIZE, Brush, add_noise, explain, list_checkpoints, model_input
from .plots import image_rows

_UPDATE_EVERY = 4  # mouse-move events between live updates while drawing


def _bars(title: str, y_title: str, classes: int) -> go.FigureWidget:
    fig = go.FigureWidget(go.Bar(x=list(range(classes)), y=[0.0] * classes))
    fig.update_layout(title=title, height=240, width=430, margin=dict(l=40, r=10, t=40, b=30),
                      template="plotly_white", xaxis=dict(title="class", dtick=1), yaxis=dict(title=y_title))
    return fig


class ExplorerApp:
    """Canvas, test-digit picker, noise slider and checkpoint selector, with live views.

    Args:
        model: the classifier to explore (eval mode; ``model.preprocess`` is applied when
            present, as :func:`~invlab.train.load_model` provides it).
        test_images: (N, 1, 28, 28) raw test digits in [0, 1] for the picker.
        checkpoints: paths offered in the selector (default: every checkpoint under runs/).
        load: ``load(path) -> model``, used when another checkpoint is selected.
    """

    def __init__(self, model: nn.Module, test_images: torch.Tensor, checkpoints: list[Path] | None = None,
                 load=None, model_label: str = "model"):
        import ipywidgets as W
        from ipycanvas import Canvas

        self.model, self.test_images, self.load = model.eval(), test_images, load
        self.brush = Brush()
        self.source = "test digit"  # or "drawing"
        self._last: tuple[float, float] | None = None  # last mouse point of the stroke being drawn
        self._moves = 0
        self.canvas = Canvas(width=CANVAS_SIZE, height=CANVAS_SIZE, layout=W.Layout(border="1px solid #888"))
        self._clear_canvas()
        self.canvas.on_mouse_down(self._down)
        self.canvas.on_mouse_move(self._move)
        self.canvas.on_mouse_up(self._up)
        self.clear_button = W.Button(description="Clear drawing", icon="eraser")
        self.clear_button.on_click(lambda _: self.clear())
        style = {"description_width": "110px"}
        self.index = W.IntSlider(value=0, min=0, max=len(test_images) - 1, description="test digit", style=style)
        self.noise = W.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.05, description="noise σ", style=style)
        paths = checkpoints if checkpoints is not None else list_checkpoints()
        options = [(model_label, "")] + [(str(p), str(p)) for p in paths]  # "": the model given
        self.checkpoint = W.Dropdown(options=options, value="", description="checkpoint", style=style,
                                     layout=W.Layout(width="420px"))
        self.status = W.HTML()
        self.index.observe(lambda _: self._pick_test_digit(), names="value")
        self.noise.observe(lambda _: self.update(), names="value")
        self.checkpoint.observe(lambda change: self._select(change["new"]), names="value")

        self.probs_fig = _bars("prediction: class probabilities", "probability", 10)
        self.shares_fig = _bars("share of each class in the reconstruction", "share", 10)
        ex = self._explain()
        self.images_fig = go.FigureWidget(image_rows({"input": ex.x[None], "reconstruction (df/dx)ᵀ f(x)":
                                                      ex.reconstruction[None]}, title="input and its reconstruction"))
        self.templates_fig = go.FigureWidget(image_rows(
            {"templates A[x]_c, c = 0…9": ex.templates, "contributions f_c(x)·A[x]_c": ex.contributions},
            signed=True, title="per-class templates and their contributions to the reconstruction"))
        self.update()
        self.widget = W.VBox([
            W.HBox([W.VBox([self.canvas, self.clear_button]),
                    W.VBox([self.index, self.noise, self.checkpoint, self.status, self.probs_fig])]),
            W.HBox([self.images_fig, self.shares_fig]),
            self.templates_fig,
        ])

    # -- inputs ---------------------------------------------------------------------------
    def raw_input(self) -> torch.Tensor:
        """The current raw input (1, 1, 28, 28) in [0, 1], before noise and preprocessing."""
        if self.source == "drawing":
            return self.brush.digit()[None]
        return self.test_images[self.index.value][None]

    def current_input(self) -> torch.Tensor:
        """What the model sees now: raw input, plus noise, through the model's preprocessing."""
        return model_input(self.model, add_noise(self.raw_input(), self.noise.value, seed=self.index.value))

    def stroke(self, points) -> None:
        """Draw a stroke through canvas points [(x, y), ...] (what the mouse does), then update."""
        points = list(points)
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            self._line(x0, y0, x1, y1)
        self.brush.stroke(points)
        self.source = "drawing"
        self.update()

    def clear(self) -> None:
        self.brush.clear()
        self._clear_canvas()
        self.source = "test digit"
        self.update()

    # -- views ----------------------------------------------------------------------------
    def _explain(self):
        return explain(self.model, self.current_input())

    def update(self) -> None:
        """Recompute every view for the current input."""
        ex = self._explain()
        self.explanation = ex
        with self.probs_fig.batch_update():
            self.probs_fig.data[0].y = ex.probs.tolist()
        with self.shares_fig.batch_update():
            self.shares_fig.data[0].y = ex.shares.tolist()
        with self.images_fig.batch_update():
            image_rows({"input": ex.x[None], "reconstruction": ex.reconstruction[None]}, fig=self.images_fig)
        with self.templates_fig.batch_update():
            image_rows({"templates": ex.templates, "contributions": ex.contributions}, signed=True,
                       fig=self.templates_fig)
        what = "your drawing" if self.source == "drawing" else f"test digit {self.index.value}"
        self.status.value = (f"<b>{what}</b>: predicted <b>{ex.prediction}</b> "
                             f"({100 * float(ex.probs.max()):.1f} %)" + (f", noise σ = {self.noise.value:.2f}"
                                                                          if self.noise.value else ""))

    def _pick_test_digit(self) -> None:
        self.source = "test digit"
        self.update()

    def _select(self, path: str) -> None:
        if not path or self.load is None:
            return
        try:
            self.model = self.load(path).eval()
        except (ValueError, RuntimeError, OSError) as err:
            self.status.value = f"<span style='color:#c00'>cannot load {path}: {err}</span>"
            return
        self.update()

    # -- canvas events ----------------------------------------------------------------------
    def _clear_canvas(self) -> None:
        self.canvas.fill_style = "black"
        self.canvas.fill_rect(0, 0, CANVAS_SIZE, CANVAS_SIZE)

    def _line(self, x0, y0, x1, y1) -> None:
        self.canvas.stroke_style = "white"
        self.canvas.line_width = 2 * self.brush.radius
        self.canvas.line_cap = "round"
        self.canvas.stroke_line(x0, y0, x1, y1)

    def _down(self, x, y) -> None:
        self.source = "drawing"
        self.brush.start(x, y)
        self._line(x, y, x, y)
        self._last, self._moves = (x, y), 0

    def _move(self, x, y) -> None:
        if self._last is None:
            return
        self._line(*self._last, x, y)
        self.brush.move(x, y)
        self._last = (x, y)
        self._moves += 1
        if self._moves % _UPDATE_EVERY == 0:
            self.update()

    def _up(self, x, y) -> None:
        if self._last is not None:
            self._move(x, y)
        self._last = None
        self.brush.end()
        self.update()
