import math

import pytest
import torch
from torch import nn

from hadamrnn import SignedHadamard, hadamard_orthogonal, sylvester
from hadamrnn.hadamard import block_hadamard
from hadamrnn.recurrent import cyclic_signs, distinct_eigenvalues, init_bound, latent, parametrization

SIZES = [2 ** k for k in range(1, 11)]


def _latent_with_zeros(n, dtype):
    u = torch.randn(n, dtype=dtype)
    u[:: max(1, n // 4)] = 0.0  # exact zeros must still give a full-rank ±1 sign vector
    return u


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-6), (torch.float64, 1e-12)])
@pytest.mark.parametrize("n", SIZES)
def test_w_is_orthogonal_with_the_exact_entries_for_every_block(n, dtype, tol):
    u = _latent_with_zeros(n, dtype)
    for j in range(int(math.log2(n)) + 1):
        m = 2 ** j
        W = SignedHadamard(n, block=m).to(dtype)(u)
        assert W.dtype == dtype
        assert (W.T @ W - torch.eye(n, dtype=dtype)).abs().max() <= tol
        nonzero = W != 0
        assert int(nonzero.sum()) == n * m  # fraction m / n of the n^2 entries
        magnitude = torch.tensor(1.0 / math.sqrt(m), dtype=dtype)
        assert torch.equal(W[nonzero].abs(), magnitude.expand(n * m))
        # The zero pattern is that of I ⊗ H_m, the signs those of diag(sign u) H.
        expected = torch.where(u >= 0, 1.0, -1.0).to(dtype)[:, None] * block_hadamard(n, m, dtype) * magnitude
        assert torch.equal(W, expected)


def test_full_block_is_hadamrnn():
    n = 64
    u = torch.randn(n, dtype=torch.float64)
    assert torch.equal(SignedHadamard(n).double()(u), SignedHadamard(n, block=n).double()(u))
    assert torch.equal(SignedHadamard(n).double()(u),
                       torch.sign(u)[:, None] * sylvester(n, torch.float64) / 8)


@pytest.mark.parametrize("block", [None, 8, 2])
def test_matvec_uses_the_transform_and_equals_dense(block):
    n = 128
    p = SignedHadamard(n, block).double()
    u = _latent_with_zeros(n, torch.float64)
    h = torch.randn(4, 3, n, dtype=torch.float64)
    W = p(u)
    assert torch.allclose(p.matvec(u, h), h @ W.T, atol=1e-12)
    assert torch.allclose(p.matvec_transposed(u, h), h @ W, atol=1e-12)


@pytest.mark.parametrize("block", [None, 16])
def test_latent_gradient_is_exactly_the_straight_through_gradient(block):
    """d loss / d u_i = sum_j (d loss / d W_ij) * B_ij, B = (I ⊗ H_m)/sqrt(m), by both paths."""
    n = 64
    p = SignedHadamard(n, block).double()
    u = torch.randn(n, dtype=torch.float64)
    h = torch.randn(5, n, dtype=torch.float64)
    target = torch.randn(5, n, dtype=torch.float64)

    def loss_of(Wh):
        return ((torch.tanh(Wh) - target) ** 2).sum()

    # Reference: W built from the signs as a leaf; its gradient pushed through diag(s) by hand.
    W_leaf = p(u).detach().requires_grad_(True)
    loss_of(h @ W_leaf.T).backward()
    basis = block_hadamard(n, block, torch.float64) / math.sqrt(p.block)
    expected = (W_leaf.grad * basis).sum(dim=1)

    for product in (lambda uu: h @ p(uu).T, lambda uu: p.matvec(uu, h)):
        uu = u.clone().requires_grad_(True)
        loss_of(product(uu)).backward()
        assert torch.allclose(uu.grad, expected, rtol=0, atol=1e-10)


def test_gradient_flows_for_latent_entries_exactly_zero():
    p = SignedHadamard(8).double()
    u = torch.zeros(8, dtype=torch.float64, requires_grad=True)
    p.matvec(u, torch.ones(8, dtype=torch.float64)).sum().backward()
    assert u.grad.abs().sum() > 0


def test_hadamard_orthogonal_constrains_a_plain_linear():
    g = torch.Generator().manual_seed(5)
    rec = hadamard_orthogonal(nn.Linear(32, 32, bias=False), block=8, generator=g)
    u = latent(rec)
    assert u.shape == (32,) and isinstance(u, nn.Parameter)
    bound = init_bound(32)
    assert u.abs().max() <= bound and u.abs().max() > bound / 2
    assert torch.equal(rec.weight, parametrization(rec)(u))
    # Seedable: the same generator seed gives the same latent.
    again = hadamard_orthogonal(nn.Linear(32, 32, bias=False), block=8, generator=torch.Generator().manual_seed(5))
    assert torch.equal(latent(again), u)
    # The parametrized module computes with W.
    h = torch.randn(3, 32)
    assert torch.allclose(rec(h), parametrization(rec).matvec(u, h), atol=1e-6)


def test_assigning_a_signed_hadamard_weight_round_trips_and_others_are_refused():
    rec = hadamard_orthogonal(nn.Linear(16, 16, bias=False), block=4)
    target = SignedHadamard(16, 4)(torch.randn(16))
    with torch.no_grad():
        rec.weight = target
    assert torch.equal(rec.weight, target)
    with pytest.raises(ValueError, match="not of the form"):
        with torch.no_grad():
            rec.weight = torch.randn(16, 16)


