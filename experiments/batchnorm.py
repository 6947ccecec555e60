"""Section 1-3: batch normalisation.

Phenomenon: BN standardises each layer's pre-activations over the mini-batch (then applies a
scale and shift) before the activation. Training gets faster and far less sensitive to the
initial weight scale, because the input of each nonlinearity keeps the same distribution while
the weights below it change; without BN that input starts tiny or huge at a bad scale and drifts
as training goes on.

Setup. (1) The book's weight-scale sweep: first 1000 training images, 5 hidden layers of 100
ReLU, SGD lr 0.01, batch 100, 20 epochs (200 updates), every layer N(0, w^2) for 16 w
log-spaced from 1 to 1e-4, with and without BN (scale and shift trained, eps 1e-6 as in the
book), on identical batches (the batch order depends on the seed alone); train accuracy on the
1000 images after every epoch. (2) Speed-up on full MNIST: 3 hidden layers of 100, SGD lr 0.01,
batch 100, sigmoid + Xavier and ReLU + Xavier with and without BN; test accuracy on all 10000
test images every 100 iterations, and the first iteration at which it reaches 90% and 95%.
(3) The course: 784-40-20-10 sigmoid, Xavier, BN with scale and shift fixed at 1 and 0 (the
course never trained them), SGD lr 0.01, batch 100, 1000 iterations; beside it trained scale and
shift, and no BN. (4) Layer inputs over training in the speed-up networks: mean and sd of the
input of the deepest activation (act3: BN's output with BN, fc3's output without) and of fc3's
own output before BN, every 100 iterations, on 1000 training images in eval mode (TensorBoard:
preact_std/act3 and out_std/fc3 of each trial). (5) Train vs eval mode on the trained course
network: eval mode normalises with the running averages, so its outputs are deterministic and
independent of the batch; train mode uses each batch's own statistics.

Choices. The sweep scores test accuracy on the first 1000 test images only: all 10000 after
every epoch cost more than the training itself (a trial took 1.6x as long, one seed, machine
under load); the book shows train accuracy only. The speed-up study reads train accuracy on 1000
images for the same reason; its test accuracy uses all 10000 (the first 2000 alone are harder and
shift the iteration counts). torch's BN adds eps 1e-5 to the batch variance, the book 1e-6: at
w <= 3e-4 the pre-BN variance of deep layers falls below 1e-5, BN stops normalising and the net
stays at chance (w = 1e-4: 0.116 with 1e-5, 0.52-0.54 with 1e-6, 2 seeds), so the sweep uses 1e-6.
Elsewhere pre-BN variances are about 0.3-0.6, where eps does not matter.

References (REFERENCES.md) and ours (full preset, 3 seeds). Book sweep, final train accuracy:
plain learns only near w = 0.16-0.3 (0.82-0.98; ours 0.86 and 0.99) and sits at about 0.11
elsewhere (ours 0.116, but at w >= 0.5 it diverges within 5 steps: a net that overflows like
that predicts one class, which is probably what the book's 0.1 there is); BN >= 0.95 for w in
[0.002, 0.05] (ours 0.96-1.00, lowest at 0.00215 where one seed of 3 ends near 0.88), 0.4-0.8 at
the extremes (ours 0.44 at w = 1, 0.50 at 1e-4). At 0.16-0.3, where the plain net's init is
right, BN is behind it (0.66 vs 0.99 at 0.293): BN makes the forward pass blind to the weights'
scale, so large weights only shrink the effective step (lr / w^2). Course: 0.81 (ours 0.808; with
trained scale and shift 0.816, +0.0095 ± 0.0017 over 10 quick seeds, all positive: they move by up
to 0.28 in 1000 iterations; no BN 0.21). Plain torch here, one seed: sigmoid plain 0.14 after
5000 iterations (ours 0.116), BN 0.92 with 90% at 2000 (ours 0.920, 1700-2000); ReLU plain 90%
at 1600 (ours 1500-1600), BN at 400 (ours 400-500). The sd of act3's input drifts 10x in the
plain ReLU net (0.2 to 1.9) and stays within 1.17x with BN; the plain sigmoid net hardly learns
at lr 0.01, so its inputs hardly move (1.05x): drift comes with learning, not instead of it.
Two sweep rows miss the book's figures (read off its plot). At w = 0.0858 plain ends at 0.13-0.34
(3 seeds) against about 0.11: it starts learning late (0.6x He's scale; seed 2 went 0.07, 0.12,
0.18, 0.26, 0.32 over epochs 1, 5, 9, 13, 17) and is still rising at epoch 20 in 2 of 3 seeds; why
the book's run had not started is unexplained. At w = 0.293 plain ends at 0.977-0.999 against
0.82-0.98: the seeds' range overlaps it.

Runtime on the 2-core development machine (AMD EPYC VM, idle): full preset, 3 seeds, 117 trials in
193 s (2 workers); two thirds of it is the speed-up study (5000 steps a trial).
"""
from __future__ import annotations

