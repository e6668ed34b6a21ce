"""invlab.viz.widgets: the (alpha, beta) training app, headless."""


import pytest
from conftest import synthetic_task


def test_training_app_trains_stops_and_continues():
    from invlab.viz.widgets import TrainingApp

    task = synthetic_task()
    app = TrainingApp(lambda lpc, seed: task, steps=4, eval_every=2, labelled_batch=10, unlabelled_batch=10,
                      background=False)
    app.widget()
    app.alpha.value = 0.5
    app.train_button.click()
    assert app.trainer.step == 4 and app.trainer.config.alpha == 0.5
    val = next(t for t in app.curves.data if t.name == "val_accuracy")
    assert list(val.x) == [2, 4]
    assert app.recs.data[1].z is not None and "done at step 4" in app.status.value
    app.steps.value = 6
    app.train_button.click()  # same settings, more steps: continues
    assert app.trainer.step == 6 and len(app.trainer.history) == 3
    app.beta.value = 0.9
    app.train_button.click()  # new settings: a new run
    assert app.trainer.step == 6 and app.trainer.history[0]["step"] == 2 and app.trainer.config.beta == 0.9


def test_training_app_shows_errors():
    from invlab.viz.widgets import TrainingApp

    def broken(lpc, seed):
        raise ValueError("no data here")

    app = TrainingApp(broken, background=False)
    app.train_button.click()
    assert "error" in app.status.value and "no data here" in app.status.value
    with pytest.raises(ValueError, match="no data here"):
        app.wait()


def test_slider_labels_fit():
    """Every slider description fits its label width (about 8 px per character at the default font)."""
    from invlab.viz.widgets import SLIDER_LABEL_WIDTH, TrainingApp

    app = TrainingApp(lambda per_class, seed: synthetic_task(), steps=1, background=False)
    width = int(SLIDER_LABEL_WIDTH.removesuffix("px"))
    for w in (app.alpha, app.beta, app.labels, app.model, app.steps):
        assert w.style.description_width == SLIDER_LABEL_WIDTH
        assert 8 * len(w.description) <= width, w.description


def test_the_training_sliders_are_as_wide_as_the_explorers():
    """Notebook 6's sliders were ipywidgets' default, about 50 px of track: one pixel jumped
    several values. Now the explorer's width."""
    from invlab.viz.widgets import SLIDER_WIDTH, TrainingApp

    app = TrainingApp(lambda per_class, seed: synthetic_task(), steps=1, background=False)
    assert SLIDER_WIDTH == "440px"
    for w in (app.alpha, app.beta, app.labels):
        assert w.layout.width == SLIDER_WIDTH
