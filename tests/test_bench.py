"""make bench: its FLOP count against torch's own counter, one tiny run of every figure, the seeds figures' arithmetic (no timing asserted)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from repro import bench
from repro.nets import build_mlp


def test_step_flops_match_torchs_flop_counter():
    # the bench's GFLOP/s divides by step_flops: it must count what a training step really multiplies
    model = build_mlp(bench.BOOK)
    x, y = torch.rand(bench.BOOK.batch_size, 784), torch.randint(10, (bench.BOOK.batch_size,))
    counter = FlopCounterMode(display=False)
    with counter:
        F.cross_entropy(model(x), y).backward()
    assert counter.get_total_flops() == bench.step_flops(bench.BOOK) == 63_948_800


def test_bench_runs_every_figure():
    report = bench.run(steps=3, repeats=1, experiment=None)
    # every time, rate and ratio is a positive number (the telemetry overhead, a difference, may be either sign)
    figures = [v for k, v in report.items() if isinstance(v, float) and k != "telemetry_overhead"]
    assert len(figures) >= 12 and all(math.isfinite(v) and v > 0 for v in figures)
    assert math.isfinite(report["telemetry_overhead"])
    assert set(report["choices_ms_per_step"]) == {"gather x[index]", "gather index_select",
                                                  "adam step, loop over parameters", "adam step, fused",
                                                  "DeepConvNet step, NCHW", "DeepConvNet step, channels-last"}
    assert "engine step" in bench.format_report(report)
    seeds = report["seeds"]  # the one-trial step is the engine's, beside batched seeds or the reason there are none
    assert seeds["one_trial_ms_per_step"] == report["engine_ms_per_step"]
    assert bench.seeds_line(seeds) in bench.format_report(report)
    assert isinstance(seeds["batched"], str) or set(seeds["batched"]) == {"3", "10"}


def test_seeds_figures_put_one_trial_beside_batched_seeds():
    # seconds per step in three rounds: one trial 2 ms; 10 seeds batched 5 ms a step, 0.5 ms per seed
    figures = bench.seeds_figures([2e-3] * 3, {10: [5e-3] * 3}, None)
    b = figures["batched"]["10"]
    assert figures["one_trial_ms_per_step"] == pytest.approx(2.0)
    assert (b["ms_per_step"], b["ms_per_seed"], b["per_seed_speedup"]) == pytest.approx((5.0, 0.5, 4.0))
    assert "10 seeds batched 5.000 ms, 0.500 ms per seed (4.00x)" in bench.seeds_line(figures)
    missing = bench.seeds_figures([2e-3], {}, "repro.batched is not in this checkout")
    assert "batched: not available (repro.batched is not in this checkout)" in bench.seeds_line(missing)
