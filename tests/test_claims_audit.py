"""The audit of the notes: exact checks of its pure functions and registry, and the quick preset.

Thresholds from 10 seeds of the quick preset (`python -m repro run claims_audit --preset quick --seeds 10`),
per seed unless noted; measured mean and worst case beside each.
"""
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import per_seed
from experiments import _landscapes as land
from experiments import _notes_registry as registry
from experiments._audit_measures import exact_checks, lr_window, minibatch_loop, zero_shares
from experiments.claims_audit import OVERFIT_NETS, own_claims
from repro.claims import PHENOMENON, Claim
from repro.layout import Layout
from repro.results import Run
from repro.runner import experiment_names

NOTES = Path(__file__).resolve().parents[2] / "shared" / "seed" / "notes-day2.md"


# ---- the toy surfaces ----

def test_double_well_has_a_shallow_local_minimum_before_the_global_one():
    x = torch.tensor([land.LOCAL_MIN, land.BARRIER, land.GLOBAL_MIN, land.WELL_START], dtype=torch.float64,
                     requires_grad=True)
    f = land.double_well(x)
    (grad,) = torch.autograd.grad(f.sum(), x, create_graph=True)
    (curvature,) = torch.autograd.grad(grad.sum(), x)
    assert grad[:3].abs().max() == 0                          # -1, 0 and 2 are the critical points
    assert curvature[0] > 0 and curvature[1] < 0 and curvature[2] > 0
    assert f[2] < f[0] < f[1] < f[3]                           # global below local below barrier below start
    assert f[0].item() == pytest.approx(-5 / 12) and f[2].item() == pytest.approx(-8 / 3)
    assert land.WELL_START < land.LOCAL_MIN < land.BARRIER < land.GLOBAL_MIN


def test_rotated_saddle_is_the_saddle_turned():
    g = torch.Generator().manual_seed(0)
    points = torch.randn(50, 2, generator=g, dtype=torch.float64)
    turned = torch.tensor([land.rotate(p) for p in points.tolist()], dtype=torch.float64)
    assert torch.allclose(land.rotated_saddle(turned), land.saddle(points), atol=1e-12)


def test_descend_runs_each_cell_as_its_own_sgd():
    path = land.descend(land.double_well, "sgd", [{"lr": 0.1}, {"lr": 0.01}], land.WELL_START, 3)
    for column, lr in ((0, 0.1), (1, 0.01)):
        x = land.WELL_START
        for t in range(1, 4):
            x -= lr * (x ** 3 - x ** 2 - 2 * x)               # f'(x) = x (x + 1) (x - 2)
            assert path[t, column].item() == pytest.approx(x, abs=1e-12)


def test_step_counters():
    values = torch.tensor([[5.0, 5, 5, 0.5], [0.5, 5, 0.5, 0.5], [5, 5, 0.5, 0.5], [0.5, 5, 0.5, 0.5]])
    assert land.first_below(values, 1.0) == [1, None, 1, 0]
    assert land.settled_below(values, 1.0) == [3, None, 1, 0]  # a swing back above does not count as arrived


def test_basin():
    assert [land.basin(x) for x in (-1.0, 1.9, math.nan, 1e6, math.inf)] == \
        ["local", "global", "diverged", "diverged", "diverged"]


def test_effective_lr_of_sgd_is_its_lr():
    path = land.descend(land.valley, "sgd", [{"lr": 0.3}], land.VALLEY_START, 10)[:, 0]
    assert torch.allclose(land.effective_lr(land.valley, path), torch.tensor(0.3, dtype=torch.float64), atol=1e-12)


def test_torch_optim_follows_the_notes_update_rules():
    assert max(land.rule_residuals().values()) < 1e-12


# ---- the notes' definitions and the pure measurements ----

