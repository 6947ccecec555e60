"""The suite from Python and Jupyter: the same engine, results files and resume as the CLI.

    import repro
    r = repro.run("vanishing", preset="quick")      # trains, saves results/vanishing/quick.json
    print(r.table())                                  # what `python -m repro run` prints
    r.claims                                          # each with its verdict
    r.figures()                                       # {title: matplotlib Figure}
    r = repro.load("results/vanishing/quick.json")    # results on disk, nothing trained
    trial = repro.train({"activation": "sigmoid", "init": "xavier", "iters": 300}, seed=0)

Every refusal (an unknown experiment, a bad setting, no data) raises repro.ReproError with the
CLI's one-line message.
"""
from __future__ import annotations

import json
from pathlib import Path

from .errors import ReproError
from .store import REQUIRED_KEYS


def _as_text(value) -> str:
    """A Python value as --set would spell it: 0.05 -> "0.05", (100, 100) -> "100,100", True -> "true"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return "none" if value is None else str(value)


class Results:
    """One experiment's results as saved in its JSON file, with the views the CLI and report give."""

    def __init__(self, data: dict, path: Path | str | None = None):
        missing = [k for k in REQUIRED_KEYS if k not in data]
        if missing:
            raise ReproError(f"{path or 'results'}: not an experiment's results (no {', '.join(missing)})")
        self.data = data
        self.path = Path(path or data.get("path", ""))

    @property
    def name(self) -> str:
        return self.data["experiment"]

    @property
    def preset(self) -> str:
        return self.data["preset"]

    @property
    def claims(self) -> list[dict]:
        """Each claim as saved, with its ``verdict``: "holds", "fails" or "not judged"."""
        from .claims import verdict
        return [{**c, "verdict": verdict(c)} for c in self.data["claims"]]

    @property
    def holds(self) -> bool:
        """Every claim this run could judge holds."""
        from .claims import failing
        return not failing(self.data["claims"])

    @property
    def aggregates(self) -> dict:
        """variant -> metric -> mean, std, min, max, ci95 and n over seeds."""
        return {name: v["aggregate"] for name, v in self.data["variants"].items()}

    def table(self) -> str:
        """The table a run prints: each variant beside its reference, its own tables, every claim."""
        from .runner import summary_table
        return summary_table(self.data)

    def frame(self):
        """Each variant's metric as a pandas DataFrame (needs pandas, which the suite does not)."""
        try:
            import pandas
        except ImportError:
            raise ReproError("Results.frame() needs pandas (pip install pandas); table() needs nothing") from None
        rows = [{"variant": name, "group": v["group"], "metric": v["metric"], **v["aggregate"][v["metric"]],
                 "diverged": v["aggregate"]["diverged"]} for name, v in self.data["variants"].items()]
        return pandas.DataFrame(rows).set_index("variant")

    def figures(self) -> dict:
        """{title: matplotlib Figure}: the experiment's own figures (as it saved them), then the
        learning curves and the gradient flow that every experiment gets."""
        from matplotlib.image import imread

        from . import figures
        from .overview import curves_figure, gradient_flow_figure
        out = {}
        for title, png in (self.data.get("extras", {}).get("figures") or {}).items():
            if Path(png).is_file():
                image = imread(png)
                fig, axes = figures.new(1, 1, size=(image.shape[1] / 110, image.shape[0] / 110))
                axes[0][0].imshow(image)
                axes[0][0].axis("off")
                out[title] = fig
        for title, build in (("accuracy and loss", curves_figure), ("gradient flow", gradient_flow_figure)):
            fig = build(self.data)
            if fig is not None:
                fig.tight_layout()
                out[title] = fig
        for fig in out.values():  # handed over, not left open: Jupyter shows only the one a cell returns
            figures.plt.close(fig)
        return out

    def __repr__(self) -> str:
        from .claims import count_text
        return (f"<Results {self.name}/{self.preset}: {len(self.data['trials'])} trials, "
                f"{count_text(self.data['claims'])}; {self.path}>")

    def _repr_markdown_(self) -> str:  # Jupyter shows this for a Results at the end of a cell
        from .report import claims_table, claims_verdict, results_table
        lines = [f"**{self.name}/{self.preset}**: {claims_verdict(self.data['claims'])}", ""]
        return "\n".join(lines + results_table(self.data) + [""] + claims_table(self.data))


def run(experiment: str, preset: str = "full", seeds: int | None = None, set: dict | None = None,
        device: str = "auto", results: Path | str = "results", logdir: Path | str = "runs",
        resume: bool = False, progress: bool = True, workers: int | None = None) -> Results:
    """Run an experiment as `python -m repro run` does and return its results (also saved to
    results/<experiment>/<preset>.json). ``set``: {key: value} as --set KEY=VALUE."""
    from .runner import run_experiment
    sets = {key: _as_text(value) for key, value in (set or {}).items()}
    data = run_experiment(experiment, preset, seeds, device, sets, Path(logdir), Path(results), workers,
                          progress=progress, resume=resume)
    return Results(data, data["path"])


def load(path: Path | str) -> Results:
    """Results saved by an earlier run (a results/<experiment>/<preset>.json file)."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as err:
        raise ReproError(f"cannot read {path} ({err.strerror or err})") from None
    except ValueError as err:
        raise ReproError(f"{path} is not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ReproError(f"{path}: not an experiment's results")
    return Results(data, path)


def train(config=None, seed: int = 0, device: str = "cpu", logdir: Path | str | None = None) -> dict:
    """One trial, as `python -m repro train`: ``config`` a TrialConfig or {key: value} over the
    defaults. Returns the trial's result: history, batch losses, summary (final metrics)."""
    from .config import TrialConfig, config_from_text
    from .executor import TrialSpec, run_trial
    from .device import choose_device
    if not isinstance(config, TrialConfig):
        config = config_from_text(TrialConfig(), {k: _as_text(v) for k, v in (config or {}).items()})
    spec = TrialSpec(config.to_dict(), seed, choose_device(device, [config], trials=1)[0], str(logdir) if logdir else None)
    result = run_trial(spec)
    result.pop("tag", None)
    return result
