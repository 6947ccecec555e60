"""Section 1-3: batch normalisation.

Shows: BN standardises each layer's pre-activations over the mini-batch, so each nonlinearity's
input keeps its distribution as the weights below change: faster, far less init-sensitive training.
Setup: (1) the book's sweep: first 1000 training images, 5 x 100 ReLU, SGD 0.01, batch 100, 20
epochs, every layer N(0, w^2) for 16 w log-spaced 1..1e-4 (quick 9), plain vs BN (eps 1e-6 as in
the book), identical batches; train accuracy. (2) Speed-up, full MNIST: 3 x 100, sigmoid/ReLU +
Xavier, SGD 0.01, batch 100, 5000 iterations, plain vs BN: iterations to 90% / 95% test accuracy;
the mean and sd of the deepest activation's input (act3) over training. (3) The course: 784-40-20-10
sigmoid, Xavier, BN with scale/shift fixed at 1/0, SGD 0.01, 1000 iterations, beside trained
scale/shift and no BN; train vs eval mode on it.
Reference (book, ch06/batch_norm_test.py, final train accuracy): plain 0.82-0.98 near w = 0.16-0.3,
about 0.11 elsewhere; BN >= 0.95 for w in [0.002, 0.05], 0.4-0.8 at the extremes. Course: test 0.81.
Runtime: full preset (3 seeds) 99 s on the 2-core dev machine (2026-12-02).
Findings and how they were measured: docs/FINDINGS.md#batchnorm
"""
from __future__ import annotations

import copy
import math

import numpy as np
import torch
from matplotlib.lines import Line2D

from repro import figures
from repro.data import load
from repro.experiment import (ANALYTIC, FIGURE, PHENOMENON, MEASURED_HERE, Claim, Reference, Run, TrialConfig, Variant, at_least,
                              at_most, chance_accuracy, format_stats, md_table, stats)

TITLE = "Section 1-3: batch normalisation (speed-up, init-insensitivity, stable layer inputs)"

PRESETS = {
    "full": {"seeds": 5, "scales": 16, "sweep_epochs": 20, "speed_iters": 5000, "course_iters": 1000},
    # quick: 9 scales (1, 0.316, 0.1, ... 1e-4), one seed; tests/ thresholds come from it
    "quick": {"seeds": 1, "scales": 9, "sweep_epochs": 20, "speed_iters": 5000, "course_iters": 1000},
}

SWEEP = TrialConfig(train_size=1000, test_size=1000, widths=(100,) * 5, activation="relu", lr=0.01,
                    batch_size=100, eval_every=10, train_eval_size=1000, bn_eps=1e-6)
SPEED = TrialConfig(widths=(100,) * 3, init="xavier", lr=0.01, batch_size=100, eval_every=100,
                    train_eval_size=1000, probe_outputs=True)
COURSE = TrialConfig(widths=(40, 20), activation="sigmoid", init="xavier", lr=0.01, batch_size=100,
                     eval_every=100)
FIXED, TRAINED, NO_BN = "course-bn-fixed", "course-bn-trained", "course-no-bn"
ACTS = ("sigmoid", "relu")
DEEP_ACT, DEEP_FC = "act3", "fc3"   # the speed-up networks' deepest hidden layer
TARGETS = (0.90, 0.95)
BN_RANGE = (0.002, 0.05)            # the book: BN >= 0.95 here, while the plain net sits at chance


def weight_scales(n: int) -> list[float]:
    """n weight scales log-spaced from 1 down to 1e-4 (the book's sweep for n = 16)."""
    return [float(w) for w in np.logspace(0, -4, n)]


def sweep_id(w: float, bn: bool) -> str:
    return f"w{w:.3g}-{'bn' if bn else 'plain'}"


def speed_id(activation: str, bn: bool) -> str:
    return f"{activation}-xavier-{'bn' if bn else 'plain'}"


def speed_label(activation: str, bn: bool) -> str:
    return f"{activation} + xavier, {'BN' if bn else 'plain'}"


def book_sweep(w: float, bn: bool, scales: list[float]) -> Reference | None:
    """The book's figure as REFERENCES.md reads it (its w are ours for n = 16); None: no number given."""
    if not bn:
        sweet = 0.15 <= w <= 0.3   # the book's 0.158 and 0.293
        return Reference("final_train_acc", *((0.82, 0.98) if sweet else (0.10, 0.12)), "book")
    if BN_RANGE[0] <= w <= BN_RANGE[1]:
        return Reference("final_train_acc", 0.95, 1.0, "book")
    return Reference("final_train_acc", 0.4, 0.8, "book", "the extremes") if w in (scales[0], scales[-1]) else None


