"""Section 3: overfitting, and its remedies L1, L2 (weight decay) and dropout, at two scales.

Shows: a net with far more parameters than images memorises them (train 100%, test far below); L2
shrinks weights in proportion, L1 pulls each to 0 by the same amount, dropout zeroes a share p.
Setup (book): first 300 training images, 6 x 100 ReLU, He, SGD 0.01, batch 100, 900 iterations =
300 epochs: none, L2 0.1, L1 0.005 (subgradient; proximal), L1 at lr 0.1, dropout, sweeps of lambda
and p; the book's/course's dropout runs again with its non-inverted dropout (dropout_scaling=book).
Paper-style: 5000 images, 784-1024-1024-10 ReLU, SGD 0.01 momentum 0.9, 1500 iterations: none,
dropout 0.5 (+0.2 on the input), L2 1e-3 and 1e-2. L2 = weight_decay on weight matrices only.
Reference (train / test; book ch06/overfit_*.py unless noted): none 1.00 / 0.75-0.77; L2 0.1
0.87-0.93 / 0.67-0.72; dropout 0.2, 301 epochs 0.67 / 0.55, 601 epochs 0.92 / 0.72; course: dropout
0.15 test 0.69-0.75, L1 0.005 at lr 0.1 test 0.39-0.71, unstable. Paper rows: no published figure.
Runtime: full preset (81 trials) 523 s on the 2-core dev machine (2026-12-02).
Findings and how they were measured: docs/FINDINGS.md#regularization
"""
from __future__ import annotations

import torch

from repro import figures
from repro.experiment import (PHENOMENON, MEASURED_HERE, OVERFIT_300, Claim, Reference, Run, TrialConfig, Variant, at_least,
                              at_most, format_stats, is_true, md_table, seed_curve, stats)

TITLE = "Section 3: overfitting; L1, L2 (weight decay), dropout"

PRESETS = {
    "full": {"seeds": 5, "iters": 900, "eval_every": 15, "sweep_eval_every": 90, "course_runs": True,
             "book_dropout_runs": True,
             "l2_sweep": (0.01, 0.03, 0.1, 0.2, 0.3), "l1_sweep": (0.001, 0.002, 0.005, 0.01, 0.02),
             "dropout_sweep": (0.1, 0.15, 0.2, 0.3, 0.4, 0.5),
             "paper_train": 5000, "paper_widths": (1024, 1024), "paper_iters": 1500, "paper_l2": (1e-3, 1e-2)},
    # quick: the book's network for 200 epochs, a narrower paper network on less data (at 400
    # iterations its dropout gain was only 0.7 points, still rising); thresholds in tests/ come from it
    "quick": {"seeds": 2, "iters": 600, "eval_every": 60, "sweep_eval_every": 60, "course_runs": False,
              "book_dropout_runs": False,
              "l2_sweep": (0.1,), "l1_sweep": (0.005,), "dropout_sweep": (0.2, 0.3),
              "paper_train": 1000, "paper_widths": (512, 512), "paper_iters": 600, "paper_l2": ()},
}

BOOK = OVERFIT_300
PAPER_NET = TrialConfig(activation="relu", init="he", optimizer="momentum", lr=0.01, momentum=0.9, batch_size=100)
L2, L1 = 0.1, 0.005              # the book's lambda; the course's L1 lambda
NEAR_ZERO = 1e-3                 # |w| below this counts as "near zero"
LEARNS = 0.2                     # train accuracy of twice chance: below it dropout has stopped learning
NARROWS = 0.05                   # the gap narrowing the issue asks of dropout
L2_ID, L1_ID, PROXIMAL_ID = f"l2-{L2:g}", f"l1-{L1:g}", f"l1-{L1:g}-proximal"
HIST_VARIANTS = ("none", L2_ID, L1_ID, PROXIMAL_ID)
PAPER_NONE, PAPER_DROPOUT = "paper-none", "paper-dropout"
BOOK_DROPOUT = (("dropout_scaling", "book"),)
BOOK_REFS = {"none": (0.75, 0.77, "book"), L2_ID: (0.67, 0.72, "book"),
             L1_ID: (0.77, 0.79, MEASURED_HERE, "plain torch loop, 3 seeds"),
             f"{L1_ID}-lr0.1": (0.39, 0.71, "course", "unstable across runs"),
             "dropout-0.15": (0.69, 0.75, "course", "1000 iterations", "mnist", BOOK_DROPOUT + (("iters", 1000),)),
             "dropout-0.2": (0.55, 0.55, "book", "301 epochs", "mnist", BOOK_DROPOUT + (("iters", 903),)),
             "dropout-0.2-601-epochs": (0.72, 0.72, "book", "601 epochs", "mnist", BOOK_DROPOUT + (("iters", 1803),))}
