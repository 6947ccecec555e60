"""Section 1-2: weight initialisation.

Shows: the initial weight scale decides the activations layer by layer, and so whether the net
learns: N(0, 1) piles sigmoid outputs at 0 and 1, N(0, 0.01) at 0.5 and makes ReLU's collapse;
Xavier N(0, 1/n_in) suits sigmoid/tanh, He N(0, 2/n_in) ReLU; zero/constant init keeps units copies.
Setup (the book): (1) no training: randn(1000, 100) through 5 bias-free layers of 100, 5 inits x
sigmoid/tanh/ReLU, 10 seeds: per layer mean, sd, share saturated and dead, beside the variance
recursion v_l = n s^2 q_{l-1}; "glorot" = xavier_normal_, 2/(n_in + n_out). (2) 4 x 100 ReLU,
SGD 0.01, batch 128, 2000 iterations (quick 300): N(0, 0.01) / Xavier / He, sigmoid N(0, 1) vs
Xavier; (3) zero and constant init, alike. Book comparison on its post_update_loss (batch loss
after the update, steps 1000, 1100, ..., 1900); claims on late_loss (before it, 1000-2000).
Reference (book, ch06/weight_init_*.py): ReLU + Xavier sd per layer 0.58, 0.41, 0.29, 0.20, 0.15,
ReLU + He about 0.82; post_update_loss (one run) N(0, 0.01) 2.302, Xavier 0.323, He 0.239.
Runtime: full preset (3 seeds) 72 s on the 2-core dev machine (2026-12-02).
Findings and how they were measured: docs/FINDINGS.md#init
"""
from __future__ import annotations

import math

import torch

from repro import figures
from repro.experiment import (ANALYTIC, PHENOMENON, BOOK_NET, Claim, Run, Variant, at_least, at_most, between,
                              book_loss_reference, chance_loss, format_stats, is_true, md_table, per_seed_table, stats)
from repro.layout import safe_name
from repro.nets import ACTIVATION_MODULES, activation_module, init_variance, init_weight
from repro.probes import ASYMPTOTES, activation_stats

TITLE = "Section 1-2: weight initialisation (activation distributions, training, symmetry)"

PRESETS = {
    "full": {"seeds": 5, "iters": 2000, "eval_every": 100, "act_seeds": 10},
    # quick: the same networks, 300 iterations evaluated once; thresholds in tests/ come from it
    "quick": {"seeds": 2, "iters": 300, "eval_every": 300, "act_seeds": 10},
}

INITS = {"normal:1": "N(0,1)", "normal:0.01": "N(0,0.01)", "xavier": "Xavier", "he": "He", "glorot": "Glorot"}
ACTIVATIONS = ("sigmoid", "tanh", "relu")
WIDTH, LAYERS, SAMPLES = 100, 5, 1000

# post_loss_every: the loss the book prints (after the update, on the step's batch) every 100 steps
BOOK = BOOK_NET.replace(optimizer="sgd", lr=0.01, post_loss_every=100)
TRAINING = [  # id, label, activation, init, the book's figure (repro.experiment.book_loss_reference)
    ("relu-n0.01", "relu + N(0,0.01)", "relu", "normal:0.01", 2.302),
    ("relu-xavier", "relu + xavier", "relu", "xavier", 0.323),
    ("relu-he", "relu + he", "relu", "he", 0.239),
    ("sigmoid-n1", "sigmoid + N(0,1)", "sigmoid", "normal:1", None),
    ("sigmoid-xavier", "sigmoid + xavier", "sigmoid", "xavier", None),
]
SYMMETRY = [("relu-zeros", "relu + zeros", "relu", "zeros"), ("sigmoid-zeros", "sigmoid + zeros", "sigmoid", "zeros"),
            ("relu-constant0.01", "relu + constant 0.01", "relu", "constant:0.01")]
LABELS = {vid: label for vid, label, *_ in TRAINING + SYMMETRY}


def variants(p: dict) -> list[Variant]:
    out = []
    for vid, label, act, init, ref in TRAINING:
        cfg = BOOK.replace(activation=act, init=init, iters=p["iters"], eval_every=p["eval_every"])
        out.append(Variant(vid, cfg, group="book: relu" if act == "relu" else "sigmoid",
                           reference=book_loss_reference(ref), metric="post_update_loss",
                           keep_state=init == "he", label=label))  # He: the units-differ baseline
    for vid, label, act, init in SYMMETRY:  # the same budget as He, so the accuracies compare
        cfg = BOOK.replace(activation=act, init=init, iters=p["iters"], eval_every=p["eval_every"])
        out.append(Variant(vid, cfg, group="symmetry", keep_state=True, label=label))
    return out


# ---- part 1: activation distributions, no training ----

