"""Shared fixtures: deterministic, CPU, offline, tiny."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from invlab.data import SemiSupervisedData


def pytest_configure(config):
    _check_loadgroup(config)
    if os.environ.get("PYTEST_XDIST_WORKER"):  # one process per core: one thread each, no oversubscription
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        torch.set_num_threads(1)


def _check_loadgroup(config):
    """``--dist loadgroup`` keeps the tests that share a JupyterLab server or a site build on
    one worker. pytest-xdist marks a group by a suffix of the test's id, which pytest 9.2 no
    longer takes (pytest-xdist#1386): the groups would be spread over the workers, silently."""
    if config.getoption("dist", None) != "loadgroup":
        return
    import xdist

    def version(module):
        return tuple(int(part) for part in module.__version__.split(".")[:2] if part.isdigit())

    if version(pytest) >= (9, 2) and version(xdist) <= (3, 8):
        raise pytest.UsageError(
            f"pytest {pytest.__version__} with pytest-xdist {xdist.__version__}: --dist "
            "loadgroup ignores xdist_group (pytest-xdist#1386); install pytest<9.2 (bin/setup does)"
        )


#: Tests that read the real Fashion-MNIST (Debian's dataset-fashion-mnist offline, else a download):
#: integration tests like those of tests/integration/, which they cannot join (a notebook, a parameter).
NEEDS_FASHION_MNIST = ("09_your_data.ipynb", "test_a_lesson_network_gives_its_recorded_test_accuracy[fashion-mnist")


def pytest_collection_modifyitems(config, items):
    """The notebooks (nbmake) and the benchmark scripts' end-to-end runs are slow: the quick
    tier, `bin/test -m "not slow"`, leaves them out. What needs a Debian package beyond Python
    (tests/integration/, the real Fashion-MNIST) is `integration`: `-m "not integration"` leaves
    it out."""
    for item in items:
        path = str(item.path)
        if path.endswith(".ipynb") or path.endswith("test_benchmarks.py"):
            item.add_marker(pytest.mark.slow)
        if "integration" in item.path.parts or any(key in item.nodeid for key in NEEDS_FASHION_MNIST):
            item.add_marker(pytest.mark.integration)
    # Longest first: the xdist workers take tests in this order as they free up, so short
    # tests at the end even out their finishing times (the browser tests, one worker's
    # serial group, before all).
    items.sort(
        key=lambda item: (0 if item.path.name == "test_notebooks_in_browser.py"
                          else 1 if item.get_closest_marker("slow") else 2)
    )


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    """The documentation site the checks read; its root folder. Where ``INVLAB_SITE_BUILT``
    says that ``bin/docs`` has just built it from this tree (``.ci/run``), that site, lessons
    executed; elsewhere built once per test process without running the lessons (its tests
    share one xdist worker: ``xdist_group("jupyterlab")``), so that a site left by an older
    ``bin/docs`` is never what a check reads."""
    if os.environ.get("INVLAB_SITE_BUILT"):
        from test_site import executed_site

        return executed_site()
    from test_docs import build_site

    return build_site(tmp_path_factory.mktemp("site"))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


class TinyMLP(nn.Module):
    input_ndim = 4
    in_channels = 1

    def __init__(self, side=5, classes=3):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(side * side, 7), nn.LeakyReLU(0.1),
                                 nn.Linear(7, 6), nn.ReLU(), nn.Linear(6, classes))

    def forward(self, x):
        return self.net(x)


class TinyCNN(nn.Module):
    input_ndim = 4
    in_channels = 1

    def __init__(self, pool="max", classes=3):
        super().__init__()
        p = nn.MaxPool2d(2) if pool == "max" else nn.AvgPool2d(2)
        self.net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), p,
                                 nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 2 * 2, classes))

    def forward(self, x):
        return self.net(x)


