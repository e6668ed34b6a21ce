"""Table 1 of the paper: classic frameworks whose reconstruction has the inverse's form

    x_hat = sum_i alpha_i · d f(x)_i / dx,

computed here with one autograd vector-Jacobian product (cotangent alpha), and compared
with each framework's own reconstruction. ``W`` is a (K, D) dictionary (one atom per
row), ``x`` a (D,) signal. Every ``*_f`` function is f(x) as Table 1 defines it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch


def inverse_reconstruction(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                           alpha: torch.Tensor | None = None) -> torch.Tensor:
    """sum_i alpha_i d f_i / dx at x via one VJP; ``alpha=None`` takes alpha = f(x)."""
    fx, vjp = torch.func.vjp(f, x)
    return vjp(fx.detach() if alpha is None else alpha)[0]


# f(x) of each row of Table 1 ------------------------------------------------------------
def sparse_coding_f(W):
    return lambda x: W @ x / W.pow(2).sum(1)


def linear_f(W):  # NMF and PCA: f_i = <x, W_i>
    return lambda x: W @ x


def soft_threshold_f(W, b):
    return lambda x: torch.clamp((W @ x).abs() - b, min=0) * torch.sign(W @ x)


def hard_threshold_f(W, b):
    return lambda x: ((W @ x).abs() - b > 0).to(x.dtype) * (W @ x)


def best_basis_f(W):
    def f(x):
        winner = torch.argmax(W @ x / W.pow(2).sum(1))
        return torch.nn.functional.one_hot(winner, len(W)).to(x.dtype) * (W @ x)
    return f


def knn_f(W):
    def f(x):
        winner = torch.argmax(W @ x - W.pow(2).sum(1) / 2)
        return torch.nn.functional.one_hot(winner, len(W)).to(x.dtype) * (W @ x)
    return f


# Framework-side solvers -----------------------------------------------------------------
def ista(D: torch.Tensor, x: torch.Tensor, lam: float, steps: int = 500) -> torch.Tensor:
    """Sparse code a = argmin ||x - D^T a||^2 / 2 + lam ||a||_1 (D: (K, D)) by ISTA."""
    L = torch.linalg.matrix_norm(D, ord=2) ** 2
    a = torch.zeros(len(D), dtype=x.dtype)
    for _ in range(steps):
        z = a - D @ (D.T @ a - x) / L
        a = torch.sign(z) * torch.clamp(z.abs() - lam / L, min=0)
    return a


def nnls(W: torch.Tensor, x: torch.Tensor, steps: int = 2000) -> torch.Tensor:
    """Non-negative a = argmin ||x - W^T a||^2, a >= 0, by projected gradient."""
    L = torch.linalg.matrix_norm(W, ord=2) ** 2
    a = torch.zeros(len(W), dtype=x.dtype)
    for _ in range(steps):
        a = torch.clamp(a - W @ (W.T @ a - x) / L, min=0)
    return a


def haar_basis(n: int, dtype=torch.float64) -> torch.Tensor:
    """Orthonormal Haar wavelet basis of R^n (n a power of two), one atom per row."""
    if n < 1 or n & (n - 1):
        raise ValueError(f"the Haar basis needs a power-of-two length, got {n}")
    H = torch.ones(1, 1, dtype=dtype)
    while len(H) < n:
        top = torch.kron(H, torch.tensor([1.0, 1.0], dtype=dtype))
        bottom = torch.kron(torch.eye(len(H), dtype=dtype), torch.tensor([1.0, -1.0], dtype=dtype))
        H = torch.cat([top, bottom]) / 2 ** 0.5
    return H


@dataclass
class Table1Row:
    """One row of Table 1: its inverse-form reconstruction next to the framework's own."""

    name: str
    inverse: torch.Tensor
    framework: torch.Tensor

    @property
    def max_abs_difference(self) -> float:
        return (self.inverse - self.framework).abs().max().item()


def table1(x: torch.Tensor, W: torch.Tensor, data: torch.Tensor, threshold: float = 0.5,
           lam: float = 0.05, pca_components: int = 4) -> list[Table1Row]:
    """Every row of Table 1 on the signal ``x`` (D,), with dictionary ``W`` (K, D) where a row
    needs a learned or given dictionary, and a data matrix ``data`` (N, D) for PCA (centred
    on its mean) and k-NN (its rows are the stored examples). D must be a power of two
    (the wavelet rows use the Haar basis)."""
    D = x.numel()
    rows = []
    # sparse coding: alpha learned by ISTA on the atoms d f_i/dx = W_i / ||W_i||^2.
    atoms = W / W.pow(2).sum(1, keepdim=True)
    a = ista(atoms, x, lam)
    rows.append(Table1Row("sparse coding", inverse_reconstruction(sparse_coding_f(W), x, a), atoms.T @ a))
    # NMF: non-negative atoms and coefficients.
    Wp = W.abs()
    a = nnls(Wp, x.clamp(min=0))
    rows.append(Table1Row("NMF", inverse_reconstruction(linear_f(Wp), x, a), Wp.T @ a))
    # PCA: orthonormal principal directions, alpha = f(x): the projection onto them.
    mean = data.mean(0)
    U = torch.linalg.svd(data - mean, full_matrices=False).Vh[:pca_components]  # (k, D)
    xc = x - mean
    cov = (data - mean).T @ (data - mean)  # independent solver: eigenvectors of the scatter
    E = torch.linalg.eigh(cov).eigenvectors[:, -pca_components:]  # (D, k)
    rows.append(Table1Row("PCA", inverse_reconstruction(linear_f(U), xc), E @ (E.T @ xc)))
    # Wavelet thresholding in the orthonormal Haar basis.
    H = haar_basis(D, x.dtype)
    c = H @ x
    b = torch.full((D,), threshold, dtype=x.dtype)
    soft = torch.sign(c) * torch.clamp(c.abs() - threshold, min=0)
    rows.append(Table1Row("soft wavelet thresholding", inverse_reconstruction(soft_threshold_f(H, b), x), H.T @ soft))
    hard = c * (c.abs() > threshold)
    rows.append(Table1Row("hard wavelet thresholding", inverse_reconstruction(hard_threshold_f(H, b), x), H.T @ hard))
    # Best basis (winner takes all): the projection on the best-matching atom.
    k = torch.argmax(W @ x / W.pow(2).sum(1))
    rows.append(Table1Row("best basis (WTA)", inverse_reconstruction(best_basis_f(W), x), (W[k] @ x) * W[k]))
    # k-NN (k = 1): alpha = 1 gives the nearest stored example itself.
    nearest = data[torch.cdist(x[None], data).argmin()]
    rows.append(
        Table1Row("k-NN", inverse_reconstruction(knn_f(data), x, torch.ones(len(data), dtype=x.dtype)), nearest)
    )
    return rows
