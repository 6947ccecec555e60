"""He et al. 2015 regression: the quick preset (22 and 30 layers, 1000 updates, 2 seeds) keeps
showing that He init trains where Xavier stalls, and the signal's 2^(-L/2) at init.

Claims' bounds, from five blocks of 2 seeds of a 10-seed quick run (`python -m repro run he2015
--preset quick --seeds 10`, `python -m repro blocks results/he2015/quick.json`; 2026-12-03): He
leaves chance earlier at 22 layers by 300-700 updates (bound 50); the slower init leaves chance by
update 350-750 (bound 1000); at 30 layers the slowest He seed's lowest loss is 0.30-0.77 below half
of ln 10 (bound 0); Xavier's fastest seed leaves chance at 0.95-1.0 of the budget (bound 0.5).
The signal claims are deterministic (5 fixed nets): worst |log2(measured/theory)| 0.903 (bound 1).
"""
import math

import pytest
import torch

from conftest import per_seed
from experiments.he2015 import signal_ratio, theory

ACCURACY_FLOORS = {"he-depth22": 0.90}      # per seed: mean 0.940, worst 0.928
# per seed, quick, 10 seeds on the 2-core dev machine (2026-12-04): mean 0.156, highest 0.506 (seed 0, which
# climbs late; 8 of 10 end at chance 0.113); an earlier 10-seed measurement on another CPU: mean 0.141, highest
# 0.308. The same seed differs between CPUs by float rounding through 30 layers, so the ceiling is set above both.
XAVIER_30_CEILING = 0.6


@pytest.fixture(scope="module")
def results(quick_run):
    return quick_run("he2015")


def test_he_trains_at_22_layers(results):
    assert min(per_seed(results, "he-depth22")) >= ACCURACY_FLOORS["he-depth22"]


def test_xavier_stalls_at_30_layers(results):
    assert max(per_seed(results, "xavier-depth30")) <= XAVIER_30_CEILING


def test_he_net_is_xavier_scaled_by_sqrt2_so_the_ratio_is_exact():
    """Same draws, weights sqrt(2) apart, ReLU positively homogeneous and biases 0: the two signal
    ratios differ by exactly 2^(L/2), the theory's factor between them."""
    x = torch.rand(200, 784, generator=torch.Generator().manual_seed(0))
    for depth in (4, 10):
        ratio = signal_ratio("he", depth, x, 0) / signal_ratio("xavier", depth, x, 0)
        assert ratio == pytest.approx(theory("he", depth) / theory("xavier", depth), rel=1e-4)
        assert math.log2(ratio) == pytest.approx(depth / 2, abs=1e-3)
