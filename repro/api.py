"""The suite from Python and Jupyter: the same engine, results files and resume as the CLI.

    import repro
    r = repro.run("vanishing", preset="quick")      # trains, saves results/vanishing/quick.json
    print(r.table())                                  # what `python -m repro run` prints
    r.claims                                          # each with its verdict
    r.figures()                                       # {title: matplotlib Figure}
    r = repro.load("results/vanishing/quick.json")    # results on disk, nothing trained
    trial = repro.train({"activation": "sigmoid", "init": "xavier", "iters": 300}, seed=0)
    p = repro.profile(activation="gelu", optimizer=["adamw", "mypkg.opt:MyOpt"])   # beside the notes' own
    print(p.table())                                  # the scorecards `python -m repro profile` prints

Every refusal (an unknown experiment, a bad setting, no data) raises repro.ReproError with the
CLI's one-line message.
"""
from __future__ import annotations

from pathlib import Path

from .errors import ReproError
from .layout import Layout
from .results import Run, load as load_run


class Results:
    """One experiment's results (a repro.results.Run, as ``.run``), with the views the CLI and report give."""

    def __init__(self, run: Run):
        self.run = run
        self.path = run.path

    @property
    def name(self) -> str:
        return self.run.experiment

    @property
    def preset(self) -> str:
        return self.run.preset

    @property
    def claims(self) -> list[dict]:
        """Each claim as saved, with its ``verdict``: "holds", "fails" or "not judged"."""
        return [{**c.to_dict(), "verdict": c.verdict} for c in self.run.claims]

    @property
    def holds(self) -> bool:
        """Every claim this run could judge holds."""
        from .claims import failing
        return not failing(self.run.claims)

    @property
    def aggregates(self) -> dict:
        """variant id -> metric -> mean, std, min, max, ci95 and n over seeds."""
        return {vid: v.aggregate for vid, v in self.run.variants.items()}

    def table(self) -> str:
        """The table a run prints: each variant beside its reference, its own tables, every claim."""
        from .runner import summary_table
        return summary_table(self.run)

    def frame(self):
        """Each variant's metric as a pandas DataFrame (needs pandas, which the suite does not)."""
        try:
            import pandas
        except ImportError:
            raise ReproError("Results.frame() needs pandas (pip install pandas); table() needs nothing") from None
        rows = [{"variant": vid, "label": v.label, "group": v.group, "metric": v.metric, **v.aggregate[v.metric],
                 "diverged": v.aggregate["diverged"]} for vid, v in self.run.variants.items()]
        return pandas.DataFrame(rows).set_index("variant")

    def figures(self) -> dict:
        """{title: matplotlib Figure}: the experiment's own figures (as it saved them, inside its results
        folder), then the standard figures every experiment gets (repro.overview.STANDARD_FIGURES)."""
        from matplotlib.image import imread

        from . import figures
        from .overview import standard_figures
        out = {}
        for title, png in self.run.figure_files():
            image = imread(png)
            fig, axes = figures.new(1, 1, size=(image.shape[1] / 110, image.shape[0] / 110))
            axes[0][0].imshow(image)
            axes[0][0].axis("off")
            out[title] = fig
        for spec, fig in standard_figures(self.run).items():
            out[spec.title] = fig
        for fig in out.values():  # handed over, not left open: Jupyter shows only the one a cell returns
            figures.plt.close(fig)
        return out

    def __repr__(self) -> str:
        from .claims import count_text
        return (f"<Results {self.name}/{self.preset}: {len(self.run.trials)} trials, "
                f"{count_text(self.run.claims)}; {self.path}>")

    def _repr_markdown_(self) -> str:  # Jupyter shows this for a Results at the end of a cell
        from .report import claims_table, claims_verdict, results_table
        lines = [f"**{self.name}/{self.preset}**: {claims_verdict(self.run.claims)}", ""]
        return "\n".join(lines + results_table(self.run) + [""] + claims_table(self.run))


