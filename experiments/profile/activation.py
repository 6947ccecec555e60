"""Profile of an activation: does its gradient vanish through depth like sigmoid's or keep its size like
ReLU's, how do its outputs spread layer by layer at init, and how accurate is it after a fixed budget?

Setup: every activation from He's init N(0, 2/n_in) (the notes' init for ReLU, which suits the
rectifiers the field uses now; sigmoid's derivative is at most 1/4, so its gradient vanishes under it
all the same), on the same nets, seeds and batches.
- gradient: the vanishing experiment's depth study, width-100 nets of 10 hidden layers (full: 10 and 20),
  SGD, batch 100, 100 steps: the first layer's weight-gradient norm over the last's over those steps (mean
  over seeds; the depth farthest from 1). At lr 0.01, not the depth study's 0.1: from He's init ELU
  diverges within 10 steps at 0.1, and the ratio describes the start of training. Verdicts, from the
  vanishing experiment's ReLU + He bounds: below 0.1 vanishes, 0.1-10 keeps its gradient, above explodes.
- spread: the init experiment's statistics, no training: randn(1000, 100) through 5 bias-free layers of
  100 from He's init, 10 nets: the geometric mean ratio of each layer's output sd to the layer's below
  (experiments/profile/__init__.py SPREAD: collapses, shrinks, steady, grows); the notes' four inits in a
  table beside it.
- accuracy: the course's 784-40-20-10 net, SGD 0.1, batch 100, 2000 steps (quick 500): test accuracy minus
  ReLU's. Verdicts: behind ReLU by over a point, within a point of it, ahead by over a point.
The notes' verdicts it holds: sigmoid vanishes; ReLU keeps its gradient, and its spread is steady;
sigmoid ends behind ReLU (the course: 0.87-0.88 against 0.952-0.956 with Xavier for sigmoid).
Runtime on the 2-core dev machine (2026-12-04): quick (4 activations x 3 seeds, 24 trials) 16 s idle; full
(7 x 5 seeds, 105 trials) 207 s, load 3-5 (another run sharing the cores).
"""
from __future__ import annotations

import math
import sys

import torch

from experiments import init as init_experiment
from experiments.profile import SPREAD
from experiments.vanishing import COURSE
from repro import figures, profiles
from repro.experiment import ANALYTIC, Run, Variant, md_table
from repro.profiles import Probe, Verdict, component_id

TITLE = "Profile: activations (vanishing gradient, spread at init, accuracy after a budget)"
PARAM = "activations"
REFERENCES = {"sigmoid": {"gradient": "vanishes", "accuracy": "behind-relu"}, "tanh": {},
              "relu": {"gradient": "keeps-gradient", "spread": "spread-steady"}}
NOTES = tuple(REFERENCES)
PRESETS = {
    "full": {"seeds": 5, PARAM: NOTES, "depths": (10, 20), "depth_iters": 100, "budget_iters": 2000, "nets": 10},
    # quick: one depth, a quarter of the budget; tests/test_profile.py holds it
    "quick": {"seeds": 3, PARAM: NOTES, "depths": (10,), "depth_iters": 100, "budget_iters": 500, "nets": 10},
}
INIT = "he"
DEPTH = COURSE.replace(init=INIT, lr=0.01)   # its widths are set per depth
BUDGET = COURSE.replace(init=INIT)
INITS = {"normal:1": "N(0,1)", "normal:0.01": "N(0,0.01)", "xavier": "Xavier", "he": "He"}


def setting(name: str) -> dict:
    return {"activation": name}


def depth_id(name: str, depth: int) -> str:
    return f"{component_id(name)}-depth{depth}"


def budget_id(name: str) -> str:
    return f"{component_id(name)}-budget"