def test_exact_checks():
    c = exact_checks()
    assert c["sigmoid_slope_0"] == 0.25 and 0.0066 < c["sigmoid_slope_5"] < 0.0067
    assert c["xavier_sd"] == pytest.approx(1.0, abs=0.01) and c["he_sd"] == pytest.approx(math.sqrt(2), abs=0.015)
    assert max(c[k] for k in ("batchnorm_formula", "l2_gradient", "l1_gradient", "l1_norm", "l2_step")) < 1e-10


def test_minibatch_loop_of_the_notes():
    assert minibatch_loop(1050, 100) == {"not_once": 0, "last_batch": 50, "expected_last": 50}
    assert minibatch_loop(1000, 100)["last_batch"] == 100


def test_zero_shares():
    shares = zero_shares({"act1": torch.tensor([0.0, 0.0, 0.005, 1.0]), "act2": torch.tensor([0.5, -0.001])})
    assert shares == {"exact": [0.5, 0.0], "near": [0.75, 0.5]}


def test_lr_window_interpolates_its_edges_in_log_rate():
    w = lr_window({0.01: 2.0, 0.1: 1.0, 1.0: 1.05, 10.0: 1.15})
    # right edge: 1.1 lies halfway between 1.05 (at 1) and 1.15 (at 10) -> sqrt(10); left edge: 1.1 is a
    # tenth of the way from 1.0 (at 0.1) to 2.0 (at 0.01) -> 0.1 / 10 ** 0.1
    assert w["best_lr"] == 0.1 and w["window"][1] == pytest.approx(math.sqrt(10))
    assert w["window"][0] == pytest.approx(0.1 / 10 ** 0.1) and w["width"] == pytest.approx(10 ** 1.6)
    assert w["spread"] == 2.0
    stopped = lr_window({0.1: 1.0, 1.0: 1.05, 10.0: None})     # a diverged neighbour ends the window
    assert stopped["window"] == [pytest.approx(0.1), pytest.approx(1.0)]


# ---- the registry ----

def _fragments(japanese: str) -> list[str]:
    """The verbatim pieces of a quoted original: a leading （label） is ours, '…' marks a cut."""
    text = re.sub(r"^（[^）]*）", "", japanese)
    return [f.strip() for f in re.split(r"…|／|: ", text) if f.strip()]


@pytest.mark.skipif(not NOTES.exists(), reason="the notes are not beside this checkout")
def test_every_quoted_original_is_in_the_notes():
    notes = NOTES.read_text()
    missing = [(s.section, f) for s in registry.STATEMENTS if not s.ja.startswith("（見出しのみ）")
               for f in _fragments(s.ja) if f not in notes]
    assert not missing, missing


def test_registry_is_well_formed():
    assert len(registry.STATEMENTS) >= 50
    names = [s.name for s in registry.STATEMENTS]
    assert len(set(names)) == len(names) and all(re.fullmatch(r"[a-z0-9][a-z0-9-]*", n) for n in names), names
    known = set(experiment_names())
    for s in registry.STATEMENTS:
        registry.kind_of(s.verdict)                          # opens with a known verdict
        assert s.evidence or s.verdict.startswith("not testable here:"), s.en
        assert all(e in known for e, _ in s.evidence), s.evidence
    sections = {s.section for s in registry.STATEMENTS}
    assert {"1", "1-1", "1-2", "1-3", "2", "2-1", "2-2", "2-3", "2-4", "3", "3-1", "3-2", "4", "5"} <= sections


def test_every_paper_cited_is_a_paper_experiment_with_those_claims(quick_run):
    """The audit's column "the paper behind it", and the report's Papers table: each claim id they
    cite is one that paper's quick run judges (the paper tests' own runs, shared by the session fixture)."""
    from repro.runner import paper_of
    statements = {s.name: s for s in registry.STATEMENTS}
    cited = {}
    for name, papers in registry.PAPERS_BEHIND.items():
        assert name in statements and statements[name].evidence, name   # keyed by a statement's name
        assert statements[name].papers == papers, name
        for experiment, key in papers:
            cited.setdefault(experiment, set()).add(key)
    assert set(cited) == {n for n in experiment_names() if paper_of(n) is not None}
    for experiment, keys in cited.items():
        judged = {c.id for c in quick_run(experiment).claims}
        assert keys <= judged, (experiment, keys - judged)
        headline = set(paper_of(experiment).headline)  # what the report's Papers table shows
        assert headline <= judged, (experiment, headline - judged)


