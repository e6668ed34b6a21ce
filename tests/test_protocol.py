"""The training-protocol options: preprocessing, biases, initialisation, schedules,
class-balanced batches, and resumable study runs."""

import json
import math

import pytest
import torch

from invlab import create_model, templates
from invlab.data import Preprocess, preprocess, preprocess_data
from invlab.experiments.studies import best_test_epoch, run_resumable
from invlab.io import load_torch
from invlab.models import TABLE2_MODELS, list_models
from invlab.train import BalancedSampler, TrainConfig, Trainer, load_model, lr_factor, run_key, train

FAST = dict(model="smallcnn-mean", labelled_batch=10, unlabelled_batch=20, eval_every=3, val_size=100)


# -- preprocessing ---------------------------------------------------------------------
def test_center_maxabs_per_example():
    x = torch.rand(4, 1, 6, 6) * torch.tensor([1.0, 2.0, 0.5, 3.0]).view(4, 1, 1, 1)
    out = preprocess(x, "center-maxabs")
    flat = out.flatten(1)
    assert torch.allclose(flat.mean(1), torch.zeros(4), atol=1e-6)
    assert torch.allclose(flat.abs().amax(1), torch.ones(4))
    # each example on its own: scaling one example leaves it unchanged, the others too
    y = x.clone()
    y[0] *= 7
    assert torch.allclose(preprocess(y, "center-maxabs"), out, atol=1e-6)


def test_standardize_and_none():
    x = torch.rand(3, 2, 5)
    out = preprocess(x, "standardize").flatten(1)
    assert torch.allclose(out.mean(1), torch.zeros(3), atol=1e-6)
    assert torch.allclose(out.pow(2).mean(1), torch.ones(3), atol=1e-5)
    assert preprocess(x, "none") is x
    assert torch.equal(preprocess(torch.ones(2, 1, 3, 3), "center-maxabs"), torch.zeros(2, 1, 3, 3))  # constant


def test_bad_preprocess_name():
    with pytest.raises(ValueError, match="unknown preprocessing 'zca'"):
        preprocess(torch.rand(2, 3), "zca")
    with pytest.raises(ValueError, match="preprocessing"):
        TrainConfig(preprocess="zca")


def test_every_split_gets_the_same_transform(task):
    data = preprocess_data(task, "center-maxabs")
    for raw, new in ((task.x_train, data.x_train), (task.x_val, data.x_val), (task.x_test, data.x_test)):
        assert torch.allclose(new, preprocess(raw, "center-maxabs"))
    assert torch.equal(data.labelled, task.labelled)


def test_preprocessing_recorded_and_returned_by_load_model(task, tmp_path):
    result = train(TrainConfig(steps=3, preprocess="center-maxabs", **FAST), data=task, out_dir=tmp_path,
                   progress=False)
    assert result.config["preprocess"] == "center-maxabs"
    assert json.loads((tmp_path / "metrics.json").read_text())["config"]["preprocess"] == "center-maxabs"
    assert torch.allclose(result.data_ref.x_test, preprocess(task.x_test, "center-maxabs"))
    model = load_model(tmp_path / "checkpoint.pt")
    assert isinstance(model.preprocess, Preprocess) and model.preprocess.kind == "center-maxabs"
    with torch.no_grad():  # the reloaded model on raw inputs, preprocessed, predicts as the selected model did
        assert torch.equal(model(model.preprocess(task.x_test)).argmax(1),
                           result.model.eval()(result.data_ref.x_test).argmax(1))


def test_segments_carry_the_transform():
    from invlab.data import Segments

    seg = Segments(torch.arange(40, dtype=torch.float32), torch.tensor([0, 10, 20]), 8)
    out = seg.with_transform(Preprocess("center-maxabs"))[torch.tensor([0, 2])]
    assert out.shape == (2, 1, 8)
    assert torch.allclose(out, preprocess(seg[torch.tensor([0, 2])], "center-maxabs"))
    assert seg.with_transform(Preprocess("standardize"))[1:].transform.kind == "standardize"  # slices keep it


