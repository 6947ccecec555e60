"""The figures every experiment gets, drawn from its Run (repro/results.py): accuracy and loss curves
over seeds, and the gradient flow through the layers. STANDARD_FIGURES is their one list: the run
logs them to TensorBoard as it ends, the report saves them as PNGs, the Python API returns them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from matplotlib.lines import Line2D

from . import figures, tb
from .experiment import seed_curve
from .metrics import curves
from .results import Run, gradient_flow


def gradient_flow_summary(trials: list) -> dict | None:
    """The gradient flow (repro.results.gradient_flow) over seeds: geometric mean, min and max per layer."""
    flow = gradient_flow(trials)
    if flow is None:
        return None
    norms = flow["norms"]
    with np.errstate(divide="ignore"):
        geometric = np.exp(np.log(norms).mean(0))
    return {"layers": flow["layers"], "steps": flow["steps"], "n": len(norms), "mean": geometric,
            "min": norms.min(0), "max": norms.max(0)}


def _colours(n: int) -> list:
    cmap = figures.plt.get_cmap("tab10" if n <= 10 else "viridis")
    return [cmap(i) if n <= 10 else cmap(i / max(n - 1, 1)) for i in range(n)]


def _legend(ax, handles: list, labels: list[str]) -> None:
    ax.axis("off")
    if handles:
        ax.legend(handles, labels, loc="center left", fontsize=7, frameon=False, ncol=1 if len(labels) <= 14 else 2)


def curves_figure(results: Run):
    """Per group: accuracy and loss against steps, mean over seeds with a min-max band; test solid,
    train dashed. None when no variant has two evaluation points."""
    rows = []
    for group, names in results.groups().items():
        data = {n: {f: seed_curve(results.trials_of(n), f) for f in curves()} for n in names}
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
            diverged = results.variant(name).aggregate.get("diverged", 0)
            if line is not None or diverged:
                handles.append(line or Line2D([], [], color=colour, ls=":"))
                labels.append(results.variant(name).label + (f" ({diverged} diverged)" if diverged else ""))
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


def gradient_flow_figure(results: Run):
    """Per group: the weight-gradient norm of every layer, input to output, one line per variant."""
    rows = []
    for group, names in results.groups().items():
        flows = {n: gradient_flow_summary(results.trials_of(n)) for n in names}
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
            labels.append(results.variant(name).label + ("" if shown.all() else " (every norm zero)" if not shown.any() else
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


CURVES_CAPTION = ("Accuracy (left) and cross-entropy (right) against training steps, one row per group: "
                  "the line is the mean over seeds, the band spans the lowest to the highest seed; "
                  "solid = test set, dashed = training set.")
FLOW_CAPTION = ("Gradient flow: the norm of each layer's weight gradient at the start of training, input "
                "layer on the left, output layer on the right, log scale (geometric mean over seeds; band: "
                "min-max). A line that falls steeply to the left means the gradient vanishes on its way "
                "down: the lower layers barely learn. A flat line means every layer gets a similar share.")


@dataclass(frozen=True)
class StandardFigure:
    name: str          # the PNG's and TensorBoard image's name
    title: str         # what the report and the API call it
    draw: Callable     # Run -> matplotlib Figure, or None where the run has nothing to draw
    caption: str


STANDARD_FIGURES = (StandardFigure("curves", "accuracy and loss", curves_figure, CURVES_CAPTION),
                    StandardFigure("gradient-flow", "gradient flow", gradient_flow_figure, FLOW_CAPTION))


def standard_figures(results: Run) -> dict:
    """{StandardFigure: Figure} for the figures this run has data for, laid out tight."""
    out = {}
    for spec in STANDARD_FIGURES:
        fig = spec.draw(results)
        if fig is not None:
            fig.tight_layout()
            out[spec] = fig
    return out


def log_overview(results: Run, logdir: Path) -> None:
    """The standard figures as TensorBoard images in the experiment's figures run, where a chart with
    layers on the x axis (which scalars cannot draw) sits beside the experiment's own."""
    for spec, fig in standard_figures(results).items():
        tb.log_figure(Path(logdir) / "figures", f"overview/{spec.name}", fig)
