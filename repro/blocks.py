"""Where a test's thresholds come from: an experiment's claims re-judged on blocks of its seeds.

A regression test runs a preset with a few seeds; its bounds must hold for any such block, not only
for the mean of many. ``python -m repro blocks results/<exp>/<preset>.json --size 2`` splits a run
with many seeds (``--seeds 10``) into blocks of ``size`` consecutive seeds, re-aggregates each block
and judges the experiment's claims on it, and prints every claim's measured value per block with
the mean and how many blocks fail. Extras are not re-run: a claim that reads them sees all seeds' extras.
"""
from __future__ import annotations

import math
from pathlib import Path

from .claims import FAILS, verdict
from .errors import ReproError
from .results import Run, load
from .runner import load_experiment
from .tables import text_table


def claims_by_block(results: Run, size: int) -> tuple[list[list[int]], dict[str, list]]:
    """The seed blocks and, per claim id, its Claim on each block."""
    seeds = sorted({t.seed for t in results.trials})
    blocks = [seeds[i:i + size] for i in range(0, len(seeds) - size + 1, size)]
    if not blocks:
        raise ReproError(f"the run has {len(seeds)} seeds: too few for blocks of {size}")
    module = load_experiment(results.experiment)
    judged: dict[str, list] = {}
    for block in blocks:
        for claim in module.claims(results.with_seeds(block)):
            judged.setdefault(claim.id, []).append(claim)
    return blocks, judged


def blocks_table(path: Path, size: int) -> str:
    results = load(path)
    blocks, judged = claims_by_block(results, size)
    rows = [("claim", "bound", *[f"seeds {b[0]}-{b[-1]}" for b in blocks], "mean", "fails in")]
    for cid, claims in judged.items():
        values = [c.measured for c in claims]
        finite = [v for v in values if math.isfinite(v)]
        mean = sum(finite) / len(finite) if finite else math.nan
        rows.append((cid, claims[0].bound, *[f"{v:.4g}" for v in values], f"{mean:.4g}",
                     str(sum(verdict(c) == FAILS for c in claims))))
    return (f"{results.experiment}/{results.preset}: claims on {len(blocks)} blocks of {size} seeds\n"
            + text_table(rows))