def propagate(x: torch.Tensor, init: str, activation: str, layers: int = LAYERS,
              generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """Each layer's activations for input ``x`` through ``layers`` bias-free square layers; ``activation``
    a built-in name or a user's module:attribute (repro profile's spread at init)."""
    f = activation_module(activation)
    outputs, h = [], x
    for _ in range(layers):
        weight = torch.empty(x.shape[1], x.shape[1])
        init_weight(weight, init, generator)
        h = f(h @ weight.T)
        outputs.append(h)
    return outputs


def gaussian_moments(activation: str, variance: float) -> tuple[float, float]:
    """E[f(a)] and E[f(a)^2] for a ~ N(0, variance), by the trapezoid rule on a fine grid."""
    z = torch.linspace(-12.0, 12.0, 48001, dtype=torch.float64)
    density = torch.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    y = ACTIVATION_MODULES[activation]()(math.sqrt(variance) * z)
    return float(torch.trapezoid(y * density, z)), float(torch.trapezoid(y * y * density, z))


def predicted_std(init: str, activation: str, layers: int = LAYERS, width: int = WIDTH,
                  input_second_moment: float = 1.0) -> list[float]:
    """Variance propagation: v_l = n s^2 q_{l-1}; sd_l and q_l from f under N(0, v_l)."""
    q, out = input_second_moment, []
    for _ in range(layers):
        m1, m2 = gaussian_moments(activation, width * init_variance(init, width, width) * q)
        out.append(math.sqrt(max(m2 - m1 * m1, 0.0)))
        q = m2
    return out


def unit_spread(weight: torch.Tensor) -> float:
    """The largest difference between two units' incoming weights (rows), over all inputs."""
    return float((weight.max(0).values - weight.min(0).values).max())


def hidden_weights(state: dict) -> list[torch.Tensor]:
    """The hidden layers' weight matrices of a trained MLP's state_dict (the output layer left out)."""
    names = sorted((k for k in state if k.startswith("fc") and k.endswith(".weight")),
                   key=lambda k: int(k[2:].split(".")[0]))
    return [state[k] for k in names[:-1]]


def largest_move(state: dict, init: str) -> float:
    """How far the hidden weights moved from a deterministic init (zeros or a constant)."""
    moves = []
    for weight in hidden_weights(state):
        start = torch.empty_like(weight)
        init_weight(start, init)
        moves.append(float((weight - start).abs().max()))
    return max(moves)


def activation_distributions(activation: str, seeds: range) -> tuple[dict, dict]:
    """Per init: each seed's per-layer statistics and the theory's sd; and the first seed's activations."""
    cells, first = {}, {}
    for init in INITS:
        per_seed = {"mean": [], "std": [], "saturated": [], "dead": []}
        for seed in seeds:
            g = torch.Generator().manual_seed(seed)
            layers = propagate(torch.randn(SAMPLES, WIDTH, generator=g), init, activation, generator=g)
            layer_stats = [activation_stats(h, activation) for h in layers]
            for key in per_seed:
                per_seed[key].append([float(s[key]) for s in layer_stats])
            if seed == seeds[0]:
                first[init] = layers
        cells[init] = {**per_seed, "theory_std": predicted_std(init, activation)}
    return cells, first


def histogram_grid(activation: str, layers_by_init: dict, cells: dict):
    """Rows = init, columns = layer: seed 0's activations, titled with the seed-mean sd and tail share."""
    fig, axes = figures.new(len(layers_by_init), LAYERS, size=(2.2, 1.5))
    tail = "dead" if activation == "relu" else "saturated"
    for row, (init, layers) in zip(axes, layers_by_init.items()):
        if activation == "relu":  # dead units are a spike at 0: their share is in the title, not the bars
            layers = [h[h > 0] for h in layers]
            high = max((float(h.max()) for h in layers if h.numel()), default=1.0)
            low = 0.0
        else:
            low, high = ASYMPTOTES[activation]
        for k, (ax, h) in enumerate(zip(row, layers)):
            ax.stairs(torch.histc(h, 30, low, high).numpy(), torch.linspace(low, high, 31).numpy(), fill=True)
            sd, share = (seed_mean(cells[init], key)[k] for key in ("std", tail))
            ax.set_title(f"sd {sd:.2g}, {tail} {share:.0%}", fontsize=7)
            ax.set_yticks([])
            ax.locator_params(axis="x", nbins=3)
            ax.tick_params(labelsize=6)
        row[0].set_ylabel(INITS[init], fontsize=9)
    for k, ax in enumerate(axes[-1], start=1):
        ax.set_xlabel(f"layer {k}", fontsize=8)
    fig.suptitle(f"{activation}: activations per layer (seed 0; titles: mean over seeds)", fontsize=10)
    return fig


def seed_mean(cell: dict, key: str) -> list[float]:
    """Per layer, the mean over seeds of one statistic of an (activation, init) cell."""
    return torch.tensor(cell[key]).mean(0).tolist()


def layer_ratios(sd: list[float]) -> list[float]:
    """sd of each layer over the sd of the layer below it."""
    return [b / a for a, b in zip(sd, sd[1:])]


def activation_table(activation: str, cells: dict) -> str:
    tail = "dead" if activation == "relu" else "saturated"
    rows = []
    for init, cell in cells.items():
        mean, sd, share = (seed_mean(cell, key) for key in ("mean", "std", tail))
        rows += [[INITS[init], k + 1, f"{mean[k]:.3g}", f"{sd[k]:.3g}", f"{theory:.3g}", f"{sd[k] / theory:.3f}",
                  f"{share[k]:.1%}"] for k, theory in enumerate(cell["theory_std"])]
    return md_table(["init", "layer", "mean", "sd", "sd (theory)", "sd / theory", tail], rows)


def symmetry_table(symmetry: dict, trials: dict) -> str:
    rows = [[LABELS[vid], f"{max(m['unit_spread']):.3g}", f"{max(m['hidden_move']):.3g}" if "hidden_move" in m else "-",
             format_stats(stats([t.summary["final_test_acc"] for t in trials[vid]]))]
            for vid, m in symmetry.items()]
    return md_table(["variant", "largest difference between units", "largest move of hidden weights",
                     "test accuracy"], rows)


def extras(p: dict, ctx) -> dict:
    from torch.utils.tensorboard import SummaryWriter
    out = {"activations": {}, "symmetry": {}, "figures": {}, "tables": {}}
    for act in ACTIVATIONS:
        cells, first = activation_distributions(act, range(p["act_seeds"]))
        out["activations"][act] = cells
        for init, layers in first.items():
            with SummaryWriter(str(ctx.logdir / "activations" / safe_name(f"{act} + {INITS[init]}"))) as w:
                for k, h in enumerate(layers, start=1):
                    w.add_histogram(f"activations/act{k}", h, 0)
        out["figures"][f"activations, {act}"] = figures.save(
            histogram_grid(act, first, cells), ctx.out_dir / f"activations_{act}.png", ctx.logdir, f"init/{act}")
        out["tables"][f"{act}: randn(1000, 100) through 5 bias-free layers of 100, mean over "
                      f"{p['act_seeds']} seeds; theory: variance propagation"] = activation_table(act, cells)
    inits = {vid: init for vid, _, _, init in SYMMETRY}
    for vid, states in ctx.states.items():
        out["symmetry"][vid] = {"unit_spread": [max(map(unit_spread, hidden_weights(s))) for s in states]}
        if vid in inits:
            out["symmetry"][vid]["hidden_move"] = [largest_move(s, inits[vid]) for s in states]
    out["tables"]["training: the book's statistic (loss on the step's batch after its update, mean of iterations "
                  f"{p['iters'] // 2}, {p['iters'] // 2 + 100}, ..., {p['iters'] - 100}; the book's: 1000-1900 of "
                  "2000) per seed, beside the book's single run"] = per_seed_table(
        ctx.trials, [(vid, ref) for vid, _, _, _, ref in TRAINING], "post_update_loss", "book (one run)",
        ("late_loss", "ours: mean batch loss before the update, 2nd half"), LABELS)
    out["tables"]["symmetry: hidden layers' incoming weights after training (worst seed)"] = \
        symmetry_table(out["symmetry"], ctx.trials)
    return out


# Bounds of the activation claims, against their values on 20 disjoint sets of 10 seeds (min-max):
# saturated 0.635-0.663; tanh 0.849-0.850; sd 0.0250-0.0254; |mean - 0.5| 0.0023-0.0042;
# He ratio 1.011-1.092; Xavier shrink 0.696-0.721; N(0, 0.01) ratio 0.076-0.089; dead 0.481-0.521;
# theory error 0.024-0.094. Training and symmetry, 10 quick seeds / 5 full seeds: |late loss - ln 10|
# at most 0.0007 / 0.0014; He below Xavier by 1.27 / 0.096 in the closest seed; copies' spread 0 /
# 4e-9, He's at least 0.94 / 0.99; sigmoid-zeros move 4.1e-6-5.8e-6 / 4.1e-5-4.4e-5; constant over
# zeros 225 / 561; He over the best copy 0.735 / 0.686 in test accuracy.
def claims(results: Run) -> list[Claim]:
    acts, sym = results.extras["activations"], results.extras["symmetry"]
    he_sd, xavier_sd = seed_mean(acts["relu"]["he"], "std"), seed_mean(acts["relu"]["xavier"], "std")
    small = acts["sigmoid"]["normal:0.01"]
    theory_error = max(abs(m / t - 1) for cells in acts.values() for cell in cells.values()
                       for m, t in zip(seed_mean(cell, "std"), cell["theory_std"]))
    copies = [vid for vid, *_ in SYMMETRY]
    dead = [v for cell in acts["relu"].values() for v in seed_mean(cell, "dead")]
    move = {vid: sym[vid]["hidden_move"] for vid in copies}
    return [
        at_least("sigmoid-n1-saturates", ANALYTIC, "sigmoid + N(0, 1): over 60% of activations saturated in every layer (least layer, seed mean)",
                 min(seed_mean(acts["sigmoid"]["normal:1"], "saturated")), 0.6),
        between("tanh-n1-saturates", ANALYTIC, "tanh + N(0, 1): about 85% beyond |0.95| (seed mean over layers)",
                sum(seed_mean(acts["tanh"]["normal:1"], "saturated")) / LAYERS, 0.8, 0.9),
        at_most("sigmoid-n001-sd-small", ANALYTIC, "sigmoid + N(0, 0.01): sd below 0.03 in every layer (largest, any seed)",
                max(map(max, small["std"])), 0.03),
        at_most("sigmoid-n001-at-half", ANALYTIC, "sigmoid + N(0, 0.01): piled around 0.5 (largest |mean - 0.5|, any seed and layer)",
                max(abs(v - 0.5) for seed in small["mean"] for v in seed), 0.01),
        at_most("relu-he-sd-steady", ANALYTIC, "ReLU + He: sd within 20% across the 5 layers (largest / smallest, seed mean)",
                max(he_sd) / min(he_sd), 1.2),
        between("relu-xavier-sd-shrinks", ANALYTIC, "ReLU + Xavier: sd shrinks by about 1/sqrt(2) a layer (geometric mean ratio, seed mean)",
                (xavier_sd[-1] / xavier_sd[0]) ** (1 / (LAYERS - 1)), 0.65, 0.77),
        at_most("relu-n001-sd-collapses", ANALYTIC, "ReLU + N(0, 0.01): sd collapses by over 10x a layer (largest layer ratio, any seed)",
                max(max(layer_ratios(sd)) for sd in acts["relu"]["normal:0.01"]["std"]), 0.1),
        between("relu-half-dead", ANALYTIC, "ReLU: about half the units dead at every init and layer (seed mean, farthest from 0.5)",
                max(dead, key=lambda v: abs(v - 0.5)), 0.45, 0.55),
        at_most("variance-theory-predicts-sd", ANALYTIC, "variance-propagation theory predicts every layer's sd (largest |measured / theory - 1|)",
                theory_error, 0.15),
        at_most("relu-n001-stuck-at-ln10", PHENOMENON, "training: ReLU + N(0, 0.01) stays within 0.01 of the chance loss ln(classes) "
                "(late loss, farthest seed)",
                max(abs(v - chance_loss(results, "relu-n0.01")) for v in results.variant("relu-n0.01").values("late_loss")),
                0.01),
        is_true("relu-he-below-xavier", PHENOMENON, "training: ReLU + He ends below ReLU + Xavier (late loss, margin of the means)",
                results.agg("relu-he", "late_loss") < results.agg("relu-xavier", "late_loss"),
                results.agg("relu-xavier", "late_loss") - results.agg("relu-he", "late_loss")),
        at_most("symmetric-init-identical-units", PHENOMENON, "zero/constant init: every hidden unit keeps identical incoming weights "
                "(largest difference between units, any variant and seed)",
                max(max(sym[vid]["unit_spread"]) for vid in copies), 1e-6),
        at_least("he-init-units-differ", PHENOMENON, "... while from He init the units differ (smallest difference between units, any seed)",
                 min(sym["relu-he"]["unit_spread"]), 0.1),
        at_most("relu-zeros-never-moves", PHENOMENON, "ReLU + zeros: the hidden weights never move (largest |W|, any seed)",
                max(move["relu-zeros"]), 0.0),
        at_least("sigmoid-zeros-gets-gradient", PHENOMENON, "sigmoid + zeros: the hidden weights do get a gradient (largest move, least seed)",
                 min(move["sigmoid-zeros"]), 1e-7),
        at_most("sigmoid-zeros-barely-moves", PHENOMENON, "... but barely move: a saddle it does not leave (largest move, any seed)",
                max(move["sigmoid-zeros"]), 1e-3),
        at_least("relu-constant-learns-as-copies", PHENOMENON, "ReLU + constant 0.01 learns, as copies: its hidden weights move >= 50x more than from zeros "
                 "(least constant seed / largest sigmoid-zeros seed)",
                 min(move["relu-constant0.01"]) / max(move["sigmoid-zeros"]), 50),
        at_least("copies-waste-width", PHENOMENON, "a network of copies wastes its width: test accuracy below He's by >= 0.5 "
                 "(He - best copy, means)",
                 results.agg("relu-he") - max(results.agg(vid) for vid in copies), 0.5),
    ]