import copy
import math

import numpy as np
import torch
from matplotlib.lines import Line2D

from repro import figures
from repro.claims import Claim, at_least, at_most
from repro.config import TrialConfig
from repro.data import load
from repro.nets import build_model
from repro.runner import Reference, Variant, agg, format_stats, stats

TITLE = "Section 1-3: batch normalisation (speed-up, init-insensitivity, stable layer inputs)"

PRESETS = {
    "full": {"seeds": 3, "scales": 16, "sweep_epochs": 20, "speed_iters": 5000, "course_iters": 1000},
    # quick: 9 scales (1, 0.316, 0.1, ... 1e-4), one seed; tests/ thresholds come from it
    "quick": {"seeds": 1, "scales": 9, "sweep_epochs": 20, "speed_iters": 5000, "course_iters": 1000},
}

SWEEP = TrialConfig(train_size=1000, test_size=1000, widths=(100,) * 5, activation="relu", lr=0.01,
                    batch_size=100, eval_every=10, train_eval_size=1000, bn_eps=1e-6)
SPEED = TrialConfig(widths=(100,) * 3, init="xavier", lr=0.01, batch_size=100, eval_every=100,
                    train_eval_size=1000, probe_outputs=True)
COURSE = TrialConfig(widths=(40, 20), activation="sigmoid", init="xavier", lr=0.01, batch_size=100,
                     eval_every=100)
FIXED, TRAINED, NO_BN = "course: BN, scale/shift fixed", "course: BN, scale/shift trained", "course: no BN"
ACTS = ("sigmoid", "relu")
DEEP_ACT, DEEP_FC = "act3", "fc3"   # the speed-up networks' deepest hidden layer
TARGETS = (0.90, 0.95)
BN_RANGE = (0.002, 0.05)            # the book: BN >= 0.95 here, while the plain net sits at chance


def weight_scales(n: int) -> list[float]:
    """n weight scales log-spaced from 1 down to 1e-4 (the book's sweep for n = 16)."""
    return [float(w) for w in np.logspace(0, -4, n)]


def sweep_name(w: float, bn: bool) -> str:
    return f"w={w:.3g}, {'BN' if bn else 'plain'}"


def speed_name(activation: str, bn: bool) -> str:
    return f"{activation} + xavier, {'BN' if bn else 'plain'}"


def book_sweep(w: float, bn: bool, scales: list[float]) -> Reference | None:
    """The book's figure as REFERENCES.md reads it (its w are ours for n = 16); None: no number given."""
    if not bn:
        sweet = 0.15 <= w <= 0.3   # the book's 0.158 and 0.293
        return Reference("final_train_acc", *((0.82, 0.98) if sweet else (0.10, 0.12)), "book")
    if BN_RANGE[0] <= w <= BN_RANGE[1]:
        return Reference("final_train_acc", 0.95, 1.0, "book")
    return Reference("final_train_acc", 0.4, 0.8, "book", "the extremes") if w in (scales[0], scales[-1]) else None


def variants(p: dict) -> list[Variant]:
    scales = weight_scales(p["scales"])
    sweep = SWEEP.replace(iters=10 * p["sweep_epochs"], probe_every=10 * p["sweep_epochs"])
    out = [Variant(sweep_name(w, bn), sweep.replace(init=f"normal:{w!r}", batchnorm=bn), "weight-scale sweep",
                   book_sweep(w, bn, scales), metric="final_train_acc") for w in scales for bn in (False, True)]
    measured = {("sigmoid", False): 0.14, ("sigmoid", True): 0.92}
    for act in ACTS:
        for bn in (False, True):
            ref = measured.get((act, bn))
            out.append(Variant(speed_name(act, bn), SPEED.replace(activation=act, batchnorm=bn, iters=p["speed_iters"]),
                               "speed-up", Reference("final_test_acc", ref, ref, "measured here") if ref else None))
    course = COURSE.replace(iters=p["course_iters"])
    return out + [Variant(FIXED, course.replace(batchnorm=True, bn_affine=False), "course",
                          Reference("final_test_acc", 0.81, 0.81, "course"), keep_state=True),
                  Variant(TRAINED, course.replace(batchnorm=True), "course", keep_state=True),
                  Variant(NO_BN, course, "course")]


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


