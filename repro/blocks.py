"""Where a test's thresholds come from: an experiment's claims re-judged on blocks of its seeds.

A regression test runs a preset with a few seeds; its bounds must hold for any such block, not only
for the mean of many. ``python -m repro blocks results/<exp>/<preset>.json --size 2`` splits a run
with many seeds (``--seeds 10``) into blocks of ``size`` consecutive seeds, re-aggregates each block
and judges the experiment's claims on it, and prints every claim's measured value per block with
the mean and how many blocks fail. Extras are not re-run: a claim that reads them sees all seeds' extras.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from .claims import FAILS, verdict
from .errors import ReproError
from .runner import aggregate, load_experiment
from .tables import text_table


def block_results(results: dict, seeds: list[int]) -> dict:
    """``results`` as if the run had had only ``seeds``."""
    trials = [t for t in results["trials"] if t["seed"] in seeds]
    variants = {name: {**v, "aggregate": aggregate([t for t in trials if t["variant"] == name])}
                for name, v in results["variants"].items()}
    return {**results, "trials": trials, "variants": variants, "seeds": len(seeds)}


def claims_by_block(results: dict, size: int) -> tuple[list[list[int]], dict[str, list[dict]]]:
    """The seed blocks and, per claim id, its claim dict on each block."""
    seeds = sorted({t["seed"] for t in results["trials"]})
    blocks = [seeds[i:i + size] for i in range(0, len(seeds) - size + 1, size)]
    if not blocks:
        raise ReproError(f"the run has {len(seeds)} seeds: too few for blocks of {size}")
    module = load_experiment(results["experiment"])
    judged: dict[str, list[dict]] = {}
    for block in blocks:
        for claim in module.claims(block_results(results, block)):
            judged.setdefault(claim.id, []).append(claim.to_dict())
    return blocks, judged


def blocks_table(path: Path, size: int) -> str:
    try:
        results = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise ReproError(f"cannot read results file {path}: {err}") from None
    blocks, judged = claims_by_block(results, size)
    rows = [("claim", "bound", *[f"seeds {b[0]}-{b[-1]}" for b in blocks], "mean", "fails in")]
    for cid, claims in judged.items():
        values = [c["measured"] for c in claims]
        finite = [v for v in values if math.isfinite(v)]
        mean = sum(finite) / len(finite) if finite else math.nan
        rows.append((cid, claims[0]["bound"], *[f"{v:.4g}" for v in values], f"{mean:.4g}",
                     str(sum(verdict(c) == FAILS for c in claims))))
    return (f"{results['experiment']}/{results['preset']}: claims on {len(blocks)} blocks of {size} seeds\n"
            + text_table(rows))
