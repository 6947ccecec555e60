"""Section 1-3 (batch normalisation): exact unit tests, and the quick preset's regression test.

Thresholds from 10 seeds of the quick preset (`python -m repro run batchnorm --preset quick --seeds 10`),
per seed; measured mean and worst case beside each.
"""
import math

import pytest
import torch

from conftest import per_seed
from experiments.batchnorm import (BN_RANGE, book_sweep, input_drift, iterations_to, mode_gaps, speed_id,
                                   speed_ratio, spread, sweep_id, weight_scales)
from repro.config import TrialConfig
from repro.nets import build_mlp
from repro.probes import ActivationProbe
from repro.results import Run, Trial, VariantResult


# ---- pure functions ----

def test_weight_scales_are_the_books_log_spaced_sweep():
    scales = weight_scales(16)
    assert len(scales) == 16 and scales[0] == 1.0 and scales[-1] == pytest.approx(1e-4, rel=1e-12)
    ratios = [a / b for a, b in zip(scales, scales[1:])]
    assert all(r == pytest.approx(10 ** (4 / 15), rel=1e-12) for r in ratios)
    assert [f"{w:.3g}" for w in scales[2:4]] == ["0.293", "0.158"]   # the book's plain-net sweet spot
    assert sum(BN_RANGE[0] <= w <= BN_RANGE[1] for w in scales) == 6
    assert weight_scales(9)[2] == pytest.approx(0.1, rel=1e-12)


def test_book_references_per_scale():
    scales = weight_scales(16)
    assert (book_sweep(scales[2], False, scales).low, book_sweep(scales[2], False, scales).high) == (0.82, 0.98)
    assert book_sweep(scales[6], False, scales).high == 0.12
    assert book_sweep(scales[6], True, scales).low == 0.95
    assert book_sweep(scales[1], True, scales) is None                       # the book gives no number
    assert book_sweep(scales[-1], True, scales).low == 0.4                   # the extremes


def test_iterations_to_is_the_first_evaluation_at_or_above_target():
    history = [{"step": 100, "accuracy_test": 0.5}, {"step": 200, "accuracy_test": 0.9},
               {"step": 300, "accuracy_test": 0.89}, {"step": 400, "accuracy_test": 0.96}]
    assert iterations_to(history, 0.9) == 200
    assert iterations_to(history, 0.95) == 400
    assert iterations_to(history, 0.97) is None
    assert iterations_to([{"step": 7, "diverged": True}], 0.1) is None


def test_spread_is_largest_over_smallest():
    assert spread([2.0, 1.0, 4.0]) == 4.0
    assert spread([0.5, 0.5]) == 1.0


def test_speed_ratio_counts_a_plain_run_that_never_gets_there_as_the_budget():
    def run(bn_steps, plain_steps) -> Run:
        """A run of the ReLU speed-up pair whose seeds first reach 90% test accuracy at the given steps."""
        def trial(variant, seed, steps_to_90):
            history = [{"step": s, "accuracy_test": 0.95 if s >= steps_to_90 else 0.5} for s in range(100, 1001, 100)]
            return Trial(variant, seed, {}, "", [], "ok", None, history, [], [], {}, 0.0)
        variants = {vid: VariantResult(vid, vid, "speed-up", "final_test_acc", {}, None, [], {},
                                       [trial(vid, seed, s) for seed, s in enumerate(steps)])
                    for vid, steps in ((speed_id("relu", True), bn_steps), (speed_id("relu", False), plain_steps))}
        return Run("batchnorm", "", "quick", {"speed_iters": 1000}, {}, 2, 0, None, {}, variants)
    ratio, _ = speed_ratio(run((200, 400), (5000, 600)), "relu")
    assert ratio == pytest.approx(300 / 800)
    assert speed_ratio(run((5000, 400), (5000, 600)), "relu")[0] == math.inf   # BN never reached it: the claim must fail


# ---- BN in torch: eps, train vs eval mode, the pre-BN probe ----

def _bn_net(**changes):
    torch.manual_seed(0)
    return build_mlp(TrialConfig(widths=(20, 10), batchnorm=True, **changes))


def test_bn_eps_reaches_the_layers():
    assert _bn_net().bn1.eps == 1e-5                  # torch's default stays the default
    assert _bn_net(bn_eps=1e-6).bn2.eps == 1e-6


def test_eval_mode_is_deterministic_and_differs_from_train_mode_on_a_small_batch():
    net = _bn_net()
    with torch.no_grad():   # give the running statistics something other than their initial 0 and 1
        for _ in range(20):
            net(torch.rand(100, 784))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.rand(4, 784)
    gaps = mode_gaps(net, x)
    assert gaps["eval_repeat"] == 0.0
    assert gaps["eval_batch_dependence"] < 1e-5
    assert gaps["train_vs_eval"] > 1e-2
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())   # running stats untouched
    assert net.training


def test_probe_records_each_layers_raw_output_in_eval_mode_only():
    net = _bn_net()
    probe = ActivationProbe(net, "relu", layer_outputs=True)
    x = torch.rand(50, 784)
    net(x)
    assert probe.layer_outputs == {}                  # training steps do not pay for it
    net.eval()
    with torch.no_grad():
        net(x)
        fc2 = net.fc2(net.act1(net.bn1(net.fc1(x))))
    assert probe.layer_outputs["fc2"]["mean"] == pytest.approx(float(fc2.mean()), abs=1e-6)
    assert probe.layer_outputs["fc2"]["std"] == pytest.approx(float(fc2.std()), abs=1e-6)
    assert set(probe.layer_outputs) == {"fc1", "fc2", "fc3"}
    probe.close()


