"""Section 2: the 2-D paths follow each update rule, every optimiser sees the same batches, and the
quick preset (half the training, 2 seeds) keeps showing the phenomena.

Thresholds from 10 seeds of the quick preset (`python -m repro run optimizers --preset quick --seeds 10`),
per seed; measured mean and worst case beside each.
"""
import math

import pytest
import torch
from torch import nn

from conftest import per_seed
from experiments.optimizers import (BOOK_RUNS, PATHS, book_id, course_id, decay_runs, divergence, lr_schedule,
                                    moving_average, sign_changes, trajectory)
from repro.config import TrialConfig
from repro.data import Dataset
from repro.engine import train
from repro.results import Trial


def valley_grad(x, y):
    return x / 10, 2 * y


def hand_path(optimizer: str, lr: float, steps: int) -> list[tuple[float, float]]:
    """Each update rule written out, in the book's form where the book has one."""
    m, alpha, b1, b2 = 0.9, 0.99, 0.9, 0.999
    p = [-7.0, 2.0]
    state = [[0.0, 0.0], [0.0, 0.0]]  # velocity / squared-gradient sums / Adam's two moments
    out = [tuple(p)]
    for t in range(1, steps + 1):
        g = valley_grad(*p)
        for i in range(2):
            if optimizer == "sgd":
                p[i] -= lr * g[i]
            elif optimizer == "momentum":  # book: v = m v - lr g; p += v (torch keeps v / -lr: the same path)
                state[0][i] = m * state[0][i] - lr * g[i]
                p[i] += state[0][i]
            elif optimizer == "nesterov":  # torch's form: b = m b + g; p -= lr (g + m b)
                state[0][i] = m * state[0][i] + g[i]
                p[i] -= lr * (g[i] + m * state[0][i])
            elif optimizer == "adagrad":   # h += g^2; p -= lr g / (sqrt(h) + eps), eps 1e-10 (book 1e-7)
                state[0][i] += g[i] ** 2
                p[i] -= lr * g[i] / (math.sqrt(state[0][i]) + 1e-10)
            elif optimizer == "rmsprop":   # h = a h + (1 - a) g^2; eps 1e-8 (book 1e-7)
                state[0][i] = alpha * state[0][i] + (1 - alpha) * g[i] ** 2
                p[i] -= lr * g[i] / (math.sqrt(state[0][i]) + 1e-8)
            elif optimizer == "adam":      # book: bias correction folded into the rate; torch's eps
                state[0][i] += (1 - b1) * (g[i] - state[0][i])   # sits on sqrt(v_hat), i.e. eps * sqrt(1 - b2^t)
                state[1][i] += (1 - b2) * (g[i] ** 2 - state[1][i])
                lr_t = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
                p[i] -= lr_t * state[0][i] / (math.sqrt(state[1][i]) + 1e-8 * math.sqrt(1 - b2 ** t))
        out.append(tuple(p))
    return out


@pytest.mark.parametrize("label,optimizer,lr", PATHS)
def test_valley_paths_follow_each_update_rule(label, optimizer, lr):
    path = trajectory(optimizer, lr, steps=5)
    expected = torch.tensor(hand_path(optimizer, lr, 5), dtype=torch.float64)
    assert torch.allclose(path, expected, rtol=0, atol=1e-12), f"{label}: {path} vs {expected}"


def test_valley_path_starts_at_the_start_and_has_one_point_per_step():
    path = trajectory("sgd", 0.95, steps=30)
    assert path.shape == (31, 2) and path[0].tolist() == [-7.0, 2.0]
    assert sign_changes(path[:, 1].tolist()) == 30  # y -> (1 - 2 * 0.95) y = -0.9 y


def test_sign_changes():
    assert sign_changes([1.0, -1.0, 2.0, 3.0, -0.5]) == 3
    assert sign_changes([1.0, 2.0]) == 0 and sign_changes([]) == 0


def trial_with(status: str, batch_loss: list[float], diverged_at: int | None = None) -> Trial:
    return Trial("v", 0, {}, "", [], status, diverged_at, [], batch_loss, [], {}, 0.0)