def validate(p: dict) -> str | None:
    """Why the claims could not judge these parameters: the BN claims read the scales in BN_RANGE, and
    log-spaced scales from 1 to 1e-4 put one there from 3 scales on (1, 0.01, 1e-4; 4 and more: a step of
    at most 4/3 decades, less than the range's 1.4)."""
    if p["scales"] < 3:
        return (f"scales={p['scales']}: the claims judge BN at weight scales in [{BN_RANGE[0]}, {BN_RANGE[1]}], "
                f"which fewer than 3 scales from 1 to 1e-4 miss; use 3 or more")
    return None


def variants(p: dict) -> list[Variant]:
    scales = weight_scales(p["scales"])
    sweep = SWEEP.replace(iters=10 * p["sweep_epochs"], probe_every=10 * p["sweep_epochs"])
    out = [Variant(sweep_id(w, bn), sweep.replace(init=f"normal:{w!r}", batchnorm=bn), "weight-scale sweep",
                   book_sweep(w, bn, scales), metric="final_train_acc", label=f"w={w:.3g}, {'BN' if bn else 'plain'}")
           for w in scales for bn in (False, True)]
    measured = {("sigmoid", False): 0.14, ("sigmoid", True): 0.92}
    for act in ACTS:
        for bn in (False, True):
            ref = measured.get((act, bn))
            out.append(Variant(speed_id(act, bn), SPEED.replace(activation=act, batchnorm=bn, iters=p["speed_iters"]),
                               "speed-up", Reference("final_test_acc", ref, ref, MEASURED_HERE) if ref else None,
                               label=speed_label(act, bn)))
    course = COURSE.replace(iters=p["course_iters"])
    return out + [Variant(FIXED, course.replace(batchnorm=True, bn_affine=False), "course",
                          Reference("final_test_acc", 0.81, 0.81, "course"), keep_state=True,
                          label="course: BN, scale/shift fixed"),
                  Variant(TRAINED, course.replace(batchnorm=True), "course", keep_state=True,
                          label="course: BN, scale/shift trained"),
                  Variant(NO_BN, course, "course", label="course: no BN")]


def iterations_to(history: list[dict], target: float) -> int | None:
    """The first evaluated step at which test accuracy reaches ``target``; None if it never does."""
    return next((p["step"] for p in history if p.get("accuracy_test", -1.0) >= target), None)


def spread(values: list[float]) -> float:
    """How far a positive quantity moves over training: largest over smallest value (1: constant)."""
    return max(values) / min(values)


