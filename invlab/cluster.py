"""Unsupervised clustering with the inversion loss (the paper's §4, alpha = 0), and its yardsticks.

With alpha = 0 no label is used: the loss is beta·R + (1 - beta)·U on every sample, R the
reconstruction of eq. 8 and U a clustering term on the softmax outputs. The paper's U,
the entropy E, alone collapses: every input put in one class with full confidence has
zero entropy. The standard fix (Krause et al. 2010, "RIM"; Hu et al. 2017, "IMSAT") also
maximises the entropy of the batch-mean prediction H(p̄), so that the clusters stay used:

    U = E + lambda·(log C - H(p̄))  =  log C - I(x; cluster)   for lambda = 1,

the mutual information between inputs and clusters (:class:`~invlab.losses.SemiSupervisedLoss`
with ``alpha=0`` and ``balance=lambda``). Scores: cluster accuracy (the best one-to-one
matching of clusters to classes, :func:`cluster_accuracy`) and normalised mutual
information (:func:`nmi`) on the test set; the yardstick is k-means on raw pixels
(:func:`kmeans_baseline`).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .evaluate import predictions
from .losses import SemiSupervisedLoss


def _contingency(pred: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    pred, target = torch.as_tensor(pred).long(), torch.as_tensor(target).long()
    if pred.shape != target.shape or pred.ndim != 1:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must be equal 1-D shapes")
    k, c = int(pred.max()) + 1, int(target.max()) + 1
    table = torch.zeros(k, c, dtype=torch.long)
    table.index_put_((pred, target), torch.ones_like(pred), accumulate=True)
    return table.numpy()


def cluster_accuracy(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Accuracy (%) of cluster ids ``pred`` against classes ``target`` under the best
    one-to-one matching of clusters to classes (Hungarian algorithm)."""
    from scipy.optimize import linear_sum_assignment

    table = _contingency(pred, target)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return 100.0 * float(table[rows, cols].sum()) / len(pred)


