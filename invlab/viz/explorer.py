"""The reconstruction explorer of ``notebooks/00_explore``: draw a digit (or pick a test
image) and watch, live, the predicted class probabilities, the reconstruction
(df/dx)^T f(x), the per-class templates A[x]_c, each class's contribution f_c(x)·A[x]_c
and its share of the reconstruction (see :mod:`invlab.viz.explain`).

Any image data set works: the class names come from the checkpoint's data set
(``model.data_info``), colour images are shown in colour, and the drawing canvas is
offered for single-channel images only (a test-image picker for all).

The app is a thin layer of widgets over :func:`invlab.viz.explain.explain`; every view is a
plotly ``FigureWidget`` updated in place, and the drawing is kept server-side
(:class:`~invlab.viz.explain.Brush`), so the same code runs in a browser and headless.
"""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go
import torch
import torch.nn as nn

from invlab.viz.explain import CANVAS_SIZE, Brush, add_noise, explain, list_checkpoints, model_input
from invlab.viz.plots import image_rows

_UPDATE_EVERY = 4  # mouse-move events between live updates while drawing


#: Width every row of views must fit in: a notebook's output area in JupyterLab is 968 px
#: wide in a 1400 px Chromium window with the file sidebar open; 960 leaves a margin.
OUTPUT_WIDTH = 960


def _bars(title: str, y_title: str, names: list[str], width: int) -> go.Figure:
    fig = go.Figure(go.Bar(x=list(names), y=[0.0] * len(names)))
    fig.update_layout(title=dict(text=title, font=dict(size=13)), height=260, width=width,
                      margin=dict(l=40, r=10, t=40, b=30), template="plotly_white",
                      xaxis=dict(title="class", type="category", tickangle=-30 if max(map(len, names)) > 3 else 0),
                      yaxis=dict(title=y_title))
    return fig


def _class_names(model: nn.Module, classes: int) -> list[str]:
    names = (getattr(model, "data_info", None) or {}).get("class_names")
    return list(names) if names and len(names) == classes else [str(c) for c in range(classes)]



def templates_figure(ex, class_names: list[str]) -> go.Figure:
    """The explorer's bottom figure: each class's template A[x]_c and its contribution
    f_c(x)·A[x]_c to the reconstruction, named by class under each thumbnail."""
    rows = ExplorerApp._template_rows(ex)
    fig = image_rows(rows, signed=True, scale="row", captions={k: list(class_names) for k in rows},
                     title="per-class templates and their contributions to the reconstruction (each row its own scale)")
    return fig.update_layout(width=OUTPUT_WIDTH)


def explorer_figures(ex, class_names: list[str], drawable: bool = True) -> dict[str, go.Figure]:
    """The explorer's four figures for the explanation ``ex``, as notebook 00 lays them out:
    ``probabilities``, ``shares`` (bars), ``images`` (input and reconstruction) and ``templates``.
    The site's in-browser explorer draws the same figures (their titles, axes and colour scales
    come from here) and fills in its own numbers."""
    side = OUTPUT_WIDTH - CANVAS_SIZE - 20 if drawable else OUTPUT_WIDTH - 480
    images = image_rows(ExplorerApp._image_rows(ex), title="input and its reconstruction").update_layout(width=430)
    return {"probabilities": _bars("prediction: class probabilities", "probability", class_names, side),
            "shares": _bars("share of each class in the reconstruction", "share", class_names, OUTPUT_WIDTH - 440),
            "images": images, "templates": templates_figure(ex, class_names)}


