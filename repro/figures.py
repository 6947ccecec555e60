"""Figures: one matplotlib figure saved as a PNG beside the results and as a TensorBoard image."""
from __future__ import annotations

from pathlib import Path

import sys

import matplotlib

if "ipykernel" not in sys.modules:
    matplotlib.use("Agg")  # files only: no display on CI or servers; Jupyter keeps its inline backend
import matplotlib.pyplot as plt  # noqa: E402

from . import tb  # noqa: E402
from .experiment import seed_curve  # noqa: E402


def new(rows: int = 1, cols: int = 1, size: tuple[float, float] = (4.0, 3.2), **kwargs):
    """A figure of rows x cols panels, each ``size`` inches."""
    return plt.subplots(rows, cols, figsize=(size[0] * cols, size[1] * rows), squeeze=False, **kwargs)


def save(fig, png_path: Path, logdir: Path | None = None, tag: str | None = None) -> str:
    """Write ``fig`` to ``png_path`` and, with ``logdir``, as image ``tag`` under logdir/figures."""
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    if logdir is not None:
        tb.log_figure(Path(logdir) / "figures", tag or png_path.stem, fig)  # closes the figure
    plt.close(fig)
    return str(png_path)


def band(ax, trials: list[dict], value, label: str, **style) -> None:
    """Mean over seeds of ``value(point)`` (or a field of each evaluation point) against the step,
    with the seeds' min-max as a band (repro.experiment.seed_curve)."""
    curve = seed_curve(trials, value)
    if curve is not None:
        steps, mean, low, high = curve
        line, = ax.plot(steps, mean, label=label, **style)
        ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.2, lw=0)
