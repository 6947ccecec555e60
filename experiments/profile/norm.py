"""Profile of a normaliser: does it widen the band of init scales that train, like batch norm, and does
it reach 90% test accuracy in fewer steps?

Setup: the batch-norm experiment's (experiments/batchnorm.py), the normaliser before each hidden
activation (its eps 1e-6 in the sweep, as the book's).
- band: the book's weight-scale sweep: the first 1000 training images, 5 x 100 ReLU, SGD 0.01, batch 100,
  20 epochs, every layer N(0, w^2) for w log-spaced from 1 to 1e-4 (full 16 scales, quick 5): the scales
  at which the mean final train accuracy reaches 0.5 (chance is 0.1; the plain net sits at 0.12 outside
  its band), as decades of w (scales x the grid's step). Verdicts: at least 2 decades widens the stable
  band like batch norm (the book: BN trains over [0.002, 0.05] and beyond, 1.4 decades, where the plain
  net learns near 0.16-0.3 only), at most 1 is narrow like the plain net's, between widens it somewhat.
  Only the final accuracy is read, so the sweep evaluates 4 times (the experiment: every epoch).
- speed: full MNIST, 3 x 100 ReLU, Xavier, SGD 0.01, batch 100, 5000 steps (quick 2000, tested on 2000
  images): the steps to 90% test accuracy (mean over seeds) over the plain net's (a plain seed that never
  gets there counts as the budget: a lower bound, so the ratio can only be overstated). Verdicts: at most
  0.5 at least twice as fast, like batch norm (its experiment's bn-halves-iterations), under 1 faster, else
  no faster.
The notes' verdicts it holds: batch norm widens the band and gets to 90% in at most half the steps; the
plain net's band is narrow.
Runtime on the 2-core dev machine (2026-12-04): quick (3 normalisers x 3 seeds, 54 trials) 35 s idle;
full (4 x 3 seeds, 204 trials) 332 s, load 3-5 (another run sharing the cores).
"""
from __future__ import annotations

import math
import sys

from experiments.batchnorm import SPEED, SWEEP, iterations_to, weight_scales
from repro import figures, profiles
from repro.experiment import Run, Variant, md_table
from repro.profiles import Probe, Verdict, component_id

TITLE = "Profile: normalisers (the band of init scales that train, steps to 90%)"
PARAM = "norms"
REFERENCES = {"none": {"band": "narrow"}, "batchnorm": {"band": "widens", "speed": "twice-as-fast"}}
NOTES = tuple(REFERENCES)
PRESETS = {
    "full": {"seeds": 3, PARAM: NOTES, "scales": 16, "sweep_epochs": 20, "speed_iters": 5000, "test_size": None},
    # quick: a decade between scales; the speed-up tested on 2000 images in 2000 steps (BN: about 800)
    "quick": {"seeds": 3, PARAM: NOTES, "scales": 5, "sweep_epochs": 20, "speed_iters": 2000, "test_size": 2000},
}
TRAINS = 0.5        # final train accuracy at which a scale counts as trained
TARGET = 0.9        # test accuracy the speed probe counts the steps to


def setting(name: str) -> dict:
    return {"norm": name}


def sweep_id(name: str, w: float) -> str:
    return f"{component_id(name)}-w{w:.3g}"


def speed_id(name: str) -> str:
    return f"{component_id(name)}-speed"


