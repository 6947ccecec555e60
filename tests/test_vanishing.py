"""Section 1 regression: the quick preset (1000 iterations, 2 seeds) must keep showing the phenomenon.

Thresholds from 10 seeds of the quick preset (`python -m repro run vanishing --preset quick --seeds 10`),
per seed; measured mean and worst case beside each.
"""
import pytest

from conftest import per_seed
from experiments.vanishing import chain_rule_error, sigmoid_derivative_peak

import torch

# variant -> lowest acceptable final test accuracy of any seed
ACCURACY_FLOORS = {
    "relu-he": 0.92,              # mean 0.940, worst 0.931
    "relu-n0.01": 0.65,           # mean 0.793, worst 0.725 (escapes the plateau late: wide spread)
    "sigmoid-xavier": 0.65,       # mean 0.768, worst 0.726
}
SIGMOID_SMALL_INIT_CEILING = 0.2  # mean 0.112, worst (highest) 0.1135: no learning


@pytest.fixture(scope="module")
def results(quick_run):
    return quick_run("vanishing")


@pytest.mark.parametrize("variant", sorted(ACCURACY_FLOORS))
def test_learning_variants_reach_their_floor(results, variant):
    assert min(per_seed(results, variant)) >= ACCURACY_FLOORS[variant]


def test_sigmoid_with_small_init_does_not_learn(results):
    assert max(per_seed(results, "sigmoid-n0.01")) <= SIGMOID_SMALL_INIT_CEILING


def test_gradient_ratio_bands(results):
    # sigmoid + xavier, depth 10: mean 1.41e-6, highest 1.62e-6; relu + he at depths 5-15: 1.73 to 2.47
    assert max(per_seed(results, "sigmoid-xavier-depth10", "grad_ratio_first_last")) < 1e-4
    for depth in (5, 10, 15):
        ratios = per_seed(results, f"relu-he-depth{depth}", "grad_ratio_first_last")
        assert all(1.0 <= r <= 4.0 for r in ratios), ratios


def test_every_trial_logged_every_layer(results):
    for trial in results.trials:
        assert set(trial.history[-1]["grad_norm"]) == set(trial.layers) | {"total"}


def test_notes_confirmation_checks_are_computed():
    x, value = sigmoid_derivative_peak(torch.linspace(-3, 3, 601, dtype=torch.float64))
    assert abs(x) < 1e-12 and value == pytest.approx(0.25, abs=1e-15)
    assert chain_rule_error() < 1e-12
