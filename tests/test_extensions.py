"""The paper's extensions: per-layer reconstruction, weight schedules, learned weights, clustering."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import TinyCNN, tiny_models

from invlab.extensions.cluster import ClusterConfig, cluster_accuracy, kmeans_baseline, nmi, train_clustering
from invlab.inverse import forward_layer_reconstructions, layer_reconstructions, reconstruct, reconstructable_layers
from invlab.losses import LayerwiseLoss, SemiSupervisedLoss, reconstruction_loss
from invlab.train import TrainConfig, Trainer
from invlab.training.hyper import HyperWeights, holdout_split
from invlab.training.loss_weights import WeightSchedule, weight_arg


def _separate_vjp(model, x, name):
    """Reference: a forward pass of its own, the layer's output captured, one VJP for it alone."""
    store = {}
    handle = dict(model.named_modules())[name].register_forward_hook(lambda m, i, o: store.__setitem__("z", o))
    logits = model(x)
    handle.remove()
    (rec,) = torch.autograd.grad(logits, store["z"], grad_outputs=logits)
    return rec, store["z"]


@pytest.mark.parametrize("name,model,x", [t for t in tiny_models() if t[0] in ("cnn-max", "cnn-mean", "resnet")])
def test_layer_reconstructions_match_separate_vjps(name, model, x):
    model, x = model.double(), x.double()
    layers = [n for n in reconstructable_layers(model) if n != "input"]
    recs = layer_reconstructions(model, x, ["input", *layers], create_graph=False)
    torch.testing.assert_close(recs["input"][0], reconstruct(model, x, create_graph=False))
    torch.testing.assert_close(recs["input"][1], x)
    for layer in layers:
        ref_rec, ref_z = _separate_vjp(model, x, layer)
        torch.testing.assert_close(recs[layer][0], ref_rec, msg=f"rec of {layer}")
        torch.testing.assert_close(recs[layer][1], ref_z, msg=f"z of {layer}")
        assert recs[layer][0].shape == ref_z.shape


def test_layer_reconstruction_of_a_bias_free_net_is_AtAz():
    """Without biases above z, f = A z exactly, so rec = A^T A z (A = df/dz)."""
    torch.manual_seed(1)
    net = torch.nn.Sequential(
        torch.nn.Linear(6, 5, bias=False), torch.nn.ReLU(), torch.nn.Linear(5, 3, bias=False)
    ).double()
    net.input_ndim = None
    x = torch.randn(4, 6, dtype=torch.float64)
    rec, z = layer_reconstructions(net, x, ["1"], create_graph=False)["1"]
    A = net[2].weight  # df/dz for z the ReLU's output
    torch.testing.assert_close(rec, z @ A.T @ A)


def test_layer_reconstructions_are_differentiable_in_one_backward_pass():
    model, x = TinyCNN("mean").double(), torch.randn(3, 1, 8, 8, dtype=torch.float64)
    calls = {"n": 0}
    hook = model.net[0].register_full_backward_hook(lambda *a: calls.__setitem__("n", calls["n"] + 1))
    logits, recs = forward_layer_reconstructions(model, x, ["input", "net.2", "net.4"], create_graph=True,
                                                 method="autograd")
    hook.remove()
    assert calls["n"] == 1  # the first layer was back-propagated through once, for all three
    _, fast = forward_layer_reconstructions(model, x, ["input", "net.2", "net.4"], create_graph=True)  # transposed
    for name, (rec, z) in recs.items():
        torch.testing.assert_close(fast[name][0], rec)
        torch.testing.assert_close(fast[name][1], z)
    loss = sum(reconstruction_loss(rec, z) for rec, z in recs.values())
    grads = torch.autograd.grad(loss, list(model.parameters()))
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)


def test_layer_reconstructions_refuse_unknown_and_repeated_layers():
    model, x = TinyCNN("mean"), torch.randn(2, 1, 8, 8)
    with pytest.raises(ValueError, match="unknown layer.*available: input, net"):
        layer_reconstructions(model, x, ["net.99"])
    with pytest.raises(ValueError, match="layers is empty"):
        layer_reconstructions(model, x, [])
    relu = torch.nn.ReLU()
    twice = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 8), relu, torch.nn.Linear(8, 8), relu,
                                torch.nn.Linear(8, 3))
    with pytest.raises(RuntimeError, match="ran twice"):
        layer_reconstructions(twice, x, ["2"])