def mode_gaps(model: torch.nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Eval mode (running statistics) against train mode (batch statistics) on one small batch,
    on a copy: a train-mode pass would update ``model``'s running averages."""
    net = copy.deepcopy(model)
    with torch.no_grad():
        net.eval()
        first, again, alone = net(x), net(x), net(x[:1])
        net.train()
        batch_stats = net(x)
    return {"eval_repeat": float((first - again).abs().max()),
            "eval_batch_dependence": float((first[:1] - alone).abs().max()),
            "train_vs_eval": float((batch_stats - first).abs().max())}


def sweep_figure(ctx, scales: list[float]) -> str:
    cols = math.ceil(math.sqrt(len(scales)))   # the book's 4 x 4 grid for 16 scales
    fig, axes = figures.new(math.ceil(len(scales) / cols), cols, size=(2.6, 2.1), sharex=True, sharey=True)
    for ax, w in zip(axes.flat, scales):
        for bn in (True, False):
            figures.band(ax, ctx.trials[sweep_id(w, bn)], lambda p: p["accuracy_train"], "BN" if bn else "plain",
                  color="C0" if bn else "C1", ls="-" if bn else "--")
        diverged = sum(not t.finished for t in ctx.trials[sweep_id(w, False)])
        if diverged:
            ax.text(0.04, 0.9, f"plain diverged ({diverged} of {ctx.seeds})", transform=ax.transAxes, fontsize=7)
        ax.set_title(f"w = {w:.3g}", fontsize=9)
        ax.set_ylim(0, 1.02)
    for ax in axes.flat[len(scales):]:
        ax.axis("off")
    axes.flat[len(scales) - 1].legend([Line2D([], [], color="C0"), Line2D([], [], color="C1", ls="--")],
                                      ["BN", "plain"], fontsize=7)
    for ax in axes.flat[len(scales) - cols:len(scales)]:
        ax.set_xlabel("iteration (10 per epoch)", fontsize=8)
    fig.suptitle("train accuracy (1000 images) per epoch, N(0, w^2) init: mean and min-max over seeds", fontsize=10)
    return figures.save(fig, ctx.out_dir / "weight_scale_sweep.png", ctx.logdir, "batchnorm/weight_scale_sweep")


def speed_figure(ctx) -> str:
    """Per activation: test accuracy, then the mean and sd of the deepest activation's input."""
    fig, axes = figures.new(2, 3, size=(4.2, 3.0), sharex=True)
    panels = [("test accuracy", lambda p: p["accuracy_test"], None),
              (f"{DEEP_ACT} input: mean", lambda p: p["activations"][DEEP_ACT]["preact_mean"], "mean"),
              (f"{DEEP_ACT} input: sd", lambda p: p["activations"][DEEP_ACT]["preact_std"], "std")]
    for row, act in zip(axes, ACTS):
        for ax, (title, value, stat) in zip(row, panels):
            for bn in (False, True):
                trials = ctx.trials[speed_id(act, bn)]
                figures.band(ax, trials, value, "BN" if bn else "plain", color="C0" if bn else "C1")
                if bn and stat:
                    figures.band(ax, trials, lambda p: p["layer_outputs"][DEEP_FC][stat], f"BN net: {DEEP_FC} output "
                          "(before BN)", color="C0", ls=":")
            ax.set_title(f"{act} + Xavier: {title}", fontsize=9)
        for target in TARGETS:
            row[0].axhline(target, color="grey", lw=0.6, ls=":")
        row[0].set_ylim(0, 1)
    axes[1][0].legend(fontsize=7)
    axes[1][2].legend(fontsize=7)
    for ax in axes[1]:
        ax.set_xlabel("iteration")
    fig.suptitle("speed-up on full MNIST, and the input of the deepest activation (1000 training images, eval mode)",
                 fontsize=10)
    return figures.save(fig, ctx.out_dir / "speed_up_layer_inputs.png", ctx.logdir, "batchnorm/speed_up_layer_inputs")


def tables(ctx, scales: list[float], budget: int) -> dict[str, str]:
    def final(w, bn):
        return format_stats(stats([t.summary["final_train_acc"] for t in ctx.trials[sweep_id(w, bn)]]))

    def book(w, bn):
        ref = book_sweep(w, bn, scales)
        return ref.text() if ref else "-"
    sweep = [[f"{w:.3g}", final(w, False), book(w, False), final(w, True), book(w, True)] for w in scales]
    speed = []
    for act in ACTS:
        for bn in (False, True):
            trials = ctx.trials[speed_id(act, bn)]
            speed.append([speed_label(act, bn)] + [", ".join(str(iterations_to(t.history, x) or f">{budget}")
                                                             for t in trials) for x in TARGETS])
    return {"Weight-scale sweep: final train accuracy, mean ± sd (n), beside the book's":
            md_table(["w", "plain", "book", "BN", "book"], sweep),
            "Speed-up: iterations to reach a test accuracy":
            md_table(["variant"] + [f"iterations to {t:.0%} (per seed)" for t in TARGETS], speed)}


def extras(p: dict, ctx) -> dict:
    scales = weight_scales(p["scales"])
    batch = load(ctx.trials[FIXED][0].config["dataset"]).x_test[:8]  # on the CPU, like the saved weights
    gaps = [mode_gaps(model, batch) for model in ctx.trained_models(FIXED)]
    # how far training moved BN's scale (from 1) and shift (from 0) in the course network
    moved = [float((s[k] - (1.0 if k.endswith("weight") else 0.0)).abs().max())
             for s in ctx.states[TRAINED] for k in s if k.startswith("bn") and k.endswith(("weight", "bias"))]
    return {"figures": {"weight-scale sweep: train accuracy per epoch, BN vs plain": sweep_figure(ctx, scales),
                        "speed-up, and layer inputs (the deepest activation's) over training": speed_figure(ctx)},
            "tables": tables(ctx, scales, p["speed_iters"]),
            "mode_gaps": {k: max(g[k] for g in gaps) for k in gaps[0]},
            "course_scale_shift_largest_move": max(moved)}


def _histories(results: Run, variant: str) -> list[list[dict]]:
    return [t.history for t in results.trials_of(variant)]


def speed_ratio(results: Run, activation: str, target: float = 0.9) -> tuple[float, str]:
    """BN's mean iterations to ``target`` over the plain net's, where a plain run that never gets
    there counts as the whole budget (a lower bound, so the ratio can only be overstated)."""
    budget = results.params["speed_iters"]
    bn, plain = ([iterations_to(h, target) for h in _histories(results, speed_id(activation, with_bn))]
                 for with_bn in (True, False))
    detail = f"iterations to {target:.0%}: BN {bn}, plain {plain} (None: not within {budget})"
    if None in bn:
        return math.inf, detail
    return float(np.mean(bn) / np.mean([budget if s is None else s for s in plain])), detail


def input_drift(results: Run, activation: str, bn: bool) -> list[float]:
    """Per seed: how far the sd of the deepest activation's input moves over training (spread)."""
    return [spread([p["activations"][DEEP_ACT]["preact_std"] for p in h if p.get("activations")])
            for h in _histories(results, speed_id(activation, bn))]


def claims(results: Run) -> list[Claim]:
    p, e = results.params, results.extras
    scales = weight_scales(p["scales"])
    final = {(w, bn): results.agg(sweep_id(w, bn), "final_train_acc") for w in scales for bn in (False, True)}
    mid = [w for w in scales if BN_RANGE[0] <= w <= BN_RANGE[1]]
    span = f"at every w in [{BN_RANGE[0]}, {BN_RANGE[1]}]"
    # a plain net that diverged (NaN) has learned nothing: BN is ahead of it
    ahead = [w for w in scales if final[w, True] > final[w, False] or math.isnan(final[w, False])]
    need = math.ceil(0.75 * len(scales))   # 12 of the book's 16
    out = [at_least("bn-trains-at-every-small-scale", FIGURE, f"BN: final train accuracy >= 0.9 {span} (lowest mean over seeds)",
                    min(final[w, True] for w in mid), 0.9, "w = " + ", ".join(f"{w:.3g}" for w in mid)),
           at_most("plain-stuck-at-small-scales", PHENOMENON, f"plain: final train accuracy within 2x chance {span} (highest mean over seeds)",
                   max(final[w, False] for w in mid), 2 * chance_accuracy(results, sweep_id(mid[0], False))),
           at_least("bn-ahead-at-most-scales", PHENOMENON, f"BN is ahead of the plain net (final train accuracy) at >= {need} of the {len(scales)} scales",
                    len(ahead), need, "not ahead at w = " + ", ".join(f"{w:.3g}" for w in scales if w not in ahead))]
    for act in ACTS:
        ratio, detail = speed_ratio(results, act)
        out.append(at_most(f"{act}-bn-halves-iterations", FIGURE, f"{act} + Xavier: BN reaches 90% test accuracy in at most half the iterations of the "
                           "plain net (BN / plain, mean over seeds)", ratio, 0.5, detail))
    drift = {(act, bn): input_drift(results, act, bn) for act in ACTS for bn in (False, True)}
    out += [at_least("plain-layer-input-drifts", PHENOMENON, f"without BN (ReLU + Xavier) the sd of {DEEP_ACT}'s input drifts >= 3x over training "
                     "(largest / smallest evaluation point, mean over seeds)", float(np.mean(drift["relu", False])),
                     3.0, f"sigmoid plain {np.mean(drift['sigmoid', False]):.3g}: it hardly learns, so hardly drifts"),
            at_most("bn-layer-input-steady", PHENOMENON, f"with BN the sd of {DEEP_ACT}'s input stays within a factor 1.3 over training (worst seed, "
                    "sigmoid and ReLU)", max(drift["sigmoid", True] + drift["relu", True]), 1.3)]
    fixed, trained, plain = (results.agg(v) for v in (FIXED, TRAINED, NO_BN))
    out.append(at_least("course-bn-beats-no-bn", PHENOMENON, "course setup: BN (scale/shift fixed, as in the course) beats no BN (test accuracy margin)",
                        fixed - plain, 0.2, f"fixed {fixed:.3f}, trained {trained:.3f}, no BN {plain:.3f}; course "
                        f"0.81; trained scale/shift moved at most {e['course_scale_shift_largest_move']:.3f}"))
    gaps = e["mode_gaps"]
    return out + [
        at_most("eval-mode-deterministic", ANALYTIC, "eval mode is deterministic: the same batch twice gives the same logits (largest difference)",
                gaps["eval_repeat"], 0.0),
        at_most("eval-mode-batch-independent", ANALYTIC, "eval mode does not depend on the batch: an image alone = the same image in a batch of 8",
                gaps["eval_batch_dependence"], 1e-5),
        at_least("train-mode-differs-from-eval", ANALYTIC, "train mode (batch statistics) differs from eval mode (running averages) on a batch of 8 "
                 "(largest logit difference)", gaps["train_vs_eval"], 1e-2)]
