"""The figures every experiment gets, drawn from its results dict: accuracy and loss curves over
seeds, and the gradient flow through the layers. The run logs them to TensorBoard as it ends;
the report saves them as PNGs. Needs only repro.experiment, so the runner can import it.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D

from . import figures, tb
from .experiment import seed_curve, trials_of


def gradient_flow(results: dict, variant: str) -> dict | None:
    """Weight-gradient norm per layer (network order) over the first evaluation interval: geometric
    mean, min and max across seeds. The start of training is where the initialisation and the
    activation decide how much gradient reaches the lower layers."""
    trials = [t for t in trials_of(results, variant) if t["history"] and "grad_norm" in t["history"][0]]
    if not trials:
        return None
    layers = trials[0]["layers"]
    norms = np.array([[t["history"][0]["grad_norm"][layer] for layer in layers] for t in trials], dtype=float)
    with np.errstate(divide="ignore"):
        geometric = np.exp(np.log(norms).mean(0))
    return {"layers": layers, "steps": trials[0]["history"][0]["step"], "n": len(trials),
            "mean": geometric, "min": norms.min(0), "max": norms.max(0)}


def _groups(results: dict) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for name, v in results["variants"].items():
        groups.setdefault(v["group"] or "all variants", []).append(name)
    return groups


def _colours(n: int) -> list:
    cmap = figures.plt.get_cmap("tab10" if n <= 10 else "viridis")
    return [cmap(i) if n <= 10 else cmap(i / max(n - 1, 1)) for i in range(n)]


def _legend(ax, handles: list, labels: list[str]) -> None:
    ax.axis("off")
    if handles:
        ax.legend(handles, labels, loc="center left", fontsize=7, frameon=False, ncol=1 if len(labels) <= 14 else 2)


def curves_figure(results: dict):
    """Per group: accuracy and loss against steps, mean over seeds with a min-max band; test solid,
    train dashed. None when no variant has two evaluation points."""
    rows = []
    for group, names in _groups(results).items():
        data = {n: {f: seed_curve(trials_of(results, n), f) for f in tb.AGGREGATED} for n in names}
        if any(d["accuracy_test"] is not None for d in data.values()):
            rows.append((group, names, data))
    if not rows:
        return None
    fig, axes = figures.new(len(rows), 3, size=(4.2, 3.0), gridspec_kw={"width_ratios": [1, 1, 0.6]})
    for (group, names, data), (ax_acc, ax_loss, ax_legend) in zip(rows, axes):
        handles, labels = [], []
        colours, lines = dict(zip(names, _colours(len(names)))), {}
        # longest curves first, so a shorter run that one continues (the same seeds, trained
        # further) stays visible on top of the stretch they share
        for name in sorted(names, key=lambda n: -len(data[n]["accuracy_test"][0]) if data[n]["accuracy_test"] else 0):
            for ax, test, train in ((ax_acc, "accuracy_test", "accuracy_train"), (ax_loss, "loss_test", "loss_train")):
                if data[name][test] is None:
                    continue
                steps, mean, low, high = data[name][test]
                (lines[name],) = ax.plot(steps, mean, color=colours[name], lw=1.5)
                ax.fill_between(steps, low, high, color=colours[name], alpha=0.2, lw=0)
                if data[name][train] is not None:
                    ax.plot(data[name][train][0], data[name][train][1], color=colours[name], lw=1, ls="--")
        for name in names:
            line, colour = lines.get(name), colours[name]
            diverged = results["variants"][name]["aggregate"].get("diverged", 0)
            if line is not None or diverged:
                handles.append(line or Line2D([], [], color=colour, ls=":"))
                labels.append(name + (f" ({diverged} diverged)" if diverged else ""))
        ax_acc.set(title=f"{group}: accuracy", xlabel="step", ylabel="accuracy")
        ax_loss.set(title=f"{group}: loss", xlabel="step", ylabel="cross-entropy")
        losses = [v for d in data.values() for f in ("loss_test", "loss_train") if d[f] is not None for v in d[f][1]]
        if losses and min(losses) > 0 and max(losses) / min(losses) > 50:
            ax_loss.set_yscale("log")
        for ax in (ax_acc, ax_loss):
            ax.grid(alpha=0.3)
        handles += [Line2D([], [], color="k", lw=1.5), Line2D([], [], color="k", lw=1, ls="--")]
        labels += ["test (band: min-max over seeds)", "train"]
        _legend(ax_legend, handles, labels)
    return fig


def gradient_flow_figure(results: dict):
    """Per group: the weight-gradient norm of every layer, input to output, one line per variant."""
    rows = []
    for group, names in _groups(results).items():
        flows = {n: gradient_flow(results, n) for n in names}
        if any(f is not None for f in flows.values()):
            rows.append((group, names, flows))
    if not rows:
        return None
    fig, axes = figures.new(len(rows), 2, size=(5.2, 3.2), gridspec_kw={"width_ratios": [1, 0.6]})
    for (group, names, flows), (ax, ax_legend) in zip(rows, axes):
        handles, labels, windows = [], [], set()
        longest = max((f["layers"] for f in flows.values() if f), key=len)
        for name, colour in zip(names, _colours(len(names))):
            flow = flows[name]
            if flow is None:
                continue
            x = np.arange(1, len(flow["layers"]) + 1)
            shown = flow["mean"] > 0  # a zero norm (e.g. zero init) has no place on a log axis
            (line,) = ax.plot(x[shown], flow["mean"][shown], marker="o", ms=3, color=colour, lw=1.5)
            ax.fill_between(x[shown], flow["min"][shown], flow["max"][shown], color=colour, alpha=0.15, lw=0)
            handles.append(line)
            labels.append(name + ("" if shown.all() else " (every norm zero)" if not shown.any() else
                                  " (zero norms not drawn)"))
            windows.add(flow["steps"])
        ax.set_yscale("log")
        every = max(1, math.ceil(len(longest) / 12))
        ax.set_xticks(range(1, len(longest) + 1, every), longest[::every], rotation=45 if every == 1 and
                      len(longest) > 6 else 0, fontsize=8)
        window = f"first {windows.pop()} steps" if len(windows) == 1 else "first evaluation interval"
        ax.set(title=f"{group}: gradient flow", xlabel="layer (input → output)",
               ylabel=f"‖∂L/∂W‖, mean over {window}")
        ax.grid(alpha=0.3, which="both")
        _legend(ax_legend, handles, labels)
    return fig


def log_overview(results: dict, logdir: Path) -> None:
    """The report's standard figures as TensorBoard images in the experiment's figures run, where a
    chart with layers on the x axis (which scalars cannot draw) sits beside the experiment's own."""
    for tag, build in (("overview/curves", curves_figure), ("overview/gradient_flow", gradient_flow_figure)):
        fig = build(results)
        if fig is not None:
            fig.tight_layout()
            tb.log_figure(Path(logdir) / "figures", tag, fig)
