"""Do the phenomena generalise? The quick matrix of two experiments under two conditions, and the
machinery around it: conditions, the matrix built from the runs on disk, the audit's column, bad input.

Thresholds: each claim below measured in five blocks of two seeds (0-1, 2-3, ..., 8-9: ten seeds,
each block what this test's 2-seed run sees) per condition, with repro.generalise's conditions at
the quick preset on the 2-core dev machine (2026-12-02); mean and worst block beside each. Every
phenomenon claim of vanishing and init held in all five blocks under both conditions.
"""
from __future__ import annotations

import dataclasses
import json

import pytest

from repro import results, generalise, report
from repro.claims import FAILS, HOLDS
from repro.config import ConfigError
from repro.layout import Layout
from repro.tables import md_cell, md_text
from repro.generalise import CONDITIONS
from repro.runner import run_experiment

EXPERIMENTS, TESTED = ("vanishing", "init"), ("fashion-mnist", "batch-half")

# (experiment, claim, condition) -> (lowest, highest) the measured value may take; the claim's own
# bound decides the verdict, these hold the size of the effect.
BANDS = {
    # Fashion-MNIST: sigmoid + N(0, 0.01) stays at chance: 0.1 in every block
    ("vanishing", "sigmoid-n001-does-not-learn", "fashion-mnist"): (0.0, 0.15),
    # margin of ReLU + He over the next course variant: mean 0.103, worst 0.080
    ("vanishing", "relu-he-best", "fashion-mnist"): (0.03, 1.0),
    # sigmoid + Xavier, shrink per 5 layers: mean 1265, worst 1114; depth 10: mean 2.1e-6, worst 2.6e-6
    ("vanishing", "sigmoid-ratio-shrinks-with-depth", "fashion-mnist"): (300.0, float("inf")),
    ("vanishing", "sigmoid-ratio-at-depth-10", "fashion-mnist"): (0.0, 2e-5),
    # ReLU + He ratio, worst depth: mean 1.74, range 1.70-1.77
    ("vanishing", "relu-he-ratio-steady", "fashion-mnist"): (1.2, 2.5),
    # batch 50: margin mean 0.148, worst 0.136; shrink mean 1324, worst 1257; ReLU ratio mean 2.29, 2.06-2.43
    ("vanishing", "relu-he-best", "batch-half"): (0.08, 1.0),
    ("vanishing", "sigmoid-ratio-shrinks-with-depth", "batch-half"): (300.0, float("inf")),
    ("vanishing", "relu-he-ratio-steady", "batch-half"): (1.5, 3.2),
    # init, Fashion-MNIST: He below Xavier (late loss margin) mean 0.693, worst 0.653; copies waste
    # width (He - best copy) mean 0.639, worst 0.630; constant moves x121, worst x119
    ("init", "relu-he-below-xavier", "fashion-mnist"): (0.4, float("inf")),
    ("init", "copies-waste-width", "fashion-mnist"): (0.55, 1.0),
    ("init", "relu-constant-learns-as-copies", "fashion-mnist"): (80.0, float("inf")),
    # batch 64: He below Xavier mean 1.31, worst 1.28; copies mean 0.733, worst 0.719; x125, worst x114
    ("init", "relu-he-below-xavier", "batch-half"): (0.9, float("inf")),
    ("init", "copies-waste-width", "batch-half"): (0.6, 1.0),
    ("init", "relu-constant-learns-as-copies", "batch-half"): (80.0, float("inf")),
}


@pytest.fixture(scope="module")
def matrix_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("generalise")
    lines = []
    matrix = generalise.run("quick", [CONDITIONS[c] for c in TESTED], list(EXPERIMENTS), device="cpu",
                            layout=Layout(root / "results", root / "runs"), progress=False, log=lines.append)
    return matrix, root, lines


