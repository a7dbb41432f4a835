import math

import pytest
import torch

from hadamrnn import fwht, sylvester
from hadamrnn.hadamard import block_hadamard, check_power_of_two

SIZES = [2 ** k for k in range(0, 11)]


@pytest.mark.parametrize("n", SIZES)
def test_sylvester_is_symmetric_pm1_and_orthogonal_up_to_n(n):
    h = sylvester(n, dtype=torch.float64)
    assert set(h.unique().tolist()) <= {-1.0, 1.0}
    assert torch.equal(h, h.T)
    assert torch.equal(h @ h, n * torch.eye(n, dtype=torch.float64))


def test_sylvester_entries_follow_popcount_rule():
    n = 32
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    parity = torch.tensor([[bin(a & b).count("1") % 2 for b in range(n)] for a in range(n)])
    assert torch.equal(sylvester(n), (1 - 2 * parity).float())


@pytest.mark.parametrize("bad, nearest", [(3, "2 and 4"), (100, "64 and 128"), (1000, "512 and 1024")])
def test_non_power_of_two_names_nearest_sizes(bad, nearest):
    with pytest.raises(ValueError, match=nearest):
        sylvester(bad)


def test_invalid_sizes_are_rejected():
    with pytest.raises(ValueError):
        check_power_of_two(0)
    with pytest.raises(TypeError):
        check_power_of_two(4.0)
    with pytest.raises(ValueError, match="larger than n"):
        fwht(torch.zeros(3, 8), block=16)
    with pytest.raises(TypeError, match="floating-point"):
        fwht(torch.zeros(3, 8, dtype=torch.int64))


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize("n", [1, 2, 8, 64, 512])
def test_fwht_equals_dense_product_for_every_block(n, dtype, tol):
    x = torch.randn(3, 5, n, dtype=dtype)
    for j in range(int(math.log2(n)) + 1):
        m = 2 ** j
        for normalized in (True, False):
            dense = block_hadamard(n, m, dtype=dtype) / (math.sqrt(m) if normalized else 1.0)
            expected = x @ dense.T
            got = fwht(x, block=m, normalized=normalized)
            assert got.dtype == dtype and got.shape == x.shape
            assert torch.allclose(got, expected, atol=tol * max(1.0, math.sqrt(m)), rtol=0)
    assert torch.equal(fwht(x), fwht(x, block=n))


def test_fwht_is_exact_on_integers_unnormalized():
    x = torch.randint(-1000, 1000, (4, 256)).double()
    assert torch.equal(fwht(x, normalized=False), x @ sylvester(256, torch.float64))


@pytest.mark.parametrize("block", [None, 4, 1])
def test_fwht_gradcheck_float64(block):
    x = torch.randn(2, 3, 16, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: fwht(t, block=block), (x,))
    assert torch.autograd.gradgradcheck(lambda t: fwht(t, block=block), (x,))


def test_fwht_gradient_matches_dense_gradient():
    n, m = 64, 8
    x = torch.randn(5, n, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(5, n, dtype=torch.float64)
    (fwht(x, block=m) * weight).sum().backward()
    dense = block_hadamard(n, m, dtype=torch.float64) / math.sqrt(m)
    assert torch.allclose(x.grad, weight @ dense, atol=1e-12)


def test_fwht_accepts_non_contiguous_input():
    x = torch.randn(16, 6).T  # (6, 16), non-contiguous
    assert torch.allclose(fwht(x), x @ (sylvester(16) / 4).T, atol=1e-6)
