"""The notes, audited: every statement of notes-day2.md with its evidence, measured, and a verdict.

Shows: which statements hold, hold under conditions, do not hold, or cannot be tested here.
Measured here (what no other experiment covers): ReLU's sparsity (exactly-zero hidden units,
784-100-100-10, ReLU + He vs sigmoid/tanh + Xavier); dropout 0.5 as many models (softmax averaged
over sampled masks vs the scaled net vs one mask); BN and size vs overfitting (train - test gap on
300 images, 6 x 100 with/without BN, 1 x 16); learning-rate windows on the book's 4 x 100 net over
half-decades 1e-4..1: the largest over the smallest rate whose final loss (seed mean) is within 10%
of the best, edges interpolated in log(rate); a rate is "unstable", and out, if a seed diverged
(NaN/inf) or ended above ENDS_ABOVE = 2x its first batch's loss. Also toy surfaces, exact checks.
Other statements are judged from results/<experiment>/<preset>.json; nothing else is re-trained.
Statement registry: experiments/_notes_registry.py (_modules are helpers, not experiments).
Reference: the notes (../shared/seed/notes-day2.md); REFERENCES.md for the settings.
Runtime: full preset (156 trials) 322 s on the 2-core dev machine (idle).
Findings and how they were measured: docs/FINDINGS.md#claims_audit
"""
from __future__ import annotations

import math

import numpy as np

from experiments import _audit_figures as draw
from experiments import _landscapes as land
from experiments import _notes_registry as registry
from experiments._audit_measures import dropout_ensemble, exact_checks, hidden_activations, lr_window, zero_shares
from experiments.optimizers import HALF_DECADES, book_id
from repro.experiment import (ANALYTIC, PHENOMENON, BOOK_NET, OVERFIT_300, Claim, Run, Trial, TrialConfig, Variant, at_least,
                              at_most, between, diverged, ends_above_start, stats)

TITLE = "The notes, audited: every statement with a measured verdict"

PRESETS = {
    "full": {"seeds": 3, "iters": 2000, "overfit_iters": 900, "window_iters": 1000, "grid": HALF_DECADES,
             "mc_samples": 64, "mc_test": 10000},
    # quick: shorter training, a decade grid, fewer masks; thresholds in tests/ come from it
    "quick": {"seeds": 2, "iters": 500, "overfit_iters": 600, "window_iters": 200, "grid": HALF_DECADES,
              "mc_samples": 16, "mc_test": 2000},
}
WELL_STEPS, VALLEY_STEPS, SADDLE_STEPS, SHRINK_STEPS = 500, 300, 500, 300
SMALL = TrialConfig(widths=(100, 100), optimizer="momentum", lr=0.01, momentum=0.9, batch_size=100)
SPARSITY = (("relu", "he"), ("sigmoid", "xavier"), ("tanh", "xavier"))
DROPOUT, DROPOUT_NET = 0.5, "relu-he-dropout0.5"
OVERFIT_NETS = {"overfit-6x100": ("300 images: 6 x 100", {}),   # id: label, changes
                "overfit-6x100-bn": ("300 images: 6 x 100 + BN", {"batchnorm": True}),
                "overfit-1x16": ("300 images: 1 x 16", {"widths": (16,)})}
# A rate outside the window: the loss went NaN/inf (the engine's rule) or training ended above
# twice where it started
ENDS_ABOVE = 2.0