# -- models: bias and initialisation ---------------------------------------------------
@pytest.mark.parametrize("name", [m for m in list_models() if m != "bird10-cnn"] + ["bird10-cnn"])
def test_no_bias_for_every_model(name):
    kw = {"segment_length": 4608} if name == "bird10-cnn" else {}
    model = create_model(name, bias=False, **kw)
    assert not [n for n, _ in model.named_parameters() if n.endswith("bias")]
    if name.startswith("u") or "ucnn" in name:
        with pytest.raises(ValueError, match="no biases by definition"):
            create_model(name, bias=True)
    elif name != "bird10-cnn":
        assert [n for n, _ in create_model(name).named_parameters() if n.endswith("bias")]


def test_bias_free_net_is_linear_on_its_region():
    """Without biases f(x) = A[x]x exactly: b[x] = 0 (paper eq. 1 with no offset)."""
    model = create_model("smallcnn-mean", bias=False).double()
    x = torch.rand(3, 1, 28, 28, dtype=torch.float64)
    _, b = templates(model, x)
    assert b.abs().max() < 1e-10
    _, b_default = templates(create_model("smallcnn-mean").double(), x)
    assert b_default.abs().max() > 1e-3  # with PyTorch's initialisation the biases give b[x] != 0
    _, b_bias = templates(create_model("smallcnn-mean", init="xavier").double(), x)
    assert b_bias.abs().max() < 1e-10  # Xavier zeroes the biases at initialisation


def test_xavier_init():
    torch.manual_seed(0)
    model = create_model("smallcnn-mean", init="xavier")
    for module in model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            fan_in = module.weight[0].numel()
            fan_out = module.weight.shape[0] * module.weight[0, 0].numel()
            bound = math.sqrt(6 / (fan_in + fan_out))
            assert module.weight.abs().max() <= bound
            assert module.weight.abs().max() > 0.9 * bound  # uniform over the whole range
            assert torch.equal(module.bias, torch.zeros_like(module.bias))
    with pytest.raises(ValueError, match="unknown init"):
        create_model("smallcnn-mean", init="he")


def test_trainer_builds_the_configured_model(task):
    trainer = Trainer(TrainConfig(steps=1, bias=False, init="xavier", **FAST), task)
    assert not [n for n, _ in trainer.model.named_parameters() if n.endswith("bias")]
    assert {TABLE2_MODELS[2], "uresnet2-32"} <= set(list_models())


def test_train_seed_restarts_the_same_label_draw():
    """``train_seed`` changes the initialisation and the batch order, never the labelled images."""
    base = dict(dataset="synthetic", steps=1, **FAST)
    plain, same, other = (Trainer(TrainConfig(seed=3, train_seed=t, **base)) for t in (None, 3, 1003))
    assert same.config.train_seed is None and run_key(same.config) == run_key(plain.config)
    assert run_key(other.config) != run_key(plain.config)
    assert torch.equal(plain.data.labelled, other.data.labelled)  # the same labelled images
    params = [torch.cat([p.flatten() for p in t.model.parameters()]) for t in (plain, same, other)]
    assert torch.equal(params[0], params[1]) and not torch.equal(params[0], params[2])
    assert torch.equal(plain.unlabelled_sampler.next(20), same.unlabelled_sampler.next(20))
    assert not torch.equal(plain.unlabelled_sampler.next(20), other.unlabelled_sampler.next(20))
    drawn = Trainer(TrainConfig(seed=4, train_seed=1003, **base))  # another draw, the same training seed
    assert not torch.equal(drawn.data.labelled, other.data.labelled)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="train_seed"):
            TrainConfig(train_seed=bad)