def _band(ax, trials: list[dict], value, label: str, **style) -> None:
    """Mean over seeds of ``value(point)`` against the step, with the seeds' min-max as a band."""
    ok = [t for t in trials if t["status"] == "ok"]
    if ok:
        rows = np.array([[value(p) for p in t["history"]] for t in ok])
        line, = ax.plot([p["step"] for p in ok[0]["history"]], rows.mean(0), label=label, **style)
        ax.fill_between([p["step"] for p in ok[0]["history"]], rows.min(0), rows.max(0), color=line.get_color(),
                        alpha=0.2, lw=0)


def sweep_figure(ctx, scales: list[float]) -> str:
    cols = math.ceil(math.sqrt(len(scales)))   # the book's 4 x 4 grid for 16 scales
    fig, axes = figures.new(math.ceil(len(scales) / cols), cols, size=(2.6, 2.1), sharex=True, sharey=True)
    for ax, w in zip(axes.flat, scales):
        for bn in (True, False):
            _band(ax, ctx.trials[sweep_name(w, bn)], lambda p: p["accuracy_train"], "BN" if bn else "plain",
                  color="C0" if bn else "C1", ls="-" if bn else "--")
        diverged = sum(t["status"] == "diverged" for t in ctx.trials[sweep_name(w, False)])
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
                trials = ctx.trials[speed_name(act, bn)]
                _band(ax, trials, value, "BN" if bn else "plain", color="C0" if bn else "C1")
                if bn and stat:
                    _band(ax, trials, lambda p: p["layer_outputs"][DEEP_FC][stat], f"BN net: {DEEP_FC} output "
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
        return format_stats(stats([t["summary"]["final_train_acc"] for t in ctx.trials[sweep_name(w, bn)]]))

    def book(w, bn):
        ref = book_sweep(w, bn, scales)
        return ref.text() if ref else "-"
    sweep = ["| w | plain | book | BN | book |", "|---|---|---|---|---|"]
    sweep += [f"| {w:.3g} | {final(w, False)} | {book(w, False)} | {final(w, True)} | {book(w, True)} |"
              for w in scales]
    speed = ["| variant | " + " | ".join(f"iterations to {t:.0%} (per seed)" for t in TARGETS) + " |", "|---|---|---|"]
    for act in ACTS:
        for bn in (False, True):
            trials = ctx.trials[speed_name(act, bn)]
            reach = [", ".join(str(iterations_to(t["history"], x) or f">{budget}") for t in trials) for x in TARGETS]
            speed.append(f"| {speed_name(act, bn)} | " + " | ".join(reach) + " |")
    return {"Weight-scale sweep: final train accuracy, mean ± sd (n), beside the book's": "\n".join(sweep),
            "Speed-up: iterations to reach a test accuracy": "\n".join(speed)}


def extras(p: dict, ctx) -> dict:
    scales = weight_scales(p["scales"])
    config = TrialConfig.from_dict(ctx.trials[FIXED][0]["config"])
    batch = load(config.dataset).x_test[:8]  # on the CPU, like the saved weights
    gaps = []
    for state in ctx.states[FIXED]:
        model = build_model(config)
        model.load_state_dict(state)
        gaps.append(mode_gaps(model, batch))
    # how far training moved BN's scale (from 1) and shift (from 0) in the course network
    moved = [float((s[k] - (1.0 if k.endswith("weight") else 0.0)).abs().max())
             for s in ctx.states[TRAINED] for k in s if k.startswith("bn") and k.endswith(("weight", "bias"))]
    return {"figures": {"weight-scale sweep: train accuracy per epoch, BN vs plain": sweep_figure(ctx, scales),
                        "speed-up, and layer inputs (the deepest activation's) over training": speed_figure(ctx)},
            "tables": tables(ctx, scales, p["speed_iters"]),
            "mode_gaps": {k: max(g[k] for g in gaps) for k in gaps[0]},
            "course_scale_shift_largest_move": max(moved)}


def _histories(results: dict, variant: str) -> list[list[dict]]:
    return [t["history"] for t in results["trials"] if t["variant"] == variant]


def speed_ratio(results: dict, activation: str, target: float = 0.9) -> tuple[float, str]:
    """BN's mean iterations to ``target`` over the plain net's, where a plain run that never gets
    there counts as the whole budget (a lower bound, so the ratio can only be overstated)."""
    budget = results["params"]["speed_iters"]
    bn, plain = ([iterations_to(h, target) for h in _histories(results, speed_name(activation, with_bn))]
                 for with_bn in (True, False))
    detail = f"iterations to {target:.0%}: BN {bn}, plain {plain} (None: not within {budget})"
    if None in bn:
        return math.inf, detail
    return float(np.mean(bn) / np.mean([budget if s is None else s for s in plain])), detail


def input_drift(results: dict, activation: str, bn: bool) -> list[float]:
    """Per seed: how far the sd of the deepest activation's input moves over training (spread)."""
    return [spread([p["activations"][DEEP_ACT]["preact_std"] for p in h if p.get("activations")])
            for h in _histories(results, speed_name(activation, bn))]


def claims(results: dict) -> list[Claim]:
    p, e = results["params"], results["extras"]
    scales = weight_scales(p["scales"])
    final = {(w, bn): agg(results, sweep_name(w, bn), "final_train_acc") for w in scales for bn in (False, True)}
    mid = [w for w in scales if BN_RANGE[0] <= w <= BN_RANGE[1]]
    span = f"at every w in [{BN_RANGE[0]}, {BN_RANGE[1]}]"
    # a plain net that diverged (NaN) has learned nothing: BN is ahead of it
    ahead = [w for w in scales if final[w, True] > final[w, False] or math.isnan(final[w, False])]
    need = math.ceil(0.75 * len(scales))   # 12 of the book's 16
    out = [at_least(f"BN: final train accuracy >= 0.9 {span} (lowest mean over seeds)",
                    min(final[w, True] for w in mid), 0.9, "w = " + ", ".join(f"{w:.3g}" for w in mid)),
           at_most(f"plain: final train accuracy below 0.2 {span} (highest mean over seeds)",
                   max(final[w, False] for w in mid), 0.2),
           at_least(f"BN is ahead of the plain net (final train accuracy) at >= {need} of the {len(scales)} scales",
                    len(ahead), need, "not ahead at w = " + ", ".join(f"{w:.3g}" for w in scales if w not in ahead))]
    for act in ACTS:
        ratio, detail = speed_ratio(results, act)
        out.append(at_most(f"{act} + Xavier: BN reaches 90% test accuracy in at most half the iterations of the "
                           "plain net (BN / plain, mean over seeds)", ratio, 0.5, detail))
    drift = {(act, bn): input_drift(results, act, bn) for act in ACTS for bn in (False, True)}
    out += [at_least(f"without BN (ReLU + Xavier) the sd of {DEEP_ACT}'s input drifts >= 3x over training "
                     "(largest / smallest evaluation point, mean over seeds)", float(np.mean(drift["relu", False])),
                     3.0, f"sigmoid plain {np.mean(drift['sigmoid', False]):.3g}: it hardly learns, so hardly drifts"),
            at_most(f"with BN the sd of {DEEP_ACT}'s input stays within a factor 1.3 over training (worst seed, "
                    "sigmoid and ReLU)", max(drift["sigmoid", True] + drift["relu", True]), 1.3)]
    fixed, trained, plain = (agg(results, v) for v in (FIXED, TRAINED, NO_BN))
    out.append(at_least("course setup: BN (scale/shift fixed, as in the course) beats no BN (test accuracy margin)",
                        fixed - plain, 0.2, f"fixed {fixed:.3f}, trained {trained:.3f}, no BN {plain:.3f}; course "
                        f"0.81; trained scale/shift moved at most {e['course_scale_shift_largest_move']:.3f}"))
    gaps = e["mode_gaps"]
    return out + [
        at_most("eval mode is deterministic: the same batch twice gives the same logits (largest difference)",
                gaps["eval_repeat"], 0.0),
        at_most("eval mode does not depend on the batch: an image alone = the same image in a batch of 8",
                gaps["eval_batch_dependence"], 1e-5),
        at_least("train mode (batch statistics) differs from eval mode (running averages) on a batch of 8 "
                 "(largest logit difference)", gaps["train_vs_eval"], 1e-2)]
