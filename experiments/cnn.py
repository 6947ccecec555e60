"""Section 4: the convolution itself, and the book's SimpleConvNet on MNIST.

Shows: a convolution's output is floor((H + 2P - FH) / S) + 1 wide per axis; im2col turns it into
one matrix product and max pooling into a max over the same columns; a small ConvNet learns smooth
stroke and edge filters from noise and beats the MLPs of Sections 1-3.
Checks (exact, also unit tests): the size formula against nn.Conv2d and nn.MaxPool2d over random
shapes; F.unfold times the filter matrix against nn.Conv2d; max over im2col columns against MaxPool.
Setup (book): conv 30 x 5x5 -> ReLU -> max-pool 2 -> affine 4320-100 -> ReLU -> affine 100-10, all
weights N(0, 0.01), Adam 0.001, batch 100, 20 epochs (12000 iterations) on all of MNIST; course: the
same on 5000 / 1000 images, 1000 iterations. Seed 0's first-layer filters with their smoothness.
Reference, final test accuracy: book (ch07/train_convnet.py) about 0.99 on all 10000 test images
(one independent run 0.9908); course 0.955-0.962 (train 0.99+); no verdict at cpu and quick length.
Runtime: full preset (3 seeds) 815 s on the 2-core dev machine (2026-12-02); cpu preset 240 s.
Findings and how they were measured: docs/FINDINGS.md#cnn
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from repro import figures
from repro.experiment import ANALYTIC, FIGURE, PHENOMENON, Claim, Reference, Run, Trial, TrialConfig, Variant, at_least, at_most
from repro.nets import build_model, conv_output_size
from repro.engine import seeded_generators

TITLE = "Section 4: convolution arithmetic, im2col, SimpleConvNet"

PRESETS = {
    # full: the book's 20 epochs and the course's 1000 iterations; min_acc is the bound
    "full": {"seeds": 3, "iters": 12000, "eval_every": 600, "test_size": None, "train_eval_size": 10000,
             "course_iters": 1000, "course_eval_every": 100,
             "min_acc": 0.985, "course_min_acc": 0.95, "min_smoothness": 0.5},
    # cpu: a quarter of the book's epochs and two seeds, for a 2-core machine: within half a point of full
    "cpu": {"seeds": 2, "iters": 3000, "eval_every": 500, "test_size": None, "train_eval_size": 10000,
            "course_iters": 1000, "course_eval_every": 100,
            "min_acc": 0.98, "course_min_acc": 0.95, "min_smoothness": 0.5},
    # quick: 300 iterations of each, small evaluation sets. Bounds from 10 seeds: book 0.926 mean, 0.909
    # worst; course 0.912, 0.898; smoothness 0.73, 0.67
    "quick": {"seeds": 2, "iters": 300, "eval_every": 150, "test_size": 1000, "train_eval_size": 1000,
              "course_iters": 300, "course_eval_every": 150,
              "min_acc": 0.88, "course_min_acc": 0.87, "min_smoothness": 0.5},
}

SIMPLE_CONVNET = TrialConfig(model="cnn", conv=("30x5p0", "pool"), widths=(100,), activation="relu",
                             init="normal:0.01", optimizer="adam", lr=0.001, batch_size=100)
BOOK, COURSE = "simpleconvnet-book", "simpleconvnet-course"
SHAPE_TRIALS = 300


def variants(p: dict) -> list[Variant]:
    return [
        Variant(BOOK, SIMPLE_CONVNET.replace(iters=p["iters"], eval_every=p["eval_every"], test_size=p["test_size"],
                                             train_eval_size=p["train_eval_size"]),
                group="book", reference=Reference("final_test_acc", 0.99, 0.9908, "book", describes=(("iters", 12000),)),
                keep_state=True, label="SimpleConvNet, all of MNIST (book)"),
        Variant(COURSE, SIMPLE_CONVNET.replace(iters=p["course_iters"], eval_every=p["course_eval_every"],
                                               train_size=5000, test_size=1000,
                                               train_eval_size=min(5000, p["train_eval_size"])),
                group="course", reference=Reference("final_test_acc", 0.955, 0.962, "course", describes=(("iters", 1000),)),
                label="SimpleConvNet, 5000/1000 subset (course)"),
    ]


# ---- the convolution, checked ----

def im2col_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stride: int = 1,
                  padding: int = 0) -> torch.Tensor:
    """Convolution as one matrix product: each receptive field unfolded into a column (im2col),
    each filter flattened into a row."""
    n, _, h, w = x.shape
    filters, _, fh, fw = weight.shape
    columns = F.unfold(x, (fh, fw), padding=padding, stride=stride)        # n x (C*FH*FW) x OH*OW
    out = weight.reshape(filters, -1) @ columns + bias.view(1, filters, 1)  # n x filters x OH*OW
    return out.view(n, filters, conv_output_size(h, fh, stride, padding), conv_output_size(w, fw, stride, padding))


def im2col_max_pool(x: torch.Tensor, size: int, stride: int) -> torch.Tensor:
    """Max pooling as the max over each channel's slice of the im2col columns."""
    n, c, h, w = x.shape
    columns = F.unfold(x, size, stride=stride).view(n, c, size * size, -1)
    return columns.max(2).values.view(n, c, conv_output_size(h, size, stride), conv_output_size(w, size, stride))


