"""Profile of an init: do the activations keep their size through a deep ReLU net at init like He's, or
shrink like Xavier's, and does a 30-layer net train from it or stall?

Setup: He et al.'s (experiments/he2015.py): ReLU nets of 30 hidden layers of 100.
- spread: no training: 1000 test images through the net at init, 5 nets: each hidden layer's output sd,
  as its geometric mean ratio from layer to layer (experiments/profile/__init__.py SPREAD, the init
  experiment's bounds: He's 2/n_in keeps it, about 1 a layer; Xavier's 1/n_in halves its variance, 0.71;
  N(0, 0.01) collapses it, 0.07). Torch's default init draws biases too, which keep the sd steady while
  the part of it that depends on the input shrinks (its sd over images, per unit: 0.54 a layer), and it
  stalls: read this probe with the next.
- depth: SGD with momentum 0.9, lr 0.01, batch 100, 1000 updates (quick 300), evaluated on 2000 images:
  the step at which the training loss first falls below 0.9 ln(classes) (chance), as a share of the budget
  (1: never), mean over seeds. Verdicts, he2015's: below half the budget trains like He, else stalls like
  Xavier (at 30 layers "Xavier completely stalls": he2015 deep-30-xavier-stalls).
The notes' verdicts it holds: He keeps the spread and trains; Xavier shrinks it and stalls; N(0, 0.01)
collapses it and stalls.
Runtime on the 2-core dev machine (2026-12-04): quick (4 inits x 3 seeds) 26 s idle; full (5 x 3 seeds)
236 s, load 3-5 (another run sharing the cores).
"""
from __future__ import annotations

import math
import sys

import torch

from experiments import he2015
from experiments.profile import SPREAD
from repro import figures, profiles
from repro.data import load, num_classes
from repro.experiment import ANALYTIC, Run, TrialConfig, Variant
from repro.nets import activation_layers, build_model
from repro.profiles import Probe, Verdict, component_id

TITLE = "Profile: inits (activations through 30 ReLU layers at init, training at depth 30)"
PARAM = "inits"
REFERENCES = {"normal:0.01": {"spread": "spread-collapses", "depth": "stalls"},
              "xavier": {"spread": "spread-shrinks", "depth": "stalls"},
              "he": {"spread": "spread-steady", "depth": "trains"}}
NOTES = tuple(REFERENCES)
PRESETS = {
    "full": {"seeds": 3, PARAM: NOTES, "depth": 30, "iters": 1000, "nets": 5},
    # quick: under a third of the budget (He leaves chance within its first 50 steps)
    "quick": {"seeds": 3, PARAM: NOTES, "depth": 30, "iters": 300, "nets": 5},
}
EVAL_SIZE = 2000   # images the training loss is evaluated on every 50 steps: the probe reads when it leaves chance


def setting(name: str) -> dict:
    return {"init": name}


def depth_id(name: str) -> str:
    return f"{component_id(name)}-deep"


def variants(p: dict) -> list[Variant]:
    cfg = he2015.NET.replace(widths=(he2015.WIDTH,) * p["depth"], iters=p["iters"], train_eval_size=EVAL_SIZE,
                             test_size=EVAL_SIZE)
    return [Variant(depth_id(name), cfg.replace(init=name), f"{p['depth']} layers", metric="final_train_loss",
                    label=name) for name in p[PARAM]]


def validate(p: dict) -> str | None:
    return profiles.validate(sys.modules[__name__], p)


def layer_sds(init: str, depth: int, x: torch.Tensor, seed: int) -> list[float]:
    """Each hidden layer's output sd for ``x`` (over images and units, as the init experiment's), through a
    fresh ReLU net of ``depth`` layers from ``init``."""
    torch.manual_seed(seed)  # torch's default init and a user's draw from the global generator
    model = build_model(TrialConfig(widths=(he2015.WIDTH,) * depth, init=init),
                        generator=torch.Generator().manual_seed(seed))
    sds = []
    hooks = [m.register_forward_hook(lambda m, i, out: sds.append(float(out.std()))) for _, m in activation_layers(model)]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return sds


def spread(m: profiles.Measured, name: str) -> list[float]:
    """Per net: the geometric mean ratio of a layer's output sd to the layer's below (0: it vanished)."""
    return [(sd[-1] / sd[0]) ** (1 / (len(sd) - 1)) if sd[0] > 0 else math.nan for sd in m.extras["spread"][name]]


def stall(m: profiles.Measured, name: str) -> float:
    """The share of the budget spent at chance before the training loss first falls below 0.9 ln(classes),
    mean over seeds (a seed that never does counts 1)."""
    trials = m.trials[depth_id(name)]
    chance = math.log(num_classes(trials[0].config["dataset"]))
    iters = m.params["iters"]
    return sum(min(he2015.leaves_chance_at(t, 0.9 * chance), iters) / iters for t in trials) / len(trials)


def probes(p: dict) -> list[Probe]:
    return [
        Probe("spread", f"activations at init, sd ratio per layer, {p['depth']} layers",
              tuple(Verdict(f"spread-{v.slug}", v.words.replace("ReLU + ", ""), v.low, v.high) for v in SPREAD),
              lambda m, name: sum(spread(m, name)) / len(spread(m, name)), ANALYTIC, samples=spread),
        Probe("depth", f"share of {p['iters']} steps at chance, {p['depth']} layers",
              (Verdict("trains", "trains like He", 0.0, 0.5), Verdict("stalls", "stalls like Xavier", 0.5, 1.0)),
              stall),
    ]


def figure(p: dict, ctx, sds: dict) -> str:
    fig, axes = figures.new(1, 2, size=(4.4, 3.3))
    for name in p[PARAM]:
        mean = torch.tensor(sds[name]).mean(0)
        line, = axes[0][0].semilogy(range(1, len(mean) + 1), mean.clamp_min(1e-45), label=name)
        figures.band(axes[0][1], ctx.trials[depth_id(name)], "loss_train", name, color=line.get_color())
    axes[0][0].set(xlabel="hidden layer", ylabel="sd of its outputs (mean of nets)", title="activations at init (ReLU)")
    chance = math.log(num_classes(ctx.trials[depth_id(p[PARAM][0])][0].config["dataset"]))
    axes[0][1].axhline(0.9 * chance, color="0.5", ls="--", lw=1)
    axes[0][1].set(xlabel="update", ylabel="training loss", title=f"training at {p['depth']} layers")
    axes[0][0].legend(fontsize=7)
    return figures.save(fig, ctx.out_dir / "inits.png", ctx.logdir, "profile/inits")


def extras(p: dict, ctx) -> dict:
    x = load(ctx.trials[depth_id(p[PARAM][0])][0].config["dataset"]).x_test[:1000]
    sds = {name: [layer_sds(name, p["depth"], x, seed) for seed in range(p["nets"])] for name in p[PARAM]}
    out = {"spread": sds, "figures": {"activations at init and training at depth": figure(p, ctx, sds)}}
    out["verdicts"] = profiles.judge(sys.modules[__name__], p, profiles.Measured(p, ctx.trials, out))
    return out


def claims(results: Run):
    return profiles.claims(results, sys.modules[__name__])