def variants(p: dict) -> list[Variant]:
    # the band reads the final train accuracy only: 4 evaluations are enough (the experiment's curves take 20)
    iters = 10 * p["sweep_epochs"]
    sweep = SWEEP.replace(iters=iters, eval_every=iters // 4, probe_every=iters)
    out = [Variant(sweep_id(name, w), sweep.replace(init=f"normal:{w!r}", norm=name), f"sweep, w={w:.3g}",
                   metric="final_train_acc", label=f"{name}, w={w:.3g}")
           for w in weight_scales(p["scales"]) for name in p[PARAM]]
    speed = SPEED.replace(activation="relu", iters=p["speed_iters"], probe_outputs=False, test_size=p["test_size"])
    return out + [Variant(speed_id(name), speed.replace(norm=name), "speed-up", label=name) for name in p[PARAM]]


def validate(p: dict) -> str | None:
    if p["scales"] < 2:
        return f"scales={p['scales']}: a band needs at least 2 scales"
    return profiles.validate(sys.modules[__name__], p)


def trained_scales(m: profiles.Measured, name: str) -> list[float]:
    return [w for w in weight_scales(m.params["scales"])
            if m.mean(sweep_id(name, w), "final_train_acc") >= TRAINS]


def band(m: profiles.Measured, name: str) -> float:
    """Decades of w at which it trains: the scales that do, each standing for one step of the grid."""
    return len(trained_scales(m, name)) * 4 / (m.params["scales"] - 1)


def band_note(m: profiles.Measured, name: str) -> str:
    w = trained_scales(m, name)
    return f"w {max(w):.3g} to {min(w):.3g}" if w else "no scale"


def steps_to_target(m: profiles.Measured, name: str) -> list[float]:
    """Per seed, the steps to TARGET test accuracy; the budget where it never gets there."""
    return [iterations_to(t.history, TARGET) or m.params["speed_iters"] for t in m.trials[speed_id(name)]]


def speed_ratio(m: profiles.Measured, name: str) -> float:
    ours, plain = steps_to_target(m, name), steps_to_target(m, "none")
    if not ours:
        return math.nan
    if all(s == m.params["speed_iters"] for s in ours):
        return math.inf   # never within the budget
    return (sum(ours) / len(ours)) / (sum(plain) / len(plain))


def probes(p: dict) -> list[Probe]:
    return [
        Probe("band", f"decades of init scale that train ({p['scales']} scales, 1 to 1e-4)",
              (Verdict("narrow", "narrow, like the plain net's", 0.0, 1.0),
               Verdict("widens", "widens the stable band like batch norm", 2.0),
               Verdict("widens-somewhat", "widens the band somewhat", 1.0, 2.0)), band, note=band_note),
        Probe("speed", f"steps to {TARGET:.0%} test accuracy over the plain net's ({p['speed_iters']} at most)",
              (Verdict("twice-as-fast", "gets there at least twice as fast, like batch norm", 0.0, 0.5),
               Verdict("faster", "gets there faster, under twice", 0.5, 1.0),
               Verdict("no-faster", "no faster than without a normaliser", 1.0)), speed_ratio,
              anchor="none", samples=steps_to_target, anchor_shows="its own steps (the budget where never)"),
    ]


def figure(p: dict, ctx) -> str:
    fig, axes = figures.new(1, 2, size=(4.4, 3.3))
    scales = weight_scales(p["scales"])
    for name in p[PARAM]:
        acc = [sum(t.summary["final_train_acc"] for t in ctx.trials[sweep_id(name, w)]) / ctx.seeds for w in scales]
        line, = axes[0][0].semilogx(scales, acc, "o-", label=name)
        figures.band(axes[0][1], ctx.trials[speed_id(name)], "accuracy_test", name, color=line.get_color())
    axes[0][0].axhline(TRAINS, color="0.5", ls="--", lw=1)
    axes[0][0].set(xlabel="init scale w: N(0, w²)", ylabel="final train accuracy (mean of seeds)",
                   title=f"weight-scale sweep, {p['sweep_epochs']} epochs", ylim=(0, 1.02))
    axes[0][1].axhline(TARGET, color="0.5", ls="--", lw=1)
    axes[0][1].set(xlabel="step", ylabel="test accuracy", title="speed-up (ReLU + Xavier)", ylim=(0, 1))
    axes[0][0].legend(fontsize=7)
    return figures.save(fig, ctx.out_dir / "norms.png", ctx.logdir, "profile/norms")


def sweep_table(p: dict, ctx) -> str:
    scales = weight_scales(p["scales"])
    rows = [[f"{w:.3g}"] + [f"{sum(t.summary['final_train_acc'] for t in ctx.trials[sweep_id(n, w)]) / ctx.seeds:.3f}"
                            for n in p[PARAM]] for w in scales]
    return md_table(["w"] + list(p[PARAM]), rows)


def extras(p: dict, ctx) -> dict:
    out = {"figures": {"weight-scale sweep and speed-up": figure(p, ctx)},
           "tables": {"weight-scale sweep: final train accuracy, mean over seeds": sweep_table(p, ctx)}}
    out["verdicts"] = profiles.judge(sys.modules[__name__], p, profiles.Measured(p, ctx.trials, out))
    return out


def claims(results: Run):
    return profiles.claims(results, sys.modules[__name__])
