"""Profile of an optimizer: does it zig-zag across the 2-D valley like SGD, how far does it get in the
book's MNIST setup beside the book's four, and over how wide a band of learning rates does it work?

Setup: the optimiser experiment's (experiments/optimizers.py).
- valley: f = x^2/20 + y^2 from (-7, 2), 30 steps of the optimizer at each of 25 rates from 0.01 to 1.5
  (the book's range), no training: at the rate that ends nearest the minimum, the share of steps at which y
  changes sign. Verdicts: at least 2/3 zig-zags across the valley like SGD (at every step, the optimiser
  experiment's valley-sgd-zigzags), else no zig-zag.
- book: the book's 4 x 100 ReLU net, He, batch 128, 2000 steps (quick 300), on a grid of rates 1e-4 to 1
  (half-decades; quick decades) and 3 seeds, so that one run also gives the band below. The book's four at
  the book's rates (SGD, Momentum, AdaGrad 0.01; Adam 0.001), another at the grid's rate with the lowest
  late loss: its late loss (mean batch loss over the second half) over SGD's. Verdicts: at most 0.5 fast
  like Momentum, AdaGrad and Adam (their experiment: SGD's late loss is 2.3-2.7x theirs), under 1 faster
  than SGD, else as slow as SGD. The book's own statistic (the batch loss after each update) is in the
  table beside the book's figures.
- band: the rates of the grid at which it works: no seed diverges or blows up (a batch loss above 10x the
  first, optimizers.divergence) and the final training loss is below half of chance's ln(classes) (mean
  over seeds): as decades (rates x the grid's step), minus SGD's. Verdicts: wider than SGD's, as wide,
  narrower.
The notes' verdicts it holds: SGD zig-zags; Momentum, AdaGrad and Adam get at least twice as far as SGD,
the slowest of the four.
Runtime on the 2-core dev machine (2026-12-04): quick (5 optimizers x 5 rates x 3 seeds, 75 trials) 37 s
idle; full (8 x 9 rates x 3 seeds, 216 trials) 20 min, load 3-5 (another run sharing the cores).
"""
from __future__ import annotations

import math
import sys

import numpy as np

from experiments.optimizers import BOOK, BOOK_RUNS, HALF_DECADES, divergence, sign_changes, trajectory, valley
from repro import figures, profiles
from repro.data import num_classes
from repro.experiment import ANALYTIC, Run, Variant, per_seed_table
from repro.profiles import Probe, Verdict, component_id

TITLE = "Profile: optimizers (the 2-D valley, the book's MNIST setup, the usable band of rates)"
PARAM = "optimizers"
REFERENCES = {"sgd": {"valley": "zig-zags"}, "momentum": {"book": "fast"}, "adagrad": {"book": "fast"},
              "adam": {"book": "fast"}}
NOTES = tuple(REFERENCES)
BOOK_RATES = {opt: lr for opt, lr, _ in BOOK_RUNS if opt in REFERENCES}
BOOK_FIGURES = {opt: figure for opt, _, figure in BOOK_RUNS if opt in REFERENCES}
PRESETS = {
    "full": {"seeds": 3, PARAM: NOTES, "grid": HALF_DECADES, "iters": 2000},
    # quick: a decade grid and 300 steps (SGD's late loss is 3x the others' there too)
    "quick": {"seeds": 3, PARAM: NOTES, "grid": (1e-4, 1e-3, 1e-2, 0.1, 1.0), "iters": 300},
}
VALLEY_RATES = tuple(float(r) for r in np.geomspace(0.01, 1.5, 25))
WORKS = 0.5          # the final training loss, as a share of ln(classes), below which a rate works


def setting(name: str) -> dict:
    return {"optimizer": name}


def grid_id(name: str, lr: float) -> str:
    return f"{component_id(name)}-lr{lr:g}"


def validate(p: dict) -> str | None:
    missing = [f"{opt} {lr:g}" for opt, lr in BOOK_RATES.items() if lr not in p["grid"]]
    if missing:
        return f"grid: must hold the book's rates ({', '.join(missing)})"
    return profiles.validate(sys.modules[__name__], p)


def variants(p: dict) -> list[Variant]:
    book = BOOK.replace(iters=p["iters"], eval_every=min(p["iters"], 500))
    return [Variant(grid_id(name, lr), book.replace(optimizer=name, lr=lr), f"lr {lr:g}", metric="late_loss",
                    label=f"{name} {lr:g}") for lr in p["grid"] for name in p[PARAM]]


# ---- the probes ----

def valley_run(name: str) -> dict:
    """The valley at every rate of VALLEY_RATES; the one ending nearest the minimum, with its path."""
    best = None
    for lr in VALLEY_RATES:
        path = trajectory(name, lr)
        distance = float(path[-1].norm())
        if best is None or distance < best["distance"]:
            best = {"lr": lr, "distance": distance, "path": path.tolist(),
                    "zigzag": sign_changes(path[:, 1].tolist()) / (len(path) - 1)}
    return best


def rate(m: profiles.Measured, name: str) -> float:
    """The book's rate for the book's four; for another, the grid's rate with the lowest late loss."""
    if name in BOOK_RATES:
        return BOOK_RATES[name]
    late = {lr: m.mean(grid_id(name, lr), "late_loss") for lr in m.params["grid"]}
    finite = {lr: v for lr, v in late.items() if not math.isnan(v)}
    return min(finite, key=finite.get) if finite else m.params["grid"][0]


