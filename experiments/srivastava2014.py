"""Srivastava, Hinton, Krizhevsky, Sutskever & Salakhutdinov 2014: dropout.

The paper's claim, our setup and what differs: PAPER below.
Runtime: cpu preset (2 seeds) 130 s, quick 48 s (as tests/ runs it), on the 2-core dev machine, 2 workers
(2026-12-03).
"""
from __future__ import annotations

import torch

from repro import figures
from repro.data import load
from repro.experiment import FIGURE, PHENOMENON, Claim, Paper, Run, TrialConfig, Variant, at_least, at_most, md_table, stats

TITLE = "Srivastava et al. 2014: dropout, max-norm, keep probability, data size, Monte-Carlo averaging"

PAPER = Paper(
    citation="Srivastava, Hinton, Krizhevsky, Sutskever & Salakhutdinov 2014, Dropout: A Simple Way to Prevent "
             "Neural Networks from Overfitting",
    says="Dropout (keep 0.8 input, 0.5 hidden) beats L2 and no regularisation, more so with max-norm; the error "
         "is flat for keep 0.4-0.8; no gain on tiny training sets; Monte-Carlo averaging of ~50 nets matches the "
         "weight-scaled net.",
    headline=("dropout-beats-none", "dropout-beats-l2", "maxnorm-does-not-bind", "mc-matches-scaling"),
    figures={"regularisers and keep probability (their Tables 2, 9 and Fig. 9)":
             "Table 9 (784-1024-1024-2048-10 ReLU, full MNIST): test error L2 1.62%, max-norm 1.35%, dropout + L2 "
             "1.25%, dropout + max-norm 1.05%. Fig. 9a: test error against keep probability p: flat from 0.4 to "
             "0.8, rising below 0.4 (underfitting) and towards 1 (overfitting).",
             "data size (their Fig. 10)":
             "Fig. 10: test error against training-set size (100 to 50,000), with and without dropout: no gain at "
             "100 and 500 images (dropout is even worse), a gain that appears and grows with more data.",
             "Monte-Carlo averaging (their Fig. 11)":
             "Fig. 11: test error of the average of k sampled dropout nets against k: it falls with k and reaches "
             "the weight-scaled net's error at about k = 50."},
    claim="dropping hidden units (keep 0.5) and input pixels (keep 0.8) lowers the test error of fully connected "
          "MNIST nets more than L2 does, the more so with a max-norm constraint on each unit's incoming weights "
          "(Tables 2, 9); the error is flat for keep probabilities 0.4-0.8 and rises outside (Fig. 9); dropout gives "
          "nothing on tiny training sets and its gain appears with more data (Fig. 10); averaging k sampled nets "
          "matches the weight-scaled net by about k = 50 (Fig. 11).",
    setup="784-512-512-10 ReLU (quick 256), He init, SGD momentum 0.95, lr 0.01 (the paper states neither rate nor "
          "batch), batch 100, the first 2000 training images (the gain shows on a small set at CPU scale), 1000 "
          "updates = 50 epochs (quick 600); L2 1e-3 on the weights; max-norm c = 3 on every layer (repro/optim.py "
          "max_norm_step, after each update); inverted dropout (nn.Dropout), so the eval-mode net is the "
          "weight-scaled one. Keep-probability sweep over the hidden units at input keep 0.8; data sizes 100, 500, "
          "2000, 5000 with and without dropout at the same 1000 updates; Monte-Carlo averaging over k masks on the "
          "trained dropout nets, all 10,000 test images.",
    differs="a 2000-image training set and a 50-epoch budget against 60,000 and ~10^6 updates, a narrower net; the "
            "data-size sweep stops at 5000 (theirs: 50,000) at the same number of updates. Three results depart from "
            "the paper: max-norm c = 3 never binds here (the unconstrained weights stay inside the ball, measured and "
            "held by a claim), so it changes nothing; keep 0.4 still underfits at this budget (0.6-1.5 points behind "
            "keep 0.8, not flat as in their Fig. 9); and dropout helps most on the smallest sets (a claim holds it), "
            "where the paper finds no gain at 100 and 500 images (unexplained; docs/FINDINGS.md#srivastava2014 has "
            "what was measured).",
)

