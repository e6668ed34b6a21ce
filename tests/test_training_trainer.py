"""invlab.training.trainer: learning, determinism, checkpoint-resume, bad configurations, the tuned
step, the trained model's input transform."""

import json

import pytest
import torch
from conftest import synthetic_task

from invlab.data import preprocess
from invlab.models import TABLE2_MODELS, list_models
from invlab.train import CyclingSampler, TrainConfig, Trainer, train

FAST = dict(recipe="paper", model="smallcnn-mean", labelled_batch=10, unlabelled_batch=20, eval_every=3, val_size=100)

def params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_trainer_builds_the_configured_model(task):
    trainer = Trainer(TrainConfig(steps=1, bias=False, init="xavier", **FAST), task)
    assert not [n for n, _ in trainer.model.named_parameters() if n.endswith("bias")]
    assert {TABLE2_MODELS[2], "uresnet2-32"} <= set(list_models())


def test_tuned_step_gives_the_same_gradients_as_a_plain_backward(task):
    """Gradients for the parameters only, channels-last images: the same maths as
    loss.backward() on contiguous tensors (benchmarks/speed/step_cost.py's "before")."""
    cfg = TrainConfig(steps=2, **FAST)
    tuned, plain = Trainer(cfg, task), Trainer(cfg, task)
    plain.model.to(memory_format=torch.contiguous_format)
    plain.memory_format = torch.contiguous_format
    grads = []
    for trainer, tuned_path in ((tuned, True), (plain, False)):
        x, y, mask = trainer.batch()
        total = trainer.loss_fn(trainer.model, x, y, mask)["total"]
        if tuned_path:
            torch.autograd.backward(total, inputs=trainer.params)  # as Trainer.train_step does
        else:
            total.backward()
        grads.append([p.grad for p in trainer.model.parameters()])
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-7)


def test_a_trained_model_carries_its_input_transform(task):
    """``train()``'s model applies to raw inputs as ``load_model``'s does: ``model.preprocess``."""
    result = train(TrainConfig(steps=1, **{**FAST, "preprocess": "center-maxabs"}), data=task, progress=False)
    assert result.model.preprocess.kind == "center-maxabs" == result.config["preprocess"]
    x = task.x_test[:4]
    assert torch.equal(result.model.preprocess(x), preprocess(x, "center-maxabs"))


def test_training_learns_a_separable_task(task):
    result = train(
        TrainConfig(steps=30, eval_every=10, lr=3e-3, **{k: v for k, v in FAST.items() if k != "eval_every"}),
        data=task,
        progress=False,
    )
    assert [r["step"] for r in result.history] == [10, 20, 30]
    assert {"total", "ce", "reconstruction", "entropy", "val_accuracy", "test_accuracy"} <= set(result.history[-1])
    assert result.best_val_accuracy > 40  # chance is 10 %
    assert result.history[-1]["ce"] < result.history[0]["ce"]


def test_same_seed_same_run(task):
    cfg = TrainConfig(steps=4, **FAST)
    a = train(cfg, data=task, progress=False)
    b = train(cfg, data=task, progress=False)
    assert a.history == b.history
    assert torch.equal(params(a.model), params(b.model))


def test_resume_equals_uninterrupted(task, tmp_path):
    full = Trainer(TrainConfig(steps=6, **FAST), task)
    full.run(progress=False)
    train(TrainConfig(steps=3, **FAST), data=task, out_dir=tmp_path, progress=False)
    resumed = Trainer(TrainConfig(steps=6, **FAST), task)
    resumed.load_checkpoint(tmp_path / "checkpoint.pt")
    assert resumed.step == 3
    resumed.run(progress=False)
    assert torch.equal(params(full.model), params(resumed.model))
    assert full.history == resumed.history
    # The public entry point resumes the same way and rewrites the metrics.
    result = train(TrainConfig(steps=6, **FAST), data=task, out_dir=tmp_path, resume=True, progress=False)
    assert result.history == full.history
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["steps_done"] == 6 and metrics["config"]["alpha"] == 0.7