def run(experiment: str, preset: str = "full", seeds: int | None = None, set: dict | None = None,
        device: str = "auto", results: Path | str = "results", logdir: Path | str = "runs",
        resume: bool = False, progress: bool = True, workers: int | None = None) -> Results:
    """Run an experiment as `python -m repro run` does and return its results (also saved to
    results/<experiment>/<preset>.json). ``set``: {key: value} as --set KEY=VALUE, values as values."""
    from .runner import run_experiment
    return Results(run_experiment(experiment, preset, seeds=seeds, device=device, sets=set or {},
                                  layout=Layout(Path(results), Path(logdir)), workers=workers,
                                  progress=progress, resume=resume))


class Profile:
    """A profile's runs (repro/profiles.py), one per kind, each a Results, with the scorecards the CLI prints."""

    def __init__(self, runs: dict[str, Run]):
        self.runs = {kind: Results(run) for kind, run in runs.items()}

    def table(self) -> str:
        """What `python -m repro profile` prints: per kind, a line per component and probe with its verdict."""
        from .profiles import scorecard_text
        return "\n\n".join(scorecard_text(r.run) for r in self.runs.values())

    @property
    def claims(self) -> list[dict]:
        """Every kind's claims as saved, each with its ``verdict``."""
        return [c for r in self.runs.values() for c in r.claims]

    @property
    def holds(self) -> bool:
        """The notes' components gave the notes' verdicts (every claim judged holds)."""
        return all(r.holds for r in self.runs.values())

    def __repr__(self) -> str:
        from .claims import count_text
        return f"<Profile {', '.join(self.runs)}: {count_text([c for r in self.runs.values() for c in r.run.claims])}>"

    def _repr_markdown_(self) -> str:  # Jupyter shows the scorecards as tables
        from .profiles import scorecard_markdown
        return "\n\n".join(f"**{r.run.title}** ({r.preset}, {r.run.seeds} seeds)\n\n{scorecard_markdown(r.run)}"
                            for r in self.runs.values())


def profile(activation=None, init=None, norm=None, optimizer=None, regulariser=None, preset: str = "quick",
            seeds: int | None = None, set: dict | None = None, device: str = "auto", results: Path | str = "results",
            logdir: Path | str = "runs", resume: bool = False, progress: bool = True,
            workers: int | None = None) -> Profile:
    """Profile components as `python -m repro profile` does: each a name or a list of names (built-in, or
    "module:attribute" for your own), e.g. ``repro.profile(activation="gelu", optimizer=["adamw", "lion"])``.
    Each kind's run is saved as results/profile/<kind>/<preset>.json."""
    from .profiles import run as run_profile
    given = {"activation": activation, "init": init, "norm": norm, "optimizer": optimizer, "regulariser": regulariser}
    components = {kind: [names] if isinstance(names, str) else list(names) for kind, names in given.items() if names}
    return Profile(run_profile(components, preset, seeds=seeds, device=device, sets=set or {},
                               layout=Layout(Path(results), Path(logdir)), workers=workers, progress=progress,
                               resume=resume))


def load(path: Path | str) -> Results:
    """Results saved by an earlier run (a results/<experiment>/<preset>.json file), validated."""
    return Results(load_run(path))


def train(config=None, seed: int = 0, device: str = "cpu", logdir: Path | str | None = None):
    """One trial, as `python -m repro train`: ``config`` a TrialConfig or {key: value} over the
    defaults. Returns its repro.results.Trial: history, batch losses, summary (final metrics)."""
    from .config import TrialConfig, apply_overrides
    from .executor import TrialSpec, execute
    from .results import Trial
    from .device import choose_device
    if not isinstance(config, TrialConfig):
        config = apply_overrides(TrialConfig(), config or {})
    spec = TrialSpec(config, seed, choose_device(device, [config], trials=1)[0], str(logdir) if logdir else None)
    (result,) = execute([spec], workers=1)  # one intra-op thread, as every trial of a run: the same numbers
    return Trial.from_engine(result, variant="train")
