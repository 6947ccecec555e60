"""Ioffe & Szegedy 2015 Sec. 4.1 regression: the quick preset (5000 steps, sweep 2000, 2 seeds) keeps
showing BN's faster training, its steadier sigmoid inputs and its indifference to init and rate.

Claims' bounds, from five blocks of 2 seeds of a 10-seed quick run (`python -m repro run ioffe2015
--preset quick --seeds 10`, `python -m repro blocks results/ioffe2015/quick.json`; 2026-12-03),
lowest-highest block: BN's lead after 500 steps 0.58-0.75 (bound 0.2); at the end 0.035-0.041
(0); plain's percentile drift over BN's 2.19-3.38 (1.5); BN's worst grid setting over
plain's worst 0.761-0.770 (0.1). Floors below: per seed, the same 10 seeds.
"""
import pytest

from conftest import per_seed
from experiments.ioffe2015 import drift
from repro.results import Trial

ACCURACY_FLOORS = {"bn": 0.94, "plain": 0.90}   # mean 0.951 / 0.913, worst 0.947 / 0.910
# plain N(0, 0.01) at lr 0.1 never leaves chance in 2000 steps: mean 0.106; BN there: mean 0.935
STALLED, RESCUED = "plain-n0.01-lr0.1", "bn-n0.01-lr0.1"


@pytest.fixture(scope="module")
def results(quick_run):
    return quick_run("ioffe2015")


@pytest.mark.parametrize("variant", sorted(ACCURACY_FLOORS))
def test_sec41_nets_reach_their_floor(results, variant):
    assert min(per_seed(results, variant)) >= ACCURACY_FLOORS[variant]


def test_bn_rescues_the_small_init(results):
    assert max(per_seed(results, STALLED)) <= 0.2 and min(per_seed(results, RESCUED)) >= 0.85


def test_drift_is_the_largest_percentile_move():
    def point(step, q15, q50, q85):
        return {"step": step, "activations": {"act3": {"unit0_q15": q15, "unit0_q50": q50, "unit0_q85": q85}}}
    history = [point(250, -1, 0, 1), point(500, -1.5, 0.2, 1), point(750, -1, 0.1, 3.0)]
    trial = Trial("bn", 0, {}, "", [], "ok", None, history, [], [], {}, 0.0)
    assert drift(trial) == pytest.approx(2.0)
    assert drift(trial, until=500) == pytest.approx(0.5)  # only the evaluations up to that step
