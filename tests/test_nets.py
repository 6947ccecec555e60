"""Init schemes: each one's statistics against its textbook formula, on large tensors.

A (500, 400) weight has 200,000 entries: the sample variance's relative standard error is
sqrt(2 / 200000) = 0.3%, so 2% tolerances are over 6 standard errors wide yet still tell 1/n_in
from 2/n_in or 2/(n_in + n_out).
"""
import math

import pytest
import torch

from repro.config import TrialConfig
from repro.nets import build_mlp, init_variance, init_weight

FAN_OUT, FAN_IN = 500, 400  # a Linear weight is (out, in): fan-in is its second dimension

# scheme -> the variance the references (and torch's docs) state for it
FORMULAS = {
    "xavier": 1 / FAN_IN,                 # N(0, 1/n_in)
    "he": 2 / FAN_IN,                     # N(0, 2/n_in)
    "glorot": 2 / (FAN_IN + FAN_OUT),     # torch's xavier_normal_
    "normal:0.05": 0.05 ** 2,
    "normal:1": 1.0,
}


def sampled(scheme: str, shape=(FAN_OUT, FAN_IN), seed: int = 0) -> torch.Tensor:
    weight = torch.empty(shape)
    init_weight(weight, scheme, torch.Generator().manual_seed(seed))
    return weight


@pytest.mark.parametrize("scheme", sorted(FORMULAS))
def test_gaussian_inits_have_the_stated_variance_and_zero_mean(scheme):
    w = sampled(scheme).double()
    variance = FORMULAS[scheme]
    assert w.var().item() == pytest.approx(variance, rel=0.02)
    assert abs(w.mean().item()) < 5 * math.sqrt(variance / w.numel())  # 5 standard errors


@pytest.mark.parametrize("scheme", sorted(FORMULAS))
def test_gaussian_inits_are_normal_not_uniform(scheme):
    # Within one sd: 68.3% for a normal, 57.7% for a uniform of the same variance.
    w = sampled(scheme).double()
    assert (w.abs() < w.std()).double().mean().item() == pytest.approx(0.6827, abs=0.005)


@pytest.mark.parametrize("scheme", sorted(FORMULAS))
def test_init_variance_states_each_scheme(scheme):
    assert init_variance(scheme, FAN_IN, FAN_OUT) == pytest.approx(FORMULAS[scheme], rel=1e-12)


def test_fan_in_of_a_conv_kernel_counts_channels_times_window():
    w = sampled("he", shape=(64, 8, 5, 5))  # 8 input channels, 5x5 window: fan-in 200
    assert w.double().var().item() == pytest.approx(2 / 200, rel=0.03)


def test_zeros_and_constant_are_exact():
    assert torch.count_nonzero(sampled("zeros")) == 0
    assert torch.equal(sampled("constant:0.3"), torch.full((FAN_OUT, FAN_IN), 0.3))
    assert init_variance("zeros", FAN_IN, FAN_OUT) == init_variance("constant:0.3", FAN_IN, FAN_OUT) == 0.0


def test_same_generator_seed_same_weights_other_seed_differs():
    assert torch.equal(sampled("he", seed=3), sampled("he", seed=3))
    assert not torch.equal(sampled("he", seed=3), sampled("he", seed=4))


def test_unknown_scheme_is_an_error():
    with pytest.raises(ValueError, match="unknown init scheme 'uniform'"):
        init_weight(torch.empty(3, 3), "uniform")
    with pytest.raises(ValueError, match="unknown init scheme"):
        init_variance("uniform", 3, 3)


def test_mlp_inits_every_layer_by_its_own_fan_in_including_the_output():
    cfg = TrialConfig(widths=(300, 200), init="xavier")
    model = build_mlp(cfg, generator=torch.Generator().manual_seed(0))
    for name, fan_in in (("fc1", 784), ("fc2", 300), ("fc3", 200)):
        layer = getattr(model, name)
        assert layer.weight.double().var().item() == pytest.approx(1 / fan_in, rel=0.1), name
        assert torch.count_nonzero(layer.bias) == 0, name