def variants(p: dict) -> list[Variant]:
    out = []
    for d in p["depths"]:
        cfg = DEPTH.replace(widths=(init_experiment.WIDTH,) * d, iters=p["depth_iters"], eval_every=p["depth_iters"],
                            grad_window=p["depth_iters"])
        out += [Variant(depth_id(name, d), cfg.replace(activation=name), f"gradient, {d} layers",
                        metric="grad_ratio_first_last", label=f"{name}, {d} layers") for name in p[PARAM]]
    budget = BUDGET.replace(iters=p["budget_iters"], eval_every=p["budget_iters"] // 10)
    return out + [Variant(budget_id(name), budget.replace(activation=name), "accuracy after a budget", label=name)
                  for name in p[PARAM]]


def validate(p: dict) -> str | None:
    if not p["depths"]:
        return "depths: name at least one depth"
    return profiles.validate(sys.modules[__name__], p)


# ---- the probes ----

def worst_ratio(m: profiles.Measured, name: str) -> float:
    """The seed-mean gradient ratio of the depth farthest from 1 (in decades); NaN where one has none."""
    ratios = [m.mean(depth_id(name, d), "grad_ratio_first_last") for d in m.params["depths"]]
    if any(math.isnan(r) for r in ratios):
        return math.nan
    return max(ratios, key=lambda r: abs(math.log10(r)) if 0 < r < math.inf else math.inf)


def spread_ratio(sd: list[float]) -> float:
    """The geometric mean of sd[k + 1] / sd[k] over the layers: (last / first) ** (1 / (layers - 1))."""
    return (sd[-1] / sd[0]) ** (1 / (len(sd) - 1)) if sd[0] > 0 else math.nan


def accuracy(m: profiles.Measured, name: str) -> list[float]:
    return [t.summary["final_test_acc"] for t in m.trials[budget_id(name)]]


def probes(p: dict) -> list[Probe]:
    depths = " and ".join(map(str, p["depths"]))
    return [
        Probe("gradient", f"gradient norm, first / last layer, {depths} layers",
              (Verdict("vanishes", "vanishes like sigmoid", 0.0, 0.1),
               Verdict("keeps-gradient", "keeps its gradient like ReLU", 0.1, 10.0),
               Verdict("explodes", "explodes", 10.0)), worst_ratio),
        Probe("spread", "spread at init (He), sd ratio per layer",
              tuple(Verdict(f"spread-{v.slug}", v.words, v.low, v.high) for v in SPREAD),
              lambda m, name: float(torch.tensor(m.extras["spread"][name]["ratio"]).mean()), ANALYTIC,
              samples=lambda m, name: m.extras["spread"][name]["ratio"]),
        Probe("accuracy", f"test accuracy after {p['budget_iters']} steps, minus ReLU's",
              (Verdict("behind-relu", "behind ReLU by over a point", -math.inf, -0.01),
               Verdict("on-par-with-relu", "within a point of ReLU", -0.01, 0.01),
               Verdict("ahead-of-relu", "ahead of ReLU by over a point", 0.01)),
              lambda m, name: m.mean(budget_id(name), "final_test_acc") - m.mean(budget_id("relu"), "final_test_acc"),
              anchor="relu", samples=accuracy, anchor_shows="its own test accuracy"),
    ]


# ---- extras: the spread at init (no training), figures, verdicts ----

def spread(name: str, init: str, nets: int) -> dict:
    """Per net (seed 0, 1, ...): each layer's output sd, and its spread ratio."""
    sds = []
    for seed in range(nets):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(init_experiment.SAMPLES, init_experiment.WIDTH, generator=g)
        sds.append([float(h.std()) for h in init_experiment.propagate(x, init, name, generator=g)])
    return {"sd": sds, "ratio": [spread_ratio(sd) for sd in sds]}


def spread_table(names, nets: int) -> str:
    """The spread ratio under each of the notes' inits, with its verdict (the scorecard shows He's)."""
    def cell(name, init):
        ratio = float(torch.tensor(spread(name, init, nets)["ratio"]).mean())
        found = next((v for v in SPREAD if v.low <= ratio <= v.high), None)
        return f"{ratio:.3g}: {found.slug if found else 'no value'}"
    return md_table(["activation"] + list(INITS.values()), [[name] + [cell(name, init) for init in INITS]
                                                            for name in names])


def figure(p: dict, ctx, spreads: dict) -> str:
    fig, axes = figures.new(1, 3, size=(4.0, 3.2))
    layers = range(1, init_experiment.LAYERS + 1)
    for name in p[PARAM]:
        line, = axes[0][0].plot(layers, torch.tensor(spreads[name]["sd"]).mean(0), "o-", label=name)
        ratios = [torch.tensor([t.summary["grad_ratio_first_last"] for t in ctx.trials[depth_id(name, d)]]).mean()
                  for d in p["depths"]]
        axes[0][1].semilogy(p["depths"], ratios, "o-", color=line.get_color(), label=name)
        figures.band(axes[0][2], ctx.trials[budget_id(name)], "accuracy_test", name, color=line.get_color())
    axes[0][0].set(yscale="log", xlabel="layer", ylabel="sd of the outputs (mean of nets)", title="spread at init (He)")
    axes[0][1].axhspan(0.1, 10, color="0.9")
    axes[0][1].set(xlabel="hidden layers", ylabel="first / last gradient norm", title="gradient through depth")
    axes[0][2].set(xlabel="step", ylabel="test accuracy", title="accuracy (course net, SGD 0.1)", ylim=(0, 1))
    axes[0][0].legend(fontsize=7)
    return figures.save(fig, ctx.out_dir / "activations.png", ctx.logdir, "profile/activations")


def extras(p: dict, ctx) -> dict:
    spreads = {name: spread(name, INIT, p["nets"]) for name in p[PARAM]}
    out = {"spread": spreads,
           "figures": {"spread at init, gradient through depth, accuracy": figure(p, ctx, spreads)},
           "tables": {f"spread at init: sd ratio from layer to layer, mean of {p['nets']} nets of 5 layers, under "
                      "each of the notes' inits": spread_table(p[PARAM], p["nets"])}}
    out["verdicts"] = profiles.judge(sys.modules[__name__], p, profiles.Measured(p, ctx.trials, out))
    return out


def claims(results: Run):
    return profiles.claims(results, sys.modules[__name__])