PRESETS = {
    "cpu": {"seeds": 2, "width": 512, "iters": 1000, "mc_samples": (1, 5, 10, 50)},
    # quick: a narrower net, 600 updates; tests/test_srivastava2014.py holds it
    "quick": {"seeds": 2, "width": 256, "iters": 600, "mc_samples": (1, 5, 10, 50)},
}
TRAIN_SIZE, SIZES, KEEPS = 2000, (100, 500, 2000, 5000), (0.2, 0.4, 0.5, 0.6, 0.8, 1.0)
NET = TrialConfig(train_size=TRAIN_SIZE, activation="relu", init="he", optimizer="momentum", lr=0.01, momentum=0.95,
                  batch_size=100, eval_every=100)
DROPOUT = {"input_dropout": 0.2, "dropout": 0.5}
MAX_NORM = 3.0
REGULARISERS = {"none": ("none", {}), "l2": ("L2", {"weight_decay": 1e-3}), "dropout": ("dropout", DROPOUT),
                "dropout-max-norm": ("dropout + max-norm", {**DROPOUT, "max_norm": MAX_NORM})}   # id: label, config


def keep_id(keep: float) -> str:
    return "dropout" if keep == 0.5 else f"dropout-keep{keep:g}"


def size_id(size: int, dropout: bool) -> str:
    return ("dropout" if dropout else "none") if size == TRAIN_SIZE else f"{'dropout' if dropout else 'none'}-{size}-images"


def variants(p: dict) -> list[Variant]:
    net = NET.replace(widths=(p["width"],) * 2, iters=p["iters"])
    out = [Variant(vid, net.replace(**changes), group="regularisers", keep_state=vid == "dropout", label=label)
           for vid, (label, changes) in REGULARISERS.items()]
    out += [Variant(keep_id(k), net.replace(input_dropout=0.2, dropout=1 - k), group="keep probability",
                    label=f"dropout, hidden keep {k:g}") for k in KEEPS if k != 0.5]
    out += [Variant(size_id(n, d), net.replace(train_size=n, **(DROPOUT if d else {})), group="data size",
                    label=f"{'dropout' if d else 'none'}, {n} images")
            for n in SIZES if n != TRAIN_SIZE for d in (False, True)]
    return out


@torch.no_grad()
def mc_error(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, samples: tuple, seed: int) -> dict:
    """Test error of the weight-scaled net (eval mode) and of the mean softmax over k sampled dropout
    masks (train mode) for each k in ``samples``, the masks drawn once and shared by every k."""
    model.eval()
    out = {"scaled": float((model(x).argmax(1) != y).float().mean())}
    model.train()
    torch.manual_seed(seed)
    total, drawn = torch.zeros(len(x), 10), 0
    for k in sorted(samples):
        while drawn < k:
            total += torch.softmax(model(x), 1)
            drawn += 1
        out[str(k)] = float((total.argmax(1) != y).float().mean())
    return out


def error(results: Run, variant: str) -> float:
    return 1.0 - results.agg(variant)


def regulariser_figure(ctx) -> str:
    fig, axes = figures.new(1, 2, size=(4.4, 3.3))
    bars = axes[0][0].bar(range(len(REGULARISERS)), [100 * (1 - stats([t.summary["final_test_acc"] for t in ctx.trials[vid]])["mean"])
                                                     for vid in REGULARISERS], color="tab:blue")
    axes[0][0].bar_label(bars, fmt="%.2f", fontsize=8)
    axes[0][0].set(xticks=range(len(REGULARISERS)), ylabel="test error (%)", title=f"{TRAIN_SIZE} training images")
    axes[0][0].set_xticklabels([label for label, _ in REGULARISERS.values()], rotation=20, fontsize=8)
    errors = [[100 * (1 - t.summary["final_test_acc"]) for t in ctx.trials[keep_id(k)]] for k in KEEPS]
    axes[0][1].plot(KEEPS, [sum(e) / len(e) for e in errors], marker="o")
    axes[0][1].set(xlabel="hidden keep probability p (input 0.8)", ylabel="test error (%)", title="keep probability")
    return figures.save(fig, ctx.out_dir / "regularisers_keep.png", ctx.logdir, "srivastava2014/regularisers_keep")


def size_figure(ctx) -> str:
    fig, axes = figures.new(1, 1, size=(4.6, 3.3))
    for dropout in (False, True):
        errs = [100 * (1 - stats([t.summary["final_test_acc"] for t in ctx.trials[size_id(n, dropout)]])["mean"])
                for n in SIZES]
        axes[0][0].semilogx(SIZES, errs, marker="o", label="dropout" if dropout else "no dropout")
    axes[0][0].set(xlabel="training images", ylabel="test error (%)")
    axes[0][0].legend()
    return figures.save(fig, ctx.out_dir / "data_size.png", ctx.logdir, "srivastava2014/data_size")


