"""Like with like: the book's own loss statistic, and references shown only where they describe the run."""
from __future__ import annotations

import pytest
import torch

from conftest import random_dataset
from experiments import optimizers, vanishing
from repro import report
from repro.config import ConfigError, TrialConfig
from repro.experiment import MEASURED_HERE, Reference
from repro.results import Run, VariantResult
from repro.runner import build_variants, resolve
from repro.engine import train

BOOK_LIKE = TrialConfig(widths=(32, 32), iters=40, batch_size=20, eval_every=20, train_eval_size=100,
                        post_loss_every=10)


@pytest.fixture(scope="module")
def tiny_data():
    return random_dataset(1)


def test_post_update_loss_is_recorded_at_every_nth_step_and_averaged_over_the_second_half(tiny_data):
    result = train(BOOK_LIKE, 0, tiny_data)
    steps = [step for step, _ in result["post_update_loss"]]
    assert steps == [0, 10, 20, 30]  # the book's i % 100 == 0, here every 10 of 40
    late = [loss for step, loss in result["post_update_loss"] if step >= 20]
    assert result["summary"]["post_update_loss"] == pytest.approx(sum(late) / len(late))
    off = train(BOOK_LIKE.replace(post_loss_every=0), 0, tiny_data)
    assert off["post_update_loss"] == [] and off["summary"]["post_update_loss"] is None
    assert off["batch_loss"] == result["batch_loss"]  # recording it does not change the training


def test_post_update_loss_is_taken_after_the_step_on_the_same_batch(tiny_data):
    # With a vanishing rate the update changes nothing: after = before, the first batch's loss.
    still = train(BOOK_LIKE.replace(lr=1e-12), 0, tiny_data)
    assert still["post_update_loss"][0][1] == pytest.approx(still["batch_loss"][0], abs=1e-6)
    # With a real rate the step fits the batch it was computed on: after < before.
    moving = train(BOOK_LIKE.replace(optimizer="adam", lr=0.01), 0, tiny_data)
    assert moving["post_update_loss"][0][1] < moving["batch_loss"][0] - 1e-3


def variant_view(reference: Reference, config: TrialConfig, changed=(), aggregate=None) -> VariantResult:
    return VariantResult("v", "adam 0.001", "book setup", "post_update_loss", config.to_dict(), reference,
                         list(changed), aggregate or {})


BOOK_FIGURE = Reference("post_update_loss", 0.249, 0.249, "book", describes=(("iters", 2000),))


@pytest.mark.parametrize("reference, config, changed, says", [
    (BOOK_FIGURE, TrialConfig(iters=2000), (), None),
    (Reference("late_loss", 0.089, 0.090, MEASURED_HERE), TrialConfig(), (), "no published figure"),
    (BOOK_FIGURE, TrialConfig(iters=2000, dataset="fashion-mnist"), (), "reference is for MNIST"),
    (BOOK_FIGURE, TrialConfig(iters=2000, lr=0.1), ("lr",), "this run changed lr"),
    (BOOK_FIGURE, TrialConfig(iters=1000), (), "reference is for iters=2000"),
])
def test_reference_is_judged_only_where_it_describes_the_run(reference, config, changed, says):
    _, text, comparable = variant_view(reference, config, changed).reference_status()
    assert comparable == (says is None)
    assert says is None and text == reference.text() or says in text


def test_set_names_the_keys_it_changed_per_variant():
    params, forced = resolve(optimizers, "full", {"lr": "0.1"})
    variants = {v.id: v for v in build_variants(optimizers, params, forced, "full")}
    assert variants["sgd-0.01"].changed == ["lr"]
    assert variants["sgd-0.1"].changed == []        # already at 0.1: nothing its figure describes moved
    params, forced = resolve(optimizers, "full", {"book_iters": 500})   # an experiment parameter, as a value
    variants = {v.id: v for v in build_variants(optimizers, params, forced, "full")}
    assert variants["adam-0.001"].changed == ["iters"] and variants["course-adam-0.01"].changed == []


def test_a_set_key_the_preset_names_sets_the_parameter_any_other_config_key_every_variant():
    """The one rule (repro.runner.resolve): vanishing's preset names iters, so --set iters=40 is its
    parameter and reaches only the variants the experiment gives it to; optimizers' preset does not,
    so there iters is forced on every variant, the decay runs included."""
    params, forced = resolve(vanishing, "quick", {"iters": "40"})
    assert params["iters"] == 40 and "iters" not in forced
    iters = {v.group: v.config.iters for v in build_variants(vanishing, params, forced)}
    assert iters["course setup"] == 40 and set(iters.values()) == {40, 100}   # the depth study keeps depth_iters
    params, forced = resolve(optimizers, "quick", {"iters": "40"})
    assert forced == {"iters": 40} and "iters" not in params
    assert {v.config.iters for v in build_variants(optimizers, params, forced)} == {40}
    with pytest.raises(ConfigError, match="unknown key 'iterz'.*experiment parameters: .*config keys: "):
        resolve(vanishing, "quick", {"iterz": "40"})


def test_report_gives_no_verdict_where_the_reference_does_not_apply():
    variant = variant_view(BOOK_FIGURE, TrialConfig(iters=2000, dataset="fashion-mnist"), aggregate={
        "post_update_loss": {"n": 3, "mean": 0.3, "std": 0.01, "min": 0.29, "max": 0.31}, "diverged": 0})
    row = report.results_table(Run("optimizers", "t", "full", {}, {}, 3, 0, None, {}, {"v": variant}))[-1]
    assert "reference is for MNIST" in row and "no verdict" in row and "✗" not in row


def test_book_dropout_keeps_survivors_in_training_and_scales_at_test():
    from repro.nets import BookDropout, make_dropout
    x = torch.rand(1000, 50) + 0.5
    drop = make_dropout(0.2, "book")
    assert isinstance(drop, BookDropout)
    torch.manual_seed(0)
    kept = drop.train()(x)
    survived = kept != 0
    assert torch.allclose(kept[survived], x[survived])       # not scaled up by 1 / (1 - p)
    assert abs(survived.float().mean().item() - 0.8) < 0.01
    assert torch.allclose(drop.eval()(x), 0.8 * x)          # scaled down at test instead
    assert type(make_dropout(0.2, "inverted")) is torch.nn.Dropout
