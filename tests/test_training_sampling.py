"""invlab.training.sampling: class-balanced labelled batches."""


import torch

from invlab.train import BalancedSampler, TrainConfig, Trainer

FAST = dict(model="smallcnn-mean", labelled_batch=10, unlabelled_batch=20, eval_every=3, val_size=100)


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