# ---- the quick preset ----

@pytest.fixture(scope="module")
def results(quick_run):
    return quick_run("batchnorm")


# Per seed, from 10 seeds of the quick preset; measured mean and worst beside each.
SWEEP_FLOORS = {                       # final train accuracy on the 1000 training images
    "w1-bn": 0.30,                     # mean 0.426, worst 0.359: the extreme, still well above chance
    "w0.0001-bn": 0.25,                # mean 0.486, worst 0.330 (needs the book's eps 1e-6; 0.116 with 1e-5)
    "w0.316-plain": 0.80,              # mean 0.945, worst 0.860: the plain net's one good scale
    "w0.1-bn": 0.80,                   # mean 0.874, worst 0.849
}
SPEED_FLOORS = {                       # final test accuracy after 5000 iterations
    "sigmoid-xavier-bn": 0.90,         # mean 0.920, worst 0.919
    "relu-xavier-bn": 0.96,            # mean 0.969, worst 0.966
    "relu-xavier-plain": 0.92,         # mean 0.938, worst 0.935
}
SIGMOID_PLAIN_CEILING = 0.35           # mean 0.146, worst (highest) 0.241: it hardly learns at lr 0.01
ITERATIONS_TO_90 = {                   # (fewest, most) iterations to 90% test accuracy
    "relu-xavier-bn": (200, 800),          # mean 410, range 400-500
    "relu-xavier-plain": (1000, 2500),     # mean 1550, range 1500-1600
    "sigmoid-xavier-bn": (1000, 3000),     # mean 1840, range 1700-2000
}
COURSE_FLOORS = {
    "course-bn-fixed": 0.74,           # mean 0.806, worst 0.784 (the course: 0.81)
    "course-bn-trained": 0.75,         # mean 0.815, worst 0.795
}
COURSE_NO_BN_CEILING = 0.45            # mean 0.194, worst (highest) 0.328
DRIFT_PLAIN_RELU_FLOOR = 5.0           # sd spread of act3's input: mean 9.42, worst 7.79
DRIFT_BN_CEILING = 1.25                # with BN, sigmoid and ReLU: mean 1.164, worst 1.174


@pytest.mark.parametrize("variant", sorted(SWEEP_FLOORS))
def test_sweep_floors(results, variant):
    assert min(per_seed(results, variant, "final_train_acc")) >= SWEEP_FLOORS[variant]


def test_plain_net_is_stuck_at_chance_at_small_scales(results):
    for w in weight_scales(results.params["scales"]):
        if w < 0.05:   # mean 0.116-0.120, worst (highest) 0.156
            assert max(per_seed(results, sweep_id(w, False), "final_train_acc")) <= 0.2


@pytest.mark.parametrize("variant", sorted(SPEED_FLOORS))
def test_speed_up_final_accuracy(results, variant):
    assert min(per_seed(results, variant)) >= SPEED_FLOORS[variant]


def test_sigmoid_plain_hardly_learns(results):
    assert max(per_seed(results, speed_id("sigmoid", False))) <= SIGMOID_PLAIN_CEILING
    assert all(iterations_to(t.history, 0.9) is None for t in results.trials_of(speed_id("sigmoid", False)))


@pytest.mark.parametrize("variant", sorted(ITERATIONS_TO_90))
def test_iterations_to_90(results, variant):
    low, high = ITERATIONS_TO_90[variant]
    for t in results.trials_of(variant):
        assert iterations_to(t.history, 0.9) is not None and low <= iterations_to(t.history, 0.9) <= high


def test_course_setup(results):
    for variant, floor in COURSE_FLOORS.items():
        assert min(per_seed(results, variant)) >= floor
    assert max(per_seed(results, "course-no-bn")) <= COURSE_NO_BN_CEILING


def test_layer_input_drift(results):
    assert min(input_drift(results, "relu", False)) >= DRIFT_PLAIN_RELU_FLOOR
    assert max(input_drift(results, "sigmoid", True) + input_drift(results, "relu", True)) <= DRIFT_BN_CEILING


def test_pre_bn_outputs_are_logged_for_the_speed_up_networks(results):
    for vid in [speed_id(act, bn) for act in ("sigmoid", "relu") for bn in (False, True)]:
        for t in results.trials_of(vid):
            assert all(set(p["layer_outputs"]) == {"fc1", "fc2", "fc3", "fc4"} for p in t.history)


def test_mode_gaps_of_the_trained_course_network(results):
    gaps = results.extras["mode_gaps"]
    assert gaps["eval_repeat"] == 0.0                  # 0 in all 10 seeds
    assert gaps["eval_batch_dependence"] < 1e-5        # mean 2.0e-7, worst 2.4e-7
    assert gaps["train_vs_eval"] > 0.1                 # mean 0.32, worst (lowest) 0.20


def test_tables_are_written(results):
    assert len(results.extras["tables"]) == 2
