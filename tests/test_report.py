"""The report, built from a real quick run's results JSON alone: reference beside measurement,
failing claims impossible to miss, figures that exist, experiments without results listed."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from repro import engine, executor, report
from repro.cli import main
from repro.experiment import reference_status, seed_curve, trials_of
from repro.overview import gradient_flow
from repro.store import write_json
from repro.claims import count_text
from repro.runner import experiment_names, summary_table
from repro.tables import format_measured, md_cell, plural

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def vanishing(quick_run):
    return quick_run("vanishing")


def results_folder(results: dict, root: Path, change=None) -> Path:
    """root/results holding a copy of ``results``, optionally changed first by ``change(copy)``."""
    data = copy.deepcopy(results)
    if change:
        change(data)
    write_json(root / "results" / data["experiment"] / f"{data['preset']}.json", data)
    return root / "results"


def section(text: str, name: str) -> str:
    start = text.index(f'<a id="{name}"></a>')
    end = text.find("<a id=", start + 1)
    return text[start:end if end > 0 else None]


def test_report_is_built_from_the_json_alone(vanishing, tmp_path, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("the report must never train")
    monkeypatch.setattr(engine, "train", no_training)
    monkeypatch.setattr(executor, "run_trial", no_training)

    summary = report.build_report(Path(vanishing["path"]).parents[1], tmp_path / "reports")
    text = summary.path.read_text()
    part = section(text, "vanishing")

    for name, v in vanishing["variants"].items():
        assert name in part
        assert format_measured(v["aggregate"], v["metric"]) in part
        assert md_cell(reference_status(v)[1]) in part
    for claim in vanishing["claims"]:
        assert md_cell(claim["statement"]) in part
    assert (report.FAILS in text) == any(not c["holds"] for c in vanishing["claims"])

    # The first table is reference beside measurement; with no figures of its own, the first
    # figure is the learning curves.
    first_table = next(line for line in part.splitlines() if line.startswith("|"))
    assert "reference" in first_table and "measured mean ± sd" in first_table and "verdict" in first_table
    images = [line for line in part.splitlines() if line.startswith("![")]
    assert images[0].endswith("(figures/vanishing-curves.png)")
    assert images[1].endswith("(figures/vanishing-gradient-flow.png)")
    for line in images:
        png = summary.path.parent / line[line.index("](") + 2:-1]
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 10_000

    others = [n for n in experiment_names() if n != "vanishing"]
    not_run = next((line for line in text.splitlines() if line.startswith("Not run:")), "")
    assert all(n in not_run for n in others)
    assert f"{len(summary.run)} of {len(summary.entries)} experiments run" in text


def test_a_failing_claim_is_red_in_its_section_and_counted_at_the_top(vanishing, tmp_path, capsys):
    def break_a_claim(data):
        data["claims"][1]["holds"] = False
    folder = results_folder(vanishing, tmp_path, break_a_claim)

    assert main(["report", "--results", str(folder), "--out", str(tmp_path / "reports")]) == 0
    text = (tmp_path / "reports" / "REPORT.md").read_text()
    top = text[:text.index('<a id="')]
    claim = vanishing["claims"][1]
    n = len(vanishing["claims"])
    assert f"{report.FAILS} **1 of {n} claims fails** (vanishing)" in top
    assert f"| {report.FAILS} | {md_cell(claim['statement'])} |" in text
    # a marker that survives any Markdown renderer: GitHub's strips inline styles
    assert "style=" not in text and report.FAILS == "❌ **FAILS**"
    out = capsys.readouterr().out
    assert f"1 of {n} claims fails" in out and f"[FAILS] vanishing: {claim['statement']}" in out


def test_a_claim_the_preset_cannot_judge_is_shown_as_such_and_counted_with_neither(vanishing, tmp_path, capsys):
    def unjudgeable(data):
        data["claims"][0]["holds"], data["claims"][0]["needs"] = False, "a longer run"
    folder = results_folder(vanishing, tmp_path, unjudgeable)
    assert main(["report", "--results", str(folder), "--out", str(tmp_path / "reports")]) == 0
    text = (tmp_path / "reports" / "REPORT.md").read_text()
    n = len(vanishing["claims"])
    assert f"✅ **all {n - 1} claims hold; 1 claim not judged at this preset**" in text
    assert report.FAILS not in text and f"| {report.NOT_JUDGED} | {md_cell(vanishing['claims'][0]['statement'])} |" in text
    assert "needs a longer run" in text
    assert f"all {n - 1} claims hold; 1 claim not judged at this preset" in capsys.readouterr().out
    data = json.loads((folder / "vanishing" / "quick.json").read_text())
    printed = summary_table(data)
    assert f"[NOT JUDGED] {data['claims'][0]['statement']}" in printed and "needs a longer run" in printed
    assert "[FAILS]" not in printed


def test_counts_are_singular_and_plural_right():
    one = [{"holds": True}]
    assert count_text(one) == "the one claim holds" and count_text([{"holds": False}]) == "the one claim fails"
    assert count_text(one * 3) == "all 3 claims hold"
    assert count_text(one * 2 + [{"holds": False}]) == "1 of 3 claims fails"
    assert count_text([{"holds": False}] * 2 + one) == "2 of 3 claims fail"
    assert count_text(one + [{"holds": False, "needs": "x"}]) == "the one claim holds; 1 claim not judged at this preset"
    assert plural(1, "seed") == "1 seed" and plural(2, "seed") == "2 seeds"


@pytest.mark.parametrize("mean, low, high, difference, verdict", [
    (0.91, 0.90, 0.95, 0.0, "✓ within reference"),
    (0.97, 0.93, 0.98, 0.02, "≈ mean above, seed range overlaps"),
    (0.50, 0.49, 0.51, -0.40, "✗ below reference"),
])
def test_reference_comparison(mean, low, high, difference, verdict):
    ref = {"low": 0.9, "high": 0.95}
    got, text = report.compare(ref, {"n": 3, "mean": mean, "std": 0.01, "min": low, "max": high})
    assert text == verdict
    assert got == pytest.approx(difference)


def test_a_reference_is_as_wide_as_its_printed_digits():
    assert report.printed_precision(2.302) == pytest.approx(0.0005)
    assert report.printed_precision(0.1, 0.11) == pytest.approx(0.005)
    assert report.printed_precision(8e-13) == pytest.approx(5e-14)
    one_value = {"low": 2.302, "high": 2.302}
    assert report.compare(one_value, {"n": 2, "mean": 2.30199, "min": 2.3019, "max": 2.3021}) == \
        (0.0, "✓ within reference")
    assert report.compare(one_value, {"n": 2, "mean": 2.3026, "min": 2.3026, "max": 2.3026})[1] == \
        "✗ above reference"


def test_reference_comparison_without_a_value():
    assert report.compare({"low": 0.9, "high": 0.95}, {"n": 0, "mean": None}) == (None, "no value (diverged)")
    assert report.compare({"low": 0.9, "high": 0.95}, None) == (None, "not measured")


def test_figure_data_show_the_phenomenon(vanishing):
    # learning curves: the band holds the mean; sigmoid + N(0, 0.01) stays at chance, ReLU + He learns
    steps, mean, low, high = seed_curve(trials_of(vanishing, "relu + he"), "accuracy_test")
    history = [t["history"] for t in vanishing["trials"] if t["variant"] == "relu + he"]
    assert list(steps) == [p["step"] for p in history[0]]
    assert np.all(low <= mean + 1e-12) and np.all(mean <= high + 1e-12)
    assert mean[-1] > 0.8
    assert seed_curve(trials_of(vanishing, "sigmoid + N(0,0.01)"), "accuracy_test")[1].max() < 0.2

    # gradient flow: geometric mean over seeds of the first interval, per layer in network order
    deepest = max(vanishing["params"]["depths"])
    sigmoid = gradient_flow(vanishing, f"sigmoid + xavier, depth {deepest}")
    trials = [t for t in vanishing["trials"] if t["variant"] == f"sigmoid + xavier, depth {deepest}"]
    assert sigmoid["layers"] == trials[0]["layers"] and len(sigmoid["layers"]) == deepest + 1
    first = np.array([[t["history"][0]["grad_norm"][layer] for layer in sigmoid["layers"]] for t in trials])
    assert sigmoid["mean"] == pytest.approx(np.prod(first, axis=0) ** (1 / len(trials)), rel=1e-9)
    assert sigmoid["mean"][0] < 1e-3 * sigmoid["mean"][-1]       # vanishes on the way down
    relu = gradient_flow(vanishing, f"relu + he, depth {deepest}")
    assert 0.1 < relu["mean"][0] / relu["mean"][-1] < 10           # keeps its size


def test_diverged_seeds_and_zero_gradients_are_drawn_not_fatal(vanishing, tmp_path):
    def damage(data):
        trial = next(t for t in data["trials"] if t["variant"] == "relu + he")
        trial["status"], trial["diverged_at"] = "diverged", 150
        trial["history"] = [trial["history"][0], {"step": 150, "diverged": True}]
        data["variants"]["relu + he"]["aggregate"]["diverged"] = 1
        other = next(t for t in data["trials"] if t["variant"] == "sigmoid + xavier")
        other["history"][0]["grad_norm"]["fc1"] = 0.0
    folder = results_folder(vanishing, tmp_path, damage)
    summary = report.build_report(folder, tmp_path / "reports")
    text = summary.path.read_text()
    assert "1 diverged" in text
    assert (tmp_path / "reports" / "figures" / "vanishing-gradient-flow.png").read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize("content, problem", [
    ("{ truncated", "unreadable results file"),
    ('{"sweep": "lr", "cells": []}', "not an experiment's results (no experiment, preset"),
])
def test_a_broken_results_file_is_named_at_the_top_not_fatal(tmp_path, content, problem):
    (tmp_path / "results" / "vanishing").mkdir(parents=True)
    (tmp_path / "results" / "vanishing" / "full.json").write_text(content)
    text = report.build_report(tmp_path / "results", tmp_path / "reports").path.read_text()
    top = text[:text.index("| experiment |")]
    assert f"{report.FAILS} 1 results file unreadable: vanishing" in top
    row = next(line for line in text.splitlines() if line.startswith("| vanishing |"))
    assert problem in row


def test_own_figures_missing_files_and_stale_figures(vanishing, tmp_path):
    from repro import figures
    fig, axes = figures.new()
    axes[0, 0].plot([0, 1], [1, 0])
    own = figures.save(fig, tmp_path / "results" / "vanishing" / "sigmoid-derivative.png")

    def add_figures(data):
        data["extras"]["figures"] = {"sigmoid and its derivative": own,
                                     "a figure nobody wrote": "results/vanishing/absent.png"}
        data["extras"]["tables"] = {"Per-layer statistics": "| layer | sd |\n|---|---|\n| fc1 | 0.5 |"}
    folder = results_folder(vanishing, tmp_path, add_figures)
    stale = tmp_path / "reports" / "figures" / "old-experiment-curves.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(PNG_MAGIC)

    text = report.build_report(folder, tmp_path / "reports").path.read_text()
    own_image = "![vanishing: sigmoid and its derivative](figures/vanishing/sigmoid-derivative.png)"
    assert own_image in text and text.index(own_image) < text.index("(figures/vanishing-curves.png)")
    assert (tmp_path / "reports" / "figures" / "vanishing" / "sigmoid-derivative.png").is_file()
    assert "Figure missing: `results/vanishing/absent.png`" in text
    assert "**Per-layer statistics**\n\n| layer | sd |" in text
    assert not stale.exists()


def test_a_preset_that_was_not_run_is_listed_not_skipped(vanishing, tmp_path):
    folder = results_folder(vanishing, tmp_path)
    text = report.build_report(folder, tmp_path / "reports", preset="full").path.read_text()
    assert "| vanishing | - | - | - | not run (preset full): `python -m repro run vanishing` | - |" in text
    assert '<a id="vanishing">' not in text


def test_report_cli_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "blocker").write_text("a file, not a folder")
    assert main(["report", "--results", str(tmp_path), "--out", str(tmp_path / "blocker" / "reports")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write the report") and err.count("\n") == 1