class TinyCNN1d(nn.Module):
    input_ndim = 3
    in_channels = 2

    def __init__(self, classes=3):
        super().__init__()
        self.net = nn.Sequential(nn.Conv1d(2, 3, 4, stride=2), nn.ReLU(), nn.MaxPool1d(2, 1),
                                 nn.Conv1d(3, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4, classes))

    def forward(self, x):
        return self.net(x)


def tiny_models():
    """(name, model, input) triples in float64 for oracle tests."""
    from invlab.models import ResNet

    res = ResNet(blocks=1, width=2, num_classes=3)
    return [
        ("mlp", TinyMLP(), torch.randn(3, 1, 5, 5)),
        ("cnn-max", TinyCNN("max"), torch.randn(3, 1, 8, 8)),
        ("cnn-mean", TinyCNN("mean"), torch.randn(3, 1, 8, 8)),
        ("resnet", res, torch.randn(3, 1, 8, 8)),
        ("cnn1d", TinyCNN1d(), torch.randn(3, 2, 16)),
    ]


def synthetic_task(n_train=300, n_val=100, n_test=100, per_class=3, noise=0.3, seed=0) -> SemiSupervisedData:
    """A tiny 10-class 28x28 task: one random prototype per class plus noise."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.rand(10, 1, 28, 28, generator=g)

    def draw(n):
        y = torch.arange(n) % 10
        x = (protos[y] + noise * torch.randn(n, 1, 28, 28, generator=g)).clamp(0, 1)
        return x, y

    (xt, yt), (xv, yv), (xs, ys) = draw(n_train), draw(n_val), draw(n_test)
    from invlab.data import labelled_split

    return SemiSupervisedData(xt, yt, labelled_split(yt, per_class, seed), xv, yv, xs, ys, 10, "synthetic")


@pytest.fixture
def task():
    return synthetic_task()


@pytest.fixture
def fake_mnist_root(tmp_path, monkeypatch):
    """A data folder holding a correctly shaped random mnist.pt, so the CLI runs offline."""
    from invlab.data.mnist import save_mnist_cache

    g = torch.Generator().manual_seed(0)
    arrays = {
        "train_images": torch.randint(0, 256, (60_000, 28, 28), dtype=torch.uint8, generator=g),
        "train_targets": torch.arange(60_000) % 10,
        "test_images": torch.randint(0, 256, (10_000, 28, 28), dtype=torch.uint8, generator=g),
        "test_targets": torch.arange(10_000) % 10,
    }
    root = tmp_path / "data"
    save_mnist_cache(arrays, root / "mnist.pt")
    monkeypatch.setenv("INVLAB_DATA", str(root))
    return root


def mixed_batch(n=6, n_l=2, classes=3):
    """(x, y, labelled) float64: n examples of 8 x 8, the first n_l labelled, the others y = -1."""
    x = torch.randn(n, 1, 8, 8, dtype=torch.float64)
    y = torch.randint(0, classes, (n,))
    mask = torch.zeros(n, dtype=torch.bool)
    mask[:n_l] = True
    y[~mask] = -1
    return x, y, mask


def separate_vjp(model, x, name):
    """Reference: a forward pass of its own, the layer's output captured, one VJP for it alone."""
    store = {}
    handle = dict(model.named_modules())[name].register_forward_hook(lambda m, i, o: store.__setitem__("z", o))
    logits = model(x)
    handle.remove()
    (rec,) = torch.autograd.grad(logits, store["z"], grad_outputs=logits)
    return rec, store["z"]


@pytest.fixture(scope="module")
def colour32(tmp_path_factory) -> Path:
    """A 3x32x32 data set with 6 classes, as an npz archive."""
    path = tmp_path_factory.mktemp("npz") / "colour32.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.integers(0, 256, (60, 3, 32, 32), dtype=np.uint8), y=np.arange(60) % 6,
             x_test=rng.integers(0, 256, (12, 3, 32, 32), dtype=np.uint8), y_test=np.arange(12) % 6,
             class_names=np.array(["ant", "bee", "cat", "dog", "eel", "fox"]))
    return path
