"""The reconstruction energy as a GAN discriminator (the paper's §4): an energy-based GAN
whose energy is the inversion's reconstruction error, D(x) = R(x).

EBGAN (Zhao, Mathieu & LeCun 2017) trains a discriminator that assigns low energy to real
data and high energy, up to a margin m, to generated data, with the margin losses

    L_D = D(x) + max(0, m - D(G(z))),        L_G = D(G(z)).

Here D is a classifier network of invlab and its energy the reconstruction error of its
inverse, D(x) = ||(df/dx)^T f(x) - x||^2 averaged over pixels: a network whose inverse
reconstructs real digits well and generated ones badly. The generator is a small
transposed-convolution network from a 64-d Gaussian code to 28x28 images in [0, 1]. The
samples are scored by a separate classifier (:func:`score_samples`): how many it
classifies with confidence above 0.9, and over which classes.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from invlab.data.mnist import MNIST_INPUT_SHAPE
from invlab.inverse import forward_inverse


class Generator(nn.Module):
    """z (B, latent) -> images (B, C, H, W) in [0, 1]: dense to width@(H/4)x(W/4), two x2
    upsamplings. ``image_shape`` (C, H, W), H and W multiples of 4 (default MNIST's)."""

    def __init__(self, latent: int = 64, width: int = 64, image_shape: tuple[int, int, int] = MNIST_INPUT_SHAPE):
        super().__init__()
        channels, h, w = image_shape
        if h % 4 or w % 4:
            raise ValueError(f"the generator upsamples twice by 2: image sides must be multiples of 4, got {h}x{w}")
        self.latent, self.width, self.start = latent, width, (h // 4, w // 4)
        self.fc = nn.Linear(latent, width * self.start[0] * self.start[1])
        self.net = nn.Sequential(
            nn.BatchNorm2d(width), nn.ReLU(),
            nn.ConvTranspose2d(width, width // 2, 4, stride=2, padding=1),  # (H/2, W/2)
            nn.BatchNorm2d(width // 2), nn.ReLU(),
            nn.ConvTranspose2d(width // 2, channels, 4, stride=2, padding=1),  # (H, W)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(self.fc(z).view(-1, self.width, *self.start)))


def energy(model: nn.Module, x: torch.Tensor, create_graph: bool = True) -> torch.Tensor:
    """D(x) = R(x) per sample: mean squared error between (df/dx)^T f(x) and x, shape (B,)."""
    _, rec = forward_inverse(model, x, create_graph=create_graph, check=False)
    return (rec - x).pow(2).flatten(1).mean(1)


def ebgan_losses(model: nn.Module, real: torch.Tensor, fake: torch.Tensor, margin: float) -> dict[str, torch.Tensor]:
    """The discriminator's margin loss and the energies of a real and a generated batch."""
    e_real, e_fake = energy(model, real), energy(model, fake)
    return {"d_loss": e_real.mean() + F.relu(margin - e_fake).mean(), "e_real": e_real.mean(), "e_fake": e_fake.mean()}


@dataclass
class EBGANConfig:
    model: str = "smallcnn-mean"  # the discriminator: a classifier network of the registry
    steps: int = 1500
    batch: int = 64
    latent: int = 64
    margin: float = 0.05  # m, in units of R (mean squared error per pixel of [0, 1] images)
    lr: float = 2e-4
    sample_every: int = 250
    seed: int = 0
    device: str = "auto"


def train_ebgan(config: EBGANConfig, images: torch.Tensor, progress: bool = True) -> dict:
    """Train the EBGAN on ``images`` (N, C, H, W) in [0, 1]; returns the generator, the
    discriminator (sized for the images; its logits are unused), ``samples`` {step: (16, C, H, W)}
    from a fixed code, and ``history``."""
    from invlab.models import create_model
    from invlab.training.device import resolve_device
    from invlab.training.sampling import CyclingSampler

    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    disc = create_model(config.model, input_shape=tuple(images.shape[1:])).to(device)
    gen = Generator(config.latent, image_shape=tuple(images.shape[1:])).to(device)
    opt_d = torch.optim.Adam(disc.parameters(), lr=config.lr, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(gen.parameters(), lr=config.lr, betas=(0.5, 0.999))
    sampler = CyclingSampler(len(images), config.seed + 2)
    fixed = torch.randn(16, config.latent, generator=torch.Generator().manual_seed(config.seed), device="cpu").to(
        device
    )
    samples, history = {}, []
    t0 = time.perf_counter()
    for step in tqdm(range(1, config.steps + 1), disable=not progress, desc="EBGAN", unit="step"):
        real = images[sampler.next(config.batch)].to(device)
        fake = gen(torch.randn(config.batch, config.latent, device=device))
        out = ebgan_losses(disc, real, fake.detach(), config.margin)
        opt_d.zero_grad(set_to_none=True)
        out["d_loss"].backward()
        opt_d.step()
        g_loss = energy(disc, fake).mean()  # L_G = D(G(z)): the generator lowers the energy of its images
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward(inputs=list(gen.parameters()))
        opt_g.step()
        if step % config.sample_every == 0 or step == config.steps:
            gen.eval()
            with torch.no_grad():
                samples[step] = gen(fixed).cpu()
            gen.train()
            history.append({"step": step, "d_loss": out["d_loss"].item(), "g_loss": g_loss.item(),
                            "e_real": out["e_real"].item(), "e_fake": out["e_fake"].item()})
    return {"generator": gen.eval(), "discriminator": disc.eval(), "samples": samples, "history": history,
            "train_time_s": time.perf_counter() - t0, "config": asdict(config)}


@torch.no_grad()
def score_samples(classifier: nn.Module, samples: torch.Tensor, threshold: float = 0.9,
                  preprocess=None) -> dict:
    """How a trained classifier sees generated images: the share (%) classified with
    confidence above ``threshold`` and the histogram of predicted classes."""
    x = preprocess(samples) if preprocess is not None else samples
    probs = F.softmax(classifier.eval()(x), dim=1)
    conf, pred = probs.max(1)
    return {"confident_share": 100.0 * float((conf > threshold).float().mean()),
            "class_histogram": torch.bincount(pred, minlength=probs.shape[1]).tolist(),
            "mean_confidence": float(conf.mean())}
