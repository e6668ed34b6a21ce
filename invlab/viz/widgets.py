"""Interactive training: (alpha, beta) sliders, model and label selectors, Train / Stop
buttons and live plotly figures, all driven through :mod:`invlab.train` callbacks.

The widget layer is thin: every number it shows comes from :class:`~invlab.train.Trainer`
and every figure from :mod:`invlab.viz.plots`.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Callable

import ipywidgets as W
import plotly.graph_objects as go
import torch

from invlab.data import SemiSupervisedData
from invlab.inverse import reconstruct
from invlab.training.config import TrainConfig, describe_data
from invlab.training.trainer import Trainer
from invlab.viz.plots import image_rows, learning_curves, waveform_rows


class LiveFigures:
    """Training callback that redraws the curves and the reconstructions at each evaluation."""

    def __init__(self, curves: go.FigureWidget, recs: go.FigureWidget, preview: torch.Tensor,
                 status: W.HTML, should_stop: Callable[[], bool]):
        self.curves, self.recs, self.preview, self.status = curves, recs, preview, status
        self.should_stop = should_stop

    def on_step(self, trainer: Trainer, step: int, losses: dict) -> None:
        if self.should_stop():
            trainer.stop = True

    def on_eval(self, trainer: Trainer, record: dict) -> None:
        rec = _reconstructions(trainer.model, self.preview)
        with self.curves.batch_update():
            learning_curves(trainer.history, fig=self.curves)
        with self.recs.batch_update():
            preview_figure(self.preview, rec, fig=self.recs)
        self.status.value = (f"step {record['step']}/{trainer.total_steps} · loss {record['total']:.3f} · "
                             f"validation accuracy {record['val_accuracy']:.1f} %")


def preview_figure(x: torch.Tensor, rec: torch.Tensor, fig: go.Figure | None = None) -> go.Figure:
    """Inputs and reconstructions: image rows for (B, 1, H, W), waveforms for (B, 1, T)."""
    if x.ndim == 3:
        return waveform_rows(x, rec, title="validation segments and their reconstructions", fig=fig)
    return image_rows({"input": x, "reconstruction (df/dx)ᵀf(x)": rec},
                      title="validation digits and their reconstructions", fig=fig)


def _reconstructions(model, x):
    was_training = model.training
    model.eval()
    rec = reconstruct(model, x.to(next(model.parameters()).device), create_graph=False).cpu()
    model.train(was_training)
    return rec


SLIDER_LABEL_WIDTH = "150px"
#: every slider's whole width, the explorer's too: a long track, so that one pixel of drag is
#: one step of the value, not several (ipywidgets' default track is about 50 px)
SLIDER_WIDTH = "440px"


class TrainingApp:
    """Sliders and buttons that train a network live.

    Args:
        make_data: ``make_data(labels_per_class, seed) -> SemiSupervisedData``.
        models: names offered in the model selector.
        steps: default number of steps per run; eval_every: steps between figure updates.
        background: train in a thread, so that Stop works while the kernel stays free.
        config: other :class:`TrainConfig` settings (batch sizes, learning rate...). The
            sliders move eq. 10's weights, so the runs start from the paper recipe
            (``recipe="paper"``: constant rate, raw pixels, no balance term) unless
            ``recipe`` is given.

    Press Train (or call ``app.train_button.click()``) to start; pressing it again after
    Stop, with the same settings, continues the same run; changed settings start anew.
    """

    def __init__(self, make_data: Callable[[int, int], SemiSupervisedData],
                 models=("smallcnn-mean", "smallcnn-max", "smallucnn"), steps: int = 200,
                 eval_every: int = 20, seed: int = 0, n_preview: int = 8, background: bool = True,
                 **config):
        self.make_data, self.seed, self.background = make_data, seed, background
        self.base_config = TrainConfig(model=models[0], steps=steps, eval_every=eval_every, seed=seed,
                                       **{"recipe": "paper", **config})
        style = {"description_width": SLIDER_LABEL_WIDTH}  # wide enough for "β (reconstruction)"
        wide = {"layout": W.Layout(width=SLIDER_WIDTH)}
        self.alpha = W.FloatSlider(value=self.base_config.alpha, min=0, max=1, step=0.05, description="α (supervised)",
                                   style=style, **wide)
        self.beta = W.FloatSlider(
            value=self.base_config.beta, min=0, max=1, step=0.05, description="β (reconstruction)", style=style, **wide
        )
        all_labels = self.base_config.labels_per_class is None  # e.g. Bird10: every segment labelled
        self.labels = W.IntSlider(value=5 if all_labels else self.base_config.labels_per_class, min=1, max=50,
                                  description="labels / class", style=style, disabled=all_labels, **wide)
        self.model = W.Dropdown(options=list(models), value=models[0], description="model", style=style)
        self.steps = W.IntText(value=steps, description="steps", style=style)
        self.train_button = W.Button(description="Train", button_style="success", icon="play")
        self.stop_button = W.Button(description="Stop", button_style="danger", icon="stop")
        self.status = W.HTML("press Train")
        self.curves = go.FigureWidget(learning_curves([], title="live training"))
        self.n_preview = n_preview
        self.recs: go.FigureWidget | None = None
        self.trainer: Trainer | None = None
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._data_key = None
        self.train_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self._stop.set())

    # -- state ---------------------------------------------------------------------------
    def config(self) -> TrainConfig:
        """The run the widgets currently describe."""
        labels = None if self.labels.disabled else self.labels.value
        return replace(self.base_config, model=self.model.value, alpha=self.alpha.value,
                       beta=self.beta.value, labels_per_class=labels, steps=self.steps.value)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _prepare(self, config: TrainConfig) -> Trainer:
        key = (config.labels_per_class, config.seed)
        if self._data_key != key:
            self.data, self._data_key = self.make_data(*key), key
        config = describe_data(config, self.data)  # as the Trainer records it: the data it was given
        same = self.trainer is not None and replace(self.trainer.config, steps=config.steps) == config
        if same:  # continue the stopped run, possibly for more steps
            self.trainer.config = config
            self.trainer.total_steps = config.total_steps(len(self.data.x_train))
            self.trainer.stop = False
        else:
            self.trainer = Trainer(config, self.data)
            learning_curves([], fig=self.curves)
        n = len(self.data.x_val)
        picks = torch.linspace(0, n - 1, min(self.n_preview, n)).long()  # spread over the split
        preview = self.data.x_val[picks].to("cpu")
        if self.recs is None:
            self.recs = go.FigureWidget(preview_figure(preview, preview))
        self.callback = LiveFigures(self.curves, self.recs, preview, self.status, self._stop.is_set)
        return self.trainer

    # -- actions -------------------------------------------------------------------------
    def start(self) -> None:
        """What the Train button does."""
        if self.running:
            self.status.value = "already training: press Stop first"
            return
        self.error = None
        self._stop.clear()
        try:
            trainer = self._prepare(self.config())
        except Exception as err:  # noqa: BLE001 (shown in the widget, kept for wait())
            self._fail(err)
            return
        self.status.value = f"training {trainer.config.model} (α={trainer.config.alpha}, β={trainer.config.beta}) ..."
        if self.background:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        else:
            self._run()

    def _run(self) -> None:
        try:
            result = self.trainer.run([self.callback], progress=False)
            verb = "stopped" if self.trainer.stop and result.steps_done < self.trainer.total_steps else "done"
            self.status.value = (f"{verb} at step {result.steps_done} · best validation accuracy "
                                 f"{result.best_val_accuracy:.1f} % (step {result.best_step})")
        except Exception as err:  # noqa: BLE001 (a training thread's error is shown in the widget)
            self._fail(err)

    def _fail(self, err: BaseException) -> None:
        self.error = err
        self.status.value = f"<span style='color:#c00'>error: {type(err).__name__}: {err}</span>"

    def stop(self) -> None:
        """What the Stop button does."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the current run ends; re-raise its error, if any."""
        if self._thread is not None:
            self._thread.join(timeout)
        if self.error is not None:
            raise self.error

    def widget(self) -> W.Widget:
        """The whole app, ready to display."""
        if self.recs is None:
            self._prepare(self.config())
        controls = W.VBox([self.model, self.labels, self.alpha, self.beta, self.steps,
                           W.HBox([self.train_button, self.stop_button]), self.status])
        return W.VBox([controls, self.curves, self.recs])
