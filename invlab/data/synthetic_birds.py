"""A labelled **synthetic** stand-in for Bird10: ten species of bird-like songs in forest noise.

Not real data. It exists so that tests, demos and the default Bird10 run work without the
BirdLifeCLEF recordings; every output made from it is labelled "synthetic".

Each species has a syllable shape (up / down frequency sweeps, trills, harmonic stacks,
chirp pairs, warbles), a pitch range, a syllable length and a tempo. Each recording draws
an individual bird (pitch and tempo offsets), sings bouts separated by silences, and sits
in forest-like background noise (brown + pink noise, random rustles) with songs of other
species at lower level. Species are grouped in pairs that share a shape and differ only
in pitch and tempo, and songs have gaps, so segments can be ambiguous: a supervised
baseline stays well below 100 %.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from invlab.data.audio import Recording


@dataclass(frozen=True)
class Species:
    name: str
    shape: str          # "up", "down", "trill", "harmonic", "chirps"
    f_low: float        # Hz
    f_high: float       # Hz
    syllable_s: float   # syllable duration
    rate: float         # syllables per second within a bout


SPECIES = (
    Species("synthetic-upsweep-low", "up", 2000, 3800, 0.12, 5.0),
    Species("synthetic-upsweep-high", "up", 2600, 4600, 0.10, 6.5),
    Species("synthetic-downsweep-slow", "down", 3000, 5200, 0.20, 3.0),
    Species("synthetic-downsweep-fast", "down", 3400, 5600, 0.14, 4.5),
    Species("synthetic-trill-low", "trill", 2400, 3200, 0.30, 2.0),
    Species("synthetic-trill-high", "trill", 2900, 3900, 0.25, 2.6),
    Species("synthetic-harmonic-low", "harmonic", 900, 1400, 0.25, 2.5),
    Species("synthetic-harmonic-high", "harmonic", 1200, 1800, 0.18, 3.5),
    Species("synthetic-chirps-slow", "chirps", 3500, 6000, 0.16, 3.0),
    Species("synthetic-chirps-fast", "chirps", 3900, 6600, 0.12, 4.2),
)


def _syllable(sp: Species, pitch: float, n: int, sr: int, g: torch.Generator) -> torch.Tensor:
    """One syllable of ``n`` samples: (n,)."""
    t = torch.arange(n, dtype=torch.float64) / sr
    u = t / t[-1].clamp(min=1e-9)  # 0 -> 1 over the syllable
    lo, hi = sp.f_low * pitch, sp.f_high * pitch
    if sp.shape == "up":
        freq = lo + (hi - lo) * u ** 1.5
    elif sp.shape == "down":
        freq = hi - (hi - lo) * u
    elif sp.shape == "trill":
        fm = 25 + 15 * torch.rand((), generator=g, dtype=torch.float64)
        freq = (lo + hi) / 2 + (hi - lo) / 2 * torch.sin(2 * math.pi * fm * t)
    elif sp.shape == "harmonic":
        freq = lo + (hi - lo) * torch.rand((), generator=g, dtype=torch.float64) + 40 * torch.sin(2 * math.pi * 6 * t)
    else:  # chirps: two fast up-sweeps
        freq = lo + (hi - lo) * ((2 * u) % 1.0)
    phase = 2 * math.pi * torch.cumsum(freq, 0) / sr
    if sp.shape == "harmonic":
        wave = sum(torch.sin(k * phase) / k for k in range(1, 5))
    else:
        wave = torch.sin(phase)
    return wave * torch.hann_window(n, periodic=False, dtype=torch.float64)


def _song(
    sp: Species, length: int, sr: int, g: torch.Generator, level: float, pitch: float, tempo: float
) -> torch.Tensor:
    """Bouts of syllables separated by silences, over ``length`` samples."""
    out = torch.zeros(length, dtype=torch.float64)
    n_syl = max(16, int(sp.syllable_s * sr))
    t = float(torch.rand((), generator=g)) * 0.8
    while t < length / sr:
        bout_end = t + 0.6 + 1.8 * float(torch.rand((), generator=g))
        while t < min(bout_end, length / sr):
            start = int(t * sr)
            n = min(n_syl, length - start)
            if n > 16:
                amp = level * (0.6 + 0.4 * float(torch.rand((), generator=g)))
                out[start:start + n] += amp * _syllable(sp, pitch, n_syl, sr, g)[:n]
            t += 1.0 / (sp.rate * tempo) * (0.85 + 0.3 * float(torch.rand((), generator=g)))
        t = bout_end + 0.4 + 1.6 * float(torch.rand((), generator=g))  # silence between bouts
    return out


def _forest_noise(length: int, sr: int, g: torch.Generator) -> torch.Tensor:
    """Brown (1/f^2) and pink (1/f) noise shaped in the frequency domain above 100 Hz, plus rustles."""
    n_fft = 1 << (length - 1).bit_length()  # a power of two keeps the FFTs fast
    f = torch.fft.rfftfreq(n_fft, 1 / sr).to(torch.float64).clamp(min=100.0)
    white = torch.fft.rfft(torch.randn(n_fft, generator=g, dtype=torch.float64))
    brown = torch.fft.irfft(white * 100.0 / f, n=n_fft)[:length]
    pink = torch.fft.irfft(white.roll(1) * (100.0 / f).sqrt(), n=n_fft)[:length]
    noise = brown / brown.std().clamp(min=1e-9) + pink / pink.std().clamp(min=1e-9)
    n = sr // 10
    for _ in range(int(length / sr * 2)):  # short broadband rustles
        s = int(torch.randint(0, max(1, length - n), (), generator=g))
        m = min(n, length - s)
        noise[s : s + m] += (
            0.7 * torch.randn(m, generator=g, dtype=torch.float64) * torch.hann_window(m, dtype=torch.float64)
        )
    return noise / 2


def synthetic_recording(species: int, seed: int, sample_rate: int = 44_100, seconds: float | None = None,
                        snr_db: float | None = None) -> Recording:
    """One synthetic recording of ``species`` (0-9), fully determined by (species, seed)."""
    g = torch.Generator().manual_seed(10_007 * seed + species)
    seconds = seconds if seconds is not None else 4.0 + 4.0 * float(torch.rand((), generator=g))
    length = int(seconds * sample_rate)
    pitch = 0.9 + 0.2 * float(torch.rand((), generator=g))     # individual variation
    tempo = 0.8 + 0.4 * float(torch.rand((), generator=g))
    snr_db = snr_db if snr_db is not None else -6.0 + 10.0 * float(torch.rand((), generator=g))
    sp = SPECIES[species]
    song = _song(sp, length, sample_rate, g, 1.0, pitch, tempo)
    song_rms = song[song != 0].pow(2).mean().sqrt() if (song != 0).any() else torch.tensor(1.0)
    noise = _forest_noise(length, sample_rate, g)
    noise = noise * song_rms / 10 ** (snr_db / 20)
    for _ in range(1 + int(torch.randint(0, 2, (), generator=g))):  # other species, quieter
        other = int(torch.randint(0, len(SPECIES) - 1, (), generator=g))
        other += other >= species
        level = 0.3 + 0.4 * float(torch.rand((), generator=g))
        noise += _song(
            SPECIES[other], length, sample_rate, g, level, 0.9 + 0.2 * float(torch.rand((), generator=g)), 1.0
        )
    wave = song + noise
    wave = 0.5 * wave / wave.abs().max().clamp(min=1e-9)
    return Recording(wave.float(), sample_rate, species, f"{sp.name}/seed{seed}")


@functools.lru_cache(maxsize=2)
def synthetic_bird10(
    recordings_per_species: int = 12, sample_rate: int = 44_100, seed: int = 0
) -> tuple[Recording, ...]:
    """The synthetic data set: ``recordings_per_species`` recordings of each of the 10 species
    (cached: the same arguments return the same, read-only, recordings)."""
    return tuple(synthetic_recording(s, seed * 1000 + k, sample_rate)
            for s in range(len(SPECIES)) for k in range(recordings_per_species))