def random_shapes(trials: int, generator: torch.Generator):
    """(H, W, FH, S, P) with H, W in 1..40, filter 1..7 fitting the padded input, stride 1..3, pad 0..3."""
    for _ in range(trials):
        h, w = (int(v) for v in torch.randint(1, 41, (2,), generator=generator))
        pad = int(torch.randint(0, 4, (), generator=generator))
        fh = int(torch.randint(1, min(7, h + 2 * pad, w + 2 * pad) + 1, (), generator=generator))
        yield h, w, fh, int(torch.randint(1, 4, (), generator=generator)), pad


def output_size_mismatches(trials: int, pooling: bool, seed: int = 0) -> int:
    """How often floor((H + 2P - FH) / S) + 1 disagrees with the shape nn.Conv2d / nn.MaxPool2d give."""
    wrong = 0
    for h, w, fh, s, pad in random_shapes(trials, torch.Generator().manual_seed(seed)):
        if pooling:
            pad = min(pad, fh // 2)  # torch allows pooling padding up to half the window
            layer = nn.MaxPool2d(fh, s, pad)
        else:
            layer = nn.Conv2d(1, 1, fh, s, pad)
        shape = layer(torch.zeros(1, 1, h, w)).shape[2:]
        wrong += tuple(shape) != (conv_output_size(h, fh, s, pad), conv_output_size(w, fh, s, pad))
    return wrong


def im2col_errors(trials: int, seed: int = 0) -> tuple[float, float]:
    """Largest |im2col - torch| over random shapes: convolution (float64) and max pooling."""
    g = torch.Generator().manual_seed(seed)
    conv_err = pool_err = 0.0
    for h, w, fh, s, pad in random_shapes(trials, g):
        c, filters = (int(v) for v in torch.randint(1, 5, (2,), generator=g))
        x = torch.randn(2, c, h, w, generator=g, dtype=torch.float64)
        conv = nn.Conv2d(c, filters, fh, s, pad, dtype=torch.float64)
        with torch.no_grad():
            conv_err = max(conv_err, float((im2col_conv2d(x, conv.weight, conv.bias, s, pad) - conv(x)).abs().max()))
        if fh <= min(h, w):
            pool_err = max(pool_err, float((im2col_max_pool(x, fh, s) - F.max_pool2d(x, fh, s)).abs().max()))
    return conv_err, pool_err


# ---- the learned filters ----

def filter_smoothness(weight: torch.Tensor) -> float:
    """Correlation of horizontally and vertically adjacent taps over all filters, each filter centred
    first: about 0 for white noise (-1/24 for 5x5, from the centring), near 1 for smooth strokes, -1 for a
    checkerboard."""
    w = weight.detach().double().flatten(0, 1)
    w = w - w.mean((1, 2), keepdim=True)
    a = torch.cat([w[:, :, :-1].flatten(), w[:, :-1, :].flatten()])
    b = torch.cat([w[:, :, 1:].flatten(), w[:, 1:, :].flatten()])
    return float((a * b).sum() / (a.square().sum() * b.square().sum()).sqrt())


def tile_filters(weight: torch.Tensor, cols: int = 10) -> torch.Tensor:
    """First-channel filters as one image, each scaled to [0, 1] on its own, one-pixel gaps (NaN)."""
    w = weight.detach()[:, 0]
    low, high = w.amin((1, 2), keepdim=True), w.amax((1, 2), keepdim=True)
    w = (w - low) / (high - low).clamp_min(1e-12)
    n, k, _ = w.shape
    rows = -(-n // cols)
    out = torch.full((rows * (k + 1) - 1, cols * (k + 1) - 1), float("nan"))
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (k + 1):r * (k + 1) + k, c * (k + 1):c * (k + 1) + k] = w[i]
    return out


def first_layer_filters(trial: Trial, state: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """conv1's weights at the trial's init (rebuilt from its config and seed) and after training."""
    cfg = TrialConfig.from_dict(trial.config)
    after = state["conv1.weight"]
    # conv1 is initialised first, so the image size (which sizes fc1 only) does not change it
    before = build_model(cfg, seeded_generators(trial.seed)[1], (after.shape[1], 28, 28)).conv1.weight
    return before.detach(), after


def extras(p: dict, ctx) -> dict:
    conv_err, pool_err = im2col_errors(SHAPE_TRIALS)
    out = {"conv_size_mismatches": output_size_mismatches(SHAPE_TRIALS, pooling=False),
           "pool_size_mismatches": output_size_mismatches(SHAPE_TRIALS, pooling=True),
           "im2col_conv_max_error": conv_err, "im2col_pool_max_error": pool_err}
    if BOOK in ctx.states:
        filters = [first_layer_filters(trial, state) for trial, state in zip(ctx.trials[BOOK], ctx.states[BOOK])]
        out["filter_smoothness_before"] = [filter_smoothness(before) for before, _ in filters]
        out["filter_smoothness_after"] = [filter_smoothness(after) for _, after in filters]
        before, after = filters[0]
        fig, axes = figures.new(1, 2, size=(4.2, 2.0))
        for ax, w, label in ((axes[0, 0], before, "before (N(0, 0.01))"), (axes[0, 1], after, "after training")):
            ax.imshow(tile_filters(w), cmap="gray", interpolation="nearest")
            ax.set_title(f"conv1 filters {label}\nsmoothness {filter_smoothness(w):.2f}", fontsize=8)
            ax.axis("off")
        path = figures.save(fig, ctx.out_dir / "filters.png", ctx.logdir, "cnn/conv1 filters")
        out["figures"] = {"SimpleConvNet first-layer filters, before and after training (seed 0)": path}
    return out


def claims(results: Run) -> list[Claim]:
    p, e = results.params, results.extras
    out = [
        at_most("conv-output-size", ANALYTIC, f"output size floor((H + 2P - FH) / S) + 1 matches nn.Conv2d ({SHAPE_TRIALS} random shapes, "
                "mismatches)", e["conv_size_mismatches"], 0),
        at_most("pool-output-size", ANALYTIC, f"the same formula matches nn.MaxPool2d ({SHAPE_TRIALS} random shapes, mismatches)",
                e["pool_size_mismatches"], 0),
        at_most("im2col-equals-conv2d", ANALYTIC, "im2col (F.unfold) times the filter matrix equals nn.Conv2d (largest |difference|, float64)",
                e["im2col_conv_max_error"], 1e-10),
        at_most("im2col-equals-maxpool2d", ANALYTIC, "max pooling as a max over im2col columns equals nn.MaxPool2d (largest |difference|)",
                e["im2col_pool_max_error"], 0.0),
        at_least("simpleconvnet-book-accuracy", FIGURE, f"SimpleConvNet, book setup: test accuracy after {p['iters']} iterations (mean over seeds)",
                 results.agg(BOOK), p["min_acc"]),
        at_least("simpleconvnet-course-accuracy", FIGURE, f"SimpleConvNet, course subset: test accuracy after {p['course_iters']} iterations (mean)",
                 results.agg(COURSE), p["course_min_acc"]),
    ]
    if "filter_smoothness_after" in e:
        out.append(at_least("filters-become-smooth", PHENOMENON, "first-layer filters turn from noise into smooth strokes (adjacent-tap correlation "
                            "after training, lowest over seeds)", min(e["filter_smoothness_after"]),
                            p["min_smoothness"], "before training: "
                            f"{', '.join(f'{v:.3f}' for v in e['filter_smoothness_before'])}"))
    return out
