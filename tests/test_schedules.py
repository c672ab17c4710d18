"""Noise schedules: the α-form and the σ-form agree, derivatives are right, σ̄(0) = 0."""

import math

import pytest
import torch

from seqdiff.diffusion import (Cosine, DiscreteSchedule, Geometric, Linear, LogLinear,
                               PerTokenPolynomial, Polynomial, build_schedule)

SCALAR = [LogLinear(1e-3), LogLinear(0.0), Geometric(1e-4, 20.0), Geometric(1e-3, 5.0), Linear(), Cosine(),
          Polynomial(2.0), Polynomial(0.5)]


@pytest.mark.parametrize("sch", SCALAR, ids=repr)
def test_forms_are_consistent(sch):
    t = torch.linspace(0.01, 0.99, 41, dtype=torch.float64)
    a = sch.alpha(t)
    assert torch.allclose(a, torch.exp(-sch.sigma_bar(t)), rtol=1e-12, atol=1e-14)
    assert torch.allclose(sch.one_minus_alpha(t), 1 - a, rtol=1e-10, atol=1e-14)
    # α' and σ by autograd
    tg = t.clone().requires_grad_(True)
    (da,) = torch.autograd.grad(sch.alpha(tg).sum(), tg)
    assert torch.allclose(sch.alpha_prime(t), da, rtol=1e-9, atol=1e-12)
    tg = t.clone().requires_grad_(True)
    (ds,) = torch.autograd.grad(sch.sigma_bar(tg).sum(), tg)
    assert torch.allclose(sch.sigma(t), ds, rtol=1e-9, atol=1e-12)
    assert torch.allclose(sch.loss_weight(t), -sch.alpha_prime(t) / (1 - a), rtol=1e-9)
    # monotone, starts clean
    assert (a[1:] < a[:-1]).all()
    zero = torch.zeros(1, dtype=torch.float64)
    assert float(sch.sigma_bar(zero)) == 0.0 and float(sch.alpha(zero)) == 1.0


def test_alpha_form_schedules_end_fully_noised():
    one = torch.ones(1, dtype=torch.float64)
    for sch in [Linear(), Cosine(), Polynomial(3.0), LogLinear(0.0)]:
        assert float(sch.alpha(one)) == pytest.approx(0.0, abs=1e-15)
    assert float(LogLinear(1e-3).alpha(one)) == pytest.approx(1e-3)
    assert float(Geometric(1e-4, 20).sigma_bar(one)) == pytest.approx(20 - 1e-4)


def test_one_minus_alpha_has_no_cancellation_near_zero():
    t = torch.tensor([1e-12], dtype=torch.float64)
    assert float(LogLinear(1e-3).one_minus_alpha(t)) == pytest.approx((1 - 1e-3) * 1e-12, rel=1e-12)
    assert float(Geometric(1e-4, 20).one_minus_alpha(t)) > 0


def test_per_token_polynomial_shapes_and_values():
    sch = PerTokenPolynomial(vocab_size=5, mask_id=4, init_exponent=1.0)
    with torch.no_grad():
        sch.log_w.copy_(torch.log(torch.tensor([0.5, 1.0, 2.0, 3.0, 1.0])))
    t = torch.tensor([0.25, 0.5], dtype=torch.float64)
    a = sch.alpha(t)
    assert a.shape == (2, 5)
    expected = 1 - t[:, None] ** torch.tensor([0.5, 1.0, 2.0, 3.0, 1.0], dtype=torch.float64)
    assert torch.allclose(a, expected)
    x0 = torch.tensor([[0, 3], [2, 2]])
    assert torch.allclose(sch.alpha_at(x0, t), torch.stack([expected[0, [0, 3]], expected[1, [2, 2]]]))
    # gradient reaches log w
    sch.alpha(t).sum().backward()
    assert sch.log_w.grad is not None and sch.log_w.grad[:4].abs().min() > 0


def test_discrete_schedule_is_a_product_of_steps():
    sch = DiscreteSchedule(50, "cosine")
    assert sch.alpha_bar[0] == 1.0
    assert torch.allclose(sch.alpha_bar[1:], torch.cumprod(1 - sch.betas, 0))
    assert (sch.alpha_bar[1:] <= sch.alpha_bar[:-1]).all()
    assert float(sch.alpha_bar[-1]) < 1e-2
    k = torch.tensor([0, 7, 50])
    assert torch.equal(sch.step_of(sch.time(k)), k)
    lin = DiscreteSchedule(10, "linear")
    assert torch.allclose(lin.alpha_bar[:-1], 1 - torch.arange(10, dtype=torch.float64) / 10)


def test_build_schedule_round_trip_and_errors():
    for sch in [LogLinear(1e-2), Geometric(1e-3, 7.0), Cosine(), Polynomial(1.5), DiscreteSchedule(20, "linear")]:
        again = build_schedule(sch.to_dict())
        assert type(again) is type(sch) and again.to_dict() == sch.to_dict()
    with pytest.raises(ValueError, match="unknown schedule"):
        build_schedule("nope")
    with pytest.raises(ValueError, match="bad arguments"):
        build_schedule({"name": "loglinear", "epsilon": 1})
    with pytest.raises(ValueError):
        LogLinear(1.5)
    with pytest.raises(ValueError):
        Geometric(1.0, 0.5)
    assert math.isfinite(float(LogLinear(1e-3).sigma_bar(torch.ones(1))))
