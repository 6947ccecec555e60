"""What every experiment must do, parametrised over every experiment (repro.runner.experiment_names):
its quick preset's claims hold (and are printed and reported as judged), its figures are drawn, and its
results round-trip through the results model (repro/results.py) unchanged. Each experiment's own test
file keeps only what is specific to it; the quick runs are the session's shared ones (conftest.quick_run).
"""
from __future__ import annotations

import json
import math

import pytest

from conftest import assert_claims_hold, assert_figures_drawn
from repro import metrics, results
from repro.runner import experiment_names
from repro.uncertainty import CONSISTENT, IN_MODE, IN_NO_MODE, OUTSIDE, TOO_FEW

EXPERIMENTS = experiment_names()


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_quick_claims_hold(quick_run, name):
    assert_claims_hold(quick_run(name))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_quick_reference_verdicts(quick_run, name):
    """The verdicts a quick run prints beside published figures: every quick preset runs 1-2 seeds, too
    few for a prediction interval, so each comparable reference is "too few seeds to tell" and the rest
    say why they are not comparable (the full presets' verdicts: make test-full, docs/FINDINGS.md)."""
    run = quick_run(name)
    assert run.seeds < 3, "a quick preset with 3+ seeds prints verdicts this test does not hold"
    for vid, v in run.variants.items():
        if v.reference_status()[2]:
            assert v.reference_verdict().verdict == TOO_FEW, vid


# The verdicts the full presets print beside published figures (seeds 0-4, 3 for cnn; on the CPU these
# seeds give the same numbers to the bit, so the printed verdicts are held as printed). Every comparable
# reference not named here is "consistent with our distribution". Measured 2026-12-04 and again
# 2026-12-05; each row with its values: docs/FINDINGS.md#verdicts. modern_cnn's full preset (12,000
# iterations of three DeepConvNets) is for a GPU and is not run here.
FULL_VERDICTS = {
    "vanishing": {"sigmoid-n0.01": IN_MODE},          # one seed at 0.101 (the course's), four at 0.113
    "init": {},
    "batchnorm": {"w1-plain": TOO_FEW,                # four of five seeds diverge: one finite value
                  "w0.541-plain": IN_NO_MODE,         # all five diverge; the book's net sits at chance
                  "w0.0464-plain": IN_MODE,           # four seeds at 0.116 (the book's), one at 0.139
                  "w0.00215-bn": IN_MODE},            # two seeds at 0.895, three at 0.995 (the book's)
    # the book's four figures lie -1.3 to +0.8 sd from our means (a 20-seed study put each inside in
    # 96-99.7% of random 5-seed subsets); the course's "RMSProp at lr 0.1 diverges (0.10)": our seeds end at 0.43-0.83, one run of ours
    # 0.167-1.25; the margin to the reference's 0.05-0.15 is narrow, held because the seeds are fixed
    "optimizers": {"course-rmsprop-0.1": OUTSIDE},
    "regularization": {},
    "cnn": {},
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FULL_VERDICTS))
def test_full_preset_claims_and_verdicts(tmp_path, name):
    """What ``make exp-<name>`` prints at its full preset: every claim holds, and each published
    figure's verdict is the one recorded above (make test-full)."""
    from repro.layout import Layout
    from repro.runner import run_experiment
    run = run_experiment(name, "full", device="cpu", layout=Layout(tmp_path / "results", tmp_path / "runs"),
                         progress=False)
    assert_claims_hold(run)
    printed = {vid: v.reference_verdict().verdict for vid, v in run.variants.items() if v.reference_status()[2]}
    expected = {vid: FULL_VERDICTS[name].get(vid, CONSISTENT) for vid in printed}
    assert set(FULL_VERDICTS[name]) <= set(printed), "a recorded verdict's variant is not judged"
    assert printed == expected


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_figures_drawn(quick_run, name):
    assert_figures_drawn(quick_run(name))


def _same(a, b) -> bool:
    """Equal, NaN equal to NaN (a diverged trial's final metrics)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_results_round_trip(quick_run, name):
    """The file on disk reads back (validated) to the run that wrote it, and writes the same JSON again."""
    run = quick_run(name)
    again = results.load(run.path)
    assert _same(again.to_json(), json.loads(json.dumps(run.to_json())))
    assert list(again.variants) == list(run.variants)
    assert [c.id for c in again.claims] == [c.id for c in run.claims]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_recorded_metric_is_registered(quick_run, name):
    """Whatever the engine and the probes recorded has an entry in repro/metrics.py (so it reaches
    TensorBoard under its tag), and every summary is the registry's TRIAL metrics."""
    run = quick_run(name)
    trial_metrics = {m.name for m in metrics.of_scope(metrics.TRIAL)}
    point_metrics = {m.name for m in metrics.of_scope(metrics.POINT)}
    for trial in run.trials:
        assert set(trial.summary) == trial_metrics
        for point in trial.history:
            if point.get("diverged"):
                continue
            assert set(point) - {"step", "grad_norm", "activations", "layer_outputs"} <= point_metrics
            for group in ("activations", "layer_outputs"):
                for stats in point.get(group, {}).values():
                    for key in stats:
                        metrics.layer_metric(group, key)  # raises for an unregistered statistic