# -- schedules ---------------------------------------------------------------------------
def test_schedules():
    def factors(**kw):
        cfg = TrainConfig(**kw)
        return [lr_factor(cfg, t, 100, 25) for t in (0, 49, 50, 74, 75, 100)]

    assert factors(schedule="constant") == [1.0] * 6
    cos = factors(schedule="cosine")
    assert cos[0] == 1.0 and cos[-1] == pytest.approx(0.0) and cos[2] == pytest.approx(0.5)
    assert factors(schedule="step") == pytest.approx([1, 1, 0.2, 0.2, 0.04, 0.04])
    assert factors(schedule="step", milestones=(0.25,), lr_decay=0.5) == pytest.approx([1, 0.5, 0.5, 0.5, 0.5, 0.5])
    inv = factors(schedule="invsqrt")
    assert inv[0] == 1.0 and inv[-1] == pytest.approx(1 / math.sqrt(5))  # 100 steps = 4 epochs of 25


def test_schedule_drives_the_optimizer(task):
    trainer = Trainer(TrainConfig(steps=4, schedule="step", milestones=(0.5,), lr_decay=0.1, lr=0.01, **FAST), task)
    lrs = []
    for _ in range(4):
        lrs.append(trainer.optimizer.param_groups[0]["lr"])
        trainer.train_step()
    assert lrs == pytest.approx([0.01, 0.01, 0.001, 0.001])


@pytest.mark.parametrize("kw,match", [
    (dict(milestones=(0.8, 0.4)), "milestones"), (dict(milestones=(1.5,)), "milestones"),
    (dict(lr_decay=0.0), "lr_decay"), (dict(lr=0.0), "lr must be positive"), (dict(init="he"), "init"),
])
def test_bad_protocol_config(kw, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kw)


# -- batches -------------------------------------------------------------------------------
def test_balanced_sampler():
    targets = torch.tensor([0] * 7 + [1] * 3 + [2] * 5)
    sampler = BalancedSampler(targets, seed=0)
    for _ in range(5):
        batch = sampler.next(6)
        assert torch.bincount(targets[batch], minlength=3).tolist() == [2, 2, 2]
    counts = torch.zeros(3, dtype=torch.long)
    for _ in range(30):  # 4 per batch: one class gets 2, in rotation
        counts += torch.bincount(targets[sampler.next(4)], minlength=3)
    assert counts.tolist() == [40, 40, 40]
    state = sampler.state_dict()
    a = sampler.next(5)
    sampler.load_state_dict(state)
    assert torch.equal(sampler.next(5), a)


def test_balanced_labelled_batches_in_training(task):
    trainer = Trainer(TrainConfig(steps=1, balanced=True, **{**FAST, "labelled_batch": 20}), task)
    for _ in range(3):
        x, y, mask = trainer.batch()
        assert torch.bincount(y[mask], minlength=10).tolist() == [2] * 10
        assert int(mask.sum()) == 20 and int((~mask).sum()) == 20


# -- resumable studies -----------------------------------------------------------------------
def test_resumable_run_equals_uninterrupted(task, tmp_path):
    cfg = TrainConfig(steps=6, preprocess="center-maxabs", balanced=True, schedule="step", **FAST)
    full = run_resumable(cfg, tmp_path / "full", data=task)
    # interrupted after 3 steps: the first session stopped with a checkpoint and no result
    class Interrupt:  # the session ends during step 5, after the checkpoint of step 3
        def on_step(self, trainer, step, losses):
            if step == 5:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, task).run([Interrupt()], progress=False, checkpoint_path=tmp_path / "cut" / "checkpoint.pt")
    assert not (tmp_path / "cut" / "result.json").exists()
    resumed = run_resumable(cfg, tmp_path / "cut", data=task)
    assert resumed["resumed_from"] == 3 and full["resumed_from"] == 0
    clocks = ("elapsed_s", "cpu_s")
    strip = [{k: v for k, v in r.items() if k not in clocks} for r in full["history"]]
    assert [{k: v for k, v in r.items() if k not in clocks} for r in resumed["history"]] == strip
    # wall and CPU seconds, counted over the sessions: what a compute plan divides by
    assert 0 < full["cpu_s"] and 0 < full["elapsed_s"]
    assert all(0 < r["cpu_s"] for r in full["history"]) and full["history"][-1]["cpu_s"] <= full["cpu_s"] + 1e-9
    assert resumed["test_accuracy"] == full["test_accuracy"] and resumed["best_step"] == full["best_step"]
    # finished: read back, not retrained
    again = run_resumable(cfg, tmp_path / "cut", data=task)
    assert again == json.loads((tmp_path / "cut" / "result.json").read_text())
    best, step = best_test_epoch(full)
    assert best == max(r["test_accuracy"] for r in full["history"]) and step in (3, 6)