def test_divergence_classification():
    assert divergence(trial_with("ok", [2.4, 2.6, 13.0, 1.0])) == ("ok", None)  # overshoot
    assert divergence(trial_with("diverged", [2.4, 9.0], 37)) == ("diverged", 37)
    # above 10x the start (24) at step 3; recovering afterwards does not undo it
    assert divergence(trial_with("ok", [2.4, 3.0, 25.0, 500.0, 0.5])) == ("blew up", 3)


def test_moving_average():
    assert moving_average([1, 2, 3, 4], 2).tolist() == [1.5, 2.5, 3.5]
    assert moving_average([1, 2], 10).tolist() == [1.5]


def test_lr_schedule_comes_from_torch_schedulers():
    cosine = lr_schedule(TrialConfig(lr=0.5, schedule="cosine", iters=100))
    assert len(cosine) == 100 and cosine[0] == 0.5 and cosine[50] == pytest.approx(0.25)
    assert all(a >= b for a, b in zip(cosine, cosine[1:])) and cosine[-1] < 1e-3
    assert lr_schedule(TrialConfig(lr=0.5, iters=10)) == [0.5] * 10
    step = lr_schedule(TrialConfig(lr=1.0, schedule="step", iters=8))
    assert step == pytest.approx([1.0] * 4 + [0.1] * 2 + [0.01] * 2)


