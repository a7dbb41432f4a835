import pytest
import torch

from hadamrnn import FullPrecision, SignQuantizer, UniformQuantizer, get_quantizer, sign


def test_sign_maps_zero_to_plus_one_and_passes_gradient_through():
    w = torch.tensor([-2.0, -0.0, 0.0, 1e-30, 3.0], requires_grad=True)
    q = sign(w)
    assert q.tolist() == [-1.0, 1.0, 1.0, 1.0, 1.0]
    g = torch.randn(5)
    q.backward(g)
    assert torch.equal(w.grad, g)  # identity, no clipping even at |w| > 1
    assert sign.bits == 1 and sign.name == "sign"


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_uniform_levels_follow_the_specified_grid(bits):
    w = torch.randn(200, 30, dtype=torch.float64) * 3
    quantizer = UniformQuantizer(bits)
    q = quantizer(w)
    half = 2 ** (bits - 1)
    alpha = w.abs().max()
    expected = torch.clamp(torch.round(w * half / alpha), -half, half - 1) * alpha / half
    assert torch.equal(q, expected)
    assert q.unique().numel() <= 2 ** bits
    levels, step = quantizer.levels(w)
    assert levels.dtype == torch.int32
    assert int(levels.min()) >= -half and int(levels.max()) <= half - 1
    assert torch.equal(levels.double() * step, q)
    assert quantizer.bits == bits


def test_uniform_hits_every_level_on_a_dense_grid():
    w = torch.linspace(-1, 1, 10001)
    assert UniformQuantizer(4)(w).unique().numel() == 16


def test_uniform_straight_through_gradient_is_identity():
    w = torch.randn(7, 5, requires_grad=True)
    g = torch.randn(7, 5)
    UniformQuantizer(4)(w).backward(g)
    assert torch.equal(w.grad, g)


def test_uniform_keeps_an_all_zero_tensor_at_zero():
    assert torch.equal(UniformQuantizer(4)(torch.zeros(3, 3)), torch.zeros(3, 3))


def test_full_precision_is_identity():
    w = torch.randn(4, 4, requires_grad=True)
    assert FullPrecision()(w) is w
    assert get_quantizer(None).bits is None


def test_get_quantizer_from_bit_width():
    assert isinstance(get_quantizer(1), SignQuantizer)
    assert get_quantizer(4) == UniformQuantizer(4)
    q = UniformQuantizer(3)
    assert get_quantizer(q) is q
    for bad in (0, 17, 2.5, True):
        with pytest.raises(ValueError, match="bits"):
            get_quantizer(bad)
