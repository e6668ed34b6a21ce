"""The reconstruction energy as an EBGAN discriminator: its losses and scores."""

from __future__ import annotations

import pytest
import torch
from conftest import TinyCNN

from invlab.inverse import reconstruct
from invlab.losses import reconstruction_loss


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
