"""make bench: its FLOP count against torch's own counter, and one tiny run of every figure (no timing asserted)."""
from __future__ import annotations

import math

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