def test_audit_rows_link_the_paper_behind_a_statement():
    nowhere = Layout(Path("/nonexistent/results"), Path("/nonexistent/runs"))
    row = next(r for r in registry.audit([], nowhere, "quick", {}) if r["name"] == "bn-faster")
    assert row["papers"][0] == "[ioffe2015](#ioffe2015): not run yet: make exp-ioffe2015"
    assert "the paper behind it" in registry.audit_table([row])


def _claim(id: str, holds: bool = True, **changes) -> Claim:
    return Claim(**{"id": id, "kind": PHENOMENON, "statement": f"the claim {id}", "measured": 0.5, "bound": ">= 0",
                    "holds": holds, **changes})


def test_judge_reads_each_outcome():
    s = registry.Statement(name="a-statement", section="1", ja="原文", en="a statement", verdict="holds",
                           evidence=registry.vanishing("chain-rule") + registry.init("zeros"))
    source = registry.Source
    ok = {"vanishing": source("full", [_claim("chain-rule")]), "init": source("quick", [_claim("zeros"), _claim("zeros-2")])}
    assert registry.judge(s, ok)[0] == "holds" and len(registry.judge(s, ok)[1]) == 2
    assert registry.judge(s, {**ok, "init": None})[0] == "not run yet: make exp-init"
    failing = {**ok, "init": source("full", [_claim("zeros", holds=False)])}
    assert registry.judge(s, failing)[0].startswith("not confirmed: init: the claim zeros measured 0.5")
    # the audit follows ids, not wording: a reworded claim is still found, a renamed id is not
    reworded = {**ok, "vanishing": source("full", [_claim("chain-rule", statement="new words")])}
    assert registry.judge(s, reworded)[0] == "holds"
    quick = {**ok, "init": source("quick", [_claim("zeros", holds=False, needs="2000 steps")])}
    assert registry.judge(s, quick)[0] == "not judged at this preset: init: the claim zeros needs 2000 steps"
    renamed = {**ok, "vanishing": source("full", [_claim("something-else")])}
    assert registry.judge(s, renamed)[0].startswith("not confirmed: claim 'chain-rule' not in vanishing/full")


def test_read_source_prefers_the_preset_then_full_then_quick(tmp_path):
    layout = Layout(tmp_path / "results", tmp_path / "runs")

    def write(preset: str) -> None:
        Run("init", "init", preset, {}, {}, 1, 0, None, {}, {}, claims=[_claim("zeros")]).save(
            layout.results_file("init", preset))
    write("quick")
    assert registry.read_source(layout, "init", "full").preset == "quick"
    write("full")
    assert registry.read_source(layout, "init", "quick").preset == "quick"
    assert registry.read_source(layout, "init", "other").preset == "full"
    assert registry.read_source(layout, "init", "other").claims[0].id == "zeros"
    assert registry.read_source(layout, "vanishing", "full") is None
    layout.results_file("vanishing", "full").parent.mkdir()
    layout.results_file("vanishing", "full").write_text('{"preset": "full"}')   # an older schema: as if not run
    assert registry.read_source(layout, "vanishing", "full") is None


# ---- the quick preset ----

@pytest.fixture(scope="module")
def results(quick_run):
    return quick_run("claims_audit")


# variant -> lowest acceptable final test accuracy of any seed (the nets the audit measures must have learned)
ACCURACY_FLOORS = {
    "relu-he": 0.92,                    # mean 0.932, worst 0.927
    "tanh-xavier": 0.91,                # mean 0.920, worst 0.917
    "sigmoid-xavier": 0.55,             # mean 0.679, worst 0.633 (slow at 500 iterations: wide spread)
    "relu-he-dropout0.5": 0.90,         # mean 0.912, worst 0.908
}


