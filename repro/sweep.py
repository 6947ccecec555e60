"""Sweeps: the cross product of config grids x seeds, each a trial of the same engine as `repro train`.

`python -m repro sweep --grid optimizer=sgd,adam --grid lr=0.001,0.01,0.1 --seeds 5` trains every
cell (one value per grid key) with seeds 0..4, aggregates each cell over its seeds (repro.experiment.stats),
names the best cell per metric, and writes results/sweeps/<name>.json. Finished trials are saved
at once under their (config, seed) key, so `--resume` skips them; TensorBoard gets one run per
trial with the grid keys in its hparams, so the hparams table compares cells.
"""
from __future__ import annotations

import hashlib
import itertools
import time
from pathlib import Path

from . import metrics, tb
from .config import FIELDS, ConfigError, TrialConfig, apply_overrides, coerce, value_text
from .executor import TrialSpec, check_executor, default_workers
from .layout import Layout, safe_name
from .results import Trial, aggregate
from .device import choose_device
from .runner import environment, make_output_dirs, run_trials
from .store import TrialStore, write_json
from .tables import text_table

def parse_grid(pairs: list[str], sets: dict[str, str] | None = None) -> dict[str, list]:
    """``["lr=0.01,0.1"]`` -> ``{"lr": [0.01, 0.1]}``. Tuple keys (widths, conv) separate values with
    '|': ``widths=100,100|50,50``. Each value is checked by building its config on top of ``sets``."""
    base = apply_overrides(TrialConfig(), sets or {})
    grid: dict[str, list] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key or not text.strip():
            raise ConfigError(f"--grid {pair}: expected KEY=V1,V2,...")
        if key not in FIELDS:
            raise ConfigError(f"--grid {pair}: unknown config key '{key}'; known keys: {', '.join(FIELDS)}")
        if key in grid or key in (sets or {}):
            raise ConfigError(f"--grid {pair}: {key} is already set by another --grid or --set")
        separator = "|" if "tuple" in str(FIELDS[key].type) else ","
        values = []
        for item in (t.strip() for t in text.split(separator)):
            try:
                value = coerce(key, item)
                base.replace(**{key: value})
            except ConfigError as err:
                detail = str(err).split(": ", 1)[-1]
                raise ConfigError(f"--grid {pair}: '{item}' is not a valid {key} ({detail})") from None
            if value in values:
                raise ConfigError(f"--grid {pair}: '{item}' is listed twice")
            values.append(value)
        grid[key] = values
    if not grid:
        raise ConfigError("sweep needs at least one --grid KEY=V1,V2,...")
    return grid


def cell_name(params: dict) -> str:
    return " ".join(f"{k}={value_text(v)}" for k, v in params.items())


def sweep_name(grid: dict[str, list]) -> str:
    """A file name from the grid itself, so different grids never share results."""
    name = safe_name("__".join(f"{k}={'_'.join(value_text(v) for v in vs)}" for k, vs in grid.items()))
    if len(name) > 80:
        name = "__".join(grid) + "-" + hashlib.sha1(name.encode()).hexdigest()[:8]
    return name