def _batch(n=6, n_l=2, classes=3):
    x = torch.randn(n, 1, 8, 8, dtype=torch.float64)
    y = torch.randint(0, classes, (n,))
    mask = torch.zeros(n, dtype=torch.bool)
    mask[:n_l] = True
    y[~mask] = -1
    return x, y, mask


@pytest.mark.parametrize("alpha,beta,balance", [(0.7, 0.2, 0.0), (0.5, 0.5, 1.0), (0.3, 0.9, 0.5)])
def test_layerwise_loss_with_only_the_input_is_eq10(alpha, beta, balance):
    model = TinyCNN("mean").double()
    x, y, mask = _batch()
    ref = SemiSupervisedLoss(alpha, beta, balance=balance)(model, x, y, mask)["total"]
    mine = LayerwiseLoss.from_eq10(alpha, beta, balance=balance)(model, x, y, mask)["total"]
    torch.testing.assert_close(mine, ref)
    g_ref = torch.autograd.grad(ref, list(model.parameters()))
    g_mine = torch.autograd.grad(mine, list(model.parameters()))
    for a, b in zip(g_mine, g_ref):
        torch.testing.assert_close(a, b)


def test_layerwise_loss_adds_each_layer_term():
    model = TinyCNN("mean").double()
    x, y, mask = _batch()
    base = LayerwiseLoss.from_eq10(0.7, 0.2)(model, x, y, mask)
    out = LayerwiseLoss.from_eq10(0.7, 0.2, {"net.2": 0.3, "net.4": 0.1})(model, x, y, mask)
    rec, z = _separate_vjp(model, x, "net.2")
    r2 = (rec - z).pow(2).flatten(1).mean(1).mean()
    torch.testing.assert_close(out["R:net.2"], r2)
    torch.testing.assert_close(out["total"], base["total"] + 0.3 * r2 + 0.1 * out["R:net.4"])
    with pytest.raises(ValueError, match="hidden layers only"):
        LayerwiseLoss.from_eq10(0.7, 0.2, {"input": 1.0})
    with pytest.raises(ValueError, match=">= 0"):
        LayerwiseLoss(0.7, 0.2, {"net.2": -1})


def test_weight_schedules():
    lin = WeightSchedule.parse("0.3:0.7")
    assert (
        lin(0, 101) == pytest.approx(0.3) and lin(100, 101) == pytest.approx(0.7) and lin(50, 101) == pytest.approx(0.5)
    )
    cos = WeightSchedule.parse("0:1:cosine")
    assert cos(25, 101) == pytest.approx((1 - math.cos(math.pi / 4)) / 2)
    step = WeightSchedule.parse("0.8:0.2:step@0.25")
    assert step(24, 101) == 0.8 and step(25, 101) == 0.2
    half = WeightSchedule.parse("0.3:0.7:linear@0.5")
    assert half(25, 101) == pytest.approx(0.5) and half(80, 101) == pytest.approx(0.7)
    assert WeightSchedule.parse(0.4)(7, 10) == 0.4 and WeightSchedule.parse("0.4").constant
    assert weight_arg("0.5") == 0.5 and weight_arg("0.3:0.7:cosine") == "0.3:0.7:cosine"
    for bad, match in (("a:b", "cannot read"), ("0.1:0.2:zigzag", "unknown schedule shape"),
                       ("0.1:0.2@1.5", "must lie in"), ("1:2:3:4", "cannot read")):
        with pytest.raises(ValueError, match=match):
            WeightSchedule.parse(bad)
    with pytest.raises(ValueError, match="alpha must lie in"):
        TrainConfig(alpha="0.5:1.2")


def test_trainer_follows_the_schedules_and_layer_weights(task):
    cfg = TrainConfig(steps=6, eval_every=2, labelled_batch=10, unlabelled_batch=10, alpha="0.3:0.7",
                      beta="0.8:0.2:step", layers={"features.2": "0:0.1"}, device="cpu")
    trainer = Trainer(cfg, task)
    result = trainer.run(progress=False)
    for record in result.history:  # the weights of the last step before each evaluation
        t = record["step"] - 1
        assert record["alpha"] == pytest.approx(0.3 + 0.4 * t / 5)
        assert record["beta"] == (0.2 if t >= 2.5 else 0.8)
        assert record["gamma:features.2"] == pytest.approx(0.1 * t / 5)
        assert record["R:features.2"] > 0
    with pytest.raises(ValueError, match="hidden layers only"):
        TrainConfig(layers={"input": 0.1})
    with pytest.raises(ValueError, match="reconstruction='mse'"):
        TrainConfig(layers={"features.2": 0.1}, reconstruction="cosine")