def test_tuned_step_gives_the_same_gradients_as_a_plain_backward(task):
    """Gradients for the parameters only, channels-last images: the same maths as
    loss.backward() on contiguous tensors (benchmarks/step_cost.py's "before")."""
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


def test_runs_made_with_mnist_val_size_written_out_keep_their_key():
    """val_size defaults to the data set's own (None); 10 000 written out on MNIST is the same run."""
    from invlab.train import TrainConfig, run_key

    assert run_key(TrainConfig(val_size=10_000)) == run_key(TrainConfig())
    assert run_key(TrainConfig(val_size=5_000)) != run_key(TrainConfig())
    assert run_key(TrainConfig(dataset="fashion-mnist", val_size=10_000)) != run_key(
        TrainConfig(dataset="fashion-mnist")
    )


def test_a_run_resumed_from_a_checkpoint_without_cpu_time_says_it_is_unknown(task, tmp_path):
    """A checkpoint written before runs counted CPU time: the run's ``cpu_s`` is ``None``
    (unknown), never the part of it this session saw."""
    cfg = TrainConfig(steps=6, **FAST)

    class Stop:  # during step 5, after the checkpoint of step 3
        def on_step(self, trainer, step, losses):
            if step == 5:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, task).run([Stop()], progress=False, checkpoint_path=tmp_path / "old" / "checkpoint.pt")
    state = load_torch(tmp_path / "old" / "checkpoint.pt")  # as the trainer reads it (weights only)
    assert state["step"] == 3 and "cpu_s" in state
    del state["cpu_s"]
    torch.save(state, tmp_path / "old" / "checkpoint.pt")
    resumed = run_resumable(cfg, tmp_path / "old", data=task)
    assert resumed["resumed_from"] == 3 and resumed["cpu_s"] is None and resumed["elapsed_s"] > 0


def test_a_checkpoint_made_before_the_recipes_resumes_as_the_paper_recipe(task, tmp_path):
    """A checkpoint whose configuration names no recipe and lacks a field added since (here
    ``balance``) reads the missing field as the paper recipe's, the default it had then: it
    resumes under ``recipe="paper"``, and the recommended recipe is refused, naming what differs."""
    cfg = TrainConfig(recipe="paper", steps=6, **FAST)

    class Stop:
        def on_step(self, trainer, step, losses):
            if step == 5:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, task).run([Stop()], progress=False, checkpoint_path=tmp_path / "old" / "checkpoint.pt")
    state = load_torch(tmp_path / "old" / "checkpoint.pt")
    del state["config"]["recipe"], state["config"]["balance"]
    torch.save(state, tmp_path / "old" / "checkpoint.pt")
    refused = r"balance: checkpoint 0.0 vs now 1.0, schedule: checkpoint 'constant' vs now 'cosine'"
    with pytest.raises(ValueError, match=refused):
        Trainer(TrainConfig(steps=6, **FAST), task).load_state_dict(state)
    resumed = run_resumable(cfg, tmp_path / "old", data=task)
    assert resumed["resumed_from"] == 3 and resumed["steps_done"] == 6


def test_a_trained_model_carries_its_input_transform(task):
    """``train()``'s model applies to raw inputs as ``load_model``'s does: ``model.preprocess``."""
    result = train(TrainConfig(steps=1, **FAST), data=task, progress=False)
    assert result.model.preprocess.kind == "center-maxabs" == result.config["preprocess"]
    x = task.x_test[:4]
    assert torch.equal(result.model.preprocess(x), preprocess(x, "center-maxabs"))
