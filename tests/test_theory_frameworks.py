"""Theorem 1 / Corollary 1 and the Table 1 frameworks."""

import math

import pytest
import torch

from invlab.theory import optimal_templates, spline_inverse
from invlab.theory.frameworks import haar_basis, inverse_reconstruction, table1


@pytest.mark.parametrize("C,K", [(2, 1.0), (10, 1.0), (5, 3.0)])
def test_optimal_templates_norm_and_exact_inverse(C, K):
    x = torch.randn(3, 4, dtype=torch.float64)
    x = x / x.norm()
    A = optimal_templates(x, 1, C, K)
    assert A.shape == (C, 3, 4)
    assert A.pow(2).sum().item() == pytest.approx(K)
    assert A[1].flatten() @ x.flatten() == pytest.approx(math.sqrt((C - 1) * K / C))
    assert A[0].flatten() @ x.flatten() == pytest.approx(-math.sqrt(K / (C * (C - 1))))
    torch.testing.assert_close(spline_inverse(A, x), K * x)  # Corollary 1


def test_bias_breaks_exactness():
    x = torch.randn(5, dtype=torch.float64)
    x = x / x.norm()
    A = optimal_templates(x, 0, 4, 1.0)
    b = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(spline_inverse(A, x, b) - x, A[0])


def test_optimal_templates_errors():
    with pytest.raises(ValueError, match="x / x.norm"):
        optimal_templates(torch.ones(4), 0, 3)
    with pytest.raises(ValueError, match="label"):
        optimal_templates(torch.tensor([1.0, 0.0]), 3, 3)


def test_haar_basis_is_orthonormal():
    H = haar_basis(16)
    torch.testing.assert_close(H @ H.T, torch.eye(16, dtype=torch.float64))
    with pytest.raises(ValueError, match="power-of-two"):
        haar_basis(12)


def test_table1_rows_agree():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, dtype=torch.float64, generator=g)
    W = torch.randn(6, 16, dtype=torch.float64, generator=g)
    data = torch.randn(40, 16, dtype=torch.float64, generator=g)
    rows = table1(x, W, data, threshold=0.4)
    assert [r.name for r in rows] == ["sparse coding", "NMF", "PCA", "soft wavelet thresholding",
                                      "hard wavelet thresholding", "best basis (WTA)", "k-NN"]
    for row in rows:
        assert row.max_abs_difference < 1e-8, row.name
        assert row.inverse.norm() > 0, row.name
    # soft thresholding really shrinks: smaller than the signal
    assert rows[3].inverse.norm() < x.norm()


def test_inverse_reconstruction_of_linear_map_is_transpose():
    W = torch.randn(3, 5, dtype=torch.float64)
    x = torch.randn(5, dtype=torch.float64)
    torch.testing.assert_close(inverse_reconstruction(lambda v: W @ v, x), W.T @ (W @ x))