def test_holdout_split():
    labelled = torch.arange(100, 130)
    targets = torch.arange(30) % 10
    kept, held = holdout_split(labelled, targets, 1)
    assert len(held) == 10 and len(kept) == 20 and set(kept.tolist()).isdisjoint(held.tolist())
    assert sorted((targets[held - 100]).tolist()) == list(range(10))
    with pytest.raises(ValueError, match="leaves none to train on"):
        holdout_split(labelled, targets, 3)


def test_hypergradient_matches_finite_differences():
    """Reference: plain autograd for the inner gradient, central differences in w, float64."""
    torch.manual_seed(3)
    model = TinyCNN("mean").double()
    x, y, mask = _batch(8, 3)
    xh, yh = torch.randn(4, 1, 8, 8, dtype=torch.float64), torch.tensor([0, 1, 2, 1])
    hyper = HyperWeights(0.6, 0.4, lr=0.1, loss=SemiSupervisedLoss(0.6, 0.4, balance=0.5))
    hyper.w.data = hyper.w.data.double()
    inner_lr = 0.5
    params = list(model.parameters())

    def outer(w):
        a, b = torch.sigmoid(w).tolist()
        loss = SemiSupervisedLoss(a, b, balance=0.5)(model, x, y, mask)["total"]
        g = torch.autograd.grad(loss, params)
        updated = {n: p.detach() - inner_lr * gi for (n, p), gi in zip(model.named_parameters(), g)}
        return F.cross_entropy(torch.func.functional_call(model, updated, (xh,)), yh).item()

    w0 = hyper.w.detach().clone()
    eps = 1e-5
    fd = torch.tensor([(outer(w0 + eps * e) - outer(w0 - eps * e)) / (2 * eps)
                       for e in torch.eye(2, dtype=torch.float64)], dtype=torch.float64)
    hg = hyper.hypergradient(model, (x, y, mask), (xh, yh), inner_lr)
    assert fd.abs().max() > 1e-6  # the check can fail
    torch.testing.assert_close(hg, fd, rtol=1e-4, atol=1e-8)


def test_learned_weights_train_resume_and_stay_in_range(task, tmp_path):
    from invlab.experiments.studies import run_resumable

    cfg = TrainConfig(steps=6, eval_every=3, labelled_batch=10, unlabelled_batch=10, learn_weights=True,
                      hyper_every=2, hyper_lr=0.3, device="cpu")
    trainer = Trainer(cfg, task)
    assert len(trainer.data.labelled) == len(task.labelled) - 10 and trainer.holdout[1].tolist() == list(range(10))
    full = run_resumable(cfg, tmp_path / "full", data=task)
    alphas = [h["alpha"] for h in full["history"]]
    assert all(0 < a < 1 for a in alphas) and alphas[-1] != 0.7  # moved, and stayed in (0, 1)
    cut = Trainer(TrainConfig(**{**cfg.to_dict(), "steps": 3}), task)
    cut.run(progress=False, checkpoint_path=tmp_path / "cut.pt")
    resumed = Trainer(cfg, task)
    resumed.load_checkpoint(tmp_path / "cut.pt")
    assert resumed.hyper.weights == cut.hyper.weights
    with pytest.raises(ValueError, match="strictly inside"):
        TrainConfig(learn_weights=True, alpha=1.0)


def test_cluster_scores():
    target = torch.tensor([0, 0, 1, 1, 2, 2])
    assert cluster_accuracy(torch.tensor([2, 2, 0, 0, 1, 1]), target) == 100.0  # a relabelling
    assert cluster_accuracy(torch.tensor([0, 0, 0, 1, 1, 1]), target) == pytest.approx(100 * 4 / 6)
    assert nmi(torch.tensor([2, 2, 0, 0, 1, 1]), target) == pytest.approx(1.0)
    assert nmi(torch.tensor([0, 1, 0, 1]), torch.tensor([0, 0, 1, 1])) == pytest.approx(0.0)
    # by hand: pred {0,0,1} vs target {0,1,1}: I = log(3)·... computed from the joint table
    p = torch.tensor([0, 0, 1])
    t = torch.tensor([0, 1, 1])
    joint = torch.tensor([[1, 1], [0, 1]], dtype=torch.float64) / 3
    pu, pv = joint.sum(1), joint.sum(0)
    mi = sum(
        joint[i, j] * math.log(joint[i, j] / (pu[i] * pv[j])) for i in range(2) for j in range(2) if joint[i, j] > 0
    )
    h = lambda q: -sum(v * math.log(v) for v in q if v > 0)  # noqa: E731
    assert nmi(p, t) == pytest.approx(float(mi / ((h(pu) + h(pv)) / 2)))