def nmi(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Normalised mutual information I(pred; target) / ((H(pred) + H(target)) / 2), in [0, 1]
    (scikit-learn's ``normalized_mutual_info_score``, arithmetic normalisation)."""
    from sklearn.metrics import normalized_mutual_info_score

    pred, target = torch.as_tensor(pred).long(), torch.as_tensor(target).long()
    if pred.shape != target.shape or pred.ndim != 1:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must be equal 1-D shapes")
    return float(normalized_mutual_info_score(target.numpy(), pred.numpy(), average_method="arithmetic"))


def kmeans_baseline(x_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor, k: int | None = None,
                    seed: int = 0) -> dict:
    """k-means (scipy's kmeans2, k-means++ start) with ``k`` centres (default: the test
    classes) fitted on raw training pixels, test points assigned to the nearest centre:
    cluster accuracy (%) and NMI on the test set."""
    from scipy.cluster.vq import kmeans2, vq

    k = int(y_test.max()) + 1 if k is None else k  # default: as many clusters as the test set has classes
    train = x_train.flatten(1).double().numpy()
    centres, _ = kmeans2(train, k, iter=30, minit="++", seed=np.random.default_rng(seed))
    pred = torch.from_numpy(vq(x_test.flatten(1).double().numpy(), centres)[0]).long()
    return {"accuracy": cluster_accuracy(pred, y_test), "nmi": nmi(pred, y_test)}


@dataclass
class ClusterConfig:
    """A clustering run: no labels, ``beta``·R + (1 - beta)·[E + balance·(log C - H(p̄))]."""

    model: str = "smallcnn-mean"
    dataset: str = "mnist"  # a name of invlab.data.list_datasets()
    clusters: int | None = None  # None: the data set's class count
    beta: float = 0.2
    balance: float = 1.0
    steps: int = 2000
    batch: int = 150
    lr: float = 0.01
    preprocess: str = "center-maxabs"
    seed: int = 0
    device: str = "auto"
    data_root: str | None = None


def train_clustering(config: ClusterConfig, data=None, progress: bool = True) -> dict:
    """Train ``config.model`` to cluster ``config.dataset`` without labels (Adam, cosine
    decay); return test cluster accuracy and NMI of the final model, the per-cluster sizes,
    and the model.

    ``data``: a :class:`~invlab.data.SemiSupervisedData` (its labels are never read during
    training; the test labels score the clusters at the end). Default: ``config.dataset``."""
    from .data import load_dataset
    from .data.preprocess import preprocess_data
    from .models import create_model
    from .loop import CyclingSampler, resolve_device, schedule_factor

    if not 0 <= config.beta <= 1:
        raise ValueError(f"beta must lie in [0, 1], got {config.beta}")
    device = resolve_device(config.device)
    data = load_dataset(config.dataset, 1, config.seed, root=config.data_root) if data is None else data
    data = preprocess_data(data, config.preprocess)
    clusters = config.clusters or data.num_classes
    torch.manual_seed(config.seed)
    model = create_model(config.model, num_classes=clusters, input_shape=data.input_shape).to(device)
    loss_fn = SemiSupervisedLoss(0.0, config.beta, balance=config.balance, report_unweighted=False)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: schedule_factor("cosine", t, config.steps))
    sampler = CyclingSampler(len(data.x_train), config.seed + 2)
    unlabelled = torch.zeros(config.batch, dtype=torch.bool, device=device)
    no_label = torch.full((config.batch,), -1, device=device)
    t0 = time.perf_counter()
    for _ in tqdm(range(config.steps), disable=not progress, desc=f"clustering {config.model}", unit="step"):
        x = data.x_train[sampler.next(config.batch)].to(device)
        out = loss_fn(model, x, no_label, unlabelled)
        opt.zero_grad(set_to_none=True)
        out["total"].backward()
        opt.step()
        sched.step()
    pred = predictions(model, data.x_test)
    return {"cluster_accuracy": cluster_accuracy(pred, data.y_test), "nmi": nmi(pred, data.y_test),
            "cluster_sizes": torch.bincount(pred, minlength=clusters).tolist(),
            "train_time_s": time.perf_counter() - t0, "config": asdict(config), "model": model, "predictions": pred}


def _clustering_run(config: ClusterConfig, path: str) -> dict:
    """One seed of :func:`clustering_study` (a process of its own), with k-means beside it."""
    from .data import load_dataset

    torch.set_num_threads(1)
    data = load_dataset(config.dataset, 1, config.seed, root=config.data_root)
    res = train_clustering(config, data, progress=False)
    km = kmeans_baseline(data.x_train, data.x_test, data.y_test, config.clusters or data.num_classes, config.seed)
    out = {k: v for k, v in res.items() if k not in ("model", "predictions")}
    out.update(kmeans_accuracy=km["accuracy"], kmeans_nmi=km["nmi"])
    from .io import save_json

    save_json(out, path)
    return out


def clustering_study(seeds, steps: int = 2000, beta: float = 0.2, balance: float = 1.0, runs_dir="runs/clustering",
                     device: str = "auto", data_root=None, jobs: int = 1, train: bool = True,
                     dataset: str = "mnist") -> dict | None:
    """Per seed: the clustering run and k-means on raw pixels (same seed), each kept as
    ``runs_dir/seed<s>-<steps>-<beta>-<balance>.json`` (finished seeds are read back;
    ``train=False`` reports those only, None when there are none)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    configs = [ClusterConfig(dataset=dataset, steps=steps, beta=beta, balance=balance, seed=s, device=device,
                             data_root=data_root) for s in seeds]
    tag = "" if dataset == "mnist" else f"{dataset.replace(':', '_').replace('/', '_')}-"
    paths = [runs_dir / f"{tag}seed{c.seed}-{steps}-{beta}-{balance}.json" for c in configs]
    todo = [(c, str(p)) for c, p in zip(configs, paths) if not p.exists()]
    if not train:
        kept = [(c, p) for c, p in zip(configs, paths) if p.exists()]
        if not kept:
            return None
        configs, paths = [c for c, _ in kept], [p for _, p in kept]
        seeds, todo = [c.seed for c in configs], []
    if todo:
        with ProcessPoolExecutor(max(1, min(jobs, len(todo))), mp_context=multiprocessing.get_context("spawn")) as pool:
            list(pool.map(_clustering_run, *zip(*todo)))
    runs = [json.loads(p.read_text()) for p in paths]
    return {"seeds": list(seeds), "settings": asdict(configs[0]) | {"seed": None},
            "cluster_accuracy": [r["cluster_accuracy"] for r in runs], "nmi": [r["nmi"] for r in runs],
            "kmeans_accuracy": [r["kmeans_accuracy"] for r in runs], "kmeans_nmi": [r["kmeans_nmi"] for r in runs],
            "cluster_sizes": [r["cluster_sizes"] for r in runs], "train_time_s": [r["train_time_s"] for r in runs]}
