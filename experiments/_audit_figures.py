"""Figures of the audit's own measurements (experiments/claims_audit.py), from its measured numbers."""
from __future__ import annotations

import numpy as np
import torch

from experiments import _landscapes as land
from repro import figures
from repro.experiment import seed_curve

BASIN_CODE = {"local": 0, "global": 1, "diverged": 2}


def sparsity_figure(m: dict):
    fig, axes = figures.new(1, 1, size=(5.5, 3.4))
    ax = axes[0][0]
    for k, (act, s) in enumerate(m["sparsity"].items()):
        ax.bar(k - 0.2, np.mean(s["exact"]), 0.4, color="C0", label="exactly 0" if k == 0 else None)
        ax.bar(k + 0.2, np.mean(s["near"]), 0.4, color="C1", label="|h| < 0.01" if k == 0 else None)
        ax.plot([k - 0.2] * len(s["exact"]), s["exact"], "k.", ms=4)
    ax.set_xticks(range(len(m["sparsity"])), list(m["sparsity"]))
    ax.set(ylabel="share of hidden activations (test images)", title="trained 784-100-100-10 nets: sparsity")
    ax.legend()
    return fig


def dropout_figure(m: dict):
    fig, axes = figures.new(1, 1, size=(5.5, 3.4))
    ax = axes[0][0]
    curve = np.mean([d["curve"] for d in m["dropout"]], 0)
    ax.plot(np.arange(1, len(curve) + 1), curve, "o-", ms=3, label="average of k sampled masks")
    ax.axhline(np.mean([d["eval_acc"] for d in m["dropout"]]), color="k", ls="--", label="eval mode (scaled net)")
    ax.axhline(np.mean([d["single_acc"] for d in m["dropout"]]), color="C3", ls=":", label="one mask (mean)")
    ax.set(xscale="log", xlabel="masks averaged (k)", ylabel="test accuracy, mean of seeds",
           title="dropout 0.5 as an ensemble of thinned nets")
    ax.legend(fontsize=8)
    return fig


def overfitting_figure(ctx, nets: dict[str, str]):
    """``nets``: variant id -> its label."""
    fig, axes = figures.new(1, 1, size=(5.5, 3.4))
    ax = axes[0][0]
    for k, (vid, label) in enumerate(nets.items()):
        for metric, ls in (("accuracy_train", "--"), ("accuracy_test", "-")):
            steps, mean, _, _ = seed_curve(ctx.trials[vid], metric)
            ax.plot(steps, mean, ls, color=f"C{k}", label=label if metric == "accuracy_test" else None)
    ax.set(xlabel="iteration", ylabel="accuracy (train dashed, test solid)", title="overfitting on 300 images")
    ax.legend(fontsize=8)
    return fig


def window_figure(m: dict):
    fig, axes = figures.new(1, 1, size=(6.0, 3.8))
    ax = axes[0][0]
    for k, (opt, w) in enumerate(m["window"].items()):
        lrs = [float(lr) for lr in w["losses"]]
        loss = [np.nan if v is None else v for v in w["losses"].values()]
        ax.plot(lrs, loss, "o-", color=f"C{k}", label=f"{land.LABELS[opt]} (window x{w['width']:.3g})")
        ax.plot(w["window"], [w["best_loss"] * 1.1] * 2, "-", color=f"C{k}", lw=6, alpha=0.3)
        ax.plot(w["unstable"], [3.0] * len(w["unstable"]), "x", color=f"C{k}", ms=9)
    ax.set(xscale="log", yscale="log", xlabel="learning rate", ylabel="final loss (10000 training images)",
           title="band: within 10% of the best loss; x: diverged or ended above 2x its start")
    ax.legend(fontsize=7, loc="upper center")
    return fig


