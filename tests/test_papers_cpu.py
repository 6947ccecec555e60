"""The papers' cpu presets (what `make exp-papers` runs, about 16 minutes here): every claim holds.
Slow: `make test-full` runs them; `make test` holds the quick presets (tests/test_<paper>.py)."""
import pytest

from conftest import assert_claims_hold
from repro.runner import experiment_names, paper_of

PAPERS = [n for n in experiment_names() if paper_of(n) is not None]


def test_the_make_target_runs_every_paper():
    from pathlib import Path
    listed = next(line for line in (Path(__file__).parents[1] / "Makefile").read_text().splitlines()
                  if line.startswith("PAPERS :="))
    assert listed.split(":=")[1].split() == PAPERS


@pytest.mark.slow
@pytest.mark.parametrize("name", PAPERS)
def test_cpu_preset_claims_hold(tmp_path, name):
    from repro.layout import Layout
    from repro.runner import run_experiment
    assert_claims_hold(run_experiment(name, "cpu", device="cpu", layout=Layout(tmp_path / "results", tmp_path / "runs"),
                                      progress=False))
