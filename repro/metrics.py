"""Every number a trial records, by name: where it is measured, how seeds summarise it, its
TensorBoard tag, and which way is better.

Three scopes:
- POINT: one number per evaluation point (``point[name]``), measured in repro/engine.py;
- LAYER: one number per layer per evaluation point (``point[group][layer][key]``), measured by the
  probes in repro/probes.py (gradient norms, activation statistics, a layer's raw output);
- TRIAL: one number per trial (``result["summary"][name]``), computed here from the trial's record.

Adding a metric is one entry in METRICS plus its computation (a probe's statistic, a value in the
engine's evaluation point, or a TRIAL entry's ``compute``). Whatever a probe records reaches the
results and TensorBoard under the entry's tag; ``tag=None`` keeps it out of TensorBoard. A probe
that records a statistic without an entry is an error (``layer_metric`` raises), so nothing is
dropped silently.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

POINT, LAYER, TRIAL = "point", "layer", "trial"
HIGHER, LOWER = "higher", "lower"


@dataclass(frozen=True)
class Metric:
    name: str
    scope: str                       # POINT, LAYER or TRIAL
    description: str
    tag: str | None = None           # TensorBoard tag; a LAYER metric's is <tag>/<layer>; None: not logged
    better: str | None = None        # HIGHER or LOWER (what a sweep ranks by); None: no direction
    group: str = ""                  # LAYER: the point's field that holds it (grad_norm, activations, ...)
    key: str = ""                    # LAYER: the statistic's key inside a layer's entry ("" for grad_norm)
    curve: bool = False              # POINT: drawn as mean-over-seeds curves (report, mean runs)
    story: str = ""                  # POINT: the chart title in TensorBoard's story (Custom Scalars)
    hparam: bool = False             # TRIAL: a column of TensorBoard's hparams table
    counted: bool = False            # TRIAL: a yes/no outcome, summarised as a count of seeds, not a mean
    compute: Callable | None = None  # TRIAL: value from a repro.metrics.TrialRecord


@dataclass
class TrialRecord:
    """What a finished (or diverged) trial leaves for its TRIAL metrics."""
    history: list[dict]              # evaluation points
    batch_loss: list[float]          # every step's batch loss before its update
    grad_rows: object                # steps x (weighted layers..., total) gradient norms (a tensor)
    config: object                   # the TrialConfig
    diverged_at: int | None
    post_update: list                # [step, loss after the update] pairs (config post_loss_every)

    @property
    def points(self) -> list[dict]:
        return [p for p in self.history if not p.get("diverged")]

    def final(self, name: str) -> float:
        """An evaluation point's value at the last point; NaN for a diverged trial."""
        last = self.points[-1] if self.points else {}
        return last.get(name, math.nan) if self.diverged_at is None else math.nan