# The book's and the course's dropout runs, with the book's dropout (repro/nets.py BookDropout) and
# length: 301 and 601 epochs of 3 iterations, and the course's 1000 iterations. Each reference above
# describes these, so our nn.Dropout rows of the same p are shown beside it without a verdict.
BOOK_DROPOUT_RUNS = {  # id: label, its reference in BOOK_REFS, p, iterations
    "book-dropout-0.2": ("dropout 0.2, book's dropout", "dropout-0.2", 0.2, 903),
    "book-dropout-0.2-601-epochs": ("dropout 0.2, book's dropout, 601 epochs", "dropout-0.2-601-epochs", 0.2, 1803),
    "book-dropout-0.15-1000-iterations": ("dropout 0.15, book's dropout, 1000 iterations", "dropout-0.15", 0.15, 1000)}
PAPER_REFS = {PAPER_NONE: (0.937, 0.939), PAPER_DROPOUT: (0.946, 0.949), "paper-l2-0.001": (0.937, 0.939),
              "paper-l2-0.01": (0.924, 0.927)}
SWEEPS = (("L2", "l2_sweep", "weight_decay", "L2 lambda"), ("L1", "l1_sweep", "l1", "L1 lambda"),
          ("dropout", "dropout_sweep", "dropout", "dropout p"))


