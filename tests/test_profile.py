"""`python -m repro profile`: the notes' own components, profiled, give the notes' verdicts (sigmoid vanishes
and ReLU + He does not; batch norm widens the band of init scales that train; SGD is the slowest of the
book's four); a user's optimizer from a module of its own runs the same way through the CLI; bad names are
one line and exit 2. One quick profile of the notes' activations, normalisers and optimizers is shared by the
module (the init and regulariser probes are measured the same way; their full scorecard is in the README).

Thresholds: `python -m repro run profile/<kind> --preset quick --seeds 10` (the notes' components alone, as
here; 2026-12-04), each claim re-judged on every block of 3 of the 10 seeds (what a test run sees; 120
blocks, by Run.with_seeds as `repro blocks` does for disjoint ones): their mean and worst beside each bound.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import assert_figures_drawn
from repro import cli, profiles, results
from repro.layout import Layout
from repro.report import build_report

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def notes_profile(tmp_path_factory):
    """The quick profile of the notes' own activations, normalisers and optimizers: (layout, {kind: Run})."""
    root = tmp_path_factory.mktemp("profile")
    layout = Layout(root / "results", root / "runs")
    runs = profiles.run({"activation": [], "norm": [], "optimizer": []}, "quick", device="cpu", layout=layout,
                        progress=False)
    return layout, runs


def claim(run, claim_id: str):
    found = run.claim(claim_id)
    assert found is not None, f"{claim_id} not among {[c.id for c in run.claims]}"
    return found


def test_every_notes_verdict_holds(notes_profile):
    _, runs = notes_profile
    for run in runs.values():
        failed = [f"{c.id}: measured {c.measured:.4g} ({c.bound})" for c in run.claims if c.verdict != "holds"]
        assert not failed, failed
        assert "NOT as the notes say" not in profiles.scorecard_text(run)


def test_sigmoid_vanishes_relu_he_keeps_its_gradient(notes_profile):
    run = notes_profile[1]["activation"]
    assert claim(run, "sigmoid-vanishes").measured <= 1e-4          # 10 seeds: mean 2.4e-05, worst 2.8e-05
    assert 1 <= claim(run, "relu-keeps-gradient").measured <= 6      # mean 2.7, worst 2.1 and 3.4
    assert claim(run, "sigmoid-behind-relu").measured <= -0.1        # mean -0.22, worst -0.18
    assert claim(run, "relu-spread-steady").holds                    # no training: the same 10 nets every run


def test_batch_norm_widens_the_band_and_trains_faster(notes_profile):
    run = notes_profile[1]["norm"]
    assert claim(run, "batchnorm-widens").measured >= 2              # 10 seeds: mean 3.4, worst 3 (decades)
    assert claim(run, "none-narrow").measured <= 1                   # mean 0, worst 0
    assert claim(run, "batchnorm-twice-as-fast").measured <= 0.45    # mean 0.37, worst 0.40


def test_sgd_is_the_slowest_of_the_books_four(notes_profile):
    run = notes_profile[1]["optimizer"]
    assert claim(run, "sgd-zig-zags").measured == 1                  # no training: SGD flips y at every step
    slowest_other = max(claim(run, f"{opt}-fast").measured for opt in ("momentum", "adagrad", "adam"))
    assert slowest_other <= 0.45                                     # 10 seeds: mean 0.34, worst 0.38


def test_scorecard_rows_the_notes_first_and_every_probe(notes_profile):
    run = notes_profile[1]["optimizer"]
    rows = profiles.scorecard(run)
    assert [name for name, _, _ in rows] == ["sgd", "momentum", "adagrad", "adam"]
    probes = profiles.kind_module("optimizer").probes(run.params)
    for name, noted, cells in rows:
        assert noted and len(cells) == len(probes)
        for probe, cell in zip(probes, cells):
            assert cell.value is not None and cell.words
            if name != probe.anchor and probe.kind != "analytic":   # the runner's bootstrap over the 3 seeds
                assert cell.interval and cell.interval[0] <= cell.value <= cell.interval[1], (name, probe.id)


