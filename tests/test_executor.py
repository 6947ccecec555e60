"""The local executor: this process plus spawned workers, longest first, results in the order given."""
from __future__ import annotations

import pytest

from repro.config import TrialConfig
from repro.data import DataError
from repro.executor import TrialSpec, estimated_cost, execute

TINY = TrialConfig(widths=(20,), iters=30, eval_every=30, test_size=200, train_eval_size=200)


def _specs(configs):
    return [TrialSpec(config=c, seed=s, device="cpu", tag=(i, s)) for i, c in enumerate(configs)
            for s in range(2)]


def test_spread_over_two_workers_equals_one_after_another():
    specs = _specs([TINY, TINY.replace(widths=(50, 50), iters=60, eval_every=60), TINY.replace(lr=0.5)])
    landed = []
    sequential = execute(specs, workers=1)
    spread = execute(specs, workers=2, on_done=lambda r: landed.append(r["tag"]))
    assert [r["tag"] for r in spread] == [s.tag for s in specs]           # the order given, not the order run
    assert sorted(landed) == sorted(s.tag for s in specs)                 # on_done once per trial
    assert [r["batch_loss"] for r in spread] == [r["batch_loss"] for r in sequential]
    assert [r["history"] for r in spread] == [r["history"] for r in sequential]


def test_a_failing_trial_stops_the_run_with_its_error():
    # valid as a config (validated once, where it was built), impossible on the data: fails inside the trial
    bad = TrialSpec(config=TINY.replace(train_size=70000), seed=0, device="cpu")
    with pytest.raises(DataError, match="train_size=70000"):
        execute([*_specs([TINY]), bad, bad], workers=2)


def test_cost_grows_with_steps_and_width():
    small = TrialSpec(config=TINY, seed=0, device="cpu")
    longer = TrialSpec(config=TINY.replace(iters=300), seed=0, device="cpu")
    wider = TrialSpec(config=TINY.replace(widths=(200,)), seed=0, device="cpu")
    conv = TrialSpec(config=TINY.replace(model="cnn", conv=("8", "pool")), seed=0, device="cpu")
    assert estimated_cost(small) < estimated_cost(longer)
    assert estimated_cost(small) < estimated_cost(wider)
    assert estimated_cost(conv) > 0