def test_flip_count_since_reference():
    p = SignedHadamard(16)
    u = torch.ones(16)
    p.set_reference(u)
    assert p.flips(u) == 0
    u[[1, 5, 7]] = -0.5
    assert p.flips(u) == 3
    u[1] = 0.0  # sign(0) = +1: back to the reference sign
    assert p.flips(u) == 2
    p.set_reference(u)
    assert p.flips(u) == 0
    assert "reference" in p.state_dict()


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="Nearest valid sizes: 64 and 128"):
        SignedHadamard(100)
    with pytest.raises(ValueError, match="block"):
        SignedHadamard(16, block=6)
    with pytest.raises(ValueError, match="square"):
        hadamard_orthogonal(nn.Linear(8, 16, bias=False))
    with pytest.raises(ValueError, match="hadamard_orthogonal first"):
        parametrization(nn.Linear(4, 4))


def _reference_distinct(W: torch.Tensor, tol: float = 1e-7) -> int:
    """Distinct eigenvalues of a dense matrix from its complex eigenvalues (no symmetry used)."""
    values = torch.linalg.eigvals(W.double()).numpy()
    kept: list[complex] = []
    for value in values:
        if all(abs(value - other) > tol for other in kept):
            kept.append(value)
    return len(kept)


def _random_signs(n: int, seed: int) -> torch.Tensor:
    return torch.where(torch.rand(n, generator=torch.Generator().manual_seed(seed)) < 0.5, 1.0, -1.0)


@pytest.mark.parametrize("n, block", [(16, None), (32, None), (64, None), (64, 16), (64, 8), (32, 4), (16, 2), (8, 1)])
def test_distinct_eigenvalues_is_that_of_the_dense_w(n, block):
    counts = set()
    for seed in range(6):
        signs = _random_signs(n, seed)
        W = SignedHadamard(n, block).double()(signs.double())
        assert distinct_eigenvalues(signs, block) == _reference_distinct(W)
        counts.add(distinct_eigenvalues(signs, block))
    assert len(counts) > 1 or block in (1, 2)  # the draws differ, so the check saw more than one case


def test_a_repeated_eigenvalue_is_a_dimension_the_orbit_of_one_input_never_reaches():
    """The orbit ``W^k v`` of a generic vector spans exactly ``distinct_eigenvalues`` dimensions."""
    n = 64
    seen = set()
    for seed in range(6):
        signs = _random_signs(n, seed)
        W = SignedHadamard(n).double()(signs.double())
        v = torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        orbit = [v]
        for _ in range(4 * n):
            orbit.append(W @ orbit[-1])
        singular = torch.linalg.svdvals(torch.stack(orbit, 1))
        rank = distinct_eigenvalues(signs)
        seen.add(rank)
        assert singular[rank - 1] > 1e-6 * singular[0]
        if rank < n:
            assert singular[rank] < 1e-10 * singular[0]
    assert min(seen) < n  # i.i.d. signs did repeat an eigenvalue in some draw


@pytest.mark.parametrize("n", [8, 32, 64, 256])
def test_cyclic_signs_make_the_full_hadamard_w_cyclic(n):
    for seed in range(4):
        signs = _random_signs(n, seed)
        chosen = cyclic_signs(signs)
        assert set(chosen.tolist()) <= {-1.0, 1.0} and chosen.shape == (n,)
        assert distinct_eigenvalues(chosen) == n
        assert torch.equal(cyclic_signs(signs), chosen)  # a function of its input
        assert torch.equal(cyclic_signs(chosen), chosen)  # already cyclic: kept


@pytest.mark.parametrize("n, block", [(128, 16), (64, 8), (64, 4)])
def test_cyclic_signs_for_blocks_add_eigenvalues(n, block):
    for seed in range(3):
        signs = _random_signs(n, seed)
        chosen = cyclic_signs(signs, block)
        assert distinct_eigenvalues(chosen, block) >= distinct_eigenvalues(signs, block)
        assert distinct_eigenvalues(chosen[:block]) == block  # the first block has nothing to avoid


def test_cyclic_init_keeps_the_latent_magnitudes_and_validates():
    torch.manual_seed(0)
    plain = hadamard_orthogonal(nn.Linear(64, 64, bias=False))
    torch.manual_seed(0)
    cyclic = hadamard_orthogonal(nn.Linear(64, 64, bias=False), signs="cyclic")
    u, v = latent(plain), latent(cyclic)
    torch.testing.assert_close(u.abs(), v.abs(), rtol=0, atol=torch.finfo(u.dtype).tiny)
    assert distinct_eigenvalues(torch.sign(v.detach())) == 64
    assert parametrization(cyclic).flips(v) == 0  # the reference is the chosen signs
    with pytest.raises(ValueError, match="signs must be one of"):
        hadamard_orthogonal(nn.Linear(8, 8, bias=False), signs="orthogonal")
    with pytest.raises(ValueError, match="too slow above 2048; use a block size <= 2048"):
        cyclic_signs(torch.ones(4096))
