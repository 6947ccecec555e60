"""The report, built from a real quick run's results JSON alone: reference beside measurement,
failing claims impossible to miss, figures that exist, experiments without results listed."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from repro import engine, executor, report, results, uncertainty
from repro.cli import main
from repro.claims import Claim, count_text
from repro.experiment import seed_curve
from repro.layout import Layout
from repro.overview import gradient_flow_summary
from repro.runner import experiment_names, summary_table
from repro.store import write_json
from repro.tables import format_measured, md_cell, md_text, plural

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def vanishing(quick_run):
    return quick_run("vanishing")


def results_folder(run, root: Path, change=None) -> Layout:
    """root/results holding a copy of ``run``'s file (and its figures folder), optionally changed first by
    ``change(data)`` on the JSON."""
    data = copy.deepcopy(json.loads(Path(run.path).read_text()))
    if change:
        change(data)
    path = root / "results" / data["experiment"] / f"{data['preset']}.json"
    write_json(path, data)
    return Layout(root / "results")


def section(text: str, name: str) -> str:
    start = text.index(f'<a id="{name}"></a>')
    end = text.find("<a id=", start + 1)
    return text[start:end if end > 0 else None]


def test_report_is_built_from_the_json_alone(vanishing, tmp_path, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("the report must never train")
    monkeypatch.setattr(engine, "train", no_training)
    monkeypatch.setattr(executor, "run_trial", no_training)

    summary = report.build_report(Layout(Path(vanishing.path).parents[1]), tmp_path / "reports")
    text = summary.path.read_text()
    part = section(text, "vanishing")

    for v in vanishing.variants.values():
        assert md_cell(md_text(v.label)) in part
        assert format_measured(v.aggregate, v.metric) in part
        assert md_cell(md_text(v.reference_status()[1])) in part
    for claim in vanishing.claims:
        assert md_cell(md_text(claim.statement)) in part
    assert (report.FAILS in text) == any(not c.holds for c in vanishing.claims)

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

    assert main(["report", "--results", str(folder.results), "--out", str(tmp_path / "reports")]) == 0
    text = (tmp_path / "reports" / "REPORT.md").read_text()
    top = text[:text.index('<a id="')]
    claim = vanishing.claims[1]
    n = len(vanishing.claims)
    assert f"{report.FAILS} **1 of {n} claims fails** (vanishing)" in top
    assert f"| {report.FAILS} | {md_cell(md_text(claim.statement))} |" in text
    # a marker that survives any Markdown renderer: GitHub's strips inline styles
    assert "style=" not in text and report.FAILS == "❌ **FAILS**"
    out = capsys.readouterr().out
    assert f"1 of {n} claims fails" in out and f"[FAILS] vanishing: {claim.statement}" in out


def test_a_claim_the_preset_cannot_judge_is_shown_as_such_and_counted_with_neither(vanishing, tmp_path, capsys):
    def unjudgeable(data):
        data["claims"][0]["holds"], data["claims"][0]["needs"] = False, "a longer run"
    folder = results_folder(vanishing, tmp_path, unjudgeable)
    assert main(["report", "--results", str(folder.results), "--out", str(tmp_path / "reports")]) == 0
    text = (tmp_path / "reports" / "REPORT.md").read_text()
    n = len(vanishing.claims)
    assert f"✅ **all {n - 1} claims hold; 1 claim not judged at this preset**" in text
    assert report.FAILS not in text
    assert any(line.startswith(f"| {report.NOT_JUDGED}") and md_cell(md_text(vanishing.claims[0].statement)) in line
               for line in text.splitlines())
    assert "needs a longer run" in text
    assert f"all {n - 1} claims hold; 1 claim not judged at this preset" in capsys.readouterr().out
    again = results.load(folder.results_file("vanishing", "quick"))
    printed = summary_table(again)
    assert f"[NOT JUDGED] {again.claims[0].statement}" in printed and "needs a longer run" in printed
    assert "[FAILS]" not in printed


def _claim(holds: bool, needs: str = "") -> Claim:
    return Claim("c", "phenomenon", "s", 1.0, ">= 0", holds, needs=needs)


def test_counts_are_singular_and_plural_right():
    one = [_claim(True)]
    assert count_text(one) == "the one claim holds" and count_text([_claim(False)]) == "the one claim fails"
    assert count_text(one * 3) == "all 3 claims hold"
    assert count_text(one * 2 + [_claim(False)]) == "1 of 3 claims fails"
    assert count_text([_claim(False)] * 2 + one) == "2 of 3 claims fail"
    assert count_text(one + [_claim(False, "x")]) == "the one claim holds; 1 claim not judged at this preset"
    assert plural(1, "seed") == "1 seed" and plural(2, "seed") == "2 seeds"


def test_a_reference_is_as_wide_as_its_printed_digits():
    assert uncertainty.printed_precision(2.302) == pytest.approx(0.0005)
    assert uncertainty.printed_precision(0.1, 0.11) == pytest.approx(0.005)
    assert uncertainty.printed_precision(8e-13) == pytest.approx(5e-14)


def test_a_planted_reference_far_outside_is_marked_outside(quick_run, tmp_path):
    """The issue's check: a results file whose SGD figure is edited to 5.0 is marked outside our
    distribution in the report (the optimizers quick run has 2 seeds: too few; so 3 of its seeds here)."""
    run = quick_run("optimizers")
    def plant(data):
        data["variants"]["sgd-0.01"]["reference"]["low"] = data["variants"]["sgd-0.01"]["reference"]["high"] = 5.0
        data["variants"]["sgd-0.01"]["reference"]["describes"] = []
        trials = [t for t in data["trials"] if t["variant"] == "sgd-0.01"]
        third = copy.deepcopy(trials[0])   # a third seed between the two, so that a verdict can be given
        third["seed"] = 2
        third["summary"]["post_update_loss"] = sum(t["summary"]["post_update_loss"] for t in trials) / 2
        data["trials"].append(third)
    folder = results_folder(run, tmp_path, plant)
    text = report.build_report(folder, tmp_path / "reports").path.read_text()
    row = next(line for line in section(text, "optimizers").splitlines() if line.startswith("| book setup | sgd 0.01 |"))
    assert "✗ outside our distribution" in row


def test_figure_data_show_the_phenomenon(vanishing):
    # learning curves: the band holds the mean; sigmoid + N(0, 0.01) stays at chance, ReLU + He learns
    steps, mean, low, high = seed_curve(vanishing.trials_of("relu-he"), "accuracy_test")
    history = [t.history for t in vanishing.trials_of("relu-he")]
    assert list(steps) == [p["step"] for p in history[0]]
    assert np.all(low <= mean + 1e-12) and np.all(mean <= high + 1e-12)
    assert mean[-1] > 0.8
    assert seed_curve(vanishing.trials_of("sigmoid-n0.01"), "accuracy_test")[1].max() < 0.2

    # gradient flow: geometric mean over seeds of the first interval, per layer in network order
    deepest = max(vanishing.params["depths"])
    trials = vanishing.trials_of(f"sigmoid-xavier-depth{deepest}")
    sigmoid = gradient_flow_summary(trials)
    assert sigmoid["layers"] == trials[0].layers and len(sigmoid["layers"]) == deepest + 1
    first = np.array([[t.history[0]["grad_norm"][layer] for layer in sigmoid["layers"]] for t in trials])
    assert sigmoid["mean"] == pytest.approx(np.prod(first, axis=0) ** (1 / len(trials)), rel=1e-9)
    assert sigmoid["mean"][0] < 1e-3 * sigmoid["mean"][-1]       # vanishes on the way down
    relu = gradient_flow_summary(vanishing.trials_of(f"relu-he-depth{deepest}"))
    assert 0.1 < relu["mean"][0] / relu["mean"][-1] < 10           # keeps its size


def test_diverged_seeds_and_zero_gradients_are_drawn_not_fatal(vanishing, tmp_path):
    def damage(data):
        trial = next(t for t in data["trials"] if t["variant"] == "relu-he")
        trial["status"], trial["diverged_at"] = "diverged", 150
        trial["history"] = [trial["history"][0], {"step": 150, "diverged": True}]
        data["variants"]["relu-he"]["aggregate"]["diverged"] = 1
        other = next(t for t in data["trials"] if t["variant"] == "sigmoid-xavier")
        other["history"][0]["grad_norm"]["fc1"] = 0.0
    folder = results_folder(vanishing, tmp_path, damage)
    summary = report.build_report(folder, tmp_path / "reports")
    text = summary.path.read_text()
    assert "1 diverged" in text
    assert (tmp_path / "reports" / "figures" / "vanishing-gradient-flow.png").read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize("content, problem", [
    ("{ truncated", "is not valid JSON"),
    ('{"sweep": "lr", "cells": []}', "has results schema 1"),
    ('{"schema": 2, "experiment": "vanishing", "preset": "full", "params": {}, "variants": null, "trials": [], '
     '"claims": []}', "'variants' is missing or not a dict"),
    ('[1, 2]', "not an experiment's results"),
])
def test_a_broken_results_file_is_named_at_the_top_not_fatal(tmp_path, content, problem, capsys):
    (tmp_path / "results" / "vanishing").mkdir(parents=True)
    (tmp_path / "results" / "vanishing" / "full.json").write_text(content)
    text = report.build_report(Layout(tmp_path / "results"), tmp_path / "reports").path.read_text()
    top = text[:text.index("| experiment |")]
    assert f"{report.FAILS} 1 results file unreadable: vanishing" in top
    row = next(line for line in text.splitlines() if line.startswith("| vanishing |"))
    assert problem in row
    # on the console: the report is written, and the damaged file is one line on stderr, exit 2
    assert main(["report", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "reports")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "full.json" in err[0] and problem in err[0]


def test_own_figures_missing_files_and_stale_figures(vanishing, tmp_path):
    from repro import figures
    fig, axes = figures.new()
    axes[0, 0].plot([0, 1], [1, 0])
    figures.save(fig, tmp_path / "results" / "vanishing" / "quick" / "sigmoid-derivative.png")

    def add_figures(data):
        data["extras"]["figures"] = {"sigmoid and its derivative": "sigmoid-derivative.png",
                                     "a figure nobody wrote": "absent.png"}
        data["extras"]["tables"] = {"Per-layer statistics": "| layer | sd |\n|---|---|\n| fc1 | 0.5 |"}
    folder = results_folder(vanishing, tmp_path, add_figures)
    ours = tmp_path / "reports" / "figures" / "old-experiment-curves.png"   # written by an earlier report
    ours.parent.mkdir(parents=True)
    ours.write_bytes(PNG_MAGIC)
    (ours.parent / report.MANIFEST).write_text(json.dumps([ours.name]))
    theirs = ours.parent / "someone-elses.png"   # never written by a report: never removed
    theirs.write_bytes(PNG_MAGIC)

    text = report.build_report(folder, tmp_path / "reports").path.read_text()
    own_image = "![vanishing: sigmoid and its derivative](figures/vanishing/sigmoid-derivative.png)"
    assert own_image in text and text.index(own_image) < text.index("(figures/vanishing-curves.png)")
    assert (tmp_path / "reports" / "figures" / "vanishing" / "sigmoid-derivative.png").is_file()
    assert "Figure missing: *a figure nobody wrote*" in text
    assert "**Per-layer statistics**\n\n| layer | sd |" in text
    assert not ours.exists() and theirs.exists()


def test_a_results_file_cannot_smuggle_files_or_markup_into_the_report(vanishing, tmp_path):
    """Results files are shared: a figure entry naming a file outside the run's own folder is not copied,
    and text from the file reaches REPORT.md as inert Markdown."""
    secret = tmp_path / "secret.png"
    secret.write_bytes(PNG_MAGIC + b"not yours")

    def hostile(data):
        data["title"] = "<script>alert(1)</script>"
        data["claims"][0]["statement"] = "<iframe src=x></iframe> ![x](/etc/hostname)"
        data["extras"]["figures"] = {"escape": "../../../secret.png", "absolute": str(secret),
                                     "host": "/etc/hostname"}
        data["extras"]["tables"] = {"<b>t</b>": "| a |\n|---|\n| <script>x</script> |"}
    folder = results_folder(vanishing, tmp_path, hostile)
    text = report.build_report(folder, tmp_path / "reports").path.read_text()
    assert "<script>" not in text and "<iframe" not in text and "<b>" not in text
    assert "![x](/etc/hostname)" not in text and "!\\[x\\](/etc/hostname)" in text   # shown as text, not an image
    copied = [p.name for p in (tmp_path / "reports" / "figures").rglob("*") if p.is_file()]
    assert "secret.png" not in copied and "hostname" not in copied


def test_the_report_never_overwrites_a_report_it_did_not_write(tmp_path, capsys):
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "REPORT.md").write_text("# my own notes\n")
    assert main(["report", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "reports")]) == 2
    assert "was not written by repro report" in capsys.readouterr().err
    assert (tmp_path / "reports" / "REPORT.md").read_text() == "# my own notes\n"


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