def test_runs_are_ordinary_runs(notes_profile):
    layout, runs = notes_profile
    for kind, run in runs.items():
        assert run.path == layout.results_file(f"profile/{kind}", "quick")
        again = results.load(run.path)
        assert [c.id for c in again.claims] == [c.id for c in run.claims]
        assert_figures_drawn(run, 1)
        assert any(layout.logdir(f"profile/{kind}", "quick").rglob("events.out.tfevents.*"))


def test_the_report_has_the_profiles(notes_profile, tmp_path):
    layout, _ = notes_profile
    build_report(layout, tmp_path)
    text = (tmp_path / "REPORT.md").read_text()
    profiles_part = text[text.index("## Profiles"):]
    for words in ("vanishes like sigmoid", "widens the stable band like batch norm", "zig-zags across the valley"):
        assert words in profiles_part
    assert len(list((tmp_path / "figures").glob("profile-*/*.png"))) == 3


MY_OPT = '''"""Sign descent: each weight moves by lr against the sign of its gradient."""
import torch


class MyOpt(torch.optim.Optimizer):
    def __init__(self, params, lr=0.001):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad.sign(), alpha=-group["lr"])
'''


def test_a_users_optimizer_runs_the_same_way_through_the_cli(notes_profile, tmp_path):
    layout, _ = notes_profile
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "opt.py").write_text(MY_OPT)
    # the notes' trials of the shared run: --resume trains only the user's
    shutil.copytree(layout.results / "profile" / "optimizer", tmp_path / "results" / "profile" / "optimizer")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    proc = subprocess.run([sys.executable, "-m", "repro", "profile", "--optimizer", "mypkg.opt:MyOpt", "--preset", "quick",
                           "--device", "cpu", "--quiet", "--resume", "--results", str(tmp_path / "results"),
                           "--logdir", str(tmp_path / "runs")], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr
    run = results.load(tmp_path / "results" / "profile" / "optimizer" / "quick.json")
    assert list(run.params["optimizers"]) == ["sgd", "momentum", "adagrad", "adam", "mypkg.opt:MyOpt"]
    assert run.resumed_trials == 60 and len(run.trials) == 75
    row = proc.stdout[proc.stdout.index("mypkg.opt:MyOpt"):]
    assert len([c for c in run.claims if c.id.startswith("mypkg.opt-myopt-")]) == 3
    for c in run.claims:
        if c.id.startswith("mypkg.opt-myopt-"):  # the verdict found on all seeds, with its support over resamples
            assert c.holds and (c.kind == "analytic" or "support" in c.uncertainty), c.id
    found = run.extras["verdicts"]["mypkg.opt:MyOpt"]
    probes = {p.id: p for p in profiles.kind_module("optimizer").probes(run.params)}
    for probe_id, slug in found.items():
        assert probes[probe_id].by_slug(slug).words in row
    used = run.trials_of("mypkg.opt-myopt-lr0.01")[0].components["optimizer"]
    assert used["sha256"] == hashlib.sha256((tmp_path / "mypkg" / "opt.py").read_bytes()).hexdigest()


@pytest.mark.parametrize("args, says", [
    ([], "name a component to profile"),
    (["--activation", "nosuch"], "activation=nosuch: not a built-in activation"),
    (["--optimizer", "mypkg_missing.opt:MyOpt"], "cannot import mypkg_missing.opt"),
    (["--optimizer", "torch.nn:ReLU"], "an optimizer is a torch.optim.Optimizer subclass"),
    (["--regulariser", "l2:strong"], "regulariser l2:strong: use l2:<strength>"),
    (["--norm", "layernorm", "--preset", "huge"], "unknown preset 'huge'"),
])
def test_bad_names_are_one_line_and_exit_2(args, says, capsys, tmp_path):
    code = cli.main(["profile", *args, "--results", str(tmp_path / "results"), "--logdir", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and says in err and "\n" not in err, err
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").rglob("*.json"))


def test_component_ids():
    assert profiles.component_id("normal:0.01") == "normal-0.01"
    assert profiles.component_id("mypkg.opt:MyOpt") == "mypkg.opt-myopt"
    assert profiles.component_id("leaky_relu") == "leaky-relu"
    assert profiles.validate(profiles.kind_module("activation"),
                             {"activations": ("sigmoid", "tanh", "relu", "Leaky_ReLU", "leaky-relu")}).endswith("rename one")
    assert "must be profiled too" in profiles.validate(profiles.kind_module("norm"), {"norms": ("layernorm",)})