def variants(p: dict) -> list[Variant]:
    small = SMALL.replace(iters=p["iters"], eval_every=p["iters"] // 5)
    out = [Variant(f"{act}-{init}", small.replace(activation=act, init=init), "sparsity and dropout",
                   keep_state=True, label=f"{act} + {init}") for act, init in SPARSITY]
    out.append(Variant(DROPOUT_NET, small.replace(dropout=DROPOUT), "sparsity and dropout", keep_state=True,
                       label=f"relu + he, dropout {DROPOUT:g}"))
    overfit = OVERFIT_300.replace(iters=p["overfit_iters"], eval_every=p["overfit_iters"] // 6)
    out += [Variant(vid, overfit.replace(**changes), "overfitting (300 images)", metric="gap", label=label)
            for vid, (label, changes) in OVERFIT_NETS.items()]
    book = BOOK_NET.replace(iters=p["window_iters"], eval_every=p["window_iters"])
    out += [Variant(book_id(opt, lr), book.replace(optimizer=opt, lr=lr), "learning-rate window",
                    metric="final_train_loss", label=f"{opt} {lr:g}") for opt in land.OPTIMIZERS for lr in p["grid"]]
    return out


def outside_window(trial: Trial) -> bool:
    return diverged(trial) or ends_above_start(trial, ENDS_ABOVE)


def window_study(p: dict, trials: dict) -> dict:
    out = {}
    for opt in land.OPTIMIZERS:
        losses, unstable = {}, []
        for lr in p["grid"]:
            runs = trials[book_id(opt, lr)]
            if any(outside_window(t) for t in runs):
                losses[lr] = None
                unstable.append(lr)
            else:
                losses[lr] = float(np.mean([t.summary["final_train_loss"] for t in runs]))
        out[opt] = {**lr_window(losses), "losses": {f"{k:g}": v for k, v in losses.items()}, "unstable": unstable}
    return out


def measure(p: dict, ctx) -> dict:
    """Every number the audit's own claims are judged on (JSON-ready)."""
    from repro.data import load
    data = load(ctx.trials[DROPOUT_NET][0].config["dataset"], test_size=p["mc_test"])
    x, y = data.x_test, data.y_test
    sparsity = {}
    for act, init in SPARSITY:
        shares = [zero_shares(hidden_activations(net, x)) for net in ctx.trained_models(f"{act}-{init}")]
        sparsity[act] = {k: [float(np.mean(s[k])) for s in shares] for k in ("exact", "near")}
    ensemble = [dropout_ensemble(net, x, y, p["mc_samples"], seed)
                for seed, net in enumerate(ctx.trained_models(DROPOUT_NET))]
    overfit = {vid: {m: stats([t.summary[m] for t in ctx.trials[vid]])
                     for m in ("gap", "final_train_acc", "final_test_acc")} for vid in OVERFIT_NETS}
    valley = land.valley_study(VALLEY_STEPS)
    best = {opt: valley[opt]["best"] for opt in land.OPTIMIZERS}
    return {"sparsity": sparsity, "dropout": ensemble, "overfit": overfit, "window": window_study(p, ctx.trials),
            "well": land.well_study(WELL_STEPS), "valley": valley, "saddle": land.saddle_study(best, SADDLE_STEPS),
            "shrink": land.adagrad_shrink(best["adagrad"]["lr"], SHRINK_STEPS), "rules": land.rule_residuals(),
            "checks": exact_checks()}


def extras(p: dict, ctx) -> dict:
    m = measure(p, ctx)
    own = own_claims(m)
    figs = draw.figures_of(m, {vid: label for vid, (label, _) in OVERFIT_NETS.items()}, ctx)
    rows = registry.audit(own, ctx.layout, ctx.preset, figs)
    return {"measured": m, "figures": figs, "audit": rows, "verdicts": registry.verdict_counts(rows),
            "tables": {registry.TABLE_TITLE: registry.audit_table(rows)}}


def own_claims(m: dict) -> list[Claim]:
    """The audit's own measurements as claims; experiments/_notes_registry.py cites them by id."""
    c, well, valley, saddle, window = m["checks"], m["well"], m["valley"], m["saddle"], m["window"]
    gap = {vid: m["overfit"][vid]["gap"]["mean"] for vid in OVERFIT_NETS}
    plain, bn, narrow = OVERFIT_NETS
    relu, others = m["sparsity"]["relu"], [m["sparsity"][a] for a in ("sigmoid", "tanh")]
    drop = m["dropout"]
    top, bottom = max(window["sgd"]["losses"], key=float), min(window["sgd"]["losses"], key=float)
    best = {opt: valley[opt]["best"]["iterations"] for opt in land.OPTIMIZERS}
    m09 = valley["momentum_0.9_best"]
    share = {opt: well[opt]["share_global"] for opt in land.OPTIMIZERS}
    small = [cell["basin"] for opt in ("sgd", "adagrad", "rmsprop", "adam") for cell in well[opt]["cells"][:2]]
    shrink = np.array(m["shrink"]["adagrad"])
    loss = {opt: window[opt]["best_loss"] for opt in land.OPTIMIZERS}
    at_top = [math.inf if window[o]["losses"][top] is None else window[o]["losses"][top] for o in land.OPTIMIZERS]
    blown = ", ".join(land.LABELS[o] for o in land.OPTIMIZERS if float(top) in window[o]["unstable"])
    at_bottom = [(window[o]["losses"][bottom] or math.nan) / loss[o] for o in land.OPTIMIZERS]
    widths = {o: window[o]["width"] for o in land.OPTIMIZERS}
    rules = [at_most(f"update-rule-{opt}", ANALYTIC, f"update rule, {land.LABELS[opt]}: torch.optim's moves on the valley follow the notes' rule "
                     "(largest error, 20 steps)", m["rules"][opt], 1e-12) for opt in land.OPTIMIZERS]
    out = [
        at_most("sigmoid-tail", ANALYTIC, "sigmoid tail: sigmoid'(5) by autograd", c["sigmoid_slope_5"], 0.01, "sigmoid'(0) = 0.25"),
        between("xavier-sd", ANALYTIC, "Xavier sd: N(0, 1/n) weights, sd x sqrt(n) (784 x 1000)", c["xavier_sd"], 0.98, 1.02),
        between("he-sd", ANALYTIC, "He sd: N(0, 2/n) weights, sd x sqrt(n / 2) (784 x 1000)", c["he_sd"] / math.sqrt(2), 0.98, 1.02),
        at_most("bn-formula", ANALYTIC, "BN formula: BatchNorm1d in training mode = (x - batch mean) / sqrt(batch variance + eps) * gamma + beta "
                "(largest error)", c["batchnorm_formula"], 1e-12),
        at_most("minibatch-loop", ANALYTIC, "mini-batch loop: the notes' slices visit every sample once an epoch (samples not visited once, "
                "N = 1050, batch 100)", c["minibatch_loop"]["not_once"], 0,
                f"last batch {c['minibatch_loop']['last_batch']}"),
        at_least("relu-sparsity", PHENOMENON, "ReLU sparsity: share of exactly-zero hidden activations on test images, trained ReLU + He "
                 "(lowest seed, mean over layers)", min(relu["exact"]), 0.25, f"seeds: {relu['exact']}"),
        at_most("sigmoid-tanh-not-sparse", PHENOMENON, "sigmoid and tanh sparsity: share of exactly-zero hidden activations (largest seed)",
                max(max(s["exact"]) for s in others), 0.0,
                "|h| < 0.01: sigmoid %.3g, tanh %.3g" % tuple(np.mean(s["near"]) for s in others)),
        at_least("bn-does-not-narrow-gap", PHENOMENON, "BN and overfitting: on 300 images the train - test gap with BN is no narrower "
                 "(gap with BN minus without, mean over seeds)", gap[bn] - gap[plain], 0.0,
                 f"gap without BN {gap[plain]:.3f}, with BN {gap[bn]:.3f}"),
        at_least("capacity-narrows-gap", PHENOMENON, "capacity: on 300 images a 1 x 16 net has a narrower gap than 6 x 100 (difference of mean gaps)",
                 gap[plain] - gap[narrow], 0.0,
                 "train accuracy 1 x 16: %.3f" % m["overfit"][narrow]["final_train_acc"]["mean"]),
        at_least("learning-rate-matters", PHENOMENON, "learning rate matters: every optimiser's final loss spans at least 2x over the grid, diverged "
                 "rates aside (smallest best-to-worst ratio)", min(window[o]["spread"] for o in land.OPTIMIZERS), 2.0),
        at_least("rate-too-large", PHENOMENON, f"too large: at lr {float(top):g} none of the five gets its loss below 1.5 (lowest final loss, "
                 "mean over seeds)", min(at_top), 1.5, f"unstable (diverged or ended above 2x its start): {blown or 'none'}"),
        at_least("rate-too-small", PHENOMENON, f"too small: at lr {float(bottom):g} no optimiser diverges and each ends at least 1.2x above its "
                 "best loss (smallest ratio)", min(at_bottom), 1.2),
        at_least("small-rate-local-minimum", ANALYTIC, "small rate, double well: SGD, AdaGrad, RMSProp and Adam at the two smallest rates end in the local "
                 "minimum (share)", small.count("local") / len(small), 1.0,
                 "Momentum at lr %g: m >= 0.9 reaches the global one" % land.LR_GRID[0]),
        *rules,
        at_least("well-momentum-beats-sgd", ANALYTIC, "double well, Momentum beats SGD: share of (lr, m) cells ending in the global minimum minus SGD's "
                 "share of rates", share["momentum"] - share["sgd"], 0.1,
                 f"Momentum {share['momentum']:.2f}, SGD {share['sgd']:.2f}"),
        at_least("well-momentum-not-guaranteed", ANALYTIC, "double well, Momentum not guaranteed: share of its cells ending in the local minimum or diverged",
                 1 - share["momentum"], 0.3),
        at_most("well-rmsprop", ANALYTIC, "double well, RMSProp: share of rates ending in the global minimum minus SGD's",
                share["rmsprop"] - share["sgd"], 0.0),
        at_least("valley-momentum-faster", ANALYTIC, "valley, Momentum: iterations until f stays < 1e-3, SGD's best over Momentum's best (lr, m)",
                 best["sgd"] / best["momentum"], 1.5,
                 f"SGD {best['sgd']}, Momentum {best['momentum']} (lr {valley['momentum']['best']['lr']:g}, "
                 f"m {valley['momentum']['best']['momentum']:g})"),
        at_least("valley-momentum-0.9-slower", ANALYTIC, "valley, Momentum at m = 0.9: its best iterations over SGD's best (slower: >= 1)",
                 m09["iterations"] / best["sgd"] if m09 else math.inf, 1.0),
        at_least("valley-adagrad-faster", ANALYTIC, "valley, AdaGrad: iterations until f stays < 1e-3, SGD's best over AdaGrad's best",
                 best["sgd"] / best["adagrad"], 1.5),
        at_most("adagrad-rate-shrinks", ANALYTIC, "AdaGrad rate: its effective rate |step| / |gradient| never rises along the valley "
                "(largest relative rise)",
                float(np.max(shrink[1:] / shrink[:-1] - 1)), 1e-9,
                "last / first %.3g; RMSProp's rises x%.3g from its lowest" %
                (shrink[-1] / shrink[0], m["shrink"]["rmsprop"][-1] / min(m["shrink"]["rmsprop"]))),
        at_most("saddle-adagrad", ANALYTIC, "saddle, AdaGrad: escape iterations over SGD's, worse of axis-aligned and rotated",
                max(saddle[g]["adagrad"] / saddle[g]["sgd"] for g in saddle), 1.2,
                "; ".join(f"{g}: " + ", ".join(f"{land.LABELS[o]} {n}" for o, n in saddle[g].items()) for g in saddle)),
        at_most("rmsprop-window", PHENOMENON, "RMSProp window: no clear advantage, its learning-rate window over the widest of the other four",
                widths["rmsprop"] / max(w for o, w in widths.items() if o != "rmsprop"), 2.0,
                ", ".join(f"{land.LABELS[o]} x{w:.3g}" for o, w in widths.items())),
        at_least("adaptive-beat-sgd", PHENOMENON, "adaptive beat SGD: SGD's best final loss over the worst best of AdaGrad, RMSProp and Adam",
                 loss["sgd"] / max(loss[o] for o in ("adagrad", "rmsprop", "adam")), 1.0),
        at_least("adam-vs-momentum-rmsprop-well", ANALYTIC, "Adam vs Momentum and RMSProp, double well: Adam's global share minus the better one's",
                 share["adam"] - max(share["momentum"], share["rmsprop"]), 0.0),
        at_least("adam-vs-momentum-rmsprop-valley", ANALYTIC, "Adam vs Momentum and RMSProp, valley: Adam's iterations over the slower one's",
                 best["adam"] / max(best["momentum"], best["rmsprop"]), 1.0),
        at_least("adam-vs-momentum-rmsprop-saddle", ANALYTIC, "Adam vs Momentum and RMSProp, rotated saddle: Adam's escape over the slower one's",
                 saddle["rotated"]["adam"] / max(saddle["rotated"]["momentum"], saddle["rotated"]["rmsprop"]), 1.0),
        between("adam-vs-momentum-rmsprop-mnist", PHENOMENON, "Adam vs Momentum and RMSProp, MNIST: Adam's best final loss over the better one's (close to it)",
                loss["adam"] / min(loss["momentum"], loss["rmsprop"]), 0.75, 1.25),
        between("dropout-mask-share", ANALYTIC, "dropout masks: share of units one training-mode mask drops (p = 0.5)",
                np.mean([d["dropped"] for d in drop]), 0.49, 0.51),
        at_most("dropout-ensemble-accuracy", PHENOMENON, "dropout ensemble: |accuracy of averaged masks - the scaled net's| (mean over seeds)",
                abs(np.mean([d["mc_acc"] - d["eval_acc"] for d in drop])), 0.02),
        at_least("dropout-ensemble-agreement", PHENOMENON, "dropout ensemble: averaged masks and the scaled net agree (share of test images, lowest seed)",
                 min(d["agreement"] for d in drop), 0.95),
        at_least("single-mask-less-accurate", PHENOMENON, "single mask: one thinned net alone is less accurate than the scaled net (mean drop)",
                 np.mean([d["eval_acc"] - d["single_acc"] for d in drop]), 0.03),
        at_most("l1-norm", ANALYTIC, "L1 norm: lambda * sum|W| against lambda * ||W||_1 (error)", c["l1_norm"], 1e-10),
        at_most("l2-gradient", ANALYTIC, "L2 gradient: d/dW 0.5 lambda sum W^2 against lambda W (largest error)", c["l2_gradient"], 1e-12),
        at_most("l1-gradient", ANALYTIC, "L1 gradient: d/dW lambda sum|W| against lambda sign(W), 0 at 0 (largest error)",
                c["l1_gradient"], 1e-12),
        at_most("l2-step", ANALYTIC, "L2 step: one SGD step with weight_decay against W - lr (g + lambda W) (largest error)",
                c["l2_step"], 1e-12),
    ]
    for claim in out:  # numpy scalars -> plain numbers for the results JSON
        claim.measured, claim.holds = float(claim.measured), bool(claim.holds)
    return out


def claims(results: Run) -> list[Claim]:
    return own_claims(results.extras["measured"])