def run_sweep(grid: dict[str, list], sets: dict[str, str] | None = None, seeds: int = 3, device: str = "auto",
              name: str | None = None, metric: str = "final_test_acc", layout: Layout = Layout(),
              workers: int | None = None, progress: bool = True,
              resume: bool = False, executor: str = "local", address: str | None = None) -> dict:
    """Run (or, with ``resume``, finish) a sweep; returns the results dict it saved."""
    if metric not in metrics.rankable():
        raise ConfigError(f"--metric {metric}: choose from {', '.join(metrics.rankable())}")
    if seeds < 1:
        raise ConfigError(f"--seeds {seeds}: need at least one seed")
    check_executor(executor, address)
    base = apply_overrides(TrialConfig(), sets or {})
    cells = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    configs = {cell_name(c): apply_overrides(base, c) for c in cells}
    device, device_choice = choose_device(device, list(configs.values()), len(configs) * seeds, workers)
    workers = workers or default_workers(device)
    name = safe_name(name) if name else sweep_name(grid)
    out_dir, sweep_logdir = layout.sweep_outputs(name), layout.sweep_logdir(name)
    make_output_dirs(out_dir, sweep_logdir)
    started = time.perf_counter()
    specs = [TrialSpec(config=cfg, seed=s, device=device, tag=cell,
                       logdir=str(sweep_logdir / safe_name(cell) / f"seed{s}"),
                       hparams={"sweep": name, "cell": cell})
             for cell, cfg in configs.items() for s in range(seeds)]
    # the lock covers the sweep's results and logs until they are written
    with TrialStore(out_dir / "trials", f"sweep {name}", resume, logdir=sweep_logdir) as store:
        trials, resumed = run_trials(specs, store, workers, progress, f"sweep {name}", executor, address)

        by_cell = {cell: [Trial.from_engine(t, cell) for t in trials if t["tag"] == cell] for cell in configs}
        results = {
            "sweep": name, "metric": metric,
            "grid": {k: [list(v) if isinstance(v, tuple) else v for v in vs] for k, vs in grid.items()},
            "sets": dict(sets or {}), "seeds": seeds, "env": environment(device, workers, executor, device_choice),
            "cells": {cell: {"params": {k: value_text(v) for k, v in c.items()},
                             "config": configs[cell].to_dict(), "aggregate": aggregate(by_cell[cell])}
                      for cell, c in zip(configs, cells)},
            # per-step batch losses stay in the trial files (results/sweeps/<name>/trials/): hundreds of
            # trials x thousands of steps would make this file slow to read for a table
            "trials": [{"cell": t["tag"], **{k: v for k, v in t.items() if k not in ("tag", "batch_loss")}}
                       for t in trials],
        }
        results["best"] = best_cells(results["cells"])
        results["wall_time"] = time.perf_counter() - started
        results["resumed_trials"] = resumed
        results["path"] = str(layout.sweep_file(name))
        for cell in configs:
            tb.write_mean_run(sweep_logdir / safe_name(cell) / "mean", by_cell[cell], f"sweeps/{name}")
        tb.write_layout(sweep_logdir, f"sweeps/{name}", list(configs))
        write_json(Path(results["path"]), results)
    return results


def best_cells(cells: dict) -> dict:
    """For each metric with a direction, the cell whose mean over seeds is best (all-diverged cells excluded)."""
    best = {}
    for metric, better in metrics.rankable().items():
        scored = [(c["aggregate"][metric]["mean"], name) for name, c in cells.items()
                  if c["aggregate"][metric]["mean"] is not None]
        if scored:
            mean, name = (max if better == metrics.HIGHER else min)(scored, key=lambda s: s[0])
            best[metric] = {"cell": name, "mean": mean}
    return best


def ranked(results: dict, metric: str | None = None) -> list[str]:
    """Cell names, best first by ``metric``'s mean; cells where every seed diverged last."""
    metric = metric or results["metric"]
    sign = -1 if metrics.rankable()[metric] == metrics.HIGHER else 1
    cells = results["cells"]
    return sorted(cells, key=lambda c: (cells[c]["aggregate"][metric]["mean"] is None,
                                        sign * (cells[c]["aggregate"][metric]["mean"] or 0.0)))


def sweep_table(results: dict) -> str:
    """One row per cell, sorted by the sweep's metric: mean ± sd, 95% interval, min, max, diverged seeds."""
    metric = results["metric"]
    keys = list(results["grid"])
    rows = [(*keys, f"{metric} mean ± sd", "95% interval", "min", "max", "n", "diverged")]
    for cell in ranked(results):
        c = results["cells"][cell]
        s, params = c["aggregate"][metric], c["params"]
        if s["n"] == 0:
            numbers = ("-", "-", "-", "-")
        else:
            interval = f"[{s['ci95'][0]:.4f}, {s['ci95'][1]:.4f}]" if s["ci95"] else "-"
            numbers = (f"{s['mean']:.4f} ± {s['std']:.4f}", interval, f"{s['min']:.4f}", f"{s['max']:.4f}")
        rows.append((*(params[k] for k in keys), *numbers, str(s["n"]), str(c["aggregate"]["diverged"])))
    lines = [text_table(rows), "", "best cell per metric (mean over seeds):"]
    lines += [f"  {m:17s} {b['cell']}  ({b['mean']:.4f})" for m, b in results["best"].items()]
    env = results["env"]
    where = f"{env['executor']}, {env['workers']} workers" if env["executor"] == "local" else env["executor"]
    lines.append(f"\nsweep {results['sweep']}: {len(results['cells'])} cells x {results['seeds']} seeds = "
                 f"{len(results['trials'])} trials ({results['resumed_trials']} resumed) in "
                 f"{results['wall_time']:.1f} s on {env['device']} ({where}); results in {results['path']}")
    return "\n".join(lines)
