"""Section 5: deeper "modern" CNNs: the book's DeepConvNet, batch norm, residual connections, depth.

Shows: more 3x3 convolutions (VGG style) give the book's best MNIST net; much deeper, a plain stack
is hard to train (at init the gradient reaching the lower layers shrinks without BN, grows with it);
residual blocks (He et al. 2016) give it an identity path, and a zero last BN scale per block
starts a deep residual net as a shallow one.
Setup (a, book): DeepConvNet 16,16 -> pool -> 32,32 (pad 2) -> pool -> 64,64 -> pool -> affine 50
-> dropout 0.5 -> affine 10 -> dropout 0.5, He, Adam 0.001, batch 100, 20 epochs = 12000 iterations
(cpu preset 3000), all of MNIST; also + BN, and residual + BN (one basic block per width). (b) Depth
study, 10 and 34 layers of width 16: two stem convs, then plain convs or basic blocks at 7x7, global
average pool; plain, plain + BN, residual + BN, SGD 0.05 momentum 0.9, 600 iterations, test on 2000
images; gradient per layer at init, body ratio = the first 7x7 layer's over the last's.
Reference: the book's DeepConvNet (ch08/train_deepnet.py), test accuracy 0.9938 after 20 epochs.
Runtime: cpu preset (2 seeds) 76 min on the 2-core dev machine, other jobs sharing it; full: a GPU.
Findings and how they were measured: docs/FINDINGS.md#modern_cnn
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from repro import figures
from repro.data import load
from repro.experiment import (FIGURE, PHENOMENON, DEEP_CONVNET, chance_accuracy, Claim, Reference, Run, TrialConfig, Variant,
                              at_least, at_most, between, is_true)
from repro.nets import activation_layers, build_model
from repro.engine import seeded_generators

TITLE = "Section 5: DeepConvNet, batch norm, residual networks, depth"

PRESETS = {
    "full": {"seeds": 3, "iters": 12000, "eval_every": 1200, "test_size": None, "train_eval_size": 10000,
             "min_acc": 0.992, "depths": (10, 34), "depth_iters": 600, "depth_eval_every": 100, "depth_lr": 0.05,
             "compare_depth": True},
    # cpu: a quarter of the book's epochs and two seeds, for a 2-core machine. min_acc: within about half a
    # point of the book's 0.9938; 10 seeds gave DeepConvNet 0.9904 mean, 0.9887 worst (0.9889 worst pair mean)
    "cpu": {"seeds": 2, "iters": 3000, "eval_every": 500, "test_size": None, "train_eval_size": 10000,
            "min_acc": 0.988, "depths": (10, 34), "depth_iters": 600, "depth_eval_every": 100, "depth_lr": 0.05,
            "compare_depth": True},
    # quick: 10 seeds gave DeepConvNet 0.875 mean, 0.825 worst (min_acc 0.78). After 100 iterations the
    # residual-vs-plain comparison is noise (residual minus plain + BN at 18 layers: -0.32 .. +0.14 over 10
    # seeds), so quick does not state it (compare_depth)
    "quick": {"seeds": 1, "iters": 150, "eval_every": 150, "test_size": 1000, "train_eval_size": 1000,
              "min_acc": 0.78, "depths": (10, 18), "depth_iters": 100, "depth_eval_every": 50, "depth_lr": 0.05,
              "compare_depth": False},
}

BOOK_VARIANTS = {  # id: label, config
    "deepconvnet": ("DeepConvNet (book)", DEEP_CONVNET),
    "deepconvnet-bn": ("DeepConvNet + BN", DEEP_CONVNET.replace(batchnorm=True)),
    "residual-deepconvnet-bn": ("residual DeepConvNet + BN", DEEP_CONVNET.replace(
        conv=("16", "r16", "pool", "32", "r32", "pool", "64", "r64", "pool"), batchnorm=True)),
}
DEPTH_NET = TrialConfig(model="cnn", widths=(), activation="relu", init="he", optimizer="momentum",
                        momentum=0.9, batch_size=100, test_size=2000, train_eval_size=1000)
FAMILIES = {"plain": ("plain", False, False), "plain + BN": ("plain-bn", False, True),   # name: id, residual, BN
            "residual + BN": ("residual-bn", True, True)}
STEM = ("16", "pool", "16", "pool")


def depth_stack(depth: int, residual: bool) -> tuple[str, ...]:
    """conv1 (28x28), pool, conv2 (14x14), pool, then depth - 2 convs of 16 filters at 7x7, plain or in blocks."""
    body = ("r16",) * ((depth - 2) // 2) if residual else ("16",) * (depth - 2)
    return STEM + body + ("gap",)


def depth_id(family: str, depth: int) -> str:
    return f"{FAMILIES[family][0]}-depth{depth}"


# the book's train_deepnet.py: final test accuracy on all 10000 test images after 20 epochs
BOOK_REFERENCE = Reference("final_test_acc", 0.9938, 0.9938, "book", describes=(("iters", 12000),))


def variants(p: dict) -> list[Variant]:
    out = [Variant(vid, cfg.replace(iters=p["iters"], eval_every=p["eval_every"], test_size=p["test_size"],
                                    train_eval_size=p["train_eval_size"]),
                   group="DeepConvNet", reference=BOOK_REFERENCE if vid == "deepconvnet" else None, label=label)
           for vid, (label, cfg) in BOOK_VARIANTS.items()]
    for depth in p["depths"]:
        assert depth % 2 == 0 and depth >= 4, "depths are 2 stem convs plus whole residual blocks (even)"
        for family, (_, residual, bn) in FAMILIES.items():
            cfg = DEPTH_NET.replace(conv=depth_stack(depth, residual), batchnorm=bn, lr=p["depth_lr"],
                                    iters=p["depth_iters"], eval_every=p["depth_eval_every"])
            out.append(Variant(depth_id(family, depth), cfg, group="depth study", label=f"{family}, {depth} conv layers"))
    return out


# ---- gradient flow at initialisation ----

def activation_grad_norms(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """||dLoss/d(output)|| of every activation module for one batch, in network order."""
    outputs = {}

    def keep(name):
        def hook(module, inputs, output):
            output.retain_grad()
            outputs[name] = output
        return hook
    handles = [m.register_forward_hook(keep(name)) for name, m in activation_layers(model)]
    try:
        F.cross_entropy(model(x), y).backward()
    finally:
        for h in handles:
            h.remove()
    return {name: float(out.grad.norm()) for name, out in outputs.items()}


def body_ratio(norms: dict[str, float], stem_layers: int = 2) -> float:
    """Gradient at the first body layer over the last (both 7x7), skipping exact zeros (mid-block at init)."""
    body = [v for name, v in norms.items() if int(name[3:]) > stem_layers and v > 0]
    return body[0] / body[-1]


def init_gradient_flow(p: dict, ctx) -> dict:
    """family -> depth -> {"layers": [k], "norms": [[per seed]], "ratios": [per seed]}, for the figure and claims."""
    flow = {}
    first = ctx.trials[depth_id("plain", p["depths"][0])][0].config
    # one training batch of the variants' own size: the first batch_size training images
    data = load(first["dataset"], device=ctx.device, train_size=first["batch_size"], flatten=False)
    for family in FAMILIES:
        for depth in p["depths"]:
            entry = flow.setdefault(family, {}).setdefault(str(depth), {"norms": [], "ratios": []})
            for trial in ctx.trials[depth_id(family, depth)]:
                cfg = TrialConfig.from_dict(trial.config)
                model = build_model(cfg, seeded_generators(trial.seed)[1], tuple(data.x_train.shape[1:]))
                norms = activation_grad_norms(model.to(ctx.device).train(), data.x_train, data.y_train)
                entry["layers"] = [int(name[3:]) for name in norms]
                entry["norms"].append(list(norms.values()))
                entry["ratios"].append(body_ratio(norms))
    return flow


def geometric_mean(values: list[float]) -> float:
    return float(np.exp(np.mean(np.log(values))))


def extras(p: dict, ctx) -> dict:
    flow = init_gradient_flow(p, ctx)
    fig, axes = figures.new(1, len(FAMILIES), size=(3.6, 3.0), sharey=True)
    for ax, family in zip(axes[0], FAMILIES):
        for depth, entry in flow[family].items():
            mean = np.exp(np.log(np.array(entry["norms"]) + 1e-300).mean(0))
            keep = mean > 1e-200  # mid-block points of residual nets are exactly zero at step 0
            ax.semilogy(np.array(entry["layers"])[keep], mean[keep], marker=".", label=f"{depth} conv layers")
        ax.set(title=f"{family}: gradient flow at init", xlabel="layer index (act<k>)",
               ylabel="||dLoss / d activation||")
        ax.legend(fontsize=7)
    path = figures.save(fig, ctx.out_dir / "gradient_flow.png", ctx.logdir, "modern_cnn/gradient flow")
    fig, axes = figures.new(1, len(p["depths"]), size=(3.6, 3.0))
    for ax, depth in zip(axes[0], p["depths"]):
        for family in FAMILIES:
            trials = ctx.trials[depth_id(family, depth)]
            for i, t in enumerate(trials):
                points = [q for q in t.history if not q.get("diverged")]
                ax.plot([q["step"] for q in points], [q["accuracy_test"] for q in points],
                        color=f"C{list(FAMILIES).index(family)}", alpha=0.8, label=family if i == 0 else None)
        ax.set(title=f"{depth} conv layers", xlabel="iteration", ylabel="test accuracy", ylim=(0, 1))
        ax.legend(fontsize=7)
    curves = figures.save(fig, ctx.out_dir / "depth_accuracy.png", ctx.logdir, "modern_cnn/depth")
    return {"init_gradient_flow": flow,
            "figures": {"gradient norm against layer index at initialisation, per family": path,
                        "test accuracy during training, per depth (one line per seed)": curves}}


def claims(results: Run) -> list[Claim]:
    p, flow = results.params, results.extras["init_gradient_flow"]
    deep, shallow = max(p["depths"]), min(p["depths"])
    ratio = {(f, d): geometric_mean(flow[f][str(d)]["ratios"]) for f in FAMILIES for d in p["depths"]}
    residual_worst = max((ratio["residual + BN", d] for d in p["depths"]), key=lambda r: abs(math.log(r)))
    acc = {(f, d): results.agg(depth_id(f, d)) for f in FAMILIES for d in p["depths"]}
    trained = min(acc["plain + BN", deep], acc["residual + BN", deep])
    stuck = 2.5 * chance_accuracy(results, depth_id("plain", deep))   # 0.25 on ten classes
    out = [
        at_least("deepconvnet-book-accuracy", FIGURE, f"DeepConvNet (book setup): test accuracy after {p['iters']} iterations (mean over seeds)",
                 results.agg("deepconvnet"), p["min_acc"]),
        between("residual-bn-passes-gradient", PHENOMENON, "at init, residual + BN passes the gradient through depth unchanged: body first/last gradient "
                "ratio at every depth (worst, geometric mean over seeds)", residual_worst, 0.5, 2.0),
        at_least("plain-bn-gradient-grows", PHENOMENON, f"at init, plain + BN: the gradient grows towards the input (body first/last ratio at {deep} "
                 "layers)", ratio["plain + BN", deep], 5.0, f"{shallow} layers: {ratio['plain + BN', shallow]:.3g}"),
        at_most("plain-gradient-shrinks", PHENOMENON, f"at init, plain without BN: the gradient shrinks towards the input (body first/last ratio at "
                f"{deep} layers)", ratio["plain", deep], 0.8, f"{shallow} layers: {ratio['plain', shallow]:.3g}"),
        is_true("plain-deep-does-not-train", PHENOMENON, f"without BN the plain net does not train at {deep} layers (lr {p['depth_lr']}, {p['depth_iters']} "
                f"iterations: test accuracy <= 2.5x chance, {stuck:g}) where plain + BN and residual + BN do (lower of the two "
                "minus plain >= 0.25)", acc["plain", deep] <= stuck and trained - acc["plain", deep] >= 0.25,
                trained - acc["plain", deep], f"plain {acc['plain', deep]:.3f}, plain + BN "
                f"{acc['plain + BN', deep]:.3f}, residual + BN {acc['residual + BN', deep]:.3f}"),
    ]
    if p["compare_depth"]:
        loss_bn = acc["plain + BN", shallow] - acc["plain + BN", deep]
        loss_res = acc["residual + BN", shallow] - acc["residual + BN", deep]
        out += [
            at_least("depth-costs-plain-bn-more", PHENOMENON, f"going from {shallow} to {deep} layers costs plain + BN more test accuracy than residual + BN "
                     "(difference of the two drops)", loss_bn - loss_res, 0.0,
                     f"plain + BN drops {loss_bn:+.3f}, residual + BN {loss_res:+.3f}"),
            at_least("residual-bn-ahead-when-deep", PHENOMENON, f"at {deep} layers residual + BN is ahead of plain + BN after {p['depth_iters']} iterations "
                     "(difference of mean test accuracy)", acc["residual + BN", deep] - acc["plain + BN", deep], 0.0),
        ]
    return out
