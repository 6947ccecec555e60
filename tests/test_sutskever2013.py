"""Sutskever et al. 2013 regression: the quick preset (1000 updates, 2 seeds) keeps showing momentum's
gain, NAG's stability over CM at large momentum, and the poor init no momentum rescues.

Claims' bounds: every claim held in all five blocks of 2 seeds of a 10-seed quick run
(`python -m repro run sutskever2013 --preset quick --seeds 10`, then `python -m repro blocks
results/sutskever2013/quick.json`; 2026-12-03): SGD at lr 0.01 minus NAG 0.99, 2.02-2.07 nats
(bound 1); CM/NAG at 0.995, 2.53-5.61 (bound 2); that ratio over the one at 0.9, 2.49-5.38 (1.5);
the poor init's loss over ln 10, 0.999-1.001 (0.9); ln 10 minus SGD lr 1's loss, 2.00-2.07 (1).
Floors below: per seed, the same 10 seeds.
"""
import pytest

from conftest import per_seed

ACCURACY_FLOORS = {
    "nag-0.99": 0.90,    # mean 0.938, worst 0.934
    "nag-0.995": 0.88,   # mean 0.938, worst 0.926
    "sgd-1": 0.80,       # mean 0.916, worst 0.880
}
CHANCE_CEILINGS = {
    "cm-0.99-poor-init": 0.2,    # mean 0.104, highest 0.114
    "nag-0.99-poor-init": 0.2,   # mean 0.106, highest 0.114
    "sgd-0.01": 0.6,             # mean 0.253, highest 0.391 (barely moving)
}


@pytest.fixture(scope="module")
def results(quick_run):
    return quick_run("sutskever2013")


@pytest.mark.parametrize("variant", sorted(ACCURACY_FLOORS))
def test_trained_variants_reach_their_floor(results, variant):
    assert min(per_seed(results, variant)) >= ACCURACY_FLOORS[variant]


@pytest.mark.parametrize("variant", sorted(CHANCE_CEILINGS))
def test_stalled_variants_stay_low(results, variant):
    assert max(per_seed(results, variant)) <= CHANCE_CEILINGS[variant]


def test_nesterov_and_momentum_are_torchs():
    from repro.config import TrialConfig
    from repro.nets import build_model
    from repro.optim import make_optimizer
    for name, nesterov in (("momentum", False), ("nesterov", True)):
        opt = make_optimizer(build_model(TrialConfig(widths=(4,))), TrialConfig(optimizer=name, momentum=0.99))
        assert opt.param_groups[0]["nesterov"] is nesterov and opt.param_groups[0]["momentum"] == 0.99