def test_kmeans_baseline_finds_separated_blobs():
    g = torch.Generator().manual_seed(0)
    centres = 5 * torch.randn(3, 1, 4, 4, generator=g)
    y = torch.arange(90) % 3
    x = centres[y] + 0.1 * torch.randn(90, 1, 4, 4, generator=g)
    res = kmeans_baseline(x, x, y, k=3, seed=0)
    assert res["accuracy"] == 100.0 and res["nmi"] == pytest.approx(1.0)


def _squares(n, seed):
    """10 classes, each a bright bar at its own place on a dim noisy background."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    x = 0.1 * torch.rand(n, 1, 28, 28, generator=g)
    for i, c in enumerate(y.tolist()):
        r, k = divmod(c, 5)
        x[i, 0, 2 + 12 * r: 12 + 12 * r, 1 + 5 * k: 6 + 5 * k] += 0.9
    return x, y


def test_clustering_uses_no_labels_and_scores_the_test_set():
    from invlab.data import SemiSupervisedData

    (xt, yt), (xs, ys) = _squares(200, 0), _squares(100, 1)
    data = SemiSupervisedData(xt, yt, torch.arange(10), xs, ys, xs, ys, 10, "bars")
    scrambled = SemiSupervisedData(xt, torch.randint(0, 10, (200,)), torch.arange(10), xs, ys, xs, ys, 10, "bars")
    cfg = ClusterConfig(model="smallcnn-mean", steps=40, batch=50, device="cpu")
    a = train_clustering(cfg, data, progress=False)
    b = train_clustering(cfg, scrambled, progress=False)  # training labels must not matter
    assert a["cluster_accuracy"] == b["cluster_accuracy"] and torch.equal(a["predictions"], b["predictions"])
    assert sum(a["cluster_sizes"]) == 100 and a["cluster_accuracy"] >= 60  # chance: 10 %


def test_cli_reads_schedules_and_layers(capsys, task):
    from invlab.cli import _parser, main

    args = _parser().parse_args(["train", "--out", "x", "--alpha", "0.3:0.7", "--beta", "0.8:0.2:step@0.25",
                                 "--layer", "features.2=0.05", "--layer", "features.5=0:0.1:cosine"])
    assert args.alpha == "0.3:0.7:linear" and args.beta == "0.8:0.2:step@0.25"
    assert dict(args.layers) == {"features.2": 0.05, "features.5": "0:0.1:cosine"}
    with pytest.raises(SystemExit):
        _parser().parse_args(["train", "--out", "x", "--alpha", "0.3:zig"])
    assert "cannot read the weight" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--out", "x", "--layer", "features.2"])
    assert "expected NAME=GAMMA" in capsys.readouterr().err
    with pytest.raises(ValueError, match="not modules of 'smallcnn-mean'; available: features"):
        Trainer(TrainConfig(layers={"features.9": 0.1}, device="cpu"), task)


def test_ebgan_energy_losses_and_scores():
    from invlab.extensions.ebgan import EBGANConfig, Generator, ebgan_losses, energy, score_samples, train_ebgan

    model = TinyCNN("mean").double()
    real, fake = torch.rand(4, 1, 8, 8, dtype=torch.float64), torch.rand(4, 1, 8, 8, dtype=torch.float64)
    e = energy(model, real)
    torch.testing.assert_close(e, reconstruction_loss(reconstruct(model, real), real, reduction="none"))
    m = energy(model, fake).mean().item() + 0.01  # a margin above the fakes' energy: the hinge is active
    out = ebgan_losses(model, real, fake, m)
    torch.testing.assert_close(out["d_loss"], e.mean() + (m - energy(model, fake)).clamp(min=0).mean())
    assert ebgan_losses(model, real, fake, 0.0)["d_loss"].item() == pytest.approx(e.mean().item())

    g = Generator(latent=8)
    assert g(torch.randn(3, 8)).shape == (3, 1, 28, 28)
    res = train_ebgan(EBGANConfig(steps=2, batch=4, latent=8, sample_every=1, device="cpu"), torch.rand(20, 1, 28, 28),
                      progress=False)
    assert sorted(res["samples"]) == [1, 2] and res["samples"][2].shape == (16, 1, 28, 28)
    assert all(0 <= v <= 1 for v in (res["samples"][2].min().item(), res["samples"][2].max().item()))

    class Fixed(torch.nn.Module):  # confident class 2 for bright images, unsure otherwise
        def forward(self, x):
            bright = (x.flatten(1).mean(1) > 0.5).float()
            return torch.stack([torch.zeros_like(bright)] * 2 + [10 * bright], 1)

    x = torch.cat([torch.ones(3, 1, 4, 4), torch.zeros(1, 1, 4, 4)])
    s = score_samples(Fixed(), x)
    assert s["confident_share"] == 75.0 and s["class_histogram"] == [1, 0, 3]


def test_clustering_takes_its_cluster_count_and_size_from_the_data():
    from invlab.data import semi_supervised

    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(120, 3, 18, 18, generator=g), torch.arange(120) % 4
    data = semi_supervised("four", x, y, labels_per_class=1, seed=0, val_size=10)
    res = train_clustering(ClusterConfig(steps=3, batch=20, device="cpu"), data, progress=False)
    assert len(res["cluster_sizes"]) == 4 and res["model"].input_shape == (3, 18, 18)
    named = train_clustering(ClusterConfig(dataset="synthetic", steps=2, batch=20, device="cpu"), progress=False)
    assert len(named["cluster_sizes"]) == 10


def test_clustering_study_runs_on_the_one_runner_and_reads_back(tmp_path):
    from invlab.extensions.cluster import clustering_study

    kw = dict(steps=3, runs_dir=tmp_path, device="cpu", dataset="synthetic")
    assert clustering_study([0, 1], train=False, **kw) is None  # nothing finished yet
    first = clustering_study([0, 1], **kw)
    assert first["seeds"] == [0, 1] and all(len(s) == 10 for s in first["cluster_sizes"])
    assert (tmp_path / "sweeps.db").exists() and len(list(tmp_path.glob("synthetic-seed*/scores.json"))) == 2
    assert clustering_study([0, 1], train=False, **kw) == first  # read back, not retrained


def test_clustering_may_ask_for_more_clusters_than_classes():
    from invlab.data import semi_supervised

    g = torch.Generator().manual_seed(0)
    data = semi_supervised("four", torch.rand(120, 1, 16, 16, generator=g), torch.arange(120) % 4, labels_per_class=1,
                           seed=0, val_size=10)
    res = train_clustering(ClusterConfig(steps=2, batch=20, clusters=6, device="cpu"), data, progress=False)
    assert len(res["cluster_sizes"]) == 6 and sum(res["cluster_sizes"]) == len(data.x_test)
    with pytest.raises(ValueError, match="labelled_batch must be at least 1"):
        TrainConfig(labelled_batch=0, alpha=0.5)


def test_clustering_on_the_trainer_is_the_plain_alpha_0_loop():
    """Clustering moved onto Trainer: with the same memory layout it takes exactly the steps
    of the plain loop it replaced (Adam, cosine decay, eq. 10 with alpha 0, unlabelled
    batches from the same sampler). The Trainer's channels-last layout only rounds differently."""
    from invlab.data import load_dataset
    from invlab.data.preprocess import preprocess_data
    from invlab.extensions.cluster import train_config
    from invlab.losses import SemiSupervisedLoss
    from invlab.models import create_model
    from invlab.training.lr_schedules import schedule_factor
    from invlab.training.sampling import CyclingSampler

    cfg = ClusterConfig(dataset="synthetic", steps=6, batch=20, device="cpu", seed=3)
    data = load_dataset("synthetic", 1, cfg.seed)
    d = preprocess_data(data, cfg.preprocess)
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, num_classes=10, input_shape=d.input_shape)
    loss_fn = SemiSupervisedLoss(0.0, cfg.beta, balance=cfg.balance, report_unweighted=False)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: schedule_factor("cosine", t, cfg.steps))
    sampler = CyclingSampler(len(d.x_train), cfg.seed + 2)
    for _ in range(cfg.steps):
        out = loss_fn(model, d.x_train[sampler.next(cfg.batch)], torch.full((cfg.batch,), -1),
                      torch.zeros(cfg.batch, dtype=torch.bool))
        opt.zero_grad(set_to_none=True)
        out["total"].backward()
        opt.step()
        sched.step()
    trainer = Trainer(train_config(cfg), data)
    trainer.memory_format = torch.contiguous_format
    trainer.model.to(memory_format=torch.contiguous_format)
    for _ in range(cfg.steps):
        trainer.train_step()
    for (name, a), b in zip(model.state_dict().items(), trainer.model.state_dict().values()):
        assert torch.equal(a, b), name