def test_every_phenomenon_claim_holds_under_both_conditions(matrix_run):
    matrix, _, lines = matrix_run
    assert not matrix["errors"]
    assert set(matrix["experiments"]) == set(EXPERIMENTS)
    for name in EXPERIMENTS:
        claims = matrix["experiments"][name]["claims"]
        assert claims, name
        for claim in claims:
            for condition in TESTED:
                cell = claim["cells"][condition]
                assert cell["verdict"] == HOLDS, (name, claim["id"], condition, cell)
            # conditions this run did not include are shown as not run, never as holding
            assert claim["cells"]["widths-x2"]["verdict"] == generalise.NOT_RUN
    assert len(lines) == len(EXPERIMENTS) * len(TESTED)


@pytest.mark.parametrize("key", sorted(BANDS), ids=lambda k: "/".join(k))
def test_the_size_of_each_effect(matrix_run, key):
    name, claim_id, condition = key
    claim = next(c for c in matrix_run[0]["experiments"][name]["claims"] if c["id"] == claim_id)
    low, high = BANDS[key]
    assert low <= claim["cells"][condition]["measured"] <= high


def test_only_phenomena_are_rechecked(matrix_run):
    """Figures and analytic claims are judged at the reference only, and listed as such."""
    e = matrix_run[0]["experiments"]
    assert "chain-rule" in e["vanishing"]["reference_only"]["analytic"]
    assert "variance-theory-predicts-sd" in e["init"]["reference_only"]["analytic"]
    rechecked = {c["id"] for c in e["vanishing"]["claims"]}
    assert "chain-rule" not in rechecked and "relu-he-best" in rechecked


def test_each_condition_changed_what_it_says(matrix_run):
    _, root, _ = matrix_run
    layout = Layout(root / "results")
    fashion = results.load(layout.condition("fashion-mnist").results_file("vanishing", "quick"))
    half = results.load(layout.condition("batch-half").results_file("init", "quick"))
    assert {v.config["dataset"] for v in fashion.variants.values()} == {"fashion-mnist"}
    assert {v.config["batch_size"] for v in half.variants.values()} == {64}   # the book's 128, halved
    assert half.condition == "batch-half" and fashion.condition == "fashion-mnist"
    # the references describe MNIST: a Fashion-MNIST run is not judged against them, and says why
    for v in fashion.variants.values():
        if v.reference:
            _, text, comparable = v.reference_status()
            assert not comparable and "reference is for MNIST, this run is on fashion-mnist" in text


def test_printed_matrix_and_report_show_the_same_verdicts(matrix_run, tmp_path):
    matrix, root, _ = matrix_run
    printed = generalise.matrix_table(matrix)
    summary = report.build_report(Layout(root / "results"), tmp_path, "quick")
    text = summary.path.read_text()
    section = text[text.index("## Do the phenomena generalise?"):]
    for name in EXPERIMENTS:
        for claim in matrix["experiments"][name]["claims"]:
            row = next(line for line in printed.split("\n") if f" {claim['id']} " in line)
            assert row.count("holds ") == len(TESTED), row
            md_row = next(line for line in section.split("\n") if line.startswith(f"| {md_cell(md_text(claim['statement']))} |"))
            assert md_row.count("✅") == len(TESTED) and report.FAILS not in md_row, md_row
    assert "0 failing cells" in printed and report.FAILS not in section


def test_a_failing_cell_is_red_and_counted(matrix_run, tmp_path):
    matrix, root, _ = matrix_run
    broken = json.loads(json.dumps(matrix))
    claim = broken["experiments"]["vanishing"]["claims"][0]
    claim["cells"]["fashion-mnist"] |= {"verdict": FAILS, "measured": 0.5}
    layout = Layout(tmp_path / "results")
    layout.matrix_file("quick").parent.mkdir(parents=True)
    layout.matrix_file("quick").write_text(json.dumps(broken))
    text = report.build_report(layout, tmp_path / "out", "quick").path.read_text()
    assert "❌ 1 cell of the matrix fails" in text
    assert f"- {report.FAILS} vanishing: {md_text(claim['statement'])} under Fashion-MNIST: measured 0.5" in text
    assert generalise.generalises(claim) == "reference only" or claim["cells"]["reference"]["verdict"] != HOLDS
    assert "[FAILS] vanishing" in generalise.matrix_table(broken)