def late_ratio(m: profiles.Measured, name: str) -> float:
    return m.mean(grid_id(name, rate(m, name)), "late_loss") / m.mean(grid_id("sgd", rate(m, "sgd")), "late_loss")


def works(m: profiles.Measured, name: str, lr: float) -> bool:
    trials = m.trials[grid_id(name, lr)]
    chance = math.log(num_classes(trials[0].config["dataset"]))
    return all(divergence(t)[0] == "ok" for t in trials) and m.mean(grid_id(name, lr), "final_train_loss") < WORKS * chance


def band(m: profiles.Measured, name: str) -> float:
    grid = m.params["grid"]
    return sum(works(m, name, lr) for lr in grid) * math.log10(grid[-1] / grid[0]) / (len(grid) - 1)


def band_note(m: profiles.Measured, name: str) -> str:
    rates = [lr for lr in m.params["grid"] if works(m, name, lr)]
    return f"lr {min(rates):g} to {max(rates):g}" if rates else "at no rate"


def probes(p: dict) -> list[Probe]:
    return [
        Probe("valley", "2-D valley: share of steps where y changes sign, at its best rate",
              (Verdict("zig-zags", "zig-zags across the valley like SGD", 2 / 3, 1.0),
               Verdict("no-zig-zag", "no zig-zag", 0.0, 2 / 3)),
              lambda m, name: m.extras["valley"][name]["zigzag"], ANALYTIC,
              note=lambda m, name: f"lr {m.extras['valley'][name]['lr']:.3g}, ends "
                                   f"{m.extras['valley'][name]['distance']:.3g} from the minimum"),
        Probe("book", f"book setup: late loss over SGD's ({p['iters']} steps)",
              (Verdict("fast", "fast, like Momentum, AdaGrad and Adam", 0.0, 0.5),
               Verdict("faster-than-sgd", "faster than SGD, under twice", 0.5, 1.0),
               Verdict("slow", "as slow as SGD", 1.0)), late_ratio,
              anchor="sgd", samples=lambda m, name: [t.summary["late_loss"] for t in m.trials[grid_id(name, rate(m, name))]],
              anchor_shows="its own late loss", note=lambda m, name: f"lr {rate(m, name):g}"),
        Probe("band", "decades of learning rate that work, minus SGD's",
              (Verdict("narrower-than-sgd", "a narrower band than SGD's", -math.inf, -0.01),
               Verdict("as-wide-as-sgd", "as wide a band as SGD's", -0.01, 0.01),
               Verdict("wider-than-sgd", "a wider band than SGD's", 0.01)),
              lambda m, name: band(m, name) - band(m, "sgd"), anchor="sgd",
              samples=lambda m, name: [band(m, name)], anchor_shows="its own band, in decades", note=band_note),
    ]


# ---- extras ----

def figure(p: dict, ctx, valleys: dict) -> str:
    import torch
    fig, axes = figures.new(1, 2, size=(4.6, 3.4))
    gx, gy = torch.meshgrid(torch.linspace(-8, 8, 161), torch.linspace(-3, 3, 61), indexing="xy")
    axes[0][0].contour(gx, gy, valley(torch.stack([gx, gy], -1)), levels=[0.1, 0.5, 1, 2, 4, 8], colors="0.85")
    for name in p[PARAM]:
        path = np.array(valleys[name]["path"])
        line, = axes[0][0].plot(path[:, 0], path[:, 1], "o-", ms=2, lw=0.8, label=f"{name} {valleys[name]['lr']:.2g}")
        late = [np.mean([t.summary["late_loss"] for t in ctx.trials[grid_id(name, lr)]]) for lr in p["grid"]]
        axes[0][1].loglog(p["grid"], late, "o-", color=line.get_color(), label=name)
    axes[0][0].set(xlim=(-8, 8), ylim=(-3, 3), title="2-D valley from (-7, 2), 30 steps, best rate")
    axes[0][1].axhline(math.log(10), color="0.5", ls="--", lw=1)
    axes[0][1].set(xlabel="learning rate", ylabel="late loss (mean of seeds; missing: diverged)",
                   title=f"book setup, {p['iters']} steps")
    axes[0][0].legend(fontsize=6)
    return figures.save(fig, ctx.out_dir / "optimizers.png", ctx.logdir, "profile/optimizers")


def extras(p: dict, ctx) -> dict:
    valleys = {name: valley_run(name) for name in p[PARAM]}
    out = {"valley": valleys, "figures": {"2-D valley and the learning-rate grid": figure(p, ctx, valleys)}}
    measured = profiles.Measured(p, ctx.trials, out)
    rows = [(grid_id(name, rate(measured, name)), BOOK_FIGURES.get(name)) for name in p[PARAM]]
    out["tables"] = {"book setup: the book's statistic (the batch loss after each update, steps "
                     f"{p['iters'] // 2}-{p['iters'] - 100}), each at its rate, beside the book's single run of 2000 "
                     "steps": per_seed_table(ctx.trials, rows, "post_update_loss", "book (one run)",
                                             ("late_loss", "late loss"))}
    out["verdicts"] = profiles.judge(sys.modules[__name__], p, measured)
    return out


def claims(results: Run):
    return profiles.claims(results, sys.modules[__name__])