def test_resume_from_incompatible_checkpoint(task, tmp_path):
    train(TrainConfig(steps=3, **FAST), data=task, out_dir=tmp_path, progress=False)
    before = (tmp_path / "checkpoint.pt").read_bytes()
    with pytest.raises(ValueError, match="alpha: checkpoint 0.7 vs now 0.5"):
        train(TrainConfig(steps=6, alpha=0.5, **FAST), data=task, out_dir=tmp_path, resume=True, progress=False)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before  # untouched


def test_resume_errors(task, tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(TrainConfig(steps=3, **FAST), data=task, out_dir=tmp_path, resume=True, progress=False)
    (tmp_path / "checkpoint.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="corrupt"):
        train(TrainConfig(steps=3, **FAST), data=task, out_dir=tmp_path, resume=True, progress=False)


def test_unwritable_output_folder(task, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(PermissionError, match="cannot write to output folder"):
        train(TrainConfig(steps=1, **FAST), data=task, out_dir=blocker / "run", progress=False)


def test_callbacks_and_early_stop(task):
    seen = []

    class Stopper:
        def on_step(self, trainer, step, losses):
            seen.append(("step", step, sorted(losses)))
            if step == 2:
                trainer.stop = True

        def on_end(self, trainer, result):
            seen.append(("end", result.steps_done))

    result = train(TrainConfig(steps=10, **FAST), data=task, callbacks=[Stopper()], progress=False)
    assert result.steps_done == 2
    assert seen[0] == ("step", 1, ["ce", "entropy", "imbalance", "reconstruction", "total"])
    assert seen[-1] == ("end", 2)


def test_batches_mix_labelled_and_unlabelled(task):
    trainer = Trainer(TrainConfig(steps=1, **FAST), task)
    x, y, mask = trainer.batch()
    assert x.shape == (30, 1, 28, 28) and mask.sum() == 10
    assert (y[mask] >= 0).all() and (y[~mask] == -1).all()


def test_cycling_sampler_visits_everything_each_pass():
    s = CyclingSampler(5, seed=0)
    first, second = s.next(5), s.next(5)
    assert sorted(first.tolist()) == sorted(second.tolist()) == list(range(5))
    assert len(s.next(12)) == 12


@pytest.mark.parametrize("kw,match", [
    (dict(alpha=2.0), "alpha"), (dict(beta=-0.5), "beta"), (dict(steps=0), "steps"),
    (dict(labels_per_class=0), "labels_per_class"), (dict(schedule="linear"), "schedule"),
    (dict(device="tpu"), "device"),
])
def test_bad_config(kw, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kw)


def test_epochs_set_the_number_of_steps():
    cfg = TrainConfig(epochs=2, unlabelled_batch=100)
    assert cfg.total_steps(50_000) == 1000


def test_schedule_cosine_decays_to_zero(task):
    result = train(TrainConfig(steps=6, schedule="cosine", **FAST), data=task, progress=False)
    assert result.history[-1]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_wrong_input_shape_for_model(task):
    from invlab.models import create_model

    task.x_train = task.x_train[:, :, :, :20]  # 28x20 images for a model built for 28x28
    with pytest.raises(ValueError, match=r"inputs of shape \(1, 28, 20\) do not fit"):
        Trainer(TrainConfig(steps=1, **FAST), task, model=create_model("smallcnn-mean"))


def test_the_model_is_sized_from_the_data(task):
    task.x_train, task.x_val, task.x_test = (x[:, :, :, :20] for x in (task.x_train, task.x_val, task.x_test))
    trainer = Trainer(TrainConfig(steps=1, **FAST), task)
    assert trainer.model.input_shape == (1, 28, 20)


def test_synthetic_task_is_deterministic():
    assert torch.equal(synthetic_task().x_train, synthetic_task().x_train)
