"""Where a run's files go: one object knows the layout of results/ and runs/, so no code walks up
folders to find a sibling.

    results/<experiment>/<preset>.json           the run's results (repro/results.py)
    results/<experiment>/<preset>/               its figures, and trials/ (finished trials, --resume)
    runs/<experiment>/<preset>/                  TensorBoard: the story layout, figures/
    runs/<experiment>/<preset>/<variant>/seed<k>/   one trial
    runs/<experiment>/<preset>/<variant>/mean/      mean, min and max over seeds
    results/sweeps/<name>.json, results/sweeps/<name>/, runs/sweeps/<name>/
    results/generalise/<condition>/...           a whole Layout per condition (repro/generalise.py)
    results/generalise/<preset>.json             the generalisation matrix
    results/profile/<kind>/<preset>.json         a profile's run of one kind (repro/profiles.py: its
    runs/profile/<kind>/<preset>/                name, profile/<kind>, is where its files go)
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

GENERALISE = "generalise"
PROFILE = "profile"
SWEEPS = "sweeps"


def safe_name(name: str) -> str:
    """A name as a single path component (variant ids already are; sweep cells and free text are not)."""
    return re.sub(r"[^A-Za-z0-9_.+=-]+", "_", name)


@dataclass(frozen=True)
class Layout:
    results: Path = Path("results")
    runs: Path = Path("runs")

    def __post_init__(self):
        object.__setattr__(self, "results", Path(self.results))
        object.__setattr__(self, "runs", Path(self.runs))

    # ---- an experiment's run ----
    def results_file(self, experiment: str, preset: str) -> Path:
        return self.results / experiment / f"{preset}.json"

    def outputs(self, experiment: str, preset: str) -> Path:
        """Figures and the trial store of one run."""
        return self.results / experiment / preset

    def trials(self, experiment: str, preset: str) -> Path:
        return self.outputs(experiment, preset) / "trials"

    def logdir(self, experiment: str, preset: str) -> Path:
        return self.runs / experiment / preset

    def trial_logdir(self, experiment: str, preset: str, variant: str, seed: int) -> Path:
        return self.logdir(experiment, preset) / safe_name(variant) / f"seed{seed}"

    def mean_logdir(self, experiment: str, preset: str, variant: str) -> Path:
        return self.logdir(experiment, preset) / safe_name(variant) / "mean"

    @staticmethod
    def outputs_of(results_file: Path) -> Path:
        """The outputs folder beside a results file: results/<experiment>/<preset>.json -> .../<preset>/."""
        return Path(results_file).with_suffix("")

    def presets_run(self, experiment: str) -> list[Path]:
        """An experiment's results files, newest first."""
        files = [f for f in (self.results / experiment).glob("*.json") if f.is_file()]
        return sorted(files, key=lambda f: f.stat().st_mtime, reverse=True)

    def find(self, experiment: str, preset: str | None = None, fallbacks: tuple[str, ...] = ()) -> Path | None:
        """The results file of ``preset``, else of the first of ``fallbacks`` that exists; with no preset,
        the newest. None where there is none."""
        if preset is None:
            files = self.presets_run(experiment)
            return files[0] if files else None
        for name in dict.fromkeys((preset, *fallbacks)):
            path = self.results_file(experiment, name)
            if path.is_file():
                return path
        return None

    # ---- sweeps ----
    def sweep_file(self, name: str) -> Path:
        return self.results / SWEEPS / f"{name}.json"

    def sweep_outputs(self, name: str) -> Path:
        return self.results / SWEEPS / name

    def sweep_logdir(self, name: str) -> Path:
        return self.runs / SWEEPS / name

    # ---- the generalisation matrix ----
    def condition(self, name: str) -> "Layout":
        """The layout of one condition's runs: a results and runs tree of its own."""
        return Layout(self.results / GENERALISE / name, self.runs / GENERALISE / name)

    def matrix_file(self, preset: str) -> Path:
        return self.results / GENERALISE / f"{preset}.json"

    def profiles(self, preset: str | None = None) -> list[Path]:
        """The results file of each kind's profile (repro/profiles.py) at ``preset``, else its newest."""
        found = []
        for folder in sorted(p for p in (self.results / PROFILE).glob("*") if p.is_dir()):
            chosen = self.find(f"{PROFILE}/{folder.name}", preset)
            if chosen is not None:
                found.append(chosen)
        return found

    def matrices(self) -> list[Path]:
        """Generalisation matrices, newest first."""
        files = [f for f in (self.results / GENERALISE).glob("*.json") if f.is_file()]
        return sorted(files, key=lambda f: f.stat().st_mtime, reverse=True)