def test_every_optimizer_sees_the_same_batches():
    """Pixel 0 of each image carries its index; a global hook records which images each step trained on."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 784, generator=g) * 0.1
    x[:, 0] = torch.arange(64) / 1000
    y = torch.randint(0, 10, (64,), generator=g)
    data = Dataset(x[:48], y[:48], x[48:], y[48:])
    cfg = TrialConfig(widths=(8,), iters=12, batch_size=4, eval_every=6, train_eval_size=48)

    def batches_seen(optimizer: str, seed: int) -> list[list[int]]:
        seen = []

        def hook(module, args):
            if isinstance(module, nn.Sequential) and module.training:
                seen.append([round(float(v) * 1000) for v in args[0][:, 0]])
        handle = nn.modules.module.register_module_forward_pre_hook(hook)
        try:
            train(cfg.replace(optimizer=optimizer, lr=0.001), seed, data)
        finally:
            handle.remove()
        return seen

    reference = batches_seen("sgd", 3)
    assert len(reference) == 12 and all(len(b) == 4 for b in reference)
    for optimizer in ("momentum", "nesterov", "adagrad", "rmsprop", "adam"):
        assert batches_seen(optimizer, 3) == reference, optimizer
    assert batches_seen("sgd", 4) != reference  # the seed does choose the batches


# ---- the quick preset ----

# The claim about SGD's late-loss ratio needs the book's 2000 iterations (its run prints it as not
# judged at the quick preset's 1000); there the ratio is 2.42 (10 seeds, worst 2.32), and its floor
# is tested below.
LATE_LOSS_BANDS = {            # book network, 1000 iterations: mean batch loss over iterations 500-1000
    "sgd-0.01": (0.30, 0.40),       # mean 0.346, range 0.335-0.359
    "momentum-0.01": (0.12, 0.17),  # mean 0.143, range 0.138-0.150
    "nesterov-0.01": (0.12, 0.16),  # mean 0.138, range 0.134-0.143
    "adagrad-0.01": (0.085, 0.125),  # mean 0.105, range 0.100-0.110
    "rmsprop-0.01": (0.21, 0.29),   # mean 0.249, range 0.239-0.264
    "adam-0.001": (0.09, 0.125),    # mean 0.105, range 0.102-0.111
}
SGD_RATIO_FLOOR = 2.2          # SGD / min(Momentum, AdaGrad, Adam) late loss per seed: mean 2.42, worst 2.32
COURSE_FLOORS = {              # final test accuracy after 1000 iterations
    "course-momentum-0.3": 0.89,    # mean 0.930, worst 0.917
    "course-adagrad-0.1": 0.91,     # mean 0.940, worst 0.932
    "course-rmsprop-0.01": 0.92,    # mean 0.945, worst 0.941
    "course-adam-0.01": 0.92,       # mean 0.944, worst 0.939
}
COURSE_STUCK_CEILING = 0.2     # SGD 0.01 and Momentum 0.01: mean 0.113 and 0.112, highest 0.1135
SMALL_SGD_FLOOR = 2.2          # SGD 1e-4 final loss: mean 2.290, lowest 2.256
SGD_AT_1_FLOOR = 0.5           # SGD 1 where it did not go NaN (3 of 10 seeds): 0.777, 1.014, 2.302
# final loss on all training images, batch 32, 1000 iterations: cosine from 0.2 ends at 0.144-0.162
DECAY_MARGIN_OVER_SMALL = 0.10   # 0.01 constant - cosine, per seed: mean 0.172, worst 0.153
DECAY_MARGIN_OVER_LARGE = 0.005  # 0.2 constant - cosine, per seed: mean 0.049, worst 0.021


@pytest.fixture(scope="module")
def results(quick_run):
    return quick_run("optimizers")


@pytest.mark.parametrize("variant", sorted(LATE_LOSS_BANDS))
def test_book_late_loss_bands(results, variant):
    low, high = LATE_LOSS_BANDS[variant]
    assert all(low <= v <= high for v in per_seed(results, variant, "late_loss")), per_seed(results, variant, "late_loss")


def test_sgd_late_loss_ratio_at_half_length(results):
    sgd = per_seed(results, "sgd-0.01", "late_loss")
    others = [per_seed(results, vid, "late_loss") for vid in ("momentum-0.01", "adagrad-0.01", "adam-0.001")]
    assert min(s / min(o[i] for o in others) for i, s in enumerate(sgd)) >= SGD_RATIO_FLOOR


def test_course_setup(results):
    for variant, floor in COURSE_FLOORS.items():
        assert min(per_seed(results, variant)) >= floor, variant
    for variant in (course_id("sgd", 0.01), course_id("momentum", 0.01)):
        assert max(per_seed(results, variant)) <= COURSE_STUCK_CEILING, variant


def test_learning_rate_grid(results):
    grid = results.extras["grid_divergence"]
    assert min(per_seed(results, "sgd-0.0001", "final_train_loss")) >= SMALL_SGD_FLOOR
    # a rate that trains normally is never classified as diverged (highest batch loss / start: 1.21)
    for opt, rates in (("sgd", ("0.0001", "0.001", "0.01", "0.1")), ("adam", ("0.0001", "0.001", "0.01"))):
        for lr in rates:
            assert all(kind == "ok" for kind, _ in grid[opt][lr]), (opt, lr, grid[opt][lr])
    # Adam at 0.1 and 1 blows up at step 2 in 10 of 10 seeds (59x-9e6x its start)
    for lr in ("0.1", "1"):
        assert all(kind == "blew up" and step <= 5 for kind, step in grid["adam"][lr]), (lr, grid["adam"][lr])
    # SGD at 1 never trains: NaN by step 7 in 7 of 10 seeds, the others end at loss 0.78-2.30
    for trial, (kind, step) in zip(results.trials_of("sgd-1"), grid["sgd"]["1"]):
        assert (kind == "diverged" and step <= 20) or trial.summary["final_train_loss"] >= SGD_AT_1_FLOOR, (kind, step)


def test_decay_ends_below_both_constant_rates_in_every_seed(results):
    decay = [vid for vid, _, _ in decay_runs(results.params)]   # cosine, large constant, small constant
    for c, a, b in zip(*(per_seed(results, vid, "final_train_loss") for vid in decay)):
        assert b - c >= DECAY_MARGIN_OVER_SMALL and a - c >= DECAY_MARGIN_OVER_LARGE, (c, a, b)


def test_book_optimizers_start_from_the_same_loss(results):
    """Same seed: same initial weights and same first batch, so the loss before any step is identical."""
    ids = [book_id(opt, lr) for opt, lr, _ in BOOK_RUNS]
    for seed in range(results.seeds):
        first = {t.batch_loss[0] for vid in ids for t in results.trials_of(vid) if t.seed == seed}
        assert len(first) == 1, first
