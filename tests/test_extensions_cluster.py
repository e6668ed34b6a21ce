"""Clustering without labels (alpha = 0): scores, the k-means baseline, the trainer's plain loop."""

from __future__ import annotations

import math

import pytest
import torch

from invlab.extensions.cluster import ClusterConfig, cluster_accuracy, kmeans_baseline, nmi, train_clustering
from invlab.losses import SemiSupervisedLoss
from invlab.train import TrainConfig, Trainer


def _squares(n, seed):
    """10 classes, each a bright bar at its own place on a dim noisy background."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    x = 0.1 * torch.rand(n, 1, 28, 28, generator=g)
    for i, c in enumerate(y.tolist()):
        r, k = divmod(c, 5)
        x[i, 0, 2 + 12 * r: 12 + 12 * r, 1 + 5 * k: 6 + 5 * k] += 0.9
    return x, y


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