class ExplorerApp:
    """Canvas (single-channel images), test-image picker, noise slider and checkpoint
    selector, with live views.

    Args:
        model: the classifier to explore (eval mode; ``model.preprocess`` is applied when
            present, as :func:`~invlab.train.load_model` provides it, and
            ``model.data_info["class_names"]`` names the classes).
        test_images: (N, C, H, W) raw test images in [0, 1] for the picker.
        test_labels: (N,) their true classes, shown beside the prediction.
        checkpoints: paths offered in the selector (default: every checkpoint under runs/);
            ``model_path``, the checkpoint ``model`` came from, is offered once, as the model.
        load: ``load(path) -> model``, used when another checkpoint is selected.
        class_names: names of the classes (default: the model's data set's, else 0..C-1).
    """

    def __init__(self, model: nn.Module, test_images: torch.Tensor, checkpoints: list[Path] | None = None,
                 load=None, model_label: str = "model", test_labels: torch.Tensor | None = None,
                 class_names: list[str] | None = None, model_path: str | Path | None = None):
        import ipywidgets as W
        from ipycanvas import Canvas

        from invlab.viz.widgets import SLIDER_WIDTH

        if test_images.ndim != 4:
            raise ValueError(f"the explorer shows images (N, C, H, W); got test images of shape "
                             f"{tuple(test_images.shape)}")
        self.model, self.test_images, self.test_labels, self.load = model.eval(), test_images, test_labels, load
        self.drawable = test_images.shape[1] == 1  # a canvas for grey images only
        self.brush = Brush()
        self.source = "test image"  # or "drawing"
        self._last: tuple[float, float] | None = None  # last mouse point of the stroke being drawn
        self._moves = 0
        self.canvas = Canvas(width=CANVAS_SIZE, height=CANVAS_SIZE, layout=W.Layout(border="1px solid #888"))
        self._clear_canvas()
        self.canvas.on_mouse_down(self._down)
        self.canvas.on_mouse_move(self._move)
        self.canvas.on_mouse_up(self._up)
        self.clear_button = W.Button(description="Clear drawing", icon="eraser")
        self.clear_button.on_click(lambda _: self.clear())
        style = {"description_width": "90px"}
        wide = W.Layout(width=SLIDER_WIDTH)  # long tracks: one pixel of drag is about one image, not twenty
        self.index = W.IntSlider(value=0, min=0, max=len(test_images) - 1, description="test image", style=style,
                                 layout=wide)
        self.noise = W.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.05, description="noise σ", style=style,
                                   layout=wide)
        given = str(model_path) if model_path is not None else ""
        paths = checkpoints if checkpoints is not None else list_checkpoints()
        seen, options = {given}, [(model_label, given)]  # the model given, then every other checkpoint once
        for p in map(str, paths):
            if p not in seen and str(Path(p).resolve()) != (str(Path(given).resolve()) if given else None):
                seen.add(p)
                options.append((p, p))
        self.checkpoint = W.Dropdown(options=options, value=given, description="checkpoint", style=style,
                                     layout=wide)
        self.status = W.HTML()
        self.index.observe(lambda _: self._pick_test_image(), names="value")
        self.noise.observe(lambda _: self.update(), names="value")
        self.checkpoint.observe(lambda change: self._select(change["new"]), names="value")

        ex = self._explain()
        self.class_names = list(class_names) if class_names is not None else _class_names(model, len(ex.probs))
        figures = explorer_figures(ex, self.class_names, self.drawable)
        self.probs_fig, self.shares_fig, self.images_fig, self.templates_fig = (
            go.FigureWidget(figures[k]) for k in ("probabilities", "shares", "images", "templates"))
        self.update()
        controls = W.VBox([self.index, self.noise, self.checkpoint, self.status])
        top = (W.HBox([W.VBox([self.canvas, self.clear_button]), W.VBox([controls, self.probs_fig])])
               if self.drawable else W.HBox([controls, self.probs_fig]))
        self.widget = W.VBox([top, W.HBox([self.images_fig, self.shares_fig]), self.templates_fig])

    @staticmethod
    def _image_rows(ex) -> dict:
        return {"input": ex.x[None], "reconstruction (df/dx)ᵀ f(x)": ex.reconstruction[None]}

    @staticmethod
    def _template_rows(ex) -> dict:
        return {"templates A[x]_c": ex.templates, "contributions f_c(x)·A[x]_c": ex.contributions}

    # -- inputs ---------------------------------------------------------------------------
    def raw_input(self) -> torch.Tensor:
        """The current raw input (1, C, H, W) in [0, 1], before noise and preprocessing."""
        if self.source == "drawing":
            return self.brush.digit(tuple(self.test_images.shape[2:]))[None]
        return self.test_images[self.index.value][None]

    def current_input(self) -> torch.Tensor:
        """What the model sees now: raw input, plus noise, through the model's preprocessing."""
        return model_input(self.model, add_noise(self.raw_input(), self.noise.value, seed=self.index.value))

    def stroke(self, points) -> None:
        """Draw a stroke through canvas points [(x, y), ...] (what the mouse does), then update."""
        if not self.drawable:
            raise ValueError("the canvas draws single-channel images; this data set's images have colour")
        points = list(points)
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            self._line(x0, y0, x1, y1)
        self.brush.stroke(points)
        self.source = "drawing"
        self.update()

    def clear(self) -> None:
        self.brush.clear()
        self._clear_canvas()
        self.source = "test image"
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
            image_rows(self._image_rows(ex), fig=self.images_fig)
        with self.templates_fig.batch_update():
            image_rows(self._template_rows(ex), signed=True, scale="row", fig=self.templates_fig)
        names = self.class_names
        if self.source == "drawing":
            what = "your drawing"
        else:
            i = self.index.value
            truth = (f" (true class <b>{names[int(self.test_labels[i])]}</b>)" if self.test_labels is not None
                     else "")
            what = f"test image #{i}{truth}"
        self.status.value = (f"{what}: predicted <b>{names[ex.prediction]}</b> "
                             f"({100 * float(ex.probs.max()):.1f} %)" + (f", noise σ = {self.noise.value:.2f}"
                                                                          if self.noise.value else ""))

    def _pick_test_image(self) -> None:
        """Show a test image: the drawing is cleared, so the canvas shows what the views show."""
        self.brush.clear()
        self._clear_canvas()
        self.source = "test image"
        self.update()

    def _select(self, path: str) -> None:
        if not path or self.load is None:
            return
        try:
            model = self.load(path).eval()
            explain(model, model_input(model, self.raw_input()))  # does it take these images?
        except (ValueError, RuntimeError, OSError) as err:
            self.status.value = f"<span style='color:#c00'>cannot explore {path} on these images: {err}</span>"
            return
        self.model = model
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
        if not self.drawable:
            return
        self.source = "drawing"
        self.brush.start(x, y)
        self._line(x, y, x, y)
        self._last, self._moves = (x, y), 0

    def _move(self, x, y) -> None:
        if self._last is None or not self.drawable:
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