def mc_figure(mc: list[dict], samples: tuple) -> "figures.plt.Figure":
    fig, axes = figures.new(1, 1, size=(4.6, 3.3))
    ax = axes[0][0]
    ax.semilogx(samples, [100 * stats([m[str(k)] for m in mc])["mean"] for k in samples], marker="o", label="Monte-Carlo average of k nets")
    ax.axhline(100 * stats([m["scaled"] for m in mc])["mean"], color="k", ls="--", label="weight scaling")
    ax.set(xlabel="k (sampled nets)", ylabel="test error (%)")
    ax.legend()
    return fig


def extras(p: dict, ctx) -> dict:
    data = load(ctx.trials["dropout"][0].config["dataset"])
    mc = [mc_error(model, data.x_test, data.y_test, p["mc_samples"], seed)
          for seed, model in enumerate(ctx.trained_models("dropout"))]
    rows = [[k, f"{100 * stats([m[str(k)] for m in mc])['mean']:.2f}"] for k in p["mc_samples"]]
    rows.append(["weight scaling", f"{100 * stats([m['scaled'] for m in mc])['mean']:.2f}"])
    norms = [float(torch.linalg.vector_norm(w, dim=1).max()) for state in ctx.states["dropout"]
             for key, w in state.items() if key.endswith("weight")]
    return {"monte_carlo": mc, "largest_unit_norm": max(norms),
            "figures": {"regularisers and keep probability (their Tables 2, 9 and Fig. 9)": regulariser_figure(ctx),
                        "data size (their Fig. 10)": size_figure(ctx),
                        "Monte-Carlo averaging (their Fig. 11)": figures.save(
                            mc_figure(mc, p["mc_samples"]), ctx.out_dir / "monte_carlo.png", ctx.logdir,
                            "srivastava2014/monte_carlo")},
            "tables": {f"Monte-Carlo averaging: test error (%) of the dropout nets, mean over {ctx.seeds} seeds":
                       md_table(["k", "test error (%)"], rows)}}


def claims(results: Run) -> list[Claim]:
    mc = results.extras["monte_carlo"]
    k_max = str(max(results.params["mc_samples"]))
    middle = [error(results, keep_id(k)) for k in KEEPS if 0.4 <= k <= 0.8]
    gain = {n: error(results, size_id(n, False)) - error(results, size_id(n, True)) for n in SIZES}
    return [
        at_least("dropout-beats-none", PHENOMENON, "dropout lowers the test error (none minus dropout, points of error)",
                 error(results, "none") - error(results, "dropout"), 0.005),
        at_least("dropout-beats-l2", PHENOMENON, "dropout lowers it more than L2 does (L2's error minus dropout's)",
                 error(results, "l2") - error(results, "dropout"), 0.003),
        at_most("maxnorm-does-not-bind", FIGURE, f"max-norm c = {MAX_NORM:g} never binds at this budget, so it cannot help "
                "(their Table 9: it does): the unconstrained dropout net's largest incoming-weight norm, worst seed",
                results.extras["largest_unit_norm"], MAX_NORM),
        at_least("keep-low-underfits", PHENOMENON, "keep 0.2 underfits: its error exceeds the best of keep 0.4-0.8 by >= 2 points",
                 error(results, keep_id(0.2)) - min(middle), 0.02),
        at_least("gain-on-tiny-sets-at-budget", FIGURE, f"at a fixed {results.params['iters']} updates dropout helps on "
                 f"{SIZES[0]} images too (their Fig. 10: no gain there): none minus dropout", gain[SIZES[0]], 0.005),
        at_most("mc-matches-scaling", PHENOMENON, f"averaging {k_max} sampled nets comes close to the weight-scaled net "
                "(their Fig. 11: matches at k = 50): MC error minus scaling's, mean over seeds",
                stats([m[k_max] - m["scaled"] for m in mc])["mean"], 0.006),
        at_least("mc-one-sample-worse", PHENOMENON, f"one sampled net is far worse than the average of {k_max} (points of error)",
                 stats([m["1"] - m[k_max] for m in mc])["mean"], 0.02),
    ]