@pytest.mark.parametrize("variant", sorted(ACCURACY_FLOORS))
def test_measured_nets_learned(results, variant):
    assert min(per_seed(results, variant)) >= ACCURACY_FLOORS[variant]


def test_relu_sparsity_per_seed(results):
    s = results.extras["measured"]["sparsity"]
    assert min(s["relu"]["exact"]) >= 0.30               # mean 0.386, worst 0.355
    assert max(s["sigmoid"]["exact"] + s["tanh"]["exact"]) == 0.0   # every seed: not one exact zero
    assert max(s["tanh"]["near"]) <= 0.02                # |h| < 0.01: mean 0.011, highest 0.0114


def test_dropout_ensemble_per_seed(results):
    for d in results.extras["measured"]["dropout"]:
        assert d["agreement"] >= 0.96                     # mean 0.973, worst 0.9675
        assert abs(d["mc_acc"] - d["eval_acc"]) <= 0.015  # mean -0.0036, largest |.| 0.010
        assert d["eval_acc"] - d["single_acc"] >= 0.06    # mean 0.083, worst 0.076


def test_overfitting_gaps_per_seed(results):
    plain, bn, narrow = (per_seed(results, vid, "gap") for vid in OVERFIT_NETS)
    assert min(per_seed(results, "overfit-6x100", "final_train_acc")) >= 0.99   # 1.0 in all 10 seeds
    assert min(plain) >= 0.2                              # mean 0.244, worst 0.227
    assert min(b - p for b, p in zip(bn, plain)) >= 0.12  # BN widens it: mean 0.177, worst 0.149
    assert np.mean(plain) - np.mean(narrow) >= 0.01       # per seed mean 0.055, worst 0.012


@pytest.mark.parametrize("experiment", sorted({e for s in registry.STATEMENTS for e, _ in s.evidence}))
def test_every_evidence_id_is_a_claim_of_its_experiment(quick_run, experiment):
    """A renamed id would turn a verdict into 'not confirmed': caught here (the quick runs are the
    session's, shared with each experiment's own tests)."""
    ids = [c.id for c in quick_run(experiment).claims]
    assert len(set(ids)) == len(ids), "claim ids repeat"
    wanted = {key for s in registry.STATEMENTS for e, key in s.evidence if e == experiment}
    assert wanted <= set(ids), sorted(wanted - set(ids))


def test_audit_table_has_every_statement(results):
    rows = results.extras["audit"]
    assert [r["number"] for r in rows] == list(range(1, len(registry.STATEMENTS) + 1))
    assert [r["name"] for r in rows] == [s.name for s in registry.STATEMENTS]
    table = results.extras["tables"][registry.TABLE_TITLE]
    assert all(f"| {r['number']} | {r['section']} |" in table for r in rows)
    # run alone (a fresh results folder), the other experiments' statements wait for them ...
    others = [r for r, s in zip(rows, registry.STATEMENTS) if {e for e, _ in s.evidence} - {registry.OWN}]
    assert others and all(r["kind"] == "not run yet" for r in others)
    # ... and every statement judged by the audit alone gets its verdict
    own = [r for r, s in zip(rows, registry.STATEMENTS) if s.evidence and {e for e, _ in s.evidence} == {registry.OWN}]
    assert len(own) >= 20 and all(r["kind"] in ("holds", "holds under conditions", "does not hold") for r in own)


def test_claims_recomputed_from_the_json_match(results):
    def judged(claims):  # the runner adds each claim's uncertainty over seeds after the experiment judged it
        return [{k: v for k, v in c.to_dict().items() if k != "uncertainty"} for c in claims]
    assert judged(own_claims(results.extras["measured"])) == judged(results.claims)


def test_make_target_runs_every_audited_experiment_first():
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    audited = set(re.search(r"^AUDITED := (.*)$", makefile, re.M).group(1).split())
    assert audited == {e for s in registry.STATEMENTS for e, _ in s.evidence} - {registry.OWN}