def well_figure(m: dict):
    fig, axes = figures.new(1, 2, size=(4.8, 3.6))
    x = torch.linspace(-2.3, 2.8, 300, dtype=torch.float64)
    axes[0][0].plot(x, land.double_well(x), "k")
    axes[0][0].plot([land.WELL_START], land.double_well(torch.tensor([land.WELL_START])), "go", label="start")
    axes[0][0].set(xlabel="x", ylabel="f(x)", title="double well: local min -1, global min 2")
    axes[0][0].legend()
    rows, labels = [], []
    for opt in land.OPTIMIZERS:
        cells = m["well"][opt]["cells"]
        for mom in (land.MOMENTA if opt == "momentum" else (None,)):
            rows.append([BASIN_CODE[c["basin"]] for c in cells if c.get("momentum") == mom])
            labels.append(land.LABELS[opt] + (f" m {mom:g}" if mom is not None else ""))
    ax = axes[0][1]
    ax.imshow(rows, cmap=__import__("matplotlib").colors.ListedColormap(["#f4a261", "#2a9d8f", "#bbbbbb"]),
              vmin=0, vmax=2, aspect="auto")
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xticks(range(len(land.LR_GRID)), [f"{lr:g}" for lr in land.LR_GRID], rotation=90, fontsize=7)
    ax.set(xlabel="learning rate", title="end: orange local, green global, grey diverged")
    return fig


def valley_figure(m: dict):
    fig, axes = figures.new(1, 1, size=(6.0, 3.8))
    ax = axes[0][0]
    for k, opt in enumerate(land.OPTIMIZERS):
        cells = m["valley"][opt]["cells"]
        for mom in (land.MOMENTA if opt == "momentum" else (None,)):
            rows = [c for c in cells if c.get("momentum") == mom]
            n = [np.nan if c["iterations"] is None else c["iterations"] for c in rows]
            ax.plot([c["lr"] for c in rows], n, "o-", ms=3, color=f"C{k}", alpha=1 if mom in (None, 0.9) else 0.4,
                    label=land.LABELS[opt] + (f" m {mom:g}" if mom is not None else "") if mom in (None, 0.9) else None)
    ax.set(xscale="log", yscale="log", xlabel="learning rate", ylabel="iterations until f stays < 1e-3",
           title="valley x²/20 + y² from (-7, 2) (Momentum: faint lines other m)")
    ax.legend(fontsize=8)
    return fig


def saddle_figure(m: dict):
    fig, axes = figures.new(1, 2, size=(4.8, 3.6))
    for opt, rate in m["shrink"].items():
        axes[0][0].plot(np.arange(1, len(rate) + 1), rate, label=land.LABELS[opt])
    axes[0][0].set(xscale="log", yscale="log", xlabel="step", ylabel="|step| / |gradient| along x",
                   title="effective rate on the valley")
    axes[0][0].legend()
    ax = axes[0][1]
    for k, geometry in enumerate(("axis", "rotated")):
        steps = [m["saddle"][geometry][opt] for opt in land.OPTIMIZERS]
        ax.bar(np.arange(len(steps)) + 0.4 * k - 0.2, [np.nan if s is None else s for s in steps], 0.4,
               label=f"{geometry} saddle")
    ax.set_xticks(range(len(land.OPTIMIZERS)), [land.LABELS[o] for o in land.OPTIMIZERS], fontsize=8)
    ax.set(ylabel="iterations to escape (f < -1)", title="saddle x² - y² from (3, 1e-3)")
    ax.legend(fontsize=8)
    return fig


def figures_of(m: dict, overfit_nets: dict[str, str], ctx) -> dict:
    out = ctx.out_dir
    made = {"sparsity of trained ReLU, sigmoid and tanh nets": ("sparsity", sparsity_figure(m)),
            "dropout as an ensemble: averaged masks against the scaled net": ("dropout", dropout_figure(m)),
            "overfitting on 300 images: without BN, with BN, 1 x 16":
                ("overfitting", overfitting_figure(ctx, overfit_nets)),
            "learning-rate window per optimiser (book network)": ("window", window_figure(m)),
            "double well: the basin each optimiser ends in": ("double_well", well_figure(m)),
            "valley: iterations to f < 1e-3 against the learning rate": ("valley", valley_figure(m)),
            "saddle: AdaGrad's shrinking rate and escape times": ("saddle", saddle_figure(m))}
    return {title: figures.save(fig, out / f"{stem}.png", ctx.logdir, f"claims_audit/{stem}")
            for title, (stem, fig) in made.items()}