def _late_loss(r: TrialRecord) -> float:
    half = r.batch_loss[len(r.batch_loss) // 2:]
    return sum(half) / len(half) if half and r.diverged_at is None else math.nan


def _post_update_loss(r: TrialRecord) -> float | None:
    # None where the trial did not record it (post_loss_every=0), NaN where it diverged
    if not r.config.post_loss_every:
        return None
    late = [v for step, v in r.post_update or [] if step >= r.config.iters // 2]
    return math.nan if r.diverged_at is not None or not late else sum(late) / len(late)


def _grad_ratio(r: TrialRecord) -> float:
    window = r.grad_rows[:min(r.config.grad_window, len(r.batch_loss) or 1), :-1].mean(0)
    return (window[0] / window[-1]).item() if window[-1] > 0 else math.inf


METRICS = [
    # ---- POINT: the engine's evaluation point (repro/engine.py) ----
    Metric("lr", POINT, "the learning rate of the interval's last step", "lr"),
    Metric("loss_batch", POINT, "mean batch loss (before each update) over the interval since the last point",
           "loss/batch", LOWER),
    Metric("accuracy_test", POINT, "accuracy on the test images", "accuracy/test", HIGHER, curve=True,
           story="test accuracy"),
    Metric("loss_test", POINT, "cross-entropy on the test images", "loss/test", LOWER, curve=True),
    Metric("accuracy_train", POINT, "accuracy on the first train_eval_size training images", "accuracy/train",
           HIGHER, curve=True),
    Metric("loss_train", POINT, "cross-entropy on the first train_eval_size training images, eval mode",
           "loss/train", LOWER, curve=True, story="training loss"),
    # ---- LAYER: the probes (repro/probes.py) ----
    Metric("grad_norm", LAYER, "norm of a layer's weight gradient (after backward, before the step), mean over "
           "the interval; 'total': every parameter", "grad_norm", group="grad_norm"),
    Metric("act_mean", LAYER, "mean of an activation's outputs on the probe images", "act_mean",
           group="activations", key="mean"),
    Metric("act_std", LAYER, "sd of an activation's outputs", "act_std", group="activations", key="std"),
    Metric("act_saturated", LAYER, "share of sigmoid/tanh/softsign outputs within 0.05 of an asymptote",
           "act_saturated", group="activations", key="saturated"),
    Metric("act_dead", LAYER, "share of ReLU outputs exactly 0", "act_dead", group="activations", key="dead"),
    Metric("preact_mean", LAYER, "mean of an activation's input", "preact_mean", group="activations",
           key="preact_mean"),
    Metric("preact_std", LAYER, "sd of an activation's input", "preact_std", group="activations", key="preact_std"),
    *(Metric(f"unit0_q{q}", LAYER, f"{q}th percentile of unit 0's input over the probe images (Ioffe & Szegedy, "
             "Fig. 1)", f"unit0_q{q}", group="activations", key=f"unit0_q{q}") for q in (15, 50, 85)),
    Metric("out_mean", LAYER, "mean of a weighted layer's raw output (config probe_outputs)", "out_mean",
           group="layer_outputs", key="mean"),
    Metric("out_std", LAYER, "sd of a weighted layer's raw output (config probe_outputs)", "out_std",
           group="layer_outputs", key="std"),
    # ---- TRIAL: the summary ----
    Metric("final_test_acc", TRIAL, "test accuracy at the last evaluation point", "hparams/final_test_acc", HIGHER,
           hparam=True, compute=lambda r: r.final("accuracy_test")),
    Metric("final_train_acc", TRIAL, "training accuracy at the last evaluation point", None, HIGHER,
           compute=lambda r: r.final("accuracy_train")),
    Metric("final_test_loss", TRIAL, "test loss at the last evaluation point", "hparams/final_test_loss", LOWER,
           hparam=True, compute=lambda r: r.final("loss_test")),
    Metric("final_train_loss", TRIAL, "training loss at the last evaluation point", None, LOWER,
           compute=lambda r: r.final("loss_train")),
    # no direction: a net that never learned has the smallest train-test gap
    Metric("gap", TRIAL, "train minus test accuracy at the last evaluation point",
           compute=lambda r: r.final("accuracy_train") - r.final("accuracy_test")),
    Metric("late_loss", TRIAL, "mean batch loss (before each update) over the second half of training", None,
           LOWER, compute=_late_loss),
    Metric("post_update_loss", TRIAL, "the book's statistic: the step's batch loss after its update, mean of "
           "the recorded steps in the second half (config post_loss_every)", None, LOWER, compute=_post_update_loss),
    Metric("best_test_acc", TRIAL, "highest test accuracy at any evaluation point", None, HIGHER,
           compute=lambda r: max((p["accuracy_test"] for p in r.points), default=math.nan)),
    Metric("grad_ratio_first_last", TRIAL, "first over last layer's weight-gradient norm, mean over the first "
           "grad_window steps", "hparams/grad_ratio_first_last", hparam=True, compute=_grad_ratio),
    Metric("diverged", TRIAL, "the loss went NaN or inf (repro/engine.py)", counted=True,
           compute=lambda r: r.diverged_at is not None),
]
BY_NAME = {m.name: m for m in METRICS}
assert len(BY_NAME) == len(METRICS), "metric names must be unique"


def of_scope(scope: str) -> list[Metric]:
    return [m for m in METRICS if m.scope == scope]


def curves() -> list[str]:
    """POINT metrics drawn as curves over seeds (the report's figure, TensorBoard's mean runs)."""
    return [m.name for m in of_scope(POINT) if m.curve]


def rankable() -> dict[str, str]:
    """TRIAL metric -> HIGHER or LOWER: what ``repro sweep --metric`` can rank cells by."""
    return {m.name: m.better for m in of_scope(TRIAL) if m.better}


_LAYER = {(m.group, m.key): m for m in of_scope(LAYER)}


def layer_metric(group: str, key: str = "") -> Metric:
    """The entry for a probe's statistic ``key`` in the point's field ``group``."""
    try:
        return _LAYER[(group, key)]
    except KeyError:
        raise KeyError(f"a probe recorded '{group}/{key}', which repro/metrics.py does not register") from None


def summarize(record: TrialRecord) -> dict:
    """Every TRIAL metric of a trial, by name."""
    return {m.name: m.compute(record) for m in of_scope(TRIAL)}