def variants(p: dict) -> list[Variant]:
    book = BOOK.replace(iters=p["iters"], eval_every=p["eval_every"])
    curves = {"none": ("none", {}), L2_ID: (f"L2 {L2:g}", {"weight_decay": L2}), L1_ID: (f"L1 {L1:g}", {"l1": L1}),
              PROXIMAL_ID: (f"L1 {L1:g} proximal", {"l1": L1, "l1_mode": "proximal"}),
              **{sweep_id("dropout", d): (f"dropout {d:g}", {"dropout": d}) for d in (0.15, 0.2, 0.3)
                 if d in p["dropout_sweep"]}}
    if p["course_runs"]:
        curves |= {f"{L1_ID}-lr0.1": (f"L1 {L1:g}, lr 0.1", {"l1": L1, "lr": 0.1}),
                   f"dropout-0.2+{L1_ID}": (f"dropout 0.2 + L1 {L1:g}", {"dropout": 0.2, "l1": L1})}
    out = [Variant(vid, book.replace(**changes), "book", _ref(BOOK_REFS.get(vid)), keep_state=vid in HIST_VARIANTS,
                   label=label) for vid, (label, changes) in curves.items()]
    if p["book_dropout_runs"]:
        out += [Variant(vid, book.replace(dropout=rate, dropout_scaling="book", iters=iters), "book's dropout",
                        _ref(BOOK_REFS[ref]), label=label)
                for vid, (label, ref, rate, iters) in BOOK_DROPOUT_RUNS.items()]
    for kind, key, field, _ in SWEEPS:
        for value in p[key]:
            if sweep_id(kind, value) not in curves:
                cfg = book.replace(eval_every=p["sweep_eval_every"], **{field: value})
                out.append(Variant(sweep_id(kind, value), cfg, f"book: {kind} sweep", label=f"{kind} {value:g}"))
    paper = PAPER_NET.replace(train_size=p["paper_train"], widths=p["paper_widths"], iters=p["paper_iters"],
                          eval_every=p["paper_iters"] // 10, train_eval_size=p["paper_train"])
    runs = {PAPER_NONE: ("paper: none", {}),
            PAPER_DROPOUT: ("paper: dropout 0.5 + input 0.2", {"dropout": 0.5, "input_dropout": 0.2}),
            **{f"paper-l2-{lam:g}": (f"paper: L2 {lam:g}", {"weight_decay": lam}) for lam in p["paper_l2"]}}
    out += [Variant(vid, paper.replace(**changes), "dropout paper",
                    _ref(PAPER_REFS.get(vid) + (MEASURED_HERE,)) if vid in PAPER_REFS else None, label=label)
            for vid, (label, changes) in runs.items()]
    return out


def _ref(spec) -> Reference | None:
    return Reference("final_test_acc", *spec) if spec else None


def sweep_values(p: dict, key: str) -> list[float]:
    """A sweep's strengths with 0 (no regularisation) first."""
    return [0.0] + sorted(p[key])


def sweep_id(kind: str, value: float) -> str:
    """A sweep's variant at one strength: its id ("none" at 0)."""
    return "none" if value == 0 else f"{kind.lower()}-{value:g}"


# ---- the pure measurements, tested exactly in tests/test_regularization.py ----

def weight_shares(w: torch.Tensor, near: float = NEAR_ZERO) -> dict[str, float]:
    """Share of the weights with |w| < ``near``, and share exactly 0."""
    return {"near_zero": float((w.abs() < near).float().mean()), "exact_zero": float((w == 0).float().mean())}


def always_zero_pixels(x: torch.Tensor) -> torch.Tensor:
    """Mask of the input pixels that are 0 in every image of ``x`` (N x pixels): their first-layer
    weights get no gradient from the data, only from the penalty."""
    return (x == 0).all(dim=0)


# ---- extras: first-layer weights, tables and figures from the trials ----

def extras(p: dict, ctx) -> dict:
    from repro.data import load
    config = ctx.trials["none"][0].config
    dead = always_zero_pixels(load(config["dataset"], train_size=config["train_size"]).x_train)
    labels = {v.id: v.label for v in variants(p)}
    weights = {}
    for vid in HIST_VARIANTS:
        fc1 = [state["fc1.weight"] for state in ctx.states[vid]]
        per_seed = [weight_shares(w) for w in fc1]
        weights[vid] = {k: sum(s[k] for s in per_seed) / len(per_seed) for k in per_seed[0]}
        weights[vid]["per_seed"] = per_seed
        weights[vid]["dead_pixel_near_zero"] = sum(weight_shares(w[:, dead])["near_zero"] for w in fc1) / len(fc1)
    return {
        "weights": weights, "always_zero_pixels": int(dead.sum()), "pixels": int(dead.numel()),
        "figures": {"book setting: train (dashed) and test accuracy per epoch, mean over seeds": curves_figure(ctx, p),
                    **{f"book setting: train, test accuracy and gap against {label}":
                       sweep_figure(ctx, p, kind, key, label) for kind, key, _, label in SWEEPS},
                    "dropout-paper setting: test accuracy": paper_figure(ctx, p),
                    "first-layer weights: none, L2, L1 (subgradient, proximal)": weights_figure(ctx, labels)},
        "tables": {"Train accuracy, test accuracy and gap (train - test), mean ± sd (n)": gap_table(ctx, labels),
                   f"First-layer weights (fc1, mean over seeds); {int(dead.sum())} of {dead.numel()} pixels are 0 "
                   "in every training image": weights_table(weights, labels)},
    }


def _final(ctx, vid: str, metric: str) -> dict:
    return stats([t.summary[metric] for t in ctx.trials[vid]])


def gap_table(ctx, labels: dict) -> str:
    rows = [[labels[vid]] + [format_stats(_final(ctx, vid, m)) for m in ("final_train_acc", "final_test_acc", "gap")]
            for vid in ctx.trials]
    return md_table(["variant", "train", "test", "gap"], rows)


def weights_table(weights: dict, labels: dict) -> str:
    rows = [[labels[vid], f"{w['near_zero']:.3f}", f"{w['exact_zero']:.3f}", f"{w['dead_pixel_near_zero']:.3f}"]
            for vid, w in weights.items()]
    return md_table(["variant", f"share abs(w) < {NEAR_ZERO:g}", "share exactly 0",
                     f"abs(w) < {NEAR_ZERO:g}, always-0 pixels"], rows)


def curves_figure(ctx, p: dict) -> str:
    book = [v for v in variants(p) if v.group == "book"]
    cols = min(4, len(book))
    fig, axes = figures.new(-(-len(book) // cols), cols, size=(3.0, 2.4), sharey=True)
    for ax, v in zip(axes.flat, book):
        for field, style in (("accuracy_train", "--"), ("accuracy_test", "-")):
            curve = seed_curve(ctx.trials[v.id], field)
            if curve is not None:
                ax.plot(curve[0] * BOOK.batch_size / BOOK.train_size, curve[1], style, label=field.split("_")[1])
        ax.set(title=v.label, xlabel="epoch", ylim=(0, 1.02))
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    for ax in list(axes.flat)[len(book):]:
        ax.axis("off")
    return figures.save(fig, ctx.out_dir / "book_curves.png", ctx.logdir, "regularization/book_curves")


def sweep_figure(ctx, p: dict, kind: str, key: str, label: str) -> str:
    values = sweep_values(p, key)
    fig, axes = figures.new(1, 1, size=(4.4, 3.2))
    ax = axes[0, 0]
    for metric, text in (("final_train_acc", "train"), ("final_test_acc", "test"), ("gap", "gap (train - test)")):
        s = [_final(ctx, sweep_id(kind, v), metric) for v in values]
        ax.errorbar(range(len(values)), [x["mean"] for x in s], [x["std"] or 0 for x in s], marker="o", capsize=3,
                    label=text)
    ax.set_xticks(range(len(values)), [f"{v:g}" for v in values])
    ax.set(xlabel=label, ylabel="accuracy (mean ± sd over seeds)", title=f"book setting: {kind}", ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return figures.save(fig, ctx.out_dir / f"sweep_{kind.lower()}.png", ctx.logdir,
                        f"regularization/sweep_{kind.lower()}")


def paper_figure(ctx, p: dict) -> str:
    fig, axes = figures.new(1, 1, size=(4.8, 3.2))
    ax = axes[0, 0]
    for v in variants(p):
        curve = seed_curve(ctx.trials[v.id], "accuracy_test") if v.group == "dropout paper" else None
        if curve is not None:
            ax.plot(curve[0], curve[1], label=v.label.removeprefix("paper: "))
    ax.set(xlabel="step", ylabel="test accuracy (mean over seeds)", title="dropout-paper setting, small")
    ax.set_ylim(bottom=0.8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return figures.save(fig, ctx.out_dir / "paper.png", ctx.logdir, "regularization/paper")


def weights_figure(ctx, labels: dict) -> str:
    fig, axes = figures.new(1, 2, size=(4.4, 3.2))
    for vid in HIST_VARIANTS:
        w = torch.cat([s["fc1.weight"].flatten() for s in ctx.states[vid]])
        axes[0, 0].hist(w.numpy(), bins=200, range=(-0.25, 0.25), histtype="step", label=labels[vid])
        nonzero = w[w != 0].abs()
        axes[0, 1].hist(nonzero.log10().numpy(), bins=120, range=(-9, 0), histtype="step",
                        label=f"{labels[vid]} ({float((w == 0).float().mean()):.0%} exactly 0)")
    axes[0, 0].set(yscale="log", xlabel="w (fc1)", ylabel="count, all seeds", title="first-layer weights")
    axes[0, 1].set(yscale="log", xlabel="log10 |w|, non-zero weights", title=f"near zero: |w| < {NEAR_ZERO:g}")
    axes[0, 1].axvline(-3, color="k", lw=0.8, ls=":")
    for ax in axes.flat:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    return figures.save(fig, ctx.out_dir / "l1_l2_weights.png", ctx.logdir, "regularization/weights")


def claims(results: Run) -> list[Claim]:
    p, w = results.params, results.extras["weights"]
    gap = {vid: results.agg(vid, "gap") for vid in ("none", L2_ID, *(sweep_id("dropout", d) for d in p["dropout_sweep"]))}
    # The mildest p that narrows the gap by NARROWS (else the one that narrows it most), among the
    # p at which the network still learns: a network at chance has no gap left to narrow.
    learning = sorted(d for d in p["dropout_sweep"] if results.agg(sweep_id("dropout", d), "final_train_acc") >= LEARNS)
    narrowing = {d: gap["none"] - gap[sweep_id("dropout", d)] for d in learning}
    chosen = next((d for d in learning if narrowing[d] >= NARROWS), max(narrowing, key=narrowing.get, default=None))
    test_change = (results.agg(sweep_id("dropout", chosen)) - results.agg("none") if chosen is not None
                   else float("nan"))
    paper_gain = results.agg(PAPER_DROPOUT) - results.agg(PAPER_NONE)
    l1, l2w, prox = w[L1_ID], w[L2_ID], w[PROXIMAL_ID]
    subgradient_zeros = max(w[vid]["exact_zero"] for vid in ("none", L2_ID, L1_ID))
    return [
        at_least("book-memorises", PHENOMENON, "book, none: the 300 training images are memorised (train accuracy)",
                 results.agg("none", "final_train_acc"), 0.99),
        at_least("book-gap-large", PHENOMENON, "book, none: test accuracy stays far below (gap train - test)", gap["none"], 0.2),
        at_most("l2-train-below-100", PHENOMENON, f"book, L2 {L2:g}: train accuracy no longer reaches 100%", results.agg(L2_ID, "final_train_acc"), 0.97),
        is_true("l2-narrows-gap", PHENOMENON, f"book, L2 {L2:g} narrows the gap (none's gap minus L2's)", gap[L2_ID] < gap["none"],
                gap["none"] - gap[L2_ID]),
        at_least("dropout-narrows-gap", PHENOMENON, f"book: dropout at some p narrows the gap by >= {NARROWS:g}", narrowing.get(chosen, float("nan")),
                 NARROWS, f"p = {chosen}, the mildest that does, among p with train accuracy >= {LEARNS:g}"),
        at_most("dropout-slows-fit", PHENOMENON, "book: ... by slowing the fit, not by raising test accuracy (that p's test accuracy minus none's)",
                test_change, 0.0, f"p = {chosen}"),
        at_least("paper-dropout-raises-test", PHENOMENON, "dropout paper: dropout raises test accuracy over none (difference of means)", paper_gain, 0.005),
        is_true("l1-near-zero-weights", PHENOMENON, f"L1 drives first-layer weights to near zero: share |w| < {NEAR_ZERO:g} at least 5x L2's "
                "(ratio L1 / L2)", l1["near_zero"] >= 5 * l2w["near_zero"],
                l1["near_zero"] / max(l2w["near_zero"], 1e-12), f"L1 {l1['near_zero']:.3f}, L2 {l2w['near_zero']:.3f}"),
        is_true("proximal-l1-exact-zeros", PHENOMENON, "only the proximal L1 step gives exact zeros (its share exactly 0; subgradient L1, L2, none: 0)",
                prox["exact_zero"] > 0 and subgradient_zeros == 0, prox["exact_zero"],
                f"largest exact-zero share without the proximal step: {subgradient_zeros:g}"),
    ]
