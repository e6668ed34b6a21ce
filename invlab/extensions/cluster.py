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

from invlab.training.evaluate import predictions


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


def train_config(config: ClusterConfig):
    """``config`` as the :class:`~invlab.train.TrainConfig` that :class:`~invlab.train.Trainer`
    runs: alpha 0 and no labelled batch (no label is read), ``batch`` unlabelled samples per
    step, Adam with cosine decay, one evaluation at the end (the model kept is the last)."""
    from invlab.training.config import TrainConfig

    return TrainConfig(model=config.model, dataset=config.dataset, outputs=config.clusters, labels_per_class=1,
                       alpha=0.0, beta=config.beta, balance=config.balance, steps=config.steps, labelled_batch=0,
                       unlabelled_batch=config.batch, lr=config.lr, schedule="cosine", preprocess=config.preprocess,
                       seed=config.seed, device=config.device, data_root=config.data_root, eval_every=config.steps,
                       log_unweighted=False)


def scores(model, data) -> dict:
    """Cluster accuracy (%), NMI and cluster sizes of ``model``'s predictions on ``data``'s
    (preprocessed) test set."""
    pred = predictions(model, data.x_test)
    with torch.no_grad():
        outputs = model(data.x_test[:1].to(next(model.parameters()).device)).shape[1]
    return {"cluster_accuracy": cluster_accuracy(pred, data.y_test), "nmi": nmi(pred, data.y_test),
            "cluster_sizes": torch.bincount(pred, minlength=outputs).tolist(), "predictions": pred}


def train_clustering(config: ClusterConfig, data=None, progress: bool = True) -> dict:
    """Train ``config.model`` to cluster ``config.dataset`` without labels, on the one
    :class:`~invlab.train.Trainer` (:func:`train_config`); return test cluster accuracy and
    NMI of the final model, the per-cluster sizes, and the model.

    ``data``: a :class:`~invlab.data.SemiSupervisedData` (its labels are never read during
    training; the test labels score the clusters at the end). Default: ``config.dataset``."""
    from invlab.data import load_dataset
    from invlab.training.trainer import Trainer

    if not 0 <= config.beta <= 1:
        raise ValueError(f"beta must lie in [0, 1], got {config.beta}")
    data = load_dataset(config.dataset, 1, config.seed, root=config.data_root) if data is None else data
    trainer = Trainer(train_config(config), data)
    t0 = time.perf_counter()
    result = trainer.run(progress=progress)
    model = result.model.eval()
    return {**scores(model, trainer.data), "train_time_s": time.perf_counter() - t0, "config": asdict(config),
            "model": model}


def clustering_study(seeds, steps: int = 2000, beta: float = 0.2, balance: float = 1.0, runs_dir="runs/clustering",
                     device: str = "auto", data_root=None, jobs: int = 1, train: bool = True,
                     dataset: str = "mnist") -> dict | None:
    """Per seed: the clustering run (:func:`invlab.experiments.studies.run_many`: resumable, ``jobs``
    workers) and k-means on raw pixels (same seed), scored once and kept beside the run as
    ``scores.json`` (finished seeds are read back; ``train=False`` reports those only, None
    when there are none)."""
    from invlab.data import load_dataset
    from invlab.data.preprocess import preprocess_data
    from invlab.experiments.studies import RESULT, run_many
    from invlab.io import save_json
    from invlab.training.checkpoints import CHECKPOINT, load_model
    from invlab.training.config import run_key

    configs = [ClusterConfig(dataset=dataset, steps=steps, beta=beta, balance=balance, seed=s, device=device,
                             data_root=data_root) for s in seeds]
    tag = "" if dataset == "mnist" else f"{dataset.replace(':', '_').replace('/', '_')}-"
    runs = [(train_config(c), Path(runs_dir) / f"{tag}seed{c.seed}-{run_key(train_config(c))}") for c in configs]
    results = run_many(runs, jobs, train=train, name="clustering")
    kept = [(c, d) for c, (_, d), r in zip(configs, runs, results) if r is not None]
    if not kept:
        return None
    per_seed = []
    for c, run_dir in kept:
        path = run_dir / "scores.json"
        if not path.exists():
            data = load_dataset(c.dataset, 1, c.seed, root=c.data_root)
            model = load_model(run_dir / CHECKPOINT)
            res = json.loads((run_dir / RESULT).read_text())
            out = {k: v for k, v in scores(model, preprocess_data(data, c.preprocess)).items() if k != "predictions"}
            km = kmeans_baseline(data.x_train, data.x_test, data.y_test, c.clusters or data.num_classes, c.seed)
            save_json({**out, "kmeans_accuracy": km["accuracy"], "kmeans_nmi": km["nmi"],
                       "train_time_s": res["wall_time_s"]}, path)
        per_seed.append(json.loads(path.read_text()))
    return {"seeds": [c.seed for c, _ in kept], "settings": asdict(configs[0]) | {"seed": None},
            **{k: [r[k] for r in per_seed] for k in ("cluster_accuracy", "nmi", "kmeans_accuracy", "kmeans_nmi",
                                                     "cluster_sizes", "train_time_s")}}
