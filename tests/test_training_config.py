"""invlab.training.config: TrainConfig's recipes and refusals, and run_key (the name of a cached run)
across versions."""

import pytest
import torch

from invlab.train import TrainConfig, Trainer, run_key

FAST = dict(model="smallcnn-mean", labelled_batch=10, unlabelled_batch=20, eval_every=3, val_size=100)


def test_run_keys_made_before_the_recipes_stay_valid():
    """Keys computed by invlab 0.1.0 (TrainConfig's defaults then the paper's bare setting):
    the same runs keep their names, whichever recipe spells them now."""
    from invlab.train import RECOMMENDED, TrainConfig, run_key

    assert run_key(TrainConfig(recipe="paper")) == "bf21a9e8fbc5"
    assert run_key(TrainConfig()) == run_key(TrainConfig(recipe="paper", **RECOMMENDED)) == "60d301b8f786"
    assert run_key(TrainConfig(recipe="paper", model="smallcnn-max", seed=3, beta=0.5)) == "1a86b0b252e6"
    assert run_key(TrainConfig(dataset="fashion-mnist", method="vat", beta=0.0)) == "aab9928a53ae"
    with pytest.raises(ValueError, match="recipe must be one of recommended, paper"):
        TrainConfig(recipe="fast")


def test_a_given_option_wins_over_the_recipe():
    from invlab.train import TrainConfig

    config = TrainConfig(recipe="paper", schedule="cosine", steps=7)
    assert (config.schedule, config.steps, config.preprocess, config.balance) == ("cosine", 7, "none", 0.0)
    config = TrainConfig(preprocess="none")
    assert (config.schedule, config.steps, config.preprocess, config.balance) == ("cosine", 2000, "none", 1.0)


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


@pytest.mark.parametrize("kw,match", [
    (dict(milestones=(0.8, 0.4)), "milestones"), (dict(milestones=(1.5,)), "milestones"),
    (dict(lr_decay=0.0), "lr_decay"), (dict(lr=0.0), "lr must be positive"), (dict(init="he"), "init"),
])
def test_bad_protocol_config(kw, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kw)


def test_runs_made_with_mnist_val_size_written_out_keep_their_key():
    """val_size defaults to the data set's own (None); 10 000 written out on MNIST is the same run."""
    from invlab.train import TrainConfig, run_key

    assert run_key(TrainConfig(val_size=10_000)) == run_key(TrainConfig())
    assert run_key(TrainConfig(val_size=5_000)) != run_key(TrainConfig())
    assert run_key(TrainConfig(dataset="fashion-mnist", val_size=10_000)) != run_key(
        TrainConfig(dataset="fashion-mnist")
    )
