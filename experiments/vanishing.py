"""Section 1: vanishing gradients.

Shows: backpropagation multiplies one local derivative per layer; sigmoid' is at most 0.25, so in
a sigmoid network the gradient shrinks on its way down and the lower layers barely learn, while
ReLU (derivative 1 where active) with He init keeps the gradient's size through depth.
Setup (the course): 784-40-20-10 MLP, SGD lr 0.1, batch 100, 2000 iterations (quick 1000), full
MNIST; sigmoid + N(0, 0.01), ReLU + N(0, 0.01), sigmoid + Xavier, ReLU + He. Depth study: width-100
nets of 5, 10, 20 hidden layers (quick 5, 10, 15), sigmoid/tanh + Xavier and ReLU + He: the ratio
of the first layer's weight-gradient norm to the last's over the first 100 steps.
Reference: the course's final test accuracy for the four variants, 0.10-0.11, 0.915-0.924,
0.87-0.88 and 0.952-0.956 (REFERENCES.md); no published figure for the depth study.
Runtime: full preset (3 seeds) 35 s on the 2-core dev machine (2026-12-02); quick 20-23 s on two
workers, 38 s on one.
Findings and how they were measured: docs/FINDINGS.md#vanishing
"""
from __future__ import annotations

import math

import torch

from repro.experiment import (ANALYTIC, PHENOMENON, Claim, Reference, Run, TrialConfig, Variant, at_least, at_most,
                              between, chance_accuracy, is_true)

TITLE = "Section 1: vanishing gradients (sigmoid vs ReLU, depth)"

PRESETS = {
    "full": {"seeds": 5, "iters": 2000, "depths": (5, 10, 20), "depth_iters": 100},
    # quick: the same networks with half the training; tests/test_vanishing.py holds it
    "quick": {"seeds": 2, "iters": 1000, "depths": (5, 10, 15), "depth_iters": 100},
}

COURSE = TrialConfig(widths=(40, 20), optimizer="sgd", lr=0.1, batch_size=100)
COURSE_VARIANTS = [  # id, label, activation, init, reference range (course, final test accuracy)
    ("sigmoid-n0.01", "sigmoid + N(0,0.01)", "sigmoid", "normal:0.01", (0.10, 0.11)),
    ("relu-n0.01", "relu + N(0,0.01)", "relu", "normal:0.01", (0.915, 0.924)),
    ("sigmoid-xavier", "sigmoid + xavier", "sigmoid", "xavier", (0.87, 0.88)),
    ("relu-he", "relu + he", "relu", "he", (0.952, 0.956)),
]
DEPTH_FAMILIES = [("sigmoid", "xavier"), ("tanh", "xavier"), ("relu", "he")]


def depth_id(activation: str, init: str, depth: int) -> str:
    return f"{activation}-{init}-depth{depth}"


def variants(p: dict) -> list[Variant]:
    out = [Variant(vid, COURSE.replace(activation=act, init=init, iters=p["iters"], eval_every=100),
                   group="course setup",
                   reference=Reference("final_test_acc", *ref, "course", describes=(("iters", 2000),)), label=label)
           for vid, label, act, init, ref in COURSE_VARIANTS]
    for act, init in DEPTH_FAMILIES:
        for depth in p["depths"]:
            # Only the first steps matter for the ratio, so these train briefly and evaluate once.
            cfg = COURSE.replace(widths=(100,) * depth, activation=act, init=init, iters=p["depth_iters"],
                                 eval_every=p["depth_iters"], grad_window=p["depth_iters"])
            out.append(Variant(depth_id(act, init, depth), cfg, group="depth study",
                               metric="grad_ratio_first_last", label=f"{act} + {init}, depth {depth}"))
    return out


def sigmoid_derivative_peak(grid: torch.Tensor) -> tuple[float, float]:
    """Where sigmoid' peaks on ``grid`` and its value there, by autograd (not by the formula)."""
    x = grid.clone().requires_grad_(True)
    torch.sigmoid(x).sum().backward()
    i = int(x.grad.argmax())
    return float(grid[i]), float(x.grad[i])


def chain_rule_error(samples: int = 1000) -> float:
    """Largest |dz/dx - 2(x + y)| over random (x, y) for z = t^2, t = x + y, dz/dx by autograd."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(samples, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(samples, generator=g, dtype=torch.float64)
    t = x + y
    (t ** 2).sum().backward()
    return float((x.grad - 2 * (x + y).detach()).abs().max())


def extras(p: dict, ctx) -> dict:
    peak_x, peak_value = sigmoid_derivative_peak(torch.linspace(-6, 6, 1201, dtype=torch.float64))
    return {"sigmoid_derivative_peak_x": peak_x, "sigmoid_derivative_peak": peak_value,
            "chain_rule_max_error": chain_rule_error()}


def claims(results: Run) -> list[Claim]:
    p, e = results.params, results.extras
    course = [vid for vid, *_ in COURSE_VARIANTS]
    acc = {vid: results.agg(vid) for vid in course}
    best_other = max(acc[n] for n in course if n != "relu-he")
    depths = sorted(p["depths"])
    ratio = {(act, d): results.agg(depth_id(act, init, d), "grad_ratio_first_last")
             for act, init in DEPTH_FAMILIES for d in depths}
    # shrink factor per 5 added layers between consecutive depths: (r_d1 / r_d2) ** (5 / (d2 - d1))
    shrink = [(ratio["sigmoid", a] / ratio["sigmoid", b]) ** (5 / (b - a)) for a, b in zip(depths, depths[1:])]
    relu = [ratio["relu", d] for d in depths]
    worst_relu = max(relu, key=lambda r: abs(math.log10(r)))
    out = [
        at_most("sigmoid-n001-does-not-learn", PHENOMENON, "sigmoid + N(0, 0.01) does not learn: test accuracy within 2x chance",
                acc["sigmoid-n0.01"], 2 * chance_accuracy(results, "sigmoid-n0.01")),
        is_true("relu-he-best", PHENOMENON, "ReLU + He is the best of the four course variants (margin over the next best)",
                acc["relu-he"] > best_other, acc["relu-he"] - best_other),
        at_least("sigmoid-ratio-shrinks-with-depth", PHENOMENON, "sigmoid + Xavier: first/last gradient ratio shrinks >= 10x per 5 added layers (worst)",
                 min(shrink, default=float("nan")), 10.0, "needs two or more depths"),
        between("relu-he-ratio-steady", PHENOMENON, "ReLU + He: first/last gradient ratio stays in [0.1, 10] at every depth (worst)",
                worst_relu, 0.1, 10.0),
        at_most("sigmoid-derivative-peak-at-0", ANALYTIC, "sigmoid' peaks at x = 0 (|argmax|, by autograd)", abs(e["sigmoid_derivative_peak_x"]), 1e-9),
        between("sigmoid-derivative-at-0", ANALYTIC, "sigmoid'(0) = 0.25 (the notes write 0.2 in the working)", e["sigmoid_derivative_peak"],
                0.25 - 1e-12, 0.25 + 1e-12),
        at_most("chain-rule", ANALYTIC, "chain rule: dz/dx = 2(x + y) for z = t^2, t = x + y (largest autograd error)",
                e["chain_rule_max_error"], 1e-12),
    ]
    if 10 in depths:
        out.insert(3, at_most("sigmoid-ratio-at-depth-10", PHENOMENON, "sigmoid + Xavier: first/last gradient ratio below 1e-3 at depth 10",
                              ratio["sigmoid", 10], 1e-3))
    return out