def test_beyond_reference_column():
    cells = lambda **v: {c: ({"verdict": x, "measured": 1.0, "bound": ">= 0"} if x in (HOLDS, FAILS) else {"verdict": x})
                         for c, x in v.items()}
    matrix = {"conditions": [{"name": "reference", "label": "reference"}, {"name": "fashion-mnist", "label": "Fashion-MNIST"}],
              "experiments": {"e": {"claims": [
                  {"id": "good", "cells": cells(reference=HOLDS, **{"fashion-mnist": HOLDS})},
                  {"id": "local", "cells": cells(reference=HOLDS, **{"fashion-mnist": FAILS})},
                  {"id": "unrun", "cells": cells(reference=HOLDS, **{"fashion-mnist": generalise.NOT_RUN})}]}}}
    assert generalise.beyond_reference([("e", "good")], matrix) == "holds beyond the reference setup"
    assert generalise.beyond_reference([("e", "good"), ("e", "local")], matrix).startswith(
        "holds only at the reference setup: fails local under Fashion-MNIST: 1 (>= 0)")
    assert generalise.beyond_reference([("e", "unrun")], matrix).startswith("not checked: no condition")
    assert generalise.beyond_reference([("e", "a-figure")], matrix).startswith("not checked: its evidence is figures")
    assert generalise.beyond_reference([("e", "good")], None).startswith("not checked: no generalise results")


def test_a_condition_that_changes_nothing_is_not_applicable():
    same = dataclasses.replace(CONDITIONS["fashion-mnist"], name="same", change=lambda c: c)
    assert generalise.why_not_applicable("vanishing", "quick", same) == "it changes none of this experiment's variants"
    assert generalise.why_not_applicable("vanishing", "quick", CONDITIONS["widths-x2"]) is None
    assert generalise.why_not_applicable("vanishing", "quick", CONDITIONS["fresh-seeds"]) is None


def test_fresh_seeds_are_other_seeds(tmp_path):
    run = run_experiment("vanishing", "quick", seeds=1, device="cpu",
                         sets={"iters": 20, "depth_iters": 5, "depths": (5, 10)},
                         layout=Layout(tmp_path / "results", tmp_path / "runs"), progress=False,
                         condition=CONDITIONS["fresh-seeds"])
    assert {t.seed for t in run.trials} == {100} and run.first_seed == 100


@pytest.mark.parametrize("args, message", [
    (["--conditions", "fashion,nope"], "--conditions fashion,nope: choose from reference, fashion-mnist"),
    (["--experiments", "vanishing,nope"], "--experiments vanishing,nope: unknown 'nope'"),
    (["--preset", "nope", "--experiments", "vanishing", "--conditions", "reference"], "unknown preset 'nope'"),
])
def test_bad_input_is_one_line(args, message, capsys, tmp_path):
    from repro.cli import main
    assert main(["generalise", "--results", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_parse_conditions():
    assert [c.name for c in generalise.parse_conditions(None)] == list(CONDITIONS)
    assert [c.name for c in generalise.parse_conditions("batch-double, reference")] == ["batch-double", "reference"]
    with pytest.raises(ConfigError):
        generalise.parse_conditions(",")


def test_every_claim_declares_a_known_kind():
    from repro.claims import Claim, at_least
    assert at_least("x", "figure", "a number", 1.0, 0.5).kind == "figure"
    with pytest.raises(ValueError, match="kind 'law' is not one of phenomenon, figure, analytic"):
        Claim("x", "law", "a number", 1.0, ">= 0", True)


def test_a_condition_that_leaves_some_variants_as_they_are_says_which():
    """modern_cnn's depth nets have no hidden fully connected layer: widths x2 leaves them as they
    are, so a claim on them repeats the reference's value and is marked unchanged in the matrix."""
    untouched, n = generalise.untouched_variants("modern_cnn", "quick", CONDITIONS["widths-x2"])
    assert n == 9 and len(untouched) == 6 and all("-depth" in vid for vid in untouched)
    assert generalise.untouched_variants("vanishing", "quick", CONDITIONS["widths-x2"])[0] == []
