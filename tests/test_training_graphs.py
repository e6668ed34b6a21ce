"""CUDA-graph training steps (invlab.training.graphs): the synchronisation-free loss they need, their
configuration checks and portable checkpoints on the CPU; the graph itself where a GPU is."""

import copy

import pytest
import torch
from conftest import TinyCNN

from invlab.losses import LayerwiseLoss, SemiSupervisedLoss
from invlab.train import TrainConfig, Trainer, run_key
from invlab.training.graphs import GraphedStep

FAST = dict(model="smallcnn-mean", labelled_batch=10, unlabelled_batch=20, eval_every=3, val_size=100, device="cpu")
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")


def params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.mark.parametrize("loss", [SemiSupervisedLoss(0.7, 0.2, balance=1.0), SemiSupervisedLoss(0.5, 0.0),
                                  LayerwiseLoss.from_eq10(0.7, 0.2, {"net.2": 0.1}, balance=1.0)])
@pytest.mark.parametrize("n_labelled", [0, 3, 8])
def test_first_n_labelled_is_the_mask_loss_exactly(loss, n_labelled):
    model = TinyCNN()
    x = torch.randn(8, 1, 8, 8)
    y = torch.randint(0, 3, (8,))
    mask = torch.arange(8) < n_labelled
    grads = []
    outs = []
    for labelled in (mask, n_labelled):
        model.zero_grad()
        out = loss(model, x, y, labelled)
        out["total"].backward()
        outs.append(out)
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    for k in ("total", "ce", "entropy", "imbalance", "n_labelled", "n_unlabelled"):
        assert torch.equal(outs[0][k], outs[1][k]), k
    assert torch.equal(grads[0], grads[1])


def test_first_n_labelled_is_checked():
    model, x, y = TinyCNN(), torch.randn(4, 1, 8, 8), torch.tensor([0, -1, 2, 1])
    with pytest.raises(ValueError, match="do not fit a batch of 4"):
        SemiSupervisedLoss()(model, x, y, 5)
    with pytest.raises(ValueError, match="negative class indices"):
        SemiSupervisedLoss()(model, x, y, 2)


def test_cuda_graph_config_checks(task):
    with pytest.raises(ValueError, match="constant alpha and beta"):
        TrainConfig(cuda_graph=True, alpha="0.3:0.7")
    with pytest.raises(ValueError, match="learn_weights"):
        TrainConfig(cuda_graph=True, learn_weights=True)
    with pytest.raises(ValueError, match="layers"):
        TrainConfig(cuda_graph=True, layers={"features.2": 0.1})
    with pytest.raises(ValueError, match="needs a CUDA device"):
        Trainer(TrainConfig(cuda_graph=True, **FAST), task)
    # an execution detail: the same run folder and resumable either way
    assert run_key(TrainConfig(cuda_graph=True)) == run_key(TrainConfig())
    assert "cuda_graph" in TrainConfig.RESUMABLE_CHANGES


def test_portable_optimizer_state_is_an_eager_one(task):
    """What GraphedStep.portable writes loads into an eager CPU trainer, which goes on as
    from its own checkpoint (the capturable form: lr tensor, step counters as tensors)."""
    trainer = Trainer(TrainConfig(steps=6, **FAST), task)
    for _ in range(2):
        trainer.train_step()
    opt, sched = trainer.optimizer.state_dict(), trainer.scheduler.state_dict()
    live = dict(opt, param_groups=[{**g, "lr": torch.tensor(g["lr"]), "capturable": True} for g in opt["param_groups"]])
    sched_t = {**sched, "_last_lr": [torch.tensor(v) for v in sched["_last_lr"]]}
    p_opt, p_sched = GraphedStep.portable(live, sched_t)
    assert all(type(g["lr"]) is float and g["capturable"] is False for g in p_opt["param_groups"])
    assert all(type(v) is float for v in p_sched["_last_lr"])
    assert all(s["step"].device.type == "cpu" for s in p_opt["state"].values())
    assert isinstance(live["param_groups"][0]["lr"], torch.Tensor)  # the live state is untouched
    state = trainer.state_dict()
    state["optimizer"], state["scheduler"] = p_opt, p_sched
    a, b = Trainer(TrainConfig(steps=6, **FAST), task), Trainer(TrainConfig(steps=6, **FAST), task)
    a.load_state_dict(copy.deepcopy(trainer.state_dict()))  # loading keeps tensors: no sharing
    b.load_state_dict(copy.deepcopy(state))
    for _ in range(2):
        assert a.train_step() == b.train_step()
    assert torch.equal(params(a.model), params(b.model))


@cuda
@pytest.mark.filterwarnings("ignore:Attempting to run cuBLAS")  # autograd's device thread, first use
def test_cuda_graph_step_matches_eager_and_resumes(task, tmp_path):
    """From one state, a replayed step and an eager step compute the same gradients; a
    graph run's checkpoint resumes eagerly on the CPU and as a graph again."""
    cfg = dict(FAST, device="cuda", steps=20, schedule="cosine", balance=1.0)
    graph, eager = Trainer(TrainConfig(**cfg, cuda_graph=True), task), Trainer(TrainConfig(**cfg), task)
    for _ in range(5):  # 3 eager warm-up steps, the capture, a replay
        graph.train_step()
    for _ in range(3):
        eager.load_state_dict(copy.deepcopy(graph.state_dict()))
        lg, le = graph.train_step(), eager.train_step()
        assert lg["total"] == pytest.approx(le["total"], rel=1e-4)
        g = torch.cat([p.grad.flatten() for p in graph.params])
        e = torch.cat([p.grad.flatten() for p in eager.params])
        assert (g - e).abs().max() <= 1e-3 * e.abs().max()
        assert graph.optimizer.param_groups[0]["lr"].item() == pytest.approx(eager.optimizer.param_groups[0]["lr"])
    path = graph.save_checkpoint(tmp_path / "checkpoint.pt")
    cpu = Trainer(TrainConfig(**{**cfg, "device": "cpu"}), task)
    cpu.load_checkpoint(path)
    again = Trainer(TrainConfig(**cfg, cuda_graph=True), task)
    again.load_checkpoint(path)
    assert cpu.train_step()["total"] == pytest.approx(again.train_step()["total"], rel=1e-4)
